"""A cross-tenant probe of every route, generated from the URL configuration (issue 23, item 8).

The generator walks `get_resolver()` recursively (web pages, /api/v1/, the MLflow protocol with
each RPC of `tracking.mlflow_api.views.ROUTES`, the artifact proxy, Django admin, the probes)
and turns every route into cases: each URL parameter and each id an RPC, a form or a query
names is filled with the id of an object of organization A (the world below, built once for
the module), and again with an id that names nothing. Charlie, the owner of organization B,
sends both, by every method the view takes (a class-based view's methods, a function view's
require_http_methods list, else GET and POST: those views branch on POST only; an RPC's own
method, its probes taking the /api/2.0, /api/3.0 and /ajax-api prefixes and callers in turn).
A case passes when the two answers are the same once the ids themselves are blanked out, are
"not found" (404; MLflow's RESOURCE_DOES_NOT_EXIST; the admin sends anyone who is not staff to
its login), show none of org A's names or ids, and org A's rows, audit events and artifact
files are exactly as before. Searches and filters, where an unknown id matches nothing, need
only answer as for a missing id.

A route whose parameters the generator cannot fill, or that it does not know how to classify,
fails `test_every_route_is_probed_or_explicitly_public`: a route added without tenant coverage
breaks the suite. PUBLIC lists the few routes that name no organization, each with its reason.
`test_the_probe_detects_*` show the probe failing against deliberately unscoped views.
"""

import datetime
import functools
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import unquote, urlencode

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.core.files.storage import storages
from django.db import connection, transaction
from django.http import Http404, JsonResponse
from django.test import Client, TestCase, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, include, path, resolve
from django.utils import timezone

from audit.actors import Actor
from tenancy.authentication import SESSION_ORG_KEY
from tenancy.models import Membership, Organization, User
from tenancy.roles import Role
from tests.conftest import SETUP, Persona, make_persona
from tracking.mlflow_api import views as mlflow_views
from tracking.mlflow_api.artifacts import HANDLERS, artifacts_endpoint

pytestmark = pytest.mark.django_db  # each test in a savepoint inside the module's world

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
NOT_FOUND, MLFLOW_NOT_FOUND, SAME, REFUSED, NO_OBJECT = (
    "not found", "MLflow not found", "same as missing", "refused", "no object")

# --- what the generator knows: each parameter, and what it names ---------------------------

# A parameter naming an object of an organization: org A's id for it, and one naming nothing.
OBJECTS = {
    "experiment_id": "an experiment, by its public id",
    "experiment_name": "an experiment, by its name",
    "run_id": "a tracking run (MLflow run id)",
    "model_id": "a logged model (MLflow 3 model id)",
    "name": "a registered model, by its name",
    "artifact_path": "a file below a run's artifact root",
    "artifact_dir": "a run's artifact root",
    "member_id": "a membership",
    "token_id": "an API token",
    "seq": "an audit event, by its sequence number",
    "tree_size": "a signed checkpoint of the audit log",
    "approval_id": "an alias approval request",
    "protected_id": "a protected alias",
    "decision_id": "a recorded decision",
    "run_uuid": "a project run",
    "workflow_uuid": "a project workflow",
    "request_uuid": "a disclosure request",
    "org": "the organization, by its slug (choosing it in the session)",
    "user": "a member, by email",
}
# Parameters that qualify an object another parameter names, or name the caller's own objects
# (organization B's, for cases mixing an own id with a foreign one): the same value both times.
SHARED = {
    "version": "a version number, of the registered model or of the disclosure",
    "alias": "an alias of the registered model",
    "feature": "an input of the registered model",
    "tag_key": "a tag key",
    "b_experiment_id": "org B's own experiment",
    "b_run_id": "org B's own run",
    "b_name": "org B's own registered model",
    "app_label": "an admin app",
    "url": "a path below /admin/ that is no page",
    "content_type_id": "the content type of the object an admin link names",
}
ADMIN = "admin:"  # "admin:<app label>.<Model>": an org A object of that admin's model

# Routes that name no organization's data, each with why (fetched anonymously: they must show
# none of org A's data either).
PUBLIC = {
    "login/": "the sign-in form, before any organization is chosen",
    "logout/": "ends the caller's own session; names nothing",
    "health": "liveness probe of the process, no data",
    "ready": "readiness probe (database, broker reachable), no data",
    "metrics": "the operator's Prometheus exposition (LEDGERFLOW_METRICS_TOKEN): process and "
               "queue counters, and per organization slug the number of open and of overdue "
               "disclosure requests; no object, name or id",
    "version": "MLflow's /version: the server's version string",
    "favicon.ico": "a redirect to a static file",
    "api/v1/schema/": "the OpenAPI document: the API's shape, no data",
    "api/v1/docs/": "Swagger UI over that document",
    "api/v1/audit/public-key/": "the checkpoint signing key: one for everyone, so anyone can "
                                "verify a checkpoint offline",
    "admin/login/": "the admin's sign-in form",
    "oidc/authenticate/": "single sign-on: the redirect to the identity provider",
    "oidc/callback/": "single sign-on: the identity provider's answer, before any organization",
}
# Public routes not fetched, and why.
PUBLIC_NOT_FETCHED = {
    "ready": "connects to the broker: seconds when it is slow",
    "metrics": "counts the broker's queues (seconds); its labels are route templates, queue "
               "and task names",
    "oidc/authenticate/": "asks the identity provider for its configuration",
    "oidc/callback/": "asks the identity provider for its configuration",
}
# Admin models that belong to no organization (platform staff only, like the whole admin).
ADMIN_PLATFORM_MODELS = {
    "axes.AccessAttempt": "failed logins per user name and address (django-axes)",
    "axes.AccessLog": "logins per user name and address (django-axes)",
    "axes.AccessFailureLog": "failed logins (django-axes)",
}

MLFLOW_RPC_REGEX = r"^(?:ajax-)?api/(?:2\.0|3\.0)/mlflow/(?P<rpc_path>.+)$"
# Every prefix that regex accepts, and who calls: tokens anywhere, the browser's session on
# /ajax-api (the MLflow UI's calls).
MLFLOW_PREFIXES = [("api/2.0/mlflow/", "bearer"), ("api/3.0/mlflow/", "bearer"),
                   ("ajax-api/2.0/mlflow/", "bearer"), ("ajax-api/3.0/mlflow/", "bearer"),
                   ("ajax-api/2.0/mlflow/", "session"), ("ajax-api/3.0/mlflow/", "session")]

METRIC = {"key": "loss", "value": 0.5, "timestamp": 1, "step": 1}
DATASET = {"dataset": {"name": "bravo-data", "digest": "d1", "source_type": "local",
                       "source": "{}"}}
VERSION = {"name": "{name}", "version": "1"}
GIT = "https://github.com/example/credit.git"


def rpc(*probes, no_object: str = ""):
    """The bodies (query for GET) an RPC is probed with; `(body, SAME)` where an unknown id is
    a filter that matches nothing rather than a 404. `no_object`: why it names no object."""
    return {"probes": [p if isinstance(p, tuple) else (p, MLFLOW_NOT_FOUND) for p in probes],
            "no_object": no_object}


# Every RPC of ROUTES, with the ids it names (a path's `{model_id}` is filled by name).
RPC_PROBES = {
    ("GET", "server-info"): rpc(no_object="the server's features, the same for everyone"),
    ("POST", "experiments/create"): rpc({"name": "bravo-new-experiment"},
                                        no_object="creates in the caller's organization; "
                                                  "names are per organization"),
    ("GET", "experiments/get"): rpc({"experiment_id": "{experiment_id}"}),
    ("GET", "experiments/get-by-name"): rpc({"experiment_name": "{experiment_name}"}),
    ("GET", "experiments/search"): rpc(({"filter": "name = '{experiment_name}'"}, SAME)),
    ("POST", "experiments/search"): rpc(({"filter": "name = '{experiment_name}'"}, SAME)),
    ("POST", "experiments/update"): rpc({"experiment_id": "{experiment_id}",
                                         "new_name": "renamed-by-b"}),
    ("POST", "experiments/delete"): rpc({"experiment_id": "{experiment_id}"}),
    ("POST", "experiments/restore"): rpc({"experiment_id": "{experiment_id}"}),
    ("POST", "experiments/set-experiment-tag"): rpc({"experiment_id": "{experiment_id}",
                                                     "key": "team", "value": "b"}),
    ("POST", "experiments/delete-experiment-tag"): rpc({"experiment_id": "{experiment_id}",
                                                        "key": "team"}),
    ("POST", "runs/create"): rpc({"experiment_id": "{experiment_id}", "run_name": "b"}),
    ("GET", "runs/get"): rpc({"run_id": "{run_id}"}, {"run_uuid": "{run_id}"}),
    ("POST", "runs/update"): rpc({"run_id": "{run_id}", "status": "KILLED"},
                                 {"run_uuid": "{run_id}", "status": "KILLED"}),
    ("POST", "runs/delete"): rpc({"run_id": "{run_id}"}),
    ("POST", "runs/restore"): rpc({"run_id": "{run_id}"}),
    ("POST", "runs/log-batch"): rpc({"run_id": "{run_id}", "metrics": [METRIC],
                                     "params": [{"key": "b", "value": "1"}],
                                     "tags": [{"key": "b", "value": "1"}]}),
    ("POST", "runs/log-metric"): rpc({"run_id": "{run_id}", **METRIC},
                                     ({"run_id": "{b_run_id}", **METRIC,
                                       "model_id": "{model_id}"}, SAME)),
    ("POST", "runs/log-parameter"): rpc({"run_id": "{run_id}", "key": "b", "value": "1"}),
    ("POST", "runs/set-tag"): rpc({"run_id": "{run_id}", "key": "b", "value": "1"}),
    ("POST", "runs/delete-tag"): rpc({"run_id": "{run_id}", "key": "team"}),
    ("POST", "runs/log-inputs"): rpc({"run_id": "{run_id}", "datasets": [DATASET]},
                                     ({"run_id": "{b_run_id}",
                                       "models": [{"model_id": "{model_id}"}]}, SAME)),
    ("POST", "runs/outputs"): rpc({"run_id": "{run_id}",
                                   "models": [{"model_id": "{model_id}", "step": 0}]},
                                  ({"run_id": "{b_run_id}",
                                    "models": [{"model_id": "{model_id}", "step": 0}]}, SAME)),
    ("POST", "runs/search"): rpc(({"experiment_ids": ["{experiment_id}"]}, SAME),
                                 ({"experiment_ids": ["{b_experiment_id}"],
                                   "filter": "attributes.run_id = '{run_id}'"}, SAME)),
    ("GET", "metrics/get-history"): rpc({"run_id": "{run_id}", "metric_key": "loss"}),
    ("GET", "metrics/get-history-bulk-interval"): rpc(
        {"run_ids": "{run_id}", "metric_key": "loss"},
        {"run_ids": ["{b_run_id}", "{run_id}"], "metric_key": "loss"}),
    ("GET", "artifacts/list"): rpc({"run_id": "{run_id}"}, {"run_uuid": "{run_id}"},
                                   {"run_id": "{run_id}", "path": "model"}),
    ("POST", "logged-models"): rpc({"experiment_id": "{experiment_id}"},
                                   {"experiment_id": "{b_experiment_id}",
                                    "source_run_id": "{run_id}"}),
    ("GET", "logged-models/{model_id}"): rpc({}),
    ("PATCH", "logged-models/{model_id}"): rpc({"status": "LOGGED_MODEL_READY"}),
    ("DELETE", "logged-models/{model_id}"): rpc({}),
    ("PATCH", "logged-models/{model_id}/tags"): rpc({"tags": [{"key": "b", "value": "1"}]}),
    ("DELETE", "logged-models/{model_id}/tags/{tag_key}"): rpc({}),
    ("POST", "logged-models/{model_id}/params"): rpc({"params": [{"key": "b", "value": "1"}]}),
    ("GET", "logged-models/{model_id}/artifacts/directories"): rpc({}),
    ("POST", "logged-models/search"): rpc({"experiment_ids": ["{experiment_id}"]},
                                          ({"experiment_ids": ["{b_experiment_id}"],
                                            "filter": "model_id = '{model_id}'"}, SAME)),
    ("POST", "registered-models/create"): rpc({"name": "bravo-new-model"},
                                              no_object="creates in the caller's organization; "
                                                        "names are per organization"),
    ("GET", "registered-models/get"): rpc({"name": "{name}"}),
    ("POST", "registered-models/rename"): rpc({"name": "{name}", "new_name": "renamed-by-b"}),
    ("PATCH", "registered-models/update"): rpc({"name": "{name}", "description": "b"}),
    ("DELETE", "registered-models/delete"): rpc({"name": "{name}"}),
    ("POST", "registered-models/set-tag"): rpc({"name": "{name}", "key": "b", "value": "1"}),
    ("DELETE", "registered-models/delete-tag"): rpc({"name": "{name}", "key": "team"}),
    ("GET", "registered-models/get-latest-versions"): rpc({"name": "{name}"}),
    ("POST", "registered-models/get-latest-versions"): rpc({"name": "{name}"}),
    ("POST", "registered-models/alias"): rpc({**VERSION, "alias": "bravo"}),
    ("DELETE", "registered-models/alias"): rpc({"name": "{name}", "alias": "{alias}"}),
    ("GET", "registered-models/alias"): rpc({"name": "{name}", "alias": "{alias}"}),
    ("GET", "registered-models/search"): rpc(({"filter": "name = '{name}'"}, SAME)),
    ("POST", "model-versions/create"): rpc(
        {"name": "{name}", "source": "runs:/{b_run_id}/model"},
        {"name": "{b_name}", "source": "runs:/{run_id}/model"},
        {"name": "{b_name}", "source": "runs:/{b_run_id}/model", "run_id": "{run_id}"},
        {"name": "{b_name}", "source": "models:/{model_id}"},
        {"name": "{b_name}", "source": "runs:/{b_run_id}/model", "model_id": "{model_id}"},
        {"name": "{b_name}", "source": "mlflow-artifacts:/{artifact_dir}/model"}),
    ("GET", "model-versions/get"): rpc(VERSION),
    ("PATCH", "model-versions/update"): rpc({**VERSION, "description": "b"}),
    ("DELETE", "model-versions/delete"): rpc(VERSION),
    ("POST", "model-versions/transition-stage"): rpc({**VERSION, "stage": "Staging",
                                                      "archive_existing_versions": False}),
    ("POST", "model-versions/set-tag"): rpc({**VERSION, "key": "b", "value": "1"}),
    ("DELETE", "model-versions/delete-tag"): rpc({**VERSION, "key": "team"}),
    ("GET", "model-versions/get-download-uri"): rpc(VERSION),
    ("GET", "model-versions/search"): rpc(({"filter": "name = '{name}'"}, SAME),
                                          ({"filter": "run_id = '{run_id}'"}, SAME)),
}

# Ids a page or endpoint takes outside its path (a form field, the query string), by route:
# (method, query, body, expect, path parameters to use instead of the generated ones).
EXTRAS = {
    "experiments/": [("POST", None, {"action": action, "experiment_id": "{experiment_id}",
                                     "name": "renamed-by-b"}, NOT_FOUND, {})
                     for action in ("rename", "delete", "restore")],
    "compare/": [("GET", {"runs": "{run_id},{b_run_id}"}, None, NOT_FOUND, {}),
                 ("GET", {"runs": ["{b_run_id}", "{run_id}"]}, None, NOT_FOUND, {})],
    "compare/metric-history/": [("GET", {"runs": "{run_id}", "key": "loss"}, None, NOT_FOUND,
                                 {})],
    "runs/<str:run_id>/": [("GET", {"model": "{model_id}"}, None, SAME,
                            {"run_id": "{b_run_id}"})],
    "runs/<str:run_id>/artifact/": [
        ("GET", {"path": "model/MLmodel"}, None, NOT_FOUND, {}),
        ("GET", {"model": "{model_id}", "path": "MLmodel"}, None, NOT_FOUND,
         {"run_id": "{b_run_id}"})],
    "approvals/": [("POST", None, {"approval": "{approval_id}", "decision": decision},
                    NOT_FOUND, {}) for decision in ("approve", "reject")],
    "org/select/": [("POST", None, {"org": "{org}"}, NOT_FOUND, {})],
    "api/v1/tokens/": [("POST", None, {"name": "for-someone", "user": "{user}"}, NOT_FOUND, {})],
    "api/v1/approvals/": [("POST", None, {"model": "{name}", "version": 1,
                                          "alias": "production", "reason": "b"}, NOT_FOUND, {})],
    "api/v1/decisions/": [
        ("POST", None, {"model": "{name}", "version": 1, "decisions": [
            {"subject": "C-1", "purpose": "credit", "inputs": {"income": 1}, "outcome": "ok"}]},
         NOT_FOUND, {}),
        ("GET", {"model": "{name}"}, None, SAME, {})],
    "api/v1/projects/runs/": [
        ("POST", None, {"uri": GIT, "experiment_id": "{experiment_id}"}, NOT_FOUND, {}),
        ("POST", None, {"uri": GIT, "experiment_name": "{experiment_name}"}, NOT_FOUND, {})],
    "api/v1/projects/workflows/": [
        ("POST", None, {"uri": GIT, "experiment_id": "{experiment_id}",
                        "steps": [{"name": "train"}]}, NOT_FOUND, {}),
        ("POST", None, {"uri": GIT, "experiment_name": "{experiment_name}",
                        "steps": [{"name": "train"}]}, NOT_FOUND, {})],
    "api/v1/audit/events/": [("GET", {"target_id": "{run_id}"}, None, SAME, {})],
    "api/v1/inventory/": [("POST", None, {"model": "{name}", "owner": "charlie@bravo-probe.example",
                                          "risk_tier": "low", "intended_use": "b",
                                          "review_frequency_months": 12}, NOT_FOUND, {})],
    **{f"{prefix}2.0/mlflow-artifacts/^artifacts/?$": [
        ("GET", {"path": "{artifact_dir}"}, None, MLFLOW_NOT_FOUND, {})]
       for prefix in ("api/", "ajax-api/")},
}
# Bodies that would pass validation, so a refusal is about the object, not the input.
EXTEND = {"extended_until": (datetime.date.today() + datetime.timedelta(days=40)).isoformat(),
          "reason": "b"}
BODIES = {
    ("compliance/requests/<uuid:request_uuid>/", "POST"): [
        {"action": "generate", "language": "en"}, {"action": "extend", **EXTEND},
        {"action": "review", "version": 1}, {"action": "deliver", "version": 1,
                                              "channel": "post"}],
    ("api/v1/members/<int:member_id>/", "PATCH"): [{"role": "viewer"}],
    ("api/v1/approvals/<int:approval_id>/approve", "POST"): [{"comment": "b"}],
    ("api/v1/approvals/<int:approval_id>/reject", "POST"): [{"comment": "b"}],
    ("api/v1/decisions/<uuid:decision_id>/review", "POST"): [{"action": "upheld"}],
    ("api/v1/disclosures/<uuid:request_uuid>/generate", "POST"): [{"language": "en"}],
    ("api/v1/disclosures/<uuid:request_uuid>/extend", "POST"): [EXTEND],
    ("api/v1/disclosures/<uuid:request_uuid>/versions/<int:version>/review", "POST"): [
        {"note": "b"}],
    ("api/v1/disclosures/<uuid:request_uuid>/versions/<int:version>/deliver", "POST"): [
        {"channel": "post"}],
    ("api/v1/models/<str:name>/features/<str:feature>", "PUT"): [{"label_en": "b"}],
    **{(f"api/v1/models/<str:name>/{route}/predict", "POST"): [
        {"dataframe_split": {"columns": ["income"], "data": [[1.0]]}}]
       for route in ("versions/<str:version>", "aliases/<str:alias>")},
}

# Cases the probe found answering for org A's objects: (case id) -> what came back. Each is a
# bug to fix in the application; strict, so the fix turns the mark red and it is removed here.
KNOWN_LEAKS: dict[str, str] = {}


# --- generation ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    method: str
    path: str  # with {placeholders}
    query: dict | None = None
    body: object = None
    body_kind: str = "json"  # json, form or raw
    expect: str = NOT_FOUND
    via: str = "bearer"  # bearer (charlie's token), session (his browser) or anonymous
    # False: only org A's id is sent (the admin refuses before it reads the object)
    compare: bool = True


@dataclass(frozen=True)
class Case:
    kind: str  # ui, api, mlflow, artifacts, admin, public
    route: str  # as the URL configuration spells it; the RPC's path for an RPC
    method: str  # "" when the case covers several methods
    probes: tuple = ()
    accepted: frozenset | None = None  # methods the view takes (None: any)

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.method + ' ' if self.method else ''}{self.route}"


def walk(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, route)
        else:
            yield route, pattern


PLACEHOLDER = re.compile(r"\{(\w+(?::[\w.]+)?)\}")


def template_of(route: str) -> str:
    """The route as a path with {placeholders}; regex syntax that is left means it has none."""
    route = re.sub(r"\(\?P<(\w+)>[^()]*\)", r"{\1}", route)
    route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    return "/" + route.replace("^", "").replace("$", "").replace("/?", "")


def _wrapped(callback):
    """The callback and every function it wraps (decorators that use functools.wraps)."""
    while callback is not None:
        yield callback
        callback = getattr(callback, "__wrapped__", None)


def admin_model_of(pattern: URLPattern) -> str | None:
    for function in _wrapped(pattern.callback):
        owner = getattr(function, "model_admin", None) or getattr(function, "__self__", None)
        if isinstance(owner, admin.ModelAdmin):
            return owner.model._meta.label
    return None


def accepted_methods(pattern: URLPattern) -> frozenset | None:
    """What a class-based view implements, or a function view's require_http_methods list;
    None for a function view that takes any method."""
    view = getattr(pattern.callback, "view_class", None)
    if view is not None:
        return frozenset(m for m in ALL_METHODS if hasattr(view, m.lower()))
    for function in _wrapped(pattern.callback):
        code, cells = getattr(function, "__code__", None), getattr(function, "__closure__", None)
        for name, cell in zip(code.co_freevars if code else (), cells or (), strict=False):
            if name == "request_method_list":
                return frozenset(cell.cell_contents) & frozenset(ALL_METHODS)
    return None


def placeholders(*templates) -> set[str]:
    found = set()
    for template in templates:
        text = template if isinstance(template, str) else json.dumps(template, default=str)
        found |= set(PLACEHOLDER.findall(text))
    return found


def names_object(key: str) -> bool:
    return key in OBJECTS or key.startswith(ADMIN)


def _mlflow_cases(pattern) -> tuple[list[Case], dict[str, str]]:
    """One case per RPC; its probes take the prefixes and callers in turn, so that every
    prefix and caller is used across the RPCs (the URL route is one: see
    test_every_mlflow_prefix_reaches_the_same_rpc)."""
    cases, unfilled, turn = [], {}, 0
    if pattern.pattern.regex.pattern != MLFLOW_RPC_REGEX:
        return [], {"mlflow-rpc": f"the MLflow route is now {pattern.pattern.regex.pattern!r}: "
                                  "update MLFLOW_RPC_REGEX and MLFLOW_PREFIXES"}
    for method, routes in sorted(mlflow_views.ROUTES.items()):
        for route in routes:
            spec = RPC_PROBES.get((method, route.path))
            if spec is None:
                unfilled[f"{method} {route.path}"] = ("an RPC missing from RPC_PROBES: list "
                                                      "the ids it names")
                continue
            bodies = spec["probes"] or [({}, NO_OBJECT)]
            if not spec["no_object"] and not any(names_object(k) for b, _ in bodies
                                                 for k in placeholders(route.path, b)):
                unfilled[f"{method} {route.path}"] = ("its RPC_PROBES entry names no object "
                                                      "and gives no reason")
                continue
            probes = []
            for body, expect in bodies:
                prefix, via = MLFLOW_PREFIXES[turn % len(MLFLOW_PREFIXES)]
                turn += 1
                probes.append(Probe(method, f"/{prefix}{route.path}",
                                    query=body if method == "GET" else None,
                                    body=None if method == "GET" else body,
                                    expect=NO_OBJECT if spec["no_object"] else expect, via=via))
            cases.append(Case("mlflow", route.path, method, tuple(probes), frozenset({method})))
    return cases, unfilled


def _keys_of(kind: str, pattern: URLPattern, template: str) -> dict[str, str]:
    """URL parameter -> placeholder (raises KeyError naming one it cannot fill)."""
    keys = {}
    for kwarg in PLACEHOLDER.findall(template):
        if kind == "admin" and kwarg in ("object_id", "id"):
            label = admin_model_of(pattern) or (
                "tenancy.Organization" if pattern.name == "view_on_site" else None)
            if label is None:
                raise KeyError(f"{kwarg}: an admin route of no model admin")
            keys[kwarg] = ADMIN + label
        elif kwarg in OBJECTS or kwarg in SHARED:
            keys[kwarg] = kwarg
        else:
            raise KeyError(f"{kwarg}: no generator for this parameter (add it to OBJECTS, "
                           "SHARED or the admin mapping)")
    return keys


def _admin_case(route: str, pattern: URLPattern, path_t: str) -> Case:
    """The admin lets in platform staff only: an organization's owner is sent to its login
    before any object is read, by GET and, where the admin writes, by POST too."""
    methods = ["GET"]
    if re.search(r"_(add|change|delete)$|password", pattern.name or ""):
        methods.append("POST")
    return Case("admin", route, "", tuple(
        Probe(m, path_t, body={}, body_kind="form", expect=REFUSED, via="session", compare=False)
        for m in methods))


def _route_cases(kind: str, route: str, pattern: URLPattern, template: str,
                 keys: dict[str, str]) -> list[Case]:
    path_t = PLACEHOLDER.sub(lambda m: "{" + keys[m.group(1)] + "}", template)
    if kind == "admin":
        return [_admin_case(route, pattern, path_t)]
    accepted = accepted_methods(pattern)
    if kind == "artifacts":
        accepted, body_kind, expect = frozenset(HANDLERS), "raw", MLFLOW_NOT_FOUND
        via = "session" if route.startswith("ajax-api/") else "bearer"
    else:
        body_kind, expect = ("form", NOT_FOUND) if kind == "ui" else ("json", NOT_FOUND)
        via = "session" if kind == "ui" else "bearer"
    if not any(names_object(k) for k in keys.values()):
        expect = NO_OBJECT
    cases = []
    # A function view without a method list branches on POST; any other method is a GET.
    for method in sorted(accepted or ("GET", "POST"), key=ALL_METHODS.index):
        requests = [(path_t, None, body, expect) for body in
                    BODIES.get((route, method), [b"probe" if method == "PUT" else None]
                               if kind == "artifacts" else [{}])]
        for e_method, query, body, e_expect, kwargs in EXTRAS.get(route, ()):
            if e_method == method:
                requests.append((PLACEHOLDER.sub(lambda m, kw=kwargs: kw.get(
                    m.group(1), "{" + keys[m.group(1)] + "}"), template), query, body, e_expect))
        vias = [via] + (["session"] if kind == "api" and method == "GET" else [])
        cases.append(Case(kind, route, method, tuple(
            Probe(method, p, query=q, body=b, body_kind=body_kind, expect=e, via=v)
            for p, q, b, e in requests for v in vias), accepted))
    return cases


def generate(resolver=None) -> tuple[list[Case], dict[str, str]]:
    """Every route of the URL configuration as cases; the routes it cannot fill, with why."""
    cases, unfilled = [], {}
    for route, pattern in walk((resolver or get_resolver()).url_patterns):
        if pattern.name == "mlflow-rpc":
            more, missing = _mlflow_cases(pattern)
            cases += more
            unfilled.update(missing)
            continue
        template = template_of(route)
        if route in PUBLIC:
            cases.append(Case("public", route, "", () if route in PUBLIC_NOT_FETCHED else (
                Probe("GET", template, via="anonymous", expect=NO_OBJECT),)))
            continue
        if re.search(r"[\\()\[\]*+?|]", template):
            unfilled[route] = "regex syntax the generator cannot turn into a path"
            continue
        kind = "admin" if route.startswith("admin/") else \
            "artifacts" if pattern.callback is artifacts_endpoint else \
            "api" if route.startswith("api/v1/") else "ui"
        try:
            keys = _keys_of(kind, pattern, template)
        except KeyError as exc:
            unfilled[route] = exc.args[0]
            continue
        cases += _route_cases(kind, route, pattern, template, keys)
    return cases, unfilled


CASES, UNFILLED = generate()


# --- the world: org A's objects (and B's own) ---------------------------------------------------

A_SLUG, A_NAME = "alpha-probe-bank", "Alpha Probe Bank"
EXPERIMENT, MODEL = "alpha-secret-experiment", "alpha-secret-model"
MISSING_INT, MISSING_UUID = "987654321", "0badc0de-0bad-4bad-8bad-0badc0de0bad"
MISSING_RUN = "0badc0de" * 4


@dataclass
class World:
    org_a: Organization
    org_b: Organization
    alice: Persona
    bob: Persona
    charlie: Persona
    foreign: dict = field(default_factory=dict)  # placeholder -> org A's value
    missing: dict = field(default_factory=dict)  # placeholder -> a value naming nothing
    shared: dict = field(default_factory=dict)  # placeholder -> the same value both times
    markers: list = field(default_factory=list)  # text of org A that B must never see
    state: dict = field(default_factory=dict)  # org A as built: rows, events, files
    blanks: re.Pattern | None = None  # every id value, to blank out when comparing
    session_key: str = ""  # charlie's logged-in browser session, in org B
    clients: dict = field(default_factory=dict)  # via -> Client, made once
    files: list = field(default_factory=list)  # (storage, name) written outside the database

    def value(self, key: str, side: dict) -> str:
        if key in self.shared:
            return self.shared[key]
        if key.startswith(ADMIN):
            return side.get(key) or self._admin(key, side is self.foreign)
        return side[key]

    def _admin(self, key: str, foreign: bool) -> str:
        label = key.removeprefix(ADMIN)
        if label in ADMIN_PLATFORM_MODELS or not foreign:
            return MISSING_INT
        model = apps.get_model(label)
        found = {Organization: lambda: self.org_a, User: lambda: self.alice.user}.get(
            model, lambda: model._base_manager.filter(org=self.org_a).order_by("pk").first())()
        if found is None:
            raise LookupError(f"the world has no {label} of org A: add one to build_world()")
        self.foreign[key] = str(found.pk)
        return self.foreign[key]


def as_actor(persona: Persona) -> Actor:
    return Actor(kind="user", label=persona.email, user=persona.user)


def upload(org, path: str, data: bytes, actor: Actor) -> None:
    import io

    from tracking.artifacts import artifact_upload

    artifact_upload(org=org, path=path, stream=io.BytesIO(data), length=len(data), actor=actor)


def packaged(version, actor: Actor):
    """READY through the services the packaging worker calls (as tests/web/test_pages.py
    does): the probe needs a READY version, not a real package."""
    from models_registry import services as registry

    with transaction.atomic():
        registry.packaging_claim_within(version_pk=version.pk, attempt=1, actor=actor)
    manifest = {"files": [{"path": "MLmodel", "size": 12, "sha256": "ab" * 32}],
                "package_digest": "sha256:" + "cd" * 32, "mlmodel": {"flavors": {}}}
    return registry.packaging_finish(version_pk=version.pk, attempt=1,
                                     package_path=f"test/{version.uuid}",
                                     digest=manifest["package_digest"], manifest=manifest,
                                     actor=actor)


def generated(disclosure, actor: Actor):
    """READY through the services the reports worker calls, with a stand-in file."""
    from django.core.files.base import ContentFile

    from reports import services as reports

    body = b"%PDF-1.4 stand-in\n%%EOF\n"
    with transaction.atomic():
        reports.disclosure_claim_within(pk=disclosure.pk, attempt=1, actor=actor)
    name = storages["reports"].save(f"test/{disclosure.uuid}.pdf", ContentFile(body))
    return reports.disclosure_finish(pk=disclosure.pk, attempt=1, file_name=name,
                                     sha256=hashlib.sha256(body).hexdigest(), size=len(body),
                                     checkpoint_size=0, actor=actor)


def build_world() -> World:
    from audit.models import AuditEvent
    from audit.services import checkpoint_create
    from models_registry import inventory
    from models_registry import services as registry
    from models_registry.decisions import DecisionInput, decisions_record
    from models_registry.models import DecisionSource
    from projects import services as projects
    from reports import services as reports
    from tenancy.services import organization_create
    from tests.reports.conftest import profile_data
    from tracking.artifacts import artifact_path_of_uri
    from tracking.services import experiments, inputs, logged_models, runs

    org_a = organization_create(slug=A_SLUG, name=A_NAME, actor=SETUP)
    org_b = organization_create(slug="bravo-probe-bank", name="Bravo Probe Bank", actor=SETUP)
    world = World(org_a, org_b, make_persona(org_a, "alice@alpha-probe.example", Role.OWNER),
                  make_persona(org_a, "bob@alpha-probe.example", Role.VIEWER),
                  make_persona(org_b, "charlie@bravo-probe.example", Role.OWNER))
    alice = as_actor(world.alice)

    experiment = experiments.experiment_create(org=org_a, name=EXPERIMENT, actor=alice,
                                               tags={"team": "alpha-secret-team"})
    run = runs.run_create(experiment=experiment, actor=alice, run_name="alpha-secret-run",
                          tags={"team": "alpha-secret-team"})
    runs.run_log_batch(run=run, actor=alice, metrics=[{**METRIC, "value": 0.25}],
                       params=[{"key": "alpha_secret_param", "value": "42"}], tags=[],
                       payload={})
    inputs.run_log_inputs(run=run, actor=alice, models=[], datasets=[{"dataset": {
        "name": "alpha-secret-dataset", "digest": "a1", "source_type": "local", "source": "{}"}}])
    root = f"{experiment.public_id}/{run.run_uuid}/artifacts"
    upload(org_a, f"{root}/model/MLmodel", b"flavors: {}\n", alice)
    logged = logged_models.logged_model_create(experiment=experiment, actor=alice,
                                               name="alpha-secret-logged-model", source_run=run,
                                               tags={"team": "alpha-secret-team"})
    upload(org_a, f"{artifact_path_of_uri(logged.artifact_uri)}/MLmodel", b"flavors: {}\n",
           alice)
    model = registry.registered_model_create(org=org_a, name=MODEL, actor=alice,
                                             tags={"team": "alpha-secret-team"})
    version = packaged(registry.model_version_create(
        model=model, source=f"runs:/{run.run_uuid}/model", actor=alice,
        tags={"team": "alpha-secret-team"}), SETUP)
    registry.model_version_tag(version=version, key="team", value="alpha-secret-team",
                               actor=alice)
    registry.alias_set(version=version, alias="champion", actor=alice)
    protected = registry.protected_alias_add(org=org_a, alias="production", actor=alice)
    with pytest.raises(registry.ApprovalRequired) as asked:
        registry.alias_set(version=version, alias="production", actor=alice, reason="alpha")
    decision = decisions_record(org=org_a, version=version, actor=alice,
                                source=DecisionSource.IMPORTED, items=[DecisionInput(
                                    subject="C-ALPHA-1", inputs={"income": 1.0},
                                    purpose="credit decision", outcome="approved")])[0]
    reports.feature_description_set(registered_model=model, feature="income", actor=alice,
                                    data={"label_en": "Income", "label_de": "Einkommen",
                                          "meaning_en": "Net income", "category_en": "Income",
                                          "source_en": "Payslips"})  # what an en PDF needs
    reports.compliance_profile_set(org=org_a, actor=alice, data=profile_data(A_NAME))
    inventory.inventory_entry_create(model=model, owner=world.alice.email, risk_tier="high",
                                     intended_use="alpha-secret-use", actor=alice,
                                     review_frequency_months=12)
    inventory.validation_record(model=model, actor=alice, validated_by=world.bob.email,
                                validated_on=timezone.localdate(), scope="alpha-secret-scope",
                                outcome="approved")
    project_run = projects.project_run_submit(experiment=experiment, actor=alice, git_url=GIT,
                                              git_ref="main")
    workflow = projects.workflow_submit(experiment=experiment, actor=alice, git_url=GIT,
                                        name="alpha-secret-workflow", steps=[{"name": "train"}])
    request = reports.disclosure_request_create(
        org=org_a, actor=alice, subject="C-ALPHA-1", subject_name="Erika Alphaprobe",
        received_on=timezone.localdate(), identity_verification="ID card", language="en")
    pdf = generated(reports.disclosure_generate(request=request, actor=alice), SETUP)
    checkpoint = checkpoint_create(org=org_a)

    # org B's own objects, for the cases that mix an own id with one of org A
    charlie = as_actor(world.charlie)
    b_experiment = experiments.experiment_create(org=org_b, name="bravo-experiment",
                                                 actor=charlie)
    b_run = runs.run_create(experiment=b_experiment, actor=charlie, run_name="bravo-run")
    upload(org_b, f"{b_experiment.public_id}/{b_run.run_uuid}/artifacts/model/MLmodel",
           b"flavors: {}\n", charlie)
    b_model = registry.registered_model_create(org=org_b, name="bravo-model", actor=charlie)

    last_seq = AuditEvent.objects.filter(org=org_a).order_by("-seq").first().seq
    assert last_seq > AuditEvent.objects.filter(org=org_b).count(), "B must not have A's seq"
    world.foreign = {
        "experiment_id": experiment.public_id, "experiment_name": experiment.name,
        "run_id": run.run_uuid, "model_id": logged.model_id, "name": model.name,
        "artifact_path": f"{root}/model/MLmodel", "artifact_dir": root,
        "member_id": str(world.bob.membership.pk), "token_id": str(world.bob.token.pk),
        "seq": str(last_seq), "tree_size": str(checkpoint.tree_size),
        "approval_id": str(asked.value.approval.pk), "protected_id": str(protected.pk),
        "decision_id": str(decision["decision_id"]), "run_uuid": str(project_run.uuid),
        "workflow_uuid": str(workflow.uuid), "request_uuid": str(request.uuid),
        "org": org_a.slug, "user": world.alice.email,
    }
    world.missing = {
        "experiment_id": MISSING_INT, "experiment_name": "no-such-experiment-probe",
        "run_id": MISSING_RUN, "model_id": f"m-{MISSING_RUN}", "name": "no-such-model-probe",
        "artifact_path": f"{MISSING_INT}/{MISSING_RUN}/artifacts/model/MLmodel",
        "artifact_dir": f"{MISSING_INT}/{MISSING_RUN}/artifacts",
        "member_id": MISSING_INT, "token_id": MISSING_INT, "seq": MISSING_INT,
        "tree_size": MISSING_INT, "approval_id": MISSING_INT, "protected_id": MISSING_INT,
        "decision_id": MISSING_UUID, "run_uuid": MISSING_UUID, "workflow_uuid": MISSING_UUID,
        "request_uuid": MISSING_UUID, "org": "no-such-org-probe",
        "user": "nobody@nowhere-probe.example",
    }
    from django.contrib.contenttypes.models import ContentType

    world.shared = {
        "version": "1", "alias": "champion", "feature": "income", "tag_key": "team",
        "b_experiment_id": b_experiment.public_id, "b_run_id": b_run.run_uuid,
        "b_name": b_model.name, "app_label": "tenancy", "url": "no-such-admin-page/",
        "content_type_id": str(ContentType.objects.get_for_model(Organization).pk),
    }
    assert set(world.foreign) == set(world.missing) == set(OBJECTS)
    assert set(world.shared) == set(SHARED)
    world.files = [("reports", pdf.file_name)]
    world.markers = ["alpha-secret", "alpha-probe", "Alpha Probe", "Alphaprobe", "C-ALPHA",
                     run.run_uuid, logged.model_id, str(version.uuid), str(project_run.uuid),
                     str(workflow.uuid), str(request.uuid), str(decision["decision_id"]),
                     world.alice.token.prefix, world.bob.token.prefix]
    return world


@functools.cache
def _state_sources() -> list[tuple[str, str, str, str]]:
    """(label, table, key column, condition on the organization's id) of every table holding
    rows of an organization: each model with an `org`, the organization, its members' users."""
    qn = connection.ops.quote_name
    user, membership = User._meta, Membership._meta
    sources = [(m._meta.label, m._meta.db_table, m._meta.pk.column,
                f"t.{qn(m._meta.get_field('org').column)} = %s") for m in apps.get_models()
               if any(f.name == "org" and f.related_model is Organization
                      for f in m._meta.concrete_fields)]
    users = (f"t.{qn(user.pk.column)} IN (SELECT user_id FROM {qn(membership.db_table)} "
             "WHERE org_id = %s)")
    return [*sources, ("tenancy.Organization", Organization._meta.db_table, "id", "t.id = %s"),
            ("tenancy.User", user.db_table, user.pk.column, users)]


def org_state(org) -> dict:
    """Every row of `org` (each model with an `org`, its audit events among them), the
    organization, its members' users, and its artifact files with sizes and times."""
    from tracking.artifacts import artifact_storage

    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # one round trip: a count and MD5 per table
            cursor.execute(" UNION ALL ".join(
                f"SELECT %s, count(*), md5(coalesce(string_agg(t::text, '|' "
                f"ORDER BY t.{qn(key)}), '')) FROM {qn(table)} t WHERE {where}"
                for _label, table, key, where in _state_sources()),
                [v for label, *_ in _state_sources() for v in (label, org.pk)])
            state = {label: (count, digest) for label, count, digest in cursor.fetchall()}
        else:  # in-process SQLite: the rows themselves, a query per table
            state = {}
            for label, table, key, where in _state_sources():
                cursor.execute(f"SELECT * FROM {qn(table)} t WHERE {where} "
                               f"ORDER BY t.{qn(key)}", [org.pk])
                state[label] = cursor.fetchall()
    if connection.vendor != "postgresql":
        # SQLite hands a new row the id of a deleted one: org A's folder may be the folder of
        # an earlier test's organization of the same id, whose files that test's leftover
        # threads may still touch. The files are the same on both databases: PostgreSQL's
        # run compares them.
        return state
    root, files = artifact_storage().path(str(org.pk)), []
    for folder, _dirs, names in os.walk(root):
        for name in names:
            stat = os.stat(os.path.join(folder, name))
            files.append((os.path.relpath(os.path.join(folder, name), root), stat.st_size,
                          stat.st_mtime_ns))
    state["artifact files"] = sorted(files)
    return state


@pytest.fixture
def world(db):
    """Org A's objects (and B's own), built in the test's transaction. A module-wide
    transaction would be faster, but the suite's workers interleave other modules' tests
    (pytest-xdist's worksteal), whose flushes and files would then meet it half-way."""
    from tracking.artifacts import artifact_storage

    built = None
    try:
        built = build_world()
        values = [*built.foreign.values(), *built.missing.values(), *built.shared.values()]
        built.blanks = re.compile("(?<![0-9A-Za-z])(?:" + "|".join(
            re.escape(v) for v in sorted(set(values), key=len, reverse=True))
            + ")(?![0-9A-Za-z])")
        built.state = org_state(built.org_a)
        browser = client_for(built, "session")  # charlie's browser, reused by every probe
        browser.force_login(built.charlie.user)
        session = browser.session
        session[SESSION_ORG_KEY] = built.org_b.pk  # the organization he chose
        session.save()
        built.session_key = session.session_key
        yield built
    finally:
        if built is not None:  # files are not transactional
            for org in (built.org_a, built.org_b):
                shutil.rmtree(artifact_storage().path(str(org.pk)), ignore_errors=True)
            for alias, name in built.files:
                storages[alias].delete(name)


# --- the probe -------------------------------------------------------------------------------

def client_for(world: World, via: str) -> Client:
    """Charlie's token client, his browser (logged in, org B chosen) or nobody's, as each test
    begins. Made once: a new Client loads the middleware, and WhiteNoise's scan of the static
    files then costs more than the requests of a test."""
    if via not in world.clients:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {world.charlie.raw_token}"} \
            if via == "bearer" else {}
        world.clients[via] = Client(**headers)
    client = world.clients[via]
    client.cookies = SimpleCookie()
    if via == "session":
        client.cookies[settings.SESSION_COOKIE_NAME] = world.session_key
    return client


def fill(value, world: World, side: dict):
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: world.value(m.group(1), side), value)
    if isinstance(value, dict):
        return {k: fill(v, world, side) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, world, side) for v in value]
    return value


def send(client: Client, probe: Probe, world: World, side: dict):
    url, query = fill(probe.path, world, side), fill(probe.query, world, side)
    body = fill(probe.body, world, side)
    if probe.method == "GET":
        return client.get(url, query or {})
    if query:
        url += "?" + urlencode(query, doseq=True)
    if probe.body_kind == "raw":
        return client.generic(probe.method, url, body or b"",
                              content_type="application/octet-stream")
    if probe.body_kind == "form":
        if probe.method == "POST":
            return client.post(url, body or {})
        return client.generic(probe.method, url, urlencode(body or {}, doseq=True),
                              content_type="application/x-www-form-urlencoded")
    return client.generic(probe.method, url, json.dumps(body or {}),
                          content_type="application/json")


@dataclass(frozen=True)
class Answer:
    status: int
    location: str
    text: str

    def excerpt(self) -> str:
        text = re.sub(r"\s+", " ", self.text)
        match = re.search(r"<h1[^>]*>.*?</h1>", text)
        return f"{self.status} {self.location} {(match.group(0) if match else text)[:300]}"


def answer(response, world: World) -> Answer:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode("utf-8", "replace")
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", text)
    text = re.sub(r'nonce="[^"]*"', 'nonce=""', text)
    blank = lambda s: world.blanks.sub("<id>", s)  # noqa: E731
    return Answer(response.status_code, blank(unquote(response.get("Location", ""))), blank(text))


def expectation_failed(probe: Probe, case: Case, got: Answer) -> str | None:
    accepted = case.accepted is None or probe.method in case.accepted
    if probe.expect == NOT_FOUND:
        ok = got.status == 404 or (got.status == 405 and (case.kind == "ui" or not accepted))
        return None if ok else f"answers {got.status}, not 404"
    if probe.expect == MLFLOW_NOT_FOUND:
        try:
            code = json.loads(got.text).get("error_code")
        except ValueError:
            code = None
        wanted = {"RESOURCE_DOES_NOT_EXIST"} if accepted else {"ENDPOINT_NOT_FOUND"}
        ok = got.status == 404 and code in wanted
        return None if ok else f"answers {got.status} {code}, not 404 {'/'.join(wanted)}"
    if probe.expect == REFUSED:
        # the login, or (admin:logout) the admin's index, which sends to the login
        ok = got.status == 302 and (got.location.startswith("/admin/login/")
                                    or got.location == "/admin/")
        return None if ok else f"answers {got.status} {got.location}, not the admin's login"
    if probe.via != "anonymous" and (got.status == 401 or got.location.startswith("/login/")):
        return f"answers {got.status} {got.location}: charlie was not let in, nothing was probed"
    return None


def probe(world: World, case: Case) -> list[str]:
    """What charlie (org B's owner) got that he should not have: answers that tell org A's
    objects from missing ones, or show org A's data, and any change to org A."""
    findings, clients = [], {}
    for p in case.probes:
        client = clients.get(p.via) or clients.setdefault(p.via, client_for(world, p.via))
        label = f"{p.via} {p.method} {fill(p.path, world, world.foreign)}" + (
            f" query={fill(p.query, world, world.foreign)}" if p.query else "") + (
            f" body={fill(p.body, world, world.foreign)}" if p.body else "")
        got = answer(send(client, p, world, world.foreign), world)
        if p.compare and any(names_object(k) for k in placeholders(p.path, p.query, p.body)):
            missing = answer(send(client, p, world, world.missing), world)
            if got != missing:
                findings.append(f"{label}: org A's object answers {got.excerpt()!r}, a missing "
                                f"one {missing.excerpt()!r}")
            elif problem := expectation_failed(p, case, got):
                findings.append(f"{label}: {problem} (the same for a missing id)")
        elif problem := expectation_failed(p, case, got):
            findings.append(f"{label}: {problem}")
        seen = [m for m in world.markers if m in got.text]
        if seen:
            findings.append(f"{label}: the answer shows org A's {seen}: {got.excerpt()!r}")
    after = org_state(world.org_a)
    changed = sorted(k for k in after if after[k] != world.state.get(k))
    if changed:
        findings.append(f"org A changed: {changed}")
    return findings


# --- the suite ---------------------------------------------------------------------------

def test_every_route_is_probed_or_explicitly_public(world):
    assert not UNFILLED, f"routes without tenant coverage: {UNFILLED}"
    routes = {route for route, _ in walk(get_resolver().url_patterns)}
    assert {c.kind for c in CASES} == {"ui", "api", "mlflow", "artifacts", "admin", "public"}
    assert set(PUBLIC) <= routes, f"PUBLIC names routes that are gone: {set(PUBLIC) - routes}"
    assert set(PUBLIC_NOT_FETCHED) <= set(PUBLIC)
    rpcs = {(m, r.path) for m, rs in mlflow_views.ROUTES.items() for r in rs}
    assert set(RPC_PROBES) == rpcs, f"RPC_PROBES names RPCs that are gone: {set(RPC_PROBES) - rpcs}"
    assert set(EXTRAS) | {route for route, _ in BODIES} <= routes
    assert set(KNOWN_LEAKS) <= {c.id for c in CASES}
    assert set(ADMIN_PLATFORM_MODELS) <= {admin_model_of(p) for _, p in walk(
        get_resolver().url_patterns)}
    for case in CASES:  # every placeholder resolves, the admin's objects among them
        for p in case.probes:
            for side in (world.foreign, world.missing):
                fill([p.path, p.query, p.body], world, side)


def test_every_mlflow_prefix_reaches_the_same_rpc():
    for method, rpc_path in RPC_PROBES:
        matches = [resolve(f"/{prefix}{rpc_path}") for prefix, _ in MLFLOW_PREFIXES]
        assert {(m.func, m.kwargs["rpc_path"]) for m in matches} == {
            (mlflow_views.mlflow_endpoint, rpc_path)}, method
    assert {via for _, via in MLFLOW_PREFIXES} == {"bearer", "session"}


def probe_isolated(world: World, case: Case) -> list[str]:
    """probe(), its writes rolled back afterwards (a savepoint the services' durable blocks
    accept, as a TestCase's own), so one leaking route does not show in the next."""
    atomics = TestCase._enter_atomics()
    try:
        return probe(world, case)
    finally:
        TestCase._rollback_atomics(atomics)


def test_no_route_tells_org_a_objects_from_missing_ones(world):
    """Web pages, /api/v1/, every MLflow RPC, the artifact proxy, the admin (an org owner
    who is not staff gets its login, whatever the object) and the public routes (no org
    data). Known leaks (KNOWN_LEAKS) must still leak, so one that is fixed is noticed."""
    found = {case.id: probe_isolated(world, case) for case in CASES}
    leaks = {case_id: findings for case_id, findings in found.items() if findings}
    assert {k: v for k, v in leaks.items() if k not in KNOWN_LEAKS} == {}
    assert set(KNOWN_LEAKS) <= set(leaks), f"fixed: {set(KNOWN_LEAKS) - set(leaks)}"
    assert {c.kind for c in CASES} == {"ui", "api", "mlflow", "artifacts", "admin", "public"}


# --- the probe can fail: views that forget the organization -------------------------------

def _unscoped_run(request, run_id):
    from tracking.models import Run

    run = Run.objects.filter(run_uuid=run_id).first()  # the bug: any organization's run
    if run is None:
        raise Http404("No such run.")
    return JsonResponse({"name": run.name})


def _scoped_run(request, run_id):
    from tenancy.authentication import session_access
    from tenancy.web import found
    from tracking.selectors import run_get

    run = found(run_get, org=session_access(request).org, run_id=run_id)
    return JsonResponse({"name": run.name})


def _unscoped_rename(request, experiment_id):
    """Answers exactly like a missing experiment, but renames any organization's first."""
    from tracking.models import Experiment

    if request.method == "POST":
        Experiment.objects.filter(pk=experiment_id).update(name="renamed-by-b")
    raise Http404("No such experiment.")


urlpatterns = [  # this module as ROOT_URLCONF: the application's routes and four more
    path("probe-test/unscoped/runs/<str:run_id>/", _unscoped_run),
    path("probe-test/scoped/runs/<str:run_id>/", _scoped_run),
    path("probe-test/unscoped/experiments/<str:experiment_id>/", _unscoped_rename),
    path("probe-test/widgets/<int:widget_id>/", _scoped_run),
    path("", include("config.urls")),
]


def cases_of(route: str) -> dict[str, Case]:
    cases, _ = generate(get_resolver())
    return {c.method: c for c in cases if c.route == route}


@override_settings(ROOT_URLCONF=__name__)
def test_the_probe_detects_views_that_forget_the_organization(world):
    leaky = {m: probe_isolated(world, c) for m, c in cases_of("probe-test/unscoped/runs/<str:run_id>/")
             .items()}
    assert set(leaky) == {"GET", "POST"} and all(leaky.values()), leaky
    assert leaky["GET"][0].startswith("session GET /probe-test/unscoped/runs/")
    assert "org A's object answers '200" in leaky["GET"][0]
    assert any("the answer shows org A's ['alpha-secret']" in f for f in leaky["GET"])
    # the same view with the organization's filter: nothing to report
    assert [probe_isolated(world, c) for c in cases_of("probe-test/scoped/runs/<str:run_id>/")
            .values()] == [[], []]
    # a write to org A that answers 404 as for a missing id
    post = cases_of("probe-test/unscoped/experiments/<str:experiment_id>/")["POST"]
    assert probe_isolated(world, post) == ["org A changed: ['tracking.Experiment']"]


@override_settings(ROOT_URLCONF=__name__)
def test_a_route_the_generator_cannot_fill_fails_the_coverage_test():
    _, unfilled = generate(get_resolver())
    assert unfilled == {"probe-test/widgets/<int:widget_id>/": (
        "widget_id: no generator for this parameter (add it to OBJECTS, SHARED or the admin "
        "mapping)")}
