"""Tokens are personal; automation uses service accounts (issue 23, item 1).

The attack: an admin who could make a token for another member could act as them, and so be
both people of a four-eyes approval. It is shown to work with the rule switched off, then to be
refused with it on.
"""

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from models_registry.models import AliasApproval, ModelAlias
from tenancy import services
from tenancy.models import ApiToken, MemberKind, Membership, User
from tenancy.roles import Role
from tests.conftest import make_persona
from tests.models_registry.conftest import make_version, saved_models  # noqa: F401


def counts(org) -> tuple:
    return (ApiToken.objects.count(), Membership.objects.count(), User.objects.count(),
            AuditEvent.objects.filter(org=org).count())


@pytest.fixture
def dave(personas):
    return make_persona(personas.org_a, "dave@a.example", Role.ADMIN)


@pytest.fixture
def olga(personas):
    return make_persona(personas.org_a, "olga@a.example", Role.COMPLIANCE_OFFICER)


@pytest.fixture
def robot(api, personas):
    response = api(personas.alice).post("/api/v1/service-accounts/",
                                        {"name": "nightly", "role": Role.DATA_SCIENTIST},
                                        format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _approve_as_another_member(api, admin, officer, org) -> tuple:
    """The admin asks for the protected alias and, minting the officer's token, approves."""
    requested = api(admin).post("/api/2.0/mlflow/registered-models/alias",
                                {"name": "credit-risk", "alias": "production", "version": "1"},
                                format="json")
    assert requested.status_code == 403, requested.content  # the request, pending
    approval = AliasApproval.objects.get(org=org)
    minted = api(admin).post("/api/v1/tokens/", {"name": "borrowed", "user": officer.user.email},
                             format="json")
    if minted.status_code != 201:
        return minted, approval
    decided = api(minted.json()["token"]).post(f"/api/v1/approvals/{approval.pk}/approve", {},
                                               format="json")
    return decided, approval


@pytest.mark.postgres_only
def test_an_admin_cannot_be_both_people_of_a_four_eyes_approval(api, personas, dave, olga,
                                                                 make_version, monkeypatch):  # noqa: F811
    make_version(personas.org_a, "credit-risk")
    assert api(personas.alice).post("/api/v1/protected-aliases/", {"alias": "production"},
                                    format="json").status_code == 201

    # the defence off: minting for another member works, and one person decides alone
    with monkeypatch.context() as patched:
        patched.setattr(services, "token_mint_check", lambda **kwargs: None)
        decided, approval = _approve_as_another_member(api, dave, olga, personas.org_a)
        assert decided.status_code == 200, decided.content
        assert decided.json()["decided_by"] == "olga@a.example"  # in truth: dave
    assert ModelAlias.objects.filter(alias="production").exists()

    # the defence on: the token is refused, nothing is written, the request stays pending
    ModelAlias.objects.filter(alias="production").delete()
    AliasApproval.objects.all().delete()
    before = ApiToken.objects.count()
    minted = AuditEvent.objects.filter(org=personas.org_a, action="api_token.created")
    minted_before = minted.count()
    refused, approval = _approve_as_another_member(api, dave, olga, personas.org_a)
    assert refused.status_code == 403
    assert "Tokens are personal" in refused.json()["detail"]
    assert ApiToken.objects.count() == before and minted.count() == minted_before
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_no_one_makes_a_token_for_another_person_by_api(api, personas, dave):
    for minter, whose in ((dave, personas.alice), (personas.alice, dave), (personas.bob, dave)):
        before = counts(personas.org_a)
        response = api(minter).post("/api/v1/tokens/", {"name": "x", "user": whose.user.email},
                                    format="json")
        assert response.status_code == 403, (minter.user.email, response.content)
        assert "Tokens are personal" in response.json()["detail"]
        assert counts(personas.org_a) == before
    own = api(personas.bob).post("/api/v1/tokens/", {"name": "mine"}, format="json")
    assert own.status_code == 201 and own.json()["user"] == personas.bob.user.email


def test_an_admin_adds_a_service_account_and_makes_its_token(api, personas, dave, robot):
    assert robot["email"] == "nightly@org-a.service.invalid"
    assert (robot["kind"], robot["role"]) == (MemberKind.SERVICE, Role.DATA_SCIENTIST)
    created = AuditEvent.objects.filter(org=personas.org_a, action="membership.created") \
        .latest("seq")
    assert created.after == {"user": robot["email"], "role": Role.DATA_SCIENTIST,
                             "kind": "service", "user_created": True}
    assert not User.objects.get(email=robot["email"]).has_usable_password()

    minted = api(dave).post("/api/v1/tokens/", {"name": "ci", "user": robot["email"]},
                            format="json")
    assert minted.status_code == 201, minted.content
    me = api(minted.json()["token"]).get("/api/v1/me/").json()
    assert (me["user"]["email"], me["role"]) == (robot["email"], Role.DATA_SCIENTIST)
    listed = api(dave).get("/api/v1/service-accounts/").json()
    assert [m["email"] for m in listed] == [robot["email"]]


def test_a_service_account_is_never_an_owner_nor_an_approver(api, personas, robot, olga):
    before = counts(personas.org_a)
    refused = api(personas.alice).post("/api/v1/service-accounts/",
                                       {"name": "boss", "role": Role.OWNER}, format="json")
    assert refused.status_code == 400 and "never an owner" in str(refused.json())
    promoted = api(personas.alice).patch(f"/api/v1/members/{robot['id']}/",
                                         {"role": Role.OWNER}, format="json")
    assert promoted.status_code == 400 and "never an owner" in str(promoted.json())
    assert counts(personas.org_a) == before
    assert Membership.objects.get(pk=robot["id"]).role == Role.DATA_SCIENTIST

    # an approving role does not make it a party to a four-eyes decision
    api(personas.alice).patch(f"/api/v1/members/{robot['id']}/",
                              {"role": Role.COMPLIANCE_OFFICER}, format="json")
    token = api(personas.alice).post("/api/v1/tokens/", {"name": "ci", "user": robot["email"]},
                                     format="json").json()["token"]
    approval = AliasApproval.objects.create(org=personas.org_a, alias="production",
                                            registered_model=_model(personas),
                                            requested_by=olga.user)
    refused = api(token).post(f"/api/v1/approvals/{approval.pk}/approve", {}, format="json")
    assert refused.status_code == 403 and "four-eyes" in refused.json()["detail"]
    approval.refresh_from_db()
    assert approval.status == "pending"


def _model(personas):
    from audit.actors import Actor
    from models_registry.services import registered_model_create

    return registered_model_create(org=personas.org_a, name="credit-risk",
                                   actor=Actor.command("test"))


def test_only_admins_add_service_accounts_and_make_their_tokens(api, personas, robot):
    before = counts(personas.org_a)
    assert api(personas.bob).post("/api/v1/service-accounts/",
                                  {"name": "mine", "role": Role.VIEWER},
                                  format="json").status_code == 403
    assert api(personas.bob).post("/api/v1/tokens/", {"name": "x", "user": robot["email"]},
                                  format="json").status_code == 403
    # another organization's admin does not find it
    assert api(personas.charlie).post("/api/v1/tokens/", {"name": "x", "user": robot["email"]},
                                      format="json").status_code == 404
    assert api(personas.charlie).get("/api/v1/service-accounts/").json() == []
    for bad in ({"name": "Bad Name", "role": Role.VIEWER}, {"name": "-x", "role": Role.VIEWER},
                {"name": "ok", "role": "boss"}, {"name": "nightly", "role": Role.VIEWER}):
        response = api(personas.alice).post("/api/v1/service-accounts/", bad, format="json")
        assert response.status_code in (400, 409), (bad, response.content)
    assert counts(personas.org_a) == before


def test_the_cli_adds_a_service_account_and_its_token(personas, capsys):
    call_command("service_account_add", "org-a", "batch-scoring", "--role", "viewer")
    call_command("token_create", "org-a", "batch-scoring@org-a.service.invalid")
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    token = ApiToken.objects.get(user__email="batch-scoring@org-a.service.invalid")
    assert raw.startswith(token.prefix)
    assert Membership.objects.get(user=token.user).kind == MemberKind.SERVICE
