"""Decoders under limits: a decompression bomb is refused from its header and fails its job with
a clear error; a decoder that allocates past its memory budget fails its own job; the worker lives
and the next file is processed."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from tests.helpers import register
from tests.scenario import settle_jobs
from tests.test_jobs import by_queue, start, upload_photo


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header claims width x height 8-bit grey pixels, with rows of zeros: about
    900 MB once decoded from well under a megabyte (only the first rows are written; a decoder
    that trusts the header allocates for all of them)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * ((width + 1) * 64), 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


async def test_a_decompression_bomb_fails_its_job_and_the_worker_lives(client, services, media):
    alice = await register(client, "alice")
    bomb = await alice.upload_bytes(bomb_png(), "bomb.png")
    services.settings.job_timeout_seconds = 60
    services.start_processing()
    jobs = settle_jobs(services, timeout=120)
    thumb = next(j for j in jobs if j["queue"] == "thumbnail_asset")
    assert thumb["state"] == "discarded"
    assert "30000 x 30000 = 900 MP" in thumb["errors"][-1]["error"], thumb["errors"]
    asset = await alice.call("GET", f"/assets/{bomb['data']['asset_id']}")
    assert asset["data"]["status"]["state"] == "failed"
    # The same worker processes the next file.
    good = await alice.upload(media / "photo" / "kodak_dx4330.jpg")
    settle_jobs(services, timeout=120)
    shown = await alice.call("GET", f"/assets/{good['data']['asset_id']}")
    assert shown["data"]["status"]["state"] == "complete"
    assert services.worker.pools_renewed == 0


def test_a_decoder_past_its_memory_budget_fails_its_own_job(services):
    services.settings.decoder_memory_bytes = 512 * 1024**2
    start(services, thumbnail_asset="hog")
    upload_photo(services, 0)
    jobs = by_queue(settle_jobs(services))
    assert jobs["thumbnail_asset"]["state"] == "discarded"
    assert "memory budget of 512 MiB" in jobs["thumbnail_asset"]["errors"][0]["error"]
    assert jobs["metadata_asset"]["state"] == "completed"
    assert services.worker.pools_renewed == 0  # the child lived: the limit failed the task only


def test_pillow_refuses_a_bomb_under_the_limit(tmp_path: Path):
    from PIL import Image

    from processors.base import UnprocessableMedia
    from processors.decoder_limits import DecodeLimits, check_pixels, limited

    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(20000, 20000))
    with limited(DecodeLimits(max_pixels=10_000_000)):
        try:
            Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            pass
        else:
            raise AssertionError("Pillow opened a 400 MP image under a 10 MP limit")
        try:
            check_pixels(20000, 20000)
        except UnprocessableMedia as exc:
            assert "400 MP" in str(exc)
        else:
            raise AssertionError("check_pixels let a 400 MP image through")
