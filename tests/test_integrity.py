"""Integrity: a RAW file whose structure is damaged (a truncated ARW or DNG) ends `warning` with
what is wrong, even though its embedded preview gives thumbnails; sound files stay `complete`;
the catalog rebuilds to the same status."""

from __future__ import annotations

from processors.metadata import raw_damage
from projections.registry import PROJECTIONS
from projections.runner import rebuild
from tests.helpers import register
from tests.scenario import settle_jobs


async def test_a_truncated_raw_is_a_warning_with_its_damage(client, services, media):
    alice = await register(client, "alice")
    arw = (await alice.upload(media / "broken" / "truncated_sony_zv-e10.arw"))["data"]["asset_id"]
    sound = (await alice.upload(media / "raw" / "blackmagic_pocket_cinema_4k.dng"))["data"]["asset_id"]
    services.settings.job_timeout_seconds = 120
    services.start_processing()
    settle_jobs(services, timeout=180)
    services.wait_for(services.app.recorder.max_notification_id())
    damaged = (await alice.call("GET", f"/assets/{arw}"))["data"]["status"]
    assert damaged["state"] == "warning", damaged
    assert damaged["tasks"]["metadata_asset"] == "completed"
    assert "Bad SubIFD directory" in damaged["problems"][0]
    whole = (await alice.call("GET", f"/assets/{sound}"))["data"]["status"]
    assert whole["state"] == "complete" and "problems" not in whole, whole
    live = services.db.query("SELECT asset_id, status FROM catalog_assets ORDER BY asset_id")
    rebuild(services.app, services.db, PROJECTIONS["catalog"])
    assert services.db.query("SELECT asset_id, status FROM catalog_assets ORDER BY asset_id") == live


def test_only_structural_raw_warnings_count_as_damage():
    assert raw_damage("image/x-sony-arw", "Bad SubIFD directory")
    assert raw_damage("image/x-adobe-dng", "Error reading value for IFD0 entry 17")
    assert raw_damage("image/x-adobe-dng", "[Minor] Not decoding some large array(s)") is None
    assert raw_damage("image/jpeg", "Bad IFD2 directory") is None  # a JPEG's pixels decide, not its EXIF
    assert raw_damage("image/x-sony-arw", None) is None
