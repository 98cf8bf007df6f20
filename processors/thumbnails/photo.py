"""PHOTO thumbnails from the files pyvips reads itself (JPEG, PNG, WebP, TIFF, GIF, AVIF,
HEIC): the large rendition straight from the file with shrink-on-load, orientation and colour
management; HEIC that libvips cannot decode goes to `heif`. RAW files are in `raw`."""

from __future__ import annotations

from pathlib import Path

import pyvips

from processors.base import UnprocessableMedia
from processors.decoder_limits import check_pixels
from processors.thumbnails.errors import _vips_message
from processors.thumbnails.heif import _heif_decode, _heif_needs_libheif
from processors.thumbnails.renditions import Renditions, _colour_args, _from_image


def _photo_renditions(path: Path) -> Renditions:
    try:
        header = pyvips.Image.new_from_file(str(path), fail_on="error")
    except pyvips.Error as e:
        raise UnprocessableMedia(f"not a readable image: {_vips_message(e)}") from e
    check_pixels(header.width, header.height)  # from the header, before a pixel is decoded
    loader = header.get("vips-loader") if header.get_typeof("vips-loader") else ""
    if loader.startswith("heifload") and _heif_needs_libheif(header):
        return _from_image(_heif_decode(path))

    colour = _colour_args(header)
    # The large rendition straight from the file (shrink-on-load for JPEG and WebP, orientation,
    # colour management); medium and small are reduced from it in memory, which is faster than
    # decoding the file again and as good.
    large = pyvips.Image.thumbnail(
        str(path), 2048, height=2048, size="down", fail_on="error", **colour
    )
    if colour:
        large = large.copy()
        large.remove("icc-profile-data")  # now sRGB
    return _from_image(large)
