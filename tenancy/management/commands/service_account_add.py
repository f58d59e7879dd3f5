from tenancy.management.commands._base import ServiceCommand
from tenancy.roles import Role
from tenancy.services import service_account_add


class Command(ServiceCommand):
    help = ("Add a service account (a member for automation, never an owner); then "
            "`token_create <slug> <its email>` makes its token.")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("name", help="lower-case letters, digits and inner hyphens")
        parser.add_argument("--role", default=Role.DATA_SCIENTIST,
                            choices=[r for r in Role.values if r != Role.OWNER])

    def handle(self, *args, slug, name, role, **options):
        membership = service_account_add(org=self.org(slug), name=name, role=role,
                                         actor=self.actor())
        self.stdout.write(f"Service account {membership.user.email} ({role}) added to {slug}.")
