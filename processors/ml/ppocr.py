"""OCR by default: PP-OCRv6 (detect, orient, recognise) on ONNX Runtime, weights from the
`rapidocr` wheel, no torch.

Why PP-OCR: its DB detector finds text anywhere in a scene (signs, screens, receipts at an
angle), the angle classifier turns upside-down lines, and the recogniser reads a whole line. The
projection-profile line finder of `processors.ml.ocr` stays for the TrOCR option.

PDFs: a page's text layer when it has one (exact, instant); pages without one (scans) are
rendered and read. Boxes are [x, y, w, h] fractions of the picture (of the page for PDFs) that
bound each line's rotated quadrilateral.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from processors.base import JobInput, UnprocessableMedia

# The model name recorded with results and the value of DARKROOM_MODEL_OCR that selects it.
MODEL_ID = "pp-ocrv6"
# Photos are read at this longest side: PP-OCR's detector resizes to <= 2000 px anyway.
DETECT_LONGEST = 2000
MIN_CONFIDENCE = 0.6
# The detector keeps a candidate box whose mean text probability reaches this (rapidocr: 0.5).
# 0.4 keeps faint, small or out-of-focus lines: on the truth set recall 221 -> 223 of 263 words,
# words read that are not there 27 -> 29, same speed (bench/ml_quality.py --ocr-only). Lower
# (0.3) reads no more and adds noise.
DET_BOX_THRESH = 0.4
MAX_PDF_PAGES = 20  # pages read per document (text layer or OCR)
PDF_RENDER_LONGEST = 2000
MIN_TEXT_LAYER_CHARS = 8  # fewer characters than this on a page: treat it as a scan

_ENGINES: dict[int, Any] = {}


def engine(threads: int) -> Any:
    """The RapidOCR pipeline with `threads` intra-op threads, loaded once per process."""
    if threads not in _ENGINES:
        from rapidocr import RapidOCR

        _ENGINES[threads] = RapidOCR(params={
            "Global.log_level": "error",
            "Det.box_thresh": DET_BOX_THRESH,
            # Bounded by the worker's slots: N jobs at once never ask for more than the cores.
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        })
    return _ENGINES[threads]


def read_image(pixels: np.ndarray, threads: int = 1, min_confidence: float = MIN_CONFIDENCE) -> list[dict[str, Any]]:
    """Lines of an RGB picture in reading order: {text, confidence, box: [x, y, w, h] fractions}."""
    height, width = pixels.shape[:2]
    if height < 8 or width < 8:
        return []
    # RapidOCR expects OpenCV's BGR order for arrays.
    result = engine(threads)(np.ascontiguousarray(pixels[:, :, ::-1]))
    if result.txts is None or result.boxes is None:
        return []
    lines = []
    for quad, text, score in zip(result.boxes, result.txts, result.scores):
        text = " ".join(str(text).split())
        if not text or float(score) < min_confidence:
            continue
        quad = np.asarray(quad, dtype=np.float64)
        x0, y0 = max(0.0, quad[:, 0].min()), max(0.0, quad[:, 1].min())
        x1, y1 = min(float(width), quad[:, 0].max()), min(float(height), quad[:, 1].max())
        lines.append({"text": text, "confidence": round(float(score), 4),
                      "box": [round(x0 / width, 4), round(y0 / height, 4),
                              round((x1 - x0) / width, 4), round((y1 - y0) / height, 4)]})
    # Reading order: top to bottom by line centre, then left to right.
    lines.sort(key=lambda line: (round((line["box"][1] + line["box"][3] / 2) * 50), line["box"][0]))
    return lines


def read_pdf(path: Path, threads: int = 1, min_confidence: float = MIN_CONFIDENCE) -> list[dict[str, Any]]:
    """Lines of a PDF's first pages: each page's text layer, or OCR of the rendered page."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(os.fspath(path))
    except pdfium.PdfiumError as e:
        if "password" in str(e).lower():
            return []  # encrypted: nothing to read without the password, which we never have
        raise UnprocessableMedia(f"not a readable PDF: {e}") from e
    lines: list[dict[str, Any]] = []
    try:
        for number in range(min(len(pdf), MAX_PDF_PAGES)):
            page = pdf[number]
            try:
                text_page = page.get_textpage()
                text = text_page.get_text_range() or ""
                text_page.close()
                if len(text.strip()) >= MIN_TEXT_LAYER_CHARS:
                    lines += [{"text": " ".join(t.split()), "confidence": 1.0, "box": [0.0, 0.0, 1.0, 1.0],
                               "page": number + 1, "source": "text_layer"}
                              for t in text.splitlines() if t.strip()]
                    continue
                width, height = page.get_size()
                scale = PDF_RENDER_LONGEST / max(width, height, 1.0)
                pixels = page.render(scale=scale).to_numpy()[:, :, :3][:, :, ::-1]  # BGR(A) -> RGB
                lines += [{**line, "page": number + 1, "source": "ocr"}
                          for line in read_image(np.ascontiguousarray(pixels), threads, min_confidence)]
            finally:
                page.close()
    finally:
        pdf.close()
    return lines


def process(job: JobInput, threads: int = 1, min_confidence: float = MIN_CONFIDENCE) -> dict[str, Any]:
    """Text of a photo (or a PDF): lines with boxes and confidences; `text` joins them by newline."""
    if job.asset_type == "DOCUMENT":
        if job.mime_type != "application/pdf":
            return {"skipped": f"OCR reads PDFs among documents, not {job.mime_type}"}
        lines = read_pdf(Path(job.original_path), threads, min_confidence)
    else:
        from processors.ml.images import job_images

        image = job_images(job, frames=1, longest=DETECT_LONGEST)[0]
        lines = read_image(np.asarray(image), threads, min_confidence)
    return {"model": MODEL_ID, "text": "\n".join(line["text"] for line in lines), "lines": lines}
