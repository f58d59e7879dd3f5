"""The security headers every page carries, and what the production settings insist on
(docs/security.md, V9 and V14)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pages_forbid_framing_sniffing_and_cross_site_referrers(client, db):
    for path in ("/login/", "/experiments/", "/api/v1/me/"):  # a page, a redirect, a 401
        response = client.get(path)
        assert response["X-Frame-Options"] == "DENY", path
        assert response["X-Content-Type-Options"] == "nosniff", path
        assert response["Referrer-Policy"] == "same-origin", path


def _production(env: dict, code: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("SECRET_KEY", "SECRET_KEY_FILE", "DJANGO_SETTINGS_MODULE")}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); "
                               "from django.conf import settings; " + code],
        cwd=ROOT, env={**clean, **env, "DJANGO_SETTINGS_MODULE": "config.settings.production"},
        capture_output=True, text=True, timeout=120)


def test_production_refuses_to_start_without_a_secret_key_and_forces_https():
    refused = _production({}, "print('started')")
    assert refused.returncode != 0 and "started" not in refused.stdout
    assert "SECRET_KEY" in refused.stderr
    shown = _production({"SECRET_KEY": "x" * 50},
                        "print(settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, "
                        "settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE)")
    assert shown.returncode == 0, shown.stderr[-2000:]
    redirect, hsts, session_secure, csrf_secure = shown.stdout.split()
    assert (redirect, session_secure, csrf_secure) == ("True", "True", "True")
    assert int(hsts) >= 31536000
