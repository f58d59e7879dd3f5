from datetime import timedelta

from django.core.management.base import CommandError
from django.utils import timezone

from tenancy.management.commands._base import ServiceCommand
from tenancy.models import User
from tenancy.services import token_create


class Command(ServiceCommand):
    help = "Create an API token for a member; the raw token is the last line of stdout."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--name", default="cli")
        parser.add_argument("--expires-days", type=int, default=None)
        parser.add_argument("--read-only", action="store_true")

    def handle(self, *args, slug, email, name, expires_days, read_only, **options):
        user = User.objects.filter(email=email.lower()).first()
        if user is None:
            raise CommandError(f"User '{email}' does not exist.")
        expires_at = None
        if expires_days is not None:
            expires_at = timezone.now() + timedelta(days=expires_days)
        token, raw = token_create(org=self.org(slug), user=user, name=name, read_only=read_only,
                                  expires_at=expires_at, actor=self.actor())
        self.stdout.write(f"Token {token.prefix} ({'read-only' if read_only else 'read-write'})"
                          " created. It is shown once:")
        self.stdout.write(raw)
