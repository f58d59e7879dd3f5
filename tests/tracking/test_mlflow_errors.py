"""The MLflow protocol over raw HTTP: authentication, MLflow's error format, bad input, isolation.

RPCS lists every (method, path) registered in tracking.mlflow_api.views.ROUTES with a valid
request on organization A's objects, its required fields, its id fields, and how it keeps
organization B out (CROSS-ORG: charlie gets 404 RESOURCE_DOES_NOT_EXIST, or a named check).
test_every_registered_rpc_is_in_the_table fails when an RPC is added without being listed
here, i.e. without an isolation test. Every refused request must write nothing: rows of every
tracking model and audit events are counted before and after.
"""

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import mlflow.version
import pytest
from django.apps import apps
from django.test import Client
from django.urls import resolve

import tracking.urls  # noqa: F401  (registers the RPCs)
from audit.actors import Actor
from audit.models import AuditEvent
from tenancy.services import token_create
from tracking.artifacts import artifact_upload
from tracking.mlflow_api.views import ROUTES
from tracking.services import experiments as experiment_services
from tracking.services import logged_models as model_services
from tracking.services import runs as run_services
from tracking.services.runs import run_log_batch

API = "/api/2.0/mlflow/"
SETUP = Actor.command("test-setup")
UNKNOWN_RUN = "0" * 32
UNKNOWN = {"experiment_id": "987654321", "run_id": UNKNOWN_RUN, "run_ids": UNKNOWN_RUN,
           "model_id": "m-" + "0" * 32, "source_run_id": UNKNOWN_RUN,
           "experiment_name": "no such experiment", "name": "no-such-model", "version": "99",
           "alias": "nosuchalias"}
REGISTERED = "reg-a"  # org A's registered model: version 1 (alias "champion") and 2

resolve("/")  # import the root URLconf, so every module that registers RPCs is loaded


# --- organization A's objects -------------------------------------------------------------

@dataclass
class World:
    personas: object
    experiment: str
    run: str
    other_run: str
    deleted_run: str
    deleted_experiment: str
    model: str


@pytest.fixture
def w(personas) -> World:
    a, b = personas.org_a, personas.org_b
    # Default experiments exist up front: reads of "0" create them on first use.
    experiment_services.experiment_default(org=a)
    experiment_services.experiment_default(org=b)
    experiment_services.experiment_create(org=b, name="exp-b", actor=SETUP)
    exp = experiment_services.experiment_create(org=a, name="exp-a", actor=SETUP,
                                                tags={"team": "a"})
    gone = experiment_services.experiment_create(org=a, name="gone-a", actor=SETUP)
    experiment_services.experiment_set_lifecycle(experiment=gone, stage="deleted", actor=SETUP)
    run = run_services.run_create(experiment=exp, actor=SETUP, run_name="run-a")
    run_log_batch(run=run, actor=SETUP, payload={},
                  metrics=[{"key": "m", "value": float(s), "timestamp": 1000 + s, "step": s}
                           for s in range(5)],
                  params=[{"key": "p", "value": "1"}], tags=[{"key": "t", "value": "x"}])
    other = run_services.run_create(experiment=exp, actor=SETUP, run_name="other-a")
    deleted = run_services.run_create(experiment=exp, actor=SETUP, run_name="deleted-a")
    run_services.run_set_lifecycle(run=deleted, stage="deleted", actor=SETUP)
    model = model_services.logged_model_create(experiment=exp, actor=SETUP, name="model-a",
                                               source_run=run, tags={"k": "v"})
    _registry_world(a, model)
    return World(personas, exp.public_id, run.run_uuid, other.run_uuid, deleted.run_uuid,
                 gone.public_id, model.model_id)


def _registry_world(org, logged_model) -> None:
    """A registered model with two versions of a logged model's (stand-in) files."""
    from models_registry import services as registry

    artifact_upload(org=org, path=logged_model.artifact_uri.removeprefix("mlflow-artifacts:/")
                    + "/MLmodel", stream=io.BytesIO(b"flavors: {}\n"), length=12, actor=SETUP)
    reg = registry.registered_model_create(org=org, name=REGISTERED, actor=SETUP,
                                           tags={"team": "risk"})
    source = f"models:/{logged_model.model_id}"
    first = registry.model_version_create(model=reg, source=source, actor=SETUP,
                                          tags={"stage": "dev"})
    registry.model_version_create(model=reg, source=source, actor=SETUP)
    registry.alias_set(version=first, alias="champion", actor=SETUP)


def snapshot() -> dict[str, int]:
    """Rows of every tracking and registry model and audit events: what "nothing written" is
    checked on."""
    counts = {model.__name__: model.objects.count()
              for app in ("tracking", "models_registry")
              for model in apps.get_app_config(app).get_models()}
    counts["AuditEvent"] = AuditEvent.objects.count()
    return counts


# --- requests -------------------------------------------------------------------------------

def bearer(who) -> dict:
    raw = who if isinstance(who, str) else who.raw_token
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def send(method: str, path: str, fields: dict | None = None, *, prefix: str = API,
         body: bytes | None = None, **headers):
    """A request as the mlflow client makes it: GET fields in the query string, others JSON.
    `{name}` in the path takes the field of that name."""
    fields = dict(fields or {})
    for name in re.findall(r"\{(\w+)\}", path):
        path = path.replace("{" + name + "}", str(fields.pop(name)))
    client = Client()
    if method == "GET":
        return client.get(prefix + path, fields, **headers)
    data = body if body is not None else json.dumps(fields)
    return client.generic(method, prefix + path, data, content_type="application/json",
                          **headers)


def assert_error(response, status: int, code: str, *phrases: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"] == "application/json", response.content
    body = response.json()
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    for phrase in phrases:
        assert phrase in body["message"], body
    return body


# --- the table of RPCs ------------------------------------------------------------------------

@dataclass(frozen=True)
class Rpc:
    valid: Callable[[World], dict]  # a valid request of alice's, on org A's objects
    cross_org: str = "404"  # "404": charlie sending `valid` gets RESOURCE_DOES_NOT_EXIST
    required: tuple[str, ...] = ()  # dropping one gets 400 INVALID_PARAMETER_VALUE naming it
    ids: tuple[str, ...] = field(default=())  # an unknown value gets 404 RESOURCE_DOES_NOT_EXIST


def metric_point(**extra) -> dict:
    return {"key": "m", "value": 1.5, "timestamp": 1_700_000_000_000, "step": 7, **extra}


def dataset_input(name: str = "train") -> dict:
    return {"dataset": {"name": name, "digest": "abc123", "source_type": "local",
                        "source": '{"uri": "/data/train.csv"}'},
            "tags": [{"key": "mlflow.data.context", "value": "training"}]}


RPCS: dict[tuple[str, str], Rpc] = {
    ("GET", "server-info"): Rpc(lambda w: {}, cross_org="server_info_names_own_org"),
    ("GET", "artifacts/list"): Rpc(lambda w: {"run_id": w.run}, required=("run_id",),
                                   ids=("run_id",)),
    # experiments
    ("POST", "experiments/create"): Rpc(lambda w: {"name": "exp-new"},
                                        cross_org="create_is_in_own_org", required=("name",)),
    ("GET", "experiments/get"): Rpc(lambda w: {"experiment_id": w.experiment},
                                    required=("experiment_id",), ids=("experiment_id",)),
    ("GET", "experiments/get-by-name"): Rpc(lambda w: {"experiment_name": "exp-a"},
                                            required=("experiment_name",),
                                            ids=("experiment_name",)),
    ("GET", "experiments/search"): Rpc(lambda w: {"max_results": 10, "view_type": "ALL"},
                                       cross_org="search_experiments_lists_own_org"),
    ("POST", "experiments/search"): Rpc(lambda w: {"max_results": 10, "view_type": "ALL"},
                                        cross_org="search_experiments_lists_own_org"),
    ("POST", "experiments/update"): Rpc(
        lambda w: {"experiment_id": w.experiment, "new_name": "renamed"},
        required=("experiment_id", "new_name"), ids=("experiment_id",)),
    ("POST", "experiments/delete"): Rpc(lambda w: {"experiment_id": w.experiment},
                                        required=("experiment_id",), ids=("experiment_id",)),
    ("POST", "experiments/restore"): Rpc(lambda w: {"experiment_id": w.deleted_experiment},
                                         required=("experiment_id",), ids=("experiment_id",)),
    ("POST", "experiments/set-experiment-tag"): Rpc(
        lambda w: {"experiment_id": w.experiment, "key": "k", "value": "v"},
        required=("experiment_id", "key"), ids=("experiment_id",)),
    ("POST", "experiments/delete-experiment-tag"): Rpc(
        lambda w: {"experiment_id": w.experiment, "key": "team"},
        required=("experiment_id", "key"), ids=("experiment_id",)),
    # runs
    ("POST", "runs/create"): Rpc(lambda w: {"experiment_id": w.experiment, "run_name": "new",
                                            "start_time": "1700000000000"},
                                 ids=("experiment_id",)),
    ("GET", "runs/get"): Rpc(lambda w: {"run_id": w.run}, required=("run_id",), ids=("run_id",)),
    ("POST", "runs/update"): Rpc(
        lambda w: {"run_id": w.run, "status": "FINISHED", "end_time": 1_700_000_000_000},
        required=("run_id",), ids=("run_id",)),
    # w.run backs reg-a's versions, which keeps it from being deleted
    ("POST", "runs/delete"): Rpc(lambda w: {"run_id": w.other_run}, required=("run_id",),
                                 ids=("run_id",)),
    ("POST", "runs/restore"): Rpc(lambda w: {"run_id": w.deleted_run}, required=("run_id",),
                                  ids=("run_id",)),
    ("POST", "runs/log-batch"): Rpc(
        lambda w: {"run_id": w.run, "metrics": [metric_point()],
                   "params": [{"key": "q", "value": "2"}], "tags": [{"key": "u", "value": "y"}]},
        required=("run_id",), ids=("run_id",)),
    ("POST", "runs/log-metric"): Rpc(lambda w: {"run_id": w.run, **metric_point()},
                                     required=("run_id", "key", "value", "timestamp"),
                                     ids=("run_id",)),
    ("POST", "runs/log-parameter"): Rpc(lambda w: {"run_id": w.run, "key": "q", "value": "2"},
                                        required=("run_id", "key"), ids=("run_id",)),
    ("POST", "runs/set-tag"): Rpc(lambda w: {"run_id": w.run, "key": "u", "value": "y"},
                                  required=("run_id", "key"), ids=("run_id",)),
    ("POST", "runs/delete-tag"): Rpc(lambda w: {"run_id": w.run, "key": "t"},
                                     required=("run_id", "key"), ids=("run_id",)),
    ("POST", "runs/log-inputs"): Rpc(lambda w: {"run_id": w.run, "datasets": [dataset_input()]},
                                     required=("run_id",), ids=("run_id",)),
    ("POST", "runs/outputs"): Rpc(
        lambda w: {"run_id": w.run, "models": [{"model_id": w.model, "step": 1}]},
        required=("run_id",), ids=("run_id",)),
    ("POST", "runs/search"): Rpc(
        lambda w: {"experiment_ids": [w.experiment], "run_view_type": "ALL",
                   "max_results": 10}, cross_org="search_runs_finds_nothing"),
    ("GET", "metrics/get-history"): Rpc(lambda w: {"run_id": w.run, "metric_key": "m"},
                                        required=("run_id", "metric_key"), ids=("run_id",)),
    ("GET", "metrics/get-history-bulk-interval"): Rpc(
        lambda w: {"run_ids": [w.run, w.other_run], "metric_key": "m", "max_results": 3},
        required=("run_ids", "metric_key"), ids=("run_ids",)),
    # logged models (MLflow 3)
    ("POST", "logged-models"): Rpc(
        lambda w: {"experiment_id": w.experiment, "name": "m2", "source_run_id": w.run,
                   "params": [{"key": "alpha", "value": "1"}]},
        required=("experiment_id",), ids=("experiment_id", "source_run_id")),
    ("GET", "logged-models/{model_id}"): Rpc(lambda w: {"model_id": w.model}, ids=("model_id",)),
    ("PATCH", "logged-models/{model_id}"): Rpc(
        lambda w: {"model_id": w.model, "status": "LOGGED_MODEL_READY"}, required=("status",),
        ids=("model_id",)),
    ("DELETE", "logged-models/{model_id}"): Rpc(lambda w: {"model_id": w.model},
                                                ids=("model_id",)),
    ("PATCH", "logged-models/{model_id}/tags"): Rpc(
        lambda w: {"model_id": w.model, "tags": [{"key": "k2", "value": "v2"}]},
        ids=("model_id",)),
    ("DELETE", "logged-models/{model_id}/tags/{tag_key}"): Rpc(
        lambda w: {"model_id": w.model, "tag_key": "k"}, ids=("model_id",)),
    ("POST", "logged-models/{model_id}/params"): Rpc(
        lambda w: {"model_id": w.model, "params": [{"key": "beta", "value": "2"}]},
        ids=("model_id",)),
    ("POST", "logged-models/search"): Rpc(lambda w: {"experiment_ids": [w.experiment]}),
    ("GET", "logged-models/{model_id}/artifacts/directories"): Rpc(
        lambda w: {"model_id": w.model}, ids=("model_id",)),
    # model registry
    ("POST", "registered-models/create"): Rpc(lambda w: {"name": "reg-new"},
                                              cross_org="create_model_is_in_own_org",
                                              required=("name",)),
    ("GET", "registered-models/get"): Rpc(lambda w: {"name": REGISTERED}, required=("name",),
                                          ids=("name",)),
    ("POST", "registered-models/rename"): Rpc(lambda w: {"name": REGISTERED, "new_name": "reg-b"},
                                              required=("name", "new_name"), ids=("name",)),
    ("PATCH", "registered-models/update"): Rpc(
        lambda w: {"name": REGISTERED, "description": "scores applicants"}, required=("name",),
        ids=("name",)),
    ("DELETE", "registered-models/delete"): Rpc(lambda w: {"name": REGISTERED},
                                                required=("name",), ids=("name",)),
    ("GET", "registered-models/search"): Rpc(lambda w: {"filter": f"name = '{REGISTERED}'"},
                                             cross_org="search_models_finds_nothing"),
    ("POST", "registered-models/get-latest-versions"): Rpc(
        lambda w: {"name": REGISTERED, "stages": ["None"]}, required=("name",), ids=("name",)),
    ("GET", "registered-models/get-latest-versions"): Rpc(
        lambda w: {"name": REGISTERED}, required=("name",), ids=("name",)),
    ("POST", "registered-models/set-tag"): Rpc(
        lambda w: {"name": REGISTERED, "key": "owner", "value": "alice"},
        required=("name", "key"), ids=("name",)),
    ("DELETE", "registered-models/delete-tag"): Rpc(lambda w: {"name": REGISTERED, "key": "team"},
                                                    required=("name", "key"), ids=("name",)),
    ("POST", "registered-models/alias"): Rpc(
        lambda w: {"name": REGISTERED, "alias": "challenger", "version": "2"},
        required=("name", "alias", "version"), ids=("name", "version")),
    ("DELETE", "registered-models/alias"): Rpc(lambda w: {"name": REGISTERED, "alias": "champion"},
                                               required=("name", "alias"), ids=("name",)),
    ("GET", "registered-models/alias"): Rpc(lambda w: {"name": REGISTERED, "alias": "champion"},
                                            required=("name", "alias"), ids=("name", "alias")),
    ("POST", "model-versions/create"): Rpc(
        lambda w: {"name": REGISTERED, "source": f"models:/{w.model}", "model_id": w.model},
        required=("name", "source"), ids=("name", "model_id")),
    ("GET", "model-versions/get"): Rpc(lambda w: {"name": REGISTERED, "version": "1"},
                                       required=("name", "version"), ids=("name", "version")),
    ("PATCH", "model-versions/update"): Rpc(
        lambda w: {"name": REGISTERED, "version": "1", "description": "first"},
        required=("name", "version"), ids=("name", "version")),
    ("DELETE", "model-versions/delete"): Rpc(lambda w: {"name": REGISTERED, "version": "2"},
                                             required=("name", "version"),
                                             ids=("name", "version")),
    ("POST", "model-versions/transition-stage"): Rpc(
        lambda w: {"name": REGISTERED, "version": "1", "stage": "Staging",
                   "archive_existing_versions": True},
        required=("name", "version", "stage"), ids=("name", "version")),
    ("GET", "model-versions/search"): Rpc(lambda w: {"filter": f"name = '{REGISTERED}'"},
                                          cross_org="search_versions_finds_nothing"),
    ("GET", "model-versions/get-download-uri"): Rpc(
        lambda w: {"name": REGISTERED, "version": "1"}, required=("name", "version"),
        ids=("name", "version")),
    ("POST", "model-versions/set-tag"): Rpc(
        lambda w: {"name": REGISTERED, "version": "1", "key": "k", "value": "v"},
        required=("name", "version", "key"), ids=("name", "version")),
    ("DELETE", "model-versions/delete-tag"): Rpc(
        lambda w: {"name": REGISTERED, "version": "1", "key": "stage"},
        required=("name", "version", "key"), ids=("name", "version")),
}
def registered_rpcs(capability: str | None = None) -> set[tuple[str, str]]:
    """(method, path) of every registered RPC, `{name}` for a path argument."""
    return {(method, re.sub(r"\(\?P<(\w+)>\[\^/\]\+\)", r"{\1}", route.pattern.pattern)
             .removeprefix("^").removesuffix("$"))
            for method, routes in ROUTES.items() for route in routes
            if capability is None or route.capability == capability}


CASES = sorted(RPCS)
CASE_IDS = [f"{m} {p}" for m, p in CASES]
WRITES = [case for case in CASES if case in registered_rpcs("write")]


def test_every_registered_rpc_is_in_the_table():
    registered = registered_rpcs()
    assert registered - set(RPCS) == set(), "RPCs without an isolation/error test in RPCS"
    assert set(RPCS) - registered == set(), "RPCS lists RPCs that are not registered"
    assert {RPCS[case].cross_org for case in CASES} - {"404"} <= set(CROSS_ORG_CHECKS)


# --- every RPC: valid for alice, 401 without credentials, 404 for charlie ---------------------

@pytest.mark.parametrize(("method", "path"), CASES, ids=CASE_IDS)
def test_a_valid_request_succeeds_and_a_write_leaves_one_audit_event(w, method, path):
    before = snapshot()
    response = send(method, path, RPCS[(method, path)].valid(w), **bearer(w.personas.alice))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert isinstance(response.json(), dict)
    events = snapshot()["AuditEvent"] - before["AuditEvent"]
    assert events == (1 if (method, path) in WRITES else 0)


@pytest.mark.parametrize(("method", "path"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("authorization", [None, "Bearer lfw_notatoken", "Bearer ",
                                           "Token abc", "Basic bm9wZQ=="])
def test_without_valid_credentials_every_rpc_is_401(w, method, path, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    before = snapshot()
    response = send(method, path, RPCS[(method, path)].valid(w), **headers)
    assert_error(response, 401, "UNAUTHENTICATED")
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path"), [c for c in CASES if RPCS[c].cross_org == "404"],
                         ids=[f"{m} {p}" for m, p in CASES if RPCS[(m, p)].cross_org == "404"])
def test_charlie_gets_404_for_org_a_objects_and_writes_nothing(w, method, path):
    before = snapshot()
    response = send(method, path, RPCS[(method, path)].valid(w), **bearer(w.personas.charlie))
    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    assert snapshot() == before


def server_info_names_own_org(w, method, path):
    response = send(method, path, {}, **bearer(w.personas.charlie))
    assert response.json()["ledgerflow"]["organization"] == "org-b"


def create_is_in_own_org(w, method, path):
    from tracking.models import Experiment

    response = send(method, path, {"name": "exp-a"}, **bearer(w.personas.charlie))
    assert response.status_code == 200, response.content
    created = Experiment.objects.get(pk=int(response.json()["experiment_id"]))
    assert created.org == w.personas.org_b
    assert Experiment.objects.filter(name="exp-a").count() == 2


def search_experiments_lists_own_org(w, method, path):
    response = send(method, path, {"view_type": "ALL"}, **bearer(w.personas.charlie))
    names = sorted(e["name"] for e in response.json()["experiments"])
    assert names == ["Default", "exp-b"]


def search_runs_finds_nothing(w, method, path):
    fields = {"experiment_ids": [w.experiment, w.deleted_experiment], "run_view_type": "ALL"}
    response = send(method, path, fields, **bearer(w.personas.charlie))
    assert response.status_code == 200, response.content
    assert response.json().get("runs", []) == []


def create_model_is_in_own_org(w, method, path):
    from models_registry.models import RegisteredModel

    response = send(method, path, {"name": REGISTERED}, **bearer(w.personas.charlie))
    assert response.status_code == 200, response.content
    assert sorted(RegisteredModel.objects.filter(name=REGISTERED)
                  .values_list("org__slug", flat=True)) == ["org-a", "org-b"]


def search_models_finds_nothing(w, method, path):
    response = send(method, path, {}, **bearer(w.personas.charlie))
    assert response.status_code == 200, response.content
    assert response.json().get("registered_models", []) == []


def search_versions_finds_nothing(w, method, path):
    response = send(method, path, {}, **bearer(w.personas.charlie))
    assert response.status_code == 200, response.content
    assert response.json().get("model_versions", []) == []


CROSS_ORG_CHECKS = {f.__name__: f for f in (server_info_names_own_org, create_is_in_own_org,
                                           search_experiments_lists_own_org,
                                           search_runs_finds_nothing, create_model_is_in_own_org,
                                           search_models_finds_nothing,
                                           search_versions_finds_nothing)}


@pytest.mark.parametrize(("method", "path"), [c for c in CASES if RPCS[c].cross_org != "404"],
                         ids=[f"{m} {p}" for m, p in CASES if RPCS[(m, p)].cross_org != "404"])
def test_charlie_sees_only_his_org_through_rpcs_without_an_id(w, method, path):
    before = snapshot()
    CROSS_ORG_CHECKS[RPCS[(method, path)].cross_org](w, method, path)
    if (method, path) not in WRITES:
        assert snapshot() == before


# --- read-only callers ---------------------------------------------------------------------------

@pytest.fixture
def read_only_token(w) -> str:
    _, raw = token_create(org=w.personas.org_a, user=w.personas.alice.user, name="ro",
                          actor=SETUP, read_only=True)
    return raw


@pytest.mark.parametrize(("method", "path"), WRITES, ids=[f"{m} {p}" for m, p in WRITES])
@pytest.mark.parametrize("who", ["bob", "read-only token"])
def test_read_only_callers_cannot_write(w, read_only_token, method, path, who):
    token = w.personas.bob.raw_token if who == "bob" else read_only_token
    before = snapshot()
    response = send(method, path, RPCS[(method, path)].valid(w), **bearer(token))
    assert_error(response, 403, "PERMISSION_DENIED")
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path"), [c for c in CASES if c not in WRITES],
                         ids=[f"{m} {p}" for m, p in CASES if (m, p) not in WRITES])
def test_read_only_callers_can_read(w, read_only_token, method, path):
    for token in (w.personas.bob.raw_token, read_only_token):
        response = send(method, path, RPCS[(method, path)].valid(w), **bearer(token))
        assert response.status_code == 200, response.content


# --- bad input, per RPC ------------------------------------------------------------------------

MISSING = [(m, p, f) for m, p in CASES for f in RPCS[(m, p)].required]
UNKNOWN_IDS = [(m, p, f) for m, p in CASES for f in RPCS[(m, p)].ids]


@pytest.mark.parametrize(("method", "path", "name"), MISSING,
                         ids=[f"{m} {p} -{f}" for m, p, f in MISSING])
def test_a_missing_required_field_is_400_naming_it(w, method, path, name):
    fields = RPCS[(method, path)].valid(w)
    del fields[name]
    before = snapshot()
    response = send(method, path, fields, **bearer(w.personas.alice))
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", f"'{name}'")
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path", "name"), UNKNOWN_IDS,
                         ids=[f"{m} {p} ?{f}" for m, p, f in UNKNOWN_IDS])
def test_an_unknown_id_is_404(w, method, path, name):
    fields = RPCS[(method, path)].valid(w)
    fields[name] = [UNKNOWN[name]] if isinstance(fields[name], list) else UNKNOWN[name]
    before = snapshot()
    response = send(method, path, fields, **bearer(w.personas.alice))
    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    assert snapshot() == before


def with_fields(case: tuple[str, str], **changes) -> Callable[[World], dict]:
    def build(w: World) -> dict:
        return {**RPCS[case].valid(w), **{k: v(w) if callable(v) else v
                                          for k, v in changes.items()}}
    return build


LOG_METRIC, LOG_BATCH = ("POST", "runs/log-metric"), ("POST", "runs/log-batch")
SEARCH_RUNS, SEARCH_EXPERIMENTS = ("POST", "runs/search"), ("POST", "experiments/search")
HISTORY = ("GET", "metrics/get-history")
BULK = ("GET", "metrics/get-history-bulk-interval")
# (case, fields, status, error code, phrase the message must contain)
BAD_INPUT = [
    (LOG_METRIC, with_fields(LOG_METRIC, value="abc"), 400, "INVALID_PARAMETER_VALUE", "'value'"),
    (LOG_METRIC, with_fields(LOG_METRIC, value=[1]), 400, "INVALID_PARAMETER_VALUE", "'value'"),
    (LOG_METRIC, with_fields(LOG_METRIC, timestamp="soon"), 400, "INVALID_PARAMETER_VALUE",
     "'timestamp'"),
    (LOG_METRIC, with_fields(LOG_METRIC, step="x"), 400, "INVALID_PARAMETER_VALUE", "'step'"),
    (LOG_METRIC, with_fields(LOG_METRIC, value=True), 400, "INVALID_PARAMETER_VALUE", "'value'"),
    (LOG_METRIC, with_fields(LOG_METRIC, key=""), 400, "INVALID_PARAMETER_VALUE", ""),
    (LOG_METRIC, with_fields(LOG_METRIC, key="../x"), 400, "INVALID_PARAMETER_VALUE", ""),
    (LOG_BATCH, with_fields(LOG_BATCH, metrics=[metric_point(value="abc")]), 400,
     "INVALID_PARAMETER_VALUE", "metrics[0].value"),
    (LOG_BATCH, with_fields(LOG_BATCH, metrics=[1]), 400, "INVALID_PARAMETER_VALUE",
     "metrics[0]"),
    (LOG_BATCH, with_fields(LOG_BATCH, metrics=[metric_point(), metric_point(key=["m"])]), 400,
     "INVALID_PARAMETER_VALUE", "metrics[1].key"),
    (LOG_METRIC, with_fields(LOG_METRIC, key={"m": 1}), 400, "INVALID_PARAMETER_VALUE", "'key'"),
    # Integers outside int64 (every MLflow integer is one) were a 500 from PostgreSQL.
    (LOG_BATCH, with_fields(LOG_BATCH, metrics=[metric_point(), metric_point(step=2**63)]), 400,
     "INVALID_PARAMETER_VALUE", "metrics[1].step"),
    (LOG_BATCH, with_fields(LOG_BATCH, metrics=[metric_point(timestamp=2**63)]), 400,
     "INVALID_PARAMETER_VALUE", "metrics[0].timestamp"),
    (LOG_METRIC, with_fields(LOG_METRIC, step=str(-(2**63) - 1)), 400, "INVALID_PARAMETER_VALUE",
     "'step'"),
    (LOG_METRIC, with_fields(LOG_METRIC, timestamp=str(2**64)), 400, "INVALID_PARAMETER_VALUE",
     "64-bit"),
    (LOG_BATCH, with_fields(LOG_BATCH, metrics=[{"key": "m", "value": 1}]), 400,
     "INVALID_PARAMETER_VALUE", "timestamp"),
    (LOG_BATCH, with_fields(LOG_BATCH, metrics="m"), 400, "INVALID_PARAMETER_VALUE", ""),
    (LOG_BATCH, with_fields(LOG_BATCH, params=[{"value": "1"}]), 400, "INVALID_PARAMETER_VALUE",
     "params[0].key"),
    (LOG_BATCH, with_fields(LOG_BATCH, metrics=[metric_point(step=i) for i in range(1001)]),
     400, "INVALID_PARAMETER_VALUE", "1000"),
    (LOG_BATCH, with_fields(LOG_BATCH, params=[{"key": f"p{i}", "value": "1"}
                                               for i in range(101)]),
     400, "INVALID_PARAMETER_VALUE", "100"),
    (LOG_BATCH, with_fields(LOG_BATCH, tags=[{"key": f"t{i}", "value": "1"} for i in range(101)]),
     400, "INVALID_PARAMETER_VALUE", "100"),
    (LOG_BATCH, with_fields(LOG_BATCH, params=[{"key": "p", "value": "2"}]), 400,
     "INVALID_PARAMETER_VALUE", "Changing param values is not allowed"),
    (LOG_BATCH, with_fields(LOG_BATCH, params=[{"key": "z", "value": "1"},
                                               {"key": "z", "value": "2"}]),
     400, "INVALID_PARAMETER_VALUE", "Duplicate parameter keys"),
    (("POST", "runs/log-parameter"), with_fields(("POST", "runs/log-parameter"), key="p",
                                                 value="2"),
     400, "INVALID_PARAMETER_VALUE", "Changing param values is not allowed"),
    (("POST", "runs/log-parameter"), with_fields(("POST", "runs/log-parameter"), key="p" * 251),
     400, "INVALID_PARAMETER_VALUE", ""),
    (LOG_METRIC, with_fields(LOG_METRIC, run_id=lambda w: w.deleted_run), 400,
     "INVALID_PARAMETER_VALUE", "active"),
    (("POST", "runs/create"), with_fields(("POST", "runs/create"), start_time="abc"), 400,
     "INVALID_PARAMETER_VALUE", "'start_time'"),
    (("POST", "runs/create"), with_fields(("POST", "runs/create"), tags=[{"key": 1}]), 400,
     "INVALID_PARAMETER_VALUE", "tags[0].key"),
    (("POST", "runs/create"), with_fields(("POST", "runs/create"),
                                          experiment_id=lambda w: w.deleted_experiment),
     400, "INVALID_PARAMETER_VALUE", "active"),
    (("POST", "runs/update"), with_fields(("POST", "runs/update"), status="DONE"), 400,
     "INVALID_PARAMETER_VALUE", "DONE"),
    (("POST", "runs/delete"), with_fields(("POST", "runs/delete"),
                                          run_id=lambda w: w.deleted_run),
     400, "INVALID_PARAMETER_VALUE", "deleted"),
    (("POST", "runs/delete-tag"), with_fields(("POST", "runs/delete-tag"), key="nope"), 404,
     "RESOURCE_DOES_NOT_EXIST", "nope"),
    (("POST", "runs/log-inputs"), with_fields(("POST", "runs/log-inputs"),
                                              datasets=[{"dataset": {"name": "x"}}]),
     400, "INVALID_PARAMETER_VALUE", "digest"),
    (("POST", "runs/outputs"), with_fields(("POST", "runs/outputs"), models=[{"step": 1}]), 400,
     "INVALID_PARAMETER_VALUE", "model_id"),
    (("POST", "runs/delete"), with_fields(("POST", "runs/delete"), run_id=lambda w: w.run),
     400, "INVALID_PARAMETER_VALUE", "backs registered model versions (reg-a version 1"),
    # model registry
    (("POST", "registered-models/create"), lambda w: {"name": REGISTERED}, 400,
     "RESOURCE_ALREADY_EXISTS", REGISTERED),
    (("POST", "registered-models/create"), lambda w: {"name": "a/b"}, 400,
     "INVALID_PARAMETER_VALUE", "cannot contain"),
    (("POST", "registered-models/rename"), lambda w: {"name": REGISTERED, "new_name": ""}, 400,
     "INVALID_PARAMETER_VALUE", "new_name"),
    (("POST", "registered-models/set-tag"), lambda w: {"name": REGISTERED, "key": "../x",
                                                       "value": "v"},
     400, "INVALID_PARAMETER_VALUE", ""),
    (("GET", "registered-models/search"), lambda w: {"filter": "version = 1"}, 400,
     "INVALID_PARAMETER_VALUE", ""),
    (("GET", "registered-models/search"), lambda w: {"max_results": 0}, 400,
     "INVALID_PARAMETER_VALUE", "max_results"),
    (("GET", "registered-models/search"), lambda w: {"order_by": ["size DESC"]}, 400,
     "INVALID_PARAMETER_VALUE", ""),
    (("POST", "registered-models/get-latest-versions"),
     lambda w: {"name": REGISTERED, "stages": ["Prod"]}, 400, "INVALID_PARAMETER_VALUE", "Prod"),
    (("POST", "registered-models/alias"),
     lambda w: {"name": REGISTERED, "alias": "latest", "version": "1"}, 400,
     "INVALID_PARAMETER_VALUE", "latest"),
    (("POST", "registered-models/alias"),
     lambda w: {"name": REGISTERED, "alias": "a b", "version": "1"}, 400,
     "INVALID_PARAMETER_VALUE", "a b"),
    (("POST", "model-versions/create"), lambda w: {"name": REGISTERED, "source": "s3://b/m"},
     400, "INVALID_PARAMETER_VALUE", "Unsupported model source"),
    (("POST", "model-versions/create"),
     lambda w: {"name": REGISTERED, "source": f"mlflow-artifacts:/{w.experiment}/nothing"},
     400, "INVALID_PARAMETER_VALUE", "No model files"),
    (("POST", "model-versions/create"),
     lambda w: {"name": REGISTERED, "source": f"mlflow-artifacts:/{w.experiment}/../x"},
     400, "INVALID_PARAMETER_VALUE", ".."),
    (("GET", "model-versions/get"), lambda w: {"name": REGISTERED, "version": "abc"}, 400,
     "INVALID_PARAMETER_VALUE", "integer"),
    (("POST", "model-versions/transition-stage"),
     lambda w: {"name": REGISTERED, "version": "1", "stage": "Prod"}, 400,
     "INVALID_PARAMETER_VALUE", "Prod"),
    (("POST", "model-versions/transition-stage"),
     lambda w: {"name": REGISTERED, "version": "1", "stage": "Archived",
                "archive_existing_versions": True}, 400, "INVALID_PARAMETER_VALUE", "Archived"),
    (("GET", "model-versions/search"), lambda w: {"filter": "flavor = 'sklearn'"}, 400,
     "INVALID_PARAMETER_VALUE", ""),
    (("POST", "experiments/create"), with_fields(("POST", "experiments/create"), name=123), 400,
     "INVALID_PARAMETER_VALUE", "'name'"),
    (("POST", "experiments/create"), with_fields(("POST", "experiments/create"), name="x" * 501),
     400, "INVALID_PARAMETER_VALUE", ""),
    (("POST", "experiments/create"), lambda w: {"name": "gone-a"}, 400,
     "RESOURCE_ALREADY_EXISTS", "gone-a"),
    (("POST", "experiments/update"), with_fields(("POST", "experiments/update"),
                                                 new_name="gone-a"),
     400, "RESOURCE_ALREADY_EXISTS", "gone-a"),
    (("POST", "experiments/delete"), lambda w: {"experiment_id": "0"}, 400,
     "INVALID_PARAMETER_VALUE", "Default"),
    (("POST", "experiments/delete-experiment-tag"),
     with_fields(("POST", "experiments/delete-experiment-tag"), key="nope"),
     404, "RESOURCE_DOES_NOT_EXIST", "nope"),
    (("PATCH", "logged-models/{model_id}"),
     with_fields(("PATCH", "logged-models/{model_id}"), status="NOPE"), 400,
     "INVALID_PARAMETER_VALUE", "NOPE"),
    (HISTORY, with_fields(HISTORY, max_results=50001), 400, "INVALID_PARAMETER_VALUE",
     "max_results"),
    (HISTORY, with_fields(HISTORY, max_results="many"), 400, "INVALID_PARAMETER_VALUE",
     "max_results"),
    (HISTORY, with_fields(HISTORY, page_token="!!!"), 400, "INVALID_PARAMETER_VALUE",
     "page token"),
    (BULK, with_fields(BULK, run_ids=[f"{i:032x}" for i in range(101)]), 400,
     "INVALID_PARAMETER_VALUE", "run_ids"),
    (BULK, with_fields(BULK, max_results=50001), 400, "INVALID_PARAMETER_VALUE", "max_results"),
    (SEARCH_RUNS, with_fields(SEARCH_RUNS, max_results=50001), 400, "INVALID_PARAMETER_VALUE",
     "max_results"),
    (SEARCH_RUNS, with_fields(SEARCH_RUNS, max_results="lots"), 400, "INVALID_PARAMETER_VALUE",
     "max_results"),
    (SEARCH_RUNS, with_fields(SEARCH_RUNS, page_token="!!!"), 400, "INVALID_PARAMETER_VALUE",
     "page token"),
    (SEARCH_RUNS, with_fields(SEARCH_RUNS, page_token="eyJvZmZzZXQiOiAtMX0="), 400,
     "INVALID_PARAMETER_VALUE", "page token"),
    (SEARCH_RUNS, with_fields(SEARCH_RUNS, run_view_type="SOME"), 400,
     "INVALID_PARAMETER_VALUE", "SOME"),
    (SEARCH_RUNS, with_fields(SEARCH_RUNS, order_by=["metrics.m SIDEWAYS"]), 400,
     "INVALID_PARAMETER_VALUE", ""),
    (SEARCH_RUNS, with_fields(SEARCH_RUNS, experiment_ids="1"), 200, None, None),
    (SEARCH_EXPERIMENTS, with_fields(SEARCH_EXPERIMENTS, max_results=50001), 400,
     "INVALID_PARAMETER_VALUE", "max_results"),
    (SEARCH_EXPERIMENTS, with_fields(SEARCH_EXPERIMENTS, page_token="!!!"), 400,
     "INVALID_PARAMETER_VALUE", "page token"),
    (SEARCH_EXPERIMENTS, with_fields(SEARCH_EXPERIMENTS, order_by=["nope DESC"]), 400,
     "INVALID_PARAMETER_VALUE", ""),
]
RUN_FILTERS = ["metrics.m0 >> 1", "foo.bar = 1", "metrics.m = 'x'", "a = 1 OR b = 2",
               "metrics.m <> 1", "params.p > 'a'", "attributes.run_id NOT LIKE 'x'",
               "attributes.start_time > 'x'", "metrics.m IS NULL", "params.p = 'a' OR",
               "datasets.name > 'x'", "(params.p = 'a')", "params.p"]
EXPERIMENT_FILTERS = ["name >> 'x'", "foo.bar = 'x'", "creation_time = 'x'",
                      "experiment_id = 'abc'", "experiment_id > '1'", "tags.a > 'x'",
                      "name = 'a' OR name = 'b'", "creation_time LIKE 5"]
BAD_INPUT += [(SEARCH_RUNS, with_fields(SEARCH_RUNS, filter=f), 400, "INVALID_PARAMETER_VALUE",
               "") for f in RUN_FILTERS]
BAD_INPUT += [(SEARCH_EXPERIMENTS, with_fields(SEARCH_EXPERIMENTS, filter=f), 400,
               "INVALID_PARAMETER_VALUE", "") for f in EXPERIMENT_FILTERS]


@pytest.mark.parametrize(("case", "build", "status", "code", "phrase"), BAD_INPUT,
                         ids=[f"{i}:{e[0][0]} {e[0][1]}" for i, e in enumerate(BAD_INPUT)])
def test_bad_input_gets_mlflows_error_format_and_writes_nothing(w, case, build, status, code,
                                                                 phrase):
    method, path = case
    before = snapshot()
    response = send(method, path, build(w), **bearer(w.personas.alice))
    if status == 200:  # a documented leniency, asserted so it stays deliberate
        assert response.status_code == 200, response.content
        return
    assert_error(response, status, code, phrase)
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path"), [c for c in CASES if c[0] != "GET"],
                         ids=[f"{m} {p}" for m, p in CASES if m != "GET"])
@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_400(w, method, path, body):
    fields = RPCS[(method, path)].valid(w)
    path_fields = {k: fields[k] for k in re.findall(r"\{(\w+)\}", path)}
    before = snapshot()
    response = send(method, path, path_fields, body=body, **bearer(w.personas.alice))
    assert_error(response, 400, "BAD_REQUEST")
    assert snapshot() == before


def test_metric_values_and_int64_fields_may_arrive_as_strings(w):
    from tracking.models import Metric

    alice = bearer(w.personas.alice)
    body = {"run_id": w.run, "key": "s", "value": "2.5", "timestamp": "1700000000000",
            "step": "3"}
    assert send("POST", "runs/log-metric", body, **alice).status_code == 200
    point = Metric.objects.get(run__run_uuid=w.run, key="s")
    assert (point.value, point.timestamp, point.step) == (2.5, 1_700_000_000_000, 3)
    for special in ("Infinity", "-Infinity"):
        body = {"run_id": w.run, "key": "inf", "value": special, "timestamp": 1, "step": 0}
        assert send("POST", "runs/log-metric", body, **alice).status_code == 200
    history = send("GET", "metrics/get-history", {"run_id": w.run, "metric_key": "inf"},
                   **alice).json()["metrics"]
    assert sorted(p["value"] for p in history) == ["-Infinity", "Infinity"]


def test_a_nan_metric_value_is_stored_and_answered_as_nan(w):
    alice = bearer(w.personas.alice)
    body = {"run_id": w.run, "key": "nan", "value": "NaN", "timestamp": 1, "step": 0}
    assert send("POST", "runs/log-metric", body, **alice).status_code == 200
    history = send("GET", "metrics/get-history", {"run_id": w.run, "metric_key": "nan"},
                   **alice).json()["metrics"]
    assert [p["value"] for p in history] == ["NaN"]


# --- endpoints, workspaces, server-level answers --------------------------------------------------

@pytest.mark.parametrize("path", ["nope", "runs/nope", "experiments", "runs/get/extra",
                                  "logged-models/m-1/nope/x"])
@pytest.mark.parametrize("authenticated", [True, False])
def test_an_unknown_endpoint_is_a_json_404(w, path, authenticated):
    headers = bearer(w.personas.alice) if authenticated else {}
    assert_error(send("GET", path, **headers), 404, "ENDPOINT_NOT_FOUND")
    assert_error(send("POST", path, **headers), 404, "ENDPOINT_NOT_FOUND")


def test_a_known_path_with_another_method_is_a_json_404(w):
    assert_error(send("GET", "runs/create", **bearer(w.personas.alice)), 404,
                 "ENDPOINT_NOT_FOUND")
    assert_error(send("POST", "runs/get", {"run_id": w.run}, **bearer(w.personas.alice)), 404,
                 "ENDPOINT_NOT_FOUND")


def test_a_workspace_header_naming_the_tokens_org_works(w):
    response = send("GET", "runs/get", {"run_id": w.run}, **bearer(w.personas.alice),
                    HTTP_X_MLFLOW_WORKSPACE="org-a")
    assert response.status_code == 200
    assert response.json()["run"]["info"]["run_name"] == "run-a"


@pytest.mark.parametrize("workspace", ["org-b", "org-c", "ORG-A"])
def test_a_workspace_header_naming_another_org_is_404(w, workspace):
    before = snapshot()
    for who, method, path, fields in [
        (w.personas.alice, "GET", "runs/get", {"run_id": w.run}),
        (w.personas.alice, "POST", "runs/set-tag", {"run_id": w.run, "key": "k", "value": "v"}),
        (w.personas.charlie, "GET", "experiments/search", {}),
    ]:
        response = send(method, path, fields, **bearer(who), HTTP_X_MLFLOW_WORKSPACE=workspace)
        if who is w.personas.charlie and workspace == "org-b":
            assert response.status_code == 200
            continue
        assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST", workspace)
    assert snapshot() == before


def test_basic_auth_with_email_and_token_works(w):
    import base64

    alice = w.personas.alice
    basic = base64.b64encode(f"{alice.email}:{alice.raw_token}".encode()).decode()
    response = send("GET", "runs/get", {"run_id": w.run}, HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 200
    wrong = base64.b64encode(f"bob@a.example:{alice.raw_token}".encode()).decode()
    assert_error(send("GET", "runs/get", {"run_id": w.run},
                      HTTP_AUTHORIZATION=f"Basic {wrong}"), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(("method", "path", "fields"), [
    ("DELETE", "registered-models/delete-tag", {"name": REGISTERED, "key": "nope"}),
    ("DELETE", "model-versions/delete-tag", {"name": REGISTERED, "version": "1", "key": "nope"}),
    ("DELETE", "registered-models/alias", {"name": REGISTERED, "alias": "nope"}),
])
def test_deleting_a_missing_tag_or_alias_succeeds_and_writes_nothing_as_in_mlflow(
        w, method, path, fields):
    before = snapshot()
    response = send(method, path, fields, **bearer(w.personas.alice))
    assert (response.status_code, response.json()) == (200, {})
    assert snapshot() == before


def test_version_answers_text():
    response = Client().get("/version")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == mlflow.version.VERSION


def test_server_info_answers_json_on_api_3(w):
    response = send("GET", "server-info", prefix="/api/3.0/mlflow/", **bearer(w.personas.alice))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["workspaces_enabled"] is False
    assert body["multipart_uploads_enabled"] is False
    assert body["ledgerflow"]["organization"] == "org-a"


@pytest.mark.parametrize("prefix", ["/ajax-api/2.0/mlflow/", "/api/3.0/mlflow/"])
def test_the_ui_and_v3_prefixes_reach_the_same_rpcs(w, prefix):
    response = send("GET", "runs/get", {"run_id": w.run}, prefix=prefix,
                    **bearer(w.personas.alice))
    assert response.status_code == 200
    assert response.json()["run"]["info"]["run_id"] == w.run
    assert_error(send("GET", "runs/get", {"run_id": w.run}, prefix=prefix), 401,
                 "UNAUTHENTICATED")
    assert_error(send("GET", "runs/get", {"run_id": w.run}, prefix=prefix,
                      **bearer(w.personas.charlie)), 404, "RESOURCE_DOES_NOT_EXIST")


def test_a_batch_event_keeps_the_sha256_of_the_body_as_received_and_a_retry_adds_nothing(w):
    """The event holds the request body's SHA-256 (what the client sent, byte for byte), and a
    batch sent again stores no point twice (the insert falls back to skipping known points)."""
    import hashlib

    from tracking.models import Metric

    body = json.dumps({"run_id": w.run, "metrics": [
        {"key": "loss", "value": 0.5 - s / 100, "timestamp": 2000 + s, "step": s}
        for s in range(50)] + [{"key": "m", "value": 1.0, "timestamp": 1001, "step": 1}]}).encode()
    for _attempt in range(2):
        response = send("POST", "runs/log-batch", body=body, **bearer(w.personas.alice))
        assert response.status_code == 200, response.content
        event = AuditEvent.objects.order_by("-id").first()
        assert event.action == "run.batch_logged"
        assert event.after["sha256"] == hashlib.sha256(body).hexdigest()
        assert Metric.objects.filter(run__run_uuid=w.run, key="loss").count() == 50
        assert Metric.objects.filter(run__run_uuid=w.run, key="m").count() == 5
