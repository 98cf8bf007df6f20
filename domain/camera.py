"""Camera makes and lens names as filters and facets see them.

EXIF `Make` is whatever the firmware writes: "NIKON CORPORATION" and "Nikon", "OLYMPUS IMAGING
CORP." and "OLYMPUS CORPORATION", "samsung" and "SAMSUNG". A library grouped by make wants one
name per maker, so `normalise_make` strips corporate suffixes, looks the rest up in a table of
known makers, and title-cases anything it does not know. It is idempotent and ignores case, so
a filter value ("nikon", "NIKON CORPORATION", "Nikon") normalises to the stored value.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

# Trailing words that say what kind of company it is, not who (compared lower-cased, after
# punctuation is dropped). Stripped repeatedly: "OLYMPUS IMAGING CORP." -> "OLYMPUS".
_SUFFIXES = (
    "corporation", "corp", "company", "co", "ltd", "limited", "inc", "incorporated", "gmbh",
    "ag", "a/s", "ab", "sa", "s.a", "s.p.a", "spa", "bv", "b.v", "nv", "llc", "plc", "kk", "k.k",
    "imaging", "optical", "camera", "cameras", "computer", "electronics", "electric",
    "digital", "photo", "international", "industries", "industry", "group", "holdings",
    "techwin", "mobile", "communications", "technologies", "technology",
)
_SUFFIX_WORDS = frozenset(_SUFFIXES)

# Core names (lower case, suffixes stripped) -> display name. Anything else is title-cased.
_ALIASES = {
    "nikon": "Nikon",
    "canon": "Canon",
    "olympus": "Olympus",
    "om digital solutions": "OM System",
    "om system": "OM System",
    "samsung": "Samsung",
    "eastman kodak": "Kodak",
    "kodak": "Kodak",
    "fujifilm": "Fujifilm",
    "fuji": "Fujifilm",
    "fuji photo film": "Fujifilm",
    "fuji film": "Fujifilm",
    "panasonic": "Panasonic",
    "matsushita": "Panasonic",
    "pentax": "Pentax",
    "asahi": "Pentax",
    "ricoh": "Ricoh",
    "sony": "Sony",
    "sony ericsson": "Sony Ericsson",
    "apple": "Apple",
    "htc": "HTC",
    "motorola": "Motorola",
    "nokia": "Nokia",
    "casio": "Casio",
    "phase one": "Phase One",
    "leica": "Leica",
    "hasselblad": "Hasselblad",
    "sigma": "Sigma",
    "minolta": "Minolta",
    "konica minolta": "Konica Minolta",
    "konica": "Konica",
    "gopro": "GoPro",
    "dji": "DJI",
    "lg": "LG",
    "lge": "LG",
    "zte": "ZTE",
    "tcl": "TCL",
    "hmd global": "Nokia",
    "huawei": "Huawei",
    "xiaomi": "Xiaomi",
    "google": "Google",
    "oneplus": "OnePlus",
    "oppo": "OPPO",
    "vivo": "vivo",
    "asus": "ASUS",
    "blackberry": "BlackBerry",
    "research in motion": "BlackBerry",
    "epson": "Epson",
    "seiko epson": "Epson",
    "polaroid": "Polaroid",
    "kyocera": "Kyocera",
    "sanyo": "Sanyo",
    "sharp": "Sharp",
    "toshiba": "Toshiba",
    "jvc": "JVC",
    "victor": "JVC",
    "microsoft": "Microsoft",
    "blackmagic design": "Blackmagic Design",
    "blackmagic": "Blackmagic Design",
    "insta360": "Insta360",
    "parrot": "Parrot",
    "yi": "YI",
    "hp": "HP",
    "hewlett-packard": "HP",
}

_SPACES = re.compile(r"\s+")
_EDGE_PUNCTUATION = " ,.;:-_/"


@lru_cache(maxsize=4096)  # a library has few makes; a rebuild asks about each on every metadata event
def _core(text: str) -> str:
    """Lower-cased maker name without corporate suffixes or trailing punctuation."""
    words = _SPACES.sub(" ", text.replace(",", " , ")).strip().lower().split(" ")
    while words:
        last = words[-1].strip(_EDGE_PUNCTUATION)
        if not last or (last in _SUFFIX_WORDS and len(words) > 1):
            words.pop()
            continue
        break
    core = " ".join(words).strip(_EDGE_PUNCTUATION)
    return core.replace(" ,", ",")


def normalise_make(raw: Any) -> str | None:
    """One display name per camera maker; None when there is no make."""
    if raw is None or isinstance(raw, bool):
        return None
    text = str(raw).replace("\x00", " ").strip()
    if not text:
        return None
    core = _core(text)
    if not core:
        return None
    known = _ALIASES.get(core)
    if known is not None:
        return known
    first = core.split(" ", 1)[0]  # "Canon Inc. Japan"-like leftovers keep the maker's name
    if first in _ALIASES and first not in ("sony", "konica", "fuji", "blackmagic"):
        return _ALIASES[first]
    return core.title()


def clean_lens(raw: Any) -> str | None:
    """The lens name as shown (whitespace trimmed and collapsed); None when there is none."""
    if raw is None or isinstance(raw, bool):
        return None
    return _clean_lens_text(str(raw))


@lru_cache(maxsize=4096)
def _clean_lens_text(raw: str) -> str | None:
    text = _SPACES.sub(" ", raw.replace("\x00", " ")).strip()
    return text or None


def lens_key(lens: str | None) -> str | None:
    """What a lens filter compares: the cleaned name, case-folded (lower-cased)."""
    cleaned = clean_lens(lens)
    return cleaned.lower() if cleaned is not None else None
