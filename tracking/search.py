"""MLflow search (runs, experiments) translated into SQL, and metric histories.

The filter grammar is MLflow's own parser (mlflow.utils.search_utils), so syntax and error
messages match `mlflow server`. Each clause becomes an EXISTS over an indexed table (latest
metrics, params, tags, inputs) or a column comparison; nothing is filtered in Python. A page
of runs is then loaded with a few set queries, not one query per run.
"""

import base64
import functools
import json
from typing import NamedTuple

import orjson
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    TextField,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from mlflow.utils.search_utils import SearchExperimentsUtils, SearchUtils

from tracking.lookups import register_lookups
from tracking.mlflow_api import serialize
from tracking.models import (
    Experiment,
    ExperimentTag,
    LatestMetric,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunInput,
    RunOutput,
    RunTag,
)
from tracking.services.common import invalid

register_lookups()

MAX_RESULTS = 50000
VIEW_STAGES = {
    "ACTIVE_ONLY": [LifecycleStage.ACTIVE],
    "DELETED_ONLY": [LifecycleStage.DELETED],
    "ALL": [LifecycleStage.ACTIVE, LifecycleStage.DELETED],
}
COMPARATORS = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte",
               "LIKE": "like", "ILIKE": "ilike", "IN": "in", "NOT IN": "in"}
RUN_ATTRIBUTES = {"run_id": "run_uuid", "run_name": "name", "run name": "name",
                  "Run name": "name", "Run Name": "name", "status": "status",
                  "user_id": "user_id", "artifact_uri": "artifact_uri",
                  "start_time": "start_time", "created": "start_time", "Created": "start_time",
                  "end_time": "end_time"}


# --- page tokens --------------------------------------------------------------------------

def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError):
        raise invalid(f"Invalid page token, could not base64-decode: '{token}'.") from None
    if not isinstance(offset, int) or offset < 0:
        raise invalid(f"Invalid page token '{token}'.")
    return offset


def _max_results(value: int, most: int = MAX_RESULTS) -> int:
    if not 0 < value <= most:
        raise invalid(f"Invalid value {value} for parameter 'max_results' supplied. It must be "
                      f"at most {most}, and greater than 0.")
    return value


def paginate(rows, *, page_token: str, max_results: int | None,
             most: int = MAX_RESULTS) -> tuple[list, str]:
    """One page of an ordered queryset and the opaque token of the next (offset-based, as
    MLflow's own stores do); `max_results=None` means everything from the token on, and
    `most` is the largest page the caller allows."""
    offset, limit = _window(page_token, max_results, most)
    return _cut(list(rows[offset:] if limit is None else rows[offset: offset + limit + 1]),
                offset, limit)


def _window(page_token: str, max_results: int | None, most: int) -> tuple[int, int | None]:
    """The offset and size of the page asked for (None: everything from the offset on)."""
    offset = decode_page_token(page_token)
    return offset, None if max_results is None else _max_results(max_results, most)


def _cut(rows: list, offset: int, limit: int | None) -> tuple[list, str]:
    """The page out of `limit + 1` rows read, and the next page's token if there was one more."""
    if limit is None or len(rows) <= limit:
        return rows, ""
    return rows[:limit], encode_page_token(offset + limit)


def _stages(view_type: str) -> list[str]:
    if view_type not in VIEW_STAGES:
        raise invalid(f"Invalid view type '{view_type}'; one of {', '.join(VIEW_STAGES)}.")
    return VIEW_STAGES[view_type]


# --- filters --------------------------------------------------------------------------------

def _compare(field: str, comparator: str, value) -> Q:
    if comparator == "!=":
        return ~Q(**{field: value})
    q = Q(**{f"{field}__{COMPARATORS[comparator]}": value})
    return ~q if comparator == "NOT IN" else q


def _exists_kv(model, key: str, comparator: str, value) -> Q:
    """A clause on params/tags/latest metrics: EXISTS (row of this run with this key ...)."""
    rows = model.objects.filter(run=OuterRef("pk"), key=key)
    if comparator == "IS NULL":
        return ~Exists(rows)
    if comparator == "IS NOT NULL":
        return Q(Exists(rows))
    if model is LatestMetric:
        rows = rows.filter(is_nan=False)  # a NaN (stored as 0) compares with nothing
    return Q(Exists(rows.filter(_compare("value", comparator, value))))


def _check_comparator(kind: str, key: str, comparator: str) -> None:
    """MLflow's parser accepts any comparator token (`>>`, `<>`, `NOT LIKE`); its stores refuse
    the ones invalid for the key's type, with these messages."""
    from mlflow.exceptions import MlflowException

    u = SearchUtils
    try:
        if not (u.is_metric(kind, comparator) or u.is_param(kind, comparator)
                or u.is_tag(kind, comparator) or u.is_attribute(kind, key, comparator)
                or u.is_dataset(kind, comparator)):
            raise invalid(f"Invalid search expression type '{kind}'")
    except MlflowException as exc:
        raise invalid(exc.message) from None


def _run_clause(clause: dict) -> Q:
    kind, key, comparator, value = (clause["type"], clause["key"], clause["comparator"],
                                    clause["value"])
    _check_comparator(kind, key, comparator)
    if kind == "metric":
        return _exists_kv(LatestMetric, key, comparator, float(value))
    if kind == "parameter":
        return _exists_kv(Param, key, comparator, value)
    if kind == "tag":
        return _exists_kv(RunTag, key, comparator, value)
    if kind == "attribute":
        field = RUN_ATTRIBUTES[key]
        if field in ("start_time", "end_time"):
            value = int(value)
        return _compare(field, comparator, value)
    if kind == "dataset":
        inputs = RunInput.objects.filter(run=OuterRef("pk"))
        if key == "context":
            # As text: a lookup on the JSON key itself would read LIKE as a nested key.
            context = Cast(KT("tags__mlflow.data.context"), output_field=TextField())
            inputs, field = inputs.alias(_context=context), "_context"
        else:
            field = f"dataset__{key}"
        return Q(Exists(inputs.filter(_compare(field, comparator, value))))
    raise invalid(f"Invalid search expression type '{kind}'")


def _parse_filter(parser, filter_string: str) -> list[dict]:
    from mlflow.exceptions import MlflowException

    try:
        return [dict(clause) for clause in _parsed(parser, filter_string)]
    except MlflowException as exc:
        raise invalid(exc.message) from None


# MLflow's parsers run sqlparse: a millisecond and more per search. Clients repeat the same
# filters and orders (a UI page, a polling script), so parsed ones are kept; a refused one is
# not (lru_cache keeps no exception).
@functools.lru_cache(maxsize=512)
def _parsed(parser, filter_string: str) -> tuple[dict, ...]:
    return tuple(parser.parse_search_filter(filter_string))


@functools.lru_cache(maxsize=512)
def _parsed_order(clause: str) -> tuple[str, str, bool]:
    return SearchUtils.parse_order_by_for_search_runs(clause)


ORDER_RELATIONS = {"metric": "latest_metrics", "parameter": "params", "tag": "tags"}
# Comparators that can be checked on the joined row itself (no negation: `!=` and NOT IN stay
# EXISTS clauses, which only need the row to exist).
ON_JOIN = {"=", ">", ">=", "<", "<=", "LIKE", "ILIKE", "IN"}


def _run_order(order_by: list[str], present: set[tuple[str, str]]):
    """ORDER BY expressions, the joins they need (`annotations`), and which joined keys
    (`joined`: (kind, key) -> alias) every run of the result has.

    Sorting by a metric/param/tag LEFT JOINs the run's one row of that key. When the filter
    already requires that key (`present`), the join is inner and sorts with the index's own
    null order: PostgreSQL then walks the (key, value) index in order and stops after a page,
    instead of sorting every match (10,000 runs: 10 ms -> 1 ms)."""
    from mlflow.exceptions import MlflowException

    ordering, annotations, joined = [], {}, {}
    for index, clause in enumerate(order_by):
        try:
            kind, key, ascending = _parsed_order(clause)
        except MlflowException as exc:
            raise invalid(exc.message) from None
        if kind == "attribute":
            expression = F(RUN_ATTRIBUTES.get(key, key))
        else:
            relation = ORDER_RELATIONS[kind]
            name = f"_order_{index}"
            annotations[name] = FilteredRelation(relation, condition=Q(**{f"{relation}__key": key}))
            expression = F(f"{name}__value")
            if (kind, key) in present:
                joined.setdefault((kind, key), name)
                ordering.append(expression.asc() if ascending else expression.desc())
                continue
        # Runs without the value sort last either way, as in MLflow.
        ordering.append(expression.asc(nulls_last=True) if ascending
                        else expression.desc(nulls_last=True))
    ordering += [F("start_time").desc(nulls_last=True), F("run_uuid").asc()]
    return ordering, annotations, joined


def _joined_clause(clause: dict, name: str) -> Q:
    """A filter clause on a key the query already joins (as `name`): the row must exist, and
    where the comparator allows, the condition is checked on that row, where the index is."""
    kind, key, comparator, value = (clause["type"], clause["key"], clause["comparator"],
                                    clause["value"])
    exists = Q(**{f"{name}__value__isnull": False})
    if comparator not in ON_JOIN:
        return exists & _run_clause(clause)  # which checks the comparator
    _check_comparator(kind, key, comparator)
    if kind == "metric":
        return exists & Q(**{f"{name}__is_nan": False}) & \
            _compare(f"{name}__value", comparator, float(value))
    return exists & _compare(f"{name}__value", comparator, value)


def runs_queryset(*, org, experiments: list[Experiment], filter_string: str,
                  view_type: str, order_by: list[str]) -> QuerySet[Run]:
    runs = Run.objects.filter(org=org, experiment__in=experiments,
                              lifecycle_stage__in=_stages(view_type))
    clauses = _parse_filter(SearchUtils, filter_string)
    present = {(c["type"], c["key"]) for c in clauses
               if c["type"] in ORDER_RELATIONS and c["comparator"] != "IS NULL"}
    ordering, annotations, joined = _run_order(order_by, present)
    runs = runs.annotate(**annotations)
    for clause in clauses:
        name = joined.get((clause["type"], clause["key"]))
        runs = runs.filter(_joined_clause(clause, name) if name else _run_clause(clause))
    return runs.order_by(*ordering)


def runs(*, org, experiment_ids: list[str], filter_string: str, view_type: str,
         max_results: int, order_by: list[str], page_token: str) -> tuple[list[dict], str]:
    from tracking.selectors import experiment_get

    experiments = []
    for experiment_id in experiment_ids:
        try:
            experiments.append(experiment_get(org=org, experiment_id=experiment_id))
        except Exception:  # noqa: S112  an unknown id matches nothing, as in MLflow
            continue
    if connection.vendor == "postgresql":
        public = {experiment.pk: experiment.public_id for experiment in experiments}
        offset, limit = _window(page_token, max_results, MAX_RESULTS)
        query = _page_query(org.pk, tuple(public), filter_string, view_type, tuple(order_by),
                            offset, limit)
        if query is None:  # e.g. none of the experiments exists: nothing to ask
            return [], ""
        return _runs_built_in_postgres(org, query, public, offset, limit)
    queryset = runs_queryset(org=org, experiments=experiments, filter_string=filter_string,
                             view_type=view_type, order_by=order_by)
    page, token = paginate(queryset.select_related("experiment"), page_token=page_token,
                           max_results=max_results)
    return runs_serialized(org, page), token


class RunRow(NamedTuple):
    """The run fields a search page shows (serialize.run_info reads them), without a model."""

    pk: int
    run_uuid: str
    name: str
    experiment_id: int
    user_id: str
    status: str
    start_time: int | None
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str


# The page's runs (the search query, as the ORM wrote it) with their metrics, params and tags
# already as JSON text, built by PostgreSQL and embedded as is (orjson.Fragment): one statement
# for a page of 100 runs and 1,500 values, and no Python object per value. Values are spelled
# as protobuf JSON does (non-finite doubles as strings, NaN kept as 0 with is_nan). The outer
# query adds columns to the page's rows in the page's order (a scan of the sorted, limited
# subquery; nothing re-sorts it).
_PAGE_SQL = """
SELECT page.*,
  (SELECT coalesce(json_agg(m ORDER BY m.key), '[]')::text FROM (
     SELECT key, CASE WHEN is_nan THEN to_json('NaN'::text) ELSE to_json(value) END AS value,
            timestamp, step
     FROM tracking_latestmetric WHERE run_id = page.pk) m),
  (SELECT coalesce(json_agg(p ORDER BY p.key), '[]')::text FROM (
     SELECT key, value FROM tracking_param WHERE run_id = page.pk) p),
  (SELECT coalesce(json_agg(t ORDER BY t.key), '[]')::text FROM (
     SELECT key, value FROM tracking_runtag WHERE run_id = page.pk) t),
  EXISTS (SELECT 1 FROM tracking_runinput i WHERE i.run_id = page.pk)
    OR EXISTS (SELECT 1 FROM tracking_runoutput o WHERE o.run_id = page.pk)
FROM ({runs}) AS page
"""


# The SQL of a search page is a function of the request alone; compiling it through the ORM
# (joins, filtered relations, EXISTS clauses) costs more than PostgreSQL takes to answer it.
# The same search is asked again and again (a UI page refreshing, a script polling, the next
# page), so compiled ones are kept, as the parsed filters are.
@functools.lru_cache(maxsize=512)
def _page_query(org_id: int, experiment_ids: tuple[int, ...], filter_string: str,
                view_type: str, order_by: tuple[str, ...], offset: int,
                limit: int | None) -> tuple[str, tuple] | None:
    experiments = [Experiment(pk=pk) for pk in experiment_ids]
    rows = runs_queryset(org=org_id, experiments=experiments, filter_string=filter_string,
                         view_type=view_type, order_by=list(order_by)) \
        .values_list(*RunRow._fields)
    rows = rows[offset:] if limit is None else rows[offset: offset + limit + 1]
    try:
        sql, params = rows.query.sql_with_params()
    except EmptyResultSet:
        return None
    return _PAGE_SQL.format(runs=sql), tuple(params)


def _runs_built_in_postgres(org, query: tuple[str, tuple], public: dict[int, str], offset: int,
                            limit: int | None) -> tuple[list[dict], str]:
    with connection.cursor() as cursor:
        cursor.execute(*query)
        page, token = _cut(cursor.fetchall(), offset, limit)
    width = len(RunRow._fields)
    # Datasets and model outputs are rare and nested: those runs take the general path.
    nested = [row[0] for row in page if row[width + 3]]
    rich = {}
    if nested:
        models = Run.objects.filter(pk__in=nested).select_related("experiment").in_bulk()
        rich = dict(zip(nested, runs_serialized(org, [models[pk] for pk in nested]),
                        strict=True))
    out = []
    for row in page:
        if row[0] in rich:
            out.append(rich[row[0]])
            continue
        run, (metrics, params, tags, _rich) = RunRow(*row[:width]), row[width:]
        out.append({"info": serialize.run_info(run, public[run.experiment_id]),
                    "data": {"metrics": orjson.Fragment(metrics),
                             "params": orjson.Fragment(params), "tags": orjson.Fragment(tags)},
                    "inputs": {"dataset_inputs": []}})
    return out, token


def runs_serialized(org, page: list[Run], *, new: bool = False) -> list[dict]:
    """Full MLflow Run objects for a page of runs, in a handful of set queries. `new`: runs
    just created, which have tags only (create-run's answer: four queries fewer)."""
    ids = [run.pk for run in page]
    by_run: dict[int, dict] = {pk: {"metrics": [], "params": [], "tags": [], "datasets": [],
                                    "outputs": []} for pk in ids}
    for run_id, key, value in RunTag.objects.filter(run_id__in=ids) \
            .values_list("run_id", "key", "value"):
        by_run[run_id]["tags"].append({"key": key, "value": value})
    if new:
        return [_run_dict(run, by_run[run.pk]) for run in page]
    for run_id, key, value, timestamp, step, is_nan in LatestMetric.objects.filter(
            run_id__in=ids) \
            .values_list("run_id", "key", "value", "timestamp", "step", "is_nan"):
        by_run[run_id]["metrics"].append(serialize.metric(key, value, timestamp, step,
                                                          is_nan=is_nan))
    for run_id, key, value in Param.objects.filter(run_id__in=ids) \
            .values_list("run_id", "key", "value"):
        by_run[run_id]["params"].append({"key": key, "value": value})
    for run_input in RunInput.objects.filter(run_id__in=ids).select_related("dataset"):
        by_run[run_input.run_id]["datasets"].append(_dataset_input(run_input))
    for output in RunOutput.objects.filter(run_id__in=ids).select_related("logged_model"):
        by_run[output.run_id]["outputs"].append(
            {"model_id": output.logged_model.model_id, "step": output.step})
    return [_run_dict(run, by_run[run.pk]) for run in page]


def _dataset_input(run_input: RunInput) -> dict:
    d = run_input.dataset
    dataset = {"name": d.name, "digest": d.digest, "source_type": d.source_type,
               "source": d.source}
    if d.schema:
        dataset["schema"] = d.schema
    if d.profile:
        dataset["profile"] = d.profile
    return {"tags": [{"key": k, "value": v} for k, v in run_input.tags.items()],
            "dataset": dataset}


def _run_dict(run: Run, data: dict) -> dict:
    body = {
        "info": serialize.run_info(run, run.experiment.public_id),
        "data": {"metrics": data["metrics"], "params": data["params"], "tags": data["tags"]},
        "inputs": {"dataset_inputs": data["datasets"]},
    }
    if data["outputs"]:
        body["outputs"] = {"model_outputs": data["outputs"]}
    return body


# --- experiments ------------------------------------------------------------------------------

def _experiment_clause(clause: dict) -> Q:
    kind, key, comparator, value = (clause["type"], clause["key"], clause["comparator"],
                                    clause["value"])
    if kind == "tag":
        if comparator not in SearchExperimentsUtils.VALID_TAG_COMPARATORS:
            raise invalid(f"Invalid comparator '{comparator}' not one of "
                          f"'{SearchExperimentsUtils.VALID_TAG_COMPARATORS}'")
        tags = ExperimentTag.objects.filter(experiment=OuterRef("pk"), key=key)
        if comparator == "IS NULL":
            return ~Exists(tags)
        if comparator == "IS NOT NULL":
            return Q(Exists(tags))
        return Q(Exists(tags.filter(_compare("value", comparator, value))))
    if key == "experiment_id":
        return _experiment_id_clause(comparator, value)
    allowed = ("=", "!=", "<", "<=", ">", ">=") if key in ("creation_time", "last_update_time") \
        else ("=", "!=", "LIKE", "ILIKE")
    if comparator not in allowed:
        raise invalid(f"Invalid comparator '{comparator}' for experiment attribute '{key}': "
                      f"one of {', '.join(allowed)}.")
    if key in ("creation_time", "last_update_time"):
        return _compare(key, comparator, int(value))
    return _compare(key, comparator, value)


def _experiment_id_clause(comparator: str, value) -> Q:
    """Public ids: "0" is the org's Default experiment, any other is the primary key."""
    if comparator not in ("=", "!=", "IN", "NOT IN"):
        raise invalid(f"Invalid comparator for experiment_id: {comparator}")
    ids = value if isinstance(value, tuple | list) else (value,)
    for experiment_id in ids:
        if not str(experiment_id).isdigit():
            raise invalid(f"Invalid experiment ID: '{experiment_id}'")
    q = Q(pk__in=[int(i) for i in ids if str(i) != "0"], is_default=False)
    if "0" in [str(i) for i in ids]:
        q |= Q(is_default=True)
    return ~q if comparator in ("!=", "NOT IN") else q


def filter_experiments(queryset, filter_string: str):
    """`queryset` narrowed by a search-experiments filter string (MLflow's language)."""
    for clause in _parse_filter(SearchExperimentsUtils, filter_string):
        queryset = queryset.filter(_experiment_clause(clause))
    return queryset


def experiments(*, org, filter_string: str, view_type: str, max_results: int,
                order_by: list[str], page_token: str) -> tuple[list[Experiment], str]:
    from mlflow.exceptions import MlflowException

    queryset = filter_experiments(
        Experiment.objects.filter(org=org, lifecycle_stage__in=_stages(view_type)),
        filter_string)
    ordering = []
    for clause in order_by:
        try:
            _, key, ascending = SearchExperimentsUtils.parse_order_by_for_search_experiments(
                clause)
        except MlflowException as exc:
            raise invalid(exc.message) from None
        field = "pk" if key == "experiment_id" else key
        ordering.append(F(field).asc() if ascending else F(field).desc())
    ordering += [F("creation_time").desc(), F("pk").desc()]
    return paginate(queryset.order_by(*ordering).prefetch_related("tags"),
                    page_token=page_token, max_results=max_results)


# --- metric history -------------------------------------------------------------------------

def metric_history(*, run: Run, key: str, max_results: int | None,
                   page_token: str) -> tuple[list[dict], str]:
    """Points of one metric in (step, timestamp, value) order, which the unique index serves."""
    points = Metric.objects.filter(run=run, key=key).order_by("step", "timestamp", "value")
    rows = points.values_list("key", "value", "timestamp", "step", "is_nan", "model_id",
                              "dataset_name", "dataset_digest")
    page, token = paginate(rows, page_token=page_token, max_results=max_results)
    return [serialize.metric(k, v, t, s, {"model_id": m, "dataset_name": dn,
                                          "dataset_digest": dd, "run_id": run.run_uuid}, n)
            for k, v, t, s, n, m, dn, dd in page], token


def metric_history_bulk_interval(*, runs: list[Run], key: str, start_step: int | None,
                                 end_step: int | None, max_results: int | None) -> list[dict]:
    """Up to `max_results` evenly spaced steps per run (first and last included)."""
    limit = _max_results(max_results or 320)
    result = []
    for run in runs:
        points = Metric.objects.filter(run=run, key=key)
        if start_step is not None:
            points = points.filter(step__gte=start_step)
        if end_step is not None:
            points = points.filter(step__lte=end_step)
        steps = list(points.order_by("step").values_list("step", flat=True).distinct())
        if len(steps) > limit:
            stride = (len(steps) - 1) / (limit - 1) if limit > 1 else len(steps)
            steps = sorted({steps[round(i * stride)] for i in range(limit)})
        chosen = points.filter(step__in=steps).order_by("step", "timestamp")
        result += [serialize.metric(key, v, t, s, {"run_id": run.run_uuid}, is_nan=n)
                   for v, t, s, n in chosen.values_list("value", "timestamp", "step", "is_nan")]
    return result
