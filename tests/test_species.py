"""Species without a CLIP model: the label model's animal classes as approximate species with
taxonomy (processors/ml/label_species.py), `source: label-classes` in the asset's species part.
The table's shape, how classes add up, real photos of the corpus whose truth lists a cat, and the
whole path through workers and the API on both backends."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from processors.ml.label_species import ANIMAL_CLASSES, load_groups, species_of_classes
from processors.ml.species import RANKS
from tests.conftest import MEDIA


def test_the_table_is_ordered_inside_the_animal_classes_and_names_known_ranks() -> None:
    groups = load_groups()
    covered = [i for g in groups for i in range(g.first, g.last + 1)]
    assert covered == sorted(set(covered)) and covered[0] == 0 and covered[-1] == ANIMAL_CLASSES - 1
    assert len(covered) >= 390  # all but the fossils (triceratops, trilobite)
    for group in groups:
        assert group.taxonomy["kingdom"] == "Animalia" and set(group.taxonomy) <= set(RANKS)
        if group.scientific_name:  # one species: a name to show
            assert group.common_name


def _names() -> list[str]:
    return [f"class {i}" for i in range(1000)]


def test_classes_of_one_species_add_up_and_others_stand_alone() -> None:
    probs = np.zeros(1000)
    probs[151], probs[207], probs[208] = 0.2, 0.25, 0.15  # three dog breeds
    probs[282] = 0.3  # a domestic cat class
    probs[11] = 0.06  # a passerine: its range is several species
    probs[900] = 0.04  # not an animal
    found = species_of_classes(probs, _names(), k=5)
    assert [p["scientific_name"] for p in found] == ["Canis lupus familiaris", "Felis catus", None]
    dog, cat, bird = found
    assert dog["score"] == pytest.approx(0.6) and dog["label"] == "domestic dog"
    assert dog["classes"] == ["class 207", "class 151", "class 208"]  # best first
    assert dog["taxonomy"] == {"kingdom": "Animalia", "phylum": "Chordata", "class": "Mammalia",
                               "order": "Carnivora", "family": "Canidae"}
    assert bird["label"] == "class 11" and bird["taxonomy"]["order"] == "Passeriformes"
    assert "family" not in bird["taxonomy"]  # not one family across the range: not claimed
    assert {p["source"] for p in found} == {"label-classes"}
    assert species_of_classes(probs, _names(), k=1) == [dog]
    assert species_of_classes(np.full(1000, 0.001), _names()) == []  # nothing clear: no species


def _truth_with_animal(word: str) -> list[Path]:
    with open(MEDIA / "ML-TRUTH.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [MEDIA / r["path"] for r in rows if r["animals"].strip().lower().startswith(word)]


def test_corpus_photos_of_cats_are_cats() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    import mimetypes

    from processors.ml.images import photo
    from processors.ml.labels import probabilities

    cats = _truth_with_animal("cat")
    assert len(cats) >= 2
    for path in cats:
        probs, names = probabilities(photo(path, mimetypes.guess_type(str(path))[0] or ""), 1)
        found = species_of_classes(probs, names, k=3)
        assert "Felis catus" in [p["scientific_name"] for p in found], (path.name, found)


async def test_species_through_workers_and_the_api(
    tmp_path: Path, backend: str, pg_schema: str | None, aiohttp_client: Any
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    from api.app import create_app
    from infra.bootstrap import bootstrap
    from processors.ml import BUILTIN_LABELS
    from projections.registry import PROJECTIONS
    from projections.runner import rebuild
    from tests.conftest import make_settings
    from tests.helpers import register
    from tests.scenario import settle_jobs

    services = bootstrap(make_settings(tmp_path, backend, pg_schema, model_species=BUILTIN_LABELS))
    try:
        client = await aiohttp_client(create_app(services))
        services.start_processing()
        alice = await register(client, "alice")
        cat = (await alice.upload(_truth_with_animal("cat")[0]))["data"]["asset_id"]
        jobs = await asyncio.to_thread(settle_jobs, services, 180.0, 0.1)
        assert {j["state"] for j in jobs if j["queue"] == "process_species"} == {"completed"}
        species = (await alice.call("GET", f"/assets/{cat}"))["data"]["species"]
        assert species["source"] == "label-classes" and species["model"] == BUILTIN_LABELS
        top = species["predictions"][0]
        assert top["scientific_name"] == "Felis catus" and top["taxonomy"]["family"] == "Felidae"
        assert top["classes"] and top["source"] == "label-classes"
        rebuild(services.app, services.db, PROJECTIONS["catalog"], batch_size=2)
        assert (await alice.call("GET", f"/assets/{cat}"))["data"]["species"] == species
    finally:
        services.close()
