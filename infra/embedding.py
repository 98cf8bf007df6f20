"""The seam between semantic search and the models that make vectors.

An `Embedder` turns text and images into vectors of one fixed dimension in one space, so that a
photo's image vector and a sentence describing it lie close (CLIP, SigLIP). The search index stores
image vectors recorded on assets (`Asset.EmbeddingRecorded`); `POST /assets/search` with
`search_type: semantic` embeds the query text with the configured embedder and asks the index for
the nearest images. With no embedder configured, semantic search answers 503.

`load_embedder(settings)` picks one: `settings.embedder` names a factory as `module:attribute`
(tests use this to plug in a deterministic embedder); otherwise the CLIP model of the ML settings,
when one is configured; otherwise none.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger("darkroom.embedding")


@runtime_checkable
class Embedder(Protocol):
    model_id: str  # names the model (a hub id or a local dir's name): vectors of different models never mix
    dimension: int

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_images(self, paths: Sequence[Path]) -> list[list[float]]: ...


def normalise(vector: Sequence[float]) -> list[float]:
    """Unit length, so cosine similarity is a dot product. A zero vector stays zero."""
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else [0.0 for _ in vector]


def load_factory(spec: str) -> Any:
    module, _, attribute = spec.partition(":")
    if not module or not attribute:
        raise ValueError(f"an embedder is named as 'module:attribute', got {spec!r}")
    return getattr(importlib.import_module(module), attribute)


def load_embedder(settings: Any) -> Embedder | None:
    spec = getattr(settings, "embedder", "") or ""
    if spec:
        return load_factory(spec)(settings)
    if (getattr(settings, "model_clip", "") or "").strip():
        # The CLIP model's text side, in this process (the API's): torch is imported only here.
        # Without the [ml] extra, or with a model that does not load, the server still starts
        # and semantic search answers 503 with the reason logged.
        try:
            from processors.ml.clip import ClipEmbedder

            return ClipEmbedder(settings)
        except Exception:
            log.exception("semantic search is off: the CLIP model %s does not load", settings.model_clip)
    return None
