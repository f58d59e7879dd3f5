"""Decisions keep the names of both sides of their cut-off (for a disclosure's counterfactual).
SQLite rebuilds the table to add a column, which drops its triggers: the review-only trigger
is made again, now over the new column too."""

import importlib

from django.db import migrations, models

reviews_only = importlib.import_module("models_registry.migrations.0003_decision_params")


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS decision_reviews_only")
        reviews_only.forward(apps, schema_editor)




class Migration(migrations.Migration):
    dependencies = [("models_registry", "0003_decision_params")]
    operations = [
        # unapplied, the column goes (and SQLite's rebuild takes the trigger): made again
        migrations.RunPython(migrations.RunPython.noop, forward),
        migrations.AddField(model_name="decision", name="outcome_labels",
                            field=models.JSONField(blank=True, default=list)),
        migrations.RunPython(forward, migrations.RunPython.noop),
    ]
