from tenancy.management.commands._base import ServiceCommand
from tenancy.roles import Role
from tenancy.services import membership_add


class Command(ServiceCommand):
    help = "Add a user (created when new) to an organization with a role; prints the email."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", default=None)
        parser.add_argument("--name", default="")

    def handle(self, *args, slug, email, role, password, name, **options):
        membership = membership_add(org=self.org(slug), email=email, role=role,
                                    password=password, name=name, actor=self.actor())
        self.stdout.write(membership.user.email)
