"""Decoder errors as `UnprocessableMedia`: a bad file fails its job with the decoder's own
message (libvips, FFmpeg, PDFium, LibRaw), never the worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import av
import av.error
import pypdfium2 as pdfium
import pyvips
import rawpy

from processors.base import UnprocessableMedia


@contextmanager
def decoding(media: str = "media") -> Iterator[None]:
    """A decoder's error (libvips, FFmpeg, PDFium, LibRaw) becomes UnprocessableMedia with the
    decoder's message: a bad file fails its job, never the worker. `media` names what FFmpeg was
    decoding in the message."""
    try:
        yield
    except UnprocessableMedia:
        raise
    except pyvips.Error as e:
        raise UnprocessableMedia(f"cannot decode image: {_vips_message(e)}") from e
    except av.error.FFmpegError as e:
        raise UnprocessableMedia(f"cannot decode {media}: {e}") from e
    except pdfium.PdfiumError as e:
        raise UnprocessableMedia(f"cannot render PDF: {e}") from e
    except rawpy.LibRawError as e:
        raise UnprocessableMedia(f"cannot decode RAW: {type(e).__name__}: {e}") from e


def _vips_message(e: pyvips.Error) -> str:
    detail = " ".join(line.strip() for line in str(e.detail or "").splitlines() if line.strip())
    return f"{e.message}: {detail}"[:500] if detail else str(e.message)
