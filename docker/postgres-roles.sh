#!/usr/bin/env bash
# Run once by the postgres image, when its data volume is new (/docker-entrypoint-initdb.d):
# the two roles of docs/deploy.md, "The database role", neither a superuser. The tables' owner
# (database_owner_url) is what `migrate` connects as; the service (database_url) reads and
# writes rows only, granted by each migrate (tenancy/dbroles.py). Names and passwords come from
# the two URL secrets, so they are written in one place.
set -euo pipefail

credentials() {  # postgres://user:password@host:port/db -> "user password"
  local url
  url=$(cat "$1")
  if [[ ! $url =~ ^postgres(ql)?://([A-Za-z0-9_]+):([A-Za-z0-9_-]+)@ ]]; then
    echo "$1: expected postgres://user:password@postgres:5432/ledgerflow (letters, digits, _ and - only)" >&2
    exit 1
  fi
  echo "${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"
}

secrets=${SECRETS_DIR:-/run/secrets}
read -r owner owner_password < <(credentials "$secrets/database_owner_url")
read -r service service_password < <(credentials "$secrets/database_url")

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v owner="$owner" -v owner_password="$owner_password" \
  -v service="$service" -v service_password="$service_password" -v db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password' NOSUPERUSER NOBYPASSRLS NOCREATEROLE;
CREATE ROLE :"service" LOGIN PASSWORD :'service_password' NOSUPERUSER NOBYPASSRLS NOCREATEROLE;
ALTER DATABASE :"db" OWNER TO :"owner";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"service";
SQL
