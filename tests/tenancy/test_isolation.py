"""Tenant isolation and role checks on every /api/v1/ endpoint (STYLE.md section 7).

ENDPOINTS lists every route under /api/v1/ with the methods its view implements and, for a
route with an id, how to get the id of an org A object. test_every_api_v1_route_is_in_the_
endpoints_table fails when a route is added without being listed here (i.e. untested).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import checkpoint_create
from tenancy.models import ApiToken, Membership, User

MISSING_ID = 987654321
REGISTRY_TESTS = "tests/models_registry/test_native_api.py"
# Public: the OpenAPI schema, its viewer and the checkpoint signing key.
NOT_TENANT_ROUTES = {"schema/", "docs/", "audit/public-key/"}


@dataclass(frozen=True)
class Endpoint:
    methods: tuple[str, ...]
    # For a route with an <int:...> id: personas -> the id of an object of org A (none in B)
    target: Callable | None = None
    body: dict | None = None  # a valid body, so a refusal cannot be blamed on validation
    query: str = ""  # for a route without an id: what a valid GET needs
    # Routes whose ids are names or uuids, or whose objects need a packaged model, have their
    # isolation and bad-input tests in that file instead of the generic ones below.
    elsewhere: str = ""


def last_seq_of_org_a(p) -> int:
    # Personas give org A five events and org B three: A's last seq does not exist in B.
    return AuditEvent.objects.filter(org=p.org_a).order_by("-seq").first().seq


def checkpoint_of_org_a(p) -> int:
    return checkpoint_create(org=p.org_a).tree_size


ENDPOINTS = {
    "me/": Endpoint(("GET",)),
    "members/": Endpoint(("GET", "POST")),
    "members/<int:member_id>/": Endpoint(("GET", "PATCH", "DELETE"),
                                         lambda p: p.bob.membership.id, {"role": "viewer"}),
    "service-accounts/": Endpoint(("GET", "POST")),
    "tokens/": Endpoint(("GET", "POST")),
    "tokens/<int:token_id>/": Endpoint(("GET", "DELETE"), lambda p: p.bob.token.id),
    "audit/events/": Endpoint(("GET",)),
    "audit/events/<int:seq>/": Endpoint(("GET",), last_seq_of_org_a),
    "audit/verify/": Endpoint(("GET", "POST")),
    "audit/checkpoints/": Endpoint(("GET", "POST")),
    "audit/checkpoints/<int:tree_size>/": Endpoint(("GET",), checkpoint_of_org_a),
    "audit/consistency/": Endpoint(("GET",), query="?old_size=1&new_size=2"),
    "audit/export/": Endpoint(("GET",)),
    "approvals/": Endpoint(("GET", "POST")),
    "protected-aliases/": Endpoint(("GET", "POST")),
    "decisions/": Endpoint(("GET", "POST")),
    **{route: Endpoint(methods, elsewhere=REGISTRY_TESTS) for route, methods in [
        ("approvals/<int:approval_id>/", ("GET",)),
        ("approvals/<int:approval_id>/approve", ("POST",)),
        ("approvals/<int:approval_id>/reject", ("POST",)),
        ("approvals/<int:approval_id>/cancel", ("POST",)),
        ("protected-aliases/<int:protected_id>/", ("DELETE",)),
        ("decisions/<uuid:decision_id>/", ("GET",)),
        ("decisions/<uuid:decision_id>/review", ("POST",)),
        ("models/<str:name>/versions/<str:version>/package", ("GET",)),
        ("models/<str:name>/versions/<str:version>/manifest", ("GET",)),
    ]},
    "projects/runs/": Endpoint(("GET", "POST")),
    "projects/workflows/": Endpoint(("GET", "POST")),
    "disclosures/": Endpoint(("GET", "POST")),
    **{route: Endpoint(methods, elsewhere="tests/reports/test_disclosures.py")
       for route, methods in [
        ("compliance/profile/", ("GET", "PATCH")),
        ("disclosures/<uuid:request_uuid>/", ("GET",)),
        ("disclosures/<uuid:request_uuid>/generate", ("POST",)),
        ("disclosures/<uuid:request_uuid>/extend", ("POST",)),
        ("disclosures/<uuid:request_uuid>/pdf", ("GET",)),
        ("models/<str:name>/features/", ("GET",)),
        ("models/<str:name>/features/<str:feature>", ("PUT", "DELETE")),
    ]},
    **{route: Endpoint(("POST",), elsewhere="tests/reports/test_request_lifecycle.py")
       for route in ("disclosures/<uuid:request_uuid>/versions/<int:version>/review",
                     "disclosures/<uuid:request_uuid>/versions/<int:version>/deliver")},
    **{route: Endpoint(methods, elsewhere="tests/projects/test_workflows.py") for route, methods in [
        ("projects/workflows/<uuid:workflow_uuid>/", ("GET",)),
        ("projects/workflows/<uuid:workflow_uuid>/cancel", ("POST",)),
    ]},
    **{route: Endpoint(methods, elsewhere="tests/projects/test_runs.py") for route, methods in [
        ("projects/runs/<uuid:run_uuid>/", ("GET",)),
        ("projects/runs/<uuid:run_uuid>/logs", ("GET",)),
        ("projects/runs/<uuid:run_uuid>/cancel", ("POST",)),
    ]},
    **{route: Endpoint(("POST",), elsewhere="tests/models_registry/test_scoring.py")
       for route in ("models/<str:name>/versions/<str:version>/predict",
                     "models/<str:name>/aliases/<str:alias>/predict")},
    **{route: Endpoint(methods, elsewhere="tests/models_registry/test_inventory.py")
       for route, methods in [
        ("inventory/", ("GET", "POST")),
        ("inventory/export.csv", ("GET",)),
        ("inventory/<str:name>/", ("GET", "PATCH")),
        ("inventory/<str:name>/reviews", ("POST",)),
        ("inventory/<str:name>/validations/", ("GET", "POST")),
    ]},
    "inventory/report.pdf": Endpoint(("GET",),
                                     elsewhere="tests/models_registry/test_inventory_report.py"),
}
DETAIL_CASES = [(route, method) for route, e in ENDPOINTS.items() if e.target for method in e.methods]


def api_v1_routes() -> dict[str, URLPattern]:
    def walk(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            else:
                yield route, pattern

    return {route.removeprefix("api/v1/"): pattern
            for route, pattern in walk(get_resolver().url_patterns, "")
            if route.startswith("api/v1/")}


def implemented_methods(pattern: URLPattern) -> set[str]:
    view = pattern.callback.view_class
    return {m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)}


def url(route: str, object_id: int | None = None) -> str:
    return "/api/v1/" + re.sub(r"<int:\w+>", str(object_id), route)


def call(client, method: str, path: str, body: dict | None = None):
    return getattr(client, method.lower())(path, body, format="json")


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in (Membership, ApiToken, AuditEvent, User)}


# --- the contract: every route is listed ---------------------------------------------------

def test_every_api_v1_route_is_in_the_endpoints_table():
    routes = set(api_v1_routes()) - NOT_TENANT_ROUTES
    assert routes, "no /api/v1/ routes found: the walk over the URL patterns is broken"
    unlisted = routes - set(ENDPOINTS)
    assert not unlisted, f"add isolation tests and an ENDPOINTS entry for: {sorted(unlisted)}"
    assert not set(ENDPOINTS) - routes, "ENDPOINTS lists routes that no longer exist"


@pytest.mark.parametrize("route", sorted(r for r, e in ENDPOINTS.items() if e.elsewhere))
def test_routes_tested_elsewhere_name_a_file_that_calls_them(route):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / ENDPOINTS[route].elsewhere).read_text()
    last = [part for part in route.strip("/").split("/") if not part.startswith("<")][-1]
    assert "charlie" in text and last in text


@pytest.mark.parametrize("route", sorted(ENDPOINTS))
def test_the_endpoints_table_lists_exactly_the_methods_each_view_implements(route):
    assert implemented_methods(api_v1_routes()[route]) == set(ENDPOINTS[route].methods)


# --- charlie (org B) and org A's objects ----------------------------------------------------

@pytest.mark.parametrize(("route", "method"), DETAIL_CASES)
def test_charlie_gets_404_for_org_a_objects(personas, api, route, method):
    endpoint = ENDPOINTS[route]
    before = row_counts()
    foreign = call(api(personas.charlie), method, url(route, endpoint.target(personas)),
                   endpoint.body)
    missing = call(api(personas.charlie), method, url(route, MISSING_ID), endpoint.body)

    assert foreign.status_code == 404, foreign.content
    assert foreign.json()["code"] == "not_found"
    assert foreign.json() == missing.json()  # identical: nothing tells "foreign" from "missing"
    assert missing.status_code == 404
    assert row_counts() == before
    personas.bob.membership.refresh_from_db()
    personas.bob.token.refresh_from_db()
    assert personas.bob.membership.role == "viewer" and personas.bob.token.revoked_at is None


@pytest.mark.parametrize("route", [r for r, e in ENDPOINTS.items() if e.target])
def test_charlie_gets_the_same_404_for_org_a_objects_with_an_invalid_body(personas, api, route):
    target = ENDPOINTS[route].target(personas)
    for method in ENDPOINTS[route].methods:
        foreign = call(api(personas.charlie), method, url(route, target), {"role": "emperor"})
        missing = call(api(personas.charlie), method, url(route, MISSING_ID), {"role": "emperor"})
        assert (foreign.status_code, foreign.json()) == (missing.status_code, missing.json())


@pytest.mark.parametrize("route", [r for r, e in ENDPOINTS.items() if "GET" in e.methods
                                   and not e.target and not e.elsewhere])
def test_charlies_reads_never_include_org_a_rows(personas, api, route):
    response = api(personas.charlie).get(url(route) + ENDPOINTS[route].query)
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode()
    for leak in ("org-a", "alice@a.example", "bob@a.example", personas.alice.token.prefix,
                 personas.bob.token.prefix):
        assert leak not in text


def test_charlies_lists_hold_only_org_b_rows(personas, api):
    members = api(personas.charlie).get("/api/v1/members/").json()
    tokens = api(personas.charlie).get("/api/v1/tokens/").json()
    assert [m["id"] for m in members] == [personas.charlie.membership.id]
    assert [t["id"] for t in tokens] == [personas.charlie.token.id]


def test_charlie_cannot_mint_a_token_for_an_org_a_user(personas, api):
    before = row_counts()
    response = api(personas.charlie).post("/api/v1/tokens/", {"name": "x", "user": "alice@a.example"},
                                          format="json")
    assert response.status_code == 404
    assert response.json() == api(personas.charlie).post(
        "/api/v1/tokens/", {"name": "x", "user": "nobody@b.example"}, format="json").json()
    assert row_counts() == before


def test_charlie_cannot_reach_org_a_through_the_workspace_header(personas, api):
    response = api(personas.charlie).get("/api/v1/members/", HTTP_X_MLFLOW_WORKSPACE="org-a")
    assert response.status_code == 404


# --- bob (viewer in A) ------------------------------------------------------------------

@pytest.mark.parametrize(("method", "route", "body"), [
    ("GET", "members/", None),
    ("POST", "members/", {"email": "new@a.example", "role": "viewer"}),
    ("GET", "members/<int:member_id>/", None),
    ("PATCH", "members/<int:member_id>/", {"role": "admin"}),
    ("DELETE", "members/<int:member_id>/", None),
])
def test_bob_the_viewer_gets_403_on_member_endpoints(personas, api, method, route, body):
    before = row_counts()
    response = call(api(personas.bob), method, url(route, personas.alice.membership.id), body)
    assert response.status_code == 403
    assert "viewer" in response.json()["detail"]
    assert row_counts() == before


def test_bob_lists_only_his_own_tokens(personas, api):
    tokens = api(personas.bob).get("/api/v1/tokens/").json()
    assert {t["user"] for t in tokens} == {"bob@a.example"}


def test_bob_creates_tokens_only_for_himself(personas, api):
    created = api(personas.bob).post("/api/v1/tokens/", {"name": "mine"}, format="json")
    assert created.status_code == 201 and created.json()["user"] == "bob@a.example"
    before = row_counts()
    for_alice = api(personas.bob).post("/api/v1/tokens/", {"name": "x", "user": "alice@a.example"},
                                       format="json")
    assert for_alice.status_code == 403
    assert row_counts() == before


def test_bob_revokes_his_own_token_but_gets_404_for_alices(personas, api):
    mine = api(personas.bob).post("/api/v1/tokens/", {"name": "mine"}, format="json").json()
    assert api(personas.bob).delete(f"/api/v1/tokens/{mine['id']}/").json()["state"] == "revoked"
    alices = f"/api/v1/tokens/{personas.alice.token.id}/"
    assert api(personas.bob).get(alices).status_code == 404
    assert api(personas.bob).delete(alices).status_code == 404
    assert ApiToken.objects.get(pk=personas.alice.token.id).revoked_at is None


def test_alice_the_owner_sees_and_revokes_all_of_org_a_tokens(personas, api):
    ids = {t["id"] for t in api(personas.alice).get("/api/v1/tokens/").json()}
    assert ids == {personas.alice.token.id, personas.bob.token.id}
    response = api(personas.alice).delete(f"/api/v1/tokens/{personas.bob.token.id}/")
    assert response.status_code == 200 and response.json()["state"] == "revoked"


# --- bad input: 400 naming the field, nothing written ---------------------------------------

PAST = (timezone.now() - timedelta(days=1)).isoformat()
BAD_INPUT = [
    ("POST", "members/", {"email": "new@a.example", "role": "emperor"}, "role"),
    ("POST", "members/", {"role": "viewer"}, "email"),
    ("POST", "members/", {"email": "not-an-email", "role": "viewer"}, "email"),
    ("POST", "members/", {"email": "", "role": "viewer"}, "email"),
    ("PATCH", "members/<int:member_id>/", {"role": "emperor"}, "role"),
    ("PATCH", "members/<int:member_id>/", {}, "role"),
    ("POST", "tokens/", {"name": "old", "expires_at": PAST}, "expires_at"),
    ("POST", "tokens/", {"name": "bad", "expires_at": "tomorrow-ish"}, "expires_at"),
    ("POST", "tokens/", {}, "name"),
    ("POST", "tokens/", {"name": "x" * 101}, "name"),
    ("POST", "tokens/", {"name": "ro", "read_only": "perhaps"}, "read_only"),
]


@pytest.mark.parametrize(("method", "route", "body", "field"), BAD_INPUT)
def test_bad_input_gets_400_naming_the_field_and_writes_nothing(personas, api, method, route, body,
                                                                field):
    before = row_counts()
    response = call(api(personas.alice), method, url(route, personas.bob.membership.id), body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert field in response.json()["fields"]
    assert row_counts() == before
    personas.bob.membership.refresh_from_db()
    assert personas.bob.membership.role == "viewer"
