"""Decisions keep only the indexes reads need: (org, subject_ref) and the listing's (org, newest
first). SQLite rebuilds the table to alter a column, which drops its triggers: the review-only
trigger is made again (as in 0004)."""

import importlib

import django.db.models.deletion
from django.db import migrations, models

again = importlib.import_module("models_registry.migrations.0004_decision_outcome_labels")


class Migration(migrations.Migration):

    dependencies = [
        ('models_registry', '0005_jobs_of_the_runner'),
        ('tenancy', '0003_token_scope_reads'),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, again.forward),
        migrations.AlterField(
            model_name='decision',
            name='org',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                    related_name='+', to='tenancy.organization'),
        ),
        migrations.AlterField(
            model_name='decision',
            name='subject_ref',
            field=models.CharField(max_length=64),
        ),
        migrations.AddIndex(
            model_name='decision',
            index=models.Index(fields=['org', '-created_at', '-id'], name='decision_org_newest'),
        ),
        migrations.RunPython(again.forward, migrations.RunPython.noop),
    ]
