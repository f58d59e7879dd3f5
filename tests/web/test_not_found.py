"""A page that does not exist, or is another organization's, says so in the site's own page."""

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_missing_page_says_so_and_offers_a_way_back(personas):
    browser = Client()
    browser.force_login(personas.alice.user)
    response = browser.get("/experiments/987654/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "There is no such page" in page and "/experiments/987654/" in page
    assert 'href="/"' in page and "Ledgerflow" in page  # the site's header, a way home


def test_another_organizations_page_reads_exactly_like_a_missing_one(personas):
    from tracking.models import Experiment

    theirs = Experiment.objects.filter(org=personas.org_b).first()
    browser = Client()
    browser.force_login(personas.alice.user)

    def page(path: str) -> str:  # the CSRF token of the logout form differs per page
        text = browser.get(path).content.decode().replace(path, "PATH")
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)
    assert page(f"/experiments/{theirs.pk}/") == page("/experiments/987654/")


def test_logged_out_it_offers_the_login(personas):
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert "/login/?next=/no-such-page/" in response.content.decode()
