"""The composition root: builds every adapter from settings and wires them together."""

from __future__ import annotations

import time
from datetime import timedelta
from dataclasses import dataclass, field

from typing import Any

from commands import Darkroom
from commands.jobs import JobPolicy
from infra.database import Database
from infra.eventstore import eventstore_env, prepared_database
from infra.passwords import Passwords
from infra.personal_data import KeyStore
from infra.settings import Settings
from infra.storage import Storage
from infra.tokens import AccessTokens
from projections.albums import Albums
from projections.catalog import Catalog
from projections.jobs import Jobs
from projections.registry import PROJECTIONS
from projections.runner import ProjectionDaemon, ProjectionRunner


@dataclass
class Services:
    settings: Settings
    app: Darkroom
    db: Database
    storage: Storage
    passwords: Passwords
    tokens: AccessTokens
    runners: dict[str, ProjectionRunner]
    catalog: Catalog
    albums: Albums
    jobs: Jobs = field(default=None)  # type: ignore[assignment]
    daemon: ProjectionDaemon | None = None
    bus: Any = None
    relay: Any = None
    worker: Any = None
    search: Any = None  # infra.search.SearchService: filters, filename and semantic search
    embedder: Any = None  # infra.embedding.Embedder, or None: semantic search answers 503
    scheduler: Any = None  # Kafka: publishes due retries, rescues lost workers' jobs
    keys: Any = None  # infra.personal_data.KeyStore: the users' keys for personal fields
    closed: bool = field(default=False)

    def wake(self) -> None:
        """Something was written: let the projection daemon and the relay look now."""
        if self.daemon is not None:
            self.daemon.wake()
        if self.relay is not None:
            self.relay.wake()

    def start_processing(self, queues: list[str] | None = None, processors: dict[str, str] | None = None) -> None:
        """Embedded processing: the in-process bus, the relay feeding it, and a worker."""
        from infra.bus import InProcessBus
        from processors.registry import PROCESSORS, processors_for
        from processors.relay import JobRelay
        from processors.worker import Worker

        for runner in self.runners.values():
            runner.catch_up()
        self.bus = InProcessBus()
        self.relay = JobRelay(self.app, self.jobs, self.bus)
        self.relay.start()
        self.worker = Worker(
            self, self.bus, queues or list(PROCESSORS), self.settings.worker_concurrency,
            self.settings.job_timeout_seconds, processors or processors_for(self.settings),
        )
        self.worker.start()

    def start_outbox(self) -> None:
        """Kafka (`darkroom serve` with DARKROOM_BUS=kafka://...): the outbox relay and the
        scheduler; the workers are `darkroom worker` processes."""
        import os
        import socket

        from infra.bus import open_bus
        from processors.relay import OutboxRelay
        from processors.scheduler import JobScheduler

        self.bus = open_bus(self.settings, client_id=f"darkroom-serve:{socket.gethostname()}:{os.getpid()}")
        self.relay = OutboxRelay(self.app, self.db, self.bus, batch_size=self.settings.projection_batch_size)
        self.relay.start()
        self.scheduler = JobScheduler(self, self.bus)
        self.scheduler.start()

    def start_worker(self, queues: list[str], concurrency: int, processors: dict[str, str] | None = None) -> Any:
        """`darkroom worker`: consume these queues from the configured bus (Kafka)."""
        from infra.bus import open_bus
        from processors.worker import Worker, new_worker_id

        worker_id = new_worker_id()
        self.bus = open_bus(self.settings, client_id=worker_id)
        self.worker = Worker(self, self.bus, queues, concurrency, self.settings.job_timeout_seconds,
                             processors, rescue=False, worker_id=worker_id)
        self.worker.start()
        return self.worker

    def wait_for(self, position: int, timeout: float | None = None) -> bool:
        """Read your writes: block until every read model has applied `position`.

        With projections in this process, catch them up here and now; otherwise poll their
        positions (another process runs them) until `timeout`. Returns False on time-out.
        """
        if position <= 0:
            return True
        if self.settings.run_projections:
            for runner in self.runners.values():
                for _ in range(100):  # catch_up may stop short if another process interleaves
                    if runner.applied >= position or runner.position() >= position:
                        break
                    runner.catch_up(upto=position)
            if self.search is not None:  # Elasticsearch mirrors the search tables; down = degraded
                self.search.catch_up_quietly()
            return True
        deadline = time.monotonic() + (timeout or self.settings.read_wait_timeout_seconds)
        while time.monotonic() < deadline:
            if all(r.position() >= position for r in self.runners.values()):
                return True
            time.sleep(0.01)
        return False

    def start_daemon(self) -> None:
        self.daemon = ProjectionDaemon(self.runners.values())
        self.daemon.start()
        if self.search is not None:  # its own thread: a slow Elasticsearch never holds up the read models
            self.search.start_following()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.worker is not None:
            self.worker.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.relay is not None:
            self.relay.stop()
        if self.bus is not None:
            self.bus.close()
        if self.daemon is not None:
            self.daemon.stop()
        if self.search is not None:
            self.search.close()
        if self.embedder is not None and hasattr(self.embedder, "close"):
            self.embedder.close()  # the CLIP model of semantic search: free its (GPU) memory
        self.app.close()
        self.db.close()
        if self.keys is not None:
            self.keys.db.close()


def bootstrap(settings: Settings) -> Services:
    settings.ensure_data_dir()
    with prepared_database(settings):
        app = Darkroom(env=eventstore_env(settings))
        db = Database(settings)
        runners = {
            name: ProjectionRunner(app, db, cls(), batch_size=settings.projection_batch_size)
            for name, cls in PROJECTIONS.items()
        }
        # Its own connections: a replay opens sealed fields while it holds the read models' write
        # transaction on this thread's connection.
        keys = KeyStore(Database(settings))
        keys.ensure_table()
        app.mapper.keys = keys  # type: ignore[attr-defined]
        for runner in runners.values():
            runner.ensure_tables()
    app.refresh_token_ttl = timedelta(seconds=settings.refresh_token_ttl_seconds)
    app.job_policy = JobPolicy(
        max_attempts=settings.job_max_attempts,
        backoff_base_seconds=settings.job_backoff_base_seconds,
    )
    from processors.ml import enabled_tasks

    app.enrichment_tasks = enabled_tasks(settings)  # ML tasks with a model: uploads enqueue them
    from infra.embedding import load_embedder
    from infra.search import SearchService

    catalog = Catalog(db)
    embedder = load_embedder(settings)
    return Services(
        settings=settings,
        app=app,
        db=db,
        storage=Storage(settings),
        passwords=Passwords(settings),
        tokens=AccessTokens(settings),
        runners=runners,
        catalog=catalog,
        albums=Albums(db),
        jobs=Jobs(db),
        search=SearchService(settings, db, catalog, embedder),
        embedder=embedder,
        keys=keys,
    )
