#!/usr/bin/env bash
# The suite, run by `make test` inside scripts/with_services.py (which exports DATABASE_URL etc.).
# 1. everything on PostgreSQL; 2. the core again on SQLite, the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE=config.settings.test
if [ "${1:-all}" != "sqlite" ]; then
  echo "== PostgreSQL: the whole suite"
  # shellcheck disable=SC2086  # PYTEST_ARGS is a word list on purpose
  .venv/bin/pytest -p no:cacheprovider ${PYTEST_ARGS:-}
fi
echo "== SQLite: the core"
DATABASE_URL="sqlite:///$(mktemp -d)/ledgerflow-test.sqlite3" \
  .venv/bin/pytest -p no:cacheprovider -m "not postgres_only and not slow"
