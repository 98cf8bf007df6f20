"""OCR: the task's entry point, and the TrOCR option (`DARKROOM_MODEL_OCR` naming a TrOCR model).

The default, PP-OCRv6 from the `rapidocr` wheel, lives in `processors.ml.ppocr`; this module
dispatches to it. The TrOCR option: text lines found by a layout detector, each read by a
TrOCR-style recogniser.

Why two stages: TrOCR (a ViT encoder with a text decoder, `VisionEncoderDecoderModel`) is the
transformers-native recogniser and reads one line at a time; transformers has no text *detector*
of its own. Lines are found here with projection profiles over a binarised image (ink rows make
lines, wide gaps split them into blocks), which is exact on documents, screenshots and signs and
needs no second model. Each line's confidence is the recogniser's mean token probability; lines
below `min_confidence` (noise read as text in a busy photo) are dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

# Lines are looked for in a greyscale copy at most this long (text a few pixels high is lost in
# smaller copies; larger ones only cost time).
DETECT_LONGEST = 2048
MIN_LINE_HEIGHT = 6
MAX_LINES = 64
MIN_CONFIDENCE = 0.3
MAX_NEW_TOKENS = 48

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


def otsu_threshold(gray: np.ndarray) -> int:
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 128
    cum = np.cumsum(hist)
    cum_mean = np.cumsum(hist * np.arange(256))
    w0 = cum / total
    w1 = 1.0 - w0
    m0 = np.divide(cum_mean, cum, out=np.zeros(256), where=cum > 0)
    m1 = np.divide(cum_mean[-1] - cum_mean, total - cum, out=np.zeros(256), where=(total - cum) > 0)
    between = w0 * w1 * (m0 - m1) ** 2
    return int(np.argmax(between))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def find_text_lines(gray: np.ndarray) -> list[Box]:
    """Boxes of text lines (blocks of one line) in reading order: top to bottom, left to right."""
    height, width = gray.shape
    if height < MIN_LINE_HEIGHT or width < MIN_LINE_HEIGHT:
        return []
    dark = gray < otsu_threshold(gray)
    ink = dark if dark.mean() <= 0.5 else ~dark  # text is the minority: dark on light or light on dark
    if ink.mean() < 0.0005 or ink.mean() > 0.35:
        return []  # blank, or a photo's large shapes rather than strokes
    boxes: list[Box] = []
    for top, bottom in _runs(ink.sum(axis=1) > 0):
        band_height = bottom - top
        if band_height < MIN_LINE_HEIGHT or band_height > height // 3:
            continue
        band = ink[top:bottom]
        columns = band.sum(axis=0) > 0
        # A gap wider than the line height separates blocks (columns, table cells); narrower
        # ones are the spaces between words.
        segments: list[list[int]] = []
        for start, end in _runs(columns):
            if segments and start - segments[-1][1] <= band_height:
                segments[-1][1] = end
            else:
                segments.append([start, end])
        for start, end in segments:
            rows = np.flatnonzero(band[:, start:end].any(axis=1))
            y0, y1 = top + int(rows[0]), top + int(rows[-1]) + 1
            if y1 - y0 >= MIN_LINE_HEIGHT and end - start >= 2:
                boxes.append((start, y0, end - start, y1 - y0))
    boxes.sort(key=lambda b: (b[1], b[0]))
    return boxes[:MAX_LINES]


def crop_line(image: Image.Image, box: Box) -> Image.Image:
    x, y, w, h = box
    pad = max(2, h // 4)
    return image.crop((max(0, x - pad), max(0, y - pad), min(image.width, x + w + pad),
                       min(image.height, y + h + pad)))


class Recogniser:
    """A VisionEncoderDecoder line recogniser (TrOCR) with its image processor and tokenizer."""

    def __init__(self, choice: Any) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

        from processors.ml.clip import model_id_of
        from processors.ml.models import model_path, pretrained_kwargs

        path, kwargs = model_path(choice.model), pretrained_kwargs(choice.model)
        self.model = VisionEncoderDecoderModel.from_pretrained(path, **kwargs).to(choice.device).eval()
        self.image_processor = AutoImageProcessor.from_pretrained(path, **kwargs)
        self.tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        self.device = choice.device
        self.batch_size = choice.batch_size
        self.model_id = model_id_of(choice.model)

    def read(self, crops: list[Image.Image], max_new_tokens: int = MAX_NEW_TOKENS) -> list[tuple[str, float]]:
        """(text, confidence) per crop, in order, `batch_size` crops per generate call."""
        import torch

        from processors.ml.models import batches

        out: list[tuple[str, float]] = []
        for batch in batches(crops, self.batch_size):
            pixels = self.image_processor(images=batch, return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                generated = self.model.generate(
                    pixel_values=pixels.to(self.device), max_new_tokens=max_new_tokens,
                    num_beams=1, do_sample=False, output_scores=True, return_dict_in_generate=True,
                )
                steps = self.model.compute_transition_scores(
                    generated.sequences, generated.scores, normalize_logits=True).float().cpu()
            # Tokens after a line's end are padding: they do not count towards its confidence.
            new_tokens = generated.sequences[:, -steps.shape[1]:].cpu()
            pad = self.tokenizer.pad_token_id
            real = new_tokens != pad if pad is not None else torch.ones_like(new_tokens, dtype=torch.bool)
            texts = self.tokenizer.batch_decode(generated.sequences, skip_special_tokens=True)
            for i, text in enumerate(texts):
                logprobs = steps[i][real[i]]
                confidence = float(logprobs.mean().exp()) if len(logprobs) else 0.0
                out.append((" ".join(text.split()), confidence))
        return out


def process_ocr(job: Any, model: str | None = None, device: str | None = None,
                batch_size: str | None = None, min_confidence: str | None = None,
                threads: str | None = None) -> dict[str, Any]:
    """Text of a photo: lines with boxes ([x, y, w, h] as fractions of the displayed image) and
    confidences, in reading order; `text` is the lines joined by newlines. The built-in PP-OCR
    (`processors.ml.ppocr`, the default) also reads PDFs; any other model is a TrOCR recogniser."""
    from processors.ml import BUILTIN_OCR, model_setting, skipped_reason
    from processors.ml.models import thread_count

    name = model_setting("process_ocr") if model is None else model.strip()
    if name == BUILTIN_OCR:
        from processors.ml import ppocr

        return ppocr.process(job, thread_count(threads),
                             ppocr.MIN_CONFIDENCE if min_confidence is None else float(min_confidence))
    if not name:
        return {"skipped": skipped_reason("process_ocr")}
    if job.asset_type == "DOCUMENT":
        return {"skipped": "the TrOCR option reads photos only"}
    from processors.ml.images import job_images
    from processors.ml.models import cached, choice_for

    choice = choice_for("process_ocr", name, device, batch_size, threads)
    threshold = MIN_CONFIDENCE if min_confidence is None else float(min_confidence)
    image = job_images(job, frames=1, longest=DETECT_LONGEST)[0]
    boxes = find_text_lines(np.asarray(image.convert("L")))
    recogniser = cached("ocr", choice.model, choice.device, lambda: Recogniser(choice))
    read = recogniser.read([crop_line(image, box) for box in boxes]) if boxes else []
    lines = []
    for (x, y, w, h), (text, confidence) in zip(boxes, read):
        if text and confidence >= threshold:
            lines.append({"text": text, "confidence": round(confidence, 4),
                          "box": fractions((x, y, w, h), image.size)})
    return {"model": recogniser.model_id, "text": "\n".join(line["text"] for line in lines),
            "lines": lines}


def fractions(box: tuple[float, float, float, float], size: tuple[int, int]) -> list[float]:
    width, height = size
    x, y, w, h = box
    return [round(x / width, 4), round(y / height, 4), round(w / width, 4), round(h / height, 4)]
