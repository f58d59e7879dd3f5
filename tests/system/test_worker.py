import secrets

import pytest

from config.celery import ping

pytestmark = pytest.mark.slow


def test_a_real_worker_process_answers_a_task_through_the_broker(live_worker, settings):
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "make test runs against Redis"
    nonce = secrets.token_hex(8)
    assert ping.delay(nonce).get(timeout=60) == f"pong:{nonce}"
    assert live_worker.poll() is None


def test_worker_ping_command_fails_clearly_without_a_worker(db, settings):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="No worker answered"):
        call_command("worker_ping", "--timeout", "1")
