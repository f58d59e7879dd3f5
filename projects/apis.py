"""Project runs API: submit (Git URI or uploaded archive), list, show, follow logs, cancel."""

import contextlib

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from projects import services
from projects.execution import LOG_NAMES, log_name
from projects.models import EnvManager, ProjectRun, Workflow
from tenancy.api import OrgApi
from tracking import selectors as tracking_selectors
from tracking.artifacts import artifact_storage
from tracking.models import Experiment

MAX_LOG_CHUNK = 256 * 1024


class ProjectRunOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid")
    run_id = serializers.CharField(source="run.run_uuid")
    experiment_id = serializers.CharField(source="run.experiment.public_id")
    submitted_by = serializers.EmailField(source="submitted_by.email")
    uri = serializers.CharField(source="git_url")
    version = serializers.CharField(source="git_ref")
    workflow_id = serializers.UUIDField(source="workflow.uuid", allow_null=True, default=None)
    step = serializers.CharField(source="step_name")

    class Meta:
        model = ProjectRun
        fields = ["id", "run_id", "experiment_id", "status", "status_message", "source_kind",
                  "uri", "version", "entry_point", "parameters", "env_manager",
                  "timeout_seconds", "resolved_commit", "source_digest", "command",
                  "cancel_requested", "exit_code", "attempt", "safe_to_retry", "workflow_id",
                  "step", "submitted_by", "created_at", "started_at", "ended_at"]


class WorkflowOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid")
    run_id = serializers.CharField(source="run.run_uuid")
    experiment_id = serializers.CharField(source="run.experiment.public_id")
    submitted_by = serializers.EmailField(source="submitted_by.email")
    steps = serializers.SerializerMethodField()

    class Meta:
        model = Workflow
        fields = ["id", "name", "run_id", "experiment_id", "status", "status_message", "steps",
                  "submitted_by", "created_at", "ended_at"]

    @extend_schema_field(ProjectRunOutputSerializer(many=True))
    def get_steps(self, workflow):
        steps = workflow.steps.select_related("run__experiment", "submitted_by", "workflow") \
            .order_by("step_index")
        return ProjectRunOutputSerializer(steps, many=True).data


class SourceSerializer(serializers.Serializer):
    """Where a project comes from and which experiment its runs go to."""

    uri = serializers.CharField(required=False, max_length=1000,
                                help_text="Git URL (https://, ssh://)")
    version = serializers.CharField(required=False, default="", max_length=250,
                                    help_text="branch, tag or commit")
    archive = serializers.FileField(required=False, help_text=".tar.gz or .zip")
    experiment_id = serializers.CharField(required=False)
    experiment_name = serializers.CharField(required=False)
    env_manager = serializers.ChoiceField(choices=EnvManager.choices, default="local")

    def validate(self, attrs):
        if bool(attrs.get("uri")) == bool(attrs.get("archive")):
            raise serializers.ValidationError({"uri": "Give either 'uri' or 'archive'."})
        return attrs


class SubmitApi(OrgApi):
    """Shared by runs and workflows: the checked input, the experiment, the stored archive
    (removed again when the submission is refused)."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]
    InputSerializer = SourceSerializer

    def submit(self, request, create):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        data = data.validated_data
        experiment = self._experiment(data)
        archive_name = ""
        if data.get("archive"):
            archive_name, _ = services.archive_store(org=self.org, stream=data["archive"],
                                                     size=data["archive"].size)
        try:
            return create(data, experiment=experiment, actor=self.actor(),
                          git_url=data.get("uri", ""), git_ref=data["version"],
                          archive_name=archive_name, env_manager=data["env_manager"])
        except Exception:
            if archive_name:  # nothing of a refused submission stays behind
                with contextlib.suppress(OSError):
                    services.storages[services.STORAGE].delete(archive_name)
            raise

    def _experiment(self, data) -> Experiment:
        if data.get("experiment_id"):
            return tracking_selectors.experiment_get(org=self.org,
                                                     experiment_id=data["experiment_id"])
        if data.get("experiment_name"):
            return tracking_selectors.experiment_get_by_name(org=self.org,
                                                             name=data["experiment_name"])
        return tracking_selectors.experiment_get(org=self.org, experiment_id="0")


class ProjectRunListApi(SubmitApi):
    class InputSerializer(SourceSerializer):
        entry_point = serializers.CharField(required=False, default="main", max_length=250)
        parameters = serializers.JSONField(required=False, default=dict)
        timeout_seconds = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(responses=ProjectRunOutputSerializer(many=True),
                   summary="Project runs, newest first")
    def get(self, request):
        runs = self.scoped(ProjectRun).select_related("run__experiment", "submitted_by", "workflow") \
            .order_by("-created_at")[:200]
        return Response(ProjectRunOutputSerializer(runs, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ProjectRunOutputSerializer},
                   summary="Run an MLproject from Git or an uploaded archive")
    def post(self, request):
        project_run = self.submit(request, lambda data, **source: services.project_run_submit(
            entry_point=data["entry_point"], parameters=data["parameters"],
            timeout_seconds=data.get("timeout_seconds"), **source))
        return Response(ProjectRunOutputSerializer(project_run).data, status=201)


class ProjectRunDetailApi(OrgApi):
    @extend_schema(responses=ProjectRunOutputSerializer, summary="One project run")
    def get(self, request, run_uuid):
        return Response(ProjectRunOutputSerializer(
            self.get_scoped(ProjectRun, uuid=run_uuid)).data)


class ProjectRunLogsApi(OrgApi):
    class FilterSerializer(serializers.Serializer):
        stream = serializers.ChoiceField(choices=["stdout", "stderr"], default="stdout")
        offset = serializers.IntegerField(min_value=0, default=0)

    class OutputSerializer(serializers.Serializer):
        text = serializers.CharField()
        offset = serializers.IntegerField(help_text="where to continue")
        done = serializers.BooleanField(help_text="the run has ended: no more will come")

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer,
                   summary="Follow a run's output: the text from `offset` on")
    def get(self, request, run_uuid):
        project_run = self.get_scoped(ProjectRun, uuid=run_uuid)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        stream, offset = filters.validated_data["stream"], filters.validated_data["offset"]
        name = log_name(project_run, LOG_NAMES[0] if stream == "stdout" else LOG_NAMES[1])
        chunk = b""
        with contextlib.suppress(FileNotFoundError), artifact_storage().open(name, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read(MAX_LOG_CHUNK)
        done = project_run.status in ("FINISHED", "FAILED", "KILLED")
        return Response({"text": chunk.decode(errors="replace"), "offset": offset + len(chunk),
                         "done": done and len(chunk) < MAX_LOG_CHUNK})


class ProjectRunCancelApi(OrgApi):
    @extend_schema(request=None, responses=ProjectRunOutputSerializer,
                   summary="Cancel: a queued run ends, a running one is killed")
    def post(self, request, run_uuid):
        project_run = self.get_scoped(ProjectRun, uuid=run_uuid)
        services.project_run_cancel(project_run=project_run, actor=self.actor())
        return Response(ProjectRunOutputSerializer(
            self.get_scoped(ProjectRun, uuid=run_uuid)).data)


class WorkflowListApi(SubmitApi):
    class InputSerializer(SourceSerializer):
        name = serializers.CharField(required=False, default="", max_length=250)
        steps = serializers.JSONField(
            help_text="[{name, entry_point, parameters, timeout_seconds}, ...]; a parameter "
                      "may hold ${steps.<earlier step>.run_id}")

    @extend_schema(responses=WorkflowOutputSerializer(many=True),
                   summary="Workflows, newest first")
    def get(self, request):
        workflows = self.scoped(Workflow).select_related("run__experiment", "submitted_by") \
            .order_by("-created_at")[:100]
        return Response(WorkflowOutputSerializer(workflows, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: WorkflowOutputSerializer},
                   summary="Run the steps of a project in order, each a child run")
    def post(self, request):
        workflow = self.submit(request, lambda data, **source: services.workflow_submit(
            name=data["name"], steps=data["steps"], **source))
        return Response(WorkflowOutputSerializer(workflow).data, status=201)


class WorkflowDetailApi(OrgApi):
    @extend_schema(responses=WorkflowOutputSerializer, summary="One workflow and its steps")
    def get(self, request, workflow_uuid):
        return Response(WorkflowOutputSerializer(
            self.get_scoped(Workflow, uuid=workflow_uuid)).data)


class WorkflowCancelApi(OrgApi):
    @extend_schema(request=None, responses=WorkflowOutputSerializer,
                   summary="Cancel: the current step is killed, the later ones not run")
    def post(self, request, workflow_uuid):
        workflow = services.workflow_cancel(
            workflow=self.get_scoped(Workflow, uuid=workflow_uuid), actor=self.actor())
        return Response(WorkflowOutputSerializer(workflow).data)
