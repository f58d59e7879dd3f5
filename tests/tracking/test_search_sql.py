"""MLflow search translated into SQL, on the database directly (no server, no client).

Runs are built with the tracking services; `tracking.search.runs_queryset` must filter and
order in the database (one query, whatever the number of runs), and a page of runs must load
in a fixed handful of queries. Runs on PostgreSQL and on SQLite (the embedded default).
"""

import json
import math
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.actors import Actor
from config.exceptions import ApplicationError
from tracking import search
from tracking.models import LatestMetric, Metric, Run
from tracking.services.experiments import experiment_create, experiment_default
from tracking.services.inputs import run_log_inputs
from tracking.services.runs import run_create, run_log_batch, run_set_lifecycle, run_update

ACTOR = Actor.command("test-search")


def log(run, *, metrics=(), params=None, tags=None):
    """Log through the service the API uses; metrics as (key, value, step) or with a timestamp."""
    points = []
    for metric in metrics:
        key, value, step, timestamp = (*metric, 1_000 + metric[2])[:4]
        points.append({"key": key, "value": value, "step": step, "timestamp": timestamp})
    run_log_batch(run=run, actor=ACTOR, metrics=points,
                  params=[{"key": k, "value": v} for k, v in (params or {}).items()],
                  tags=[{"key": k, "value": v} for k, v in (tags or {}).items()], payload={})


def dataset(name: str, context: str) -> dict:
    return {"dataset": {"name": name, "digest": f"d-{name}", "source_type": "local",
                        "source": f'{{"uri": "/data/{name}.csv"}}'},
            "tags": [{"key": "mlflow.data.context", "value": context}]}


@dataclass
class World:
    org: object
    experiment: object
    runs: dict  # name -> Run

    def query(self, filter_string: str = "", order_by=(), view_type: str = "ACTIVE_ONLY"):
        return search.runs_queryset(org=self.org, experiments=[self.experiment],
                                    filter_string=filter_string, view_type=view_type,
                                    order_by=list(order_by))

    def names(self, filter_string: str = "", order_by=(), view_type: str = "ACTIVE_ONLY"):
        return [run.name for run in self.query(filter_string, order_by, view_type)]

    def ids(self, *names: str) -> str:
        return ", ".join(f"'{self.runs[n].run_uuid}'" for n in names)


@pytest.fixture
def world(personas) -> World:
    """Four runs in one experiment of org A, a run in another experiment, one in org B.

    | run     | start | status   | m   | acc | p     | lr  | `my param` | t     | `team name` | input    |
    | alpha-1 | 1000  | FINISHED | 1.0 | 0.5 | "a"   | 0.1 | "x y"      | blue  | ml          | train    |
    | alpha-2 | 2000  | RUNNING  | 2.0 |     | "B"   | 0.2 |            | green |             | eval     |
    | beta-3  | 3000  | FAILED   | 3.0 |     | "c"   |     |            | Blue  |             |          |
    | beta-4  | 4000  | RUNNING  |     |     | "abc" |     |            |       |             |          |
    Inputs: dataset "train" with context "training", dataset "eval" with context "eval".
    """
    org = personas.org_a
    experiment = experiment_create(org=org, name="search", actor=ACTOR)
    runs = {name: run_create(experiment=experiment, actor=ACTOR, run_name=name, start_time=start)
            for name, start in [("alpha-1", 1000), ("alpha-2", 2000), ("beta-3", 3000),
                                ("beta-4", 4000)]}
    log(runs["alpha-1"], metrics=[("m", 5.0, 0), ("m", 1.0, 1), ("acc", 0.5, 0)],
        params={"p": "a", "lr": "0.1", "my param": "x y"}, tags={"t": "blue", "team name": "ml"})
    log(runs["alpha-2"], metrics=[("m", 2.0, 0)], params={"p": "B", "lr": "0.2"},
        tags={"t": "green"})
    log(runs["beta-3"], metrics=[("m", 3.0, 0)], params={"p": "c"}, tags={"t": "Blue"})
    log(runs["beta-4"], params={"p": "abc"})
    run_update(run=runs["alpha-1"], actor=ACTOR, status="FINISHED", end_time=1500)
    run_update(run=runs["beta-3"], actor=ACTOR, status="FAILED", end_time=3500)
    run_log_inputs(run=runs["alpha-1"], actor=ACTOR, datasets=[dataset("train", "training")],
                   models=[])
    run_log_inputs(run=runs["alpha-2"], actor=ACTOR, datasets=[dataset("eval", "eval")],
                   models=[])
    # Noise that no search over the experiment may return.
    other = experiment_create(org=org, name="other", actor=ACTOR)
    log(run_create(experiment=other, actor=ACTOR, run_name="alpha-other"),
        metrics=[("m", 2.0, 0)], params={"p": "a"}, tags={"t": "blue"})
    log(run_create(experiment=experiment_default(org=personas.org_b), actor=ACTOR,
                   run_name="alpha-b"), metrics=[("m", 2.0, 0)], params={"p": "a"})
    return World(org, experiment, runs)


ALL = ["alpha-1", "alpha-2", "beta-3", "beta-4"]
FILTERS = [
    # metrics compare the latest value (alpha-1's m was 5.0 at step 0, then 1.0 at step 1)
    ("metrics.m = 2", ["alpha-2"]),
    ("metrics.m = 5", []),
    ("metrics.m != 2", ["alpha-1", "beta-3"]),  # a run without m never matches
    ("metrics.m < 2", ["alpha-1"]),
    ("metrics.m <= 2", ["alpha-1", "alpha-2"]),
    ("metrics.m > 2", ["beta-3"]),
    ("metrics.m >= 2", ["alpha-2", "beta-3"]),
    ("metrics.m > 1.5 AND metrics.m < 2.5", ["alpha-2"]),
    ("metrics.acc >= 0.5", ["alpha-1"]),
    ("params.p = 'a'", ["alpha-1"]),
    ("params.p != 'a'", ["alpha-2", "beta-3", "beta-4"]),
    ("params.p LIKE 'a%'", ["alpha-1", "beta-4"]),
    ("params.p LIKE 'b'", []),  # LIKE is case-sensitive
    ("params.p ILIKE 'b'", ["alpha-2"]),
    ("params.p LIKE '_b_'", ["beta-4"]),
    ("params.lr IS NULL", ["beta-3", "beta-4"]),
    ("params.lr IS NOT NULL", ["alpha-1", "alpha-2"]),
    ("params.`my param` = 'x y'", ["alpha-1"]),
    ('params."my param" = \'x y\'', ["alpha-1"]),
    ("tags.t = 'blue'", ["alpha-1"]),
    ("tags.t ILIKE 'blue'", ["alpha-1", "beta-3"]),
    ("tags.t LIKE 'B%'", ["beta-3"]),
    ("tags.t IS NULL", ["beta-4"]),
    ("tags.`team name` = 'ml'", ["alpha-1"]),
    ("tags.`mlflow.runName` = 'beta-3'", ["beta-3"]),
    ("attributes.run_name = 'alpha-2'", ["alpha-2"]),
    ("attributes.run_name LIKE 'alpha%'", ["alpha-1", "alpha-2"]),
    ("attributes.run_name ILIKE 'ALPHA%'", ["alpha-1", "alpha-2"]),
    ("attributes.`Run name` != 'alpha-2'", ["alpha-1", "beta-3", "beta-4"]),
    ("attributes.status = 'FAILED'", ["beta-3"]),
    ("attributes.status != 'RUNNING'", ["alpha-1", "beta-3"]),
    ("attributes.start_time > 2500", ["beta-3", "beta-4"]),
    ("attributes.start_time <= 2000", ["alpha-1", "alpha-2"]),
    ("attributes.created >= 3000", ["beta-3", "beta-4"]),
    ("attributes.end_time < 2000", ["alpha-1"]),
    ("datasets.name = 'train'", ["alpha-1"]),
    ("datasets.name IN ('train', 'eval')", ["alpha-1", "alpha-2"]),
    ("datasets.digest = 'd-eval'", ["alpha-2"]),
    ("datasets.context = 'training'", ["alpha-1"]),
    ("datasets.context != 'training'", ["alpha-2"]),
    ("datasets.context LIKE 'train%'", ["alpha-1"]),
    ("metrics.m > 0 AND params.p != 'a' AND tags.t ILIKE '%e%' AND attributes.status = 'RUNNING'",
     ["alpha-2"]),
]


@pytest.mark.parametrize(("filter_string", "expected"), FILTERS, ids=[f for f, _ in FILTERS])
def test_each_filter_form_selects_the_right_runs(world, filter_string, expected):
    assert sorted(world.names(filter_string)) == expected


def test_run_id_in_and_not_in(world):
    assert sorted(world.names(f"attributes.run_id IN ({world.ids('alpha-1', 'beta-3')})")) \
        == ["alpha-1", "beta-3"]
    assert sorted(world.names(f"attributes.run_id NOT IN ({world.ids('alpha-1', 'beta-3')})")) \
        == ["alpha-2", "beta-4"]
    assert world.names(f"attributes.run_id = {world.ids('alpha-2')}") == ["alpha-2"]


ORDERS = [
    ([], ["beta-4", "beta-3", "alpha-2", "alpha-1"]),  # newest first by default
    (["metrics.m DESC"], ["beta-3", "alpha-2", "alpha-1", "beta-4"]),
    (["metrics.m ASC"], ["alpha-1", "alpha-2", "beta-3", "beta-4"]),  # missing last both ways
    (["params.lr ASC"], ["alpha-1", "alpha-2", "beta-4", "beta-3"]),  # ties: newest first
    (["params.lr DESC"], ["alpha-2", "alpha-1", "beta-4", "beta-3"]),
    (["tags.`mlflow.runName` DESC"], ["beta-4", "beta-3", "alpha-2", "alpha-1"]),
    (["tags.t DESC", "attributes.start_time ASC"], ["alpha-2", "alpha-1", "beta-3", "beta-4"]),
    (["attributes.start_time ASC"], ["alpha-1", "alpha-2", "beta-3", "beta-4"]),
    (["attributes.start_time"], ["alpha-1", "alpha-2", "beta-3", "beta-4"]),
    (["attributes.run_name DESC"], ["beta-4", "beta-3", "alpha-2", "alpha-1"]),
    (["attributes.status ASC", "metrics.m DESC"], ["beta-3", "alpha-1", "alpha-2", "beta-4"]),
    (["metrics.`m` DESC"], ["beta-3", "alpha-2", "alpha-1", "beta-4"]),
]


@pytest.mark.parametrize(("order_by", "expected"), ORDERS, ids=[" | ".join(o) for o, _ in ORDERS])
def test_order_by(world, order_by, expected):
    assert world.names(order_by=order_by) == expected


def test_view_types_select_by_lifecycle(world):
    run_set_lifecycle(run=world.runs["beta-4"], stage="deleted", actor=ACTOR)
    assert sorted(world.names()) == ["alpha-1", "alpha-2", "beta-3"]
    assert world.names(view_type="DELETED_ONLY") == ["beta-4"]
    assert sorted(world.names(view_type="ALL")) == ALL


@pytest.mark.parametrize("filter_string", [
    "metrics.m0 >> 1", "metrics.m <> 1", "metrics.m LIKE 1", "params.p > 'a'",
    "tags.t < 'a'", "attributes.status > 'a'", "attributes.start_time LIKE 5",
    "datasets.name > 'a'", "attributes.run_id NOT LIKE 'a'",
    "foo.bar = 1", "metrics.m = 'x'", "a = 1 OR b = 2", "metrics.m IS NULL",
    "attributes.run_name IN ('a')",
])
def test_malformed_filters_are_refused_before_any_query(world, filter_string):
    with CaptureQueriesContext(connection) as queries, \
            pytest.raises(ApplicationError) as caught:
        list(world.query(filter_string))
    assert caught.value.kind == "invalid"
    assert caught.value.message
    assert len(queries) == 0


@pytest.mark.parametrize("order_by", ["metrics.m SIDEWAYS", "foo.m DESC",
                                      "attributes.lifecycle_stage ASC", ""])
def test_malformed_order_by_is_refused(world, order_by):
    with pytest.raises(ApplicationError) as caught:
        list(world.query(order_by=[order_by]))
    assert caught.value.kind == "invalid"


def test_like_is_case_sensitive_and_ilike_is_not(world):
    assert connection.vendor in ("postgresql", "sqlite")
    assert world.names("params.p LIKE 'B'") == ["alpha-2"]
    assert world.names("params.p LIKE 'b'") == []
    assert world.names("params.p ILIKE 'b'") == ["alpha-2"]
    assert world.names("tags.t LIKE 'blue'") == ["alpha-1"]
    assert sorted(world.names("tags.t ILIKE 'BLUE'")) == ["alpha-1", "beta-3"]
    assert world.names("attributes.run_name LIKE 'ALPHA%'") == []
    assert sorted(world.names("attributes.run_name ILIKE 'ALPHA%'")) == ["alpha-1", "alpha-2"]
    assert world.names("datasets.name LIKE 'TRAIN'") == []
    assert world.names("datasets.name ILIKE 'TRAIN'") == ["alpha-1"]


FILTERED_ORDERS = [
    # a filter on the key the page is sorted by: the sort key's join becomes the filter
    ("metrics.m > 1", ["metrics.m DESC"], ["beta-3", "alpha-2"]),
    ("metrics.m > 0", ["metrics.m ASC"], ["alpha-1", "alpha-2", "beta-3"]),
    ("metrics.m >= 2 AND metrics.m < 3", ["metrics.m DESC"], ["alpha-2"]),
    ("metrics.m != 2", ["metrics.m DESC"], ["beta-3", "alpha-1"]),
    ("params.lr IS NOT NULL", ["params.lr DESC"], ["alpha-2", "alpha-1"]),
    ("params.lr IS NULL", ["params.lr DESC"], ["beta-4", "beta-3"]),
    ("params.lr = '0.1'", ["params.lr ASC", "metrics.m DESC"], ["alpha-1"]),
    ("tags.t LIKE '%e%' AND tags.t != 'Blue'", ["tags.t ASC"], ["alpha-1", "alpha-2"]),
    ("metrics.m < 3 AND params.p != 'a'", ["metrics.m DESC", "params.p ASC"], ["alpha-2"]),
]


@pytest.mark.parametrize(("filter_string", "order_by", "expected"), FILTERED_ORDERS,
                         ids=[f"{f} | {' '.join(o)}" for f, o, _ in FILTERED_ORDERS])
def test_filter_and_order_on_the_same_key(world, filter_string, order_by, expected):
    assert world.names(filter_string, order_by) == expected


def test_a_filter_on_the_sort_key_is_checked_on_its_join(world):
    """So PostgreSQL can walk the (key, value) index in order and stop after a page."""
    sql = str(world.query("metrics.m > 1", ["metrics.m DESC"]).query).upper()
    assert "INNER JOIN" in sql and "EXISTS" not in sql
    assert "NULLS LAST" not in sql.split("ORDER BY")[1].split(",")[0]


def test_a_page_built_by_the_database_says_what_the_orm_says(personas):
    """Search pages on PostgreSQL are JSON made by the database (search._PAGE_SQL); the same
    runs serialized one by one must read the same."""
    import orjson

    experiment = experiment_create(org=personas.org_a, name="page", actor=ACTOR)
    for index in range(3):
        run = run_create(experiment=experiment, actor=ACTOR, run_name=f'run "{index}" ü',
                         start_time=index)
        log(run, metrics=[("loss", 0.1 + 0.2 * index, 0), ("odd", math.nan, 1),
                          ("up", math.inf, 0), ("tiny", 1e-300, 0)],
            params={"lr": str(index), "note": "x\ny"}, tags={"team": "ml"})
    page, _token = search.runs(org=personas.org_a, experiment_ids=[experiment.public_id],
                               filter_string="", view_type="ALL", max_results=10,
                               order_by=[], page_token="")
    runs = Run.objects.filter(experiment=experiment).order_by("-start_time")
    one_by_one = [search.runs_serialized(personas.org_a, [run])[0] for run in runs]

    def by_key(bodies):
        for body in bodies:
            for part in ("metrics", "params", "tags"):
                body["data"][part].sort(key=lambda item: item["key"])
        return bodies

    assert by_key(orjson.loads(orjson.dumps(page))) == \
        by_key(orjson.loads(orjson.dumps(one_by_one)))
    assert {m["key"]: m["value"] for m in orjson.loads(orjson.dumps(page))[0]["data"]["metrics"]} \
        == {"loss": 0.1 + 0.2 * 2, "odd": "NaN", "up": "Infinity", "tiny": 1e-300}


def test_filtering_and_ordering_is_one_sql_query(world):
    queryset = world.query("metrics.m > 1 AND params.p != 'a' AND tags.t IS NOT NULL",
                           ["metrics.m DESC"])
    with CaptureQueriesContext(connection) as queries:
        names = [run.name for run in queryset]
    assert names == ["beta-3", "alpha-2"]
    assert len(queries) == 1
    sql = queries[0]["sql"].upper()
    assert "EXISTS" in sql and "ORDER BY" in sql


def build_runs(org, count: int):
    experiment = experiment_create(org=org, name=f"bulk-{count}", actor=ACTOR)
    for index in range(count):
        run = run_create(experiment=experiment, actor=ACTOR, run_name=f"run-{index}",
                         start_time=index)
        log(run, metrics=[("loss", 1.0 / (index + 1), 0), ("acc", index / count, 0),
                          ("loss", 0.5 / (index + 1), 1)],
            params={"lr": str(index), "depth": "3", "seed": "7"},
            tags={"team": "ml", "idx": str(index)})
        run_log_inputs(run=run, actor=ACTOR, datasets=[dataset("train", "training")],
                       models=[])
    return experiment


def search_page(org, experiment, max_results=50) -> tuple[list[dict], int]:
    with CaptureQueriesContext(connection) as queries:
        page, _token = search.runs(
            org=org, experiment_ids=[experiment.public_id],
            filter_string="metrics.loss < 10 AND params.depth = '3' AND tags.team = 'ml'",
            view_type="ACTIVE_ONLY", max_results=max_results, order_by=["metrics.acc DESC"],
            page_token="")
    return page, len(queries)


def test_a_page_of_runs_loads_in_a_fixed_number_of_queries(personas):
    small = build_runs(personas.org_a, 10)
    large = build_runs(personas.org_a, 50)
    small_page, small_queries = search_page(personas.org_a, small)
    large_page, large_queries = search_page(personas.org_a, large)
    assert len(small_page) == 10 and len(large_page) == 50
    assert large_queries == small_queries <= 9
    first = large_page[0]
    assert first["info"]["run_name"] == "run-49"
    assert {m["key"]: m["value"] for m in first["data"]["metrics"]} == \
        {"loss": 0.5 / 50, "acc": 49 / 50}
    assert {p["key"] for p in first["data"]["params"]} == {"lr", "depth", "seed"}
    assert {t["key"] for t in first["data"]["tags"]} >= {"team", "idx", "mlflow.runName"}
    assert first["inputs"]["dataset_inputs"][0]["dataset"]["name"] == "train"


def test_pages_follow_each_other_without_gaps_or_repeats(personas):
    experiment = build_runs(personas.org_a, 23)
    seen, token, pages = [], "", 0
    while True:
        page, token = search.runs(org=personas.org_a, experiment_ids=[experiment.public_id],
                                  filter_string="", view_type="ACTIVE_ONLY", max_results=5,
                                  order_by=["params.lr ASC"], page_token=token)
        seen += [run["info"]["run_name"] for run in page]
        pages += 1
        if not token:
            break
    assert pages == 5
    # params are text: "10" sorts before "2"
    assert seen == [f"run-{i}" for i in sorted(range(23), key=str)]


@pytest.mark.parametrize("token", ["!!!", "bm90IGpzb24=", "eyJvZmZzZXQiOiAtMX0=",
                                   "eyJvZmZzZXQiOiAiYSJ9", "W10="])
def test_bad_page_tokens_are_refused(world, token):
    with pytest.raises(ApplicationError) as caught:
        search.runs(org=world.org, experiment_ids=[world.experiment.public_id],
                    filter_string="", view_type="ACTIVE_ONLY", max_results=10, order_by=[],
                    page_token=token)
    assert caught.value.kind == "invalid"


@pytest.mark.parametrize("max_results", [0, -1, 50001])
def test_max_results_outside_1_to_50000_is_refused(world, max_results):
    with pytest.raises(ApplicationError, match="max_results"):
        search.runs(org=world.org, experiment_ids=[world.experiment.public_id],
                    filter_string="", view_type="ACTIVE_ONLY", max_results=max_results,
                    order_by=[], page_token="")


def test_runs_of_other_orgs_and_unknown_experiments_match_nothing(world, personas):
    page, _ = search.runs(org=personas.org_b, experiment_ids=[world.experiment.public_id],
                          filter_string="", view_type="ALL", max_results=100, order_by=[],
                          page_token="")
    assert page == []
    page, _ = search.runs(org=personas.org_b, experiment_ids=["0", "999999", "nope"],
                          filter_string="", view_type="ALL", max_results=100, order_by=[],
                          page_token="")
    assert [run["info"]["run_name"] for run in page] == ["alpha-b"]
    page, token = search.runs(org=personas.org_b, experiment_ids=["999999", "nope"],
                              filter_string="", view_type="ALL", max_results=100, order_by=[],
                              page_token="")
    assert (page, token) == ([], "")  # no experiment at all: nothing asked of the database


def test_non_finite_metric_values_round_trip_as_protobuf_strings(personas, request):
    # NaN is stored as 0 with is_nan set (SQLite has no NaN), on every database alike.
    experiment = experiment_create(org=personas.org_a, name="nan", actor=ACTOR)
    run = run_create(experiment=experiment, actor=ACTOR, run_name="nan")
    log(run, metrics=[("loss", math.nan, 0), ("loss", 1.0, 1), ("loss", math.nan, 2),
                      ("up", math.inf, 0), ("down", -math.inf, 0)])
    log(run, metrics=[("loss", math.nan, 2)])  # an identical re-sent NaN point is stored once

    assert Metric.objects.filter(run=run, key="loss").count() == 3
    history, _ = search.metric_history(run=run, key="loss", max_results=None, page_token="")
    assert [p["value"] for p in history] == ["NaN", 1.0, "NaN"]
    latest = {m["key"]: m["value"] for m in search.runs_serialized(personas.org_a, [run])[0]
              ["data"]["metrics"]}
    assert latest == {"loss": "NaN", "up": "Infinity", "down": "-Infinity"}
    stored = LatestMetric.objects.get(run=run, key="loss")
    assert stored.step == 2 and stored.is_nan
    nan_filtered, _ = search.runs(org=personas.org_a, experiment_ids=[experiment.public_id],
                                  filter_string="metrics.loss < 1", view_type="ALL",
                                  max_results=10, order_by=[], page_token="")
    assert nan_filtered == []  # a NaN compares with nothing


def test_latest_metric_is_the_highest_step_not_the_last_sent(personas):
    experiment = experiment_create(org=personas.org_a, name="latest", actor=ACTOR)
    run = run_create(experiment=experiment, actor=ACTOR, run_name="latest")
    log(run, metrics=[("m", 9.0, 5, 10)])
    log(run, metrics=[("m", 1.0, 2, 20)])  # sent later, but an earlier step
    log(run, metrics=[("m", 7.0, 5, 30)])  # same step, later timestamp: this one is latest
    world = World(personas.org_a, experiment, {"latest": run})
    assert world.names("metrics.m = 7") == ["latest"]
    assert Run.objects.get(pk=run.pk).latest_metrics.get(key="m").value == 7.0


def test_within_one_batch_the_latest_is_the_highest_point_and_the_first_sent_among_equals(
        personas):
    """Each key's latest value comes out of the batch itself (SQL on PostgreSQL, Python on
    SQLite): by (step, timestamp, value), and a NaN (stored as 0) against a 0 at the same step
    and time is a tie that the first point sent wins."""
    experiment = experiment_create(org=personas.org_a, name="ties", actor=ACTOR)
    nan_first = run_create(experiment=experiment, actor=ACTOR, run_name="nan-first")
    zero_first = run_create(experiment=experiment, actor=ACTOR, run_name="zero-first")
    log(nan_first, metrics=[("m", 3.0, 1, 9), ("m", math.nan, 4, 5), ("m", 0.0, 4, 5),
                            ("m", -1.0, 4, 4), ("k", 2.0, 0, 1), ("k", 5.0, 0, 1)])
    log(zero_first, metrics=[("m", 0.0, 4, 5), ("m", math.nan, 4, 5)])
    latest = {(row.run_id, row.key): (row.value, row.is_nan, row.step, row.timestamp)
              for row in LatestMetric.objects.filter(run__experiment=experiment)}
    assert latest == {(nan_first.pk, "m"): (0.0, True, 4, 5),
                      (nan_first.pk, "k"): (5.0, False, 0, 1),
                      (zero_first.pk, "m"): (0.0, False, 4, 5)}
    # Sent again whole (a client retry): nothing changes, no point is stored twice.
    log(nan_first, metrics=[("m", 3.0, 1, 9), ("m", math.nan, 4, 5), ("m", 0.0, 4, 5)])
    assert Metric.objects.filter(run=nan_first).count() == 6
    assert LatestMetric.objects.get(run=nan_first, key="m").is_nan


def test_metric_history_pages_in_step_order(personas):
    experiment = experiment_create(org=personas.org_a, name="history", actor=ACTOR)
    run = run_create(experiment=experiment, actor=ACTOR, run_name="history")
    log(run, metrics=[("loss", float(step), step) for step in reversed(range(250))])
    steps, token, pages = [], "", 0
    while True:
        points, token = search.metric_history(run=run, key="loss", max_results=100,
                                              page_token=token)
        steps += [p["step"] for p in points]
        pages += 1
        if not token:
            break
    assert pages == 3
    assert steps == list(range(250))


def test_bulk_interval_samples_evenly_including_first_and_last(personas):
    experiment = experiment_create(org=personas.org_a, name="bulk", actor=ACTOR)
    run = run_create(experiment=experiment, actor=ACTOR, run_name="bulk")
    log(run, metrics=[("loss", float(step), step) for step in range(1001)])
    points = search.metric_history_bulk_interval(runs=[run], key="loss", start_step=None,
                                                 end_step=None, max_results=11)
    assert [p["step"] for p in points] == list(range(0, 1001, 100))
    window = search.metric_history_bulk_interval(runs=[run], key="loss", start_step=100,
                                                 end_step=200, max_results=500)
    assert [p["step"] for p in window] == list(range(100, 201))


@pytest.mark.postgres_only
def test_a_repeated_search_reuses_its_compiled_page_query_and_stays_per_organization(world,
                                                                                    personas):
    """search._page_query keeps compiled SQL per request shape, the organization included."""
    ask = {"experiment_ids": [world.experiment.public_id], "filter_string": "metrics.m > 1",
           "view_type": "ALL", "max_results": 10, "order_by": ["metrics.m DESC"],
           "page_token": ""}
    first, _ = search.runs(org=world.org, **ask)
    hits = search._page_query.cache_info().hits
    again, _ = search.runs(org=world.org, **ask)
    assert search._page_query.cache_info().hits == hits + 1
    assert [r["info"]["run_id"] for r in again] == [r["info"]["run_id"] for r in first] != []
    other, _ = search.runs(org=personas.org_b, **ask)
    assert other == []


def test_create_runs_answer_is_what_get_answers(client, personas):
    """create-run answers from the new run's tags alone (runs_serialized(new=True)): the same
    run get-run answers."""
    auth = {"HTTP_AUTHORIZATION": f"Bearer {personas.alice.raw_token}"}
    experiment = experiment_create(org=personas.org_a, name="fresh", actor=ACTOR)
    created = client.post("/api/2.0/mlflow/runs/create", json.dumps({
        "experiment_id": experiment.public_id, "run_name": "r", "start_time": 1_700_000_000_000,
        "tags": [{"key": "team", "value": "risk"}]}), content_type="application/json", **auth)
    assert created.status_code == 200, created.content
    run = created.json()["run"]
    got = client.get("/api/2.0/mlflow/runs/get", {"run_id": run["info"]["run_id"]}, **auth)
    assert got.json()["run"] == run
    assert {t["key"] for t in run["data"]["tags"]} >= {"team", "mlflow.runName"}
