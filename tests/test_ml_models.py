"""The ML processors on tiny models of the real architectures (random weights, built from
configs and loaded with `from_pretrained` from a temp dir): shapes, ordering, batching, loading
once per process, skipping without a model, and failing on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: models load from temp dirs only
torch = pytest.importorskip("torch", reason="the ML tests need the [ml] extra (pip install -e '.[ml]')")
pytest.importorskip("transformers", reason="the ML tests need the [ml] extra (pip install -e '.[ml]')")

import numpy as np  # noqa: E402

from processors.base import UnprocessableMedia  # noqa: E402
from processors.ml import models as registry  # noqa: E402
from processors.ml.caption import Captioner, process_caption  # noqa: E402
from processors.ml.clip import embed_images, load_clip, process_clip  # noqa: E402
from processors.ml.faces import process_face  # noqa: E402
from processors.ml.models import choice_for  # noqa: E402
from processors.ml.ocr import Recogniser, find_text_lines, process_ocr  # noqa: E402
from processors.ml.species import load_labels, process_species  # noqa: E402
from processors.registry import processors_for, run, with_options  # noqa: E402
from tests.conftest import MEDIA, make_settings  # noqa: E402
from tests.media_jobs import job_for  # noqa: E402
from tests.ml_fixtures import build_face_models, coloured_images, models_once, text_image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PHOTO = MEDIA / "photo" / "canon_eos_5d_mark_iii_lens.jpg"
VIDEO = MEDIA / "video" / "gps_udta_720p.mp4"


@pytest.fixture(scope="module")
def ml(tmp_path_factory):
    return models_once(tmp_path_factory.mktemp("ml-models"))


def choice(path: Path, task: str = "process_clip", batch_size: int = 8):
    return choice_for(task, str(path), "cpu", batch_size)


# -- CLIP ------------------------------------------------------------------------------------


def test_image_embeddings_are_unit_vectors_in_input_order_and_a_batch_equals_singles(ml, tmp_path):
    paths = []
    for i, image in enumerate(coloured_images(8)):
        paths.append(tmp_path / f"{i}.png")
        image.save(paths[-1])
    batched = np.array(embed_images(paths, model=str(ml["clip"]), device="cpu", batch_size=8))
    singles = np.array([embed_images([p], model=str(ml["clip"]), device="cpu", batch_size=1)[0] for p in paths])
    assert batched.shape == (8, 16)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert np.allclose(batched, singles, atol=1e-5)
    # Order is kept: reversed input gives reversed output, and the pictures differ.
    reverse = np.array(embed_images(paths[::-1], model=str(ml["clip"]), device="cpu", batch_size=3))
    assert np.allclose(reverse[::-1], batched, atol=1e-5)
    assert len({tuple(np.round(v, 4)) for v in batched}) == 8


def test_text_embeddings_batch_like_singles_whatever_their_padding(ml):
    clip = load_clip(choice(ml["clip"]))
    texts = ["a red dog", "a photo of the cat on a beach with a blue sky", "tree", "a city street in snow",
             "black and white", "the sunset", "a bird in a tree with a flower", "car"]
    batched = clip.embed_texts(texts)
    singles = np.concatenate([clip.embed_texts([t]) for t in texts])
    assert batched.shape == (8, clip.dimension) == (8, 16)
    assert np.allclose(batched, singles, atol=1e-5)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


def test_a_model_loads_once_per_process_however_many_jobs(ml, tmp_path):
    job = job_for(PHOTO, tmp_path)
    key = ("clip", str(ml["clip"]), "cpu")
    registry.release()
    before = registry.LOADS[key]
    first = process_clip(job, model=str(ml["clip"]), device="cpu", batch_size="8")
    second = process_clip(job, model=str(ml["clip"]), device="cpu", batch_size="8")
    assert registry.LOADS[key] == before + 1
    assert first == second and first["model"] == "clip" and len(first["vector"]) == 16
    registry.release()  # frees the models: the next job loads again
    process_clip(job, model=str(ml["clip"]), device="cpu", batch_size="8")
    assert registry.LOADS[key] == before + 2


def test_a_worker_child_loads_a_model_once_for_all_its_jobs(ml, tmp_path):
    """The worker's pool: forkserver children, as processors/worker.py makes them."""
    import multiprocessing

    from pebble import ProcessPool

    spec = with_options("processors.ml.clip:process_clip", model=str(ml["clip"]), device="cpu", batch_size=4)
    job = job_for(PHOTO, tmp_path)
    with ProcessPool(max_workers=1, context=multiprocessing.get_context("forkserver")) as pool:
        results = [pool.schedule(run, args=(spec, job)).result(timeout=120) for _ in range(3)]
        loads = pool.schedule(registry.loaded).result(timeout=30)
    assert results[0] == results[1] == results[2]
    assert loads == {("clip", str(ml["clip"]), "cpu"): 1}


def test_a_video_is_embedded_from_its_sampled_frames(ml, tmp_path):
    result = process_clip(job_for(VIDEO, tmp_path), model=str(ml["clip"]), device="cpu", batch_size="2")
    assert result["frames"] == 4
    assert abs(np.linalg.norm(result["vector"]) - 1.0) < 1e-5


def test_every_corpus_video_is_embedded_and_a_sound_only_one_is_skipped(ml, tmp_path):
    for path in sorted((MEDIA / "video").iterdir()):
        result = process_clip(job_for(path, tmp_path), model=str(ml["clip"]), device="cpu", batch_size="4")
        assert 1 <= result["frames"] <= 4 and len(result["vector"]) == 16, path.name
    sound = job_for(MEDIA / "audio" / "aac_itunes_tags.m4a", tmp_path)
    as_video = sound.__class__(**{**sound.__dict__, "asset_type": "VIDEO"})
    for process in (process_clip, process_caption):
        result = process(as_video, model=str(ml["clip"] if process is process_clip else ml["caption"]), device="cpu")
        assert result == {"skipped": "the video has no picture stream (sound only): nothing to look at"}


def test_auto_device_is_cuda_only_when_present():
    assert choice_for("process_clip", "m", "auto", 4).device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert choice_for("process_clip", "m", "cpu", 0).batch_size == 1


# -- species ---------------------------------------------------------------------------------


def test_the_shipped_label_set_has_hundreds_of_species_with_taxonomy():
    labels = load_labels()
    assert len(labels) >= 300
    assert len({label.scientific_name for label in labels}) == len(labels)
    assert all(len(label.taxonomy) == 5 and label.common_name for label in labels)


def test_species_are_top_k_best_first_with_scores(ml, tmp_path):
    result = process_species(job_for(PHOTO, tmp_path), model=str(ml["species"]), device="cpu",
                             batch_size="8", top_k="7")
    predictions = result["predictions"]
    assert result["model"] == "clip" and len(predictions) == 7
    scores = [p["score"] for p in predictions]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert {"label", "scientific_name", "score", "taxonomy"} <= set(predictions[0])
    assert set(predictions[0]["taxonomy"]) == {"kingdom", "phylum", "class", "order", "family"}
    # Softmax over the whole label set: the scores of every label sum to one.
    everything = process_species(job_for(PHOTO, tmp_path), model=str(ml["species"]), device="cpu",
                                 batch_size="8", top_k="100000")
    assert len(everything["predictions"]) == len(load_labels())
    assert abs(sum(p["score"] for p in everything["predictions"]) - 1.0) < 1e-3


# -- OCR -------------------------------------------------------------------------------------


def test_the_line_detector_finds_lines_and_blocks_in_reading_order():
    page = text_image([(20, 20, "Hello Darkroom"), (20, 90, "second line here"), (420, 90, "cell"),
                       (20, 160, "third")])
    boxes = find_text_lines(np.asarray(page.convert("L")))
    assert len(boxes) == 4
    assert [b[1] // 40 for b in boxes] == sorted(b[1] // 40 for b in boxes)  # top to bottom
    assert boxes[1][0] < boxes[2][0] and abs(boxes[1][1] - boxes[2][1]) < 8  # one line, two blocks
    assert all(6 <= h <= 40 and w >= 40 for _, _, w, h in boxes)
    blank = np.full((200, 300), 255, np.uint8)
    assert find_text_lines(blank) == []


def test_ocr_lines_have_text_boxes_and_confidence_and_batch_like_singles(ml, tmp_path):
    page = text_image([(20, 20, "Hello Darkroom"), (20, 90, "second line here"), (20, 160, "third")])
    path = tmp_path / "page.png"
    page.save(path)
    job = job_for(path, tmp_path)
    result = process_ocr(job, model=str(ml["ocr"]), device="cpu", batch_size="8", min_confidence="0")
    assert result["model"] == "ocr"
    for line in result["lines"]:
        assert line["text"] and 0 <= line["confidence"] <= 1
        x, y, w, h = line["box"]
        assert 0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 and 0 < h <= 1
    assert result["text"] == "\n".join(line["text"] for line in result["lines"])
    recogniser = Recogniser(choice(ml["ocr"], "process_ocr"))
    crops = [page.crop((0, 0, 40 + 20 * i, 40)) for i in range(8)]
    batched = recogniser.read(crops)
    recogniser.batch_size = 1
    singles = recogniser.read(crops)
    assert [t for t, _ in batched] == [t for t, _ in singles]
    assert np.allclose([c for _, c in batched], [c for _, c in singles], atol=1e-4)


# -- faces and captions ----------------------------------------------------------------------


def test_faces_have_boxes_confidences_and_unit_embeddings(ml, tmp_path):
    result = process_face(job_for(PHOTO, tmp_path), model=str(ml["face"]), device="cpu",
                          batch_size="4", threshold="0")
    assert result["model"] == "detector+embedder"
    assert 1 <= len(result["faces"]) <= 6
    confidences = [f["confidence"] for f in result["faces"]]
    assert confidences == sorted(confidences, reverse=True)
    for face in result["faces"]:
        assert len(face["box"]) == 4 and all(0 <= v <= 1 for v in face["box"])
        assert len(face["embedding"]) == 32 and abs(np.linalg.norm(face["embedding"]) - 1) < 1e-4
    none = process_face(job_for(PHOTO, tmp_path), model=str(ml["face"]), device="cpu", threshold="1.01")
    assert none["faces"] == []


def test_captions_batch_like_singles_and_a_video_is_captioned_per_frame(ml, tmp_path):
    captioner = Captioner(choice(ml["caption"], "process_caption"))
    images = coloured_images(8)
    batched = captioner.caption(images, max_new_tokens=6)
    captioner.batch_size = 1
    assert batched == captioner.caption(images, max_new_tokens=6)
    assert len(batched) == 8 and all(isinstance(c, str) for c in batched)  # random weights: any words
    photo = process_caption(job_for(PHOTO, tmp_path), model=str(ml["caption"]), device="cpu", batch_size="8")
    assert photo["model"] == "caption" and len(photo["frames"]) == 1
    assert photo["caption"] == photo["frames"][0]
    video = process_caption(job_for(VIDEO, tmp_path), model=str(ml["caption"]), device="cpu", batch_size="8")
    assert len(video["frames"]) == 4
    assert video["caption"] == "; ".join(dict.fromkeys(c for c in video["frames"] if c))


# -- the registry: specs, skipping, failures -------------------------------------------------


def test_specs_carry_the_model_choice_to_the_child_process(ml, tmp_path):
    settings = make_settings(tmp_path, "sqlite", model_clip=str(ml["clip"]), ml_device="cpu", ml_batch_size=3)
    specs = processors_for(settings)
    assert specs["metadata_asset"] == "processors.metadata:extract_metadata"
    assert specs["process_clip"].startswith("processors.ml.clip:process_clip?model=")
    result = run(specs["process_clip"], job_for(PHOTO, tmp_path))
    assert result["model"] == "clip" and len(result["vector"]) == 16
    assert with_options("m:f?a=1", b="x y&z") == "m:f?a=1&b=x+y%26z"


def test_a_task_without_a_model_is_skipped_and_says_which_setting_turns_it_on(tmp_path):
    settings = make_settings(tmp_path, "sqlite")
    result = run(processors_for(settings)["process_species"], job_for(PHOTO, tmp_path))
    assert result == {"skipped": "process_species is off: no model configured (DARKROOM_MODEL_SPECIES is empty)"}


def test_a_broken_file_or_a_broken_model_fails_the_job(ml, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(PHOTO.read_bytes()[:300])
    job = job_for(PHOTO, tmp_path)
    with pytest.raises(UnprocessableMedia):
        process_clip(job.__class__(**{**job.__dict__, "original_path": broken}), model=str(ml["clip"]), device="cpu")
    bad = tmp_path / "bad-model"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(Exception):
        process_clip(job, model=str(bad), device="cpu")
    people = build_face_models(tmp_path / "people", label="person")  # detects people, not faces
    with pytest.raises(ValueError, match="no face label"):
        process_face(job, model=str(people), device="cpu")


def test_the_server_imports_without_torch(tmp_path):
    """`make run` without the [ml] extra: nothing the server imports needs torch."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "import api.app, infra.bootstrap, infra.cli, processors.registry, processors.ml, projections.registry\n"
        "import api.routes.health\n"
        "from infra.embedding import load_embedder\n"
        "from infra.settings import load_settings\n"
        "print(load_embedder(load_settings(environ={})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "None"


def test_the_clip_embedder_is_the_text_side_of_the_recorded_image_vectors(ml, tmp_path):
    from infra.embedding import Embedder, load_embedder

    settings = make_settings(tmp_path, "sqlite", model_clip=str(ml["clip"]), ml_device="cpu")
    embedder = load_embedder(settings)
    assert isinstance(embedder, Embedder) and embedder.model_id == "clip" and embedder.dimension == 16
    [text] = embedder.embed_texts(["a red dog"])
    assert len(text) == 16 and abs(np.linalg.norm(text) - 1) < 1e-5
    recorded = process_clip(job_for(PHOTO, tmp_path), model=str(ml["clip"]), device="cpu", batch_size="4")
    assert recorded["model"] == embedder.model_id
    assert np.allclose(embedder.embed_images([PHOTO])[0], recorded["vector"], atol=1e-5)
    embedder.close()
    assert ("clip", str(ml["clip"]), "cpu") not in registry._CACHE
    # A model that does not load leaves semantic search off; the server still starts.
    broken = make_settings(tmp_path, "sqlite", model_clip=str(tmp_path / "missing-model"))
    assert load_embedder(broken) is None


def test_the_clip_model_loads_with_the_first_semantic_search_not_in_every_process(ml, tmp_path):
    """Every process bootstraps the services (`darkroom worker`'s parent, `projections status`):
    only one that searches by meaning may hold the CLIP model (GPU memory), and it frees it."""
    from infra.bootstrap import bootstrap
    from infra.search import SearchUnavailable
    from projections.queries import AssetFilter

    registry.release()
    key = ("clip", str(ml["clip"]), "cpu")
    services = bootstrap(make_settings(tmp_path, "sqlite", model_clip=str(ml["clip"]), ml_device="cpu"))
    try:
        assert key not in registry._CACHE
        assert services.search.health()["semantic"] == {"status": "ok", "model": "clip"}
        assert services.search.semantic(1, AssetFilter(), "a red dog", 5, 0) == ([], 0)
        assert key in registry._CACHE
    finally:
        services.close()
    assert key not in registry._CACHE
    # A model directory that is there but does not load: semantic search says why, health too.
    broken = tmp_path / "broken-clip"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    services = bootstrap(make_settings(tmp_path / "b", "sqlite", model_clip=str(broken), ml_device="cpu"))
    try:
        with pytest.raises(SearchUnavailable, match="broken-clip"):
            services.search.semantic(1, AssetFilter(), "a red dog", 5, 0)
        assert services.search.health()["semantic"]["status"] == "off"
    finally:
        services.close()


def test_broken_files_fail_with_a_message_never_a_crash_and_settings_come_from_the_environment(
    ml, tmp_path, monkeypatch
):
    """As `darkroom worker` runs them: specs without options, the model from DARKROOM_MODEL_*."""
    from tests.media_jobs import run_on_broken

    monkeypatch.setenv("DARKROOM_MODEL_CLIP", str(ml["clip"]))
    monkeypatch.setenv("DARKROOM_ML_DEVICE", "cpu")
    outcomes = run_on_broken("processors.ml.clip:process_clip", MEDIA / "broken", tmp_path)
    assert set(outcomes) == {p.name for p in (MEDIA / "broken").iterdir()}
    for name, outcome in outcomes.items():
        assert outcome["outcome"] in ("ok", "unprocessable", "unrecognised"), (name, outcome)
        if outcome["outcome"] == "ok":
            assert outcome["result"]["model"] == "clip" and len(outcome["result"]["vector"]) == 16
    assert outcomes["corrupt_chunk.png"]["outcome"] == "unprocessable"
