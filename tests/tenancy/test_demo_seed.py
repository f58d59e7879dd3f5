"""`manage.py demo_seed`: a member per persona with a random password and a token of their own,
kept in a 0600 file; the compliance profile, feature catalogue, runs and the registered model
the README's tour uses; all of it audited, and nothing seeded twice."""

import io
import re
import stat

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from reports.models import PROFILE_TEXTS, ComplianceProfile, FeatureDescription
from tenancy.authentication import AuthenticationError, authenticate_token_header
from tenancy.models import Membership, User

ROLES = {"OWNER": "owner", "DS": "data_scientist", "CO": "compliance_officer",
         "AUDITOR": "auditor"}


@pytest.fixture
def seed(transactional_db, settings, tmp_path):
    """`seed()` runs the command (its services commit, as in `make run`) and returns what the
    credentials file exports."""
    settings.DATA_DIR = tmp_path
    settings.LEDGERFLOW_PUBLIC_URL = "http://127.0.0.1:8123"

    def run() -> dict:
        out = io.StringIO()
        call_command("demo_seed", stdout=out)
        (tmp_path / "stdout.txt").write_text(out.getvalue())
        text = (tmp_path / "demo-credentials.txt").read_text()
        return dict(re.findall(r"^export (\w+)=(\S+)", text, re.M))

    return run


def test_it_gives_every_persona_a_random_password_and_a_token_of_their_own(seed, tmp_path):
    found = seed()
    assert found["LEDGERFLOW_URL"] == "http://127.0.0.1:8123"
    assert stat.S_IMODE((tmp_path / "demo-credentials.txt").stat().st_mode) == 0o600
    passwords = [found[f"PASSWORD_{key}"] for key in ROLES]
    assert len(set(passwords)) == len(ROLES) and all(len(p) >= 16 for p in passwords)
    for key, role in ROLES.items():
        user, access = authenticate_token_header(f"Bearer {found[f'TOKEN_{key}']}")
        assert (access.org.slug, access.membership.role) == ("demo", role)
        assert user.check_password(found[f"PASSWORD_{key}"])
    printed = (tmp_path / "stdout.txt").read_text().splitlines()
    assert printed[0] == "Organization: demo (Demo Bank)"
    assert printed[-1] == str(tmp_path / "demo-credentials.txt")
    assert any(re.match(r"\s+compliance officer\s+co@demo.example\s+TOKEN_CO\s", line)
               for line in printed)


def test_a_second_seed_changes_nothing_and_prints_the_same_credentials(seed, tmp_path):
    first = seed()
    events = AuditEvent.objects.count()
    assert seed() == first
    assert AuditEvent.objects.count() == events
    shown = io.StringIO()
    call_command("demo_credentials", stdout=shown)
    assert shown.getvalue() == (tmp_path / "demo-credentials.txt").read_text()


def test_a_member_without_a_password_on_file_gets_a_new_random_one(seed, tmp_path):
    first = seed()
    (tmp_path / "demo-credentials.txt").unlink()  # as after an older seed, which kept none
    second = seed()
    assert second["PASSWORD_OWNER"] != first["PASSWORD_OWNER"]
    owner = User.objects.get(email="owner@demo.example")
    assert owner.check_password(second["PASSWORD_OWNER"]) and owner.is_staff
    assert AuditEvent.objects.filter(action="user.password_set").count() == len(ROLES)
    # The raw tokens went with the file: new ones, and the old ones revoked.
    assert second["TOKEN_OWNER"] != first["TOKEN_OWNER"]
    with pytest.raises(AuthenticationError, match="revoked"):
        authenticate_token_header(f"Bearer {first['TOKEN_OWNER']}")


def test_a_password_its_user_changed_is_left_alone(seed, tmp_path):
    seed()
    user = User.objects.get(email="co@demo.example")
    user.set_password("chosen by colin")
    user.save()
    found = seed()
    assert "PASSWORD_CO" not in found
    assert User.objects.get(email="co@demo.example").check_password("chosen by colin")
    assert "PASSWORD_CO" not in seed()  # and stays so


def test_it_seeds_what_the_tour_uses_through_the_audited_services(seed):
    seed()
    profile = ComplianceProfile.objects.get(org__slug="demo")
    texts = [f"{name}_{lang}" for name in PROFILE_TEXTS for lang in ("de", "en")]
    assert all(getattr(profile, field) for field in ["controller_name", "dpo_contact",
                                                     "authority_name", *texts])
    catalogue = FeatureDescription.objects.filter(registered_model__name="credit-risk")
    assert sorted(catalogue.values_list("feature", flat=True)) == \
        ["age", "debt", "income", "late_payments"]
    assert all(d.label_de and d.label_en and d.meaning_de and d.meaning_en for d in catalogue)

    from models_registry.models import ModelAlias, ProtectedAlias
    from tracking.models import Run

    runs = Run.objects.filter(org__slug="demo", experiment__name="credit-scoring")
    assert runs.count() == 4 and set(runs.values_list("status", flat=True)) == {"FINISHED"}
    alias = ModelAlias.objects.get(registered_model__name="credit-risk", alias="production")
    assert alias.model_version.version == 1 and alias.model_version.run in runs
    assert ProtectedAlias.objects.filter(org__slug="demo", alias="production").exists()
    from models_registry.inventory import inventory_current

    [item] = inventory_current(alias.model_version.registered_model.org)
    assert (item.state["owner"], item.state["risk_tier"], item.overdue) == \
        ("ds@demo.example", "high", False)
    assert item.validations == 1 and (item.latest_validation["outcome"],
                                      item.latest_validation["validated_by"]) == \
        ("approved", "co@demo.example")
    assert Membership.objects.filter(org__slug="demo").count() == len(ROLES)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"compliance_profile.created", "feature_description.set", "run.batch_logged",
            "model_version.created", "registered_model.alias_set",
            "protected_alias.added", "inventory.entry_created",
            "inventory.validation_recorded"} <= actions
    call_command("audit_verify", "--org", "demo", stdout=io.StringIO())
