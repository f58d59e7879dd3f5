"""Metric points keep their references without per-row foreign keys.

A foreign key is checked row by row: a batch of 1,000 points looked its run and its
organization up 2,000 times at COMMIT, a quarter of the batch's time in the database. These
triggers check the same once per statement: every point's run exists and belongs to the point's
organization (the run is locked FOR KEY SHARE until the transaction ends, as a foreign key
locks it); a run that has points cannot move to another organization; a deleted run's points
are deleted with it (ON DELETE CASCADE: Django deletes them first anyway, and a flush may
empty the tables in any order). The organization is reached through the run, whose own
foreign key to it stays. Like PostgreSQL's own checks these rely on READ COMMITTED, the
isolation the application uses.
"""

import django.db.models.deletion
from django.db import migrations, models

PG_FORWARD = r"""
CREATE OR REPLACE FUNCTION ledgerflow_metric_run_exists() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE missing record;
BEGIN
  SELECT p.run_id, p.org_id INTO missing
    FROM (SELECT DISTINCT run_id, org_id FROM new_points) p
    LEFT JOIN LATERAL (SELECT r.id FROM tracking_run r WHERE r.id = p.run_id AND r.org_id = p.org_id
                       FOR KEY SHARE) r ON true
   WHERE r.id IS NULL LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'insert or update on table "tracking_metric" violates its run reference: '
                    'no run % in organization %', missing.run_id, missing.org_id
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER metric_run_exists AFTER INSERT ON tracking_metric
  REFERENCING NEW TABLE AS new_points FOR EACH STATEMENT EXECUTE FUNCTION ledgerflow_metric_run_exists();
CREATE TRIGGER metric_run_exists_on_update AFTER UPDATE ON tracking_metric
  REFERENCING NEW TABLE AS new_points FOR EACH STATEMENT EXECUTE FUNCTION ledgerflow_metric_run_exists();

CREATE OR REPLACE FUNCTION ledgerflow_run_points_go_with_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM tracking_metric WHERE run_id IN (SELECT id FROM old_runs);
  RETURN NULL;
END $$;
CREATE TRIGGER run_points_go_with_it AFTER DELETE ON tracking_run
  REFERENCING OLD TABLE AS old_runs FOR EACH STATEMENT EXECUTE FUNCTION ledgerflow_run_points_go_with_it();

CREATE OR REPLACE FUNCTION ledgerflow_run_keeps_points() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM tracking_metric m WHERE m.run_id = OLD.id) THEN
    RAISE EXCEPTION 'update on table "tracking_run" violates the reference from "tracking_metric": '
                    'run % has metric points', OLD.id
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER run_keeps_points AFTER UPDATE OF id, org_id ON tracking_run FOR EACH ROW
  WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.org_id IS DISTINCT FROM NEW.org_id)
  EXECUTE FUNCTION ledgerflow_run_keeps_points();
"""

PG_BACKWARD = r"""
DROP TRIGGER IF EXISTS metric_run_exists ON tracking_metric;
DROP TRIGGER IF EXISTS metric_run_exists_on_update ON tracking_metric;
DROP TRIGGER IF EXISTS run_points_go_with_it ON tracking_run;
DROP TRIGGER IF EXISTS run_keeps_points ON tracking_run;
DROP FUNCTION IF EXISTS ledgerflow_metric_run_exists();
DROP FUNCTION IF EXISTS ledgerflow_run_points_go_with_it();
DROP FUNCTION IF EXISTS ledgerflow_run_keeps_points();
"""

# SQLite checks row by row anyway; the triggers only keep what the foreign keys gave.
SQLITE_FORWARD = [
    """CREATE TRIGGER metric_run_exists BEFORE INSERT ON tracking_metric
       WHEN NOT EXISTS (SELECT 1 FROM tracking_run WHERE id = NEW.run_id AND org_id = NEW.org_id)
       BEGIN SELECT RAISE(ABORT, 'tracking_metric: no such run in the organization'); END""",
    """CREATE TRIGGER metric_run_exists_on_update BEFORE UPDATE OF run_id, org_id ON tracking_metric
       WHEN NOT EXISTS (SELECT 1 FROM tracking_run WHERE id = NEW.run_id AND org_id = NEW.org_id)
       BEGIN SELECT RAISE(ABORT, 'tracking_metric: no such run in the organization'); END""",
    """CREATE TRIGGER run_points_go_with_it AFTER DELETE ON tracking_run
       BEGIN DELETE FROM tracking_metric WHERE run_id = OLD.id; END""",
    """CREATE TRIGGER run_keeps_points BEFORE UPDATE OF id, org_id ON tracking_run
       WHEN (OLD.id IS NOT NEW.id OR OLD.org_id IS NOT NEW.org_id)
            AND EXISTS (SELECT 1 FROM tracking_metric WHERE run_id = OLD.id)
       BEGIN SELECT RAISE(ABORT, 'tracking_run: the run has metric points'); END""",
]
SQLITE_BACKWARD = [f"DROP TRIGGER IF EXISTS {name}" for name in (
    "metric_run_exists", "metric_run_exists_on_update", "run_points_go_with_it", "run_keeps_points")]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('tenancy', '0002_token_run_scope'),
        ('tracking', '0004_run_keyed_tables_index_by_run_and_key'),
    ]

    operations = [
        migrations.AlterField(
            model_name='metric',
            name='org',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.organization'),
        ),
        migrations.AlterField(
            model_name='metric',
            name='run',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='metrics', to='tracking.run'),
        ),
        migrations.RunPython(forward, backward),
    ]
