"""Approximate species from the label model's animal classes, for when no CLIP model is configured.

ImageNet-1k's first 398 classes are animals. `imagenet_animals.tsv` maps them, by index range, to a
species (the 118 dog breeds are all *Canis lupus familiaris*, the five domestic cat classes *Felis
catus*) or, where a range holds several species, to the taxonomy its classes share (each class is
then its own prediction, named by the class). A prediction's score is the sum of the probabilities
of its classes; it names the classes seen (`classes`) and says where it comes from
(`source: "label-classes"`, against `"zero-shot"` for CLIP). Approximate by nature: the label model
knows 398 animals, and a species outside them (a robin of Europe, a crow) is read as the nearest
class it knows or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from processors.ml.species import RANKS

GROUPS_FILE = Path(__file__).with_name("imagenet_animals.tsv")
SOURCE = "label-classes"
ANIMAL_CLASSES = 398  # ImageNet-1k indices 0..397
MIN_SCORE = 0.05  # a species under this share of the photo's probability is left out
CLASS_SHOWN = 0.01  # a class contributing at least this much is named in `classes`
# ... and one of its classes must reach this: otherwise a photo of no animal, with its probability
# spread thin over all 1000 classes, would add up to "domestic dog" over 118 breeds.
STRONGEST_CLASS = 0.02


@dataclass(frozen=True)
class AnimalGroup:
    first: int
    last: int
    scientific_name: str | None
    common_name: str | None
    taxonomy: dict[str, str]


@lru_cache(maxsize=2)
def load_groups(path: Path = GROUPS_FILE) -> tuple[AnimalGroup, ...]:
    groups: list[AnimalGroup] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        ranks = parts[4].split() if len(parts) == 5 else []
        if len(ranks) != len(RANKS):
            raise ValueError(f"{path}:{number}: expected first, last, scientific, common and "
                             f"{len(RANKS)} ranks (tab-separated, '-' for none)")
        first, last = int(parts[0]), int(parts[1])
        if not 0 <= first <= last < ANIMAL_CLASSES or (groups and first <= groups[-1].last):
            raise ValueError(f"{path}:{number}: range {first}-{last} out of order or outside 0-{ANIMAL_CLASSES - 1}")
        groups.append(AnimalGroup(
            first, last,
            None if parts[2] == "-" else parts[2], None if parts[3] == "-" else parts[3],
            {rank: value for rank, value in zip(RANKS, ranks) if value != "-"},
        ))
    return tuple(groups)


def species_of_classes(probabilities: Any, class_names: list[str], k: int = 5) -> list[dict[str, Any]]:
    """Top-k approximate species, best first, from one photo's 1000 class probabilities."""
    totals: dict[str, float] = {}
    seen: dict[str, list[tuple[float, str]]] = {}
    meta: dict[str, tuple[AnimalGroup, str]] = {}
    for group in load_groups():
        for index in range(group.first, group.last + 1):
            p = float(probabilities[index])
            name = class_names[index]
            # One species: its classes add up; several: each class stands alone.
            key = group.scientific_name or group.common_name or f"class:{index}"
            totals[key] = totals.get(key, 0.0) + p
            seen.setdefault(key, []).append((p, name))
            meta.setdefault(key, (group, name))
    clear = [key for key in totals if totals[key] >= MIN_SCORE and max(seen[key])[0] >= STRONGEST_CLASS]
    best = sorted(clear, key=lambda key: -totals[key])[:k]
    predictions = []
    for key in best:
        group, name = meta[key]
        classes = [n for p, n in sorted(seen[key], reverse=True) if p >= CLASS_SHOWN]
        predictions.append({
            "label": group.common_name or name,
            "scientific_name": group.scientific_name,
            "score": round(totals[key], 6),
            "taxonomy": dict(group.taxonomy),
            "source": SOURCE,
            "classes": classes,
        })
    return predictions
