"""The one place that narrows queries to an organization.

Objects of another organization are indistinguishable from missing ones: both raise the
same not_found error (Zulip's access_stream_by_id, healthchecks' _get_project_for_user).
"""

from django.db.models import Model, QuerySet

from config.exceptions import ApplicationError


def org_queryset(source: type[Model] | QuerySet, *, org) -> QuerySet:
    queryset = source.objects.all() if isinstance(source, type) else source
    return queryset.filter(org=org)


def org_get(source: type[Model] | QuerySet, *, org, **lookup):
    queryset = org_queryset(source, org=org)
    instance = queryset.filter(**lookup).first()
    if instance is None:
        name = queryset.model._meta.verbose_name.capitalize()
        raise ApplicationError(f"{name} not found.", kind="not_found")
    return instance
