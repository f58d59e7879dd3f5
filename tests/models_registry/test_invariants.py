"""Invariants the database itself keeps for the registry."""

import pytest
from django.db import DatabaseError, transaction

from models_registry.models import ModelVersion

pytestmark = pytest.mark.django_db

CHANGES = [{"package_digest": "sha256:" + "0" * 64}, {"package_path": "1/elsewhere"},
           {"manifest": {"files": []}}, {"status": "PENDING_REGISTRATION"},
           {"source_path": "0/elsewhere"}]


def test_a_ready_package_never_changes_even_behind_the_services_back(personas, make_version):
    version = make_version(personas.org_a, "credit-risk")
    for change in CHANGES:
        with pytest.raises(DatabaseError, match="never changes"), transaction.atomic():
            ModelVersion.objects.filter(pk=version.pk).update(**change)
    stored = ModelVersion.objects.get(pk=version.pk)
    assert (stored.status, stored.package_digest, stored.manifest) == \
        ("READY", version.package_digest, version.manifest)
    # what may change on a READY version still does
    ModelVersion.objects.filter(pk=version.pk).update(description="reviewed")
