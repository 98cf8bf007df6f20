"""`darkroom backfill`: photos stored before places, stacks and fingerprints existed get them.

The "old" library is made by this release with those derivations held back (no geocoder, no
same-shot stacking, thumbnail results without a fingerprint), as the code before them did; then
the backfill derives them, queues thumbnails only where the fingerprint is missing, and a second
run finds nothing to do. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

import commands.jobs
from commands.application import Darkroom
from infra import cli
from tests.helpers import register
from tests.media_edit import with_taken_time
from tests.scenario import settle_jobs

GPS = "photo/apple_iphone_4_gps.jpg"
RAW = "raw/nikon_d70_stripped.nef"  # DateTimeOriginal 2004:06:09 16:02:35
JPEG = "photo/nikon_d5000.jpg"


async def test_backfill_derives_places_stacks_and_fingerprints_once(
    client: Any, services: Any, media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = commands.jobs._record_result

    def before_fingerprints(asset: Any, queue: str, result: dict[str, Any]) -> None:
        record(asset, queue, {k: v for k, v in result.items() if k != "fingerprint"})

    geocoder = services.app.geocoder
    with monkeypatch.context() as old_code:
        old_code.setattr(commands.jobs, "_record_result", before_fingerprints)
        old_code.setattr(Darkroom, "same_shot_changes", lambda self, asset: [])
        services.app.geocoder = None
        services.start_processing()
        alice = await register(client, "alice")
        gps = (await alice.upload(media / GPS))["data"]["asset_id"]
        raw = (await alice.upload(media / RAW, filename="DSC_0001.NEF"))["data"]["asset_id"]
        jpg = (await alice.upload(with_taken_time(media / JPEG, tmp_path / "DSC_0001.JPG",
                                                  "2004:06:09 16:02:36")))["data"]["asset_id"]
        settle_jobs(services, 120.0)
        services.app.geocoder = geocoder

    old = (await alice.call("GET", f"/assets/{gps}"))["data"]
    assert old.get("place") is None and (await alice.call("GET", f"/assets/{jpg}"))["data"]["stack"] is None
    assert (await alice.call("GET", "/places"))["data"]["places"] == []
    assert not getattr(services.app.repository.get(UUID(gps)), "fingerprint", None)

    done = {a: services.app.backfill_asset(UUID(a)) for a in (gps, raw, jpg)}
    assert done[gps] == {"place", "fingerprint"}
    assert "stack" in done[raw] | done[jpg] and {"fingerprint"} <= done[jpg]
    settle_jobs(services, 120.0)

    place = (await alice.call("GET", f"/assets/{gps}"))["data"]["place"]
    assert place and place["country_code"]
    assert [p["city"] for p in (await alice.call("GET", "/places"))["data"]["places"]] == [place["city"]]
    stack = (await alice.call("GET", f"/assets/{jpg}"))["data"]["stack"]
    assert stack and sorted(stack["asset_ids"]) == sorted([raw, jpg]) and stack["primary_asset_id"] == jpg
    for asset_id in (gps, jpg):
        assert services.app.repository.get(UUID(asset_id)).fingerprint

    # Nothing left to do: a second run answers nothing and queues nothing.
    assert [services.app.backfill_asset(UUID(a)) for a in (gps, raw, jpg)] == [set(), set(), set()]


def test_the_cli_reports_progress_and_a_summary(services: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_settings", lambda _args: services.settings)  # the test's database
    assert cli.cmd_backfill(cli.parser().parse_args(["backfill", "--no-fingerprints"])) == 0
    out = capsys.readouterr()
    assert '"assets": 0' in out.out and "backfill: 0 assets to look at" in out.err
