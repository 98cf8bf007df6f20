"""Listing pages answer the same before and after the fast path: same fields, same order, same
totals, over a command-built library and 10k synthetic assets, on both backends.

"Before" is the plain reading of the catalog kept here as the reference: every row of the owner
decoded with the standard library's json, sorted in Python, cut into pages and encoded with
`json.dumps`, as the listing did before it fetched fewer columns and encoded with orjson.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from api.envelope import ok
from domain.asset import Asset
from infra.bootstrap import Services
from projections.catalog import CATALOG_COLUMNS, CatalogProjection
from projections.queries import AssetFilter
from tests.scenario import busy_library

TYPES = [("IMG_{}.JPG", "image/jpeg", "PHOTO"), ("Straße {}.mp4", "video/mp4", "VIDEO"),
         ("写真 {}.png", "image/png", "PHOTO"), ("scan {}.pdf", "application/pdf", "DOCUMENT"),
         ("voice {}.m4a", "audio/mp4", "AUDIO")]


def synthetic_assets(services: Services, count: int, owners: tuple[int, ...], seed: int = 3) -> None:
    """`count` assets written by the catalog projection from events: ties in taken time, no
    taken time, descriptions with and without metadata, non-ASCII names, likes, deletions."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    events: list[Any] = []
    for n in range(count):
        asset_id, version = uuid.uuid4(), 1
        pattern, mime, kind = rng.choice(TYPES)
        upload_time = start + timedelta(seconds=rng.randrange(50))  # many equal sort times
        events.append(Asset.Uploaded(
            originator_id=asset_id, originator_version=version, timestamp=upload_time,
            originator_topic="domain.asset:Asset", owner_id=rng.choice(owners),
            original_filename=pattern.format(n), file_size=1000 + n, mime_type=mime,
            content_hash=f"{n:064x}", asset_type=kind, repository_id="default",
            storage_path=f"originals/{n}", upload_time=upload_time,
        ))
        if rng.random() < 0.7:
            taken = f"20{rng.randint(10, 24)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T10:00:00"
            version += 1
            events.append(Asset.MetadataExtracted(
                originator_id=asset_id, originator_version=version, timestamp=upload_time, width=640,
                height=480, duration=None if kind == "PHOTO" else 1.5, taken_time=taken,
                taken_time_local=taken,
                specific_metadata={"camera_make": rng.choice(["Canon", "NIKON", "Ünïcode"]),
                                   "iso": rng.choice([100, 2**70, 1.25]), "description": "from exif"}
                if rng.random() < 0.5 else {},
            ))
        for cls, field, value in ((Asset.RatingChanged, "rating", rng.randint(0, 5)),
                                  (Asset.LikeChanged, "liked", rng.random() < 0.3),
                                  (Asset.DescriptionChanged, "description", f"« {n} »")):
            if rng.random() < 0.3:
                version += 1
                events.append(cls(originator_id=asset_id, originator_version=version,
                                  timestamp=upload_time, **{field: value}))
        if rng.random() < 0.05:
            version += 1
            events.append(Asset.Deleted(originator_id=asset_id, originator_version=version,
                                        timestamp=upload_time, at=upload_time, albums=[]))
    projection = CatalogProjection()
    for i in range(0, len(events), 2000):
        with services.db.transaction() as tx:
            projection.apply_batch(tx, events[i : i + 2000])


def reference_asset(row: dict[str, Any]) -> dict[str, Any]:
    metadata = json.loads(row["specific_metadata"])
    if row["description"] is not None:
        metadata.setdefault("description", row["description"])
    keys = ("asset_id, owner_id, type, original_filename, mime_type, file_size, hash, width, height, "
            "duration, taken_time, upload_time, rating, liked, description, repository_id, storage_path, "
            "is_deleted, deleted_at").split(", ")
    asset = {k: row[k] for k in keys}
    asset.update(liked=bool(row["liked"]), is_deleted=bool(row["is_deleted"]),
                 status=json.loads(row["status"]), specific_metadata=metadata, place=json.loads(row["place"]))
    return asset


def reference_rows(services: Services, owner: int, keep: Any, descending: bool = True) -> list[dict[str, Any]]:
    rows = services.db.query(f"SELECT {CATALOG_COLUMNS} FROM catalog_assets WHERE owner_id = ?", (owner,))
    rows = [r for r in rows if not r["is_deleted"] and keep(r)]
    return sorted(rows, key=lambda r: (r["sort_time"], r["asset_id"]), reverse=descending)


def encoded(assets: list[dict[str, Any]]) -> tuple[list[str], list[Any]]:
    """What a client reads: the keys in order and the decoded values of the response body."""
    body = ok({"assets": assets}).body
    decoded = json.loads(body)["data"]["assets"]
    return [list(a) for a in decoded], decoded


def check_pages(services: Services, owner: int, limit: int, **query: Any) -> int:
    types = query.get("types")
    rating, liked = query.get("rating"), query.get("liked")
    descending = query.get("descending", True)
    expected = reference_rows(services, owner, lambda r: (
        (types is None or r["type"] in types) and (rating is None or r["rating"] == rating)
        and (liked is None or bool(r["liked"]) == liked)), descending)
    for offset in range(0, len(expected) + limit, limit):
        page = services.catalog.list(owner, limit=limit, offset=offset, **query)
        want = [reference_asset(r) for r in expected[offset : offset + limit]]
        keys, values = encoded(page)
        assert keys == [list(a) for a in want]
        assert values == json.loads(json.dumps(want)), (query, offset)
    return len(expected)


def test_listing_pages_equal_the_reference_over_a_command_built_library(services: Services) -> None:
    owned = busy_library(services, users=2, assets_per_user=30)
    for runner in services.runners.values():
        runner.catch_up()
    for owner in owned:
        assert check_pages(services, owner, 7, types=["PHOTO"]) == 28
        check_pages(services, owner, 5, types=["PHOTO"], descending=False)
        check_pages(services, owner, 4, liked=True)
        for rating in range(6):
            check_pages(services, owner, 6, rating=rating)


def test_listing_and_filter_pages_equal_the_reference_over_10k_synthetic_assets(services: Services) -> None:
    synthetic_assets(services, 10_000, owners=(1, 2))
    listed = 0
    for owner in (1, 2):
        listed += check_pages(services, owner, 100, types=["PHOTO"])
        check_pages(services, owner, 100, types=["VIDEO", "AUDIO"], descending=False)
        check_pages(services, owner, 50, liked=True)
        check_pages(services, owner, 100, rating=3)
        # The filter answers the same page and total as the reference, including unicode makes.
        expected = reference_rows(services, owner, lambda r: True)
        for offset in (0, 100, len(expected) - 10):
            page, total = services.catalog.filter(owner, AssetFilter(), 100, offset)
            assert total == len(expected)
            assert encoded(page)[1] == json.loads(json.dumps(
                [reference_asset(r) for r in expected[offset : offset + 100]]))
    assert 3500 < listed < 4100  # the PHOTO share (2 in 5) of the live assets: pages covered them all
