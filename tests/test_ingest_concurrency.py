"""Ingest under 16 concurrent clients: no upload lost, none duplicated, every answer already
readable (read your writes), on both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from infra.bootstrap import Services
from tests.helpers import jpeg, register

CLIENTS = 16
PER_CLIENT = 6


async def test_sixteen_clients_uploading_at_once_lose_nothing_and_duplicate_nothing(
        client: Any, services: Services, media: Path) -> None:
    alice = await register(client, "alice")
    queue = [(f"c{c}-{n}", c) for n in range(PER_CLIENT) for c in range(CLIENTS)]
    # Every fourth file is sent twice at once by two clients: one asset, one "duplicate" answer.
    twins = {tag for i, (tag, _) in enumerate(queue) if i % 4 == 0}
    answers: dict[str, list[dict[str, Any]]] = {}

    async def one_client(c: int) -> None:
        for tag, owner in queue:
            if owner == c or (tag in twins and owner == (c + 1) % CLIENTS):
                up = await alice.upload_bytes(jpeg(media, tag), f"{tag}.jpg", expect=None)
                assert up["_status"] in (200, 201), up
                answers.setdefault(tag, []).append(up["data"])
                # Read your writes: the answer's asset is there at once.
                shown = await alice.call("GET", f"/assets/{up['data']['asset_id']}", expect=None)
                assert shown["_status"] == 200, (tag, up["data"]["status"], shown)
                assert shown["data"]["original_filename"] == f"{tag}.jpg"

    await asyncio.gather(*(one_client(c) for c in range(CLIENTS)))

    assert len(answers) == CLIENTS * PER_CLIENT
    for tag, got in answers.items():
        assert len({a["asset_id"] for a in got}) == 1, (tag, got)  # twins agree on one asset
        assert sorted(a["status"] for a in got) == (["duplicate", "queued"] if tag in twins else ["queued"])
    ids = {got[0]["asset_id"] for got in answers.values()}
    rows = services.db.query("SELECT asset_id FROM catalog_assets WHERE owner_id = ?", (alice.user_id,))
    assert {r["asset_id"] for r in rows} == ids and len(rows) == len(ids)
    listed = await alice.call("GET", "/assets?type=PHOTO&limit=100")
    assert len(listed["data"]["assets"]) == len(ids)
