#!/usr/bin/env bash
# A single-node Elasticsearch on loopback from the integ-test-zip distribution on Maven Central
# (org.elasticsearch.distribution.integ-test-zip:elasticsearch: the server with only x-pack core and
# security, no bundled JDK; it runs on the system's Java 17, security switched off).
#   scripts/elasticsearch.sh start   fetch once (into a cache outside the repo), start, wait for health
#   scripts/elasticsearch.sh stop
# Prints the URL alone on the last line of stdout; talks on stderr; exits non-zero when it cannot
# start. Runs as an unprivileged user (Elasticsearch refuses root): the invoking user, or a
# system user `darkroom-es` created when this runs as root. Data and logs live under a temp dir.
set -euo pipefail

VERSION="${DARKROOM_ELASTICSEARCH_VERSION:-8.19.4}"
PORT="${DARKROOM_ELASTICSEARCH_PORT:-19200}"
HEAP="${DARKROOM_ELASTICSEARCH_HEAP:-512m}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/darkroom"
HOME_DIR="$CACHE/elasticsearch-$VERSION"
DATA="${DARKROOM_ELASTICSEARCH_DATA:-${TMPDIR:-/tmp}/darkroom-elasticsearch}"
URL="http://127.0.0.1:$PORT"
ES_USER="darkroom-es"
say() { echo "elasticsearch: $*" >&2; }

healthy() {
  curl -fsS -m 2 "$URL/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null | grep -q '"status":"\(green\|yellow\)"'
}

fetch() {
  [ -f "$HOME_DIR/.complete" ] && return
  command -v java >/dev/null || { say "Java 17+ is needed: apt-get install -y openjdk-17-jre-headless"; exit 1; }
  command -v unzip >/dev/null || command -v python3 >/dev/null || { say "unzip or python3 is needed to unpack"; exit 1; }
  local repo="${DARKROOM_MAVEN_REPO:-https://repo1.maven.org/maven2}"
  local zip="$CACHE/elasticsearch-$VERSION.zip"
  mkdir -p "$CACHE"
  if [ ! -f "$zip" ]; then
    say "fetching org.elasticsearch.distribution.integ-test-zip:elasticsearch:$VERSION from $repo"
    curl -fSL --retry 3 -o "$zip.part" \
      "$repo/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$VERSION/elasticsearch-$VERSION.zip" >&2 \
      || { say "download failed (is $repo reachable? set DARKROOM_MAVEN_REPO for a mirror)"; rm -f "$zip.part"; exit 1; }
    mv "$zip.part" "$zip"
  fi
  rm -rf "$HOME_DIR.tmp" && mkdir -p "$HOME_DIR.tmp"
  if command -v unzip >/dev/null; then
    unzip -q "$zip" -d "$HOME_DIR.tmp"
  else
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$HOME_DIR.tmp"
  fi
  rm -rf "$HOME_DIR"
  mv "$HOME_DIR.tmp/elasticsearch-$VERSION" "$HOME_DIR"
  rm -rf "$HOME_DIR.tmp"
  chmod +x "$HOME_DIR"/bin/*
  touch "$HOME_DIR/.complete"
}

# Run a command as the unprivileged user (as ourselves when we are not root).
as_user() {
  if [ "$(id -u)" -ne 0 ]; then "$@"; return; fi
  if ! id "$ES_USER" >/dev/null 2>&1; then
    say "creating system user $ES_USER (Elasticsearch refuses to run as root)"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER" \
      || { say "could not create user $ES_USER"; exit 1; }
  fi
  if command -v runuser >/dev/null; then runuser -u "$ES_USER" -- "$@"; else su -s /bin/sh "$ES_USER" -c "$(printf '%q ' "$@")"; fi
}

start() {
  if healthy; then say "already up at $URL"; echo "$URL"; return; fi
  if (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    say "port $PORT is taken by something that is not a healthy Elasticsearch; waiting for it"
    for _ in $(seq 1 60); do healthy && { echo "$URL"; return; }; sleep 1; done
    say "port $PORT is busy and does not answer as Elasticsearch; free it or set DARKROOM_ELASTICSEARCH_PORT"
    exit 1
  fi
  fetch
  mkdir -p "$DATA/data" "$DATA/logs" "$DATA/tmp" "$DATA/config"
  # A private config dir: the cached distribution stays untouched and shared.
  cp -r "$HOME_DIR/config/." "$DATA/config/"
  cat > "$DATA/config/elasticsearch.yml" <<YML
cluster.name: darkroom-dev
node.name: darkroom-dev-1
path.data: $DATA/data
path.logs: $DATA/logs
network.host: 127.0.0.1
http.port: $PORT
transport.port: $((PORT + 100))
discovery.type: single-node
action.destructive_requires_name: false
xpack.security.enabled: false
# A development machine's disk is often fuller than production thresholds allow.
cluster.routing.allocation.disk.threshold_enabled: false
YML
  cat > "$DATA/config/jvm.options.d/heap.options" <<OPTS
-Xms$HEAP
-Xmx$HEAP
OPTS
  if [ "$(id -u)" -eq 0 ]; then
    as_user true
    chown -R "$ES_USER" "$DATA"
    chmod o+rx "$CACHE" "$HOME_DIR" 2>/dev/null || true
    chmod -R o+rX "$HOME_DIR"
    # The cache sits under root's home: the service user must be able to walk down to it.
    local d="$CACHE"; while [ "$d" != "/" ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
  fi
  # This distribution bundles no JDK: point it at the system's.
  local java_home="${ES_JAVA_HOME:-${JAVA_HOME:-}}"
  [ -n "$java_home" ] || java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  say "starting $VERSION on $URL (heap $HEAP, Java in $java_home, data in $DATA)"
  # setsid: its own session, so the node outlives the shell or test that started it.
  as_user setsid env ES_PATH_CONF="$DATA/config" ES_TMPDIR="$DATA/tmp" ES_JAVA_HOME="$java_home" \
    "$HOME_DIR/bin/elasticsearch" -d -p "$DATA/es.pid" > "$DATA/start.log" 2>&1 \
    || { say "it did not start:"; tail -n 30 "$DATA/start.log" >&2; tail -n 30 "$DATA/logs/darkroom-dev.log" >&2 2>/dev/null; exit 1; }
  for _ in $(seq 1 120); do healthy && break; sleep 1; done
  healthy || { say "not healthy after 120 s; log: $DATA/logs/darkroom-dev.log"; tail -n 30 "$DATA/logs/darkroom-dev.log" >&2 2>/dev/null; exit 1; }
  say "healthy at $URL"
  echo "$URL"
}

stop() {
  if [ -f "$DATA/es.pid" ]; then
    local pid
    pid=$(cat "$DATA/es.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    rm -f "$DATA/es.pid"
    say "stopped"
  else
    say "not running (no $DATA/es.pid)"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
