"""DOCUMENT (PDF) metadata: the page count from pypdfium2 (exiftool's `PageCount` as the
fallback), and title, author, subject and creation date from the PDF info dictionary or XMP."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pypdfium2
import pypdfium2.raw as pdfium_c

from processors.base import JobInput
from processors.metadata.dates import _first_date, _parse_date
from processors.metadata.result import _result
from processors.metadata.tags import Tags, _positive_int

_pdfium_lock = threading.Lock()  # PDFium is not thread-safe


def _forget_inherited_pdfium_lock() -> None:
    global _pdfium_lock
    # Another thread may have held the lock at the fork; that thread does not exist here.
    _pdfium_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_inherited_pdfium_lock)


def _pdf_page_count(path: Path) -> tuple[int | None, str | None]:
    """(page count, why not); an encrypted PDF is tried with an empty user password."""
    with _pdfium_lock:
        try:
            pdf = pypdfium2.PdfDocument(str(path))
        except pypdfium2.PdfiumError as exc:
            if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
                return None, "password protected"
            return None, str(exc)
        try:
            return len(pdf), None
        finally:
            pdf.close()


def _document(job: JobInput, tags: Tags) -> tuple[dict[str, Any], str | None]:
    page_count, why = _pdf_page_count(job.original_path)
    if page_count is None:
        page_count = tags.get("PageCount", ["PDF"], convert=_positive_int)
    taken = _first_date([
        _parse_date(tags.get("CreateDate", ["PDF"], others=False)),
        _parse_date(tags.get("CreateDate", ["XMP-xmp"], others=False)),
    ])
    specific = {
        "page_count": page_count,
        "title": tags.get("Title", ["PDF", "XMP-dc"], others=False),
        "author": tags.get("Author", ["PDF"], others=False) or tags.get("Creator", ["XMP-dc"], others=False),
        "description": tags.get("Subject", ["PDF"], others=False) or tags.get(
            "Description", ["XMP-dc"], others=False),
    }
    return _result(None, None, None, taken, specific), why
