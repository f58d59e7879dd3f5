"""Row-level security (tenancy/rls.py): PostgreSQL shows a request its organization's rows only,
whatever a query forgets. Each attack first runs with the table's policy off (switched off by
the tables' owner), then on."""

import pytest
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.test import override_settings
from django.urls import path

from config.scope import scope_to, unscope
from tenancy.authentication import authenticate_token_header
from tenancy.rls import POLICY, check_role_obeys_row_security, scoped_models
from tests.conftest import SETUP, as_table_owner
from tracking.models import Experiment
from tracking.services.experiments import experiment_create

pytestmark = pytest.mark.postgres_only


def forgetful_view(request):
    """A view with the bug the policy is for: it lists experiments without the caller's
    organization."""
    authenticate_token_header(request.META["HTTP_AUTHORIZATION"], request=request)
    return JsonResponse({"names": sorted(Experiment.objects.values_list("name", flat=True))})


urlpatterns = [path("forgetful/", forgetful_view)]


def set_row_security(table: str, on: bool) -> None:
    """The tables' owner switches the table's policy on or off (the service's role cannot)."""
    with as_table_owner(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the audit guards' checks, run now
        cursor.execute(f"ALTER TABLE {table} {'ENABLE' if on else 'DISABLE'} ROW LEVEL SECURITY")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def experiments(personas):
    experiment_create(org=personas.org_a, name="a-credit", actor=SETUP)
    experiment_create(org=personas.org_b, name="b-secret", actor=SETUP)


def test_every_organizations_table_has_a_forced_policy_and_the_role_obeys_it(db):
    tables = {m._meta.db_table for m in scoped_models()}
    assert {"tracking_experiment", "tracking_run", "audit_auditevent",
            "models_registry_decision"} <= tables
    assert not tables & {"tenancy_membership", "tenancy_apitoken", "tenancy_organization"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relrowsecurity AND "
                       "relforcerowsecurity AND relname = ANY(%s)", [list(tables)])
        forced = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT tablename FROM pg_policies WHERE policyname = %s", [POLICY])
        policed = {row[0] for row in cursor.fetchall()}
    assert forced == tables and policed == tables
    assert check_role_obeys_row_security(databases=["default"]) == []


@override_settings(ROOT_URLCONF=__name__)
def test_a_query_that_forgets_its_organization_sees_only_the_callers_rows(client, personas,
                                                                          experiments):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {personas.alice.raw_token}"}
    set_row_security("tracking_experiment", on=False)  # the defence off: the bug leaks
    assert "b-secret" in client.get("/forgetful/", **auth).json()["names"]
    set_row_security("tracking_experiment", on=True)
    names = client.get("/forgetful/", **auth).json()["names"]
    assert "a-credit" in names and "b-secret" not in names
    # The scope ended with the request: this test's own connection sees both again.
    assert set(Experiment.objects.values_list("name", flat=True)) >= {"a-credit", "b-secret"}


def test_a_write_into_another_organization_is_refused_while_scoped(personas):
    experiment_create(org=personas.org_b, name="planted-off", actor=SETUP)  # unscoped: it goes
    scope_to(personas.org_a.pk)  # a request of org A's
    try:
        with pytest.raises(DatabaseError, match="row-level security"):
            experiment_create(org=personas.org_b, name="planted", actor=SETUP)
        experiment_create(org=personas.org_a, name="own", actor=SETUP)  # its own: fine
    finally:
        unscope()
    assert set(Experiment.objects.filter(name__startswith="plant").values_list(
        "name", flat=True)) == {"planted-off"}
