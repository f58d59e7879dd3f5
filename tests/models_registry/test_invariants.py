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


def _model_dir(root, flavors: dict, files=("model.skops",), nested: dict | None = None):
    import yaml

    (root / "MLmodel").write_text(yaml.safe_dump({"flavors": flavors}))
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    for where, inner in (nested or {}).items():
        (root / where).mkdir(parents=True, exist_ok=True)
        (root / where / "MLmodel").write_text(yaml.safe_dump({"flavors": inner}))
    return root


PYFUNC = {"loader_module": "mlflow.sklearn", "model_path": "model.skops"}


@pytest.mark.parametrize(("flavors", "nested", "refused"), [
    ({"python_function": PYFUNC}, None, None),
    ({"python_function": {**PYFUNC, "model_path": "/srv/other-org/model.pkl"}}, None,
     "'/srv/other-org/model.pkl', outside the model directory"),
    ({"python_function": {**PYFUNC, "model_path": "../../1/registry/model.pkl"}}, None,
     "outside the model directory"),
    ({"python_function": {**PYFUNC, "model_path": "sub/../../x"}}, None, "outside"),
    ({"python_function": {**PYFUNC, "data": "~root/.ssh/id_rsa"}}, None, "outside"),
    ({"python_function": {"loader_module": "mlflow.pyfunc.model",
                          "artifacts": {"inner": {"path": "/etc/passwd", "uri": "/tmp/x"}}}},
     None, "'/etc/passwd'"),
    # a nested MLmodel is checked as strictly as the outer one
    ({"python_function": PYFUNC}, {"artifacts/inner": {"sklearn": {
        "pickled_model": "../../../../other/model.pkl"}}}, "artifacts/inner/MLmodel"),
    ({"python_function": PYFUNC}, {"artifacts/inner": {"sklearn": {
        "pickled_model": "model.pkl", "serialization_format": "cloudpickle"}}}, None),
])
def test_every_path_a_flavor_names_stays_inside_the_model(tmp_path, flavors, nested, refused):
    from models_registry.packaging import PackagingError, check_nested

    directory = _model_dir(tmp_path, flavors, nested=nested)
    if refused is None:
        assert check_nested(directory) == sorted(nested or {})
        return
    with pytest.raises(PackagingError, match=refused.replace("(", r"\(")):
        check_nested(directory)


def test_a_link_in_the_model_is_refused(tmp_path):
    from models_registry.packaging import PackagingError, check_nested

    directory = _model_dir(tmp_path, {"python_function": PYFUNC})
    (directory / "model.skops").unlink()
    (directory / "model.skops").symlink_to("/etc/passwd")
    with pytest.raises(PackagingError, match="symbolic link"):
        check_nested(directory)


def test_skops_types_are_listed_exactly_as_skops_names_them(tmp_path):
    """No prefix rule: a code-running callable under an allowed-looking module is named."""
    import numpy
    import skops.io
    from sklearn.linear_model import LogisticRegression

    from models_registry.packaging import serialization_of

    model = LogisticRegression().fit(numpy.array([[0.0], [1.0]]), [0, 1])
    skops.io.dump(model, tmp_path / "model.skops")
    flavors = {"python_function": {"loader_module": "mlflow.sklearn"},
               "sklearn": {"serialization_format": "skops", "pickled_model": "model.skops"}}
    found = serialization_of(tmp_path, flavors)
    assert found["format"] == "skops" and found["untrusted_types"] == []
    skops.io.dump({"run": numpy.testing._private.utils.runstring}, tmp_path / "model.skops")
    assert "numpy.testing._private.utils.runstring" in \
        serialization_of(tmp_path, flavors)["untrusted_types"]


def test_the_format_recorded_is_what_the_pyfunc_flavor_loads(tmp_path):
    """A clean skops sklearn flavor beside a python_function flavor that unpickles a
    python_model: what is served is the pickle, and the manifest says so; the types the
    MLmodel tells skops to trust are recorded as given."""
    from models_registry.packaging import serialization_of

    flavors = {"python_function": {"loader_module": "mlflow.pyfunc.model",
                                   "python_model": "python_model.pkl"},
               "sklearn": {"serialization_format": "skops", "pickled_model": "model.skops",
                           "skops_trusted_types": ["numpy.testing._private.utils.runstring"]}}
    found = serialization_of(tmp_path, flavors)
    assert found["format"] == "cloudpickle"
    assert found["trusted_types"] == ["numpy.testing._private.utils.runstring"]
    assert serialization_of(tmp_path, {"python_function": {"loader_module": "mlflow.lightgbm"}})[
        "format"] == "mlflow.lightgbm"
