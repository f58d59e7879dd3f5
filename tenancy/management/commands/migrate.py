"""Django's migrate, connected as the tables' owner when DATABASE_OWNER_URL is set
(tenancy/dbroles.py): the service's own role may not change tables. After it, the service's role
is granted the rows of every table (post_migrate)."""

from django.core.management.commands.migrate import Command as MigrateCommand

from tenancy.dbroles import as_owner


class Command(MigrateCommand):
    def handle(self, *args, **options):
        with as_owner(options["database"]):
            return super().handle(*args, **options)
