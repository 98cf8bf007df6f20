"""The seam between semantic search and the models that make vectors.

An `Embedder` turns text and images into vectors of one fixed dimension in one space, so that a
photo's image vector and a sentence describing it lie close (CLIP, SigLIP). The search index stores
image vectors recorded on assets (`Asset.EmbeddingRecorded`); `POST /assets/search` with
`search_type: semantic` embeds the query text with the configured embedder and asks the index for
the nearest images. With no embedder configured, semantic search answers 503.

`load_embedder(settings)` picks one: `settings.embedder` names a factory as `module:attribute`
(tests use this to plug in a deterministic embedder); otherwise the CLIP model of the ML settings,
when one is configured; otherwise none. The CLIP model loads with the first semantic search, not
with the services: every process bootstraps them (`darkroom worker`'s parent, `projections
status`), and only one that searches by meaning should hold the model's (GPU) memory.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import operator
import os
import threading
from collections.abc import Sequence
from itertools import repeat
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
    # map with operator's functions: the same products, sum and quotients in the same order as
    # a generator (the same floats), at half the cost (a rebuild normalises every vector again).
    norm = math.sqrt(sum(map(operator.mul, vector, vector)))
    return list(map(operator.truediv, vector, repeat(norm, len(vector)))) if norm else [0.0] * len(vector)


def load_factory(spec: str) -> Any:
    module, _, attribute = spec.partition(":")
    if not module or not attribute:
        raise ValueError(f"an embedder is named as 'module:attribute', got {spec!r}")
    return getattr(importlib.import_module(module), attribute)


class EmbedderUnavailable(Exception):
    """The configured model does not load: semantic search is off (the message says why)."""


class LazyClipEmbedder:
    """The CLIP model's text side, loaded in this process on first use (torch is imported only
    then). A model that does not load is tried once: later calls raise `EmbedderUnavailable`
    with the reason, and `error` holds it for health."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self.model = str(settings.model_clip).strip()
        path = Path(self.model).expanduser()
        # As processors.ml.clip.model_id_of labels the vectors it records (without importing torch).
        self.model_id = path.resolve().name if path.is_dir() else self.model
        self.error: str | None = None
        self._embedder: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._embedder is None:
                if self.error is not None:
                    raise EmbedderUnavailable(self.error)
                try:
                    from processors.ml.clip import ClipEmbedder

                    self._embedder = ClipEmbedder(self._settings)
                except Exception as exc:
                    log.exception("semantic search is off: the CLIP model %s does not load", self.model)
                    self.error = f"the CLIP model {self.model} does not load ({type(exc).__name__}: {exc})"[:500]
                    raise EmbedderUnavailable(self.error) from None
            return self._embedder

    @property
    def dimension(self) -> int:
        return int(self._loaded().dimension)

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        return self._loaded().embed_texts(texts)  # type: ignore[no-any-return]

    def embed_images(self, paths: Sequence[Path]) -> list[list[float]]:
        return self._loaded().embed_images(paths)  # type: ignore[no-any-return]

    def close(self) -> None:
        """Free the model, when it was loaded (the server calls this on shutdown)."""
        with self._lock:
            if self._embedder is not None:
                self._embedder.close()
                self._embedder = None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules
        return False


def _findable(model: str) -> bool:
    """A local directory, or a hub id (offline: one in the local cache). Cheap: loads nothing."""
    if Path(model).expanduser().is_dir():
        return True
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on"):
        return True  # fetched (or refused) with the first search
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except Exception:  # not a valid hub id either
        return False


def load_embedder(settings: Any) -> Embedder | None:
    spec = getattr(settings, "embedder", "") or ""
    if spec:
        return load_factory(spec)(settings)
    model = (getattr(settings, "model_clip", "") or "").strip()
    if model:
        # Without the [ml] extra, or with a model that is not there, the server still starts
        # and semantic search answers 503 with the reason logged.
        if not (_installed("torch") and _installed("transformers")):
            log.error("semantic search is off: torch/transformers are not installed (pip install -e '.[ml]')")
            return None
        if not _findable(model):
            log.error("semantic search is off: the CLIP model %s is neither a directory nor in the hub "
                      "cache (HF_HUB_OFFLINE is set)", model)
            return None
        return LazyClipEmbedder(settings)
    return None
