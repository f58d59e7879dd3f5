"""The browser basics: log in, the navigation a role gets, switching organization."""

import pytest

from tenancy.roles import Role
from tenancy.services import membership_add
from tests.conftest import SETUP
from tests.ui.conftest import login, shot

pytestmark = pytest.mark.postgres_only


def test_logging_in_and_switching_organization(page, personas):
    membership_add(org=personas.org_b, email=personas.alice.email, role=Role.VIEWER,
                   actor=SETUP)
    login(page, personas.alice, "org-a")
    assert "Organization A" in page.locator("header").inner_text()
    shot(page, "home-org-a")
    page.get_by_role("link", name="Switch organization").click()
    page.locator("form:has(input[value='org-b']) button").click()
    page.wait_for_load_state()
    header = page.locator("header").inner_text()
    assert "Organization B" in header and "Viewer" in header
    shot(page, "home-org-b")


def test_a_wrong_password_is_refused(page, personas):
    page.goto("/login/")
    page.get_by_label("Email").fill(personas.alice.email)
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_text("didn't match").is_visible()
