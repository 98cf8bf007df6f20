"""Memories over HTTP on both backends: photos (made from the corpus at test time with their
taken times set) taken on this month and day in earlier years, by the wall clock of the photo's
own time zone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import register
from tests.media_edit import with_taken_time
from tests.scenario import settle_jobs

SOURCE = "photo/nikon_d5000.jpg"


async def _memories(user: Any, day: str) -> list[tuple[int, int, list[str]]]:
    data = (await user.call("GET", f"/memories?date={day}"))["data"]
    assert data["date"] == day and data["total"] == len(data["memories"])
    return [(m["year"], m["years_ago"], [a["asset_id"] for a in m["assets"]]) for m in data["memories"]]


async def test_memories_on_a_fixed_date(client: Any, services: Any, media: Path, tmp_path: Path) -> None:
    services.start_processing()
    alice, bob = await register(client, "alice"), await register(client, "bob")
    shots = {  # name -> (taken, offset)
        "tokyo_late": ("2019:07:04 23:30:00", "+09:00"),   # 4 July in Tokyo (14:30 UTC)
        "tokyo_early": ("2020:07:05 00:30:00", "+09:00"),  # 5 July in Tokyo, though 4 July in UTC
        "no_zone": ("2018:07:04 08:00:00", None),
        "no_zone_2": ("2018:07:04 18:00:00", None),
        "this_year": ("2026:07:04 10:00:00", None),         # not an earlier year
        "leap_day": ("2016:02:29 12:00:00", None),
        "trashed": ("2017:07:04 09:00:00", None),
    }
    ids = {}
    for name, (taken, offset) in shots.items():
        path = with_taken_time(media / SOURCE, tmp_path / f"{name}.jpg", taken, offset)
        ids[name] = (await alice.upload(path))["data"]["asset_id"]
    settle_jobs(services)
    await alice.call("DELETE", f"/assets/{ids['trashed']}")

    assert await _memories(alice, "2026-07-04") == [
        (2019, 7, [ids["tokyo_late"]]),
        (2018, 8, [ids["no_zone_2"], ids["no_zone"]]),
    ]
    assert await _memories(alice, "2026-07-05") == [(2020, 6, [ids["tokyo_early"]])]
    assert await _memories(alice, "2027-02-28") == [(2016, 11, [ids["leap_day"]])]  # no 29th in 2027
    assert await _memories(alice, "2028-02-28") == []  # 2028 has its own 29th
    assert await _memories(alice, "2028-02-29") == [(2016, 12, [ids["leap_day"]])]
    assert await _memories(bob, "2026-07-04") == []
    one = (await alice.call("GET", "/memories?date=2026-07-04&limit=1"))["data"]["memories"]
    assert [len(m["assets"]) for m in one] == [1, 1]
    assert isinstance((await alice.call("GET", "/memories"))["data"]["memories"], list)  # today
    for bad in ("2026-02-30", "today", "2026-7-4", "20260704", "2026-07-04T00:00"):
        await alice.call("GET", f"/memories?date={bad}", expect=400)
    await alice.call("GET", "/memories?date=2026-07-04&limit=0", expect=400)
