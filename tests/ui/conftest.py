"""Browser tests: Playwright driving Debian's Chromium (headless) against the live server.

Every page a test visits can be saved with `shot(page, name)` into test-artifacts/screenshots/
(kept after the run, for looking at). Personas log in with their passwords ("pw-<email>")."""

import os
import shutil
from pathlib import Path

import pytest

# Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make
# between browser steps are ordinary synchronous calls, not async ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url,
                                  viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    opened = context.new_page()
    errors = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def login(page, persona, org_slug: str | None = None) -> None:
    """Log in through the form; with several organizations, pick `org_slug`."""
    page.goto("/login/")
    page.get_by_label("Email").fill(persona.email)
    page.get_by_label("Password").fill(f"pw-{persona.email}")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    if org_slug or "/org/select/" in page.url:
        page.goto("/org/select/")
        page.locator(f"form:has(input[value='{org_slug or persona.org.slug}']) button").click()
        page.wait_for_load_state()


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
