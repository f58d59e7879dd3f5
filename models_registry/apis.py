"""Native API of the registry: scoring with decision records, approvals of protected aliases,
decisions, and package downloads. The MLflow protocol lives in mlflow_api.py."""


from django.http import FileResponse
from drf_orjson_renderer.parsers import ORJSONParser
from drf_orjson_renderer.renderers import ORJSONRenderer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from config.exceptions import ApplicationError
from models_registry import decisions as decision_services
from models_registry import scoring, selectors, services
from models_registry.models import (
    AliasApproval,
    ApprovalStatus,
    Decision,
    DecisionSource,
    ModelVersion,
    ProtectedAlias,
)
from models_registry.packages import package_archive, require_ready
from tenancy.api import OrgApi
from tenancy.roles import Capability

MAX_IMPORT = 10000


# --- scoring -------------------------------------------------------------------------------------

class DecisionFieldsSerializer(serializers.Serializer):
    """What a scoring request may add so that each row is recorded as a decision."""

    subject = serializers.CharField(required=False, max_length=500,
                                    help_text="customer identifier (one-row requests); stored "
                                              "only as the organization's HMAC of it")
    subjects = serializers.ListField(child=serializers.CharField(max_length=500), required=False,
                                     help_text="one customer identifier per input row")
    purpose = serializers.CharField(required=False, max_length=500)
    params = serializers.DictField(required=False, help_text="inference parameters")
    legal_basis = serializers.CharField(required=False, max_length=500, default="")
    art22_ground = serializers.CharField(required=False, max_length=500, default="")
    feature_pipeline_version = serializers.CharField(required=False, max_length=200, default="")
    provenance = serializers.DictField(required=False, default=dict,
                                       help_text="where each input came from, by feature")
    threshold = serializers.FloatField(required=False, allow_null=True, default=None)
    policy_version = serializers.CharField(required=False, max_length=200, default="")
    outcome_labels = serializers.ListField(child=serializers.CharField(max_length=100),
                                           required=False, min_length=2, max_length=2,
                                           help_text="[below threshold, at or above]")
    recipients = serializers.ListField(child=serializers.CharField(max_length=300),
                                       required=False, default=list)

    def validate(self, attrs):
        if "subject" in attrs and "subjects" in attrs:
            raise serializers.ValidationError({"subjects": "Send 'subject' or 'subjects', "
                                                           "not both."})
        if ("subject" in attrs or "subjects" in attrs) and not attrs.get("purpose"):
            raise serializers.ValidationError({"purpose": "Required when a subject is given: "
                                                          "why the decision is made."})
        return attrs


class PredictInputSerializer(DecisionFieldsSerializer):
    dataframe_split = serializers.JSONField(required=False)
    dataframe_records = serializers.JSONField(required=False)
    instances = serializers.JSONField(required=False)
    inputs = serializers.JSONField(required=False)


class ScoredModelSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    alias = serializers.CharField(allow_blank=True)
    package_digest = serializers.CharField()


class DecisionSummarySerializer(serializers.Serializer):
    decision_id = serializers.UUIDField()
    subject_ref = serializers.CharField()
    raw_score = serializers.FloatField(allow_null=True)
    outcome = serializers.CharField()
    base_value = serializers.FloatField(allow_null=True)
    contributions = serializers.DictField(child=serializers.FloatField())
    contribution_method = serializers.CharField()
    contribution_scale = serializers.CharField()


class PredictOutputSerializer(serializers.Serializer):
    predictions = serializers.ListField(child=serializers.JSONField())
    model = ScoredModelSerializer()
    decisions = DecisionSummarySerializer(many=True, required=False)


SUMMARY_FIELDS = ("subject_ref", "raw_score", "outcome", "base_value", "contributions",
                  "contribution_method", "contribution_scale")


def _labels(fields: dict) -> list[str]:
    if fields.get("threshold") is None:
        return []
    return fields.get("outcome_labels") or ["below_threshold", "at_or_above_threshold"]


def _outcome(prediction, score, fields: dict) -> str:
    if fields.get("threshold") is not None and score is not None:
        below, above = _labels(fields)
        return above if score >= fields["threshold"] else below
    # the scorer's answer is plain JSON already (scorer_process.jsonable)
    return str(prediction[0] if isinstance(prediction, list) and len(prediction) == 1
               else prediction)


class _PredictApi(OrgApi):
    capabilities = {"POST": Capability.READ}  # recording decisions needs WRITE, checked below
    # a thousand rows in, a thousand decisions out: orjson reads and writes them in C
    parser_classes = [ORJSONParser]
    renderer_classes = [ORJSONRenderer]

    def score(self, request, version: ModelVersion, alias: str = "") -> Response:
        if not isinstance(request.data, dict):
            raise ApplicationError("The body must be a JSON object.", kind="invalid")
        # The data itself is parsed (and checked) by MLflow's parser in the model's scorer;
        # validating it here too would re-encode every row.
        fields = DecisionFieldsSerializer(data={k: v for k, v in request.data.items()
                                                if k not in scoring.INPUT_FORMATS})
        fields.is_valid(raise_exception=True)
        fields = fields.validated_data
        subjects = fields.get("subjects") or ([fields["subject"]] if "subject" in fields else [])
        if subjects and not self.access.can(Capability.WRITE):
            raise PermissionDenied(f"Recording decisions needs the write capability; your "
                                   f"role '{self.access.role}' does not have it.")
        require_ready(version)
        params = request.data.get("params")
        scored = scoring.predict(version, request.data, params=params, explain=bool(subjects))
        if subjects and len(subjects) != len(scored.rows):
            raise ApplicationError(f"{len(subjects)} subject(s) for {len(scored.rows)} input "
                                   "row(s); send one per row.", kind="invalid",
                                   fields={"subjects": ["one per input row"]})
        predictions = scored.predictions
        body = {"predictions": predictions,
                "model": {"name": version.registered_model.name, "version": version.version,
                          "alias": alias, "package_digest": version.package_digest}}
        if subjects:
            body["decisions"] = self._record(version, alias, scored, subjects, predictions,
                                             fields, params)
        return Response(body)

    def _record(self, version, alias, scored, subjects, predictions, fields, request_params):
        explanation, rows = scored.explanation, scored.rows
        if fields["threshold"] is not None and None in explanation.scores:
            raise ApplicationError("A threshold was given, but this model gives no numeric "
                                   "score to compare it with; nothing was recorded.",
                                   kind="invalid", fields={"threshold": ["no score to apply"]})
        items = []
        for i, (subject, row) in enumerate(zip(subjects, rows, strict=True)):
            prediction = predictions[i] if len(predictions) == len(rows) else predictions
            score = scoring.finite(explanation.scores[i])
            items.append(decision_services.DecisionInput(
                subject=subject, inputs=row, purpose=fields["purpose"],
                params=request_params,
                raw_score=score, prediction=prediction,
                outcome=_outcome(prediction, score, fields),
                outcome_labels=_labels(fields),
                contributions=explanation.contributions[i],
                contribution_method=explanation.method,
                contribution_scale=explanation.scale, base_value=explanation.base_value,
                reference=scoring.reference_of(version), legal_basis=fields["legal_basis"],
                art22_ground=fields["art22_ground"],
                feature_pipeline_version=fields["feature_pipeline_version"],
                provenance=fields["provenance"], threshold=fields["threshold"],
                policy_version=fields["policy_version"], recipients=fields["recipients"]))
        records = decision_services.decisions_record(org=self.org, version=version, items=items,
                                                     actor=self.actor(), alias=alias)
        return [{"decision_id": r["decision_id"], **{k: r[k] for k in SUMMARY_FIELDS}}
                for r in records]


class VersionPredictApi(_PredictApi):
    @extend_schema(request=PredictInputSerializer, responses=PredictOutputSerializer,
                   summary="Score rows with a model version; with subjects, record decisions")
    def post(self, request, name: str, version: str):
        model_version = selectors.model_version_to_score(org=self.org, name=name,
                                                         version=version)
        return self.score(request, model_version)


class AliasPredictApi(_PredictApi):
    @extend_schema(request=PredictInputSerializer, responses=PredictOutputSerializer,
                   summary="Score rows with the version an alias names; with subjects, record "
                           "decisions")
    def post(self, request, name: str, alias: str):
        model_version = selectors.model_version_to_score_by_alias(org=self.org, name=name,
                                                                  alias=alias)
        return self.score(request, model_version, alias=alias)


# --- packages ------------------------------------------------------------------------------------

class PackageApi(OrgApi):
    @extend_schema(responses={(200, "application/gzip"): bytes},
                   summary="The READY package as .tar.gz: model files and manifest")
    def get(self, request, name: str, version: str):
        model_version = selectors.model_version_get(org=self.org, name=name, version=version)
        spool, filename = package_archive(model_version)
        return FileResponse(spool, as_attachment=True, filename=filename,
                            content_type="application/gzip")


class ManifestApi(OrgApi):
    @extend_schema(responses={200: OpenApiTypes.OBJECT},
                   summary="The package manifest: every file's SHA-256 and the package digest")
    def get(self, request, name: str, version: str):
        model_version = selectors.model_version_get(org=self.org, name=name, version=version)
        require_ready(model_version)
        return Response(model_version.manifest)


# --- approvals -----------------------------------------------------------------------------------

class ApprovalOutputSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name")
    version = serializers.IntegerField(source="model_version.version", allow_null=True)
    requested_by = serializers.EmailField(source="requested_by.email")
    decided_by = serializers.EmailField(source="decided_by.email", allow_null=True)

    class Meta:
        model = AliasApproval
        fields = ["id", "model", "alias", "version", "status", "requested_by", "requested_at",
                  "reason", "decided_by", "decided_at", "comment"]


class ApprovalListApi(OrgApi):
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=ApprovalStatus.choices, required=False)

    class InputSerializer(serializers.Serializer):
        model = serializers.CharField()
        alias = serializers.CharField()
        version = serializers.IntegerField(min_value=1)
        reason = serializers.CharField(required=False, default="", allow_blank=True)

    @extend_schema(parameters=[FilterSerializer], responses=ApprovalOutputSerializer(many=True),
                   summary="Alias approval requests, newest first")
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        approvals = self.scoped(AliasApproval).select_related(
            "registered_model", "model_version", "requested_by", "decided_by") \
            .order_by("-requested_at", "-pk")
        if "status" in filters.validated_data:
            approvals = approvals.filter(status=filters.validated_data["status"])
        return Response(ApprovalOutputSerializer(approvals[:500], many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ApprovalOutputSerializer},
                   summary="Ask to point a protected alias at a version")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        data = data.validated_data
        version = selectors.model_version_get(org=self.org, name=data["model"],
                                              version=data["version"])
        if not selectors.alias_is_protected(org=self.org, alias=data["alias"]):
            raise ApplicationError(f"Alias '{data['alias']}' is not protected; set it directly.",
                                   kind="invalid", fields={"alias": ["not protected"]})
        try:
            services.alias_set(version=version, alias=data["alias"], actor=self.actor(),
                               reason=data["reason"])
        except services.ApprovalRequired as pending:
            approval = selectors.approval_get(org=self.org, approval_id=pending.approval.pk)
            return Response(ApprovalOutputSerializer(approval).data, status=201)
        raise ApplicationError("The alias was set without approval.", kind="conflict")


class ApprovalDetailApi(OrgApi):
    @extend_schema(responses=ApprovalOutputSerializer, summary="One approval request")
    def get(self, request, approval_id: int):
        return Response(ApprovalOutputSerializer(
            selectors.approval_get(org=self.org, approval_id=approval_id)).data)


class _ApprovalDecisionApi(OrgApi):
    approve: bool
    capabilities = {"POST": Capability.APPROVE}

    class InputSerializer(serializers.Serializer):
        comment = serializers.CharField(required=False, default="", allow_blank=True,
                                        max_length=2000)

    def post(self, request, approval_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval = selectors.approval_get(org=self.org, approval_id=approval_id)
        services.approval_decide(approval=approval, approve=self.approve, actor=self.actor(),
                                 comment=data.validated_data["comment"])
        return Response(ApprovalOutputSerializer(
            selectors.approval_get(org=self.org, approval_id=approval_id)).data)


class ApprovalApproveApi(_ApprovalDecisionApi):
    approve = True

    @extend_schema(request=_ApprovalDecisionApi.InputSerializer,
                   responses=ApprovalOutputSerializer,
                   summary="Approve (and apply) a request; not your own")
    def post(self, request, approval_id: int):
        return super().post(request, approval_id)


class ApprovalRejectApi(_ApprovalDecisionApi):
    approve = False

    @extend_schema(request=_ApprovalDecisionApi.InputSerializer,
                   responses=ApprovalOutputSerializer, summary="Reject a request; not your own")
    def post(self, request, approval_id: int):
        return super().post(request, approval_id)


class ApprovalCancelApi(OrgApi):
    @extend_schema(request=None, responses=ApprovalOutputSerializer,
                   summary="Withdraw your own pending request")
    def post(self, request, approval_id: int):
        approval = selectors.approval_get(org=self.org, approval_id=approval_id)
        services.approval_cancel(approval=approval, actor=self.actor())
        return Response(ApprovalOutputSerializer(
            selectors.approval_get(org=self.org, approval_id=approval_id)).data)


class ProtectedAliasSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProtectedAlias
        fields = ["id", "alias", "created_at"]


class ProtectedAliasListApi(OrgApi):
    capabilities = {"GET": Capability.READ, "POST": Capability.ADMIN}

    class InputSerializer(serializers.Serializer):
        alias = serializers.CharField(max_length=256)

    @extend_schema(responses=ProtectedAliasSerializer(many=True),
                   summary="Aliases that move only by approval")
    def get(self, request):
        return Response(ProtectedAliasSerializer(
            self.scoped(ProtectedAlias).order_by("alias"), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ProtectedAliasSerializer},
                   summary="Protect an alias name on every model of the organization")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        protected = services.protected_alias_add(org=self.org, alias=data.validated_data["alias"],
                                                 actor=self.actor())
        return Response(ProtectedAliasSerializer(protected).data, status=201)


class ProtectedAliasDetailApi(OrgApi):
    capabilities = {"DELETE": Capability.ADMIN}

    @extend_schema(responses={204: None}, summary="Stop protecting an alias")
    def delete(self, request, protected_id: int):
        services.protected_alias_remove(protected=self.get_scoped(ProtectedAlias, pk=protected_id),
                                        actor=self.actor())
        return Response(status=204)


# --- decisions -----------------------------------------------------------------------------------

class DecisionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Decision
        fields = ["decision_id", "created_at", "source", "subject_ref", "purpose", "legal_basis",
                  "art22_ground", "model_name", "model_version_number", "package_digest",
                  "alias", "feature_pipeline_version", "inputs", "params", "provenance",
                  "raw_score", "prediction", "threshold", "policy_version", "outcome",
                  "outcome_labels", "contributions", "contribution_method",
                  "contribution_scale", "base_value", "reference", "recipients",
                  "reviewer", "review_action", "reviewed_at"]


class DecisionImportItemSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=500)
    purpose = serializers.CharField(max_length=500)
    inputs = serializers.DictField()
    params = serializers.DictField(required=False, default=dict)
    created_at = serializers.DateTimeField(required=False)
    raw_score = serializers.FloatField(required=False, allow_null=True, default=None)
    prediction = serializers.JSONField(required=False, default=None)
    outcome = serializers.CharField(max_length=200)
    outcome_labels = serializers.ListField(child=serializers.CharField(max_length=100),
                                           required=False, default=list, min_length=2,
                                           max_length=2, help_text="[below threshold, at or above]")
    contributions = serializers.DictField(child=serializers.FloatField(), required=False,
                                          default=dict)
    contribution_method = serializers.CharField(max_length=100, required=False, default="")
    contribution_scale = serializers.CharField(max_length=40, required=False, default="")
    base_value = serializers.FloatField(required=False, allow_null=True, default=None)
    reference = serializers.DictField(required=False, default=dict)
    legal_basis = serializers.CharField(max_length=500, required=False, default="")
    art22_ground = serializers.CharField(max_length=500, required=False, default="")
    feature_pipeline_version = serializers.CharField(max_length=200, required=False, default="")
    provenance = serializers.DictField(required=False, default=dict)
    threshold = serializers.FloatField(required=False, allow_null=True, default=None)
    policy_version = serializers.CharField(max_length=200, required=False, default="")
    recipients = serializers.ListField(child=serializers.CharField(max_length=300),
                                       required=False, default=list)
    reviewer = serializers.CharField(max_length=256, required=False, default="")
    review_action = serializers.CharField(max_length=200, required=False, default="")
    reviewed_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate(self, attrs):
        if attrs.get("contributions") and not attrs.get("contribution_method"):
            raise serializers.ValidationError(
                {"contribution_method": "Name the method the contributions were computed with."})
        return attrs


class DecisionListApi(OrgApi):
    capabilities = {"GET": Capability.COMPLIANCE, "POST": Capability.WRITE}

    class FilterSerializer(serializers.Serializer):
        subject = serializers.CharField(required=False,
                                        help_text="customer identifier; matched by its HMAC")
        model = serializers.CharField(required=False)
        version = serializers.IntegerField(required=False, min_value=1)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)

    class InputSerializer(serializers.Serializer):
        model = serializers.CharField()
        version = serializers.IntegerField(min_value=1)
        decisions = DecisionImportItemSerializer(many=True, allow_empty=False,
                                                 max_length=MAX_IMPORT)

    @extend_schema(parameters=[FilterSerializer], responses=DecisionOutputSerializer(many=True),
                   summary="Decision records, newest first")
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        found = self.scoped(Decision).order_by("-created_at", "-pk")
        if "subject" in data:
            # Matched by its HMAC; an organization without a key has recorded no one.
            ref = decision_services.subject_ref_lookup(self.org, data["subject"])
            found = found.filter(subject_ref=ref) if ref else found.none()
        if "model" in data:
            found = found.filter(model_name=data["model"])
        if "version" in data:
            found = found.filter(model_version_number=data["version"])
        return Response(DecisionOutputSerializer(found[:data["limit"]], many=True).data)

    @extend_schema(request=InputSerializer, responses={201: DecisionOutputSerializer(many=True)},
                   summary="Record decisions made elsewhere with a registered model version")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        data = data.validated_data
        version = selectors.model_version_get(org=self.org, name=data["model"],
                                              version=data["version"])
        require_ready(version)
        items = [decision_services.DecisionInput(**item) for item in data["decisions"]]
        records = decision_services.decisions_record(
            org=self.org, version=version, items=items, actor=self.actor(),
            source=DecisionSource.IMPORTED)
        return Response(DecisionOutputSerializer(records, many=True).data, status=201)


class DecisionDetailApi(OrgApi):
    capabilities = {"GET": Capability.COMPLIANCE}

    @extend_schema(responses=DecisionOutputSerializer, summary="One decision record")
    def get(self, request, decision_id):
        return Response(DecisionOutputSerializer(
            self.get_scoped(Decision, decision_id=decision_id)).data)


class DecisionReviewApi(OrgApi):
    capabilities = {"POST": Capability.WRITE}

    class InputSerializer(serializers.Serializer):
        action = serializers.CharField(max_length=200)

    @extend_schema(request=InputSerializer, responses=DecisionOutputSerializer,
                   parameters=[OpenApiParameter("decision_id", str, OpenApiParameter.PATH)],
                   summary="Record that you reviewed an automated decision, and what you did")
    def post(self, request, decision_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decision = decision_services.decision_review(
            decision=self.get_scoped(Decision, decision_id=decision_id),
            action=data.validated_data["action"], actor=self.actor())
        return Response(DecisionOutputSerializer(decision).data)
