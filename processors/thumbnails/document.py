"""DOCUMENT thumbnails: the first PDF page rendered with pypdfium2 at 2048 px on its longest
side (an encrypted PDF opens only with an empty user password)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pyvips

from processors.base import UnprocessableMedia


def _pdf_first_page(path: Path, longest: int = 2048) -> pyvips.Image:
    """The first page rendered with its longest side `longest` px (a page has no pixel size of
    its own: it is drawn at the resolution asked). An encrypted PDF opens only with an empty
    user password."""
    try:
        pdf = pdfium.PdfDocument(os.fspath(path))
    except pdfium.PdfiumError as e:
        if "password" in str(e).lower():
            raise UnprocessableMedia("PDF is password-protected") from e
        raise
    try:
        if len(pdf) < 1:
            raise UnprocessableMedia("PDF has no pages")
        page = pdf[0]
        try:
            w, h = page.get_size()
            if not (w > 0 and h > 0):
                raise UnprocessableMedia(f"PDF page has no size ({w}x{h})")
            scale = longest / max(w, h)
            bitmap = page.render(scale=scale, rev_byteorder=True, may_draw_forms=True)
            pixels = np.ascontiguousarray(bitmap.to_numpy())
        finally:
            page.close()
    finally:
        pdf.close()
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    ph, pw, bands = pixels.shape
    image = pyvips.Image.new_from_memory(pixels.data, pw, ph, bands, "uchar")
    if bands == 4:  # RGBX/RGBA: drop the padding byte, pages are rendered on white
        image = image.extract_band(0, n=3)
    return image.copy(interpretation="srgb" if image.bands >= 3 else "b-w").copy_memory()
