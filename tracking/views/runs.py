"""The runs table of an experiment: chosen columns, MLflow's filter language, sorting by any
column and next/previous pages, through the search-runs RPC's own machinery (tracking.search).

What keeps it fast at 100,000 runs: no count of the matches (a page asks for one row more to
know whether there is a next one), and params, metrics and tags are read only for the runs
of the page and only for the chosen columns (a few set queries, never one per run). The
"Models" column (the registered versions made from each run and the models it logged, as in
MLflow's table) is one more query for the page's runs, made only when the column is shown or
the page picks the columns.
"""

from dataclasses import dataclass

from django.db.models import CharField, Value
from django.shortcuts import render
from mlflow.utils.search_utils import SearchUtils

from config.exceptions import ApplicationError
from models_registry import selectors as registry  # the registry's reads, for "Models"
from tenancy.web import org_page
from tracking import search
from tracking.models import LatestMetric, Param, Run, RunTag
from tracking.views.common import duration, experiment_or_404, number, query, quoted_key, when

PAGE_SIZE = 50
DEFAULT_PER_KIND = 5  # columns of each kind shown before the user picks any
KINDS = {"metrics": ("metric", LatestMetric), "params": ("parameter", Param),
         "tags": ("tag", RunTag)}
RUN_FIELDS = ("run_uuid", "name", "user_id", "status", "start_time", "end_time")
ATTRIBUTES = [("run_name", "Run name"), ("start_time", "Created"), ("status", "Status"),
              ("user_id", "User")]
MODELS = "models"  # the spec of the "Models" column in `cols`
MODELS_PER_CELL = 3  # a run's models named in its cell; the rest counted


@dataclass(frozen=True)
class Column:
    kind: str  # metrics | params | tags | attributes | models
    key: str

    @property
    def spec(self) -> str:
        return MODELS if self.kind == MODELS else f"{self.kind}.{self.key}"

    @property
    def order_name(self) -> str:
        return f"{self.kind}.{quoted_key(self.key)}"

    @property
    def search_kind(self) -> str:
        return KINDS[self.kind][0] if self.kind in KINDS else "attribute"


def parse_columns(raw: str) -> tuple[list[Column], list[str]]:
    """`metrics.m0,params.p1,tags.team,models` -> columns, and the entries that name no
    column."""
    columns, unknown = [], []
    for entry in (part.strip() for part in raw.split(",")):
        kind, _, key = entry.partition(".")
        if entry == MODELS:
            columns.append(MODELS_COLUMN)
        elif kind in KINDS and key:
            columns.append(Column(kind, key))
        elif entry:
            unknown.append(entry)
    return list(dict.fromkeys(columns)), unknown


MODELS_COLUMN = Column(MODELS, "Models")


def _chosen_columns(params) -> tuple[list[Column] | None, list[str]]:
    """None when the user has not chosen (the page then picks); `cols` holds the canonical
    list, the chooser form adds its checkboxes (`col`) and a free comma list (`more`)."""
    if "cols" not in params:
        return None, []
    raw = ",".join([params.get("cols", ""), *params.getlist("col"), params.get("more", "")])
    return parse_columns(raw)


def _keys_on_page(run_ids: list[int]) -> dict[str, list[str]]:
    """Which params, metrics and tags the page's runs have, in one query, for the chooser."""
    parts = [model.objects.filter(run_id__in=run_ids)
             .annotate(kind=Value(kind, output_field=CharField())).values_list("kind", "key")
             for kind, (_, model) in KINDS.items()]
    found: dict[str, set] = {kind: set() for kind in KINDS}
    for kind, key in parts[0].union(*parts[1:]):
        found[kind].add(key)
    return {kind: sorted(keys) for kind, keys in found.items()}


def _default_columns(keys: dict[str, list[str]], models: dict) -> list[Column]:
    """Before the user picks: "Models" when a run of the page has one, and the first few
    metrics and params of the page (tags are mostly mlflow.* bookkeeping, so none)."""
    return [MODELS_COLUMN] * bool(models) + [Column(kind, key) for kind in ("metrics", "params")
                                             for key in keys[kind][:DEFAULT_PER_KIND]]


def _values(run_ids: list[int], columns: list[Column]) -> dict[tuple[int, str], str]:
    """(run pk, column spec) -> the value shown, one query per kind of column chosen."""
    values = {}
    for kind, (_, model) in KINDS.items():
        keys = [c.key for c in columns if c.kind == kind]
        if not keys:
            continue
        rows = model.objects.filter(run_id__in=run_ids, key__in=keys)
        if kind == "metrics":
            for run_id, key, value, is_nan in rows.values_list("run_id", "key", "value",
                                                               "is_nan"):
                values[run_id, f"{kind}.{key}"] = number(value, is_nan)
        else:
            for run_id, key, value in rows.values_list("run_id", "key", "value"):
                values[run_id, f"{kind}.{key}"] = value
    return values


def _current_order(order: str) -> tuple[str, str, bool] | None:
    """(kind, key, ascending) of the order-by clause (already checked by the search), None
    when there is none."""
    return SearchUtils.parse_order_by_for_search_runs(order) if order else None


def _header(column: Column, label: str, current, params) -> dict:
    """A header cell: its sort link flips the direction; metrics and times start descending.
    "Models" is no search field, so it has no sort link."""
    if column.kind == MODELS:
        return {"label": label, "kind": "", "spec": column.spec, "aria_sort": "",
                "numeric": False, "href": ""}
    sorted_here = current is not None and current[:2] == (column.search_kind, column.key)
    if sorted_here:
        ascending = not current[2]
    else:
        ascending = column.kind not in ("metrics",) and column.key != "start_time"
    order = f"{column.order_name} {'ASC' if ascending else 'DESC'}"
    aria = ("ascending" if current[2] else "descending") if sorted_here else ""
    return {"label": label, "kind": column.kind if column.kind in KINDS else "",
            "spec": column.spec, "aria_sort": aria,
            "numeric": column.kind == "metrics",
            "href": query(params, order=order, page_token=None)}


def _models_cell(models: list) -> dict:
    return {"is_models": True, "models": models[:MODELS_PER_CELL],
            "more": max(0, len(models) - MODELS_PER_CELL), "value": "", "numeric": False}


def _run_row(run: Run, columns: list[Column], values: dict, models: dict) -> dict:
    return {"run": run, "created": when(run.start_time),
            "duration": duration(run.start_time, run.end_time),
            "cells": [_models_cell(models.get(run.pk, [])) if c.kind == MODELS else
                      {"value": values.get((run.pk, c.spec), ""), "numeric": c.kind == "metrics"}
                      for c in columns]}


def _search(org, experiment, params) -> tuple[list[Run], str, int]:
    """One page of runs and the next page's token; raises ApplicationError on a bad query."""
    order = params.get("order", "").strip()
    runs = search.runs_queryset(org=org, experiments=[experiment],
                                filter_string=params.get("filter", "").strip(),
                                view_type="ACTIVE_ONLY", order_by=[order] if order else [])
    token = params.get("page_token", "")
    page, next_token = search.paginate(runs.only(*RUN_FIELDS), page_token=token,
                                       max_results=PAGE_SIZE)
    return page, next_token, search.decode_page_token(token)


def _table(org, experiment, params) -> dict:
    chosen, unknown = _chosen_columns(params)
    page, next_token, offset = _search(org, experiment, params)
    run_ids = [run.pk for run in page]
    keys = _keys_on_page(run_ids) if run_ids else {kind: [] for kind in KINDS}
    models = registry.models_of_runs(org=org, run_ids=run_ids) \
        if chosen is None or MODELS_COLUMN in chosen else {}
    columns = chosen if chosen is not None else _default_columns(keys, models)
    current = _current_order(params.get("order", "").strip())
    values = _values(run_ids, columns)
    canonical = params.copy()
    canonical.pop("col", None)
    canonical.pop("more", None)
    canonical["cols"] = ",".join(c.spec for c in columns)
    return {
        "headers": [_header(Column("attributes", key), label, current, canonical)
                    for key, label in ATTRIBUTES],
        "column_headers": [_header(c, c.key, current, canonical) for c in columns],
        "rows": [_run_row(run, columns, values, models) for run in page],
        "choices": _choices(keys, columns), "unknown_columns": unknown,
        "cols": canonical["cols"], "first": offset + 1, "last": offset + len(page),
        "next_query": query(canonical, page_token=next_token) if next_token else "",
        "previous_query": query(canonical, page_token=search.encode_page_token(
            max(0, offset - PAGE_SIZE))) if offset else "",
    }


def _choices(keys: dict[str, list[str]], columns: list[Column]) -> list[dict]:
    """Checkboxes of the chooser: "Models", the keys on this page and the columns already
    chosen."""
    chosen = {c.spec for c in columns}
    specs = [MODELS, *(f"{kind}.{key}" for kind in KINDS for key in keys[kind])]
    specs += [c.spec for c in columns if c.spec not in specs]
    return [{"spec": spec, "checked": spec in chosen,
             "label": "Models (registered versions, logged models)" if spec == MODELS else spec}
            for spec in specs]


@org_page
def experiment_runs(request, experiment_id: str):
    experiment = experiment_or_404(request, experiment_id)
    params = request.GET
    context = {"experiment": experiment, "filter": params.get("filter", ""),
               "order": params.get("order", ""), "error": ""}
    try:
        context.update(_table(request.access.org, experiment, params))
    except (ApplicationError, ValueError) as exc:
        # A bad filter or order: the parser's message, on the page, with nothing listed.
        context["error"] = getattr(exc, "message", None) or str(exc)
        context.update(rows=[], headers=[], column_headers=[], choices=[], cols=params.get(
            "cols", ""))
        return render(request, "tracking/experiment_runs.html", context, status=400)
    return render(request, "tracking/experiment_runs.html", context)
