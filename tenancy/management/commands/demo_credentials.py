from django.core.management.base import BaseCommand, CommandError

from tenancy.management.commands.demo_seed import credentials_path


class Command(BaseCommand):
    help = ("Print the demo's logins and API tokens again, as `make run` printed them (the "
            "0600 file `manage.py demo_seed` keeps in the data dir); paste them into a shell.")

    def handle(self, *args, **options):
        path = credentials_path()
        if not path.exists():
            raise CommandError(f"No demo credentials at {path}: `make run` (or `manage.py "
                               "demo_seed`) seeds the demo and writes them.")
        self.stdout.write(path.read_text(), ending="")
