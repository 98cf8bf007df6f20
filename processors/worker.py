"""The consumer loop: take due-job messages from the bus, claim, run in a child process, report.

The same loop serves every bus. Processors run in a pool of child processes (pebble) with a
per-job timeout: a processor that raises fails its attempt; one that hangs past the timeout is
killed and fails its attempt; one whose process dies (a segfault in a decoder) fails its attempt.
The worker itself keeps going: when a child dies before pebble has seen it take its task, pebble
declares the whole pool broken ("All workers expired") and every later `schedule` raises, so the
worker fails the attempts that pool held and starts a fresh pool. A worker that is itself killed
leaves jobs `running`; the rescuer fails those attempts once they are older than the timeout
plus a grace period (on Kafka the scheduler also rescues, sooner, the jobs of a worker that left
its consumer group).

A message is acknowledged once its job's outcome is appended (or the claim said the job is not
ours to run); if even the claim failed (the database was away) the bus delivers it again later.
`drain` is the graceful stop (SIGTERM): take no more work, let jobs in flight finish within a
grace period, release (fail the attempt of) any that do not, then the caller closes the bus.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import InvalidStateError
from contextlib import ExitStack, contextmanager
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as futures_wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pebble import ProcessExpired, ProcessPool

from pydantic import ValidationError

from commands.jobs import JobTicket
from domain.asset import OPTIONAL_TASKS
from domain.errors import DomainError
from infra.bus import Bus
from processors import registry
from processors.base import JobInput
from processors.decoder_limits import DecodeLimits

log = logging.getLogger("darkroom.worker")
RESCUE_GRACE_SECONDS = 30.0
REPUBLISH_DELAY_SECONDS = 5.0
RESULT_GRACE_SECONDS = 30.0  # beyond the job timeout, how long to wait for an answer pebble owes


# What `complete_job` raises when the domain refuses a processor's result (as opposed to the
# database being away, which the consumer loop retries).
REFUSALS: tuple[type[BaseException], ...] = (DomainError, ValidationError, ValueError, TypeError, KeyError)


class LostByPool(Exception):
    """The pool never answered for a task (see `Worker._run`)."""


def new_worker_id() -> str:
    """host:pid:random — also the prefix of this worker's Kafka client ids."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def derived_dir_for(derived_root: Path, asset_id: str) -> Path:
    return derived_root / asset_id[:2] / asset_id


class Worker:
    def __init__(
        self, services: Any, bus: Bus, queues: list[str], concurrency: int = 2,
        timeout_seconds: float = 300.0, processors: dict[str, str] | None = None,
        rescue: bool = True, worker_id: str | None = None, priority_of: Any = None,
    ) -> None:
        self.processors = dict(processors or registry.PROCESSORS)
        self.services = services
        self.bus = bus
        self.queues = queues
        self.concurrency = max(1, concurrency)
        self.timeout = timeout_seconds
        settings = services.settings
        # Per queue: its own timeout (a long transcode is not a hung thumbnail) and a cap on its
        # jobs at once, below the worker's concurrency (DARKROOM_QUEUE_<NAME>_...).
        self.timeouts = {q: settings.queue_timeout(q, timeout_seconds) for q in queues}
        self._queue_slots = {q: threading.BoundedSemaphore(max(1, min(self.concurrency, settings.queue_concurrency(q, self.concurrency))))
                             for q in queues}
        # Priority: optional work (ML, priority > 1) may hold all but one slot, so required work
        # (metadata, thumbnails) never waits behind a full house of it.
        self._optional_slots = threading.BoundedSemaphore(max(1, self.concurrency - 1))
        self.priority_of = priority_of or (lambda queue: 1)
        self.worker_id = worker_id or new_worker_id()
        self.derived_root = services.settings.data_dir / "derived"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool: ProcessPool | None = None
        self.rescue_enabled = rescue
        self.busy = 0
        self.taken = 0  # jobs this worker claimed since it started
        self._busy_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._running: dict[Any, ProcessPool] = {}  # future of each job in a pool now -> its pool
        self._releasing = False
        self._pool_lock = threading.Lock()
        self.pools_renewed = 0

    def _new_pool(self) -> ProcessPool:
        # forkserver: children do not inherit this process's threads and locks.
        return ProcessPool(
            max_workers=self.concurrency, max_tasks=500,
            context=multiprocessing.get_context("forkserver"),
        )

    def _renew_pool(self, broken: ProcessPool) -> None:
        """Replace `broken` (if it is still the current pool) with a fresh one, unless stopping.
        Its children are stopped; any of its futures pebble left unresolved (a task handed over
        as it broke) fail with BrokenProcessPool, so no job waits on a dead pool."""
        with self._pool_lock:
            if broken is not self._pool or self._stop.is_set():
                return
            log.error("worker %s: its process pool broke; starting a fresh one", self.worker_id)
            self._pool = self._new_pool()
            self.pools_renewed += 1
        broken.stop()
        broken.join(timeout=10)
        with self._busy_lock:
            stranded = [f for f, pool in self._running.items() if pool is broken]
        for future in stranded:
            self._fail_stranded(future)

    @staticmethod
    def _fail_stranded(future: Any) -> None:
        if not future.done():
            try:
                future.set_exception(BrokenProcessPool("the worker's process pool broke"))
            except InvalidStateError:  # resolved meanwhile
                pass

    def _schedule(self, queue: str, job: JobInput) -> tuple[ProcessPool, Any]:
        """Hand the job to the pool, renewing a broken pool first, and again if it broke between
        the check and the hand-over."""
        for _ in range(3):
            with self._pool_lock:
                pool = self._pool
            assert pool is not None
            if not pool.active:
                self._renew_pool(pool)
                continue
            try:
                future = pool.schedule(registry.run, args=(self.processors[queue], job, self.decode_limits(queue)),
                                       timeout=self.timeouts.get(queue, self.timeout))
            except RuntimeError:  # pebble: "Unexpected error within the Pool"
                if pool.active:
                    raise
                self._renew_pool(pool)
                continue
            with self._busy_lock:
                self._running[future] = pool
            with self._pool_lock:
                renewed_meanwhile = pool is not self._pool
            if renewed_meanwhile:  # renewed before this future was listed: strand it here
                self._fail_stranded(future)
            return pool, future
        raise RuntimeError(f"worker {self.worker_id} has no working process pool (stopping?)")

    def decode_limits(self, queue: str) -> DecodeLimits:
        """Pixels and memory one task may use. ML tasks get the pixel limit only: their runtimes
        map far more address space than they use (and a CUDA context more still)."""
        settings = self.services.settings
        memory = 0 if queue in OPTIONAL_TASKS else settings.decoder_memory_bytes
        return DecodeLimits(settings.max_image_pixels, memory)

    def start(self) -> None:
        self._pool = self._new_pool()
        # A bus with a consumer per queue (Kafka: one consumer group per queue) gets threads per
        # queue, each polling one consumer only, so every consumer keeps up with its group's
        # rebalances; the slots still bound the jobs running at once to `concurrency`.
        if getattr(self.bus, "consumer_per_queue", False):
            lanes = [([q], f"worker-{q}-{i}") for q in self.queues for i in range(self.concurrency)]
        else:
            lanes = [(self.queues, f"worker-{i}") for i in range(self.concurrency)]
        for queues, name in lanes:
            t = threading.Thread(target=self._consume, args=(queues,), name=name, daemon=True)
            t.start()
            self._threads.append(t)
        if self.rescue_enabled:
            t = threading.Thread(target=self._rescue_loop, name="rescuer", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Take no more work; jobs in flight are abandoned (the pool is stopped at once, not
        waited for) and the rescuer retries them after their timeout."""
        self._stop.set()
        with self._pool_lock:  # after this, _renew_pool sees the stop and starts nothing
            pool = self._pool
        if pool is not None:
            pool.stop()
            pool.join(timeout=10)
        for t in self._threads:
            t.join(timeout=10)

    def drain(self, grace_seconds: float) -> int:
        """Graceful stop: no new work; jobs in flight get `grace_seconds` to finish, then their
        attempts are released (failed as retryable, so another worker runs them). Returns how
        many were released."""
        self._stop.set()
        deadline = time.monotonic() + grace_seconds
        consumers = [t for t in self._threads if t.name.startswith("worker-")]
        for t in consumers:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._busy_lock:
            released, running = self.busy, list(self._running)
        if released:
            log.warning("releasing %s job(s) still running after %g s", released, grace_seconds)
            self._releasing = True
            for future in running:  # pebble kills the child: the attempt fails as released
                future.cancel()
            for t in consumers:  # each records its release and acknowledges the message
                t.join(timeout=30)
        self.stop()
        return released

    # -- the loop ------------------------------------------------------------------------------

    def _consume(self, queues: list[str]) -> None:
        while not self._stop.is_set():
            message = None
            try:
                message = self.bus.consume(queues, timeout=0.5)
                if message is None:
                    continue
                with self._gates(message.queue):  # claim only when a slot is free: a claimed job runs at once
                    if self._stop.is_set():  # stopping: leave it unacknowledged for the next owner
                        break
                    self.handle(message.job_id)
                self.bus.ack(message)
            except Exception:
                if message is None:  # the bus itself failed (Kafka away): do not spin
                    log.exception("worker %s cannot consume; trying again in 1 s", self.worker_id)
                    self._stop.wait(1.0)
                    continue
                # e.g. the database was down while claiming: the message comes back later
                log.exception("worker loop error; job %s comes back in %s s", message.job_id,
                              REPUBLISH_DELAY_SECONDS)
                try:
                    self.bus.retry_later(message, REPUBLISH_DELAY_SECONDS)
                except Exception:
                    log.exception("could not put job %s back; the relay or scheduler will", message.job_id)

    @contextmanager
    def _gates(self, queue: str) -> Iterator[None]:
        """The slots a job of `queue` needs: its queue's, the optional share if it is optional,
        then one of the worker's."""
        with ExitStack() as stack:
            if queue in self._queue_slots:
                stack.enter_context(self._queue_slots[queue])
            if self.priority_of(queue) > 1:
                stack.enter_context(self._optional_slots)
            stack.enter_context(self._slots)
            yield

    def handle(self, job_id: int) -> str | None:
        """Claim and run one job; returns its final state for this attempt, or None if the job
        was not ours to run (already taken, finished, or not due)."""
        app = self.services.app
        ticket = app.start_job(job_id, self.worker_id)
        if ticket is None:
            return None
        with self._busy_lock:
            self.busy += 1
            self.taken += 1
        try:
            return self._run(ticket)
        finally:
            with self._busy_lock:
                self.busy -= 1
            self.services.wake()

    def _run(self, ticket: JobTicket) -> str:
        app = self.services.app
        try:
            job = JobInput(
                job_id=ticket.job_id, asset_id=ticket.asset_id, asset_type=ticket.asset_type,
                mime_type=ticket.mime_type,
                original_path=self.services.storage.path_of(ticket.repository_id, ticket.storage_path),
                original_filename=ticket.original_filename,
                derived_dir=derived_dir_for(self.derived_root, ticket.asset_id),
                derived_root=self.derived_root,
            )
            pool, future = self._schedule(ticket.queue, job)
        except Exception as exc:  # claimed but not started: fail the attempt, never leave it running
            log.exception("job %s: could not hand %s to a child process", ticket.job_id, ticket.queue)
            return app.fail_job(ticket.job_id, ticket.attempt,
                                f"{ticket.queue} could not start: {type(exc).__name__}: {exc}") or "stale"
        try:
            # pebble enforces the timeout from the moment a child takes the task. The wait here is
            # bounded too, for an answer pebble never gives (a task no child acknowledged taking).
            timeout = self.timeouts.get(ticket.queue, self.timeout)
            if not futures_wait([future], timeout=timeout + RESULT_GRACE_SECONDS).done:
                future.cancel()
                raise LostByPool(f"{ticket.queue} gave no answer within {timeout + RESULT_GRACE_SECONDS:g} s "
                                 f"(lost by the process pool) on {ticket.original_filename}")
            result = future.result()
        except LostByPool as exc:
            error = str(exc)
        except FutureTimeout:  # pebble's timeout: the child was killed
            error = (f"{ticket.queue} timed out after {self.timeouts.get(ticket.queue, self.timeout):g} s "
                     f"on {ticket.original_filename}")
        except ProcessExpired as exc:
            error = f"{ticket.queue} process died (exit code {exc.exitcode}) on {ticket.original_filename}"
        except BrokenProcessPool as exc:  # a child died unseen; every task of that pool fails
            error = (f"{ticket.queue} process died or was lost with it ({exc}: the worker started a "
                     f"fresh process pool) on {ticket.original_filename}")
            self._renew_pool(pool)
        except Exception as exc:  # the processor raised: the attempt fails, the worker goes on
            error = f"{type(exc).__name__}: {exc}"
        else:
            try:
                done = app.complete_job(ticket.job_id, ticket.attempt, result)
            except REFUSALS as exc:
                # The domain refused the result (a value out of range, a malformed shape): that is
                # this attempt's failure, with its cause kept, not a job left running for the rescuer.
                error = f"{ticket.queue} result refused: {type(exc).__name__}: {str(exc)[:500]}"
            else:
                self._forget_if_purged(ticket.asset_id, job.derived_dir)
                return "completed" if done else "stale"
        finally:
            with self._busy_lock:
                self._running.pop(future, None)
        if self._releasing:  # cancelled by `drain`: not the file's fault
            error = f"released: worker {self.worker_id} shut down before {ticket.queue} finished"
        log.info("job %s (%s) attempt %s failed: %s", ticket.job_id, ticket.queue, ticket.attempt, error)
        return app.fail_job(ticket.job_id, ticket.attempt, error) or "stale"

    def _forget_if_purged(self, asset_id: str, derived_dir: Any) -> None:
        """A job that ran while its asset was purged may have written derived files after the
        purge removed them: remove them again (the purge ledger knows the asset)."""
        from projections.trash import PurgeLedger

        try:
            if PurgeLedger(self.services.db).get(asset_id) is not None:
                shutil.rmtree(derived_dir, ignore_errors=True)
        except Exception:  # the read model away: the files stay until the asset is looked at again
            log.warning("job of asset %s: could not check for a purge", asset_id, exc_info=True)

    # -- rescue --------------------------------------------------------------------------------

    def rescue(self) -> int:
        """Fail the attempts of jobs left `running` past the timeout plus grace (lost workers)."""
        return rescue_lost_jobs(self.services, max([self.timeout, *self.timeouts.values()]))

    def _rescue_loop(self) -> None:
        while not self._stop.wait(min(30.0, max(1.0, self.timeout / 4))):
            try:
                if self.rescue():
                    self.services.wake()
            except Exception:
                log.exception("rescue failed; will try again")


def rescue_lost_jobs(services: Any, timeout_seconds: float) -> int:
    """Fail the attempts of jobs left `running` past the timeout plus grace: their worker is lost
    (a live one kills its processor at the timeout). They are retried, or discarded when spent."""
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=timeout_seconds + RESCUE_GRACE_SECONDS)
    rescued = 0
    for job_id in services.jobs.running_since_before(cutoff):
        if services.app.rescue_job(
            job_id, cutoff, f"no result within {timeout_seconds + RESCUE_GRACE_SECONDS:g} s: worker lost"
        ):
            rescued += 1
    return rescued
