import os

from django.conf import settings

from tenancy.authentication import AuthenticationError, authenticate_token_header
from tenancy.management.commands._base import ServiceCommand
from tenancy.models import Membership, Organization, User
from tenancy.roles import Role
from tenancy.services import membership_add, organization_create, token_create

DEMO_ORG = "demo"
DEMO_PASSWORD = "ledgerflow-demo"
DEMO_USERS = (("owner@demo.example", Role.OWNER, "Olivia Owner"),
              ("ds@demo.example", Role.DATA_SCIENTIST, "Dana Scientist"))


class Command(ServiceCommand):
    help = ("Seed the demo organization, its owner and data scientist (idempotent). The last "
            "line is a token for the data scientist, kept in the data dir for the next run.")

    def handle(self, *args, **options):
        org = Organization.objects.filter(slug=DEMO_ORG).first() or organization_create(
            slug=DEMO_ORG, name="Demo Bank", actor=self.actor())
        for email, role, name in DEMO_USERS:
            if not Membership.objects.filter(org=org, user__email=email).exists():
                membership_add(org=org, email=email, role=role, password=DEMO_PASSWORD,
                               name=name, actor=self.actor())
        # The demo owner may use Django admin; staff flags are global, not tenant data.
        User.objects.filter(email=DEMO_USERS[0][0]).update(is_staff=True, is_superuser=True)
        self.stdout.write(f"Organization: {org.slug} ({org.name})")
        self.stdout.write(f"Log in: {DEMO_USERS[0][0]} / {DEMO_PASSWORD}  (also "
                          f"{DEMO_USERS[1][0]})")
        self.stdout.write(self._demo_token(org))

    def _demo_token(self, org) -> str:
        # A laptop convenience: the demo token's raw value lives in a 0600 file in the data
        # dir (never in the database), so every `make run` can print the same working token.
        path = settings.DATA_DIR / "demo-token"
        if path.exists():
            raw = path.read_text().strip()
            try:
                authenticate_token_header(f"Bearer {raw}")
                return raw
            except AuthenticationError:
                pass
        user = User.objects.get(email=DEMO_USERS[1][0])
        _, raw = token_create(org=org, user=user, name="make run demo", actor=self.actor())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(raw)
        return raw
