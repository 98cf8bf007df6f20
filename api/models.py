"""Pydantic models at the edge: request bodies (validated) and response shapes (documented)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr


class Body(BaseModel):
    """Request bodies reject unknown fields and loose types: a typo is a 400, not a no-op."""

    model_config = ConfigDict(extra="forbid", strict=True)


# -- auth ------------------------------------------------------------------------------------


class RegisterBody(Body):
    username: StrictStr = Field(min_length=3, max_length=64)
    email: StrictStr = Field(min_length=3, max_length=254)
    password: StrictStr = Field(min_length=8, max_length=1024)


class LoginBody(Body):
    username: StrictStr = Field(min_length=1, max_length=64)
    password: StrictStr = Field(min_length=1, max_length=1024)


class RefreshBody(Body):
    refreshToken: StrictStr = Field(min_length=1, max_length=512)


class UserDTO(BaseModel):
    user_id: int
    username: str
    email: str
    created_at: str
    last_login: str | None
    is_active: bool


class AuthData(BaseModel):
    token: str
    refreshToken: str
    expiresAt: str
    user: UserDTO


# -- assets ----------------------------------------------------------------------------------


class MetadataBody(Body):
    specific_metadata: dict[str, Any]


class DescriptionBody(Body):
    description: StrictStr | None = Field(max_length=10_000)


class LikeBody(Body):
    liked: StrictBool


class RatingBody(Body):
    rating: StrictInt = Field(ge=0, le=5)


class RatingAndLikeBody(Body):
    rating: StrictInt = Field(ge=0, le=5)
    liked: StrictBool


class AssetStatus(BaseModel):
    state: str = Field(description="processing | complete | warning | failed")
    tasks: dict[str, str]


class SpeciesPrediction(BaseModel):
    label: str = Field(description="common name")
    scientific_name: str | None = None
    score: float
    taxonomy: dict[str, str] = Field(default_factory=dict)


class SpeciesPart(BaseModel):
    model: str | None = None
    skipped: str | None = Field(default=None, description="why the task did not run (no model)")
    predictions: list[SpeciesPrediction] = Field(default_factory=list, description="best first")


class OcrLine(BaseModel):
    text: str
    box: list[float] = Field(description="[x, y, w, h] as fractions of the displayed image")
    confidence: float


class OcrPart(BaseModel):
    model: str | None = None
    skipped: str | None = Field(default=None, description="why the task did not run (no model)")
    text: str = ""
    lines: list[OcrLine] = Field(default_factory=list)


class Face(BaseModel):
    box: list[float] = Field(description="[x, y, w, h] as fractions of the displayed image")
    confidence: float
    person_id: str = Field(description="the person this face was grouped into (per owner)")
    person_face_count: int | None = None


class FacesPart(BaseModel):
    model: str | None = None
    skipped: str | None = Field(default=None, description="why the task did not run (no model)")
    count: int = 0
    faces: list[Face] = Field(default_factory=list)


class CaptionPart(BaseModel):
    model: str | None = None
    skipped: str | None = Field(default=None, description="why the task did not run (no model)")
    caption: str = ""


class AssetDTO(BaseModel):
    asset_id: str
    owner_id: int
    type: str
    original_filename: str
    mime_type: str
    file_size: int
    hash: str
    width: int | None
    height: int | None
    duration: float | None
    taken_time: str | None
    upload_time: str
    rating: int
    liked: bool
    description: str | None
    repository_id: str
    storage_path: str
    is_deleted: bool
    deleted_at: str | None
    status: AssetStatus
    specific_metadata: dict[str, Any]
    # ML parts, present when asked for (include_species, include_ocr, include_faces,
    # include_ai_descriptions): null until the task has a result.
    species: SpeciesPart | None = None
    ocr: OcrPart | None = None
    faces: FacesPart | None = None
    ai_descriptions: CaptionPart | None = None


class AssetPage(BaseModel):
    assets: list[AssetDTO]
    limit: int
    offset: int


class UploadResult(BaseModel):
    asset_id: str
    task_id: int | None
    status: str = Field(description="queued | duplicate")
    file_name: str
    size: int
    content_hash: str
    message: str


class ReprocessBody(Body):
    tasks: list[StrictStr] | None = Field(default=None, max_length=20)
    force_full_retry: StrictBool = False


class ReprocessResult(BaseModel):
    asset_id: str
    status: str
    message: str
    retry_tasks: list[str]
    failed_tasks: list[str]


class AssetTypes(BaseModel):
    types: list[str]


# -- albums ----------------------------------------------------------------------------------


class AlbumCreateBody(Body):
    album_name: StrictStr = Field(min_length=1, max_length=255)
    cover_asset_id: StrictStr | None = None
    description: StrictStr | None = Field(default=None, max_length=10_000)


class AlbumUpdateBody(Body):
    album_name: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    cover_asset_id: StrictStr | None = None
    description: StrictStr | None = Field(default=None, max_length=10_000)


class AddToAlbumBody(Body):
    position: StrictInt | None = Field(default=None, ge=0)


class PositionBody(Body):
    position: StrictInt = Field(ge=0)


class AlbumDTO(BaseModel):
    album_id: int
    user_id: int
    album_name: str
    description: str | None
    cover_asset_id: str | None
    asset_count: int
    created_at: str
    updated_at: str


class AlbumPage(BaseModel):
    albums: list[AlbumDTO]
    limit: int
    offset: int
    total: int


class AlbumList(BaseModel):
    albums: list[AlbumDTO]


class AlbumAssets(BaseModel):
    assets: list[AssetDTO]


# -- admin and health ------------------------------------------------------------------------


class EventRecord(BaseModel):
    position: int
    timestamp: str
    aggregate: str
    aggregate_id: str
    type: str
    version: int
    payload: dict[str, Any]


class EventPage(BaseModel):
    events: list[EventRecord]
    next_after: int
    has_more: bool


class Message(BaseModel):
    pass


class Health(BaseModel):
    status: str
    event_store: dict[str, Any]
    bus: dict[str, Any]
    search_index: dict[str, Any]
    projections: dict[str, Any]
    ml: dict[str, Any] = Field(default_factory=dict, description="each ML task on (with its model) or off")
