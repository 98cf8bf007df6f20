"""processors.thumbnails on the real-media corpus (tests/media)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import av
import pytest
import pyvips
import rawpy

from infra.media_types import sniff_file
from processors.base import JobInput, UnprocessableMedia
from tests.media_jobs import BROKEN_BUDGET_S, job_for, run_on_broken
from processors.thumbnails import make_thumbnails

TARGETS = {"small": 256, "medium": 1024, "large": 2048}

PHOTOS = [
    "animated_progressbar.gif", "apple_iphone_4_gps.jpg", "apple_iphone_5_gps_orient3.jpg",
    "apple_iphone_7_gps.heic", "apple_iphone_xr_1x1px_gps.jpg", "canon_eos_1000d_orient6_lens.jpg",
    "canon_eos_5d_mark_iii_lens.jpg", "canon_eos_70d_lens.avif", "canon_eos_rebel_t3i_lens.jpg",
    "canon_powershot_a85_orient8.jpg", "casio_ex-z3.jpg", "casio_qv-7000sx_no_exif.jpg",
    "fujifilm_finepix_s5500.jpg", "fujifilm_finepixs1pro_gps.jpg", "htc_desire_gps.jpg",
    "htc_desire_gps.webp", "kodak_dx4330.jpg", "macos_screenshot_exif.png",
    "motorola_moto_g9_plus_empty_gps.jpg", "nikon_d1x_exif.webp", "nikon_d5000.jpg",
    "nokia_lumia_800_gps.jpg", "olympus_e-420_lens.jpg", "olympus_pen_e-p3_lens.jpg",
    "orientation_transpose_5.jpg", "panasonic_dmc-lc40.jpg", "pentax_ist_d_no_orientation.jpg",
    "phase_one_p45plus.tif", "samsung_galaxy_s9plus_lens.jpg",
    "samsung_gt-i9000_zero_gps_orient6.jpg", "samsung_sm-g975f_orient6.heic",
    "sony_cybershot_orient6.jpg", "sony_dsc-hx5v_gps.jpg", "still_500x375.gif",
]
VIDEOS = [
    "apple_iphone_6_gps_rot90.mov", "gps_1080p.mp4", "gps_udta_720p.mp4", "h264_aac.mkv",
    "mpeg4_amr.3gp", "panasonic_mjpeg.mov", "rot90_zero_gps.mp4", "sony_ilce-7m3_avchd.mts",
    "vp8_1080p.webm",
]
AUDIO = [
    "aac_itunes_tags.m4a", "chirp_id3_all_fields.mp3", "opus_title_artist.opus",
    "silence_id3_chunk.wav", "silence_id3v2.mp3", "silence_vorbis_comments_cover.flac",
    "vorbis_no_tags.ogg",
]
DOCUMENTS = [
    "acrobat_distiller_title_author.pdf", "google_docs_titled.pdf", "pdflatex_4_pages.pdf",
    "pdflatex_with_jpeg.pdf",
]
# RAW files whose image data was stripped or pruned and that carry no usable preview.
RAW_WITHOUT_IMAGE = [
    "apple_iphone_12_pro_pruned_gps.dng", "canon_eos_350d_stripped.cr2",
    "nikon_d70_stripped.nef", "panasonic_dmc-lx3_stripped.rw2",
]




def check_thumbnails(result: dict[str, Any], job: JobInput, longest: dict[str, int]) -> dict[str, pyvips.Image]:
    """The three renditions exist, are WebP of the size they claim and of the expected longest side."""
    thumbs = result["thumbnails"]
    assert set(thumbs) == set(TARGETS)
    images = {}
    for name, t in thumbs.items():
        assert t["mime_type"] == "image/webp"
        assert not Path(t["path"]).is_absolute() and "\\" not in t["path"]
        file = job.derived_root / t["path"]
        assert file.parent == job.derived_dir and file.name == f"thumb-{name}.webp"
        image = pyvips.Image.new_from_file(str(file), fail_on="error")
        assert image.get("vips-loader") == "webpload"
        assert (image.width, image.height) == (t["width"], t["height"])
        assert image.avg() >= 0  # decodes to the end
        assert max(image.width, image.height) == longest[name], (name, image.width, image.height)
        assert not image.get_typeof("exif-data"), "metadata must be stripped"
        images[name] = image
    assert not list(job.derived_dir.glob(".*partial*"))
    return images


def expected(source_longest: int) -> dict[str, int]:
    return {name: min(size, source_longest) for name, size in TARGETS.items()}


@pytest.mark.parametrize("name", PHOTOS)
def test_photo_sizes(media: Path, tmp_path: Path, name: str) -> None:
    path = media / "photo" / name
    header = pyvips.Image.new_from_file(str(path))  # header only: rotation keeps the longest side
    job = job_for(path, tmp_path)
    check_thumbnails(make_thumbnails(job), job, expected(max(header.width, header.height)))


def test_one_pixel_photo_stays_one_pixel(media: Path, tmp_path: Path) -> None:
    job = job_for(media / "photo" / "apple_iphone_xr_1x1px_gps.jpg", tmp_path)
    thumbs = make_thumbnails(job)["thumbnails"]
    assert {(t["width"], t["height"]) for t in thumbs.values()} == {(1, 1)}


@pytest.mark.parametrize(
    "folder,name",
    [
        ("photo", "canon_eos_1000d_orient6_lens.jpg"),
        ("photo", "samsung_sm-g975f_orient6.heic"),
        ("photo", "samsung_gt-i9000_zero_gps_orient6.jpg"),
        ("photo", "nokia_lumia_800_gps.jpg"),
        ("video", "apple_iphone_6_gps_rot90.mov"),
        ("video", "rot90_zero_gps.mp4"),
    ],
)
def test_portrait(media: Path, tmp_path: Path, folder: str, name: str) -> None:
    job = job_for(media / folder / name, tmp_path)
    for t in make_thumbnails(job)["thumbnails"].values():
        assert t["height"] > t["width"], (name, t)


@pytest.mark.parametrize(
    "name", ["apple_iphone_5_gps_orient3.jpg", "orientation_transpose_5.jpg", "apple_iphone_7_gps.heic",
             # Portrait pixels stored with a rotating tag: the tag is honoured, as browsers and
             # exiftool do, so these display landscape (and agree with the metadata's size).
             "canon_powershot_a85_orient8.jpg", "sony_cybershot_orient6.jpg"]
)
def test_landscape(media: Path, tmp_path: Path, name: str) -> None:
    job = job_for(media / "photo" / name, tmp_path)
    for t in make_thumbnails(job)["thumbnails"].values():
        assert t["width"] > t["height"], (name, t)


def test_orientation_3_is_turned_upside_up(media: Path, tmp_path: Path) -> None:
    """Orientation 3: the thumbnail is the stored picture turned 180 degrees."""
    path = media / "photo" / "apple_iphone_5_gps_orient3.jpg"
    job = job_for(path, tmp_path)
    small = pyvips.Image.new_from_file(str(tmp_path / make_thumbnails(job)["thumbnails"]["small"]["path"]))
    stored = pyvips.Image.thumbnail(str(path), 256, no_rotate=True).copy_memory()
    diff_turned = (small.cast("float") - stored.rot("d180").cast("float")).abs().avg()
    diff_as_stored = (small.cast("float") - stored.cast("float")).abs().avg()
    assert diff_turned < diff_as_stored / 2


def test_raw_with_image_data_is_decoded(media: Path, tmp_path: Path) -> None:
    path = media / "raw" / "blackmagic_pocket_cinema_4k.dng"
    with rawpy.imread(str(path)) as raw:
        longest = max(raw.sizes.width, raw.sizes.height)
    job = job_for(path, tmp_path)
    images = check_thumbnails(make_thumbnails(job), job, expected(longest))
    assert images["medium"].deviate() > 10  # a picture, not a flat stub


def test_raw_uses_embedded_preview(media: Path, tmp_path: Path) -> None:
    """The pruned CR3 has no raw data but a 1620x1080 preview."""
    job = job_for(media / "raw" / "canon_eos_r6_pruned.cr3", tmp_path)
    images = check_thumbnails(make_thumbnails(job), job, expected(1620))
    assert images["large"].height == 1080


def test_raw_with_only_a_thumbnail_uses_it(media: Path, tmp_path: Path) -> None:
    """The stripped RAF's PreviewImage is an 8x8 white placeholder; its 160x120 thumbnail is real."""
    job = job_for(media / "raw" / "fujifilm_s5pro_stripped.raf", tmp_path)
    images = check_thumbnails(make_thumbnails(job), job, expected(160))
    assert images["small"].deviate() > 10


@pytest.mark.parametrize("name", RAW_WITHOUT_IMAGE)
def test_raw_without_image_data_is_unprocessable(media: Path, tmp_path: Path, name: str) -> None:
    job = job_for(media / "raw" / name, tmp_path)
    with pytest.raises(UnprocessableMedia, match="no usable image"):
        make_thumbnails(job)
    assert not list(job.derived_dir.glob("thumb-*"))


@pytest.mark.parametrize("name", VIDEOS)
def test_video_poster_sizes(media: Path, tmp_path: Path, name: str) -> None:
    path = media / "video" / name
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        longest = max(v.codec_context.width, v.codec_context.height)
    job = job_for(path, tmp_path)
    images = check_thumbnails(make_thumbnails(job), job, expected(longest))
    assert images["small"].deviate() > 2  # a picture, not a black or grey frame


def test_video_poster_is_upright(media: Path, tmp_path: Path) -> None:
    """rot90_zero_gps.mp4 films a keyboard; stored landscape with a -90 display matrix. The
    poster is the decoded frame turned clockwise, not counter-clockwise."""
    path = media / "video" / "rot90_zero_gps.mp4"
    job = job_for(path, tmp_path)
    small = pyvips.Image.new_from_file(str(tmp_path / make_thumbnails(job)["thumbnails"]["small"]["path"]))
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        rgb = frame.to_ndarray(format="rgb24")
    stored = pyvips.Image.new_from_array(rgb).copy(interpretation="srgb")
    stored = stored.thumbnail_image(256)
    first = stored.rot("d90")
    assert (small.width, small.height) == (first.width, first.height)
    # Same orientation as the clockwise turn: the top-left and top-right quadrants are brighter
    # or darker the same way (frames differ: the poster is taken at 10% of the duration).
    def quadrant_means(im: pyvips.Image) -> list[float]:
        w, h = im.width // 2, im.height // 2
        return [im.crop(x, y, w, h).avg() for y in (0, h) for x in (0, w)]
    cw, ccw, got = quadrant_means(first), quadrant_means(stored.rot("d270")), quadrant_means(small)
    err_cw = sum(abs(a - b) for a, b in zip(cw, got))
    err_ccw = sum(abs(a - b) for a, b in zip(ccw, got))
    assert err_cw < err_ccw


@pytest.mark.parametrize("name", AUDIO)
def test_audio_waveform(media: Path, tmp_path: Path, name: str) -> None:
    job = job_for(media / "audio" / name, tmp_path)
    images = check_thumbnails(make_thumbnails(job), job, {"small": 256, "medium": 1024, "large": 1024})
    for image in images.values():
        assert image.width == 4 * image.height  # a wide strip
        assert image.avg() > 128  # light background, dark bars


def test_audio_waveform_shows_sound(media: Path, tmp_path: Path) -> None:
    job = job_for(media / "audio" / "vorbis_no_tags.ogg", tmp_path)
    medium = pyvips.Image.new_from_file(str(tmp_path / make_thumbnails(job)["thumbnails"]["medium"]["path"]))
    dark = (medium.colourspace("b-w") < 128).avg() / 255
    assert dark > 0.05  # bars, not just the flat line of silence


@pytest.mark.parametrize("name", DOCUMENTS)
def test_pdf_first_page(media: Path, tmp_path: Path, name: str) -> None:
    job = job_for(media / "document" / name, tmp_path)
    images = check_thumbnails(make_thumbnails(job), job, dict(TARGETS))
    assert images["large"].height > images["large"].width  # A4/letter pages are portrait
    assert 200 < images["medium"].avg() < 255  # mostly white paper with some ink


def test_pdf_with_user_password_is_unprocessable(media: Path, tmp_path: Path) -> None:
    job = job_for(media / "document" / "libreoffice_encrypted.pdf", tmp_path)
    with pytest.raises(UnprocessableMedia, match="password"):
        make_thumbnails(job)




def test_broken_files_are_unprocessable_or_sound(media: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    outcomes = run_on_broken("processors.thumbnails:make_thumbnails", media / "broken", tmp_path)
    assert set(outcomes) == {p.name for p in (media / "broken").iterdir()}
    for name, o in outcomes.items():
        assert o["outcome"] in ("ok", "unprocessable", "unrecognised"), (name, o)
        assert o.get("seconds", 0) < 20, (name, o)
        if o["outcome"] == "unprocessable":
            assert o["message"], name
        if o["outcome"] == "ok":  # what comes out must be a sound picture
            for t in o["result"]["thumbnails"].values():
                image = pyvips.Image.new_from_file(str(tmp_path / t["path"]), fail_on="error")
                assert image.deviate() > 2, (name, t)
    # These cannot give a picture at all.
    for name in ("corrupt_chunk.png", "corrupt_ebml_header.mkv", "dnl_marker_zero_height.jpg",
                 "truncated_sony_e5823.jpg", "truncated_leica_m10.dng"):
        assert outcomes[name]["outcome"] == "unprocessable", (name, outcomes[name])
    assert time.monotonic() - started < BROKEN_BUDGET_S


def test_unknown_asset_type_is_unprocessable(media: Path, tmp_path: Path) -> None:
    job = job_for(media / "photo" / "casio_ex-z3.jpg", tmp_path)
    job = JobInput(**{**job.__dict__, "asset_type": "SPREADSHEET"})
    with pytest.raises(UnprocessableMedia):
        make_thumbnails(job)


def test_garbage_named_like_a_photo_is_unprocessable(tmp_path: Path) -> None:
    path = tmp_path / "garbage.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40)
    job = JobInput(1, "g", "PHOTO", "image/jpeg", path, path.name, tmp_path / "d" / "g", tmp_path)
    with pytest.raises(UnprocessableMedia):
        make_thumbnails(job)


def test_garbage_video_and_audio_are_unprocessable(tmp_path: Path) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(bytes(range(256)) * 64)
    for asset_type, mime in (("VIDEO", "video/mp4"), ("AUDIO", "audio/mpeg"), ("DOCUMENT", "application/pdf")):
        job = JobInput(1, "g", asset_type, mime, path, path.name, tmp_path / "d" / asset_type, tmp_path)
        with pytest.raises(UnprocessableMedia):
            make_thumbnails(job)


TRUNCATED_SAMPLES = [
    "photo/canon_eos_5d_mark_iii_lens.jpg", "photo/apple_iphone_7_gps.heic",
    "photo/canon_eos_70d_lens.avif", "photo/macos_screenshot_exif.png", "photo/htc_desire_gps.webp",
    "photo/phase_one_p45plus.tif", "photo/animated_progressbar.gif", "raw/canon_eos_r6_pruned.cr3",
    "raw/blackmagic_pocket_cinema_4k.dng", "video/gps_udta_720p.mp4", "video/vp8_1080p.webm",
    "audio/silence_vorbis_comments_cover.flac", "audio/opus_title_artist.opus",
    "document/pdflatex_with_jpeg.pdf",
]


@pytest.mark.parametrize("rel", TRUNCATED_SAMPLES)
def test_truncated_files_are_unprocessable_or_sound(media: Path, tmp_path: Path, rel: str) -> None:
    src = media / rel
    found = sniff_file(str(src), src.name)
    assert found is not None
    data = src.read_bytes()
    for fraction in (0.1, 0.6):
        cut = tmp_path / f"cut{fraction}-{src.name}"
        cut.write_bytes(data[: int(len(data) * fraction)])
        job = JobInput(1, cut.stem, found.asset_type.value, found.mime_type, cut, cut.name,
                       tmp_path / "d" / cut.stem, tmp_path)
        started = time.monotonic()
        try:
            result = make_thumbnails(job)
        except UnprocessableMedia:
            assert not job.derived_dir.exists() or not list(job.derived_dir.glob("*.webp"))
            continue
        finally:
            assert time.monotonic() - started < 20
        for t in result["thumbnails"].values():
            image = pyvips.Image.new_from_file(str(tmp_path / t["path"]), fail_on="error")
            assert image.avg() >= 0
