"""Metadata extraction on the real-media corpus (tests/media), checked against its manifest.

MANIFEST.tsv `expected` was produced by exiftool 12.57 and ffprobe: the reference our extraction
is measured against. Each call runs under a 60 s budget: a hang fails the test instead of
blocking the suite.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from domain.asset import SPECIFIC_METADATA_FIELDS
from processors.base import JobInput, UnprocessableMedia
from processors.metadata import exiftool_process, extract_metadata
from tests.media_jobs import job_for

BUDGET_S = 60.0
TOP_LEVEL_KEYS = {"width", "height", "duration", "taken_time", "taken_time_local", "specific_metadata"}
CORPUS_FOLDERS = ("photo", "raw", "video", "audio", "document")
LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")

# The type each specific_metadata field has when it is not None.
FIELD_TYPES: dict[str, dict[str, type]] = {
    "PHOTO": {
        "taken_time": str, "camera_model": str, "camera_make": str, "lens_model": str,
        "exposure_time": float, "f_number": float, "focal_length": float, "iso_speed": int,
        "exposure": str, "dimensions": str, "resolution": str, "gps_latitude": float,
        "gps_longitude": float, "is_raw": bool, "orientation": int, "description": str,
    },
    "VIDEO": {
        "recorded_time": str, "camera_model": str, "codec": str, "bitrate": int,
        "frame_rate": float, "gps_latitude": float, "gps_longitude": float, "rotation": int,
        "description": str,
    },
    "AUDIO": {
        "title": str, "artist": str, "album": str, "genre": str, "year": int, "codec": str,
        "bitrate": int, "sample_rate": int, "channels": int, "description": str,
    },
    "DOCUMENT": {"page_count": int, "title": str, "author": str, "description": str},
}


# -- helpers ---------------------------------------------------------------------------------------




def within_budget(job: JobInput, budget: float = BUDGET_S) -> dict[str, Any]:
    """extract_metadata(job) in a daemon thread; fails the test if it runs past the budget."""
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["result"] = extract_metadata(job)
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(budget)
    if thread.is_alive():
        pytest.fail(f"extract_metadata hung on {job.original_filename} (> {budget:g} s)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def corpus_files(media: Path, *folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (media / folder).iterdir() if p.is_file())


def manifest(media: Path) -> dict[str, dict[str, Any]]:
    with open(media / "MANIFEST.tsv", newline="", encoding="utf-8") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return {row["path"]: json.loads(row["expected"]) for row in rows}


def soundness_problems(result: Any, asset_type: str) -> list[str]:
    """Why `result` is not a dict of the promised shape for `asset_type` (empty when it is)."""
    if not isinstance(result, dict):
        return [f"not a dict: {type(result).__name__}"]
    problems = []
    if set(result) - {"problems"} != TOP_LEVEL_KEYS:  # `problems`: damage found (optional)
        problems.append(f"top-level keys {sorted(result)}")
        return problems
    for key in ("width", "height"):
        value = result[key]
        if value is not None and (type(value) is not int or value <= 0):
            problems.append(f"{key}={value!r}")
    if result["duration"] is not None and (type(result["duration"]) is not float or result["duration"] <= 0):
        problems.append(f"duration={result['duration']!r}")
    taken, local = result["taken_time"], result["taken_time_local"]
    if (taken is None) != (local is None):
        problems.append(f"taken_time={taken!r} but taken_time_local={local!r}")
    if taken is not None:
        try:
            moment = datetime.fromisoformat(taken)
        except (TypeError, ValueError):
            problems.append(f"taken_time {taken!r} is not ISO 8601")
        else:
            if not isinstance(local, str) or not LOCAL_TIME.match(local):
                problems.append(f"taken_time_local {local!r} is not YYYY-MM-DDTHH:MM:SS")
            elif moment.replace(tzinfo=None).isoformat(timespec="seconds") != local:
                problems.append(f"taken_time {taken!r} and taken_time_local {local!r} disagree")
    specific = result["specific_metadata"]
    if not isinstance(specific, dict):
        return problems + [f"specific_metadata is {type(specific).__name__}"]
    if set(specific) != set(SPECIFIC_METADATA_FIELDS[asset_type]):
        problems.append(
            f"specific_metadata keys: extra {sorted(set(specific) - SPECIFIC_METADATA_FIELDS[asset_type])}, "
            f"missing {sorted(SPECIFIC_METADATA_FIELDS[asset_type] - set(specific))}"
        )
    for key, wanted in FIELD_TYPES[asset_type].items():
        value = specific.get(key)
        if value is None:
            if key == "is_raw":
                problems.append("is_raw is None")
            continue
        if type(value) is not wanted:  # exact: True is not an int here, 1 is not a float
            problems.append(f"{key}={value!r} is {type(value).__name__}, not {wanted.__name__}")
    if asset_type == "PHOTO":
        if specific["taken_time"] != taken:
            problems.append("specific taken_time differs from taken_time")
        if specific["orientation"] is not None and not 1 <= specific["orientation"] <= 8:
            problems.append(f"orientation={specific['orientation']}")
        if specific["dimensions"] is not None and not re.fullmatch(r"\d+x\d+", specific["dimensions"]):
            problems.append(f"dimensions={specific['dimensions']!r}")
    if asset_type == "VIDEO" and specific["recorded_time"] != taken:
        problems.append("recorded_time differs from taken_time")
    if "gps_latitude" in specific and (specific["gps_latitude"] is None) != (specific["gps_longitude"] is None):
        problems.append("only one of latitude/longitude")
    return problems


def exif_time(text: str) -> tuple[str, str | None]:
    """exiftool's 'YYYY:MM:DD hh:mm:ss[±hh:mm]' as (local wall clock in ISO, offset or None)."""
    match = re.match(r"^(\d{4}):(\d{2}):(\d{2}) (\d{2}:\d{2}:\d{2})([+-]\d{2}:\d{2}|Z)?", text)
    assert match, text
    y, m, d, hms, offset = match.groups()
    return f"{y}-{m}-{d}T{hms}", offset


def as_utc(text: str) -> datetime:
    """ffprobe's creation_time (UTC, with or without a Z) or our taken_time, as an aware UTC time."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def close(a: Any, b: Any, tolerance: float) -> bool:
    return a is not None and b is not None and abs(float(a) - float(b)) <= tolerance


# -- every corpus file -----------------------------------------------------------------------------


def test_every_corpus_file_returns_the_shape_of_its_type(media: Path, tmp_path: Path) -> None:
    files = corpus_files(media, *CORPUS_FOLDERS)
    assert len(files) == 62
    problems = []
    for path in files:
        job = job_for(path, tmp_path)
        result = within_budget(job)
        for problem in soundness_problems(result, job.asset_type):
            problems.append(f"{path.parent.name}/{path.name}: {problem}")
    assert not problems, "\n".join(problems)


# -- against the manifest --------------------------------------------------------------------------


def compare_with_manifest(media: Path, tmp_path: Path) -> dict[str, list[tuple[str, bool, str]]]:
    """field -> [(file, matched, detail)] for every field the manifest gives (non-null)."""
    expected_by_path = manifest(media)
    fields: dict[str, list[tuple[str, bool, str]]] = {}

    def record(field: str, name: str, ok: bool, ours: Any, theirs: Any) -> None:
        fields.setdefault(field, []).append((name, ok, f"ours={ours!r} manifest={theirs!r}"))

    for path in corpus_files(media, "photo", "raw"):
        name = f"{path.parent.name}/{path.name}"
        exp = expected_by_path[name]
        specific = within_budget(job_for(path, tmp_path))["specific_metadata"]
        if exp.get("Make") is not None:
            record("make", name, specific["camera_make"] == exp["Make"], specific["camera_make"], exp["Make"])
        if exp.get("Model") is not None:
            record("model", name, specific["camera_model"] == exp["Model"], specific["camera_model"], exp["Model"])
        lens = exp.get("LensModel") or exp.get("LensID")
        if lens is not None:
            record("lens", name, specific["lens_model"] == lens, specific["lens_model"], lens)
        if exp.get("GPSLatitude") is not None:
            ok = close(specific["gps_latitude"], exp["GPSLatitude"], 1e-4) and close(
                specific["gps_longitude"], exp["GPSLongitude"], 1e-4)
            record("gps", name, ok, (specific["gps_latitude"], specific["gps_longitude"]),
                   (exp["GPSLatitude"], exp["GPSLongitude"]))
        if exp.get("FNumber") is not None:
            record("f_number", name, close(specific["f_number"], exp["FNumber"], 1e-3),
                   specific["f_number"], exp["FNumber"])
        if exp.get("DateTimeOriginal") is not None:
            local, offset = exif_time(exp["DateTimeOriginal"])
            taken = specific["taken_time"]
            ok = taken is not None and taken[:19] == local and (offset is None or taken.endswith(offset))
            record("taken_time", name, ok, taken, exp["DateTimeOriginal"])

    for path in corpus_files(media, "video"):
        name = f"video/{path.name}"
        exp = expected_by_path[name]
        result = within_budget(job_for(path, tmp_path))
        specific = result["specific_metadata"]
        camera = specific["camera_model"] or ""
        # VIDEO has no camera_make field: the make is carried in camera_model ("Apple iPhone 6").
        if exp.get("exiftool_Make") is not None:
            record("video make", name, exp["exiftool_Make"].lower() in camera.lower(), camera, exp["exiftool_Make"])
        if exp.get("exiftool_Model") is not None:
            record("video model", name, exp["exiftool_Model"] in camera, camera, exp["exiftool_Model"])
        if exp.get("exiftool_GPSLatitude") is not None:
            ok = close(specific["gps_latitude"], exp["exiftool_GPSLatitude"], 1e-4) and close(
                specific["gps_longitude"], exp["exiftool_GPSLongitude"], 1e-4)
            record("video gps", name, ok, (specific["gps_latitude"], specific["gps_longitude"]),
                   (exp["exiftool_GPSLatitude"], exp["exiftool_GPSLongitude"]))
        if exp.get("creation_time") is not None:
            # Phones also write the capture time with its zone (Apple Keys, udta ©xyz date) and we
            # prefer it; it names the same moment as the container's creation time, give or take
            # the seconds between starting and closing the recording.
            ours = specific["recorded_time"]
            ok = ours is not None and abs(
                (as_utc(ours) - as_utc(exp["creation_time"])).total_seconds()) <= 60
            record("video creation_time", name, ok, ours, exp["creation_time"])
    return fields


def test_agreement_with_the_manifest(media: Path, tmp_path: Path) -> None:
    fields = compare_with_manifest(media, tmp_path)
    total = sum(len(v) for v in fields.values())
    matched = sum(ok for v in fields.values() for _, ok, _ in v)
    print(f"\nmanifest agreement: {matched}/{total} fields")
    for field, rows in fields.items():
        print(f"  {field:20s} {sum(ok for _, ok, _ in rows)}/{len(rows)}")
    mismatches = [f"{field}: {name}: {detail}" for field, rows in fields.items()
                  for name, ok, detail in rows if not ok]
    for line in mismatches:
        print("  MISMATCH " + line)
    assert total > 100
    assert matched / total >= 0.95, "\n".join(mismatches)


def test_stream_facts_agree_with_ffprobe(media: Path, tmp_path: Path) -> None:
    """Codec, duration, sample rate, channels and tags as ffprobe (5.1) saw them; PyAV wraps a
    newer FFmpeg, so a few differences are expected and printed."""
    expected_by_path = manifest(media)
    rows: list[tuple[str, bool, str]] = []
    for path in corpus_files(media, "video", "audio"):
        name = f"{path.parent.name}/{path.name}"
        exp = expected_by_path[name]
        result = within_budget(job_for(path, tmp_path))
        specific = result["specific_metadata"]
        checks: list[tuple[str, Any, Any, bool]] = []
        if exp.get("duration") is not None:
            checks.append(("duration", result["duration"], exp["duration"],
                           close(result["duration"], exp["duration"], 0.05)))
        if path.parent.name == "video":
            checks.append(("codec", specific["codec"], exp["video_codec"], specific["codec"] == exp["video_codec"]))
            stored = (exp["width"], exp["height"])
            shown = (result["width"], result["height"])
            turned = (exp.get("exiftool_Rotation") or 0) % 180 == 90
            checks.append(("displayed size", shown, stored, shown == (stored[::-1] if turned else stored)))
        else:
            for key, ours in (("audio_codec", specific["codec"]), ("sample_rate", specific["sample_rate"]),
                              ("channels", specific["channels"])):
                checks.append((key, ours, exp[key], ours == exp[key]))
            for key in ("title", "artist", "album", "genre"):
                if exp.get(key) is not None:
                    checks.append((key, specific[key], exp[key], specific[key] == exp[key]))
        rows += [(f"{field}: {name}", ok, f"ours={ours!r} ffprobe={theirs!r}")
                 for field, ours, theirs, ok in checks]
    matched = sum(ok for _, ok, _ in rows)
    print(f"\nstream facts agreement: {matched}/{len(rows)}")
    for what, ok, detail in rows:
        if not ok:
            print(f"  MISMATCH {what}: {detail}")
    assert matched / len(rows) >= 0.9


def test_exact_facts(media: Path, tmp_path: Path) -> None:
    def read(relative: str) -> dict[str, Any]:
        return within_budget(job_for(media / relative, tmp_path))

    iphone4 = read("photo/apple_iphone_4_gps.jpg")["specific_metadata"]
    assert iphone4["gps_latitude"] == pytest.approx(41.853, abs=1e-6)
    assert iphone4["gps_longitude"] == pytest.approx(12.488833, abs=1e-6)
    assert iphone4["exposure"] == "1/15" and iphone4["exposure_time"] == pytest.approx(1 / 15, rel=1e-6)
    assert iphone4["resolution"] == "72x72 dpi"
    assert (iphone4["camera_make"], iphone4["camera_model"]) == ("Apple", "iPhone 4")

    canon = read("photo/canon_eos_1000d_orient6_lens.jpg")
    assert canon["specific_metadata"]["orientation"] == 6
    assert canon["width"] < canon["height"]
    assert (canon["width"], canon["height"]) == (2592, 3888)
    assert canon["specific_metadata"]["dimensions"] == "3888x2592"  # stored, before rotation
    assert canon["specific_metadata"]["lens_model"] == "EF-S18-55mm f/3.5-5.6 IS"

    # Lens only in the Nikon maker notes: exiftool's Composite LensID.
    nikon = read("photo/nikon_d5000.jpg")["specific_metadata"]
    assert nikon["lens_model"] == "AF-S DX VR Zoom-Nikkor 18-55mm f/3.5-5.6G"

    # GPS at 0,0 is kept; an empty GPS IFD gives None.
    zero = read("photo/samsung_gt-i9000_zero_gps_orient6.jpg")
    assert (zero["specific_metadata"]["gps_latitude"], zero["specific_metadata"]["gps_longitude"]) == (0.0, 0.0)
    assert (zero["width"], zero["height"]) == (480, 640)
    empty_gps = read("photo/motorola_moto_g9_plus_empty_gps.jpg")["specific_metadata"]
    assert empty_gps["gps_latitude"] is None and empty_gps["gps_longitude"] is None

    # HEIF irot 270 plus EXIF Orientation 6: portrait once, not rotated twice.
    heic = read("photo/samsung_sm-g975f_orient6.heic")
    assert (heic["width"], heic["height"]) == (3024, 4032)
    transpose = read("photo/orientation_transpose_5.jpg")
    assert (transpose["width"], transpose["height"]) == (1800, 1200)

    # An offset when the file says one, a naive wall clock when it does not.
    assert read("raw/canon_eos_r6_pruned.cr3")["taken_time"] == "2021-05-12T12:21:21+02:00"
    assert read("photo/casio_ex-z3.jpg")["taken_time"] == "2003-10-25T15:29:18"
    assert read("photo/casio_ex-z3.jpg")["specific_metadata"]["exposure"] == "2"
    assert read("photo/casio_qv-7000sx_no_exif.jpg")["taken_time"] is None

    assert read("raw/canon_eos_r6_pruned.cr3")["specific_metadata"]["is_raw"] is True
    assert read("broken/jpeg_with_nef_extension.nef")["specific_metadata"]["is_raw"] is False

    mov = read("video/apple_iphone_6_gps_rot90.mov")
    assert mov["specific_metadata"]["rotation"] == 90
    assert (mov["width"], mov["height"]) == (320, 568)
    assert mov["specific_metadata"]["camera_model"] == "Apple iPhone 6"
    assert mov["specific_metadata"]["gps_latitude"] == pytest.approx(32.0929, abs=1e-6)
    assert mov["taken_time"] == "2019-07-24T11:25:40+03:00"
    assert mov["taken_time_local"] == "2019-07-24T11:25:40"
    assert mov["duration"] == pytest.approx(4.002, abs=0.01)
    assert mov["specific_metadata"]["codec"] == "h264"
    # QuickTime creation_time is UTC.
    assert read("video/gps_1080p.mp4")["taken_time"] == "2017-02-22T08:20:28+00:00"

    pdf = read("document/pdflatex_4_pages.pdf")
    assert pdf["specific_metadata"]["page_count"] == 4
    titled = read("document/acrobat_distiller_title_author.pdf")["specific_metadata"]
    assert (titled["title"], titled["author"]) == ("This is a test PDF file", "cdaily")
    # Encrypted with a user password: nothing to count, but not an error.
    assert read("document/libreoffice_encrypted.pdf")["specific_metadata"]["page_count"] is None

    mp3 = read("audio/silence_id3v2.mp3")["specific_metadata"]
    assert (mp3["title"], mp3["artist"], mp3["album"]) == ("Silence", "piman", "Quod Libet Test Data")
    assert mp3["year"] == 2004
    chirp = read("audio/chirp_id3_all_fields.mp3")["specific_metadata"]
    assert (chirp["title"], chirp["artist"]) == ("Test Track Title", "Test Artist Name")
    assert chirp["codec"] == "mp3"
    flac = read("audio/silence_vorbis_comments_cover.flac")
    assert flac["specific_metadata"]["sample_rate"] == 44100
    assert flac["specific_metadata"]["channels"] == 2
    assert flac["specific_metadata"]["title"] == "Silence"  # not the cover picture's "A pixel."
    assert (flac["width"], flac["height"]) == (None, None)  # cover art is not a video
    opus = read("audio/opus_title_artist.opus")["specific_metadata"]
    assert (opus["title"], opus["artist"]) == ("De todos. Para todos.", "Mozilla.org")


# -- broken and garbage files ----------------------------------------------------------------------


def test_broken_files_raise_unprocessable_media_or_return_a_sound_dict(media: Path, tmp_path: Path) -> None:
    files = corpus_files(media, "broken")
    assert len(files) == 7
    outcomes = {}
    problems = []
    for path in files:
        job = job_for(path, tmp_path)
        try:
            result = within_budget(job)
        except UnprocessableMedia as exc:
            assert path.name in str(exc)
            outcomes[path.name] = "unprocessable"
            continue
        outcomes[path.name] = "read"
        problems += [f"{path.name}: {p}" for p in soundness_problems(result, job.asset_type)]
    assert not problems, "\n".join(problems)
    assert outcomes["corrupt_ebml_header.mkv"] == "unprocessable"
    # The truncated RAWs are read in part, and say they are damaged.
    for name in ("truncated_sony_zv-e10.arw", "truncated_leica_m10.dng"):
        assert "damaged" in within_budget(job_for(media / "broken" / name, tmp_path))["problems"][0]
    # Partly readable: the truncated JPEG's EXIF is intact, and is returned.
    truncated = within_budget(job_for(media / "broken/truncated_sony_e5823.jpg", tmp_path))
    assert truncated["specific_metadata"]["camera_model"] == "E5823"


@pytest.mark.parametrize(
    ("name", "content", "asset_type", "mime"),
    [
        ("noise.jpg", os.urandom(4096), "PHOTO", "image/jpeg"),
        # Noise that holds an MPEG audio frame sync: exiftool reads it as MP3 (was a flaky case).
        ("mp3-like-noise.jpg", random.Random(26).randbytes(4096), "PHOTO", "image/jpeg"),
        ("empty.mp4", b"", "VIDEO", "video/mp4"),
        ("text.mp3", b"this is not audio\n" * 10, "AUDIO", "audio/mpeg"),
        ("text.pdf", b"%PDF-1.4\nnot really\n", "DOCUMENT", "application/pdf"),
    ],
)
def test_garbage_raises_unprocessable_media_naming_the_file(
    tmp_path: Path, name: str, content: bytes, asset_type: str, mime: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    job = JobInput(1, "a", asset_type, mime, path, name, tmp_path / "d", tmp_path)
    with pytest.raises(UnprocessableMedia, match=re.escape(name)):
        within_budget(job)


# -- the exiftool process --------------------------------------------------------------------------


def test_one_exiftool_process_is_kept_and_restarted_when_it_died(media: Path, tmp_path: Path) -> None:
    job = job_for(media / "photo/apple_iphone_4_gps.jpg", tmp_path)
    within_budget(job)
    first = exiftool_process._exiftool._process.pid
    within_budget(job)
    assert exiftool_process._exiftool._process.pid == first
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    assert within_budget(job)["specific_metadata"]["camera_model"] == "iPhone 4"
    assert exiftool_process._exiftool._process.pid != first


def test_a_stuck_exiftool_is_killed_and_the_call_fails(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = job_for(media / "photo/apple_iphone_4_gps.jpg", tmp_path)
    within_budget(job)
    monkeypatch.setattr(exiftool_process, "EXIFTOOL_TIMEOUT_S", 1.0)
    stuck = exiftool_process._exiftool._process.pid
    os.kill(stuck, signal.SIGSTOP)  # it will answer nothing, ever
    started = time.monotonic()
    with pytest.raises(UnprocessableMedia, match="longer than 1 s"):
        within_budget(job, budget=20)
    assert time.monotonic() - started < 15
    # The next call gets a fresh process.
    assert within_budget(job)["specific_metadata"]["camera_model"] == "iPhone 4"
    assert exiftool_process._exiftool._process.pid != stuck


def test_exiftool_dying_in_the_middle_of_a_call_fails_that_call_at_once(media: Path, tmp_path: Path) -> None:
    job = job_for(media / "photo/apple_iphone_4_gps.jpg", tmp_path)
    within_budget(job)
    dying = exiftool_process._exiftool._process.pid
    os.kill(dying, signal.SIGSTOP)  # hold it mid-call, then kill it
    threading.Timer(0.5, os.kill, args=(dying, signal.SIGKILL)).start()
    started = time.monotonic()
    with pytest.raises(UnprocessableMedia, match="died"):
        within_budget(job, budget=20)
    assert time.monotonic() - started < exiftool_process.EXIFTOOL_TIMEOUT_S / 2
    assert within_budget(job)["specific_metadata"]["camera_model"] == "iPhone 4"
