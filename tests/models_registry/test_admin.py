"""Django admin for the registry: protected aliases through the services; the rest read-only."""

import pytest

from audit.models import AuditEvent
from models_registry.models import ProtectedAlias
from tenancy.models import User


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("root@example.com", "pw"))
    return client


def test_protecting_and_releasing_an_alias_in_the_admin_is_audited(admin_client, personas):
    response = admin_client.post("/admin/models_registry/protectedalias/add/",
                                 {"org": personas.org_a.pk, "alias": "production"})
    assert response.status_code == 302, response.content
    protected = ProtectedAlias.objects.get(org=personas.org_a, alias="production")
    added = AuditEvent.objects.filter(org=personas.org_a).order_by("seq").last()
    assert added.action == "protected_alias.added"
    assert added.actor_label == "root@example.com (admin)"

    again = admin_client.post("/admin/models_registry/protectedalias/add/",
                              {"org": personas.org_a.pk, "alias": "production"})
    assert again.status_code == 200 and b"already" in again.content
    bad = admin_client.post("/admin/models_registry/protectedalias/add/",
                            {"org": personas.org_a.pk, "alias": "latest"})
    assert bad.status_code == 200 and b"latest" in bad.content
    assert ProtectedAlias.objects.count() == 1

    response = admin_client.post(
        f"/admin/models_registry/protectedalias/{protected.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not ProtectedAlias.objects.exists()
    removed = AuditEvent.objects.filter(org=personas.org_a).order_by("seq").last()
    assert removed.action == "protected_alias.removed"


@pytest.mark.parametrize("model", ["registeredmodel", "modelversion", "aliasapproval",
                                   "decision"])
def test_registry_content_is_read_only_in_the_admin(admin_client, model):
    assert admin_client.get(f"/admin/models_registry/{model}/").status_code == 200
    assert admin_client.get(f"/admin/models_registry/{model}/add/").status_code == 403
