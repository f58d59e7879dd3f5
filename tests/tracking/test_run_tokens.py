"""The short-lived token a project run hands its command: writes to that run only."""

import json

import pytest
from django.test import Client
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEvent
from tenancy.services import token_create_for_run
from tracking.models import Metric, Param, Run
from tracking.services import experiments as experiment_services
from tracking.services import logged_models as model_services
from tracking.services import runs as run_services

SETUP = Actor.command("test-setup")
API = "/api/2.0/mlflow/"


@pytest.fixture
def scoped(personas):
    exp = experiment_services.experiment_create(org=personas.org_a, name="exp", actor=SETUP)
    own = run_services.run_create(experiment=exp, actor=SETUP, run_name="project-run")
    other = run_services.run_create(experiment=exp, actor=SETUP, run_name="someone-else")
    token, raw = token_create_for_run(run=own, user=personas.alice.user, actor=SETUP,
                                      ttl_seconds=600)
    return exp, own, other, token, raw


def send(raw, method, path, fields=None):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    if method == "GET":
        return client.get(API + path, fields or {})
    return client.generic(method, API + path, json.dumps(fields or {}),
                          content_type="application/json")


def put_artifact(raw, path, data=b"hello"):
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}").generic(
        "PUT", f"/api/2.0/mlflow-artifacts/artifacts/{path}", data,
        content_type="application/octet-stream")


def test_the_token_writes_to_its_run_and_models_logged_from_it(scoped):
    exp, own, _, _, raw = scoped
    metric = {"key": "m", "value": 1.0, "timestamp": 1, "step": 0}
    assert send(raw, "POST", "runs/log-batch", {"run_id": own.run_uuid, "metrics": [metric],
                                                "params": [{"key": "p", "value": "1"}]}
                ).status_code == 200
    assert send(raw, "POST", "runs/set-tag", {"run_id": own.run_uuid, "key": "k",
                                              "value": "v"}).status_code == 200
    created = send(raw, "POST", "logged-models", {"experiment_id": exp.public_id,
                                                  "source_run_id": own.run_uuid})
    assert created.status_code == 200, created.content
    model_id = created.json()["model"]["info"]["model_id"]
    assert send(raw, "PATCH", f"logged-models/{model_id}",
                {"status": "LOGGED_MODEL_READY"}).status_code == 200
    assert put_artifact(raw, f"{exp.public_id}/{own.run_uuid}/artifacts/out.txt"
                        ).status_code == 200
    assert put_artifact(raw, f"{exp.public_id}/models/{model_id}/artifacts/MLmodel"
                        ).status_code == 200
    assert send(raw, "POST", "runs/update", {"run_id": own.run_uuid, "status": "FINISHED",
                                             "end_time": 2}).status_code == 200
    # it reads like its user
    assert send(raw, "GET", "experiments/search", {"max_results": 10}).status_code == 200


def refusals(exp, own, other, foreign_model):
    metric = {"key": "m", "value": 1.0, "timestamp": 1, "step": 0}
    return [
        ("POST", "runs/log-batch", {"run_id": other.run_uuid, "metrics": [metric]}),
        ("POST", "runs/set-tag", {"run_id": other.run_uuid, "key": "k", "value": "v"}),
        ("POST", "runs/delete", {"run_id": other.run_uuid}),
        ("POST", "runs/create", {"experiment_id": exp.public_id}),
        ("POST", "experiments/create", {"name": "new"}),
        ("POST", "experiments/delete", {"experiment_id": exp.public_id}),
        ("POST", "registered-models/create", {"name": "m"}),
        ("POST", "logged-models", {"experiment_id": exp.public_id}),
        ("POST", "logged-models", {"experiment_id": exp.public_id,
                                   "source_run_id": other.run_uuid}),
        ("PATCH", f"logged-models/{foreign_model}", {"status": "LOGGED_MODEL_READY"}),
    ]


def test_every_other_write_is_refused_and_writes_nothing(scoped):
    exp, own, other, _, raw = scoped
    foreign = model_services.logged_model_create(experiment=exp, actor=SETUP,
                                                 source_run=other).model_id
    events = AuditEvent.objects.count()
    for method, path, fields in refusals(exp, own, other, foreign):
        response = send(raw, method, path, fields)
        assert response.status_code == 403, (path, response.content)
        assert response.json()["error_code"] == "PERMISSION_DENIED"
        assert own.run_uuid in response.json()["message"]
    for path in (f"{exp.public_id}/{other.run_uuid}/artifacts/x.txt",
                 f"{exp.public_id}/models/{foreign}/artifacts/MLmodel",
                 f"{exp.public_id}/x.txt"):
        assert put_artifact(raw, path).status_code == 403, path
    assert AuditEvent.objects.count() == events
    assert not Metric.objects.exists() and not Param.objects.exists()
    assert Run.objects.get(pk=other.pk).lifecycle_stage == "active"


def test_the_native_api_refuses_it(scoped, api):
    *_, raw = scoped
    for path in ("/api/v1/me/", "/api/v1/tokens/", "/api/v1/decisions/"):
        response = api(raw).get(path)
        assert response.status_code == 403 and "project run" in response.json()["detail"]


def test_an_expired_or_revoked_run_token_is_401(scoped):
    from tenancy.services import token_revoke

    _, own, _, token, raw = scoped
    type(token).objects.filter(pk=token.pk).update(expires_at=timezone.now())
    assert send(raw, "GET", "runs/get", {"run_id": own.run_uuid}).status_code == 401
    _, raw2 = token_create_for_run(run=own, user=token.user, actor=SETUP, ttl_seconds=60)
    token_revoke(token=type(token).objects.get(run_uuid=own.run_uuid, revoked_at=None,
                                               expires_at__gt=timezone.now()), actor=SETUP)
    assert send(raw2, "GET", "runs/get", {"run_id": own.run_uuid}).status_code == 401


def test_its_creation_is_audited_with_the_run(scoped):
    _, own, _, token, _ = scoped
    event = AuditEvent.objects.filter(action="api_token.created").order_by("seq").last()
    assert event.after["run_uuid"] == own.run_uuid and event.target_id == str(token.pk)


@pytest.mark.postgres_only
def test_project_code_using_the_mlflow_client_logs_into_its_run(transactional_db, personas,
                                                                  mlflow_as, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    exp = experiment_services.experiment_create(org=personas.org_a, name="exp", actor=SETUP)
    own = run_services.run_create(experiment=exp, actor=SETUP, run_name="project-run")
    _, raw = token_create_for_run(run=own, user=personas.alice.user, actor=SETUP,
                                  ttl_seconds=600)
    mlflow_as(raw)
    monkeypatch.setenv("MLFLOW_RUN_ID", own.run_uuid)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", exp.public_id)
    with mlflow.start_run() as run:  # resumes the run named by MLFLOW_RUN_ID
        assert run.info.run_id == own.run_uuid
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("auc", 0.9)
        mlflow.log_text("done", "notes.txt")
        with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|project run"):
            mlflow.MlflowClient().create_run(exp.public_id)
    stored = Run.objects.get(pk=own.pk)
    assert stored.status == "FINISHED"
    assert Param.objects.get(run=stored).value == "0.5"
