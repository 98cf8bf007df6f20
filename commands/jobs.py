"""Job commands: enqueue with an upload, claim, complete, fail (retry or discard), rescue, reprocess.

Every job transition is saved together with the asset's record of it (`TaskStateChanged`), and a
completion together with its result on the asset, so the asset's status never disagrees with its
jobs. Messages on the bus are only hints: these commands decide, through optimistic concurrency
on the Job aggregate, so a duplicate or stale message changes nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from commands.job_ids import JobIds
from commands.retry import retry_on_conflict
from domain.asset import OPTIONAL_TASKS, Asset, check_vector, task_priority, tasks_for
from domain.errors import InvalidInput
from domain.job import Job, job_id_to_uuid

if TYPE_CHECKING:
    from commands.application import Darkroom


@dataclass
class JobPolicy:
    """Attempts and backoff; settings fill it in at start-up."""

    max_attempts: int = 3
    backoff_base_seconds: float = 2.0
    backoff_cap_seconds: float = 600.0

    def retry_at(self, now: datetime, attempt: int) -> datetime:
        # Exponential backoff with full jitter around the nominal delay (0.5x to 1.5x).
        delay = min(self.backoff_cap_seconds, self.backoff_base_seconds * 2 ** max(0, attempt - 1))
        return now + timedelta(seconds=delay * (0.5 + random.random()))


@dataclass(frozen=True)
class JobTicket:
    """A claimed job: what a worker needs to run it."""

    job_id: int
    kind: str
    queue: str
    attempt: int
    asset_id: str
    owner_id: int
    asset_type: str
    mime_type: str
    repository_id: str
    storage_path: str
    original_filename: str


class JobCommands:
    job_policy = JobPolicy()
    # The ML tasks with a model configured (bootstrap sets them from the settings): uploads
    # enqueue these; the others are off.
    enrichment_tasks: frozenset[str] = frozenset()
    # No shared sequence on the upload path (see commands.job_ids).
    job_ids = JobIds()

    def _new_jobs(self: Darkroom, asset: Asset, queues: tuple[str, ...] | list[str]) -> list[Job]:
        now = self.now()
        jobs = []
        for queue, job_id in zip(queues, self.job_ids.next_ids(len(queues))):
            job = Job(
                job_id=job_id, kind=queue, queue=queue, asset_id=str(asset.id),
                owner_id=asset.owner_id,
                max_attempts=self.job_policy.max_attempts,
                priority=task_priority(queue), created_at=now, scheduled_at=now,
            )
            asset.record_task(queue=queue, job_id=job.job_id, state=job.state)
            jobs.append(job)
        return jobs

    def load_job(self: Darkroom, job_id: int) -> Job | None:
        try:
            return self.repository.get(job_id_to_uuid(job_id))
        except AggregateNotFoundError:
            return None

    def start_job(self: Darkroom, job_id: int, worker: str) -> JobTicket | None:
        """Claim a due job for `worker`; None when it is not ours to run (taken, final, not due)."""

        def attempt() -> JobTicket | None:
            job = self.load_job(job_id)
            now = self.now()
            if job is None or not job.is_due(now):
                return None
            asset: Asset = self.repository.get(UUID(job.asset_id))
            if asset.is_deleted or asset.tasks.get(job.queue, {}).get("job_id") != job.job_id:
                job.cancel(at=now)  # the asset is gone, or a reprocess superseded this job
                self.save(job)
                return None
            job.start(worker=worker, at=now)
            asset.record_task(queue=job.queue, job_id=job.job_id, state=job.state)
            self.save(job, asset)
            return JobTicket(
                job.job_id, job.kind, job.queue, job.attempt, job.asset_id, job.owner_id,
                asset.asset_type, asset.mime_type, asset.repository_id, asset.storage_path,
                asset.original_filename,
            )

        return retry_on_conflict(attempt)

    def complete_job(self: Darkroom, job_id: int, attempt_no: int, result: dict[str, Any]) -> bool:
        """Record a successful attempt and its result. False when the job was not running this
        attempt any more (a duplicate or a late worker): then nothing changes."""

        def attempt() -> bool:
            job = self.load_job(job_id)
            if job is None or job.state != "running" or job.attempt != attempt_no:
                return False
            asset: Asset = self.repository.get(UUID(job.asset_id))
            job.complete(at=self.now())
            _record_result(asset, job.queue, result)
            extra = []
            if job.queue == "metadata_asset" and not getattr(asset, "is_purged", False):
                self.locate(asset)
                extra = self.same_shot_changes(asset)  # a RAW and its JPEG stack
            asset.record_task(queue=job.queue, job_id=job.job_id, state=job.state)
            self.save(job, asset, *extra)
            return True

        return retry_on_conflict(attempt)

    def fail_job(self: Darkroom, job_id: int, attempt_no: int, error: str) -> str | None:
        """Record a failed attempt; returns the job's new state (retryable or discarded)."""

        def attempt() -> str | None:
            job = self.load_job(job_id)
            if job is None or job.state != "running" or job.attempt != attempt_no:
                return None
            now = self.now()
            job.fail(at=now, error=error[:4000], retry_at=self.job_policy.retry_at(now, job.attempt))
            asset: Asset = self.repository.get(UUID(job.asset_id))
            asset.record_task(queue=job.queue, job_id=job.job_id, state=job.state)
            self.save(job, asset)
            return job.state

        return retry_on_conflict(attempt)

    def rescue_job(self: Darkroom, job_id: int, running_since_before: datetime, reason: str) -> str | None:
        """A job still `running` since before the cut-off lost its worker: count the attempt as
        failed, so it is retried (or discarded), never left running."""
        job = self.load_job(job_id)
        if job is None or job.state != "running" or job.attempted_at is None:
            return None
        if job.attempted_at >= running_since_before:
            return None
        return self.fail_job(job_id, job.attempt, reason)

    def reprocess(
        self: Darkroom, user_id: int, asset_id: UUID, tasks: list[str] | None, force_full_retry: bool
    ) -> tuple[list[str], list[str], int]:
        """Queue the asset's tasks again: the named ones, or every failed one, or (force) all.
        Returns (queued tasks, tasks that had failed, position)."""

        def attempt() -> tuple[list[str], list[str], int]:
            asset = self.get_asset_for(user_id, asset_id)
            asset.check_not_deleted()
            # Any ML task of the type may be asked for by name (one whose model is off runs and
            # records that it was skipped); a full retry takes the ones that are on.
            applicable = tasks_for(asset.asset_type, OPTIONAL_TASKS)
            failed = [q for q, t in asset.tasks.items() if t["state"] == "discarded"]
            if tasks:
                unknown = [t for t in tasks if t not in applicable]
                if unknown:
                    raise InvalidInput(
                        f"task(s) {', '.join(unknown)} do not apply to a {asset.asset_type}; "
                        f"use {', '.join(applicable)}", "tasks",
                    )
                chosen = list(dict.fromkeys(tasks))
            elif force_full_retry:
                chosen = list(tasks_for(asset.asset_type, self.enrichment_tasks))
            else:
                chosen = failed
            if not chosen:
                return [], failed, 0
            now = self.now()
            superseded = []
            for queue in chosen:
                current = asset.tasks.get(queue)
                if current is not None:
                    old = self.load_job(current["job_id"])
                    if old is not None and not old.is_final:
                        old.cancel(at=now)
                        superseded.append(old)
            jobs = self._new_jobs(asset, chosen)
            return chosen, failed, self.save_and_position(asset, *superseded, *jobs)

        return retry_on_conflict(attempt)


def _record_result(asset: Asset, queue: str, result: dict[str, Any]) -> None:
    if getattr(asset, "is_purged", False):
        return  # purged while the job ran: nothing of it may come back (the worker removes its files)
    if queue in OPTIONAL_TASKS and asset.is_deleted:
        # A job that was running when its asset was deleted: its faces, text or vector would
        # bring the asset back into people and search read models.
        return
    if queue == "metadata_asset":
        metadata = result.get("specific_metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidInput("specific_metadata must be an object", "specific_metadata")
        for key, value in metadata.items():  # flat values only: nesting breaks the read models
            if value is not None and not isinstance(value, (str, bool, int, float)):
                raise InvalidInput(f"specific_metadata.{key} must be text, a number, a boolean or null",
                                   f"specific_metadata.{key}")
        problems = result.get("problems") or []
        if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
            raise InvalidInput("problems must be a list of text", "problems")
        if problems or getattr(asset, "problems", None):  # new damage, or a re-run that found none
            asset.record_damage(task=queue, problems=[p[:1000] for p in problems[:20]])
        asset.record_metadata(
            width=result.get("width"), height=result.get("height"), duration=result.get("duration"),
            taken_time=result.get("taken_time"), taken_time_local=result.get("taken_time_local"),
            specific_metadata=result.get("specific_metadata") or {},
        )
    elif queue == "thumbnail_asset":
        if not isinstance(result.get("thumbnails") or {}, dict):
            raise InvalidInput("thumbnails must be an object", "thumbnails")
        asset.record_thumbnails(thumbnails=result.get("thumbnails") or {})
        fingerprint = result.get("fingerprint")
        if isinstance(fingerprint, dict) and isinstance(fingerprint.get("grey16"), str) \
                and len(fingerprint["grey16"]) == 512:
            asset.record_fingerprint(algorithm=str(fingerprint.get("algorithm")), grey16=fingerprint["grey16"])
    elif queue in OPTIONAL_TASKS and "skipped" in result:
        asset.record_enrichment_skipped(task=queue, reason=str(result["skipped"]))
    elif queue == "process_clip":
        asset.record_embedding(model=str(result["model"]), vector=check_vector(result["vector"]))
    elif queue == "process_species":
        asset.record_species(model=str(result["model"]), predictions=[
            {**p, "label": str(p["label"]), "score": _score(p["score"])} for p in result["predictions"]
        ])
    elif queue == "process_ocr":
        lines = [{**line, "text": str(line["text"]), "box": _box(line["box"]),
                  "confidence": _score(line["confidence"])} for line in result["lines"]]
        asset.record_text(model=str(result["model"]), text=str(result["text"]), lines=lines)
    elif queue == "process_face":
        faces = [{"box": _box(face["box"]), "confidence": _score(face["confidence"]),
                  "embedding": check_vector(face["embedding"]),
                  **({"crop": _derived_path(face["crop"])} if face.get("crop") else {})}
                 for face in result["faces"]]
        asset.record_faces(model=str(result["model"]), faces=faces)
    elif queue == "process_caption":
        asset.record_caption(model=str(result["model"]), caption=str(result["caption"]))
    elif queue == "process_labels":
        asset.record_labels(model=str(result["model"]), labels=[
            {"label": str(t["label"])[:200], "score": _score(t["score"])} for t in result["labels"][:20]])
    elif queue == "transcode_asset":
        for kind in ("web_video", "web_audio"):
            if kind in result:
                asset.record_web_version(kind=kind, info=result[kind])
                return
        asset.record_web_version(kind="skipped", info={"reason": str(result.get("skipped", ""))})


def _score(value: Any) -> float:
    """A probability or confidence from a processor: a finite number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidInput(f"a score is a number from 0 to 1, got {value!r}", "score")
    return float(value)


def _derived_path(value: Any) -> str:
    """A derived file named by a processor: relative, inside the derived root."""
    text = str(value)
    if text.startswith("/") or ".." in text.split("/") or "\x00" in text or len(text) > 500:
        raise InvalidInput(f"a derived file path is relative and inside the derived root, got {text!r}", "crop")
    return text


def _box(value: Any) -> list[float]:
    """[x, y, w, h] as fractions of the image."""
    box = check_vector(value)
    if len(box) != 4 or any(not -0.01 <= v <= 1.01 for v in box):
        raise InvalidInput(f"a box is [x, y, w, h] as fractions of the image, got {value!r}", "box")
    return box
