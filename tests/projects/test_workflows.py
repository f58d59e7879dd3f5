"""Workflows: steps of a project run in order by a real worker, each a child run of one parent
run, a step's parameters naming the runs of the steps before it."""

import time

import pytest

from audit.models import AuditEvent
from projects.models import ProjectRun, Workflow
from tests.projects.conftest import wait_done, wait_for
from tracking.models import Run, RunTag

pytestmark = pytest.mark.postgres_only
URL = "/api/v1/projects/workflows/"


def wait_workflow(client, workflow_id: str) -> dict:
    return wait_done(client, workflow_id, timeout=240, url=URL)


TRAIN_THEN_REPORT = [
    {"name": "train", "entry_point": "main", "parameters": {"rows": 40}},
    {"name": "report", "entry_point": "report",
     "parameters": {"summary": "runs:/${steps.train.run_id}/summary/metrics.json"}},
]


def test_step_two_reads_step_ones_artifact_and_a_failed_step_stops_the_rest(
        api, personas, projects_worker, example_repo):
    client = api(personas.alice)
    url, head = example_repo
    good = client.post(URL, {"uri": url, "version": "main", "name": "credit pipeline",
                             "steps": TRAIN_THEN_REPORT}, format="json")
    assert good.status_code == 201, good.content
    bad = client.post(URL, {"uri": url, "steps": [
        {"name": "train", "parameters": {"rows": "many"}}, *TRAIN_THEN_REPORT[1:]]},
        format="json").json()

    done = wait_workflow(client, good.json()["id"])
    assert done["status"] == "FINISHED", done
    train, report = done["steps"]
    assert [train["status"], report["status"]] == ["FINISHED", "FINISHED"]
    # the reference became step one's run; the branch was pinned to the commit step one ran
    assert report["parameters"]["summary"] == f"runs:/{train['run_id']}/summary/metrics.json"
    assert train["resolved_commit"] == report["resolved_commit"] == head == report["version"]
    logs = client.get(f"/api/v1/projects/runs/{report['id']}/logs").json()["text"]
    accuracy = Run.objects.get(run_uuid=train["run_id"]).metrics.get(key="accuracy").value
    assert f"earlier accuracy {accuracy:.3f}" in logs
    # one parent run, its children tagged as MLflow's UI nests them
    parent = Run.objects.get(run_uuid=done["run_id"])
    assert parent.status == "FINISHED" and parent.end_time and parent.name == "credit pipeline"
    children = RunTag.objects.filter(key="mlflow.parentRunId", value=parent.run_uuid)
    assert {t.run.run_uuid for t in children} == {train["run_id"], report["run_id"]}
    assert {t.run.name for t in children} == {"train", "report"}

    failed = wait_workflow(client, bad["id"])
    assert failed["status"] == "FAILED" and "Step 'train' ended FAILED" in failed["status_message"]
    assert "rows" in failed["steps"][0]["status_message"]
    assert failed["steps"][1]["status"] == "KILLED"
    assert "Not run" in failed["steps"][1]["status_message"]
    assert Run.objects.get(run_uuid=failed["run_id"]).status == "FAILED"
    assert Run.objects.get(run_uuid=failed["steps"][1]["run_id"]).status == "KILLED"

    actions = list(AuditEvent.objects.filter(org=personas.org_a, target_type="workflow")
                   .values_list("action", flat=True))
    assert actions.count("workflow.submitted") == 2 and actions.count("workflow.ended") == 2
    assert AuditEvent.objects.filter(action="project_run.released").count() == 1


def test_cancelling_a_workflow_kills_its_step_and_the_rest_are_not_run(api, personas,
                                                                       example_repo):
    client = api(personas.alice)
    submitted = client.post(URL, {"uri": example_repo[0], "steps": TRAIN_THEN_REPORT},
                            format="json").json()
    assert [s["status"] for s in submitted["steps"]] == ["QUEUED", "WAITING"]
    cancelled = client.post(f"{URL}{submitted['id']}/cancel")
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == "KILLED"
    assert [s["status"] for s in body["steps"]] == ["KILLED", "KILLED"]
    assert Run.objects.get(run_uuid=body["run_id"]).status == "KILLED"
    assert client.post(f"{URL}{submitted['id']}/cancel").status_code == 409
    # a step's own cancel is its workflow's: nothing is left to cancel
    step = submitted["steps"][1]["id"]
    assert client.post(f"/api/v1/projects/runs/{step}/cancel").status_code == 409


@pytest.mark.parametrize(("steps", "field"), [
    ([], "steps"),
    ("train", "steps"),
    ([{"name": "a b"}], "steps[0].name"),
    ([{"name": "x"}, {"name": "x"}], "steps[1].name"),
    ([{"entry_point": "main", "colour": "red"}], "steps[0]"),
    ([{"parameters": {"p": [1]}}], "steps[0].parameters"),
    ([{"parameters": {"p": "${steps.later.run_id}"}}, {"name": "later"}],
     "steps[0].parameters.p"),
    ([{"timeout_seconds": 0}], "steps[0].timeout_seconds"),
])
def test_bad_steps_are_refused_naming_the_field_and_nothing_is_written(api, personas,
                                                                       example_repo, steps,
                                                                       field):
    client = api(personas.alice)
    runs, events = Run.objects.count(), AuditEvent.objects.count()
    response = client.post(URL, {"uri": example_repo[0], "steps": steps}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"], response.json()
    assert (Run.objects.count(), AuditEvent.objects.count()) == (runs, events)
    assert not Workflow.objects.exists() and not ProjectRun.objects.exists()


def test_charlie_gets_404_for_org_a_workflows_and_a_viewer_cannot_submit(api, personas,
                                                                         example_repo):
    alice, charlie = api(personas.alice), api(personas.charlie)
    submitted = alice.post(URL, {"uri": example_repo[0], "steps": TRAIN_THEN_REPORT},
                           format="json").json()
    assert charlie.get(f"{URL}{submitted['id']}/").status_code == 404
    assert charlie.post(f"{URL}{submitted['id']}/cancel").status_code == 404
    assert charlie.get(URL).json() == []
    assert [w["id"] for w in alice.get(URL).json()] == [submitted["id"]]
    assert alice.get(f"{URL}{submitted['id']}/").json()["status"] == "QUEUED"
    assert api(personas.bob).post(URL, {"uri": example_repo[0], "steps": TRAIN_THEN_REPORT},
                                  format="json").status_code == 403
    assert Workflow.objects.filter(org=personas.org_a).count() == 1


def test_a_submission_made_while_the_broker_is_down_runs_once_it_is_back(
        api, personas, projects_worker, example_repo, settings):
    from celery import current_app

    from config.jobs.runner import sweep
    from tests.projects.conftest import broker_down

    client = api(personas.alice)
    with broker_down(current_app):
        response = client.post("/api/v1/projects/runs/", {"uri": example_repo[0],
                                                          "parameters": {"rows": 30}},
                               format="json")
    assert response.status_code == 201  # stored, although it could not be handed over
    submitted = response.json()
    time.sleep(3)
    assert ProjectRun.objects.get(uuid=submitted["id"]).status == "QUEUED"
    settings.LEDGERFLOW_JOB_RESEND_SECONDS = 0
    assert sweep()["resent"] == 1
    wait_for(lambda: ProjectRun.objects.get(uuid=submitted["id"]).status == "FINISHED",
             timeout=180)
    assert ProjectRun.objects.get(uuid=submitted["id"]).attempt == 1


def test_the_admin_lists_workflows_and_cancels_through_the_service(client, api, personas,
                                                                   example_repo):
    from tenancy.models import User

    submitted = api(personas.alice).post(URL, {"uri": example_repo[0], "name": "nightly",
                                               "steps": TRAIN_THEN_REPORT}, format="json").json()
    client.force_login(User.objects.create_superuser("root@example.com", "pw"))
    listing = client.get("/admin/projects/workflow/")
    assert listing.status_code == 200 and b"nightly" in listing.content
    workflow = Workflow.objects.get(uuid=submitted["id"])
    page = client.get(f"/admin/projects/workflow/{workflow.pk}/change/")
    assert page.status_code == 200 and b"report" in page.content
    first = ProjectRun.objects.get(workflow=workflow, step_index=0)
    response = client.post("/admin/projects/projectrun/",
                           {"action": "cancel", "_selected_action": [first.pk]})
    assert response.status_code == 302
    workflow.refresh_from_db()
    assert workflow.status == "KILLED"
    ended = AuditEvent.objects.filter(action="workflow.ended").get()
    assert ended.actor_label == "root@example.com (admin)"
    assert client.post(f"/admin/projects/workflow/{workflow.pk}/delete/",
                       {"post": "yes"}).status_code == 403
