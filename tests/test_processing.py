"""End to end on the real corpus: a real server process uploads, processes and serves it.

One server per backend for the whole module (processing the corpus is the expensive part);
every test reads what it produced.
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from pathlib import Path

import av
import psycopg
import pytest
import pyvips
from psycopg import sql

from tests.conftest import MEDIA, PG_URL
from tests.live_server import LiveServer

KINDS = ("photo", "raw", "video", "audio", "document")
# Files whose image data was stripped or pruned away (media/README.md): metadata only.
NO_IMAGE = {"canon_eos_350d_stripped.cr2", "nikon_d70_stripped.nef", "panasonic_dmc-lx3_stripped.rw2",
            # pruned: its preview offset points past the end and its raw data is all zeros
            "apple_iphone_12_pro_pruned_gps.dng"}
# Stored landscape with an Orientation of 6 or 8, a HEIF rotation, or a 90-degree video rotation:
# displayed portrait. (The Canon A85 and Sony Cybershot files store portrait pixels with a
# rotating tag: the tag is honoured, as browsers do, so they display landscape.)
PORTRAIT = {"canon_eos_1000d_orient6_lens.jpg", "samsung_sm-g975f_orient6.heic",
            "samsung_gt-i9000_zero_gps_orient6.jpg", "apple_iphone_6_gps_rot90.mov",
            "rot90_zero_gps.mp4"}
LOCKED = {"libreoffice_encrypted.pdf"}  # needs a password: metadata only


def manifest() -> dict[str, dict]:
    with open(MEDIA / "MANIFEST.tsv", newline="") as f:
        return {row["path"]: json.loads(row["expected"]) for row in csv.DictReader(f, delimiter="\t")}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def library(request, tmp_path_factory):
    """A server that has processed the whole corpus (and the broken files)."""
    if request.param == "postgres" and not PG_URL:
        pytest.skip("DARKROOM_TEST_DATABASE_URL not set (make test sets it)")
    schema = "e2e_" + uuid.uuid4().hex[:8] if request.param == "postgres" else ""
    data_dir = tmp_path_factory.mktemp(f"e2e-{request.param}") / "data"
    server = LiveServer(data_dir, PG_URL if schema else "", schema,
                        DARKROOM_WORKER_CONCURRENCY="2", DARKROOM_JOB_TIMEOUT_SECONDS="120",
                        DARKROOM_JOB_BACKOFF_BASE_SECONDS="0.2")
    try:
        auth = server.json("POST", "/auth/register", json_body={
            "username": "owner", "email": "owner@example.org", "password": "correct horse"}, expect=201)
        token = auth["data"]["token"]
        uploaded: dict[str, str] = {}
        for kind in (*KINDS, "broken"):
            for path in sorted((MEDIA / kind).iterdir()):
                body = server.json("POST", "/assets", token, files={"file": path}, expect=None)
                assert body["code"] == 0, (path, body)
                uploaded[f"{kind}/{path.name}"] = body["data"]["asset_id"]
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            stats = server.json("GET", "/admin/river/stats", token)["data"]
            if stats["available"] + stats["scheduled"] + stats["running"] + stats["retryable"] == 0:
                break
            time.sleep(1)
        else:
            pytest.fail(f"processing did not finish: {stats}")
        assets = {rel: server.json("GET", f"/assets/{aid}", token)["data"] for rel, aid in uploaded.items()}
        yield server, token, assets
    finally:
        server.stop()
        if schema:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_every_complete_file_processes(library):
    _, _, assets = library
    problems = []
    for rel, asset in assets.items():
        if rel.startswith("broken/"):
            continue
        tasks = asset["status"]["tasks"]
        if tasks.get("metadata_asset") != "completed":
            problems.append((rel, tasks))
        elif Path(rel).name not in NO_IMAGE | LOCKED and asset["status"]["state"] != "complete":
            problems.append((rel, asset["status"]))
    assert not problems, problems


def test_metadata_matches_the_manifest(library):
    _, _, assets = library
    expected = manifest()
    checked, mismatches = 0, []
    for rel, asset in assets.items():
        exp = expected.get(rel)
        if exp is None or rel.split("/")[0] not in ("photo", "raw"):
            continue
        meta = asset["specific_metadata"]
        pairs = [("Make", "camera_make"), ("Model", "camera_model"), ("FNumber", "f_number"),
                 ("GPSLatitude", "gps_latitude"), ("GPSLongitude", "gps_longitude")]
        for key, field in pairs:
            if exp.get(key) is None:
                continue
            checked += 1
            got = meta.get(field)
            if isinstance(exp[key], float | int) and not isinstance(exp[key], bool):
                ok = got is not None and abs(float(got) - float(exp[key])) < 1e-3
            else:
                ok = str(got or "").strip().lower() == str(exp[key]).strip().lower()
            if not ok:
                mismatches.append((rel, key, exp[key], got))
        if exp.get("DateTimeOriginal"):
            checked += 1
            want = exp["DateTimeOriginal"].replace(":", "-", 2).replace(" ", "T")
            if not (asset["taken_time"] or "").startswith(want):
                mismatches.append((rel, "DateTimeOriginal", want, asset["taken_time"]))
        lens = exp.get("LensModel") or exp.get("LensID")
        if lens:
            checked += 1
            if not meta.get("lens_model"):
                mismatches.append((rel, "lens", lens, meta.get("lens_model")))
    assert checked > 100
    assert len(mismatches) <= 0.05 * checked, mismatches


def test_thumbnails_have_the_right_size_and_orientation(library):
    server, token, assets = library
    for rel, asset in assets.items():
        if rel.startswith("broken/") or Path(rel).name in NO_IMAGE | LOCKED:
            continue
        for size, longest in (("small", 256), ("medium", 1024), ("large", 2048)):
            status, headers, body = server.request("GET", f"/assets/{asset['asset_id']}/thumbnail?size={size}", token)
            assert status == 200, (rel, size, body[:200])
            image = pyvips.Image.new_from_buffer(body, "")
            assert max(image.width, image.height) <= longest, (rel, size)
            embedded_preview_only = rel.endswith((".cr3", ".raf"))  # the file's largest image is its preview
            if asset["width"] and asset["height"] and not embedded_preview_only and rel.startswith(("photo/", "raw/")):
                assert max(image.width, image.height) == min(longest, max(asset["width"], asset["height"])), (rel, size, image.width, image.height)
                if asset["width"] != asset["height"]:  # the thumbnail is oriented like the metadata says
                    assert (image.width > image.height) == (asset["width"] > asset["height"]), (rel, image.width, image.height)
            if Path(rel).name in PORTRAIT and size == "medium":
                assert image.height > image.width, (rel, image.width, image.height)
    # caching headers
    any_id = assets["photo/apple_iphone_4_gps.jpg"]["asset_id"]
    status, headers, _ = server.request("GET", f"/assets/{any_id}/thumbnail", token)
    assert status == 200 and headers["Content-Type"] == "image/webp" and headers["ETag"]
    status, _, _ = server.request("GET", f"/assets/{any_id}/thumbnail", token, headers={"If-None-Match": headers["ETag"]})
    assert status == 304
    bad = server.json("GET", f"/assets/{any_id}/thumbnail?size=huge", token, expect=400)
    assert "size" in bad["error"]


def test_web_video_and_audio_play(library):
    server, token, assets = library
    for rel, asset in assets.items():
        if rel.startswith("video/"):
            status, headers, body = server.request("GET", f"/assets/{asset['asset_id']}/video/web", token)
            assert status == 200, (rel, body[:200])
            # MP4 for every video (the WebM too): the ISO-BMFF family, named video/mp4.
            assert headers["Content-Type"] == "video/mp4" and body[4:8] == b"ftyp", (rel, headers)
            container = av.open(io.BytesIO(body))
            frames = sum(1 for _ in container.decode(video=0))
            assert frames > 0, rel
            if "web_video_url" in asset:  # transcoded: our own MP4
                assert body[4:8] == b"ftyp" and body.find(b"moov") < body.find(b"mdat"), rel
                assert container.streams.video[0].codec_context.name == "h264"
        if rel.startswith("audio/"):
            status, _, body = server.request("GET", f"/assets/{asset['asset_id']}/audio/web", token)
            assert status == 200, (rel, body[:200])
            container = av.open(io.BytesIO(body))
            assert sum(1 for _ in container.decode(audio=0)) > 0, rel
    photo = assets["photo/apple_iphone_4_gps.jpg"]["asset_id"]
    server.json("GET", f"/assets/{photo}/video/web", token, expect=404)
    status, headers, body = server.request("GET", f"/assets/{assets['video/gps_1080p.mp4']['asset_id']}/video/web", token,
                                           headers={"Range": "bytes=0-7"})
    assert status == 206 and len(body) == 8


def test_broken_files_end_final_without_harming_anything(library):
    server, token, assets = library
    stats = server.json("GET", "/admin/river/stats", token)["data"]
    assert stats["running"] == 0 and stats["retryable"] == 0 and stats["available"] == 0
    for rel, asset in assets.items():
        if not rel.startswith("broken/"):
            continue
        assert asset["status"]["state"] in ("complete", "failed", "warning"), (rel, asset["status"])
        for queue, state in asset["status"]["tasks"].items():
            assert state in ("completed", "discarded"), (rel, queue, state)
            if state == "discarded":
                jobs = server.json("GET", f"/admin/river/jobs?queue={queue}&state=discarded&limit=200", token)["data"]["jobs"]
                mine = [j for j in jobs if j["args"].get("asset_id") == asset["asset_id"]]
                assert mine and mine[0]["errors"] and len(mine[0]["errors"]) == mine[0]["max_attempts"], (rel, mine)
    assert any(a["status"]["state"] == "failed" for r, a in assets.items() if r.startswith("broken/"))


def test_time_distribution_counts_taken_times(library):
    server, token, assets = library
    hourly = server.json("GET", "/stats/time-distribution", token)["data"]
    monthly = server.json("GET", "/stats/time-distribution?type=monthly", token)["data"]
    with_time = sum(1 for a in assets.values() if a["taken_time"])
    assert len(hourly["data"]) == 24 and len(monthly["data"]) == 12
    assert sum(b["count"] for b in hourly["data"]) == with_time == sum(b["count"] for b in monthly["data"])
    iphone4 = next(b for b in hourly["data"] if b["value"] == 14)  # taken 14:33:39
    assert iphone4["count"] >= 1
    server.json("GET", "/stats/time-distribution?type=weekly", token, expect=400)
