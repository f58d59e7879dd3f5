"""Fixtures for disclosures: personas with compliance roles, a compliance profile, decisions
recorded by the real scoring endpoint, and a real worker on the `reports` queue."""

import datetime
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from audit.actors import Actor
from tenancy.roles import Role
from tests.conftest import make_persona
from tests.models_registry.conftest import make_version, saved_models, training_data  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
SETUP = Actor.command("test-setup")


@pytest.fixture
def roles(personas):
    """Org A's compliance officer, data scientist and auditor."""
    return {role: make_persona(personas.org_a, f"{role}@a.example", role)
            for role in (Role.COMPLIANCE_OFFICER, Role.DATA_SCIENTIST, Role.AUDITOR)}


def profile_data(name: str) -> dict:
    data = {"controller_name": name, "controller_address": f"{name}, Hauptstraße 1, Berlin",
            "dpo_contact": f"dpo@{name.lower().replace(' ', '-')}.example",
            "authority_name": "Berliner Beauftragte für Datenschutz",
            "authority_address": "Alt-Moabit 59-61, 10555 Berlin"}
    for text in ("purposes", "legal_basis", "art22_ground", "recipients", "transfers",
                 "retention", "sources", "human_review", "consequences"):
        data[f"{text}_en"] = f"{text} of {name} (en)"
        data[f"{text}_de"] = f"{text} von {name} (de)"
    return data


def catalogue_set(model, *, skip=(), blank=()) -> None:
    """Describe `model`'s features as the demo does (examples/features.json: income, debt, age,
    late_payments, every text in German and English), through the service; `skip` leaves
    features out, `blank` empties texts ("income.meaning_de")."""
    from reports.services import feature_description_set

    catalogue = json.loads((ROOT / "examples" / "features.json").read_text())
    for feature, data in catalogue.items():
        if feature in skip:
            continue
        data = {k: "" if f"{feature}.{k}" in blank else v for k, v in data.items()}
        feature_description_set(registered_model=model, feature=feature, actor=SETUP, data=data)


@pytest.fixture
def profiles(personas):
    from reports.services import compliance_profile_set

    return {org.slug: compliance_profile_set(org=org, actor=SETUP, data=profile_data(name))
            for org, name in ((personas.org_a, "Bank Alpha"), (personas.org_b, "Bank Beta"))}


@pytest.fixture
def reports_worker(worker_env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING",
         "--concurrency", "1", "--queues", "reports", "--hostname", "reports@%h"],
        cwd=ROOT, env=worker_env, start_new_session=True)
    yield proc
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def score(client, model: str, version: int, subject: str, row: dict, **extra):
    """One decision about `subject`, recorded by the scoring endpoint (a field given as None
    is left out of the body)."""
    body = {"dataframe_split": {"columns": list(row), "data": [list(row.values())]},
            "subject": subject, "purpose": "credit decision", "threshold": 0.5,
            "outcome_labels": ["approved", "declined"],
            "legal_basis": "Art. 6(1)(b) GDPR", "art22_ground": "Art. 22(2)(a) GDPR",
            "provenance": {"income": {"source": "payslip", "collected_at": "2026-10-01"}},
            **extra}
    body = {key: value for key, value in body.items() if value is not None}
    response = client.post(f"/api/v1/models/{model}/versions/{version}/predict", body,
                           format="json")
    assert response.status_code == 200, response.content
    return response.json()["decisions"][0]


def today() -> datetime.date:
    from django.utils import timezone

    return timezone.localdate()
