"""The unchanged `mlflow` client against the live server, through every tracking flow of
MLFLOW_API.md except plain artifact logging (tests/tracking/test_artifacts.py has those).

Each test gets a fresh database (live_server implies transactional_db) and a client from
`mlflow_as(persona)`: the latest call decides whose token every client in the test sends.
"""

import time

import mlflow
import pytest
import requests
from django.apps import apps
from django.urls import Resolver404, resolve
from mlflow.entities import LoggedModelStatus, Metric, Param, RunStatus, RunTag, ViewType
from mlflow.exceptions import MlflowException

from audit.actors import Actor
from audit.models import AuditEvent
from tenancy.services import token_create

API = "/api/2.0/mlflow/"


def artifact_proxy_mounted() -> bool:
    try:
        resolve("/api/2.0/mlflow-artifacts/artifacts/x")
    except (Resolver404, ImportError):
        return False
    return True


# log_model PUTs the model's files through the artifact proxy, written separately.
ARTIFACT_PROXY = pytest.mark.xfail(not artifact_proxy_mounted(),
                                   reason="artifact proxy not mounted yet", strict=False)


def error_code(call, *args, **kwargs) -> str:
    with pytest.raises(MlflowException) as caught:
        call(*args, **kwargs)
    return caught.value.error_code


def audit_events(org) -> int:
    return AuditEvent.objects.filter(org=org).count()


def snapshot() -> dict[str, int]:
    counts = {model.__name__: model.objects.count()
              for model in apps.get_app_config("tracking").get_models()}
    counts["AuditEvent"] = AuditEvent.objects.count()
    return counts


def raw_get(live_server, persona, rpc: str, params: dict) -> dict:
    response = requests.get(f"{live_server.url}{API}{rpc}", params=params, timeout=30,
                            headers={"Authorization": f"Bearer {persona.raw_token}"})
    assert response.status_code == 200, response.text
    return response.json()


def points(*triples) -> list[Metric]:
    """(key, value, step) triples as metric points with a fixed timestamp per step."""
    return [Metric(key, value, 1_700_000_000_000 + step, step) for key, value, step in triples]


# --- experiments and runs -------------------------------------------------------------------

def test_set_experiment_creates_then_finds_by_name(personas, mlflow_as):
    client = mlflow_as(personas.alice)
    created = mlflow.set_experiment("churn")
    assert created.experiment_id != "0"
    assert created.name == "churn"
    assert created.artifact_location == f"mlflow-artifacts:/{created.experiment_id}"
    again = mlflow.set_experiment("churn")
    assert again.experiment_id == created.experiment_id
    assert client.get_experiment_by_name("churn").experiment_id == created.experiment_id
    assert client.get_experiment_by_name("no such experiment") is None
    assert sorted(e.name for e in client.search_experiments()) == ["Default", "churn"]


def test_start_run_without_an_experiment_lands_in_default_0_of_each_org(personas, mlflow_as):
    client = mlflow_as(personas.alice)
    with mlflow.start_run() as alice_run:
        pass
    assert alice_run.info.experiment_id == "0"
    default = client.get_experiment("0")
    assert (default.experiment_id, default.name) == ("0", "Default")
    assert client.get_experiment_by_name("Default").experiment_id == "0"
    assert alice_run.info.artifact_uri.startswith("mlflow-artifacts:/0/")

    client = mlflow_as(personas.charlie)
    with mlflow.start_run() as charlie_run:
        pass
    assert charlie_run.info.experiment_id == "0"
    assert client.get_experiment("0").name == "Default"
    assert [r.info.run_id for r in client.search_runs(["0"])] == [charlie_run.info.run_id]


def test_end_run_finishes_the_run(personas, mlflow_as):
    client = mlflow_as(personas.alice)
    mlflow.set_experiment("lifecycle")
    before = int(time.time() * 1000)
    with mlflow.start_run(run_name="first") as run:
        assert client.get_run(run.info.run_id).info.status == "RUNNING"
    finished = client.get_run(run.info.run_id)
    assert finished.info.status == "FINISHED"
    assert finished.info.run_name == "first"
    assert finished.info.end_time is not None
    assert before - 5_000 <= finished.info.start_time <= finished.info.end_time
    assert finished.info.user_id == finished.data.tags["mlflow.user"]  # the client's word

    with pytest.raises(ZeroDivisionError), mlflow.start_run() as failing:
        1 / 0  # noqa: B018
    assert client.get_run(failing.info.run_id).info.status == "FAILED"


def test_params_metrics_and_tags_through_every_logging_call(personas, mlflow_as):
    client = mlflow_as(personas.alice)
    mlflow.set_experiment("logging")
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"depth": 3, "criterion": "gini"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=4)
        mlflow.set_tag("team", "risk")
        mlflow.set_tags({"stage": "dev", "owner": "alice"})
        client.log_batch(run.info.run_id, metrics=points(("auc", 0.7, 0), ("auc", 0.75, 1)),
                         params=[Param("seed", "7")], tags=[RunTag("batch", "yes")])
    data = client.get_run(run.info.run_id).data
    assert data.params == {"lr": "0.01", "depth": "3", "criterion": "gini", "seed": "7"}
    assert data.metrics == {"loss": 0.2, "acc": 0.9, "f1": 0.8, "auc": 0.75}
    assert {"team": "risk", "stage": "dev", "owner": "alice", "batch": "yes"}.items() \
        <= data.tags.items()
    assert data.tags["mlflow.runName"] == run.info.run_name
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]


def test_params_never_change(personas, mlflow_as):
    client = mlflow_as(personas.alice)
    run = client.create_run(client.create_experiment("params"))
    run_id = run.info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.log_param(run_id, "lr", "0.1")  # the same value again is harmless
    with pytest.raises(MlflowException) as caught:
        client.log_param(run_id, "lr", "0.2")
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Changing param values is not allowed" in caught.value.message
    # A batch with a changed param is refused whole: its metrics are not stored either.
    assert error_code(client.log_batch, run_id, metrics=points(("m", 1.0, 0)),
                      params=[Param("lr", "0.3")]) == "INVALID_PARAMETER_VALUE"
    data = client.get_run(run_id).data
    assert data.params == {"lr": "0.1"}
    assert data.metrics == {}


def test_identical_metric_points_resent_by_log_batch_are_stored_once(personas, mlflow_as):
    client = mlflow_as(personas.alice)
    run_id = client.create_run(client.create_experiment("retries")).info.run_id
    batch = points(("m", 1.0, 0), ("m", 2.0, 1))
    client.log_batch(run_id, metrics=batch)
    client.log_batch(run_id, metrics=batch)  # what a client retry after a 5xx sends
    client.log_batch(run_id, metrics=points(("m", 2.5, 1)))  # same step, other value: a new point
    history = client.get_metric_history(run_id, "m")
    assert sorted((m.step, m.value) for m in history) == [(0, 1.0), (1, 2.0), (1, 2.5)]
    # A stored point with a new one: the batch goes again skipping the stored point, and the
    # new one still becomes the key's latest value.
    client.log_batch(run_id, metrics=points(("m", 2.0, 1), ("m", 3.0, 5)))
    history = client.get_metric_history(run_id, "m")
    assert sorted((m.step, m.value) for m in history) == [(0, 1.0), (1, 2.0), (1, 2.5), (5, 3.0)]
    assert client.get_run(run_id).data.metrics == {"m": 3.0}


def test_each_write_request_leaves_exactly_one_audit_event(personas, mlflow_as):
    client = mlflow_as(personas.alice)
    org = personas.org_a
    before = audit_events(org)
    experiment_id = client.create_experiment("audited")
    assert audit_events(org) == before + 1
    run_id = client.create_run(experiment_id).info.run_id
    assert audit_events(org) == before + 2

    before = audit_events(org)
    client.log_batch(run_id, metrics=points(*[("m", float(s), s) for s in range(500)]),
                     params=[Param(f"p{i}", str(i)) for i in range(50)],
                     tags=[RunTag(f"t{i}", str(i)) for i in range(40)])
    assert audit_events(org) == before + 1
    event = AuditEvent.objects.filter(org=org).order_by("-seq").first()
    assert event.action == "run.batch_logged"
    assert (event.after["metrics"], event.after["params"], event.after["tags"]) == (500, 50, 40)
    assert event.actor_user == personas.alice.user

    before = audit_events(org)
    client.set_tag(run_id, "k", "v")
    assert audit_events(org) == before + 1
    before = audit_events(org)
    client.get_run(run_id)
    client.search_runs([experiment_id])
    assert audit_events(org) == before  # reads leave none
    assert error_code(client.log_param, run_id, "p1", "changed") == "INVALID_PARAMETER_VALUE"
    assert audit_events(org) == before  # nor do refused writes


def test_log_input_records_the_dataset_and_search_finds_it(personas, mlflow_as):
    import pandas as pd

    client = mlflow_as(personas.alice)
    experiment = mlflow.set_experiment("datasets")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    train = mlflow.data.from_pandas(frame, targets="y", name="train-set")
    holdout = mlflow.data.from_pandas(frame.head(2), targets="y", name="holdout")
    with mlflow.start_run(run_name="trained") as trained:
        mlflow.log_input(train, context="training")
    with mlflow.start_run(run_name="evaluated"):
        mlflow.log_input(holdout, context="evaluation")
    with mlflow.start_run(run_name="no-data"):
        pass

    inputs = client.get_run(trained.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.name == "train-set"
    assert inputs[0].dataset.digest == train.digest
    assert {t.key: t.value for t in inputs[0].tags} == {"mlflow.data.context": "training"}

    def names(filter_string):
        runs = mlflow.search_runs([experiment.experiment_id], filter_string, output_format="list")
        return sorted(r.info.run_name for r in runs)

    assert names("datasets.name = 'train-set'") == ["trained"]
    assert names("datasets.context = 'evaluation'") == ["evaluated"]
    assert names("datasets.context LIKE 'train%'") == ["trained"]
    assert names(f"datasets.digest = '{holdout.digest}'") == ["evaluated"]
    assert names("datasets.name IN ('train-set', 'holdout')") == ["evaluated", "trained"]


# --- search ---------------------------------------------------------------------------------

SEARCH_RUNS = [
    # name, start_time, status, metrics, params, tags
    ("alpha-1", 1000, "FINISHED", {"m": 1.0, "acc": 0.5},
     {"p": "a", "lr": "0.1", "my param": "x y"}, {"t": "blue", "team name": "ml"}),
    ("alpha-2", 2000, "RUNNING", {"m": 2.0}, {"p": "B", "lr": "0.2"}, {"t": "green"}),
    ("beta-3", 3000, "FAILED", {"m": 3.0}, {"p": "c"}, {"t": "Blue"}),
    ("beta-4", 4000, "RUNNING", {}, {"p": "abc"}, {}),
]


@pytest.fixture
def search_world(personas, mlflow_as):
    """Four runs of known shape in one experiment of org A; noise in another experiment."""
    client = mlflow_as(personas.alice)
    experiment_id = client.create_experiment("search")
    ids = {}
    for name, start, status, metrics, params, tags in SEARCH_RUNS:
        run_id = client.create_run(experiment_id, start_time=start, run_name=name).info.run_id
        client.log_batch(run_id, metrics=points(*[(k, v, 0) for k, v in metrics.items()]),
                         params=[Param(k, v) for k, v in params.items()],
                         tags=[RunTag(k, v) for k, v in tags.items()])
        if status != "RUNNING":
            client.set_terminated(run_id, status, end_time=start + 500)
        ids[name] = run_id
    noise = client.create_run(client.create_experiment("noise"), run_name="alpha-noise")
    client.log_batch(noise.info.run_id, metrics=points(("m", 2.0, 0)), params=[Param("p", "a")])
    return client, experiment_id, ids


def test_search_runs_with_each_filter_form(search_world):
    _, experiment_id, ids = search_world
    quoted = {name: f"'{run_id}'" for name, run_id in ids.items()}
    cases = [
        ("metrics.m = 2", ["alpha-2"]),
        ("metrics.m != 2", ["alpha-1", "beta-3"]),
        ("metrics.m < 2", ["alpha-1"]),
        ("metrics.m <= 2", ["alpha-1", "alpha-2"]),
        ("metrics.m > 2", ["beta-3"]),
        ("metrics.m >= 2", ["alpha-2", "beta-3"]),
        ("params.p = 'a'", ["alpha-1"]),
        ("params.p != 'a'", ["alpha-2", "beta-3", "beta-4"]),
        ("params.p LIKE 'a%'", ["alpha-1", "beta-4"]),
        ("params.p LIKE 'b'", []),
        ("params.p ILIKE 'b'", ["alpha-2"]),
        ("params.lr IS NULL", ["beta-3", "beta-4"]),
        ("params.lr IS NOT NULL", ["alpha-1", "alpha-2"]),
        ("params.`my param` = 'x y'", ["alpha-1"]),
        ("tags.t = 'blue'", ["alpha-1"]),
        ("tags.t ILIKE 'BLUE'", ["alpha-1", "beta-3"]),
        ("tags.`team name` = 'ml'", ["alpha-1"]),
        (f"attributes.run_id IN ({quoted['alpha-1']}, {quoted['beta-3']})",
         ["alpha-1", "beta-3"]),
        (f"attributes.run_id NOT IN ({quoted['alpha-1']}, {quoted['beta-3']})",
         ["alpha-2", "beta-4"]),
        ("attributes.run_name LIKE 'alpha%'", ["alpha-1", "alpha-2"]),
        ("attributes.`run name` = 'beta-4'", ["beta-4"]),
        ("attributes.status = 'FINISHED'", ["alpha-1"]),
        ("attributes.status != 'RUNNING'", ["alpha-1", "beta-3"]),
        ("attributes.start_time > 2500", ["beta-3", "beta-4"]),
        ("metrics.m >= 1 AND params.p != 'c' AND tags.t LIKE '%e%'", ["alpha-1", "alpha-2"]),
    ]
    mismatches = []
    for filter_string, expected in cases:
        runs = mlflow.search_runs([experiment_id], filter_string, output_format="list")
        found = sorted(r.info.run_name for r in runs)
        if found != expected:
            mismatches.append((filter_string, found, expected))
    assert mismatches == []

    frame = mlflow.search_runs([experiment_id], "metrics.m >= 2")  # pandas, the default format
    assert sorted(frame["tags.mlflow.runName"]) == ["alpha-2", "beta-3"]
    assert set(frame.columns) >= {"run_id", "metrics.m", "params.p", "tags.t", "status"}


def test_search_runs_order_by(search_world):
    _, experiment_id, _ = search_world
    cases = [
        ([], ["beta-4", "beta-3", "alpha-2", "alpha-1"]),
        (["metrics.m DESC"], ["beta-3", "alpha-2", "alpha-1", "beta-4"]),  # missing m last
        (["metrics.m ASC"], ["alpha-1", "alpha-2", "beta-3", "beta-4"]),
        (["params.lr ASC"], ["alpha-1", "alpha-2", "beta-4", "beta-3"]),
        (["attributes.start_time ASC"], ["alpha-1", "alpha-2", "beta-3", "beta-4"]),
        (["attributes.status DESC", "attributes.start_time ASC"],
         ["alpha-2", "beta-4", "alpha-1", "beta-3"]),
    ]
    for order_by, expected in cases:
        runs = mlflow.search_runs([experiment_id], order_by=order_by, output_format="list")
        assert [r.info.run_name for r in runs] == expected, order_by


def test_search_runs_pages_with_max_results_and_page_tokens(search_world):
    client, experiment_id, _ = search_world
    first = client.search_runs([experiment_id], max_results=3,
                               order_by=["attributes.start_time ASC"])
    assert [r.info.run_name for r in first] == ["alpha-1", "alpha-2", "beta-3"]
    assert first.token
    second = client.search_runs([experiment_id], max_results=3, page_token=first.token,
                                order_by=["attributes.start_time ASC"])
    assert [r.info.run_name for r in second] == ["beta-4"]
    assert not second.token
    exact = client.search_runs([experiment_id], max_results=4)
    assert len(exact) == 4 and not exact.token
    assert len(mlflow.search_runs([experiment_id], max_results=2, output_format="list")) == 2
    assert error_code(client.search_runs, [experiment_id], max_results=50001) == \
        "INVALID_PARAMETER_VALUE"
    assert error_code(client.search_runs, [experiment_id], page_token="not-a-token") == \
        "INVALID_PARAMETER_VALUE"
    assert error_code(client.search_runs, [experiment_id], "metrics.m0 >> 1") == \
        "INVALID_PARAMETER_VALUE"


def test_search_runs_by_view_type_after_delete_and_restore(search_world):
    client, experiment_id, ids = search_world
    client.delete_run(ids["beta-4"])
    assert client.get_run(ids["beta-4"]).info.lifecycle_stage == "deleted"
    active = client.search_runs([experiment_id])
    assert "beta-4" not in {r.info.run_name for r in active}
    deleted = client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_name for r in deleted] == ["beta-4"]
    assert len(client.search_runs([experiment_id], run_view_type=ViewType.ALL)) == 4
    assert error_code(client.log_metric, ids["beta-4"], "m", 1.0) == "INVALID_PARAMETER_VALUE"
    client.restore_run(ids["beta-4"])
    assert client.get_run(ids["beta-4"]).info.lifecycle_stage == "active"
    assert len(client.search_runs([experiment_id])) == 4


# --- metric history -------------------------------------------------------------------------

def test_metric_history_of_2600_points_across_pages(personas, mlflow_as, live_server):
    client = mlflow_as(personas.alice)
    run_id = client.create_run(client.create_experiment("long")).info.run_id
    other_id = client.create_run(client.create_experiment("short")).info.run_id
    before = audit_events(personas.org_a)
    client.log_batch(run_id, metrics=points(*[("loss", 1.0 / (s + 1), s) for s in range(2600)]))
    assert audit_events(personas.org_a) == before + 3  # the client sends 1000 per request
    client.log_batch(other_id, metrics=points(*[("loss", float(s), s) for s in range(10)]))

    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(2600))
    assert history[-1].value == 1.0 / 2600

    steps, token, pages = [], None, 0
    while True:
        params = {"run_id": run_id, "metric_key": "loss", "max_results": 1000}
        if token:
            params["page_token"] = token
        body = raw_get(live_server, personas.alice, "metrics/get-history", params)
        steps += [p["step"] for p in body["metrics"]]
        pages += 1
        token = body.get("next_page_token")
        if not token:
            break
    assert pages == 3
    assert steps == list(range(2600))

    body = raw_get(live_server, personas.alice, "metrics/get-history-bulk-interval",
                   {"run_ids": [run_id, other_id], "metric_key": "loss", "max_results": 5})
    by_run = {}
    for point in body["metrics"]:
        by_run.setdefault(point["run_id"], []).append(point["step"])
    assert len(by_run[run_id]) == 5
    assert by_run[run_id][0] == 0 and by_run[run_id][-1] == 2599
    assert by_run[run_id] == sorted(by_run[run_id])
    assert len(by_run[other_id]) == 5 and by_run[other_id][-1] == 9
    window = raw_get(live_server, personas.alice, "metrics/get-history-bulk-interval",
                     {"run_ids": run_id, "metric_key": "loss", "start_step": 100,
                      "end_step": 109, "max_results": 100})
    assert [p["step"] for p in window["metrics"]] == list(range(100, 110))


# --- experiments ------------------------------------------------------------------------------

def test_delete_restore_and_rename_experiment(personas, mlflow_as):
    client = mlflow_as(personas.alice)
    experiment_id = client.create_experiment("old-name")
    run_id = client.create_run(experiment_id).info.run_id
    client.rename_experiment(experiment_id, "new-name")
    assert client.get_experiment(experiment_id).name == "new-name"
    assert client.get_experiment_by_name("old-name") is None
    assert client.get_experiment_by_name("new-name").experiment_id == experiment_id

    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert "new-name" not in {e.name for e in client.search_experiments()}
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert [e.experiment_id for e in deleted] == [experiment_id]
    assert error_code(client.create_run, experiment_id) == "INVALID_PARAMETER_VALUE"
    assert error_code(client.delete_experiment, "0") == "INVALID_PARAMETER_VALUE"

    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert error_code(client.create_experiment, "new-name") == "RESOURCE_ALREADY_EXISTS"


def test_experiment_tags(personas, mlflow_as):
    client = mlflow_as(personas.alice)
    experiment_id = client.create_experiment("tagged", tags={"team": "risk"})
    client.set_experiment_tag(experiment_id, "stage", "dev")
    client.set_experiment_tag(experiment_id, "stage", "prod")  # tags may change
    mlflow.set_experiment(experiment_id=experiment_id)
    mlflow.set_experiment_tags({"owner": "alice"})
    assert client.get_experiment(experiment_id).tags == \
        {"team": "risk", "stage": "prod", "owner": "alice"}
    client.delete_experiment_tag(experiment_id, "team")
    assert client.get_experiment(experiment_id).tags == {"stage": "prod", "owner": "alice"}
    assert error_code(client.delete_experiment_tag, experiment_id, "team") == \
        "RESOURCE_DOES_NOT_EXIST"


def test_search_experiments_with_filter_and_order(personas, mlflow_as):
    client = mlflow_as(personas.alice)
    client.search_experiments()  # makes the Default experiment, which exists on first use
    for name, team in [("exp-a", "x"), ("exp-b", "y"), ("exp-c", "x"), ("other", "x")]:
        time.sleep(0.002)  # distinct creation times
        client.create_experiment(name, tags={"team": team})

    def names(**kwargs):
        return [e.name for e in client.search_experiments(**kwargs)]

    assert names(filter_string="name LIKE 'exp-%'", order_by=["name DESC"]) == \
        ["exp-c", "exp-b", "exp-a"]
    assert names(filter_string="tags.team = 'x'", order_by=["name ASC"]) == \
        ["exp-a", "exp-c", "other"]
    assert names(filter_string="name ILIKE 'EXP-%' AND tags.team != 'x'") == ["exp-b"]
    assert names(filter_string="tags.team IS NULL") == ["Default"]
    assert names(filter_string="experiment_id = '0'") == ["Default"]
    assert names(order_by=["creation_time ASC"]) == ["Default", "exp-a", "exp-b", "exp-c", "other"]
    assert names(order_by=["creation_time DESC"])[0] == "other"
    first = client.search_experiments(max_results=2, order_by=["name ASC"])
    assert [e.name for e in first] == ["Default", "exp-a"] and first.token
    rest = client.search_experiments(max_results=10, order_by=["name ASC"],
                                     page_token=first.token)
    assert [e.name for e in rest] == ["exp-b", "exp-c", "other"] and not rest.token
    assert error_code(client.search_experiments, filter_string="name >> 'x'") == \
        "INVALID_PARAMETER_VALUE"


def test_delete_tag(personas, mlflow_as):
    client = mlflow_as(personas.alice)
    run_id = client.create_run(client.create_experiment("tags")).info.run_id
    client.set_tag(run_id, "keep", "1")
    client.set_tag(run_id, "drop", "2")
    client.delete_tag(run_id, "drop")
    tags = client.get_run(run_id).data.tags
    assert "drop" not in tags and tags["keep"] == "1"
    assert error_code(client.delete_tag, run_id, "drop") == "RESOURCE_DOES_NOT_EXIST"


# --- isolation and roles ------------------------------------------------------------------------

def test_charlie_cannot_see_or_change_org_a_through_the_client(personas, mlflow_as):
    alice = mlflow_as(personas.alice)
    experiment = mlflow.set_experiment("shared-name")
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
        mlflow.log_param("p", "a")
    alice_run = run.info.run_id
    a_events = audit_events(personas.org_a)

    charlie = mlflow_as(personas.charlie)
    assert charlie.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL) == []
    assert mlflow.search_runs([experiment.experiment_id], output_format="list") == []
    assert error_code(charlie.get_run, alice_run) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(charlie.get_experiment, experiment.experiment_id) == \
        "RESOURCE_DOES_NOT_EXIST"
    assert charlie.get_experiment_by_name("shared-name") is None
    assert error_code(charlie.get_metric_history, alice_run, "m") == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(charlie.log_metric, alice_run, "m", 2.0) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(charlie.set_tag, alice_run, "x", "y") == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(charlie.delete_run, alice_run) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(charlie.create_run, experiment.experiment_id) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(charlie.delete_experiment, experiment.experiment_id) == \
        "RESOURCE_DOES_NOT_EXIST"
    assert error_code(charlie.rename_experiment, experiment.experiment_id, "mine") == \
        "RESOURCE_DOES_NOT_EXIST"
    assert audit_events(personas.org_a) == a_events

    own = mlflow.set_experiment("shared-name")  # the same name is free in org B
    assert own.experiment_id != experiment.experiment_id
    assert sorted(e.name for e in charlie.search_experiments(view_type=ViewType.ALL)) == \
        ["Default", "shared-name"]

    alice = mlflow_as(personas.alice)
    data = alice.get_run(alice_run).data
    assert (data.metrics, data.params) == ({"m": 1.0}, {"p": "a"})
    assert alice.get_experiment(experiment.experiment_id).name == "shared-name"


@pytest.mark.parametrize("who", ["bob (viewer)", "alice's read-only token"])
def test_read_only_callers_read_but_every_write_is_permission_denied(personas, mlflow_as, who):
    client = mlflow_as(personas.alice)
    experiment_id = client.create_experiment("readable")
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "m", 1.0, step=0)
    client.search_experiments()  # the Default experiment is made on first use, even by a read
    if who.startswith("bob"):
        reader = personas.bob
    else:
        _, reader = token_create(org=personas.org_a, user=personas.alice.user, name="ro",
                                 actor=Actor.command("test"), read_only=True)
    before = snapshot()

    client = mlflow_as(reader)
    assert client.get_run(run_id).data.metrics == {"m": 1.0}
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [run_id]
    assert client.get_experiment(experiment_id).name == "readable"
    assert len(client.get_metric_history(run_id, "m")) == 1
    assert {e.name for e in client.search_experiments()} == {"Default", "readable"}

    assert error_code(client.create_experiment, "nope") == "PERMISSION_DENIED"
    assert error_code(client.create_run, experiment_id) == "PERMISSION_DENIED"
    assert error_code(client.log_metric, run_id, "m", 2.0) == "PERMISSION_DENIED"
    assert error_code(client.log_param, run_id, "p", "1") == "PERMISSION_DENIED"
    assert error_code(client.set_tag, run_id, "k", "v") == "PERMISSION_DENIED"
    assert error_code(client.log_batch, run_id, metrics=points(("m", 3.0, 1))) == \
        "PERMISSION_DENIED"
    assert error_code(client.set_terminated, run_id) == "PERMISSION_DENIED"
    assert error_code(client.delete_run, run_id) == "PERMISSION_DENIED"
    assert error_code(client.delete_experiment, experiment_id) == "PERMISSION_DENIED"
    assert error_code(mlflow.start_run, experiment_id=experiment_id) == "PERMISSION_DENIED"
    assert snapshot() == before


# --- models -----------------------------------------------------------------------------------

@ARTIFACT_PROXY
def test_sklearn_log_model_through_logged_models_and_artifact_puts(personas, mlflow_as):
    from sklearn.linear_model import LogisticRegression

    client = mlflow_as(personas.alice)
    mlflow.set_experiment("models")
    features, labels = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    model = LogisticRegression().fit(features, labels)
    with mlflow.start_run() as run:
        # cloudpickle: skops, the default format, is not installed; pinned requirements spare
        # the inference subprocess.
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"],
                                        serialization_format="cloudpickle")
    logged = client.get_logged_model(info.model_id)
    assert logged.status == LoggedModelStatus.READY
    assert logged.source_run_id == run.info.run_id
    assert logged.experiment_id == run.info.experiment_id
    outputs = client.get_run(run.info.run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [info.model_id]
    found = client.search_logged_models([run.info.experiment_id])
    assert [m.model_id for m in found] == [info.model_id]

    loaded = mlflow.sklearn.load_model(info.model_uri)
    assert list(loaded.predict(features)) == list(model.predict(features))
    assert client.get_run(run.info.run_id).info.status == RunStatus.to_string(RunStatus.FINISHED)
    listed = {f.path for f in client.list_logged_model_artifacts(info.model_id)}
    assert {"MLmodel", "model.pkl"} <= listed
