"""The order search-runs lists an experiment's runs in by default (`start_time DESC NULLS
LAST, run_uuid`) as an index on PostgreSQL, so the first page is an index scan instead of a
sort of every run. PostgreSQL's plain DESC index puts NULLs first and so cannot serve it;
SQLite sorts NULLs last in DESC by itself (and refuses NULLS LAST in an index), so there the
existing `run_experiment_start` index already serves that order."""

from django.db import migrations

CREATE = ("CREATE INDEX IF NOT EXISTS run_experiment_order ON tracking_run "
          "(experiment_id, lifecycle_stage, start_time DESC NULLS LAST, run_uuid)")


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS run_experiment_order")


class Migration(migrations.Migration):
    dependencies = [("tracking", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
