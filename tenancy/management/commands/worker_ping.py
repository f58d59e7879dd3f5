import secrets

from celery.exceptions import TimeoutError as CeleryTimeout
from django.core.management.base import BaseCommand, CommandError

from config.celery import ping


class Command(BaseCommand):
    help = "Send a task through the broker and wait for a worker's answer; prints it."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args, timeout, **options):
        nonce = secrets.token_hex(8)
        result = ping.delay(nonce)
        try:
            answer = result.get(timeout=timeout)
        except CeleryTimeout:
            raise CommandError(f"No worker answered within {timeout:g}s.") from None
        if answer != f"pong:{nonce}":
            raise CommandError(f"Unexpected answer {answer!r}.")
        self.stdout.write(answer)
