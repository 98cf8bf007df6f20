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
OPTIONAL_TASKS = ("process_clip", "process_species", "process_ocr", "process_face", "process_caption")


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
# gets an embedding and a caption from sampled frames). Uploads enqueue those with a model.
ML_TASKS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "PHOTO": OPTIONAL_TASKS,
    "VIDEO": ("process_clip", "process_caption"),
    "AUDIO": (),
    "DOCUMENT": (),
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
        self.tasks: dict[str, dict[str, Any]] = {}
        self.extracted: dict[str, Any] = {}
        self.thumbnails: dict[str, Any] = {}
        self.web: dict[str, Any] = {}
        self.embedding: dict[str, Any] = {}
        self.enrichments: dict[str, Any] = {}  # species, ocr, faces, caption: the latest result of each

    # -- rules ---------------------------------------------------------------------------------

    def check_owner(self, user_id: int) -> None:
        """Another user's asset does not exist for this user."""
        if self.owner_id != user_id:
            raise NotFound(f"asset {self.id} not found")

    def check_not_deleted(self) -> None:
        if self.is_deleted:
            raise Conflict(f"asset {self.id} is deleted")

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

    def delete(self, at: datetime) -> None:
        self.check_not_deleted()
        self._delete(at=at)

    @event("Deleted")
    def _delete(self, at: datetime) -> None:
        """Soft delete: the asset leaves every listing; its file is kept."""
        self.is_deleted = True
        self.deleted_at = at


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
        """Faces: [{box: [x, y, w, h], confidence, embedding}] (people come from a projection)."""
        self.enrichments["faces"] = {"model": model, "count": len(faces)}

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
