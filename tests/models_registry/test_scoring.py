"""Scoring READY packages through /api/v1/models/.../predict, with decision records."""

import hashlib
import hmac
import math
import uuid

import pytest
import rfc8785

from audit.models import AuditEvent
from models_registry.models import Decision, SubjectKey
from tests.models_registry.conftest import FEATURES, training_data

pytestmark = pytest.mark.django_db


def rows(n: int = 3, seed: int = 11):
    x, _ = training_data(n, seed=seed)
    return x


def split(x) -> dict:
    return {"dataframe_split": {"columns": list(x.columns), "data": x.values.tolist()}}


FORMATS = {
    "dataframe_split": split,
    "dataframe_records": lambda x: {"dataframe_records": x.to_dict(orient="records")},
    "instances": lambda x: {"instances": x.to_dict(orient="records")},
    "inputs": lambda x: {"inputs": {c: x[c].tolist() for c in x.columns}},
}


def predict_url(name="credit-risk", version=1):
    return f"/api/v1/models/{name}/versions/{version}/predict"


@pytest.fixture
def logistic(personas, make_version):
    return make_version(personas.org_a, "credit-risk", "logistic")


def test_each_mlflow_input_format_scores_the_same(api, personas, logistic, saved_models):
    import mlflow.pyfunc

    x = rows()
    expected = mlflow.pyfunc.load_model(str(saved_models["logistic"])).predict(x).tolist()
    for fmt, build in FORMATS.items():
        response = api(personas.alice).post(predict_url(), build(x), format="json")
        assert response.status_code == 200, (fmt, response.content)
        body = response.json()
        assert body["predictions"] == expected, fmt
        assert body["model"] == {"name": "credit-risk", "version": 1, "alias": "",
                                 "package_digest": logistic.package_digest}
        assert "decisions" not in body


def test_a_decision_is_recorded_with_hmac_subject_and_exact_contributions(api, personas,
                                                                          logistic):
    x = rows(1)
    before = AuditEvent.objects.filter(org=personas.org_a).count()
    response = api(personas.alice).post(predict_url(), {
        **split(x), "subject": "customer-4711", "purpose": "credit decision",
        "legal_basis": "Art. 6(1)(b) GDPR", "art22_ground": "Art. 22(2)(a) contract",
        "feature_pipeline_version": "fp-3", "threshold": 0.5, "policy_version": "policy-7",
        "outcome_labels": ["approve", "refer"], "recipients": ["credit desk"],
        "provenance": {"income": "payslip", "debt": "credit bureau"}}, format="json")
    assert response.status_code == 200, response.content
    summary = response.json()["decisions"][0]
    record = Decision.objects.get(decision_id=summary["decision_id"])

    key = bytes(SubjectKey.objects.get(org=personas.org_a).key)
    assert record.subject_ref == hmac.new(key, b"customer-4711", hashlib.sha256).hexdigest()
    assert "customer-4711" not in str(Decision.objects.filter(pk=record.pk).values().first())
    events = AuditEvent.objects.filter(org=personas.org_a).order_by("seq")
    assert not any("customer-4711" in str(e.after) for e in events)
    assert events.count() == before + 2  # the subject key, once; the decisions
    recorded = events.last()
    assert recorded.action == "decisions.scored"
    assert recorded.after["decision_ids"] == [str(record.decision_id)]
    assert records_digest(recorded.after["decision_ids"]) == recorded.after["records_digest"]

    assert record.model_name == "credit-risk" and record.model_version_number == 1
    assert record.package_digest == logistic.package_digest
    assert record.inputs == pytest.approx(x.iloc[0].to_dict())
    assert record.purpose == "credit decision" and record.policy_version == "policy-7"
    assert record.legal_basis and record.art22_ground and record.recipients == ["credit desk"]
    assert record.feature_pipeline_version == "fp-3" and record.threshold == 0.5
    assert record.provenance["debt"] == "credit bureau"
    assert record.outcome == ("refer" if record.raw_score >= 0.5 else "approve")
    # logistic regression: exact, on the log-odds scale
    assert record.contribution_method == "linear-exact"
    assert record.contribution_scale == "log-odds"
    assert set(record.contributions) == set(FEATURES)
    log_odds = math.log(record.raw_score / (1 - record.raw_score))
    assert record.base_value + sum(record.contributions.values()) == pytest.approx(log_odds)
    assert record.reference == pytest.approx(logistic.manifest["verification"]["reference"])


def test_a_tree_model_gets_model_agnostic_contributions(api, personas, make_version):
    make_version(personas.org_a, "credit-tree", "tree")
    x = rows(4)
    response = api(personas.alice).post(predict_url("credit-tree"), {
        **split(x), "subjects": ["c1", "c2", "c3", "c4"], "purpose": "credit decision"},
        format="json")
    assert response.status_code == 200, response.content
    decisions = response.json()["decisions"]
    assert len(decisions) == 4 and len({d["subject_ref"] for d in decisions}) == 4
    for decision in decisions:
        assert decision["contribution_method"] == "reference-substitution"
        assert set(decision["contributions"]) == set(FEATURES)
        assert 0 <= decision["raw_score"] <= 1


def test_the_same_customer_gets_the_same_reference_only_within_one_org(api, personas,
                                                                       make_version):
    make_version(personas.org_a, "credit-risk")
    make_version(personas.org_b, "credit-risk")
    refs = []
    for who in (personas.alice, personas.alice, personas.charlie):
        body = {**split(rows(1)), "subject": "customer-1", "purpose": "p"}
        refs.append(api(who).post(predict_url(), body, format="json")
                    .json()["decisions"][0]["subject_ref"])
    assert refs[0] == refs[1] != refs[2]


def test_an_alias_scores_with_the_version_it_names(api, personas, make_version):
    from audit.actors import Actor
    from models_registry.services import alias_set

    make_version(personas.org_a, "credit-risk")
    second = make_version(personas.org_a, "credit-risk")
    alias_set(version=second, alias="live", actor=Actor.command("test"))
    response = api(personas.alice).post("/api/v1/models/credit-risk/aliases/live/predict",
                                        {**split(rows(1)), "subject": "c", "purpose": "p"},
                                        format="json")
    assert response.status_code == 200, response.content
    assert response.json()["model"]["version"] == 2
    assert response.json()["model"]["alias"] == "live"
    assert Decision.objects.get().alias == "live"


def bad(x):
    wrong_columns = x.rename(columns={"income": "salary"})
    return [
        ({**split(wrong_columns)}, "income"),
        ({"dataframe_split": {"columns": FEATURES, "data": [["a", "b", "c", "d"]]}}, ""),
        ({"dataframe_split": {"columns": FEATURES}}, ""),
        ({}, "dataframe_split"),
        ({**split(x), **FORMATS["dataframe_records"](x)}, "exactly one"),
        ({**split(x), "subject": "c1"}, "purpose"),
        ({**split(x), "subjects": ["c1"], "purpose": "p"}, "one per row"),
        ({**split(x), "subject": "a", "subjects": ["b"], "purpose": "p"}, ""),
        ({**split(x), "threshold": "high", "subject": "a", "purpose": "p"}, ""),
    ]


def test_bad_input_is_400_and_records_nothing(api, personas, logistic):
    events = AuditEvent.objects.count()
    for body, phrase in bad(rows(2)):
        response = api(personas.alice).post(predict_url(), body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert phrase in str(response.json()), (body, response.json())
        assert Decision.objects.count() == 0 and AuditEvent.objects.count() == events


def test_unknown_versions_and_aliases_are_404(api, personas, logistic):
    for url in ["/api/v1/models/credit-risk/versions/9/predict",
                "/api/v1/models/credit-risk/versions/x/predict",
                "/api/v1/models/nope/versions/1/predict",
                "/api/v1/models/credit-risk/aliases/nope/predict"]:
        response = api(personas.alice).post(url, split(rows(1)), format="json")
        assert response.status_code == 404, (url, response.content)


def test_another_org_gets_404_and_records_nothing(api, personas, logistic):
    body = {**split(rows(1)), "subject": "c", "purpose": "p"}
    response = api(personas.charlie).post(predict_url(), body, format="json")
    assert response.status_code == 404
    assert Decision.objects.count() == 0


def test_a_viewer_may_score_but_not_record_decisions(api, personas, logistic):
    assert api(personas.bob).post(predict_url(), split(rows(1)), format="json").status_code == 200
    response = api(personas.bob).post(predict_url(), {**split(rows(1)), "subject": "c",
                                                      "purpose": "p"}, format="json")
    assert response.status_code == 403
    assert Decision.objects.count() == 0


def test_a_version_that_is_not_ready_is_409(api, personas, make_version):
    make_version(personas.org_a, "credit-risk", ready=False)
    response = api(personas.alice).post(predict_url(), split(rows(1)), format="json")
    assert response.status_code == 409
    assert "PENDING_REGISTRATION" in response.json()["detail"]


def test_a_thousand_rows_are_a_thousand_decisions_under_one_audit_event(api, personas,
                                                                        logistic):
    x = rows(1000, seed=5)
    subjects = [f"customer-{i}" for i in range(1000)]
    events = AuditEvent.objects.filter(org=personas.org_a).count()
    response = api(personas.alice).post(predict_url(), {
        **split(x), "subjects": subjects, "purpose": "portfolio review",
        "provenance": {"income": "core banking\tsystem"}}, format="json")
    assert response.status_code == 200, response.content
    returned = response.json()["decisions"]
    stored = {str(d.decision_id): d for d in Decision.objects.filter(org=personas.org_a)}
    assert len(stored) == 1000 and set(stored) == {d["decision_id"] for d in returned}
    for i in (0, 499, 999):
        record = stored[returned[i]["decision_id"]]
        assert record.inputs == pytest.approx(x.iloc[i].to_dict())
        assert record.raw_score == pytest.approx(returned[i]["raw_score"])
        assert record.contributions == pytest.approx(returned[i]["contributions"])
        assert record.provenance == {"income": "core banking\tsystem"}
        assert record.created_at is not None and record.package_digest == logistic.package_digest
    assert AuditEvent.objects.filter(org=personas.org_a).count() == events + 2  # key, decisions
    event = AuditEvent.objects.filter(org=personas.org_a).order_by("seq").last()
    assert len(event.after["decision_ids"]) == 1000
    # An auditor recomputes the batch's digest from the stored rows (the database refuses to
    # change them: a trigger); a row changed all the same would no longer match.
    assert records_digest(event.after["decision_ids"]) == event.after["records_digest"]

    def tamper(record):
        if str(record.decision_id) == returned[499]["decision_id"]:
            record.inputs["income"] += 1
    assert records_digest(event.after["decision_ids"], tamper) != event.after["records_digest"]


def records_digest(decision_ids: list[str], change=None) -> str:
    """RFC 8785 JSON of every stored field but the key and the review, one object per record
    in the event's order, hashed: what the audit event of a batch of decisions holds."""
    review = {"reviewer", "review_action", "reviewed_at"}
    fields = [f for f in Decision._meta.concrete_fields
              if not f.primary_key and f.name not in review]
    stored = {str(d.decision_id): d for d in Decision.objects.filter(decision_id__in=decision_ids)}
    for record in stored.values():
        (change or (lambda record: None))(record)

    def plain(value):
        return str(value) if isinstance(value, uuid.UUID) else \
            value.isoformat() if hasattr(value, "isoformat") else value
    body = [{f.attname: plain(f.value_from_object(stored[i])) for f in fields}
            for i in decision_ids]
    return "sha256:" + hashlib.sha256(rfc8785.dumps(body)).hexdigest()


def test_a_pickled_model_is_packaged_and_scored_in_the_sandbox(api, personas, make_version):
    """cloudpickle runs whatever its uploader wrote when loaded: accepted, because it is
    loaded only by a sandboxed scorer, never by the service."""
    version = make_version(personas.org_a, "credit-risk", "pickled")
    assert version.status == "READY"
    assert version.manifest["mlmodel"]["serialization"]["format"] == "cloudpickle"
    assert version.manifest["verification"]["scored_example"]
    response = api(personas.alice).post(predict_url(version=version.version), split(rows(2)),
                                        format="json")
    assert response.status_code == 200 and len(response.json()["predictions"]) == 2
