#!/usr/bin/env bash
# Start the real services Darkroom's distributed backends use, on loopback, and write the
# DARKROOM_* settings that point at them into .services.env (one `export NAME=value` per line).
#   scripts/services.sh up     PostgreSQL, Apache Kafka, Elasticsearch (each reused when already up)
#   scripts/services.sh down   stop them
# Each launcher prints its address on its last line and talks to the operator on stderr.
set -uo pipefail
cd "$(dirname "$0")/.."
ENV_FILE="${DARKROOM_SERVICES_ENV:-.services.env}"
say() { echo "services: $*" >&2; }

last_line() { tail -n 1; }

up() {
  local pg kafka es
  pg=$(bash scripts/postgres.sh | last_line) && [ -n "$pg" ] \
    || { say "PostgreSQL did not start (see above)"; exit 1; }
  kafka=$(bash scripts/kafka.sh start | last_line) && [ -n "$kafka" ] \
    || { say "Kafka did not start (see above)"; exit 1; }
  es=""
  if [ -f scripts/elasticsearch.sh ]; then
    es=$(bash scripts/elasticsearch.sh start | last_line) || {
      say "Elasticsearch could not be started (see above): search uses the embedded index"; es=""; }
  fi
  {
    echo "export DARKROOM_DATABASE_URL=$pg"
    echo "export DARKROOM_KAFKA_BOOTSTRAP=$kafka"
    [ -n "$es" ] && echo "export DARKROOM_ELASTICSEARCH_URL=$es"
  } > "$ENV_FILE"
  say "wrote $ENV_FILE:"
  cat "$ENV_FILE"
}

down() {
  [ -f scripts/elasticsearch.sh ] && bash scripts/elasticsearch.sh stop
  bash scripts/kafka.sh stop
  local v
  v=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$v" ] && pg_ctlcluster "$v" main stop 2>/dev/null && say "PostgreSQL stopped"
  return 0
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
