"""Synthetic libraries for the search tests and the search benchmark: assets through the real
commands (upload, the metadata job, rating, like, description, delete), with file names like the
test corpus's and like cameras write, and a few that exercise escaping."""

from __future__ import annotations

import csv
import dataclasses
import json
import random
from pathlib import Path
from typing import Any
from uuid import UUID

from infra.bootstrap import Services
from tests.scenario import fake_upload

MANIFEST = Path(__file__).resolve().parent / "media" / "MANIFEST.tsv"

MIME = {
    "jpg": ("image/jpeg", "PHOTO"), "jpeg": ("image/jpeg", "PHOTO"), "png": ("image/png", "PHOTO"),
    "nef": ("image/x-nikon-nef", "PHOTO"), "cr2": ("image/x-canon-cr2", "PHOTO"),
    "dng": ("image/x-adobe-dng", "PHOTO"), "arw": ("image/x-sony-arw", "PHOTO"),
    "mp4": ("video/mp4", "VIDEO"), "mov": ("video/quicktime", "VIDEO"),
    "mp3": ("audio/mpeg", "AUDIO"), "flac": ("audio/flac", "AUDIO"), "pdf": ("application/pdf", "DOCUMENT"),
}
MAKES = ["NIKON CORPORATION", "Nikon", "Canon", "SONY", "Apple", "FUJIFILM", "OLYMPUS IMAGING CORP.", None]
LENSES = ["AF Nikkor 50mm f/1.8D", "EF-S18-55mm f/3.5-5.6 IS II", "FE 24-70mm F2.8 GM", None, None]
ODD_NAMES = ["100%_sure.jpg", "a_b[1].jpg", "My Holiday (2).mp4", "ünïcode_ß.JPG", "star*name?.png",
             "back\\slash.pdf", "quote\"d.mp3", "x.jpg", "ab.png", "DSC_0001.NEF"]


def corpus_names() -> list[tuple[str, str | None, str | None]]:
    """(file name, make, lens) of the shared test corpus, when it is there."""
    out = []
    if MANIFEST.is_file():
        with MANIFEST.open() as f:
            for row in csv.DictReader(f, delimiter="\t"):
                name = row["path"].rsplit("/", 1)[-1]
                try:
                    expected = json.loads(row.get("expected") or "{}")
                except ValueError:
                    expected = {}
                out.append((name, expected.get("Make"), expected.get("LensModel")))
    return out


def synthetic_name(rng: random.Random, n: int, corpus: list[tuple[str, Any, Any]]) -> tuple[str, Any, Any]:
    roll = rng.random()
    if corpus and roll < 0.2:
        return rng.choice(corpus)
    if roll < 0.25:
        return rng.choice(ODD_NAMES), rng.choice(MAKES), rng.choice(LENSES)
    pattern = rng.choice(["IMG_{:04d}.JPG", "DSC_{:04d}.NEF", "img_{:04d}.jpg", "PXL_2021{:04d}.mp4",
                          "Scan {:03d}.pdf", "track{:02d}.mp3", "_MG_{:04d}.CR2", "holiday-{}.png"])
    return pattern.format(rng.randrange(10000)), rng.choice(MAKES), rng.choice(LENSES)


def add_synthetic(services: Services, owner_id: int, rng: random.Random, n: int, *,
                  corpus: list[tuple[str, Any, Any]] | None = None,
                  name: str | None = None, vector: list[float] | None = None,
                  model: str = "test-words-v1", extras: bool = True) -> str:
    """One asset through the commands; returns its id."""
    app = services.app
    picked = synthetic_name(rng, n, corpus or [])
    filename = name or picked[0]
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "jpg"
    mime, asset_type = MIME.get(ext, ("image/jpeg", "PHOTO"))
    new = dataclasses.replace(fake_upload(owner_id, n), original_filename=filename, mime_type=mime,
                              asset_type=asset_type, repository_id=rng.choice(["default", "default", "archive"]))
    outcome = app.upload(new)
    asset_id = outcome.asset_id
    if rng.random() < 0.85:
        ticket = app.start_job(outcome.task_id, "test-worker")
        if ticket is not None:
            taken = None
            if rng.random() < 0.9:
                taken = (f"{rng.randint(2005, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                         f"T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00")
                if rng.random() < 0.3:
                    taken += rng.choice(["+02:00", "-05:00", "Z"])
            app.complete_job(outcome.task_id, ticket.attempt, {
                "width": 100, "height": 80, "duration": None, "taken_time": taken,
                "taken_time_local": taken[:19] if taken else None,
                "specific_metadata": {"camera_make": picked[1], "lens_model": picked[2], "camera_model": None},
            })
    if extras:
        if rng.random() < 0.5:
            app.rate(owner_id, asset_id, rng.randint(0, 5))
        if rng.random() < 0.3:
            app.like(owner_id, asset_id, True)
        if rng.random() < 0.1:
            app.describe(owner_id, asset_id, f"notes {n}")
    if vector is not None:
        app.record_embedding(asset_id, model, vector)
    if extras and rng.random() < 0.05:
        app.delete_asset(owner_id, asset_id)
    return str(asset_id)


def build_library(services: Services, owner_ids: list[int], count: int, seed: int = 11) -> dict[int, list[str]]:
    rng = random.Random(seed)
    corpus = corpus_names()
    owned: dict[int, list[str]] = {o: [] for o in owner_ids}
    for n in range(count):
        owner = owner_ids[n % len(owner_ids)]
        owned[owner].append(add_synthetic(services, owner, rng, n, corpus=corpus))
    return owned


def record_ml_text(services: Services, asset_id: str, *, ocr: str | None = None, caption: str | None = None) -> None:
    """The ML processors' results, through the aggregate (their commands arrive with the ML issue)."""
    app = services.app
    asset = app.repository.get(UUID(asset_id))
    if ocr is not None:
        asset.record_text(model="test-ocr", text=ocr, lines=[])
    if caption is not None:
        asset.record_caption(model="test-caption", caption=caption)
    app.save(asset)
