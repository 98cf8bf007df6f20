"""Species of a photo, top-k with scores and taxonomy, from one of two sources (`source`):

- `zero-shot` (a CLIP or SigLIP model named by `DARKROOM_MODEL_SPECIES`; a general one such as
  openai/clip-vit-base-patch32 works, a biology-tuned one works better): the photo's embedding
  against the embeddings of the species labels shipped in `species_labels.txt`;
- `label-classes` (the default where the `[ml]` extra is installed, `DARKROOM_MODEL_SPECIES=
  efficientnet-lite0`): the animal classes of the built-in label model, approximate
  (processors/ml/label_species.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

LABELS_FILE = Path(__file__).with_name("species_labels.txt")
RANKS = ("kingdom", "phylum", "class", "order", "family")
TOP_K = 5


@dataclass(frozen=True)
class SpeciesLabel:
    scientific_name: str
    common_name: str
    taxonomy: tuple[str, ...]  # kingdom, phylum, class, order, family

    @property
    def prompt(self) -> str:
        """The text the label is embedded as: CLIP-style, with both names."""
        return f"a photo of {self.common_name} ({self.scientific_name})."

    def as_prediction(self, score: float) -> dict[str, Any]:
        return {"label": self.common_name, "scientific_name": self.scientific_name,
                "score": round(float(score), 6), "taxonomy": dict(zip(RANKS, self.taxonomy)),
                "source": "zero-shot"}


@lru_cache(maxsize=4)
def load_labels(path: Path = LABELS_FILE) -> tuple[SpeciesLabel, ...]:
    labels = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise ValueError(f"{path}:{number}: expected scientific, common, taxonomy (tab-separated)")
        labels.append(SpeciesLabel(parts[0].strip(), parts[1].strip(), tuple(parts[2].split())))
    return tuple(labels)


def process_species(job: Any, model: str | None = None, device: str | None = None,
                    batch_size: str | None = None, top_k: str | None = None,
                    threads: str | None = None) -> dict[str, Any]:
    """Top-k species of a photo, best first."""
    from processors.ml import BUILTIN_LABELS, skipped_reason
    from processors.ml.clip import load_clip
    from processors.ml.images import job_images
    from processors.ml.models import cached, choice_for

    choice = choice_for("process_species", model, device, batch_size, threads)
    if not choice.model:
        return {"skipped": skipped_reason("process_species")}
    images = job_images(job, frames=1)
    k = max(1, int(top_k or TOP_K))
    if choice.model == BUILTIN_LABELS:
        from processors.ml.label_species import species_of_classes
        from processors.ml.labels import MODEL_ID, probabilities
        from processors.ml.models import thread_count

        probs, names = probabilities(images[0], thread_count(threads))
        return {"model": MODEL_ID, "predictions": species_of_classes(probs, names, k)}
    clip = load_clip(choice)
    labels = load_labels()
    # The label embeddings are the same for every photo: made once per model in this process.
    label_vectors = cached("species-labels", choice.model, choice.device,
                           lambda: clip.embed_texts([label.prompt for label in labels]))
    scores = clip.scores(clip.embed_images(images), label_vectors).mean(axis=0)
    k = min(k, len(labels))
    best = sorted(range(len(labels)), key=lambda i: (-scores[i], i))[:k]
    return {"model": clip.model_id, "predictions": [labels[i].as_prediction(scores[i]) for i in best]}
