from tenancy.management.commands._base import ServiceCommand
from tenancy.services import organization_create


class Command(ServiceCommand):
    help = "Create an organization; prints its slug."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="")

    def handle(self, *args, slug, name, **options):
        org = organization_create(slug=slug, name=name, actor=self.actor())
        self.stdout.write(org.slug)
