"""The Kafka bus (kafka-python): job topics per queue, consumer groups per queue, and the events
topic the relay feeds for analytics.

Names: `<prefix>.jobs.<queue>` (keyed by asset id, so one asset's jobs keep their order),
`<prefix>.events` (every domain event, keyed by aggregate id), groups `<prefix>.workers.<queue>`.

Consumers never auto-commit: the worker `ack`s a message once the job's outcome is appended to
the event store, and only then is its offset committed. A worker that dies before that leaves the
offset where it was, and the message is delivered again to whoever gets the partition after the
session times out. Messages are hints (the claim is a command), so redelivery is harmless.

A message is never held back for its `not_before`: a job that is not due yet is refused by the
claim and acknowledged, and the scheduler (`processors/scheduler.py`) publishes it again when it
becomes due, so nothing waits on a partition.

KafkaConsumer is not thread-safe: each consuming thread gets its own consumer per queue, and acks
on the thread that consumed. Workers give each queue threads of their own (`consumer_per_queue`):
a thread that polled several consumers in turn left their groups stuck rebalancing until the
session timed out (kafka-python only rejoins inside `poll`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from infra.bus import JobMessage
from infra.settings import SettingsError

log = logging.getLogger("darkroom.kafka")
# kafka-python reports every reconnect attempt at INFO; ours say what matters.
logging.getLogger("kafka").setLevel(logging.WARNING)

URL_OPTIONS = {"session_timeout_ms": (6000, 300000), "partitions": (1, 1000)}


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: tuple[str, ...]
    prefix: str = "darkroom"
    # How long a dead worker keeps its partitions before the group gives them to another.
    session_timeout_ms: int = 10000
    # Partitions of the topics Darkroom creates: the most workers per queue that get work.
    partitions: int = 8

    @classmethod
    def from_url(cls, url: str, prefix: str) -> KafkaConfig:
        """`kafka://host:port[,host:port][?session_timeout_ms=N&partitions=N]`."""
        parts = urlsplit(url)
        hosts = tuple(h for h in parts.netloc.split(",") if h)
        usage = "use kafka://host:port[,host:port][?session_timeout_ms=N&partitions=N]"
        if parts.scheme != "kafka" or not hosts or parts.path not in ("", "/"):
            raise SettingsError(f"DARKROOM_BUS {url!r} is not a Kafka address; {usage}")
        for host in hosts:
            name, _, port = host.rpartition(":")
            if not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise SettingsError(f"DARKROOM_BUS {url!r}: {host!r} is not host:port; {usage}")
        options: dict[str, int] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key not in URL_OPTIONS:
                raise SettingsError(f"DARKROOM_BUS {url!r}: unknown option {key!r}; "
                                    f"known: {', '.join(URL_OPTIONS)}")
            low, high = URL_OPTIONS[key]
            if not value.isdigit() or not low <= int(value) <= high:
                raise SettingsError(f"DARKROOM_BUS {url!r}: {key} must be an integer from {low} to {high}")
            options[key] = int(value)
        if not prefix or any(c not in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-" for c in prefix):
            raise SettingsError(f"DARKROOM_KAFKA_PREFIX {prefix!r} must be letters, digits, '.', '_' or '-'")
        return cls(bootstrap=hosts, prefix=prefix, **options)

    def job_topic(self, queue: str) -> str:
        return f"{self.prefix}.jobs.{queue}"

    @property
    def events_topic(self) -> str:
        return f"{self.prefix}.events"

    def group(self, queue: str) -> str:
        return f"{self.prefix}.workers.{queue}"


def encode_job(message: JobMessage) -> bytes:
    return json.dumps({"job_id": message.job_id, "queue": message.queue, "key": message.key,
                       "not_before": message.not_before}, separators=(",", ":")).encode()


def decode_job(value: bytes) -> JobMessage:
    data = json.loads(value)
    return JobMessage(float(data["not_before"]), int(data["job_id"]), str(data["queue"]), str(data.get("key", "")))


@dataclass(frozen=True)
class Receipt:
    consumer: KafkaConsumer
    partition: TopicPartition
    offset: int


class _ThreadConsumers(threading.local):
    def __init__(self) -> None:
        self.by_queue: dict[str, KafkaConsumer] = {}
        self.paused: dict[tuple[str, TopicPartition], float] = {}  # -> resume at (monotonic)
        self.turn = 0


class KafkaBus:
    """The Bus on Apache Kafka; also the relay's producer and the scheduler's view of groups."""

    # Workers poll each queue's consumer from threads of its own (see Worker.start).
    consumer_per_queue = True

    def __init__(self, config: KafkaConfig, client_id: str = "darkroom",
                 max_poll_interval_ms: int = 360000, request_timeout_ms: int = 15000) -> None:
        self.config = config
        self.client_id = client_id
        self.max_poll_interval_ms = max(max_poll_interval_ms, config.session_timeout_ms + 1000)
        self.request_timeout_ms = request_timeout_ms
        self._lock = threading.Lock()
        self._admin_lock = threading.RLock()  # the admin client takes one request at a time
        self._producer: KafkaProducer | None = None
        self._admin: KafkaAdminClient | None = None
        self._local = _ThreadConsumers()
        self._consumers: list[KafkaConsumer] = []
        self._topics: set[str] = set()
        self._pending: list[Any] = []  # futures of `publish`, until `flush`
        self._closed = False

    @property
    def bootstrap(self) -> list[str]:
        return list(self.config.bootstrap)

    # -- producing -----------------------------------------------------------------------------

    def producer(self) -> KafkaProducer:
        """The shared producer (thread-safe), made on first use; raises while Kafka is down."""
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}/producer",
                    acks="all", enable_idempotence=True,  # keeps per-partition order across retries
                    linger_ms=5, batch_size=256 * 1024, max_block_ms=self.request_timeout_ms,
                    request_timeout_ms=self.request_timeout_ms,
                    delivery_timeout_ms=2 * self.request_timeout_ms + 5,
                )
            return self._producer

    def reset_producer(self) -> None:
        """Drop the producer after a failure: what it still holds is sent again by the caller."""
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception:  # it is being thrown away
                log.debug("closing a failed producer", exc_info=True)

    def send(self, topic: str, key: str, value: bytes) -> Any:
        """Queue one record; returns its future (see `wait`)."""
        return self.producer().send(topic, key=key.encode(), value=value)

    def wait(self, futures: list[Any], timeout: float | None = None) -> None:
        """Flush, then raise KafkaError if any of these records was not stored."""
        timeout = timeout if timeout is not None else 2 * self.request_timeout_ms / 1000 + 5
        self.producer().flush(timeout=timeout)
        for future in futures:
            if not future.is_done:
                raise KafkaError(f"Kafka at {','.join(self.bootstrap)} did not store a record within {timeout:g} s")
            if future.failed():
                raise future.exception

    def send_job(self, message: JobMessage) -> Any:
        """Queue a job message on its queue's topic, keyed by asset; returns its future."""
        self.ensure_topics([message.queue])
        return self.send(self.config.job_topic(message.queue), message.key, encode_job(message))

    def publish(self, message: JobMessage) -> None:
        """Send a job message (asynchronously: `flush` waits for it)."""
        future = self.send_job(message)
        with self._lock:
            self._pending.append(future)

    def pending(self) -> int:
        """Job messages published here and not yet flushed (what is waiting in the topics is
        the consumer groups' lag, which Kafka's own tools report)."""
        with self._lock:
            return len(self._pending)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        self.wait(pending)

    # -- topics and groups ---------------------------------------------------------------------

    def admin(self) -> KafkaAdminClient:
        with self._lock:
            if self._admin is None:
                self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap,
                                               client_id=f"{self.client_id}/admin",
                                               request_timeout_ms=self.request_timeout_ms)
            return self._admin

    def ensure_topics(self, queues: list[str], events: bool = False) -> None:
        """Create the job topics (and the events topic) with our partition count, once."""
        wanted = [self.config.job_topic(q) for q in queues] + ([self.config.events_topic] if events else [])
        if all(t in self._topics for t in wanted):
            return
        with self._admin_lock:
            missing = [t for t in wanted if t not in self._topics]
            if not missing:
                return
            result = self.admin().create_topics(
                {t: {"num_partitions": self.config.partitions, "replication_factor": 1} for t in missing},
                raise_errors=False, wait_for_metadata=True,
            )
            for topic in result["topics"]:
                if topic["error_code"] not in (0, 36):  # 36: it exists already
                    raise KafkaError(f"cannot create topic {topic['name']}: {topic['error_message']}")
            self._topics.update(missing)

    def group_members(self, queue: str) -> set[str] | None:
        """Client ids in the queue's consumer group, when the group is settled (Stable or Empty);
        None while it rebalances or cannot be asked."""
        group = self.config.group(queue)
        with self._admin_lock:
            described = self.admin().describe_groups([group]).get(group)
        if not described or described.get("group_state") not in ("Stable", "Empty"):
            return None
        return {m["client_id"] for m in described["members"]}

    def delete_topics(self, topics: list[str]) -> None:
        with self._admin_lock:
            self.admin().delete_topics(topics, raise_errors=False)

    # -- consuming -----------------------------------------------------------------------------

    def _consumer(self, queue: str) -> KafkaConsumer:
        consumer = self._local.by_queue.get(queue)
        if consumer is None:
            self.ensure_topics([queue])
            consumer = KafkaConsumer(
                self.config.job_topic(queue), bootstrap_servers=self.bootstrap,
                group_id=self.config.group(queue),
                client_id=f"{self.client_id}/{threading.current_thread().name}",
                enable_auto_commit=False, auto_offset_reset="earliest",
                session_timeout_ms=self.config.session_timeout_ms,
                heartbeat_interval_ms=max(500, min(3000, self.config.session_timeout_ms // 3)),
                max_poll_interval_ms=self.max_poll_interval_ms, max_poll_records=1,
                request_timeout_ms=max(self.request_timeout_ms, self.config.session_timeout_ms + 5000),
            )
            self._local.by_queue[queue] = consumer
            with self._lock:
                self._consumers.append(consumer)
        return consumer

    def consume(self, queues: list[str], timeout: float) -> JobMessage | None:
        """The next message of these queues for this thread, waiting up to `timeout` seconds."""
        if self._closed or not queues:
            return None
        local = self._local
        now = time.monotonic()
        for (queue, tp), resume_at in list(local.paused.items()):
            if resume_at <= now:
                consumer = local.by_queue.get(queue)
                if consumer is not None and tp in consumer.assignment():
                    consumer.resume(tp)
                del local.paused[(queue, tp)]
        per_queue_ms = max(10, int(timeout * 1000 / len(queues)))
        for i in range(len(queues)):
            queue = queues[(local.turn + i) % len(queues)]
            consumer = self._consumer(queue)
            batch = consumer.poll(timeout_ms=per_queue_ms, max_records=1)
            for tp, records in batch.items():
                for record in records:
                    local.turn = (local.turn + i + 1) % len(queues)
                    receipt = Receipt(consumer, tp, record.offset)
                    try:
                        message = decode_job(record.value)
                    except (ValueError, KeyError, TypeError) as exc:
                        log.error("skipping an unreadable message at %s[%s]@%s: %s",
                                  tp.topic, tp.partition, record.offset, exc)
                        self._commit(receipt)
                        continue
                    return JobMessage(message.not_before, message.job_id, message.queue,
                                      message.key, receipt)
        return None

    def _commit(self, receipt: Receipt) -> None:
        try:
            receipt.consumer.commit({receipt.partition: OffsetAndMetadata(receipt.offset + 1, "", -1)})
        except KafkaError as exc:
            # Lost the partition in a rebalance (or Kafka is away): whoever has it now gets the
            # message again, and the claim makes that harmless.
            log.warning("could not commit %s[%s]@%s (%s); it will be delivered again",
                        receipt.partition.topic, receipt.partition.partition, receipt.offset, exc)

    def ack(self, message: JobMessage) -> None:
        if isinstance(message.receipt, Receipt):
            self._commit(message.receipt)

    def retry_later(self, message: JobMessage, delay: float) -> None:
        """Rewind the partition to this message and pause it for `delay` seconds (order kept)."""
        receipt = message.receipt
        if not isinstance(receipt, Receipt):
            return
        try:
            receipt.consumer.seek(receipt.partition, receipt.offset)
            receipt.consumer.pause(receipt.partition)
            self._local.paused[(message.queue, receipt.partition)] = time.monotonic() + delay
        except (KafkaError, AssertionError, ValueError) as exc:  # the partition moved away meanwhile
            log.warning("could not rewind %s[%s] (%s); the group delivers it again",
                        receipt.partition.topic, receipt.partition.partition, exc)

    # -- the end -------------------------------------------------------------------------------

    def close(self) -> None:
        """Leave the consumer groups (their partitions move at once), send what is queued."""
        self._closed = True
        with self._lock:
            consumers, self._consumers = self._consumers, []
            producer, self._producer = self._producer, None
            admin, self._admin = self._admin, None
        for consumer in consumers:
            try:
                consumer.close(autocommit=False)
            except Exception:
                log.warning("closing a consumer failed", exc_info=True)
        if producer is not None:
            try:
                producer.close(timeout=10)
            except Exception:
                log.warning("closing the producer failed", exc_info=True)
        if admin is not None:
            admin.close()
