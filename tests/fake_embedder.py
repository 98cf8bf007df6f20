"""A deterministic embedder for tests: words of a small vocabulary are axes of the space.

`embed_texts("a cat on the beach")` points between the `cat` and `beach` axes; images are embedded
from the words of their file name. Tests give assets vectors with `vector_for(...)` and know
exactly which ones lie nearest a query.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

VOCABULARY = ("cat", "dog", "beach", "mountain", "city", "night", "food", "car")


def vector_for(weights: dict[str, float]) -> list[float]:
    return [float(weights.get(word, 0.0)) for word in VOCABULARY]


class WordEmbedder:
    model_id = "test-words-v1"
    dimension = len(VOCABULARY)

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            words = text.lower().replace(",", " ").split()
            vector = vector_for({w: float(words.count(w)) for w in VOCABULARY})
            if not any(vector):  # unknown words: a fixed direction, so a query always has one
                vector = [1.0] * self.dimension
            out.append(vector)
        return out

    def embed_images(self, paths: Sequence[Path]) -> list[list[float]]:
        return self.embed_texts([p.stem.replace("_", " ") for p in paths])


def factory(settings: Any) -> WordEmbedder:
    return WordEmbedder()
