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


def test_a_recorded_decision_changes_only_by_its_review(api, personas, make_version):
    from django.utils import timezone

    from models_registry.models import Decision

    make_version(personas.org_a, "credit-risk")
    response = api(personas.alice).post("/api/v1/models/credit-risk/versions/1/predict", {
        "dataframe_records": [{"income": 40.0, "debt": 10.0, "age": 30.0, "late_payments": 0.0}],
        "subject": "customer-1", "purpose": "credit decision"}, format="json")
    decision = Decision.objects.get(decision_id=response.json()["decisions"][0]["decision_id"])
    for change in ({"outcome": "approve"}, {"raw_score": 0.01}, {"inputs": {}},
                   {"subject_ref": "0" * 64}, {"purpose": "marketing"}):
        with pytest.raises(DatabaseError, match="only its review"), transaction.atomic():
            Decision.objects.filter(pk=decision.pk).update(**change)
    Decision.objects.filter(pk=decision.pk).update(reviewer="credit officer",
                                                   review_action="confirmed",
                                                   reviewed_at=timezone.now())
    assert Decision.objects.get(pk=decision.pk).review_action == "confirmed"


SKOPS = {"python_function": {"loader_module": "mlflow.sklearn"},
         "sklearn": {"serialization_format": "skops"}}


@pytest.mark.parametrize(("flavors", "reason"), [
    (SKOPS, None),
    ({**SKOPS, "sklearn": {"serialization_format": "skops",
                           "skops_trusted_types": ["sklearn.tree._tree.Tree"]}}, None),
    ({**SKOPS, "sklearn": {"serialization_format": "skops",
                           "skops_trusted_types": ["subprocess.Popen"]}}, "subprocess.Popen"),
    ({**SKOPS, "sklearn": {"serialization_format": "pickle"}}, "pickle"),
    ({**SKOPS, "python_function": {"loader_module": "mlflow.sklearn", "code": "code"}},
     "bundles code"),
    ({"python_function": {"loader_module": "mlflow.pyfunc.model"}}, "mlflow.pyfunc.model"),
])
def test_only_models_that_run_no_uploaded_code_are_loaded_by_default(flavors, reason):
    from models_registry.packaging import unsafe_to_load

    found = unsafe_to_load(flavors)
    assert found is None if reason is None else reason in found
