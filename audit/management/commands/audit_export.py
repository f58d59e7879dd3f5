from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.services import audit_export_lines, checkpoint_create
from config.scope import scoped
from tenancy.models import Organization


class Command(BaseCommand):
    help = ("Write an organization's audit trail as JSON Lines with its signed checkpoints "
            "(a fresh one is made first). Check it offline with `python -m audit.offline`.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True)
        parser.add_argument("--out", required=True, type=Path)
        parser.add_argument("--no-checkpoint", action="store_true",
                            help="do not sign a new checkpoint before exporting")

    def handle(self, *args, org, out, no_checkpoint, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"Organization '{org}' does not exist.")
        with scoped(organization.pk):  # its rows only, whatever a query forgets
            if not no_checkpoint:
                checkpoint_create(org=organization)
            with out.open("w") as handle:
                handle.writelines(audit_export_lines(organization))
        self.stdout.write(str(out))
