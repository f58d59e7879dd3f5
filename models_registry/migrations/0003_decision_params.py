"""Decisions record their inference parameters; and once recorded, a decision changes only by
its review (the database refuses anything else, as for READY packages)."""

from django.db import migrations, models

# A decision, once recorded, changes only by its review (reviewer, action, time).
REVIEW_COLUMNS = ("reviewer", "review_action", "reviewed_at")

PG_FORWARD = r"""
CREATE OR REPLACE FUNCTION ledgerflow_decision_reviews_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (to_jsonb(NEW) - 'reviewer' - 'review_action' - 'reviewed_at')
     IS DISTINCT FROM (to_jsonb(OLD) - 'reviewer' - 'review_action' - 'reviewed_at') THEN
    RAISE EXCEPTION 'decision % is recorded: only its review may change', OLD.decision_id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER decision_reviews_only BEFORE UPDATE ON models_registry_decision
  FOR EACH ROW EXECUTE FUNCTION ledgerflow_decision_reviews_only();
"""
PG_BACKWARD = r"""
DROP TRIGGER IF EXISTS decision_reviews_only ON models_registry_decision;
DROP FUNCTION IF EXISTS ledgerflow_decision_reviews_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        decision = apps.get_model("models_registry", "Decision")
        columns = ", ".join(f'"{f.column}"' for f in decision._meta.concrete_fields
                            if f.column not in REVIEW_COLUMNS)
        schema_editor.execute(
            f"CREATE TRIGGER decision_reviews_only BEFORE UPDATE OF {columns} "
            "ON models_registry_decision BEGIN SELECT RAISE(ABORT, 'decision is recorded: only "
            "its review may change'); END")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS decision_reviews_only")


class Migration(migrations.Migration):
    dependencies = [("models_registry", "0002_package_immutable")]
    operations = [
        migrations.AddField(model_name="decision", name="params",
                            field=models.JSONField(blank=True, default=dict)),
        migrations.RunPython(forward, backward),
    ]
