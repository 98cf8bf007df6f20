"""The composition root: builds every adapter from settings and wires them together."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from dataclasses import dataclass, field

from typing import Any

from commands import Darkroom
from commands.jobs import JobPolicy
from infra.database import Database
from infra.eventstore import eventstore_env, harden_event_store, prepared_database
from infra.idempotency import IdempotencyStore
from infra.passwords import Passwords
from infra.rate_limits import RateLimits
from infra.personal_data import KeyStore
from infra.settings import Settings
from infra.storage import Storage
from infra.tokens import AccessTokens
from projections.albums import Albums
from projections.catalog import Catalog
from projections.jobs import Jobs
from projections.registry import PROJECTIONS
from projections.users import Users
from projections.runner import ProjectionDaemon, ProjectionRunner


log = logging.getLogger("darkroom.services")


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
    trash_sweeper: Any = None  # processors.purge.TrashSweeper: expired trash, cut-short purges
    library_scanner: Any = None  # processors.library_scan.LibraryScanner: the scan_library queue
    library_watcher: Any = None  # processors.library_watch.LibraryWatcher: libraries with watch on
    users: Any = None  # projections.users.Users: the directory, auth state, quotas
    sweeper: Any = None  # processors.storage_check.Sweeper: staging and orphaned originals
    idempotency: Any = None  # infra.idempotency.IdempotencyStore: answers kept per Idempotency-Key
    rate_limits: Any = None  # infra.rate_limits.RateLimits: login, register, refresh, password
    # Projections that failed while a request caught them up (name -> error kind), for health.
    projection_errors: dict[str, str] = field(default_factory=dict)
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
        from domain.asset import task_priority

        self.bus = InProcessBus(priority_of=task_priority)
        self.relay = JobRelay(self.app, self.jobs, self.bus)
        self.relay.start()
        self.worker = Worker(
            self, self.bus, queues or list(PROCESSORS), self.settings.worker_concurrency,
            self.settings.job_timeout_seconds, processors or processors_for(self.settings),
            priority_of=task_priority,
        )
        self.worker.start()
        self.start_libraries()

    def start_libraries(self) -> None:
        """External libraries: their scans (from the bus) and the file-system watcher."""
        from processors.library_scan import LibraryScanner
        from processors.library_watch import LibraryWatcher

        self.library_scanner = LibraryScanner(self, self.bus)
        self.library_scanner.start()
        self.library_watcher = LibraryWatcher(self)
        self.library_watcher.start()

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
        self.start_libraries()  # scans run in serve, one replica per message (the queue's group)

    def start_worker(self, queues: list[str], concurrency: int, processors: dict[str, str] | None = None) -> Any:
        """`darkroom worker`: consume these queues from the configured bus (Kafka)."""
        from infra.bus import open_bus
        from processors.worker import Worker, new_worker_id

        worker_id = new_worker_id()
        self.bus = open_bus(self.settings, client_id=worker_id)
        from domain.asset import task_priority

        self.worker = Worker(self, self.bus, queues, concurrency, self.settings.job_timeout_seconds,
                             processors, rescue=False, worker_id=worker_id, priority_of=task_priority)
        self.worker.start()
        return self.worker

    def wait_for(self, position: int, timeout: float | None = None) -> bool:
        """Read your writes: block until every read model has applied `position`, at most
        `timeout` (the read-wait setting). Returns False when one did not get there.

        With projections in this process, catch them up here and now; otherwise poll their
        positions (another process runs them). A projection that fails is recorded for health
        (`projection_errors`) and skipped: the command behind `position` has committed, and its
        answer must not turn into a failure that makes the client retry it.
        """
        if position <= 0:
            return True
        deadline = time.monotonic() + (timeout or self.settings.read_wait_timeout_seconds)
        reached = True
        if self.settings.run_projections:
            for name, runner in self.runners.items():
                try:
                    # catch_up may stop short if another process interleaves
                    while runner.applied < position and runner.position() < position:
                        if time.monotonic() >= deadline:
                            reached = False
                            break
                        runner.catch_up(upto=position)
                    self.projection_errors.pop(name, None)
                except Exception as exc:
                    log.warning("projection %s failed while catching up to %s: %r", name, position, exc)
                    self.projection_errors[name] = type(exc).__name__
                    reached = False
            if self.search is not None:  # Elasticsearch mirrors the search tables; down = degraded
                self.search.catch_up_quietly()
            return reached
        while time.monotonic() < deadline:
            if all(r.position() >= position for r in self.runners.values()):
                return True
            time.sleep(0.01)
        return False

    def start_daemon(self) -> None:
        self.daemon = ProjectionDaemon(self.runners.values())
        self.daemon.start()
        if self.settings.sweep_interval_seconds > 0:
            from processors.storage_check import Sweeper

            self.sweeper = Sweeper(self.app, self.storage, self.settings.sweep_grace_seconds,
                                   self.settings.sweep_interval_seconds, self.settings.fsck_interval_seconds)
            self.sweeper.start()
        if self.search is not None:  # its own thread: a slow Elasticsearch never holds up the read models
            self.search.start_following()
        from processors.purge import TrashSweeper

        self.trash_sweeper = TrashSweeper(self)
        self.trash_sweeper.start()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for part in (self.library_watcher, self.library_scanner):
            if part is not None:
                part.stop()
        if self.worker is not None:
            self.worker.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.trash_sweeper is not None:
            self.trash_sweeper.stop()
        if self.relay is not None:
            self.relay.stop()
        if self.bus is not None:
            self.bus.close()
        if self.daemon is not None:
            self.daemon.stop()
        if self.sweeper is not None:
            self.sweeper.stop()
        if self.search is not None:
            self.search.close()
        if self.embedder is not None and hasattr(self.embedder, "close"):
            self.embedder.close()  # the CLIP model of semantic search: free its (GPU) memory
        self.passwords.close()
        self.app.close()
        self.db.close()
        if self.keys is not None:
            self.keys.db.close()


def bootstrap(settings: Settings) -> Services:
    settings.ensure_data_dir()
    with prepared_database(settings):
        app = Darkroom(env=eventstore_env(settings))
        harden_event_store(app, settings)
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
    from infra.geocoding import ReverseGeocoder

    app.geocoder = ReverseGeocoder()  # offline; loads its data on first use
    from infra.embedding import load_embedder
    from infra.search import SearchService

    from projections.libraries import Libraries

    catalog = Catalog(db)
    embedder = load_embedder(settings)
    storage = Storage(settings)
    storage.library_folder = Libraries(db).folder  # type: ignore[method-assign]
    return Services(
        settings=settings,
        app=app,
        db=db,
        storage=storage,
        passwords=Passwords(settings),
        tokens=AccessTokens(settings),
        runners=runners,
        catalog=catalog,
        albums=Albums(db),
        jobs=Jobs(db),
        search=SearchService(settings, db, catalog, embedder),
        embedder=embedder,
        rate_limits=RateLimits(settings),
        users=Users(db),
        idempotency=IdempotencyStore(db),
        keys=keys,
    )
