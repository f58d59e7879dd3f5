# The job runner (config/jobs) keeps the leases now: runs in flight get a job of it.

import datetime

from django.db import migrations
from django.utils import timezone


def jobs_of_runs_in_flight(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    Lease = apps.get_model("projects", "ProjectRunLease")
    long_ago = timezone.now() - datetime.timedelta(days=1)  # handed over again at the next sweep
    Job.objects.bulk_create(
        Job(kind="projects.run", target=lease.project_run_id, queue="projects",
            status=lease.project_run.status, attempt=lease.project_run.attempt,
            cancel_requested=lease.project_run.cancel_requested, handed_over_at=long_ago,
            lease_until=(lease.lease_until or timezone.now())
            if lease.project_run.status == "RUNNING" else None)
        for lease in Lease.objects.select_related("project_run")
        .filter(project_run__status__in=("QUEUED", "RUNNING")))


class Migration(migrations.Migration):

    dependencies = [
        ('projects', '0002_workflows_and_leases'),
        ('jobs', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(jobs_of_runs_in_flight, migrations.RunPython.noop),
        migrations.DeleteModel(
            name='ProjectRunLease',
        ),
    ]
