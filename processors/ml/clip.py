"""CLIP-family image and text embeddings (CLIP, SigLIP): the `process_clip` queue, the batch
function `embed_images(paths)`, and `ClipEmbedder`, the text side that semantic search uses.

Image and text vectors are unit length in one space, so a photo and a sentence about it are
close by cosine (a dot product). A video's vector is the normalised mean of its sampled frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer

from processors.base import JobInput
from processors.ml import skipped_reason
from processors.ml.images import NoPictures, job_images, photo
from processors.ml.models import ModelChoice, batches, cached, choice_for, model_path, pretrained_kwargs

TEXT_BATCH = 64  # texts are cheap next to images: label sets go through in larger batches


def model_id_of(model: str) -> str:
    """How vectors are labelled: a hub id as is, a local directory by its name."""
    path = Path(model).expanduser()
    return path.resolve().name if path.is_dir() else model


def _features(output: Any) -> torch.Tensor:
    # transformers 5 returns a model output whose pooler_output is the projected embedding;
    # older versions return the tensor itself.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ClipModel:
    """One loaded CLIP-family model with its image processor and tokenizer."""

    def __init__(self, choice: ModelChoice) -> None:
        path, kwargs = model_path(choice.model), pretrained_kwargs(choice.model)
        config = AutoConfig.from_pretrained(path, **kwargs)
        self.model = AutoModel.from_pretrained(path, **kwargs).to(choice.device).eval()
        if not hasattr(self.model, "get_image_features") or not hasattr(self.model, "get_text_features"):
            raise ValueError(f"{choice.model} is a {config.model_type} model, not a CLIP-family "
                             "image-text model (CLIP, SigLIP)")
        self.image_processor = AutoImageProcessor.from_pretrained(path, **kwargs)
        self.tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        self.device = choice.device
        self.batch_size = choice.batch_size
        self.model_id = model_id_of(choice.model)
        # SigLIP was trained on texts padded to a fixed length, CLIP on the longest in a batch.
        self.sigmoid = hasattr(self.model, "logit_bias")
        self.padding = "max_length" if self.sigmoid else True
        self.dimension = int(getattr(config, "projection_dim", 0) or config.text_config.hidden_size)

    @torch.inference_mode()
    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Unit vectors (n, dimension), in the order given, `batch_size` images per forward."""
        out = []
        for batch in batches(list(images), self.batch_size):
            pixels = self.image_processor(images=batch, return_tensors="pt")["pixel_values"]
            features = _features(self.model.get_image_features(pixel_values=pixels.to(self.device)))
            out.append(torch.nn.functional.normalize(features.float(), dim=-1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.dimension), np.float32)

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str], batch_size: int = TEXT_BATCH) -> np.ndarray:
        out = []
        for batch in batches(list(texts), batch_size):
            tokens = self.tokenizer(batch, padding=self.padding, truncation=True, return_tensors="pt")
            tokens = {k: v.to(self.device) for k, v in tokens.items()
                      if k in ("input_ids", "attention_mask", "position_ids")}
            if self.sigmoid:
                tokens.pop("attention_mask", None)  # SigLIP attends to its padding, as trained
            features = _features(self.model.get_text_features(**tokens))
            out.append(torch.nn.functional.normalize(features.float(), dim=-1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.dimension), np.float32)

    @torch.inference_mode()
    def scores(self, image_vectors: np.ndarray, text_vectors: np.ndarray) -> np.ndarray:
        """Zero-shot probabilities (images x texts): softmax over the texts for CLIP, the
        independent sigmoid SigLIP was trained with."""
        sims = torch.from_numpy(image_vectors) @ torch.from_numpy(text_vectors).T
        scale = self.model.logit_scale.detach().float().exp().cpu()
        if self.sigmoid:
            return torch.sigmoid(sims * scale + self.model.logit_bias.detach().float().cpu()).numpy()
        return torch.softmax(sims * scale, dim=-1).numpy()


def load_clip(choice: ModelChoice) -> ClipModel:
    return cached("clip", choice.model, choice.device, lambda: ClipModel(choice))


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def process_clip(job: JobInput, model: str | None = None, device: str | None = None,
                 batch_size: str | None = None, threads: str | None = None) -> dict[str, Any]:
    """The asset's image embedding (a video: the mean of its sampled frames)."""
    choice = choice_for("process_clip", model, device, batch_size, threads)
    if not choice.model:
        return {"skipped": skipped_reason("process_clip")}
    try:
        images = job_images(job)
    except NoPictures as e:
        return {"skipped": str(e)}
    clip = load_clip(choice)
    vectors = clip.embed_images(images)
    vector = unit(vectors.mean(axis=0))
    return {"model": clip.model_id, "vector": [float(x) for x in vector], "frames": len(images)}


def embed_images(paths: Sequence[Path | str], model: str | None = None, device: str | None = None,
                 batch_size: int | None = None) -> list[list[float]]:
    """Unit image vectors for image files, in order, batched: the batch API of the CLIP task."""
    clip = load_clip(choice_for("process_clip", model, device, batch_size))
    vectors = clip.embed_images([photo(Path(p)) for p in paths])
    return vectors.tolist()


class ClipEmbedder:
    """The `infra.embedding.Embedder` of the configured CLIP model: query texts for semantic
    search, and images, in the space of the vectors `process_clip` records."""

    def __init__(self, settings: Any) -> None:
        self.choice = choice_for("process_clip", settings.model_clip, settings.ml_device,
                                 settings.ml_batch_size)
        self._clip = load_clip(self.choice)
        self.model_id = self._clip.model_id
        self.dimension = self._clip.dimension

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        return self._clip.embed_texts(list(texts)).tolist()

    def embed_images(self, paths: Sequence[Path]) -> list[list[float]]:
        return self._clip.embed_images([photo(Path(p)) for p in paths]).tolist()

    def close(self) -> None:
        """Free the model (the server calls this on shutdown)."""
        from processors.ml.models import forget

        self._clip = None  # type: ignore[assignment]
        forget("clip", self.choice.model, self.choice.device)
