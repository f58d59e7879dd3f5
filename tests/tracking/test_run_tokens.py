"""The short-lived token a project run hands its command: an allow-list of what `mlflow run`
code needs (tracking/mlflow_api/scope.py), dead once its run ends."""

import io
import json
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.test import Client
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEvent
from config.exceptions import ApplicationError
from tenancy.services import token_create_for_run, token_revoke
from tracking.artifacts import artifact_upload
from tracking.models import Experiment, LoggedModel, Metric, Param, Run, RunTag
from tracking.services import experiments as experiment_services
from tracking.services import logged_models as model_services
from tracking.services import runs as run_services

SETUP = Actor.command("test-setup")
API = "/api/2.0/mlflow/"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts/"
PARENT = "mlflow.parentRunId"
METRIC = {"key": "m", "value": 1.0, "timestamp": 1, "step": 0}


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
        "PUT", ARTIFACTS + path, data, content_type="application/octet-stream")


def get_artifact(raw, path, listing=False):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client.get(ARTIFACTS, {"path": path}) if listing else client.get(ARTIFACTS + path)


def upload(org, path, data=b"hello"):
    artifact_upload(org=org, path=path, stream=io.BytesIO(data), length=len(data), actor=SETUP)


def root_of(run) -> str:
    return run.artifact_uri.removeprefix("mlflow-artifacts:/")


def snapshot() -> dict[str, int]:
    """Rows of every tracking and registry model, and audit events: an event is written with
    every change (DESIGN.md invariant 1), so an unchanged count means nothing changed."""
    counts = {model.__name__: model.objects.count()
              for app in ("tracking", "models_registry", "tenancy")
              for model in apps.get_app_config(app).get_models()}
    counts["AuditEvent"] = AuditEvent.objects.count()
    return counts


def assert_denied(response, run) -> None:
    assert response.status_code == 403, response.content
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert run.run_uuid in response.json()["message"]


def assert_dead(response) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["error_code"] == "UNAUTHENTICATED"


# --- what it may do ------------------------------------------------------------------------------

def test_the_token_writes_to_its_run_and_models_logged_from_it(scoped):
    exp, own, _, _, raw = scoped
    assert send(raw, "POST", "runs/log-batch", {"run_id": own.run_uuid, "metrics": [METRIC],
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
    assert send(raw, "POST", f"logged-models/{model_id}/params",
                {"params": [{"key": "a", "value": "1"}]}).status_code == 200
    assert send(raw, "POST", "runs/log-batch", {"run_id": own.run_uuid,  # against its model
                                                "metrics": [{**METRIC, "model_id": model_id}]}
                ).status_code == 200
    assert send(raw, "POST", "runs/outputs", {"run_id": own.run_uuid,
                                              "models": [{"model_id": model_id}]}
                ).status_code == 200
    assert put_artifact(raw, f"{root_of(own)}/out.txt").status_code == 200
    assert put_artifact(raw, f"{exp.public_id}/models/{model_id}/artifacts/MLmodel"
                        ).status_code == 200
    assert send(raw, "POST", "runs/update", {"run_id": own.run_uuid, "status": "FINISHED",
                                             "end_time": 2}).status_code == 200


def test_log_batch_to_its_run_costs_one_query_more_than_a_members(scoped, personas):
    """The hot path: the run's state (is it still running?) is the only extra lookup."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, own, _, _, raw = scoped
    counts = []
    for step, token in enumerate((personas.alice.raw_token, raw)):
        body = {"run_id": own.run_uuid, "metrics": [{**METRIC, "step": step}]}
        with CaptureQueriesContext(connection) as queries:
            assert send(token, "POST", "runs/log-batch", body).status_code == 200
        counts.append(len(queries))
    assert counts[1] == counts[0] + 1


def test_it_reads_its_run_its_models_and_its_experiment(scoped):
    exp, own, _, _, raw = scoped
    model = model_services.logged_model_create(experiment=exp, actor=SETUP, source_run=own)
    run_services.run_log_batch(run=own, actor=SETUP, metrics=[METRIC], params=[], tags=[],
                               payload={})
    upload(own.org, f"{root_of(own)}/notes.txt")
    allowed = [
        ("GET", "server-info", {}),
        ("GET", "runs/get", {"run_id": own.run_uuid}),
        ("GET", "metrics/get-history", {"run_id": own.run_uuid, "metric_key": "m"}),
        ("GET", "metrics/get-history-bulk-interval", {"run_ids": [own.run_uuid],
                                                      "metric_key": "m"}),
        ("GET", "artifacts/list", {"run_id": own.run_uuid}),
        ("GET", "experiments/get", {"experiment_id": exp.public_id}),
        ("GET", "experiments/get-by-name", {"experiment_name": exp.name}),
        ("POST", "runs/search", {"experiment_ids": [exp.public_id]}),
        ("GET", f"logged-models/{model.model_id}", {}),
        ("GET", f"logged-models/{model.model_id}/artifacts/directories", {}),
    ]
    for method, path, fields in allowed:
        response = send(raw, method, path, fields)
        assert response.status_code == 200, (path, response.content)
    assert get_artifact(raw, f"{root_of(own)}/notes.txt").status_code == 200
    assert get_artifact(raw, root_of(own), listing=True).json()["files"][0]["path"] == \
        "notes.txt"
    assert Client().get("/health").status_code == 200
    assert Client().get("/version").status_code == 200


def test_it_creates_child_runs_and_writes_to_them(scoped):
    exp, own, _, _, raw = scoped
    created = send(raw, "POST", "runs/create", {
        "experiment_id": exp.public_id, "tags": [{"key": PARENT, "value": own.run_uuid}]})
    assert created.status_code == 200, created.content
    child = created.json()["run"]["info"]["run_id"]
    grandchild = send(raw, "POST", "runs/create", {
        "experiment_id": exp.public_id, "tags": [{"key": PARENT, "value": child}]}
    ).json()["run"]["info"]["run_id"]
    for run_id in (child, grandchild):
        assert send(raw, "POST", "runs/log-batch", {"run_id": run_id, "metrics": [METRIC]}
                    ).status_code == 200
        assert send(raw, "GET", "runs/get", {"run_id": run_id}).status_code == 200
        run = Run.objects.get(run_uuid=run_id)
        assert put_artifact(raw, f"{root_of(run)}/x.txt").status_code == 200
        model = send(raw, "POST", "logged-models", {"experiment_id": exp.public_id,
                                                    "source_run_id": run_id})
        assert model.status_code == 200, model.content
        assert send(raw, "POST", "runs/update", {"run_id": run_id, "status": "FINISHED"}
                    ).status_code == 200
    assert Metric.objects.filter(run__run_uuid__in=[child, grandchild]).count() == 2
    # an ended child run does not end its parent's token
    assert send(raw, "POST", "runs/log-batch", {"run_id": own.run_uuid, "metrics": [METRIC]}
                ).status_code == 200


def test_descendants_are_followed_only_to_a_depth(scoped):
    from tracking.mlflow_api.scope import MAX_DEPTH

    exp, own, _, _, raw = scoped
    chain = [own]
    for depth in range(MAX_DEPTH + 1):
        chain.append(run_services.run_create(experiment=exp, actor=SETUP,
                                             run_name=f"level-{depth + 1}",
                                             tags={PARENT: chain[-1].run_uuid}))
    deepest_allowed, too_deep = chain[MAX_DEPTH], chain[MAX_DEPTH + 1]
    assert send(raw, "POST", "runs/set-tag", {"run_id": deepest_allowed.run_uuid, "key": "k",
                                              "value": "v"}).status_code == 200
    assert_denied(send(raw, "POST", "runs/set-tag", {"run_id": too_deep.run_uuid, "key": "k",
                                                     "value": "v"}), own)


def _with_inputs(personas, exp):
    """A run token given an input run and version 1 of a registered model (version 2 not)."""
    from models_registry import services as registry

    other_exp = experiment_services.experiment_create(org=personas.org_a, name="training",
                                                      actor=SETUP)
    given = run_services.run_create(experiment=other_exp, actor=SETUP, run_name="given")
    run_services.run_log_batch(run=given, actor=SETUP, metrics=[METRIC], params=[], tags=[],
                               payload={})
    upload(personas.org_a, f"{root_of(given)}/data.csv")
    trained = run_services.run_create(experiment=other_exp, actor=SETUP, run_name="trained")
    upload(personas.org_a, f"{root_of(trained)}/model/MLmodel", b"flavors: {}\n")
    upload(personas.org_a, f"{root_of(trained)}/secret.txt")
    model = registry.registered_model_create(org=personas.org_a, name="credit", actor=SETUP)
    for _ in range(2):
        registry.model_version_create(model=model, actor=SETUP,
                                      source=f"runs:/{trained.run_uuid}/model")
    own = run_services.run_create(experiment=exp, actor=SETUP, run_name="project-run")
    _, raw = token_create_for_run(run=own, user=personas.alice.user, actor=SETUP,
                                  ttl_seconds=600, reads={"runs": [given.run_uuid],
                                                          "model_versions": [["credit", "1"]]})
    return own, given, trained, raw


def test_it_reads_the_runs_and_model_versions_it_was_given(scoped, personas):
    exp, *_ = scoped
    own, given, trained, raw = _with_inputs(personas, exp)
    allowed = [
        ("GET", "runs/get", {"run_id": given.run_uuid}),
        ("GET", "artifacts/list", {"run_id": given.run_uuid}),
        ("GET", "metrics/get-history", {"run_id": given.run_uuid, "metric_key": "m"}),
        ("GET", "model-versions/get", {"name": "credit", "version": "1"}),
        ("GET", "model-versions/get-download-uri", {"name": "credit", "version": "1"}),
        ("GET", "registered-models/get", {"name": "credit"}),
        ("GET", "runs/get", {"run_id": trained.run_uuid}),  # resolving the version's runs:/
    ]
    for method, path, fields in allowed:
        response = send(raw, method, path, fields)
        assert response.status_code == 200, (path, response.content)
    assert get_artifact(raw, f"{root_of(given)}/data.csv").status_code == 200
    assert get_artifact(raw, f"{root_of(trained)}/model/MLmodel").status_code == 200
    refused = [
        ("GET", "model-versions/get", {"name": "credit", "version": "2"}),
        ("GET", "model-versions/get-download-uri", {"name": "credit", "version": "2"}),
        ("GET", "artifacts/list", {"run_id": trained.run_uuid}),  # only the model's files
        ("POST", "runs/log-batch", {"run_id": given.run_uuid, "metrics": [METRIC]}),
        ("POST", "runs/set-tag", {"run_id": given.run_uuid, "key": "k", "value": "v"}),
        ("POST", "runs/create", {"experiment_id": exp.public_id,  # a child of an input
                                 "tags": [{"key": PARENT, "value": given.run_uuid}]}),
        ("POST", "model-versions/set-tag", {"name": "credit", "version": "1", "key": "k",
                                            "value": "v"}),
    ]
    before = snapshot()
    for method, path, fields in refused:
        assert_denied(send(raw, method, path, fields), own)
    assert get_artifact(raw, f"{root_of(trained)}/secret.txt").status_code == 403
    assert put_artifact(raw, f"{root_of(given)}/planted.txt").status_code == 403
    assert snapshot() == before


def test_reads_are_checked_when_the_token_is_made(db):
    run = Run(run_uuid="a" * 32, org_id=1)
    for reads in ({"runs": "abc"}, {"runs": [1]}, {"model_versions": [["m"]]},
                  {"model_versions": [["m", "x"]]}, {"experiments": ["1"]}):
        with pytest.raises(ApplicationError, match="A run token reads"):
            token_create_for_run(run=run, user=None, actor=SETUP, ttl_seconds=60, reads=reads)


# --- what it may not do: each probe works with the member's own token ----------------------------

@dataclass
class World:
    exp: Experiment
    own: Run
    other: Run  # another run of the same experiment
    elsewhere: Run  # a run of another experiment
    victim: Experiment
    version_name: str
    raw: str  # the run token
    member: str  # the same user's ordinary token


@pytest.fixture
def world(scoped, personas):
    from models_registry import services as registry

    exp, own, other, _, raw = scoped
    victim = experiment_services.experiment_create(org=personas.org_a, name="victim",
                                                   actor=SETUP)
    elsewhere = run_services.run_create(experiment=victim, actor=SETUP, run_name="elsewhere")
    for run in (other, elsewhere):
        upload(personas.org_a, f"{root_of(run)}/secret.txt")
    for run in (own, elsewhere):
        upload(personas.org_a, f"{root_of(run)}/model/MLmodel", b"flavors: {}\n")
    model = registry.registered_model_create(org=personas.org_a, name="scoring", actor=SETUP)
    registry.model_version_create(model=model, actor=SETUP,
                                  source=f"runs:/{elsewhere.run_uuid}/model")
    return World(exp, own, other, elsewhere, victim, "scoring", raw, personas.alice.raw_token)


def _rpc(method, path, fields):
    return lambda raw: send(raw, method, path, fields)


PROBES = {
    # a write naming some other object, its body also carrying the token's own run_id
    "delete-other-experiment": lambda w: _rpc("POST", "experiments/delete", {
        "experiment_id": w.victim.public_id, "run_id": w.own.run_uuid}),
    "delete-own-experiment": lambda w: _rpc("POST", "experiments/delete", {
        "experiment_id": w.exp.public_id, "run_id": w.own.run_uuid}),
    "create-registered-model": lambda w: _rpc("POST", "registered-models/create", {
        "name": "planted", "run_id": w.own.run_uuid}),
    "set-registered-model-alias": lambda w: _rpc("POST", "registered-models/alias", {
        "name": w.version_name, "alias": "champion", "version": "1", "run_id": w.own.run_uuid}),
    "create-model-version": lambda w: _rpc("POST", "model-versions/create", {
        "name": w.version_name, "source": f"runs:/{w.own.run_uuid}/model",
        "run_id": w.own.run_uuid}),
    "delete-other-run": lambda w: _rpc("POST", "runs/delete", {"run_id": w.other.run_uuid}),
    "delete-own-run": lambda w: _rpc("POST", "runs/delete", {"run_id": w.own.run_uuid}),
    # reads of other runs, experiments and models of the same organization
    "get-other-run": lambda w: _rpc("GET", "runs/get", {"run_id": w.other.run_uuid}),
    "get-run-elsewhere": lambda w: _rpc("GET", "runs/get", {"run_id": w.elsewhere.run_uuid}),
    "metric-history-of-other-run": lambda w: _rpc("GET", "metrics/get-history", {
        "run_id": w.other.run_uuid, "metric_key": "m"}),
    "list-artifacts-of-other-run": lambda w: _rpc("GET", "artifacts/list", {
        "run_id": w.other.run_uuid}),
    "download-artifact-of-other-run": lambda w: lambda raw: get_artifact(
        raw, f"{root_of(w.other)}/secret.txt"),
    "list-proxy-artifacts-of-other-run": lambda w: lambda raw: get_artifact(
        raw, root_of(w.elsewhere), listing=True),
    "search-runs-of-other-experiment": lambda w: _rpc("POST", "runs/search", {
        "experiment_ids": [w.victim.public_id]}),
    "search-runs-of-both-experiments": lambda w: _rpc("POST", "runs/search", {
        "experiment_ids": [w.exp.public_id, w.victim.public_id]}),
    "search-experiments": lambda w: _rpc("GET", "experiments/search", {}),
    "get-other-experiment": lambda w: _rpc("GET", "experiments/get", {
        "experiment_id": w.victim.public_id}),
    "get-other-experiment-by-name": lambda w: _rpc("GET", "experiments/get-by-name", {
        "experiment_name": w.victim.name}),
    "get-model-version-not-given": lambda w: _rpc("GET", "model-versions/get", {
        "name": w.version_name, "version": "1"}),
    "search-registered-models": lambda w: _rpc("GET", "registered-models/search", {}),
    "search-logged-models": lambda w: _rpc("POST", "logged-models/search", {
        "experiment_ids": [w.exp.public_id]}),
    # forged parentRunId: on an unrelated run, or a child outside the experiment
    "tag-unrelated-run-as-child": lambda w: _rpc("POST", "runs/set-tag", {
        "run_id": w.other.run_uuid, "key": PARENT, "value": w.own.run_uuid}),
    "log-batch-forging-parent": lambda w: _rpc("POST", "runs/log-batch", {
        "run_id": w.other.run_uuid, "tags": [{"key": PARENT, "value": w.own.run_uuid}]}),
    "create-child-in-other-experiment": lambda w: _rpc("POST", "runs/create", {
        "experiment_id": w.victim.public_id, "tags": [{"key": PARENT, "value": w.own.run_uuid}]}),
    "create-child-of-unrelated-run": lambda w: _rpc("POST", "runs/create", {
        "experiment_id": w.exp.public_id, "tags": [{"key": PARENT, "value": w.other.run_uuid}]}),
    "write-artifact-of-other-run": lambda w: lambda raw: put_artifact(
        raw, f"{root_of(w.other)}/planted.txt"),
    "write-artifact-beside-own-run": lambda w: lambda raw: put_artifact(
        raw, f"{w.victim.public_id}/{w.own.run_uuid}/artifacts/planted.txt"),
}


@pytest.mark.parametrize("name", PROBES)
def test_a_call_outside_the_scope_is_refused_and_changes_nothing(world, name):
    probe = PROBES[name](world)
    before = snapshot()
    assert_denied(probe(world.raw), world.own)
    assert snapshot() == before
    org = world.own.org
    assert Experiment.objects.filter(org=org, lifecycle_stage="active").count() == 3  # Default
    assert Run.objects.filter(org=org, lifecycle_stage="active").count() == 3
    assert not RunTag.objects.filter(key=PARENT).exists()
    # The same request with the same user's ordinary token works: the probe is real, and the
    # refusal is the run token's scope.
    response = probe(world.member)
    assert response.status_code == 200, response.content


def test_a_run_elsewhere_naming_the_token_run_as_parent_is_not_its_child(world):
    """Someone tags a run of another experiment as a child of the project run: the token still
    may not write to it (children are followed only inside the run's experiment)."""
    run_services.run_log_batch(run=world.elsewhere, actor=SETUP, metrics=[], params=[],
                               tags=[{"key": PARENT, "value": world.own.run_uuid}], payload={})
    before = snapshot()
    fields = {"run_id": world.elsewhere.run_uuid, "metrics": [METRIC]}
    assert_denied(send(world.raw, "POST", "runs/log-batch", fields), world.own)
    assert snapshot() == before
    assert send(world.member, "POST", "runs/log-batch", fields).status_code == 200


def test_every_other_write_is_refused_and_writes_nothing(scoped):
    exp, own, other, _, raw = scoped
    foreign = model_services.logged_model_create(experiment=exp, actor=SETUP,
                                                 source_run=other).model_id
    mine = model_services.logged_model_create(experiment=exp, actor=SETUP,
                                              source_run=own).model_id
    refusals = [
        ("POST", "runs/log-batch", {"run_id": other.run_uuid, "metrics": [METRIC]}),
        ("POST", "runs/log-batch", {"run_id": own.run_uuid, "run_uuid": other.run_uuid,
                                    "metrics": [METRIC]}),
        ("POST", "runs/log-batch", {"run_id": own.run_uuid,  # against another run's model
                                    "metrics": [{**METRIC, "model_id": foreign}]}),
        ("POST", "runs/outputs", {"run_id": own.run_uuid, "models": [{"model_id": foreign}]}),
        ("POST", "runs/set-tag", {"run_id": other.run_uuid, "key": "k", "value": "v"}),
        ("POST", "runs/delete", {"run_id": other.run_uuid}),
        ("POST", "runs/create", {"experiment_id": exp.public_id}),
        ("POST", "experiments/create", {"name": "new"}),
        ("POST", "experiments/delete", {"experiment_id": exp.public_id}),
        ("POST", "registered-models/create", {"name": "m"}),
        ("POST", "logged-models", {"experiment_id": exp.public_id}),
        ("POST", "logged-models", {"experiment_id": exp.public_id,
                                   "source_run_id": other.run_uuid}),
        ("PATCH", f"logged-models/{foreign}", {"status": "LOGGED_MODEL_READY"}),
        ("GET", f"logged-models/{foreign}", {}),
        ("DELETE", f"logged-models/{mine}", {}),
    ]
    before = snapshot()
    for method, path, fields in refusals:
        assert_denied(send(raw, method, path, fields), own)
    for path in (f"{root_of(other)}/x.txt", f"{exp.public_id}/models/{foreign}/artifacts/MLmodel",
                 f"{exp.public_id}/x.txt", f"{exp.public_id}/{own.run_uuid}/x.txt",
                 f"registry/{own.run_uuid}/x"):
        assert put_artifact(raw, path).status_code == 403, path
    assert snapshot() == before
    assert not Metric.objects.exists() and not Param.objects.exists()
    assert Run.objects.get(pk=other.pk).lifecycle_stage == "active"
    assert LoggedModel.objects.get(model_id=mine).lifecycle_stage == "active"


def test_the_native_api_refuses_it(scoped, api):
    *_, raw = scoped
    for path in ("/api/v1/me/", "/api/v1/tokens/", "/api/v1/decisions/"):
        response = api(raw).get(path)
        assert response.status_code == 403 and "project run" in response.json()["detail"]


# --- it dies with its run ------------------------------------------------------------------------

def every_route(raw, exp, own) -> list:
    return [
        send(raw, "GET", "server-info"),
        send(raw, "GET", "runs/get", {"run_id": own.run_uuid}),
        send(raw, "GET", "experiments/get", {"experiment_id": exp.public_id}),
        send(raw, "POST", "runs/log-batch", {"run_id": own.run_uuid, "metrics": [METRIC]}),
        send(raw, "POST", "runs/update", {"run_id": own.run_uuid, "status": "RUNNING"}),
        send(raw, "POST", "runs/create", {"experiment_id": exp.public_id,
                                          "tags": [{"key": PARENT, "value": own.run_uuid}]}),
        put_artifact(raw, f"{root_of(own)}/late.txt"),
        get_artifact(raw, f"{root_of(own)}/notes.txt"),
    ]


def test_the_token_dies_when_its_run_finishes(scoped):
    exp, own, _, _, raw = scoped
    upload(own.org, f"{root_of(own)}/notes.txt")
    # the client ends its own run with update-run: that call still passes
    assert send(raw, "POST", "runs/update", {"run_id": own.run_uuid, "status": "FINISHED",
                                             "end_time": 2}).status_code == 200
    before = snapshot()
    for response in every_route(raw, exp, own):
        assert_dead(response)
        assert "has ended (FINISHED)" in response.json()["message"]
    assert snapshot() == before
    assert Run.objects.get(pk=own.pk).status == "FINISHED"


@pytest.mark.parametrize("status", ["KILLED", "FAILED"])
def test_the_token_dies_when_its_run_is_killed_or_fails(scoped, status):
    exp, own, _, _, raw = scoped
    run_services.run_update(run=own, actor=SETUP, status=status)  # the worker, the sweeper
    before = snapshot()
    for response in every_route(raw, exp, own):
        assert_dead(response)
    assert snapshot() == before


def test_the_token_dies_when_its_run_is_deleted(scoped):
    exp, own, _, _, raw = scoped
    run_services.run_set_lifecycle(run=own, stage="deleted", actor=SETUP)
    for response in every_route(raw, exp, own):
        assert_dead(response)


def test_an_expired_or_revoked_run_token_is_401(scoped):
    _, own, _, token, raw = scoped
    type(token).objects.filter(pk=token.pk).update(expires_at=timezone.now())
    assert send(raw, "GET", "runs/get", {"run_id": own.run_uuid}).status_code == 401
    _, raw2 = token_create_for_run(run=own, user=token.user, actor=SETUP, ttl_seconds=60)
    token_revoke(token=type(token).objects.get(run_uuid=own.run_uuid, revoked_at=None,
                                               expires_at__gt=timezone.now()), actor=SETUP)
    assert send(raw2, "GET", "runs/get", {"run_id": own.run_uuid}).status_code == 401
    assert put_artifact(raw2, f"{root_of(own)}/late.txt").status_code == 401


def test_its_creation_is_audited_with_the_run_and_its_reads(scoped):
    _, own, _, token, _ = scoped
    event = AuditEvent.objects.filter(action="api_token.created").order_by("seq").last()
    assert event.after["run_uuid"] == own.run_uuid and event.target_id == str(token.pk)
    token_create_for_run(run=own, user=token.user, actor=SETUP, ttl_seconds=60,
                         reads={"runs": ["b" * 32], "model_versions": [["m", 2]]})
    event = AuditEvent.objects.filter(action="api_token.created").order_by("seq").last()
    assert event.after["reads"] == {"runs": ["b" * 32], "model_versions": [["m", 2]]}


# --- the real client -----------------------------------------------------------------------------

@pytest.mark.postgres_only
def test_project_code_using_the_mlflow_client_logs_into_its_run(transactional_db, personas,
                                                                  mlflow_as, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    exp = experiment_services.experiment_create(org=personas.org_a, name="exp", actor=SETUP)
    victim = experiment_services.experiment_create(org=personas.org_a, name="victim",
                                                   actor=SETUP)
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
        with mlflow.start_run(nested=True) as child:
            mlflow.log_metric("fold_auc", 0.8)
            mlflow.log_text("fold", "fold.txt")
        assert mlflow.MlflowClient().get_run(child.info.run_id).data.tags[PARENT] == \
            own.run_uuid
        client = mlflow.MlflowClient()
        for attack in (lambda: client.create_run(exp.public_id),
                       lambda: client.delete_experiment(victim.public_id),
                       lambda: client.create_registered_model("planted"),
                       lambda: client.search_runs([victim.public_id])):
            with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|project run"):
                attack()
    stored = Run.objects.get(pk=own.pk)
    assert stored.status == "FINISHED"
    assert Param.objects.get(run=stored).value == "0.5"
    assert Run.objects.get(run_uuid=child.info.run_id).status == "FINISHED"
    assert Experiment.objects.get(pk=victim.pk).lifecycle_stage == "active"
    with pytest.raises(MlflowException, match=r"has ended"):  # dead with its run
        mlflow.MlflowClient().get_run(own.run_uuid)
