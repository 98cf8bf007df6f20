"""The perceptual fingerprint of a photo (see `infra.fingerprints`), made from the small
thumbnail that the thumbnail task has just written (decoded, oriented, 256 px)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyvips

from infra.fingerprints import SIDE

ALGORITHM = "grey16-v1"


def grey16(image: pyvips.Image) -> bytes:
    """The picture as SIDE x SIDE grey levels (its aspect ratio is not kept: only structure)."""
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.bands >= 3:
        image = image.colourspace("b-w")
    image = image[0]
    small = image.resize(SIDE / image.width, vscale=SIDE / image.height, kernel="linear")
    if small.width != SIDE or small.height != SIDE:  # rounding: force the exact grid
        small = small.resize(SIDE / small.width, vscale=SIDE / small.height, kernel="nearest")
    data = np.ndarray(buffer=small.cast("uchar").write_to_memory(), dtype=np.uint8,
                      shape=(small.height, small.width))
    return data[:SIDE, :SIDE].tobytes()


def fingerprint_file(path: Path) -> dict[str, Any]:
    """`{algorithm, grey16}` (hex) of an image file."""
    image = pyvips.Image.new_from_file(str(path), access="sequential")
    return {"algorithm": ALGORITHM, "grey16": grey16(image).hex()}
