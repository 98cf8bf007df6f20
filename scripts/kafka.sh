#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft) on loopback from the broker's jars on Maven Central.
#   scripts/kafka.sh start   fetch the jars once (into a cache outside the repo), format, start
#   scripts/kafka.sh stop
# Prints the bootstrap address on its last line. Data lives under a temp dir.
set -euo pipefail

VERSION="${DARKROOM_KAFKA_VERSION:-4.4.0}"
PORT="${DARKROOM_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${DARKROOM_KAFKA_CONTROLLER_PORT:-19093}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/darkroom/kafka-$VERSION"
DATA="${DARKROOM_KAFKA_DATA:-${TMPDIR:-/tmp}/darkroom-kafka}"
say() { echo "kafka: $*" >&2; }

port_open() { (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fetch() {
  [ -f "$CACHE/.complete" ] && return
  command -v mvn >/dev/null || { say "Maven (mvn) is needed to fetch the broker: apt-get install -y maven"; exit 1; }
  command -v java >/dev/null || { say "Java 17 is needed: apt-get install -y openjdk-17-jre-headless"; exit 1; }
  say "fetching org.apache.kafka:kafka_2.13:$VERSION and its dependencies into $CACHE"
  mkdir -p "$CACHE"
  cat > "$CACHE/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>darkroom</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
  </dependencies>
</project>
POM
  (cd "$CACHE" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$CACHE/libs" -DincludeScope=runtime >&2) \
    || { say "Maven could not fetch the broker's jars (see above)"; exit 1; }
  touch "$CACHE/.complete"
}

start() {
  if port_open "$PORT"; then say "already listening on 127.0.0.1:$PORT"; echo "127.0.0.1:$PORT"; return; fi
  fetch
  mkdir -p "$DATA"
  cat > "$DATA/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA/logs
num.partitions=4
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  local cp="$CACHE/libs/*"
  if [ ! -f "$DATA/logs/meta.properties" ]; then
    local cluster
    cluster=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    java -cp "$cp" kafka.tools.StorageTool format -t "$cluster" -c "$DATA/server.properties" >/dev/null 2>&1 \
      || { say "formatting $DATA/logs failed"; exit 1; }
  fi
  say "starting broker $VERSION on 127.0.0.1:$PORT (data in $DATA)"
  # Its own session: the broker outlives the shell or test that started it (and its process group).
  nohup setsid java -Xms256m -Xmx512m -cp "$cp" kafka.Kafka "$DATA/server.properties" > "$DATA/kafka.log" 2>&1 &
  echo $! > "$DATA/kafka.pid"
  for _ in $(seq 1 120); do port_open "$PORT" && break; sleep 0.5; done
  port_open "$PORT" || { say "broker did not start; log: $DATA/kafka.log"; tail -n 20 "$DATA/kafka.log" >&2; exit 1; }
  echo "127.0.0.1:$PORT"
}

stop() {
  if [ -f "$DATA/kafka.pid" ]; then
    local pid
    pid=$(cat "$DATA/kafka.pid")
    kill "$pid" 2>/dev/null || true
    # Wait for the broker to exit (it flushes its logs), so a following `start` finds the port free.
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { say "broker $pid still running after 30 s; killing it"; kill -9 "$pid" 2>/dev/null || true; }
    rm -f "$DATA/kafka.pid"
    say "stopped"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
