"""ML enrichment end to end: uploads through the API, real workers (child processes) running the
ML processors on tiny models from temp dirs, events on the asset, the `include_*` parts of
`GET /assets/{id}`, people, rebuilds, reprocess, failures and tasks that are off. Each test runs
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: models load from temp dirs only
pytest.importorskip("torch", reason="the ML tests need the [ml] extra (pip install -e '.[ml]')")
pytest.importorskip("transformers", reason="the ML tests need the [ml] extra (pip install -e '.[ml]')")

import numpy as np  # noqa: E402

from api.app import create_app  # noqa: E402
from commands.jobs import JobPolicy  # noqa: E402
from infra.bootstrap import Services, bootstrap  # noqa: E402
from infra.embedding import load_embedder  # noqa: E402
from processors.registry import processors_for, with_options  # noqa: E402
from projections.people import PeopleProjection  # noqa: E402
from projections.registry import PROJECTIONS  # noqa: E402
from projections.runner import rebuild  # noqa: E402
from tests.conftest import MEDIA, make_settings  # noqa: E402
from tests.helpers import register  # noqa: E402
from tests.ml_fixtures import models_once, text_image  # noqa: E402
from tests.scenario import fake_upload, settle_jobs  # noqa: E402

PHOTO = MEDIA / "photo" / "canon_eos_5d_mark_iii_lens.jpg"
VIDEO = MEDIA / "video" / "gps_udta_720p.mp4"
ALL_PARTS = "include_species=true&include_ocr=true&include_faces=true&include_ai_descriptions=true"


@pytest.fixture(scope="module")
def ml(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return models_once(tmp_path_factory.mktemp("ml-models"))


def ml_settings(ml: dict[str, Path], **models: str) -> dict[str, Any]:
    every = {"model_clip": str(ml["clip"]), "model_species": str(ml["species"]), "model_ocr": str(ml["ocr"]),
             "model_face": str(ml["face"]), "model_caption": str(ml["caption"])}
    return {**every, **models, "ml_device": "cpu", "ml_batch_size": 4, "job_max_attempts": 2,
            "job_backoff_base_seconds": 0.05}


@pytest.fixture
def make_services(tmp_path: Path, backend: str, pg_schema: str | None) -> Iterator[Any]:
    made: list[Services] = []

    def make(**extra: Any) -> Services:
        services = bootstrap(make_settings(tmp_path, backend, pg_schema, **extra))
        services.app.job_policy = JobPolicy(max_attempts=2, backoff_base_seconds=0.05, backoff_cap_seconds=0.2)
        made.append(services)
        return services

    yield make
    for services in made:
        services.close()


def start_workers(services: Services) -> None:
    """The server's own worker specs; random-weight models score low, so the tests take every
    face and every OCR line the models report (the thresholds are options of those specs)."""
    specs = processors_for(services.settings)
    specs["process_face"] = with_options(specs["process_face"], threshold=0)
    specs["process_ocr"] = with_options(specs["process_ocr"], min_confidence=0)
    services.start_processing(processors=specs)


async def settle(services: Services, timeout: float = 120.0) -> list[dict[str, Any]]:
    """`settle_jobs` off the event loop, so the test's HTTP client and server keep running."""
    return await asyncio.to_thread(settle_jobs, services, timeout, 0.1)


@pytest.fixture
async def enriched(make_services: Any, ml: dict[str, Path], tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[Any]:
    """A library with every model on: a photo, a page of text and a video, processed."""
    services = make_services(**ml_settings(ml))
    client = await aiohttp_client(create_app(services))
    start_workers(services)
    user = await register(client, "alice")
    page = tmp_path / "page.png"
    text_image([(20, 20, "Hello Darkroom"), (20, 90, "second line here"), (20, 160, "third")]).save(page)
    ids = {}
    for name, path in (("photo", PHOTO), ("page", page), ("video", VIDEO)):
        ids[name] = (await user.upload(path))["data"]["asset_id"]
    jobs = await settle(services)
    yield services, client, user, ids, jobs


async def test_an_upload_gets_every_enrichment_which_get_returns_survives_a_rebuild_and_reprocesses(
    enriched: Any,
) -> None:
    services, _, user, ids, jobs = enriched
    by_asset: dict[str, dict[str, str]] = {}
    for job in jobs:
        by_asset.setdefault(job["args"]["asset_id"], {})[job["queue"]] = job["state"]
    assert by_asset[ids["photo"]] == {q: "completed" for q in (
        "metadata_asset", "thumbnail_asset", "process_clip", "process_species", "process_ocr",
        "process_face", "process_caption")}
    # A video gets an embedding and a caption from its frames; species, OCR and faces are for photos.
    assert by_asset[ids["video"]] == {q: "completed" for q in (
        "metadata_asset", "thumbnail_asset", "transcode_asset", "process_clip", "process_caption")}

    asset = (await user.call("GET", f"/assets/{ids['photo']}?{ALL_PARTS}"))["data"]
    assert asset["status"]["state"] == "complete"
    species = asset["species"]
    assert species["model"] == "clip" and len(species["predictions"]) == 5
    assert [p["score"] for p in species["predictions"]] == sorted((p["score"] for p in species["predictions"]), reverse=True)
    assert asset["ai_descriptions"]["model"] == "caption" and isinstance(asset["ai_descriptions"]["caption"], str)
    faces = asset["faces"]
    assert faces["model"] == "detector+embedder" and faces["count"] == len(faces["faces"]) >= 1
    assert all(len(f["box"]) == 4 and f["person_id"] for f in faces["faces"])
    assert asset["ocr"]["model"] == "ocr"

    page = (await user.call("GET", f"/assets/{ids['page']}?include_ocr=true"))["data"]
    assert len(page["ocr"]["lines"]) == 3  # the detector's three lines, each read by the recogniser
    assert [line["box"][1] for line in page["ocr"]["lines"]] == sorted(line["box"][1] for line in page["ocr"]["lines"])
    # Defaults: species shown, the rest only when asked for.
    plain = (await user.call("GET", f"/assets/{ids['photo']}"))["data"]
    assert "species" in plain and not {"ocr", "faces", "ai_descriptions"} & set(plain)

    # The events on the asset, and the embedding's model is the one the text side reports.
    aggregate = services.app.repository.get(UUID(ids["photo"]))
    assert aggregate.embedding == {"model": "clip", "dimension": 16}
    assert set(aggregate.enrichments) == {"species", "ocr", "faces", "caption"}
    assert services.embedder is not None and services.embedder.model_id == "clip"
    # The recorded image vector is the embedder's own image vector of the photo (one space).
    events = [e for e in services.app.repository.event_store.get(UUID(ids["photo"]))
              if type(e).__qualname__ == "Asset.EmbeddingRecorded"]
    assert np.allclose(events[-1].vector, services.embedder.embed_images([PHOTO])[0], atol=1e-5)
    # Semantic search ranks the processed assets by their recorded vectors against the query's
    # text vector (random weights: which one wins is arbitrary, the order is not).
    query = "a photo of the dog on a beach"
    text = np.array(services.embedder.embed_texts([query])[0])
    recorded = {aid: np.array([e for e in services.app.repository.event_store.get(UUID(aid))
                               if type(e).__qualname__ == "Asset.EmbeddingRecorded"][-1].vector)
                for aid in ids.values()}
    found = (await user.call("POST", "/assets/search", json={"query": query, "search_type": "semantic"}))["data"]["assets"]
    assert [a["asset_id"] for a in found] == sorted(recorded, key=lambda a: -float(text @ recorded[a]))
    assert found[0]["score"] == pytest.approx(float(text @ recorded[found[0]["asset_id"]]), abs=1e-4)

    # All of it survives a rebuild of the read models (one processed library serves both parts
    # of this scenario: processing it is the expensive step).
    before = {name: (await user.call("GET", f"/assets/{aid}?{ALL_PARTS}"))["data"] for name, aid in ids.items()}
    people_before = services.db.query("SELECT * FROM people ORDER BY person_id")
    faces_before = services.db.query("SELECT * FROM people_faces ORDER BY face_id")
    for name in ("catalog", "people"):
        rebuild(services.app, services.db, PROJECTIONS[name], batch_size=7)
    after = {name: (await user.call("GET", f"/assets/{aid}?{ALL_PARTS}"))["data"] for name, aid in ids.items()}
    assert after == before
    assert services.db.query("SELECT * FROM people ORDER BY person_id") == people_before
    assert services.db.query("SELECT * FROM people_faces ORDER BY face_id") == faces_before

    answer = await user.call("POST", f"/assets/{ids['photo']}/reprocess", json={"tasks": ["process_caption", "process_face"]})
    assert answer["data"]["retry_tasks"] == ["process_caption", "process_face"]
    await settle(services)
    again = (await user.call("GET", f"/assets/{ids['photo']}?{ALL_PARTS}"))["data"]
    assert again["ai_descriptions"] == before["photo"]["ai_descriptions"]
    # The same faces again: they leave their people and join the same ones back.
    assert [f["person_id"] for f in again["faces"]["faces"]] == [f["person_id"] for f in before["photo"]["faces"]["faces"]]
    topics = [type(e).__qualname__ for e in services.app.repository.event_store.get(UUID(ids["photo"]))]
    assert topics.count("Asset.CaptionRecorded") == 2 and topics.count("Asset.FacesDetected") == 2


async def test_semantic_search_finds_the_asset_whose_vector_is_the_querys_own_text_side(
    make_services: Any, ml: dict[str, Path], aiohttp_client: Any
) -> None:
    services = make_services(model_clip=str(ml["clip"]), ml_device="cpu")
    client = await aiohttp_client(create_app(services))
    user = await register(client, "carol")
    embedder = load_embedder(services.settings)
    assert embedder is not None and embedder.model_id == "clip" and embedder.dimension == 16
    captions = ["a red dog on a beach", "a city street in snow", "a green tree with a flower",
                "a photo of the sunset sky"]
    vectors = embedder.embed_texts(captions)
    assets = []
    for n, vector in enumerate(vectors):
        outcome = services.app.upload(fake_upload(user.user_id, n))
        services.app.record_embedding(outcome.asset_id, embedder.model_id, vector)
        assets.append(str(outcome.asset_id))
    services.wait_for(services.app.recorder.max_notification_id())
    for n, caption in enumerate(captions):
        body = await user.call("POST", "/assets/search", json={"query": caption, "search_type": "semantic"})
        found = body["data"]["assets"]
        assert found[0]["asset_id"] == assets[n], (caption, [a["asset_id"] for a in found])
        assert found[0]["score"] == pytest.approx(1.0, abs=1e-4)


async def test_a_model_that_fails_makes_the_asset_warning_not_failed(
    make_services: Any, ml: dict[str, Path], tmp_path: Path, aiohttp_client: Any
) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "vision-encoder-decoder"}')
    services = make_services(**ml_settings(ml, model_caption=str(broken), model_ocr="", model_face="",
                                           model_species=""))
    client = await aiohttp_client(create_app(services))
    start_workers(services)
    user = await register(client, "dave")
    asset_id = (await user.upload(PHOTO))["data"]["asset_id"]
    jobs = {j["queue"]: j for j in await settle(services)}
    assert jobs["process_caption"]["state"] == "discarded" and jobs["process_caption"]["attempt"] == 2
    assert jobs["process_clip"]["state"] == "completed" and "process_ocr" not in jobs
    asset = (await user.call("GET", f"/assets/{asset_id}?include_ai_descriptions=true"))["data"]
    assert asset["status"]["state"] == "warning" and asset["ai_descriptions"] is None
    # The worker goes on: another photo still gets its embedding.
    other = (await user.upload(MEDIA / "photo" / "kodak_dx4330.jpg"))["data"]["asset_id"]
    await settle(services)
    assert services.app.repository.get(UUID(other)).embedding["model"] == "clip"


async def test_without_models_no_ml_task_runs_and_health_says_each_is_off(
    make_services: Any, aiohttp_client: Any
) -> None:
    services = make_services()
    client = await aiohttp_client(create_app(services))
    start_workers(services)
    user = await register(client, "erin")
    asset_id = (await user.upload(PHOTO))["data"]["asset_id"]
    jobs = await settle(services)
    assert {j["queue"] for j in jobs} == {"metadata_asset", "thumbnail_asset"}
    health = await (await client.get("/api/v1/health", headers=user.headers)).json()  # erin: the admin
    tasks = health["data"]["ml"]["tasks"]
    assert {t: v["status"] for t, v in tasks.items()} == {t: "off" for t in (
        "process_clip", "process_species", "process_ocr", "process_face", "process_caption", "process_labels")}
    assert "DARKROOM_MODEL_SPECIES" in tasks["process_species"]["reason"]
    # Asked for by name, a task that is off runs, and the job and the asset say it was skipped.
    await user.call("POST", f"/assets/{asset_id}/reprocess", json={"tasks": ["process_species"]})
    species_job = [j for j in await settle(services) if j["queue"] == "process_species"]
    assert species_job and species_job[0]["state"] == "completed"
    asset = (await user.call("GET", f"/assets/{asset_id}"))["data"]
    assert asset["status"]["state"] == "complete"
    assert asset["species"] == {"skipped": "process_species is off: no model configured (DARKROOM_MODEL_SPECIES is empty)"}
    # An unknown task is refused, and the answer names the tasks that apply (ML ones included).
    bad = await user.call("POST", f"/assets/{asset_id}/reprocess", json={"tasks": ["process_nothing"]}, expect=400)
    assert "process_species" in json.dumps(bad)


def test_faces_cluster_into_people_deterministically_and_a_rebuild_gives_the_same_people(make_services: Any) -> None:
    services = make_services()
    app = services.app
    owner = app.register("frank", "frank@example.org", "x").user.user_id
    other = app.register("gina", "gina@example.org", "x").user.user_id
    a, b = np.eye(8)[0], np.eye(8)[1]
    near_a = (a * 0.9 + b * 0.1) / np.linalg.norm(a * 0.9 + b * 0.1)

    def faces_on(user_id: int, n: int, *vectors: np.ndarray) -> str:
        asset_id = app.upload(fake_upload(user_id, n)).asset_id
        asset = app.repository.get(asset_id)
        asset.record_faces(model="test", faces=[
            {"box": [0.1 * i, 0.1, 0.1, 0.1], "confidence": 0.9, "embedding": v.tolist()} for i, v in enumerate(vectors)])
        app.save(asset)
        return str(asset_id)

    first = faces_on(owner, 1, a, b)
    second = faces_on(owner, 2, near_a)  # the same person as the first face of `first`
    theirs = faces_on(other, 3, a)  # another owner's face never joins this owner's people
    services.wait_for(app.recorder.max_notification_id())
    rows = services.db.query("SELECT face_id, person_id, owner_id FROM people_faces ORDER BY face_id")
    person = {r["face_id"]: r["person_id"] for r in rows}
    assert person[f"{second}:0"] == person[f"{first}:0"] != person[f"{first}:1"]
    assert person[f"{theirs}:0"] not in {person[f"{first}:0"], person[f"{first}:1"]}
    counts = {p["person_id"]: p["face_count"] for p in services.db.query("SELECT * FROM people")}
    assert counts[person[f"{first}:0"]] == 2 and len(counts) == 3
    before = (services.db.query("SELECT * FROM people ORDER BY person_id"),
              services.db.query("SELECT * FROM people_faces ORDER BY face_id"))
    rebuild(app, services.db, PeopleProjection, batch_size=2)
    assert (services.db.query("SELECT * FROM people ORDER BY person_id"),
            services.db.query("SELECT * FROM people_faces ORDER BY face_id")) == before
    # Deleting an asset takes its faces out of their people; an emptied person is gone.
    app.delete_asset(owner, UUID(first))
    services.wait_for(app.recorder.max_notification_id())
    counts = {p["person_id"]: p["face_count"] for p in services.db.query("SELECT * FROM people WHERE owner_id = ?", (owner,))}
    assert counts == {person[f"{first}:0"]: 1}


def test_a_result_that_arrives_after_the_delete_gives_no_people(make_services: Any) -> None:
    """A face job still running when its asset is deleted completes afterwards: its faces must not
    come back into the owner's people (nor would a log that holds such a late result, on replay)."""
    services = make_services()
    app = services.app
    app.enrichment_tasks = frozenset({"process_face"})
    owner = app.register("hana", "hana@example.org", "x").user.user_id
    asset_id = app.upload(fake_upload(owner, 1)).asset_id
    job_id = app.repository.get(asset_id).tasks["process_face"]["job_id"]
    ticket = app.start_job(job_id, "test-worker")
    assert ticket is not None
    app.delete_asset(owner, asset_id)
    face = {"box": [0.1, 0.1, 0.2, 0.2], "confidence": 0.9, "embedding": [1.0, 0.0, 0.0]}
    assert app.complete_job(job_id, ticket.attempt, {"model": "test", "faces": [face]})
    services.wait_for(app.recorder.max_notification_id())

    def people() -> tuple[list[Any], list[Any]]:
        return (services.db.query("SELECT * FROM people_faces WHERE owner_id = ?", (owner,)),
                services.db.query("SELECT * FROM people WHERE owner_id = ?", (owner,)))

    assert people() == ([], [])
    asset = app.repository.get(asset_id)  # a log written before results on deleted assets were dropped
    asset.record_faces(model="test", faces=[face])
    app.save(asset)
    services.wait_for(app.recorder.max_notification_id())
    assert people() == ([], [])
    rebuild(app, services.db, PeopleProjection, batch_size=1)
    assert people() == ([], [])
