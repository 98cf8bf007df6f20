"""Pydantic models at the edge: request bodies (validated) and response shapes (documented)."""

from __future__ import annotations

from typing import Any

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

# What domain.text.check_text refuses, said as patterns for the document: names take no
# control character, longer texts take tabs and line breaks.
NAME_TEXT = {"pattern": r"^[^\x00-\x1f\x7f]*$"}
LONG_TEXT = {"pattern": r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"}

# Formats for the document: the values are produced by the server in exactly these shapes.
DATE_TIME = {"format": "date-time"}
UUID = {"format": "uuid"}
EXAMPLE_ASSET_ID = "6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
# An id (asset, person) in a body: the document says it is a UUID.
UuidStr = Annotated[StrictStr, Field(json_schema_extra=UUID)]
EXAMPLE_HASH = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
EXAMPLE_TIME = "2026-11-28T09:30:00.000000Z"


def examples(*values: dict[str, Any]) -> ConfigDict:
    """Examples that the OpenAPI document shows for a model (and for the operations using it)."""
    return ConfigDict(json_schema_extra={"examples": list(values)})


class Body(BaseModel):
    """Request bodies reject unknown fields and loose types: a typo is a 400, not a no-op."""

    model_config = ConfigDict(extra="forbid", strict=True)


def body_examples(*values: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": list(values)})


# -- auth ------------------------------------------------------------------------------------


# What commands.users.check_registration accepts, said as patterns for the document.
USERNAME_PATTERN = r"^[A-Za-z0-9_.\-]{3,64}$"
# The document asks for plain addresses (the server also takes international ones).
EMAIL_PATTERN = (r"^[A-Za-z0-9_%+-]{1,32}(\.[A-Za-z0-9_%+-]{1,16})?@"
                 r"([A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?\.){1,4}[A-Za-z]{2,12}$")


class RegisterBody(Body):
    model_config = body_examples({"username": "alice", "email": "alice@example.org",
                                  "password": "correct horse battery"})

    username: StrictStr = Field(min_length=3, max_length=64, pattern=USERNAME_PATTERN,
                                description="letters, digits, '_', '.', '-'")
    email: StrictStr = Field(min_length=3, max_length=254, json_schema_extra={"pattern": EMAIL_PATTERN},
                             description="an e-mail address (stored in lower case)")
    password: StrictStr = Field(min_length=8, max_length=1024)


class LoginBody(Body):
    model_config = body_examples({"username": "alice", "password": "correct horse battery"})

    username: StrictStr = Field(min_length=1, max_length=64)
    password: StrictStr = Field(min_length=1, max_length=1024)


class RefreshBody(Body):
    model_config = body_examples({"refreshToken": "1.Qm9iIGlzIG5vdCBhIHRva2Vu"})

    refreshToken: StrictStr = Field(min_length=1, max_length=512)


_USER_EXAMPLE = {"user_id": 1, "username": "alice", "email": "alice@example.org",
                 "created_at": EXAMPLE_TIME, "last_login": EXAMPLE_TIME, "is_active": True}


class UserDTO(BaseModel):
    model_config = examples(_USER_EXAMPLE)

    user_id: int = Field(ge=1)
    username: str
    email: str = Field(json_schema_extra={"format": "email"})
    created_at: str = Field(json_schema_extra=DATE_TIME)
    last_login: str | None = Field(json_schema_extra=DATE_TIME)
    is_active: bool


class AuthData(BaseModel):
    model_config = examples({"token": "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
                             "refreshToken": "1.Qm9iIGlzIG5vdCBhIHRva2Vu",
                             "expiresAt": EXAMPLE_TIME, "user": _USER_EXAMPLE})

    token: str = Field(description="the access token: send it as `Authorization: Bearer <token>`")
    refreshToken: str = Field(description="exchange it at /auth/refresh for a new pair (once)")
    expiresAt: str = Field(json_schema_extra=DATE_TIME, description="when the access token expires")
    user: UserDTO


# -- assets ----------------------------------------------------------------------------------


class FormModel(BaseModel):
    """A multipart form, as the document shows it: text fields cannot be null (absent means
    unset), and a field the form does not name is refused."""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler.resolve_ref_schema(handler(core_schema))
        for prop in schema.get("properties", {}).values():
            branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
            if branches:
                prop.update(branches[0])
            if prop.get("default", 0) is None:
                del prop["default"]
            if prop.get("format") == "binary":
                prop["minLength"] = 1  # an empty file is refused (400)
        schema["additionalProperties"] = False
        return schema


class UploadForm(FormModel):
    """`POST /assets`: one file, and optionally the repository to keep it in."""

    file: bytes = Field(description="the file's bytes; its part's filename becomes the asset's name")
    repository_id: str | None = Field(default=None, max_length=1024,
                                      description="a configured repository (the default when absent)")


class MetadataBody(Body):
    model_config = body_examples({"specific_metadata": {"camera_model": "EOS 5D Mark III", "iso_speed": 400}})

    specific_metadata: dict[str, Any] = Field(
        description="field -> text, number, boolean or null (null removes the field)")


class DescriptionBody(Body):
    model_config = body_examples({"description": "Sunset over the harbour"})

    description: StrictStr | None = Field(max_length=10_000, json_schema_extra=LONG_TEXT)


class LikeBody(Body):
    model_config = body_examples({"liked": True})

    liked: StrictBool


class RatingBody(Body):
    model_config = body_examples({"rating": 4})

    rating: StrictInt = Field(ge=0, le=5)


class RatingAndLikeBody(Body):
    model_config = body_examples({"rating": 5, "liked": True})

    rating: StrictInt = Field(ge=0, le=5)
    liked: StrictBool


JobState = Literal["available", "scheduled", "running", "retryable", "completed", "cancelled", "discarded"]


class AssetStatus(BaseModel):
    state: Literal["processing", "complete", "warning", "failed"]
    tasks: dict[str, JobState] = Field(description="queue name -> the state of its job")
    problems: list[str] | None = Field(default=None, description="damage a decoder found in the original "
                                       "(then `state` is at least `warning`); absent when none")


class SpeciesPrediction(BaseModel):
    label: str = Field(description="common name (for a label class standing alone: the class)")
    scientific_name: str | None = None
    score: float
    taxonomy: dict[str, str] = Field(default_factory=dict, description="kingdom, phylum, class, order, "
                                     "family: the ranks known")
    source: str | None = Field(default=None, description="zero-shot (CLIP) or label-classes (approximate)")
    classes: list[str] = Field(default_factory=list, description="label-classes: the label model's "
                               "classes behind this species, best first (dog breeds, say)")


class SpeciesPart(BaseModel):
    model: str | None = None
    source: str | None = Field(default=None, description="zero-shot: a CLIP-family model against "
                               "species names; label-classes: approximate, from the label model's "
                               "animal classes")
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


class FaceBox(BaseModel):
    x: float
    y: float
    w: float
    h: float


class Face(BaseModel):
    face_id: str = Field(description="`<asset id>:<index>`")
    box: FaceBox = Field(description="as fractions of the displayed image")
    score: float = Field(description="the detector's confidence")
    confidence: float = Field(description="the same as `score` (kept for older clients)")
    person_id: str = Field(description="the person this face was grouped into (per owner)")
    person_face_count: int | None = None


class FacesPart(BaseModel):
    model: str | None = None
    skipped: str | None = Field(default=None, description="why the task did not run (no model)")
    count: int = 0
    faces: list[Face] = Field(default_factory=list)


class Tag(BaseModel):
    label: str
    score: float
    source: str = Field(description="the model that gave the label")


class CaptionPart(BaseModel):
    model: str | None = None
    skipped: str | None = Field(default=None, description="why the task did not run (no model)")
    caption: str = ""


_ASSET_EXAMPLE = {
    "asset_id": EXAMPLE_ASSET_ID, "owner_id": 1, "type": "PHOTO",
    "original_filename": "IMG_0042.JPG", "mime_type": "image/jpeg", "file_size": 2481152,
    "hash": EXAMPLE_HASH, "width": 4000, "height": 3000, "duration": None,
    "taken_time": "2026-07-14T18:02:11", "upload_time": EXAMPLE_TIME, "rating": 4, "liked": True,
    "description": None, "repository_id": "default", "storage_path": "af/13/af1349b9.jpg",
    "is_deleted": False, "deleted_at": None,
    "status": {"state": "complete", "tasks": {"metadata_asset": "completed", "thumbnail_asset": "completed"}},
    "specific_metadata": {"camera_make": "Canon", "camera_model": "Canon EOS 5D Mark III", "iso_speed": 400},
    "place": {"city": "Rome", "region": "Lazio", "country": "Italy", "country_code": "IT"},
}


class Place(BaseModel):
    """Where the asset was taken, by offline reverse geocoding of its GPS position."""

    city: str
    region: str | None
    country: str
    country_code: str = Field(description="ISO 3166-1 alpha-2")


class StackDTO(BaseModel):
    model_config = examples({"stack_id": EXAMPLE_ASSET_ID, "primary_asset_id": EXAMPLE_ASSET_ID,
                             "asset_ids": [EXAMPLE_ASSET_ID, "0b9a3c4e-1111-4222-8333-944455556666"],
                             "automatic": True})

    stack_id: str = Field(json_schema_extra=UUID)
    primary_asset_id: str = Field(json_schema_extra=UUID)
    asset_ids: list[str]
    automatic: bool = Field(description="made by Darkroom (a RAW and its JPEG), not by hand")


class AssetDTO(BaseModel):
    model_config = examples(_ASSET_EXAMPLE)

    asset_id: str = Field(json_schema_extra=UUID)
    owner_id: int
    type: Literal["PHOTO", "VIDEO", "AUDIO", "DOCUMENT"]
    original_filename: str
    mime_type: str
    file_size: int
    hash: str
    width: int | None
    height: int | None
    duration: float | None
    taken_time: str | None = Field(description="as the file says it: ISO 8601, local time unless an offset is given")
    upload_time: str = Field(json_schema_extra=DATE_TIME)
    rating: int
    liked: bool
    description: str | None
    repository_id: str
    storage_path: str
    is_deleted: bool
    deleted_at: str | None = Field(json_schema_extra=DATE_TIME)
    status: AssetStatus
    specific_metadata: dict[str, Any]
    # ML parts, present when asked for (include_species, include_ocr, include_faces,
    # include_ai_descriptions): null until the task has a result.
    species: SpeciesPart | None = None
    ocr: OcrPart | None = None
    faces: FacesPart | None = None
    ai_descriptions: CaptionPart | None = None
    place: Place | None = Field(default=None, description="null without GPS (or far from any town)")
    stack: StackDTO | None = Field(default=None, description="GET /assets/{id}: the asset's stack, null when unstacked")
    tags: list[Tag] | None = Field(default=None, description="include_tags: labels with scores, best first")
    # Only on an asset of an external library (indexed in place): which, and whether its file is
    # missing from disk now.
    library_id: int | None = None
    is_offline: bool | None = None


class AssetPage(BaseModel):
    model_config = examples({"assets": [_ASSET_EXAMPLE], "limit": 20, "offset": 0})

    assets: list[AssetDTO]
    limit: int
    offset: int


class UploadResult(BaseModel):
    model_config = examples({"asset_id": EXAMPLE_ASSET_ID, "task_id": 17, "status": "queued",
                             "file_name": "IMG_0042.JPG", "size": 2481152, "content_hash": EXAMPLE_HASH,
                             "message": "queued for processing"})

    asset_id: str = Field(json_schema_extra=UUID)
    task_id: int | None
    status: Literal["queued", "duplicate"]
    file_name: str
    size: int
    content_hash: str
    message: str


class ReprocessBody(Body):
    model_config = body_examples({"tasks": ["thumbnail_asset"], "force_full_retry": False})

    tasks: list[StrictStr] | None = Field(default=None, max_length=20,
                                          description="queue names, e.g. thumbnail_asset; none: every failed task")
    force_full_retry: StrictBool = False


class ReprocessResult(BaseModel):
    model_config = examples({"asset_id": EXAMPLE_ASSET_ID, "status": "queued", "message": "queued thumbnail_asset",
                             "retry_tasks": ["thumbnail_asset"], "failed_tasks": []})

    asset_id: str = Field(json_schema_extra=UUID)
    status: Literal["queued", "unchanged"]
    message: str
    retry_tasks: list[str]
    failed_tasks: list[str]


class AssetTypes(BaseModel):
    model_config = examples({"types": ["PHOTO", "VIDEO", "AUDIO", "DOCUMENT"]})

    types: list[Literal["PHOTO", "VIDEO", "AUDIO", "DOCUMENT"]]


# -- albums ----------------------------------------------------------------------------------


class AlbumCreateBody(Body):
    model_config = body_examples({"album_name": "Summer 2026", "description": "Two weeks by the sea"})

    album_name: StrictStr = Field(min_length=1, max_length=255, json_schema_extra=NAME_TEXT)
    cover_asset_id: StrictStr | None = Field(default=None, json_schema_extra=UUID,
                                             description="one of your assets")
    description: StrictStr | None = Field(default=None, max_length=10_000, json_schema_extra=LONG_TEXT)


class AlbumUpdateBody(Body):
    model_config = body_examples({"album_name": "Summer 2026 (best of)"})

    album_name: StrictStr | None = Field(default=None, min_length=1, max_length=255, json_schema_extra=NAME_TEXT)
    cover_asset_id: StrictStr | None = Field(default=None, json_schema_extra=UUID,
                                             description="one of your assets")
    description: StrictStr | None = Field(default=None, max_length=10_000, json_schema_extra=LONG_TEXT)


class AddToAlbumBody(Body):
    model_config = body_examples({"position": 0})

    position: StrictInt | None = Field(default=None, ge=0)


class PositionBody(Body):
    model_config = body_examples({"position": 2})

    position: StrictInt = Field(ge=0)


_ALBUM_EXAMPLE = {"album_id": 3, "user_id": 1, "album_name": "Summer 2026", "description": None,
                  "cover_asset_id": EXAMPLE_ASSET_ID, "asset_count": 12, "created_at": EXAMPLE_TIME,
                  "updated_at": EXAMPLE_TIME}


class AlbumDTO(BaseModel):
    model_config = examples(_ALBUM_EXAMPLE)

    album_id: int = Field(ge=1)
    user_id: int
    album_name: str
    description: str | None
    cover_asset_id: str | None = Field(json_schema_extra=UUID)
    asset_count: int
    created_at: str = Field(json_schema_extra=DATE_TIME)
    updated_at: str = Field(json_schema_extra=DATE_TIME)
    # Only on an album someone else shares with the caller (see api/routes/sharing.py).
    owner_id: int | None = Field(default=None, description="a shared album: its owner")
    role: Literal["viewer", "editor"] | None = Field(default=None, description="a shared album: the caller's role")


class AlbumPage(BaseModel):
    model_config = examples({"albums": [_ALBUM_EXAMPLE], "limit": 20, "offset": 0, "total": 1})

    albums: list[AlbumDTO]
    limit: int
    offset: int
    total: int


class AlbumList(BaseModel):
    model_config = examples({"albums": [_ALBUM_EXAMPLE]})

    albums: list[AlbumDTO]


class AlbumAssets(BaseModel):
    model_config = examples({"assets": [_ASSET_EXAMPLE]})

    assets: list[AssetDTO]


# -- admin and health ------------------------------------------------------------------------


class EventRecord(BaseModel):
    position: int
    timestamp: str
    aggregate: str
    aggregate_id: str
    type: str
    version: int = Field(description="the aggregate's version after this event")
    event_version: int = Field(description="the event's shape version (GET /admin/events/schema)")
    payload: dict[str, Any]


class EventPage(BaseModel):
    model_config = examples({"events": [{
        "position": 42, "timestamp": EXAMPLE_TIME, "aggregate": "Asset", "aggregate_id": EXAMPLE_ASSET_ID,
        "type": "Asset.RatingChanged", "version": 3, "event_version": 1, "payload": {"rating": 4}}],
        "next_after": 42, "has_more": False})

    events: list[EventRecord]
    next_after: int
    has_more: bool


class ErasureDTO(BaseModel):
    model_config = examples({"user_id": 7, "assets": 120, "albums": 3, "files_removed": 348})

    user_id: int
    assets: int = Field(description="assets of the user deleted and purged")
    albums: int = Field(description="albums of the user deleted")
    files_removed: int = Field(description="originals and derived files removed from disk")


class EventCatalogue(BaseModel):
    model_config = examples({
        "description": "Darkroom's public event records: one JSON Schema per event type.",
        "events": {"Asset.RatingChanged": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "urn:darkroom:event:Asset.RatingChanged:v1", "title": "Asset.RatingChanged",
            "description": "The owner gave the asset a rating from 0 (none) to 5.", "type": "object",
            "properties": {"payload": {"type": "object", "properties": {"rating": {"type": "integer"}}}}}},
    })

    description: str
    events: dict[str, dict[str, Any]] = Field(description="event type -> the JSON Schema of its public record")


class Message(BaseModel):
    pass


class Health(BaseModel):
    model_config = examples({"status": "ok", "event_store": {"status": "ok", "backend": "sqlite"},
                             "bus": {"status": "ok", "backend": "inprocess"},
                             "search_index": {"status": "ok", "backend": "embedded"},
                             "projections": {"status": "ok", "lag": 0}, "ml": {}})

    status: str = Field(description="ok, or degraded when something the server needs is down")
    # The rest only for an admin's token.
    event_store: dict[str, Any] | None = None
    bus: dict[str, Any] | None = None
    search_index: dict[str, Any] | None = None
    projections: dict[str, Any] | None = None
    ml: dict[str, Any] | None = Field(default=None, description="each ML task on (with its model) or off")


# -- people ----------------------------------------------------------------------------------

EXAMPLE_PERSON_ID = "0b8e5b52-51e6-5b8a-9c54-2f0f6c7f3d11"
EXAMPLE_FACE_ID = EXAMPLE_ASSET_ID + ":0"


class PersonDTO(BaseModel):
    person_id: str = Field(json_schema_extra=UUID)
    name: str | None = None
    face_count: int
    asset_count: int
    cover_face_id: str | None = None
    hidden: bool

    model_config = examples({"person_id": EXAMPLE_PERSON_ID, "name": "Ada", "face_count": 12,
                             "asset_count": 9, "cover_face_id": EXAMPLE_FACE_ID, "hidden": False})


class PeoplePage(BaseModel):
    people: list[PersonDTO]
    limit: int
    offset: int
    total: int

    model_config = examples({"people": [{"person_id": EXAMPLE_PERSON_ID, "name": "Ada", "face_count": 12,
                                         "asset_count": 9, "cover_face_id": EXAMPLE_FACE_ID, "hidden": False}],
                             "limit": 20, "offset": 0, "total": 1})


class PersonUpdateBody(Body):
    name: StrictStr | None = Field(default=None, description="the person's name; \"\" clears it")
    hidden: StrictBool | None = Field(default=None, description="hide from (or show in) the people list")

    model_config = body_examples({"name": "Ada"}, {"hidden": True})


class MergePeopleBody(Body):
    person_ids: list[UuidStr] = Field(min_length=1, max_length=100, json_schema_extra={"uniqueItems": True},
                                         description="the people to fold into this one (not itself)")

    model_config = body_examples({"person_ids": [EXAMPLE_PERSON_ID]})


class FacePersonBody(Body):
    person_id: StrictStr | None = Field(default=None, description="the person the face belongs to")
    new_person: StrictBool | None = Field(default=None, description="true: the face starts a new person")

    # Exactly one of the two, which the handler checks (400 otherwise): said for the document.
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "examples": [{"person_id": EXAMPLE_PERSON_ID}, {"new_person": True}],
        # if/then/else rather than oneOf: generators of clients read a oneOf as a union of types.
        "if": {"required": ["new_person"], "properties": {"new_person": {"const": True}}},
        "then": {"properties": {"person_id": {"type": "null"}}},
        "else": {"required": ["person_id"], "properties": {"person_id": {"type": "string"}}},
        })


class PersonAssets(BaseModel):
    assets: list[dict[str, Any]]
    total: int

    model_config = examples({"assets": [_ASSET_EXAMPLE], "total": 1})


class FaceDTO(BaseModel):
    face_id: str
    asset_id: str = Field(json_schema_extra=UUID)
    box: FaceBox
    score: float
    confidence: float
    person_id: str

    model_config = examples({"face_id": EXAMPLE_FACE_ID, "asset_id": EXAMPLE_ASSET_ID,
                             "box": {"x": 0.21, "y": 0.23, "w": 0.25, "h": 0.18}, "score": 0.77,
                             "confidence": 0.77, "person_id": EXAMPLE_PERSON_ID})
