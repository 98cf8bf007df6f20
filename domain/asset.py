"""The `Asset` aggregate: one uploaded file and everything known about it."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidInput, NotFound
from domain.text import check_text


class AssetType(str, Enum):
    PHOTO = "PHOTO"
    VIDEO = "VIDEO"
    AUDIO = "AUDIO"
    DOCUMENT = "DOCUMENT"


# Fields a client may set through `PUT /assets/{id}`, per type (API.md, specific_metadata).
SPECIFIC_METADATA_FIELDS: dict[str, frozenset[str]] = {
    "PHOTO": frozenset(
        "taken_time camera_model camera_make lens_model exposure_time f_number focal_length "
        "iso_speed exposure dimensions resolution gps_latitude gps_longitude is_raw orientation "
        "description".split()
    ),
    "VIDEO": frozenset(
        "recorded_time camera_model codec bitrate frame_rate gps_latitude gps_longitude rotation "
        "description".split()
    ),
    "AUDIO": frozenset(
        "title artist album genre year codec bitrate sample_rate channels description".split()
    ),
    "DOCUMENT": frozenset("page_count title author description".split()),
}

MAX_DESCRIPTION_LENGTH = 10_000

# Processing queues: the required ones decide `failed`; optional ones (ML) only `warning`.
REQUIRED_TASKS = ("metadata_asset", "thumbnail_asset", "transcode_asset")
OPTIONAL_TASKS = ("process_clip", "process_species", "process_ocr", "process_face", "process_caption",
                  "process_labels")


def task_priority(queue: str) -> int:
    """1 for the tasks an asset needs (metadata, thumbnails, transcodes), 2 for optional ones."""
    return 2 if queue in OPTIONAL_TASKS else 1


TASKS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "PHOTO": ("metadata_asset", "thumbnail_asset"),
    "VIDEO": ("metadata_asset", "thumbnail_asset", "transcode_asset"),
    "AUDIO": ("metadata_asset", "thumbnail_asset", "transcode_asset"),
    "DOCUMENT": ("metadata_asset", "thumbnail_asset"),
}
# The ML tasks that look at each type (OCR, faces and species need one still picture; a video
# gets an embedding and a caption from sampled frames; a PDF its text). Uploads enqueue those with
# a model.
ML_TASKS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "PHOTO": OPTIONAL_TASKS,
    "VIDEO": ("process_clip", "process_caption"),
    "AUDIO": (),
    "DOCUMENT": ("process_ocr",),  # PDFs: the text layer, or OCR of scanned pages
}
_FINAL = {"completed", "cancelled", "discarded"}


def tasks_for(asset_type: str, enabled: frozenset[str] | set[str] | tuple[str, ...] = ()) -> tuple[str, ...]:
    """The tasks of an asset of this type: the required ones, and the ML ones among `enabled`."""
    return TASKS_BY_TYPE[asset_type] + tuple(t for t in ML_TASKS_BY_TYPE[asset_type] if t in enabled)


def status_of(tasks: dict[str, dict[str, Any]], problems: list[str] | None = None) -> dict[str, Any]:
    """`{state, tasks}` of API.md from each task's latest job state; `problems` (damage a decoder
    found in the original) make an otherwise complete asset a `warning`, and are listed."""
    states = {queue: t["state"] for queue, t in tasks.items()}
    if any(s not in _FINAL for s in states.values()):
        state = "processing"
    elif any(s == "discarded" and q not in OPTIONAL_TASKS for q, s in states.items()):
        state = "failed"
    elif any(s == "discarded" for s in states.values()):
        state = "warning"
    else:
        state = "warning" if problems else "complete"
    status: dict[str, Any] = {"state": state, "tasks": states}
    if problems:
        status["problems"] = list(problems)
    return status


MAX_METADATA_TEXT = 1000


def check_metadata_value(key: str, value: Any) -> None:
    """Metadata values are scalars: text, numbers, booleans or null (no nesting to replay)."""
    field = f"specific_metadata.{key}"
    if key == "description":
        if value is not None:
            check_text(value, field, MAX_DESCRIPTION_LENGTH)
    elif isinstance(value, str):
        check_text(value, field, MAX_METADATA_TEXT)
    elif value is not None and not isinstance(value, (bool, int, float)):
        raise InvalidInput(f"{field} must be text, a number, a boolean or null", field)
    elif isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(f"{field} must be a finite number", field)


def check_rating(rating: Any) -> int:
    if isinstance(rating, bool) or not isinstance(rating, int) or not 0 <= rating <= 5:
        raise InvalidInput(f"rating must be an integer from 0 to 5, got {rating!r}", "rating")
    return rating


MAX_EMBEDDING_DIMENSION = 4096


def check_vector(vector: Any) -> list[float]:
    """An embedding: 1..4096 finite numbers, stored as floats."""
    if not isinstance(vector, (list, tuple)) or not 0 < len(vector) <= MAX_EMBEDDING_DIMENSION:
        raise InvalidInput(f"an embedding is a list of 1 to {MAX_EMBEDDING_DIMENSION} numbers", "vector")
    out = []
    for x in vector:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x or x in (float("inf"), float("-inf")):
            raise InvalidInput(f"an embedding holds finite numbers only, got {x!r}", "vector")
        out.append(float(x))
    return out


class Asset(Aggregate):
    """A file uploaded by a user: its identity, its content and what users said about it."""

    @event("Uploaded")
    def __init__(
        self,
        owner_id: int,
        original_filename: str,
        file_size: int,
        mime_type: str,
        content_hash: str,
        asset_type: str,
        repository_id: str,
        storage_path: str,
        upload_time: datetime,
    ) -> None:
        self.owner_id = owner_id
        self.original_filename = original_filename
        self.file_size = file_size
        self.mime_type = mime_type
        self.content_hash = content_hash
        self.asset_type = asset_type
        self.repository_id = repository_id
        self.storage_path = storage_path
        self.upload_time = upload_time
        self.rating = 0
        self.liked = False
        self.description: str | None = None
        self.specific_metadata: dict[str, Any] = {}
        self.is_deleted = False
        self.deleted_at: datetime | None = None
        self.trashed_from: list[dict[str, int]] = []  # albums left when trashed
        self.is_purged = False
        self.files_removed = False
        self.latitude: float | None = None
        self.longitude: float | None = None
        self.place: dict[str, Any] | None = None
        self.stack_id: UUID | None = None
        self.tasks: dict[str, dict[str, Any]] = {}
        self.extracted: dict[str, Any] = {}
        self.thumbnails: dict[str, Any] = {}
        self.web: dict[str, Any] = {}
        self.embedding: dict[str, Any] = {}
        self.enrichments: dict[str, Any] = {}  # species, ocr, faces, caption: the latest result of each

    # -- rules ---------------------------------------------------------------------------------

    def check_owner(self, user_id: int) -> None:
        """Another user's asset, or a purged one, does not exist for this user."""
        if self.owner_id != user_id:
            raise NotFound(f"asset {self.id} not found")
        self.check_not_purged()

    def check_not_deleted(self) -> None:
        if self.is_deleted:
            raise Conflict(f"asset {self.id} is deleted")

    def check_not_purged(self) -> None:
        """A purged asset no longer exists for anyone."""
        if getattr(self, "is_purged", False):
            raise NotFound(f"asset {self.id} not found")

    # -- commands ------------------------------------------------------------------------------

    def rate(self, rating: int) -> None:
        self.check_not_deleted()
        rating = check_rating(rating)
        if rating != self.rating:
            self._change_rating(rating=rating)

    @event("RatingChanged")
    def _change_rating(self, rating: int) -> None:
        """The owner gave the asset a rating from 0 (none) to 5."""
        self.rating = rating

    def like(self, liked: bool) -> None:
        self.check_not_deleted()
        if not isinstance(liked, bool):
            raise InvalidInput("liked must be true or false", "liked")
        if liked != self.liked:
            self._change_like(liked=liked)

    @event("LikeChanged")
    def _change_like(self, liked: bool) -> None:
        """The owner marked the asset as a favourite, or took the mark away."""
        self.liked = liked

    def describe(self, description: str | None) -> None:
        self.check_not_deleted()
        if description is not None:
            check_text(description, "description", MAX_DESCRIPTION_LENGTH)
        if description != self.description:
            self._change_description(description=description)

    @event("DescriptionChanged")
    def _change_description(self, description: str | None) -> None:
        """The owner wrote (or cleared) the asset's description."""
        self.description = description

    def update_metadata(self, changes: dict[str, Any]) -> None:
        """Merge user-supplied metadata; only fields of the asset's type are accepted."""
        self.check_not_deleted()
        allowed = SPECIFIC_METADATA_FIELDS[self.asset_type]
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise InvalidInput(
                f"unknown field(s) for a {self.asset_type}: {', '.join(unknown)}",
                f"specific_metadata.{unknown[0]}",
            )
        for key, value in changes.items():
            check_metadata_value(key, value)
        if changes:
            self._update_metadata(changes=changes)

    @event("MetadataUpdated")
    def _update_metadata(self, changes: dict[str, Any]) -> None:
        """The owner corrected or added type-specific metadata (fields given replace old ones)."""
        self.specific_metadata.update(changes)
        if "description" in changes:
            self.description = changes["description"]

    def delete(self, at: datetime, albums: list[dict[str, int]] | None = None) -> None:
        """Move to the trash; `albums` are the albums it leaves, `{album_id, position}` each,
        so a restore can put it back where it was."""
        self.check_not_deleted()
        self._delete(at=at, albums=list(albums or []))

    class Deleted(Aggregate.Event):
        """Moved to the trash: the asset leaves every listing; its file is kept. `albums` names
        the albums it left and its position in each (`{album_id, position}`); events recorded
        before the trash existed (version 1) have none."""

        at: datetime
        albums: list[dict[str, int]]
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["albums"] = []

    @event(Deleted)
    def _delete(self, at: datetime, albums: list[dict[str, int]]) -> None:
        self.is_deleted = True
        self.deleted_at = at
        self.trashed_from = list(albums)

    def restore(self, at: datetime) -> list[dict[str, int]]:
        """Take the asset out of the trash; answers the albums it left (for the caller to put it
        back). Only a trashed asset can be restored (409 otherwise)."""
        self.check_not_purged()
        if not self.is_deleted:
            raise Conflict(f"asset {self.id} is not in the trash")
        albums = list(getattr(self, "trashed_from", []))
        self._restore(at=at)
        return albums

    @event("Restored")
    def _restore(self, at: datetime) -> None:
        """Taken out of the trash: back in listings (album memberships are album events)."""
        self.is_deleted = False
        self.deleted_at = None
        self.trashed_from = []

    def purge(self, at: datetime) -> None:
        """Delete for good: only from the trash (409 otherwise)."""
        self.check_not_purged()
        if not self.is_deleted:
            raise Conflict(f"asset {self.id} is not in the trash")
        self._purge(at=at, owner_id=self.owner_id, repository_id=self.repository_id,
                    storage_path=self.storage_path, content_hash=self.content_hash,
                    file_size=self.file_size)

    @event("Purged")
    def _purge(self, at: datetime, owner_id: int, repository_id: str, storage_path: str,
               content_hash: str, file_size: int) -> None:
        """Deleted for good: the asset answers 404 everywhere from now on. Its files are removed
        after this event (`FilesRemoved`); the event names them so that a removal cut short by a
        crash is finished by the sweeper. The log keeps the fact, never the bytes."""
        self.is_purged = True

    @event("FilesRemoved")
    def record_files_removed(self, bytes_freed: int, original_removed: bool) -> None:
        """The purged asset's files left the disk: its derived files, and its original unless
        another asset still references the same file (`original_removed` false then)."""
        self.files_removed = True


    def locate(self, latitude: float | None, longitude: float | None, place: dict[str, Any] | None) -> None:
        """Record the asset's GPS position and its place, when they changed."""
        if (latitude, longitude, place) != (self.latitude, self.longitude, self.place):
            self._locate(latitude=latitude, longitude=longitude, place=place)

    @event("Located")
    def _locate(self, latitude: float | None, longitude: float | None, place: dict[str, Any] | None) -> None:
        """Where the asset was taken: its GPS position (null: none usable) and the place that
        offline reverse geocoding named for it, `{city, region, country, country_code}` (null:
        no position, or nowhere near a town)."""
        self.latitude = latitude
        self.longitude = longitude
        self.place = place

    def join_stack(self, stack_id: UUID) -> None:
        """Become a member of a stack; an asset is in one stack at most (409 otherwise)."""
        if self.stack_id is not None and self.stack_id != stack_id:
            raise Conflict(f"asset {self.id} is already in stack {self.stack_id}")
        if self.stack_id is None:
            self._join_stack(stack_id=stack_id)

    @event("Stacked")
    def _join_stack(self, stack_id: UUID) -> None:
        """The asset joined a stack (saved with the stack's own event)."""
        self.stack_id = stack_id

    def leave_stack(self, stack_id: UUID) -> None:
        if self.stack_id == stack_id:
            self._leave_stack(stack_id=stack_id)

    @event("Unstacked")
    def _leave_stack(self, stack_id: UUID) -> None:
        """The asset's stack was taken apart."""
        self.stack_id = None

    def gps_position(self) -> tuple[Any, Any]:
        """The GPS position the file says, unless the owner's metadata says otherwise."""
        merged = {**self.extracted.get("specific_metadata", {}), **self.specific_metadata}
        return merged.get("gps_latitude"), merged.get("gps_longitude")

    @event("ContentReplaced")
    def replace_content(self, file_size: int, content_hash: str, mime_type: str) -> None:
        """The file of an asset indexed in place (an external library) was changed on disk: its
        size, hash and type are now these, and its processing runs again."""
        self.file_size = file_size
        self.content_hash = content_hash
        self.mime_type = mime_type

    # -- processing results (recorded by the completion commands) ------------------------------

    @event("TaskStateChanged")
    def record_task(self, queue: str, job_id: int, state: str) -> None:
        """The job doing `queue` for this asset is now in `state` (drives the asset's status)."""
        self.tasks[queue] = {"job_id": job_id, "state": state}

    @event("MetadataExtracted")
    def record_metadata(
        self,
        width: int | None,
        height: int | None,
        duration: float | None,
        taken_time: str | None,
        taken_time_local: str | None,
        specific_metadata: dict[str, Any],
    ) -> None:
        """What the file itself says (EXIF, container tags). User edits still take precedence."""
        self.extracted = {
            "width": width, "height": height, "duration": duration, "taken_time": taken_time,
            "taken_time_local": taken_time_local, "specific_metadata": specific_metadata,
        }

    @event("ThumbnailsGenerated")
    def record_thumbnails(self, thumbnails: dict[str, Any]) -> None:
        """Thumbnails were made: size name -> {path (under derived/), width, height, mime_type}."""
        self.thumbnails = thumbnails

    @event("FingerprintRecorded")
    def record_fingerprint(self, algorithm: str, grey16: str) -> None:
        """A perceptual fingerprint of the photo (`grey16`: 16x16 grey levels as hex) that
        near-duplicate grouping compares; a newer one replaces the old."""
        self.fingerprint = algorithm

    @event("WebVersionGenerated")
    def record_web_version(self, kind: str, info: dict[str, Any]) -> None:
        """A browser-playable copy exists (`kind` web_video / web_audio), or none is needed
        (`kind` skipped, with the reason)."""
        self.web = {kind: info} if kind != "skipped" else {}

    @event("EmbeddingRecorded")
    def record_embedding(self, model: str, vector: list[float]) -> None:
        """An image embedding (CLIP family) made by `model`: what semantic search compares a
        query's text embedding with. A newer one replaces the old."""
        self.embedding = {"model": model, "dimension": len(vector)}

    @event("SpeciesRecorded")
    def record_species(self, model: str, predictions: list[dict[str, Any]]) -> None:
        """Zero-shot species: [{label, score, taxonomy...}] best first."""
        self.enrichments["species"] = {"model": model, "predictions": predictions}

    @event("TextRecognised")
    def record_text(self, model: str, text: str, lines: list[dict[str, Any]]) -> None:
        """OCR: the text found, and per line {text, box: [x, y, w, h], confidence}."""
        self.enrichments["ocr"] = {"model": model, "text": text, "lines": lines}

    @event("FacesDetected")
    def record_faces(self, model: str, faces: list[dict[str, Any]]) -> None:
        """Faces: [{box: [x, y, w, h], confidence, embedding, crop?}] (people come from a
        projection; `crop`, when present, names the face's WebP cut-out under the derived root)."""
        self.enrichments["faces"] = {"model": model, "count": len(faces)}

    @event("LabelsRecorded")
    def record_labels(self, model: str, labels: list[dict[str, Any]]) -> None:
        """Labels of the picture by a classifier: [{label, score}] best first (the asset's tags)."""
        self.enrichments["tags"] = {"model": model, "labels": labels}

    @event("CaptionRecorded")
    def record_caption(self, model: str, caption: str) -> None:
        """An AI description of the image (not the user's own `description`)."""
        self.enrichments["caption"] = {"model": model, "caption": caption}

    @event("EnrichmentSkipped")
    def record_enrichment_skipped(self, task: str, reason: str) -> None:
        """An ML task ran with no model configured: nothing was computed (the reason says which
        setting turns it on). An earlier result of the task stays."""
        self.enrichments.setdefault("skipped", {})[task] = reason

    @event("DamageFound")
    def record_damage(self, task: str, problems: list[str]) -> None:
        """A decoder found the original damaged (truncated, bad directories), even if a preview
        could be shown; `problems` say what is wrong (an empty list: a later run found none)."""
        self.problems = list(problems)

    @property
    def status(self) -> dict[str, Any]:
        return status_of(self.tasks, getattr(self, "problems", None))


def asset_id_from(value: str) -> UUID:
    """Parse a client-given asset id; a malformed one is simply not found."""
    try:
        return UUID(str(value))
    except ValueError:
        raise NotFound(f"asset {value} not found") from None
