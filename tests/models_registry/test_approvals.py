"""Protected aliases through the real mlflow client: a request instead of a move, approval by
another member with an approving role, never by the requester."""

import mlflow
import mlflow.pyfunc
import pytest
from mlflow.exceptions import MlflowException

from audit.models import AuditEvent
from models_registry.models import AliasApproval, ModelAlias
from tenancy.roles import Role
from tests.conftest import make_persona
from tests.models_registry.conftest import training_data

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def protected(api, personas, make_version):
    first = make_version(personas.org_a, "credit-risk")
    second = make_version(personas.org_a, "credit-risk")
    response = api(personas.alice).post("/api/v1/protected-aliases/", {"alias": "production"},
                                        format="json")
    assert response.status_code == 201, response.content
    return first, second


def test_a_protected_alias_moves_only_after_another_member_approves(api, personas, protected,
                                                                    mlflow_as):

    officer = make_persona(personas.org_a, "olga@a.example", Role.COMPLIANCE_OFFICER)
    client = mlflow_as(personas.alice)
    client.set_registered_model_alias("credit-risk", "staging", "1")  # unprotected: at once

    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias("credit-risk", "production", "2")
    approval = AliasApproval.objects.get()
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert f"approval request #{approval.pk}" in refused.value.message
    assert "protected" in refused.value.message
    assert not ModelAlias.objects.filter(alias="production").exists()
    with pytest.raises(MlflowException, match="not found"):
        client.get_model_version_by_alias("credit-risk", "production")

    # the requester cannot approve, even as owner
    own = api(personas.alice).post(f"/api/v1/approvals/{approval.pk}/approve", {}, format="json")
    assert own.status_code == 403 and "made by you" in own.json()["detail"]
    # a viewer has no approving role
    assert api(personas.bob).post(f"/api/v1/approvals/{approval.pk}/approve", {},
                                  format="json").status_code == 403
    # another organization does not see it
    assert api(personas.charlie).post(f"/api/v1/approvals/{approval.pk}/approve", {},
                                      format="json").status_code == 404

    events = AuditEvent.objects.filter(org=personas.org_a).count()
    response = api(officer).post(f"/api/v1/approvals/{approval.pk}/approve",
                                 {"comment": "validation report checked"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"
    assert response.json()["decided_by"] == "olga@a.example"
    approved = AuditEvent.objects.filter(org=personas.org_a).order_by("seq").last()
    assert AuditEvent.objects.filter(org=personas.org_a).count() == events + 1
    assert approved.action == "approval.approved"
    assert approved.after["version"] == 2 and approved.actor_label.startswith("olga@a.example")

    assert client.get_model_version_by_alias("credit-risk", "production").version == "2"
    x, _ = training_data(3)
    assert len(mlflow.pyfunc.load_model("models:/credit-risk@production").predict(x)) == 3
    # a decided request is final
    again = api(officer).post(f"/api/v1/approvals/{approval.pk}/reject", {}, format="json")
    assert again.status_code == 409


def test_a_rejected_request_leaves_the_alias_and_a_new_request_supersedes(api, personas,
                                                                          protected, mlflow_as):
    admin = make_persona(personas.org_a, "adam@a.example", Role.ADMIN)
    client = mlflow_as(personas.alice)
    for version in ("1", "2"):
        with pytest.raises(MlflowException):
            client.set_registered_model_alias("credit-risk", "production", version)
    older, newer = AliasApproval.objects.order_by("pk")
    assert (older.status, newer.status) == ("cancelled", "pending")
    response = api(admin).post(f"/api/v1/approvals/{newer.pk}/reject", {"comment": "no"},
                               format="json")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert not ModelAlias.objects.filter(alias="production").exists()


def test_removing_a_protected_alias_or_its_version_needs_approval_too(api, personas, protected,
                                                                      mlflow_as):

    officer = make_persona(personas.org_a, "olga@a.example", Role.COMPLIANCE_OFFICER)
    client = mlflow_as(personas.alice)
    with pytest.raises(MlflowException):
        client.set_registered_model_alias("credit-risk", "production", "1")
    api(officer).post(f"/api/v1/approvals/{AliasApproval.objects.get().pk}/approve", {},
                      format="json")
    for attempt in (lambda: client.delete_model_version("credit-risk", "1"),
                    lambda: client.delete_registered_model("credit-risk")):
        with pytest.raises(MlflowException, match="protected"):
            attempt()
    with pytest.raises(MlflowException, match="approval request") as refused:
        client.delete_registered_model_alias("credit-risk", "production")
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert ModelAlias.objects.filter(alias="production").exists()
    removal = AliasApproval.objects.get(status="pending")
    assert removal.model_version is None
    api(officer).post(f"/api/v1/approvals/{removal.pk}/approve", {}, format="json")
    assert not ModelAlias.objects.filter(alias="production").exists()
    client.delete_model_version("credit-risk", "1")


def test_only_ready_versions_can_be_proposed_for_a_protected_alias(api, personas, make_version,
                                                                   mlflow_as):
    make_version(personas.org_a, "credit-risk", ready=False)
    api(personas.alice).post("/api/v1/protected-aliases/", {"alias": "champion"}, format="json")
    client = mlflow_as(personas.alice)
    with pytest.raises(MlflowException, match="PENDING_REGISTRATION") as refused:
        client.set_registered_model_alias("credit-risk", "champion", "1")
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert not AliasApproval.objects.exists()
