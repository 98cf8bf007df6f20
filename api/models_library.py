"""Pydantic models of the library features (trash; places, map and memories): request bodies and
response shapes, kept apart from `api.models` so each file stays one concern."""

from __future__ import annotations

from pydantic import BaseModel, Field, StrictStr

from api.models import _ASSET_EXAMPLE, EXAMPLE_ASSET_ID, EXAMPLE_TIME, AssetDTO, Body, body_examples, examples

MAX_IDS = 1000  # ids one request may name: bounded work per request


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

    asset_ids: list[StrictStr] | None = Field(default=None, min_length=1, max_length=MAX_IDS,
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
