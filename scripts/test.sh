#!/usr/bin/env bash
# The suite, run by `make test` inside scripts/with_services.py (which exports DATABASE_URL etc.).
# 1. everything on PostgreSQL; 2. the core again on SQLite, the embedded default: what talks
# to the database in ways that differ between the two (search SQL, triggers, bulk inserts,
# the chain). Pure code (MLproject parsing, PDF rendering, model scoring) runs once.
set -euo pipefail
cd "$(dirname "$0")/.."
# Two test processes (pytest-xdist; each its own test database and Redis databases, see
# config/settings/test.py): most tests wait on workers, servers and browsers, not the CPU.
workers=(-n "${PYTEST_WORKERS:-2}" --dist worksteal)
export DJANGO_SETTINGS_MODULE=config.settings.test
if [ "${1:-all}" != "sqlite" ]; then
  echo "== PostgreSQL: the whole suite"
  # shellcheck disable=SC2086  # PYTEST_ARGS is a word list on purpose
  .venv/bin/pytest -p no:cacheprovider "${workers[@]}" ${PYTEST_ARGS:-}
fi
echo "== SQLite: the core"
DATABASE_URL="sqlite:///$(mktemp -d)/ledgerflow-test.sqlite3" DATABASE_OWNER_URL="" \
  .venv/bin/pytest -p no:cacheprovider "${workers[@]}" -m "not postgres_only and not slow" \
  tests/tenancy tests/audit tests/tracking tests/system tests/web tests/jobs \
  tests/models_registry/test_invariants.py tests/models_registry/test_native_api.py \
  tests/models_registry/test_admin.py tests/reports/test_disclosures.py \
  "tests/models_registry/test_scoring.py::test_a_decision_is_recorded_with_hmac_subject_and_exact_contributions" \
  "tests/models_registry/test_scoring.py::test_a_thousand_rows_are_a_thousand_decisions_under_one_audit_event"
