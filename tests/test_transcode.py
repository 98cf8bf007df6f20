"""processors.transcode on the real-media corpus (tests/media)."""

from __future__ import annotations

import time
from pathlib import Path

import av
import pytest

from processors import transcode
from processors.base import JobInput, UnprocessableMedia
from tests.media_jobs import BROKEN_BUDGET_S, job_for, run_on_broken
from processors.transcode import make_web_version


WEB_PLAYABLE_VIDEO = [
    "apple_iphone_6_gps_rot90.mov", "gps_1080p.mp4", "gps_udta_720p.mp4", "rot90_zero_gps.mp4",
]
# WebM too: /video/web is MP4 for every video (issue #10).
TRANSCODED_VIDEO = ["h264_aac.mkv", "mpeg4_amr.3gp", "panasonic_mjpeg.mov", "sony_ilce-7m3_avchd.mts",
                    "vp8_1080p.webm"]
WEB_PLAYABLE_AUDIO = [
    "aac_itunes_tags.m4a", "chirp_id3_all_fields.mp3", "opus_title_artist.opus",
    "silence_id3v2.mp3", "vorbis_no_tags.ogg",
]
TRANSCODED_AUDIO = ["silence_id3_chunk.wav", "silence_vorbis_comments_cover.flac"]




def top_level_boxes(path: Path) -> list[str]:
    data = path.read_bytes()
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif size == 0:
            size = len(data) - pos
        assert size >= 8, f"bad box size at {pos}"
        boxes.append(kind)
        pos += size
    assert pos == len(data), "boxes do not cover the file"
    return boxes


def assert_faststart(path: Path) -> None:
    boxes = top_level_boxes(path)
    assert boxes[0] == "ftyp"
    assert "moov" in boxes and "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat"), boxes


def source_duration(path: Path) -> float:
    with av.open(str(path)) as c:
        return c.duration / av.time_base


@pytest.mark.parametrize("name", WEB_PLAYABLE_VIDEO)
def test_web_playable_video_is_skipped(media: Path, tmp_path: Path, name: str) -> None:
    job = job_for(media / "video" / name, tmp_path)
    result = make_web_version(job)
    assert set(result) == {"skipped"} and "web-playable" in result["skipped"]
    assert not (job.derived_dir / "web.mp4").exists()


@pytest.mark.parametrize("name", TRANSCODED_VIDEO)
def test_video_is_transcoded_to_web_mp4(media: Path, tmp_path: Path, name: str) -> None:
    path = media / "video" / name
    job = job_for(path, tmp_path)
    web = make_web_version(job)["web_video"]
    out = tmp_path / web["path"]
    assert out == job.derived_dir / "web.mp4" and web["mime_type"] == "video/mp4"
    assert_faststart(out)
    with av.open(str(path)) as c:
        src_has_audio = bool(c.streams.audio)
        src = c.streams.video[0].codec_context
        src_w, src_h = src.width, src.height
    with av.open(str(out)) as c:
        video = c.streams.video[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert (video.codec_context.width, video.codec_context.height) == (web["width"], web["height"])
        assert web["height"] <= 1080 and web["width"] % 2 == 0 and web["height"] % 2 == 0
        assert bool(c.streams.audio) == src_has_audio
        if src_has_audio:
            assert c.streams.audio[0].codec_context.name == "aac"
        frames = sum(1 for _ in c.decode(video=0))
        assert frames >= 1
    # No rotation in these files: the size is kept (all are at most 1080 high), aspect too.
    assert (web["width"], web["height"]) == (src_w, src_h)
    assert web["duration"] == pytest.approx(source_duration(path), abs=0.1)
    assert not list(job.derived_dir.glob(".*partial*"))


def test_transcode_bakes_rotation_and_caps_height(media: Path, tmp_path: Path) -> None:
    """rot90_zero_gps.mp4 is 1280x720 with a -90 display matrix: upright it is 720x1280, too
    high, so 608x1080. (make_web_version skips it as web-playable; the transcoder is called
    directly to check what it does with rotation.)"""
    path = media / "video" / "rot90_zero_gps.mp4"
    out = tmp_path / "web.mp4"
    info = transcode._transcode_video(path, out)
    assert (info["width"], info["height"]) == (608, 1080)
    assert_faststart(out)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == (608, 1080)
        assert not frame.rotation  # baked into the pixels, no display matrix left
    assert info["duration"] == pytest.approx(source_duration(path), abs=0.1)


def test_transcode_keeps_portrait_iphone_video_upright(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "web.mp4"
    info = transcode._transcode_video(media / "video" / "apple_iphone_6_gps_rot90.mov", out)
    assert (info["width"], info["height"]) == (320, 568)


@pytest.mark.parametrize("name", WEB_PLAYABLE_AUDIO)
def test_web_playable_audio_is_skipped(media: Path, tmp_path: Path, name: str) -> None:
    job = job_for(media / "audio" / name, tmp_path)
    result = make_web_version(job)
    assert set(result) == {"skipped"} and "web-playable" in result["skipped"]


@pytest.mark.parametrize("name", TRANSCODED_AUDIO)
def test_audio_is_transcoded_to_aac(media: Path, tmp_path: Path, name: str) -> None:
    path = media / "audio" / name
    job = job_for(path, tmp_path)
    web = make_web_version(job)["web_audio"]
    out = tmp_path / web["path"]
    assert out == job.derived_dir / "web.m4a" and web["mime_type"] == "audio/mp4"
    assert_faststart(out)
    with av.open(str(out)) as c:
        assert not c.streams.video  # cover art is not carried over
        assert c.streams.audio[0].codec_context.name == "aac"
        samples = sum(f.samples for f in c.decode(audio=0))
        rate = c.streams.audio[0].codec_context.sample_rate
    assert samples / rate == pytest.approx(source_duration(path), abs=0.1)
    assert web["duration"] == pytest.approx(source_duration(path), abs=0.1)


@pytest.mark.parametrize(
    "folder,name", [("photo", "casio_ex-z3.jpg"), ("document", "google_docs_titled.pdf"), ("raw", "canon_eos_r6_pruned.cr3")]
)
def test_other_types_are_skipped(media: Path, tmp_path: Path, folder: str, name: str) -> None:
    assert make_web_version(job_for(media / folder / name, tmp_path)) == {"skipped": "not audio or video"}


def test_corrupt_video_is_unprocessable(media: Path, tmp_path: Path) -> None:
    job = job_for(media / "broken" / "corrupt_ebml_header.mkv", tmp_path)
    with pytest.raises(UnprocessableMedia):
        make_web_version(job)
    assert not (job.derived_dir / "web.mp4").exists()


def test_garbage_is_unprocessable(tmp_path: Path) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(bytes(range(256)) * 64)
    for asset_type, mime in (("VIDEO", "video/x-matroska"), ("AUDIO", "audio/wav")):
        job = JobInput(1, "g", asset_type, mime, path, path.name, tmp_path / "d" / asset_type, tmp_path)
        with pytest.raises(UnprocessableMedia):
            make_web_version(job)


@pytest.mark.parametrize(
    "name,mime", [("sony_ilce-7m3_avchd.mts", "video/mp2t"), ("mpeg4_amr.3gp", "video/3gpp")]
)
def test_truncated_video_gives_a_sound_web_version(media: Path, tmp_path: Path, name: str, mime: str) -> None:
    """A stream cut after two thirds (MPEG-TS needs no index; the 3GP has its moov first) still
    yields a playable web version of what is left."""
    data = (media / "video" / name).read_bytes()
    cut = tmp_path / f"cut-{name}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    job = JobInput(1, "cut", "VIDEO", mime, cut, cut.name, tmp_path / "d" / "cut", tmp_path)
    web = make_web_version(job)["web_video"]
    out = tmp_path / web["path"]
    assert_faststart(out)
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 1
    assert 0 < web["duration"] < source_duration(media / "video" / name)


@pytest.mark.parametrize("fraction", [0.05, 0.5])
def test_truncated_mkv_is_unprocessable_or_sound(media: Path, tmp_path: Path, fraction: float) -> None:
    data = (media / "video" / "h264_aac.mkv").read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * fraction)])
    job = JobInput(1, "cut", "VIDEO", "video/x-matroska", cut, cut.name, tmp_path / "d" / "cut", tmp_path)
    try:
        web = make_web_version(job)["web_video"]
    except UnprocessableMedia:
        assert not (job.derived_dir / "web.mp4").exists()
        assert not list(job.derived_dir.glob(".*partial*"))
        return
    with av.open(str(tmp_path / web["path"])) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 1




def test_broken_files_are_unprocessable_or_skipped(media: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    outcomes = run_on_broken("processors.transcode:make_web_version", media / "broken", tmp_path)
    assert set(outcomes) == {p.name for p in (media / "broken").iterdir()}
    for name, o in outcomes.items():
        assert o["outcome"] in ("ok", "unprocessable", "unrecognised"), (name, o)
        assert o.get("seconds", 0) < 20, (name, o)
        if o["outcome"] == "ok":
            assert o["result"] == {"skipped": "not audio or video"}, (name, o)  # the images
    assert outcomes["corrupt_ebml_header.mkv"]["outcome"] == "unprocessable"
    assert time.monotonic() - started < BROKEN_BUDGET_S
