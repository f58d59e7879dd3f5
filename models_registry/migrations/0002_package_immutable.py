"""A READY package never changes (DESIGN.md invariant 5): the database refuses to change a READY
version's status, package location, digest or manifest, whatever the code path."""

from django.db import migrations

PG_FORWARD = r"""
CREATE OR REPLACE FUNCTION ledgerflow_package_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'READY' AND (NEW.status <> 'READY'
      OR NEW.package_digest <> OLD.package_digest OR NEW.package_path <> OLD.package_path
      OR NEW.manifest IS DISTINCT FROM OLD.manifest OR NEW.source_path <> OLD.source_path) THEN
    RAISE EXCEPTION 'model version % is READY: its package never changes', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER model_version_package_immutable BEFORE UPDATE ON models_registry_modelversion
  FOR EACH ROW EXECUTE FUNCTION ledgerflow_package_immutable();
"""

PG_BACKWARD = r"""
DROP TRIGGER IF EXISTS model_version_package_immutable ON models_registry_modelversion;
DROP FUNCTION IF EXISTS ledgerflow_package_immutable();
"""

SQLITE_FORWARD = """
CREATE TRIGGER model_version_package_immutable BEFORE UPDATE ON models_registry_modelversion
WHEN OLD.status = 'READY' AND (NEW.status <> 'READY'
     OR NEW.package_digest <> OLD.package_digest OR NEW.package_path <> OLD.package_path
     OR NEW.manifest <> OLD.manifest OR NEW.source_path <> OLD.source_path)
BEGIN SELECT RAISE(ABORT, 'model version is READY: its package never changes'); END
"""

SQLITE_BACKWARD = "DROP TRIGGER IF EXISTS model_version_package_immutable"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("models_registry", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
