from django.core.management.base import BaseCommand, CommandError

from audit.offline import counted
from audit.services import audit_verify_org
from config.scope import scoped
from tenancy.models import Organization


class Command(BaseCommand):
    help = ("Recompute every organization's audit chain and check it against its signed "
            "checkpoints. Exit 0 when intact; otherwise exit 1 and name the first bad sequence "
            "number per organization.")

    def add_arguments(self, parser):
        parser.add_argument("--org", help="only this organization (slug)")

    def handle(self, *args, org=None, **options):
        orgs = Organization.objects.order_by("slug")
        if org:
            orgs = orgs.filter(slug=org)
            if not orgs.exists():
                raise CommandError(f"Organization '{org}' does not exist.")
        failed = []
        for organization in orgs:
            with scoped(organization.pk):  # its rows only (config/scope.py)
                verdict = audit_verify_org(organization)
            if verdict.ok:
                self.stdout.write(f"{organization.slug}: OK ({counted(verdict.events, 'event')}, "
                                  f"{counted(verdict.checkpoints, 'checkpoint')})")
            else:
                failed.append(organization.slug)
                self.stdout.write(f"{organization.slug}: FAILED at #{verdict.first_bad_seq}: "
                                  f"{verdict.reason}")
        if failed:
            raise CommandError(f"audit trail damaged in: {', '.join(failed)}", returncode=1)
        self.stdout.write("OK")
