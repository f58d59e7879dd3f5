"""Browser sessions: log in, choose an organization explicitly, act in it."""

import pytest
from rest_framework.test import APIClient

from tenancy.authentication import SESSION_ORG_KEY
from tenancy.roles import Role
from tenancy.services import membership_add
from tests.conftest import SETUP


def _login(client, persona):
    response = client.post("/login/", {"username": persona.email, "password": "pw-" + persona.email})
    assert response.status_code == 302, response.content[:500]
    return response


def test_login_page_renders(client, db):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Log in to Ledgerflow" in response.content


def test_home_requires_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_wrong_password_is_refused(client, personas):
    response = client.post("/login/", {"username": personas.alice.email, "password": "nope"})
    assert response.status_code == 200
    assert b"didn&#x27;t match" in response.content or b"didn't match" in response.content


def test_a_member_of_one_organization_lands_in_it(client, personas):
    _login(client, personas.alice)
    response = client.get("/")
    assert response.status_code == 200
    assert b"Organization A" in response.content


def test_a_member_of_several_organizations_must_choose(client, personas):
    membership_add(org=personas.org_b, email=personas.alice.email, role=Role.VIEWER, actor=SETUP)
    _login(client, personas.alice)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/org/select/"
    page = client.get("/org/select/")
    assert b"Organization A" in page.content and b"Organization B" in page.content
    chosen = client.post("/org/select/", {"org": "org-b"})
    assert chosen.status_code == 302
    assert client.session[SESSION_ORG_KEY] == personas.org_b.pk
    me = client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["organization"]["slug"] == "org-b"
    assert me.json()["role"] == "viewer"


def test_choosing_an_organization_one_does_not_belong_to_is_404(client, personas):
    _login(client, personas.alice)
    response = client.post("/org/select/", {"org": "org-b"})
    assert response.status_code == 404
    assert SESSION_ORG_KEY not in client.session


def test_session_api_without_a_chosen_organization_is_refused(client, personas):
    membership_add(org=personas.org_b, email=personas.alice.email, role=Role.VIEWER, actor=SETUP)
    _login(client, personas.alice)
    response = client.get("/api/v1/me/")
    assert response.status_code in (401, 403)
    assert "Choose an organization" in response.json()["detail"]


@pytest.mark.parametrize("with_token", [False, True])
def test_session_writes_need_csrf_but_tokens_do_not(personas, with_token):
    client = APIClient(enforce_csrf_checks=True)
    if with_token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {personas.alice.raw_token}")
    else:
        client.login(username=personas.alice.email, password="pw-" + personas.alice.email)
    response = client.post("/api/v1/tokens/", {"name": "csrf?"}, format="json")
    assert response.status_code == (201 if with_token else 403)
