# The job runner (config/jobs) keeps the leases now: versions still pending get a job of it.

import datetime

from django.db import migrations
from django.utils import timezone


def jobs_of_pending_versions(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    ModelVersion = apps.get_model("models_registry", "ModelVersion")
    now = timezone.now()
    long_ago = now - datetime.timedelta(days=1)  # handed over again at the next sweep
    Job.objects.bulk_create(
        Job(kind="models_registry.package", target=pk, queue="packaging",
            status="RUNNING" if lease_until and lease_until > now else "QUEUED",
            attempt=attempt, handed_over_at=long_ago,
            lease_until=lease_until if lease_until and lease_until > now else None)
        for pk, attempt, lease_until in ModelVersion.objects.filter(
            status="PENDING_REGISTRATION").values_list("pk", "packaging_attempt",
                                                       "packaging_lease_until"))


class Migration(migrations.Migration):

    dependencies = [
        ('models_registry', '0004_decision_outcome_labels'),
        ('jobs', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(jobs_of_pending_versions, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='modelversion',
            name='packaging_enqueued_at',
        ),
        migrations.RemoveField(
            model_name='modelversion',
            name='packaging_lease_until',
        ),
    ]
