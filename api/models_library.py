"""Pydantic models of the library features (trash; places, map and memories): request bodies and
response shapes, kept apart from `api.models` so each file stays one concern."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.models import (
    _ASSET_EXAMPLE,
    EXAMPLE_ASSET_ID,
    EXAMPLE_TIME,
    AssetDTO,
    UuidStr,
    Body,
    body_examples,
    examples,
)

MAX_IDS = 1000  # ids one request may name: bounded work per request
UNIQUE = {"uniqueItems": True}  # the handlers refuse an id named twice


# -- trash -----------------------------------------------------------------------------------


class TrashPage(BaseModel):
    model_config = examples({"assets": [{**_ASSET_EXAMPLE, "is_deleted": True, "deleted_at": EXAMPLE_TIME}],
                             "limit": 20, "offset": 0, "total": 1})

    assets: list[AssetDTO]
    limit: int
    offset: int
    total: int


class TrashIdsBody(Body):
    """Which trashed assets: the ids given, or the whole trash when `asset_ids` is absent."""

    model_config = body_examples({"asset_ids": [EXAMPLE_ASSET_ID]})

    asset_ids: list[UuidStr] | None = Field(default=None, min_length=1, max_length=MAX_IDS, json_schema_extra=UNIQUE,
                                              description="trashed asset ids; absent: the whole trash")


class RestoreResult(BaseModel):
    model_config = examples({"restored": 1, "asset_ids": [EXAMPLE_ASSET_ID]})

    restored: int = Field(ge=0, description="how many assets left the trash")
    asset_ids: list[str]


class EmptyResult(BaseModel):
    model_config = examples({"purged": 1, "bytes_freed": 2_483_112, "asset_ids": [EXAMPLE_ASSET_ID]})

    purged: int = Field(ge=0, description="how many assets were purged")
    bytes_freed: int = Field(ge=0, description="bytes of originals and derived files removed")
    asset_ids: list[str]


# -- places, map, memories -------------------------------------------------------------------


class PlaceCount(BaseModel):
    country_code: str
    country: str
    city: str
    region: str | None
    asset_count: int
    cover_asset_id: str = Field(json_schema_extra={"format": "uuid"})


class PlacePage(BaseModel):
    model_config = examples({"places": [{"country_code": "IT", "country": "Italy", "city": "Rome",
                                         "region": "Lazio", "asset_count": 12, "cover_asset_id": EXAMPLE_ASSET_ID}],
                             "limit": 20, "offset": 0, "total": 1})

    places: list[PlaceCount]
    limit: int
    offset: int
    total: int


class Marker(BaseModel):
    asset_id: str = Field(json_schema_extra={"format": "uuid"})
    lat: float
    lon: float
    taken_time: str | None


class MarkerPage(BaseModel):
    model_config = examples({"markers": [{"asset_id": EXAMPLE_ASSET_ID, "lat": 41.853, "lon": 12.4888,
                                          "taken_time": "2011-01-13T14:33:39"}],
                             "limit": 500, "offset": 0, "total": 1})

    markers: list[Marker]
    limit: int
    offset: int
    total: int


class Memory(BaseModel):
    year: int
    years_ago: int
    assets: list[AssetDTO]


class MemoryList(BaseModel):
    model_config = examples({"date": "2026-11-28", "memories": [{"year": 2020, "years_ago": 6,
                                                                 "assets": [_ASSET_EXAMPLE]}], "total": 1})

    date: str
    memories: list[Memory]
    total: int


# -- stacks ----------------------------------------------------------------------------------


class StackCreateBody(Body):
    model_config = body_examples({"asset_ids": [EXAMPLE_ASSET_ID, "0b9a3c4e-1111-4222-8333-944455556666"],
                                  "primary_asset_id": EXAMPLE_ASSET_ID})

    asset_ids: list[UuidStr] = Field(min_length=2, max_length=100, json_schema_extra=UNIQUE,
                                         description="2 to 100 of your assets")
    primary_asset_id: UuidStr | None = Field(default=None, description="one of asset_ids (the first when absent)")


class StackUpdateBody(Body):
    model_config = body_examples({"primary_asset_id": EXAMPLE_ASSET_ID})

    primary_asset_id: UuidStr


# -- duplicates ------------------------------------------------------------------------------


class DuplicateGroup(BaseModel):
    group_id: str = Field(json_schema_extra={"format": "uuid"})
    similarity: float = Field(description="the weakest link's correlation of the pictures (0.82 to 1)")
    assets: list[AssetDTO]


class DuplicatePage(BaseModel):
    model_config = examples({"groups": [{"group_id": EXAMPLE_ASSET_ID, "similarity": 0.97,
                                         "assets": [_ASSET_EXAMPLE]}], "limit": 20, "offset": 0, "total": 1})

    groups: list[DuplicateGroup]
    limit: int
    offset: int
    total: int


class ResolveBody(Body):
    model_config = body_examples({"keep_asset_ids": [EXAMPLE_ASSET_ID]})

    keep_asset_ids: list[UuidStr] = Field(min_length=1, max_length=MAX_IDS, json_schema_extra=UNIQUE,
                                            description="the group's photos to keep; the others go to the trash")


class ResolveResult(BaseModel):
    model_config = examples({"kept": [EXAMPLE_ASSET_ID], "trashed": ["0b9a3c4e-1111-4222-8333-944455556666"]})

    kept: list[str]
    trashed: list[str]
