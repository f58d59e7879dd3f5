from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit.actors import Actor
from config.exceptions import ApplicationError
from config.scope import scope_to, unscope
from tenancy.models import Organization


class ServiceCommand(BaseCommand):
    """A command that calls services as `manage.py <name>`; domain errors become CommandError.

    The last line of stdout is the value a script needs (DESIGN.md).
    """

    def actor(self) -> Actor:
        return Actor.command(self.__module__.rsplit(".", 1)[-1])

    def org(self, slug: str) -> Organization:
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            raise CommandError(f"Organization '{slug}' does not exist.")
        scope_to(org.pk)  # the command acts in this organization alone (config/scope.py)
        return org

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        except ValidationError as exc:  # full_clean() in a service: bad input, not a crash
            raise CommandError("; ".join(exc.messages)) from exc
        finally:
            unscope()  # the organization's scope ends with the command (call_command too)
