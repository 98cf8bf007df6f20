"""Faces: a detector finds face boxes, an image encoder embeds each face crop.

`DARKROOM_MODEL_FACE` names a directory with `detector/` (any transformers object detector whose
labels include a face: DETR, YOLOS, ...) and `embedder/` (an image encoder trained for face
identity; its pooled output, normalised, is the face's embedding), or the two as
"DETECTOR,EMBEDDER" (directories or hub ids). Faces are grouped into people by the `people`
projection, from the embeddings recorded here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

DETECTION_THRESHOLD = 0.7
# Detectors work at up to 1333 px (DETR's default): small faces need the pixels.
DETECT_LONGEST = 1333
MAX_FACES = 64
MIN_FACE_PIXELS = 8


def detector_and_embedder(model: str) -> tuple[str, str]:
    path = Path(model).expanduser()
    if path.is_dir() and (path / "detector").is_dir() and (path / "embedder").is_dir():
        return str(path / "detector"), str(path / "embedder")
    if "," in model:
        detector, embedder = (part.strip() for part in model.split(",", 1))
        return detector, embedder
    raise ValueError(f"model_face {model!r} must be a directory with detector/ and embedder/, "
                     "or 'DETECTOR,EMBEDDER'")


class FaceModels:
    def __init__(self, choice: Any) -> None:
        from transformers import AutoImageProcessor, AutoModel, AutoModelForObjectDetection

        from processors.ml.clip import model_id_of
        from processors.ml.models import model_path, pretrained_kwargs

        detector, embedder = detector_and_embedder(choice.model)
        self.detector = AutoModelForObjectDetection.from_pretrained(
            model_path(detector), **pretrained_kwargs(detector)).to(choice.device).eval()
        self.detector_processor = AutoImageProcessor.from_pretrained(
            model_path(detector), **pretrained_kwargs(detector))
        labels = {int(i): str(name) for i, name in self.detector.config.id2label.items()}
        self.face_labels = {i for i, name in labels.items() if "face" in name.lower()}
        if not self.face_labels:
            raise ValueError(f"detector {detector} has no face label (its labels: "
                             f"{', '.join(sorted(labels.values()))[:200]})")
        self.embedder = AutoModel.from_pretrained(
            model_path(embedder), **pretrained_kwargs(embedder)).to(choice.device).eval()
        self.embedder_processor = AutoImageProcessor.from_pretrained(
            model_path(embedder), **pretrained_kwargs(embedder))
        self.device = choice.device
        self.batch_size = choice.batch_size
        self.model_id = f"{model_id_of(detector)}+{model_id_of(embedder)}"

    def detect(self, images: list[Image.Image], threshold: float) -> list[list[tuple[list[float], float]]]:
        """Per image: ([x0, y0, x1, y1] in pixels, score) of each face, best first."""
        import torch

        from processors.ml.models import batches

        found: list[list[tuple[list[float], float]]] = []
        for batch in batches(images, self.batch_size):
            inputs = self.detector_processor(images=batch, return_tensors="pt")
            with torch.inference_mode():
                outputs = self.detector(pixel_values=inputs["pixel_values"].to(self.device))
            results = self.detector_processor.post_process_object_detection(
                outputs, threshold=threshold, target_sizes=[(im.height, im.width) for im in batch])
            for result in results:
                faces = [
                    ([float(v) for v in box], float(score))
                    for score, label, box in zip(result["scores"].cpu(), result["labels"].cpu(),
                                                 result["boxes"].cpu())
                    if int(label) in self.face_labels
                ]
                faces.sort(key=lambda f: (-f[1], f[0]))
                found.append(faces[:MAX_FACES])
        return found

    def embed(self, crops: list[Image.Image]) -> list[list[float]]:
        """Unit vectors of face crops, in order, `batch_size` per forward."""
        import torch

        from processors.ml.models import batches

        out: list[list[float]] = []
        for batch in batches(crops, self.batch_size):
            pixels = self.embedder_processor(images=batch, return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                output = self.embedder(pixel_values=pixels.to(self.device))
            pooled = getattr(output, "pooler_output", None)
            if pooled is None:
                pooled = output.last_hidden_state.mean(dim=1)
            out += torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().tolist()
        return out


def process_face(job: Any, model: str | None = None, device: str | None = None,
                 batch_size: str | None = None, threshold: str | None = None,
                 threads: str | None = None) -> dict[str, Any]:
    """Faces of a photo: box ([x, y, w, h] as fractions of the displayed image), confidence and
    embedding of each, best first. The built-in BlazeFace + dlib (`processors.ml.face_builtin`)
    is the default; any other model is a transformers detector and embedder."""
    from processors.ml import BUILTIN_FACE, model_setting, skipped_reason

    name = model_setting("process_face") if model is None else model.strip()
    if name == BUILTIN_FACE:
        from processors.ml import face_builtin

        return face_builtin.process(job)
    if not name:
        return {"skipped": skipped_reason("process_face")}
    from processors.ml.images import job_images
    from processors.ml.models import cached, choice_for
    from processors.ml.ocr import fractions

    choice = choice_for("process_face", name, device, batch_size, threads)
    image = job_images(job, frames=1, longest=DETECT_LONGEST)[0]
    models = cached("face", choice.model, choice.device, lambda: FaceModels(choice))
    detections = models.detect([image], DETECTION_THRESHOLD if threshold is None else float(threshold))[0]
    kept, crops = [], []
    for (x0, y0, x1, y1), score in detections:
        x0, y0 = max(0.0, x0), max(0.0, y0)
        x1, y1 = min(float(image.width), x1), min(float(image.height), y1)
        if x1 - x0 < MIN_FACE_PIXELS or y1 - y0 < MIN_FACE_PIXELS:
            continue
        kept.append(((x0, y0, x1 - x0, y1 - y0), score))
        crops.append(image.crop((round(x0), round(y0), round(x1), round(y1))))
    embeddings = models.embed(crops) if crops else []
    faces = [{"box": fractions(box, image.size), "confidence": round(score, 4),
              "embedding": [round(v, 6) for v in embedding]}
             for (box, score), embedding in zip(kept, embeddings)]
    from processors.ml.face_builtin import save_crops

    return {"model": models.model_id, "faces": save_crops(job, image, faces)}
