# The job runner (config/jobs) keeps the leases now: generations in flight get a job of it.

import datetime

from django.db import migrations
from django.utils import timezone


def jobs_of_generations_in_flight(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    Disclosure = apps.get_model("reports", "Disclosure")
    long_ago = timezone.now() - datetime.timedelta(days=1)  # handed over again at the next sweep
    Job.objects.bulk_create(
        Job(kind="reports.generate", target=pk, queue="reports", status=status, attempt=attempt,
            handed_over_at=long_ago,
            lease_until=(started_at or long_ago) + datetime.timedelta(seconds=900)
            if status == "RUNNING" else None)
        for pk, status, attempt, started_at in Disclosure.objects.filter(
            status__in=("QUEUED", "RUNNING")).values_list("pk", "status", "attempt",
                                                          "started_at"))


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0001_initial'),
        ('jobs', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(jobs_of_generations_in_flight, migrations.RunPython.noop),
    ]
