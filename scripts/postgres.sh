#!/usr/bin/env bash
# Make a PostgreSQL server from Debian's packages answer on 127.0.0.1:5432 with a `darkroom`
# role and database. Installs the package when missing, starts the cluster when it is down,
# reuses whatever is already there. Prints the database URL on its last line.
set -euo pipefail

PGPORT="${DARKROOM_PG_PORT:-5432}"
PGUSER_NAME="${DARKROOM_PG_USER:-darkroom}"
PGPASS="${DARKROOM_PG_PASSWORD:-darkroom}"
PGDB="${DARKROOM_PG_DB:-darkroom}"
URL="postgresql://${PGUSER_NAME}:${PGPASS}@127.0.0.1:${PGPORT}/${PGDB}"

say() { echo "postgres: $*" >&2; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  say "PostgreSQL is not installed; installing Debian's package (needs root and the Debian mirror)"
  if [ "$(id -u)" != 0 ]; then
    say "not root: run 'sudo apt-get install -y postgresql' and try again"; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
VERSION=$(basename "$(dirname "$PGBIN")")

if ! "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; then
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$VERSION main$"; then
    say "creating cluster $VERSION/main"
    pg_createcluster "$VERSION" main --port "$PGPORT" >/dev/null
  fi
  say "starting cluster $VERSION/main on port $PGPORT"
  pg_ctlcluster "$VERSION" main start >&2 || {
    say "pg_ctlcluster failed; log follows"; tail -n 30 "/var/log/postgresql/postgresql-$VERSION-main.log" >&2 || true; exit 1; }
  for _ in $(seq 1 60); do
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" && break
    sleep 0.5
  done
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" || { say "server did not become ready on port $PGPORT"; exit 1; }
fi

# Role and database, idempotently.
as_postgres psql -q -p "$PGPORT" -v ON_ERROR_STOP=1 <<SQL >/dev/null
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${PGUSER_NAME}') THEN
    CREATE ROLE ${PGUSER_NAME} LOGIN PASSWORD '${PGPASS}';
  END IF;
END \$\$;
SQL
if ! as_postgres psql -p "$PGPORT" -tAc "SELECT 1 FROM pg_database WHERE datname='${PGDB}'" | grep -q 1; then
  as_postgres createdb -p "$PGPORT" -O "$PGUSER_NAME" "$PGDB"
fi
say "ready: $URL"
echo "$URL"
