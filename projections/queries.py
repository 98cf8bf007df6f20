"""Asset filters as SQL over the catalog read model: one translation for SQLite and PostgreSQL.

`AssetFilter` is the `filter` object of API.md after validation. `filter_conditions` turns it
into WHERE conditions with `?` placeholders over the catalog columns that exist for filtering
(`camera_make`, `lens_key`, `is_raw`, `filename_lower`, `taken_utc`); `Catalog.filter` scopes them
to one owner and pages. Semantics, decided here once:

- filename: compared on the lower-cased original filename with the lower-cased value, so every
  mode is case-insensitive. `contains`/`startswith`/`endswith` are literal (a `%`, `_` or `\\`
  in the value means itself). `matches` is a shell glob over the whole name, with Python's
  `fnmatch` rules: `*` any run, `?` one character, `[abc]`, `[a-z]`, `[!abc]` (also `[^abc]`),
  `]` first in a class is literal, an unclosed `[` is literal, no backslash escapes (write `[*]`
  for a literal star). A glob of only `*` and `?` runs as LIKE on both backends; one with classes
  runs as GLOB on SQLite (which has no escapes: literals go in classes) and as an anchored
  regular expression with `~` on PostgreSQL (which has no GLOB).
- date: on the taken time as an instant (UTC). A taken time without an offset counts as UTC, as
  for sorting. `from`/`to` are ISO dates or datetimes; a datetime without an offset is UTC; a date
  as `from` is the start of that day, as `to` the end of it (both ends inclusive). Assets with no
  taken time never match a date filter.
- camera_make: compared on the normalised make (`domain.camera.normalise_make` of both sides).
- lens: the whole lens name, case-insensitively (the values `GET /assets/filter-options`
  returns select exactly their assets; a substring would also select longer names).
- country_code, city: the asset's `place` (offline reverse geocoding of its GPS position); the
  city case-insensitively, as `GET /places` lists it.
- near: great-circle distance from a point, at most `radius_km`; assets without a position
  never match.
- collapse_stacks: an asset in a stack matches only if it is the stack's primary.
"""

from __future__ import annotations

import re
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Any

from domain.camera import lens_key, normalise_make

FILENAME_MODES = ("contains", "startswith", "endswith", "matches")


@dataclass(frozen=True)
class AssetFilter:
    """Every field optional; all given ones must hold (AND)."""

    repository_id: str | None = None
    type: str | None = None
    owner_id: int | None = None
    raw: bool | None = None
    rating: int | None = None
    liked: bool | None = None
    filename_mode: str | None = None
    filename_value: str | None = None
    taken_from: str | None = None  # inclusive lower bound, `instant_text` form
    taken_to: str | None = None  # inclusive upper bound, `instant_text` form
    camera_make: str | None = None
    lens: str | None = None
    country_code: str | None = None  # ISO 3166-1 alpha-2, any case
    city: str | None = None  # the city of `place`, case-insensitively
    near: Near | None = None
    collapse_stacks: bool = False  # only each stack's primary (and unstacked assets)
    person_ids: tuple[str, ...] = ()  # assets that show every one of these people
    tags: tuple[str, ...] = ()  # assets with any of these label tags

    @property
    def needs_sql(self) -> bool:
        """Conditions on other read models (stacks, people, tags), which only the SQL paths join."""
        return bool(self.person_ids or self.tags or self.collapse_stacks)


EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Near:
    """Within `radius_km` (great-circle) of a point."""

    lat: float
    lon: float
    radius_km: float

    def box(self) -> tuple[float, float, list[tuple[float, float]]]:
        """A bounding box: latitude bounds, and one or two longitude ranges (two when it crosses
        the antimeridian; the whole circle near a pole)."""
        dlat = math.degrees(self.radius_km / EARTH_RADIUS_KM)
        south, north = max(-90.0, self.lat - dlat), min(90.0, self.lat + dlat)
        if north >= 90.0 or south <= -90.0:
            return south, north, [(-180.0, 180.0)]
        # The widest longitude span of the circle (at the latitude where it touches its bounds).
        ratio = math.sin(self.radius_km / EARTH_RADIUS_KM) / math.cos(math.radians(self.lat))
        dlon = 180.0 if ratio >= 1 else math.degrees(math.asin(ratio))
        west, east = self.lon - dlon, self.lon + dlon
        if dlon >= 180.0:
            return south, north, [(-180.0, 180.0)]
        if west < -180.0:
            return south, north, [(west + 360.0, 180.0), (-180.0, east)]
        if east > 180.0:
            return south, north, [(west, 180.0), (-180.0, east - 360.0)]
        return south, north, [(west, east)]

    def haversine_bound(self) -> float:
        """hav(d / R) <= this  <=>  distance <= radius (for a radius up to half the Earth)."""
        half = min(self.radius_km / EARTH_RADIUS_KM, math.pi) / 2
        return math.sin(half) ** 2


def near_condition(near: Near) -> tuple[str, list[Any]]:
    """A bounding box on the indexed latitude and longitude first, then the exact great-circle
    distance (haversine, compared without asin so both databases compute it the same way)."""
    south, north, spans = near.box()
    lon_sql = " OR ".join("longitude BETWEEN ? AND ?" for _ in spans)
    params: list[Any] = [south, north, *[v for span in spans for v in span]]
    haversine = ("(sin(radians(latitude - ?) / 2) * sin(radians(latitude - ?) / 2) + "
                 "cos(radians(?)) * cos(radians(latitude)) * "
                 "sin(radians(longitude - ?) / 2) * sin(radians(longitude - ?) / 2)) <= ?")
    params += [near.lat, near.lat, near.lat, near.lon, near.lon, near.haversine_bound()]
    return f"latitude BETWEEN ? AND ? AND ({lon_sql}) AND {haversine}", params


# -- taken times ---------------------------------------------------------------------------


def instant_text(moment: datetime) -> str:
    """A moment as fixed-width UTC text (`2020-05-01T10:00:00.000000Z`); text order is time
    order. A naive moment counts as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    utc = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def taken_instant(value: Any) -> str | None:
    """The catalog's `taken_utc` for a taken time as recorded (ISO text); None if unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return instant_text(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):
        return None


_LEAP_SECOND = re.compile(r"(T\d{2}:\d{2}):60")


def rfc3339(text: str) -> str:
    """What RFC 3339 (JSON Schema's date and date-time) allows and Python's parser does not:
    lower-case t and z, a leap second (read as the second before), year 0 (read as year 1)."""
    if len(text) > 10 and text[10] in "tT ":
        text = text[:10] + "T" + text[11:].upper()
    if text.startswith("0000-"):
        text = "0001-" + text[5:]
    return _LEAP_SECOND.sub(r"\1:59", text)


def calendar_day(text: str) -> date:
    """A `YYYY-MM-DD` day as RFC 3339 means it (year 0 reads as year 1); ValueError otherwise."""
    if len(text) != 10:
        raise ValueError(f"{text!r} is not YYYY-MM-DD")
    return date.fromisoformat(rfc3339(text))


def date_bound(value: str, *, end: bool) -> str:
    """A `date.from` (end=False) or `date.to` (end=True) as an inclusive bound on `taken_utc`.
    Raises ValueError with a message for the client."""
    text = rfc3339(value.strip())
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    try:
        if day is not None:
            moment = datetime.combine(day, time.max if end else time.min, timezone.utc)
        else:
            moment = datetime.fromisoformat(text)
        try:
            return instant_text(moment)
        except OverflowError:  # an offset pushes it past year 1 or 9999: the end of time it is
            return instant_text(datetime.max if moment.year > 1 else datetime.min)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an ISO date (2020-05-01) or datetime (2020-05-01T10:00:00, "
            "optionally with an offset)"
        ) from None


# -- filename globs ------------------------------------------------------------------------

_STAR, _ANY, _NEVER = "star", "any", "never"


def parse_glob(pattern: str) -> list[tuple[Any, ...]]:
    """Tokens of a glob, with `fnmatch` semantics: ("star",), ("any",), ("lit", c),
    ("class", negated, singles, ranges) and ("never",) for a class that holds nothing."""
    tokens: list[tuple[Any, ...]] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not tokens or tokens[-1][0] != _STAR:
                tokens.append((_STAR,))
        elif c == "?":
            tokens.append((_ANY,))
        elif c == "[":
            j = i
            negated = j < n and pattern[j] in "!^"
            if negated:
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:  # unclosed: a literal "["
                tokens.append(("lit", "["))
                continue
            body = pattern[i + 1 if negated else i : j]
            i = j + 1
            singles: set[str] = set()
            ranges: list[tuple[str, str]] = []
            k = 0
            while k < len(body):
                if k + 2 < len(body) and body[k + 1] == "-":
                    if body[k] <= body[k + 2]:  # a reversed range holds nothing
                        ranges.append((body[k], body[k + 2]))
                    k += 3
                else:
                    singles.add(body[k])
                    k += 1
            if not singles and not ranges:
                tokens.append((_ANY,) if negated else (_NEVER,))
            else:
                tokens.append(("class", negated, frozenset(singles), tuple(ranges)))
        else:
            tokens.append(("lit", c))
    return tokens


def _split_ranges(
    singles: frozenset[str], ranges: tuple[tuple[str, str], ...], specials: str
) -> tuple[set[str], list[tuple[str, str]]]:
    """The same set of characters, with no special character as a range end: each special
    inside a range becomes a single, and ranges of one character become singles."""
    out_singles = set(singles)
    out_ranges: list[tuple[str, str]] = []
    for lo, hi in ranges:
        a, b = ord(lo), ord(hi)
        cuts = sorted(ord(s) for s in specials if a <= ord(s) <= b)
        start = a
        for cut in cuts:
            out_singles.add(chr(cut))
            if start <= cut - 1:
                out_ranges.append((chr(start), chr(cut - 1)))
            start = cut + 1
        if start <= b:
            out_ranges.append((chr(start), chr(b)))
    final_ranges = []
    for lo, hi in out_ranges:
        if lo == hi:
            out_singles.add(lo)
        else:
            final_ranges.append((lo, hi))
    return out_singles, final_ranges


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _glob_like(tokens: list[tuple[Any, ...]]) -> str:
    parts = []
    for token in tokens:
        if token[0] == _STAR:
            parts.append("%")
        elif token[0] == _ANY:
            parts.append("_")
        else:
            parts.append(_like_escape(token[1]))
    return "".join(parts)


def _sqlite_glob(tokens: list[tuple[Any, ...]]) -> str:
    """SQLite GLOB has no escape character: `*`, `?` and `[` go in a class to be literal; in a
    class `]` is literal only first, `-` only first or last, `^` anywhere but first."""
    parts = []
    for token in tokens:
        kind = token[0]
        if kind == _STAR:
            parts.append("*")
        elif kind == _ANY:
            parts.append("?")
        elif kind == "lit":
            parts.append(f"[{token[1]}]" if token[1] in "*?[" else token[1])
        else:
            _, negated, singles, ranges = token
            chars, spans = _split_ranges(singles, ranges, "]-^")
            head = "]" if "]" in chars else ""
            middle = "".join(f"{lo}-{hi}" for lo, hi in spans)
            middle += "".join(sorted(c for c in chars if c not in "]-^"))
            caret = "^" if "^" in chars else ""
            dash = "-" if "-" in chars else ""
            if not negated and not head and not middle and caret:
                if not dash:  # the class is just "^": a literal outside a class
                    parts.append("^")
                    continue
                body = dash + caret  # "-" first is literal, then "^" is not first
            else:
                body = head + middle + caret + dash
            parts.append("[" + ("^" if negated else "") + body + "]")
    return "".join(parts)


_REGEX_SPECIAL = set("\\^$.|?*+()[]{}")
_BRACKET_SPECIAL = "\\]-^["


def _postgres_regex(tokens: list[tuple[Any, ...]]) -> str:
    """An anchored PostgreSQL ARE; punctuation is escaped with a backslash (also in brackets)."""

    def bracket(c: str) -> str:
        return "\\" + c if c in _BRACKET_SPECIAL else c

    parts = ["^"]
    for token in tokens:
        kind = token[0]
        if kind == _STAR:
            parts.append(".*")
        elif kind == _ANY:
            parts.append(".")
        elif kind == "lit":
            parts.append("\\" + token[1] if token[1] in _REGEX_SPECIAL else token[1])
        else:
            _, negated, singles, ranges = token
            chars, spans = _split_ranges(singles, ranges, _BRACKET_SPECIAL)
            body = "".join(f"{bracket(lo)}-{bracket(hi)}" for lo, hi in spans)
            body += "".join(bracket(c) for c in sorted(chars))
            parts.append("[" + ("^" if negated else "") + body + "]")
    parts.append("$")
    return "".join(parts)


def filename_condition(mode: str, value: str, dialect: str) -> tuple[str, list[Any]]:
    """A condition on `filename_lower` (case-insensitive by lower-casing both sides)."""
    needle = value.lower()
    like = "filename_lower LIKE ? ESCAPE '\\'"
    if mode == "contains":
        return like, [f"%{_like_escape(needle)}%"]
    if mode == "startswith":
        return like, [f"{_like_escape(needle)}%"]
    if mode == "endswith":
        return like, [f"%{_like_escape(needle)}"]
    if mode != "matches":
        raise ValueError(f"unknown filename mode {mode!r}")
    tokens = parse_glob(needle)
    if any(t[0] == _NEVER for t in tokens):
        return "1 = 0", []
    if all(t[0] in (_STAR, _ANY, "lit") for t in tokens):
        return like, [_glob_like(tokens)]
    if dialect == "postgres":
        return "filename_lower ~ ?", [_postgres_regex(tokens)]
    return "filename_lower GLOB ?", [_sqlite_glob(tokens)]


# -- the whole filter ------------------------------------------------------------------------


def filter_conditions(f: AssetFilter, dialect: str) -> tuple[list[str], list[Any]]:
    """WHERE conditions (ANDed) and their parameters; the owner scope is the caller's."""
    where: list[str] = []
    params: list[Any] = []

    def add(sql: str, *values: Any) -> None:
        where.append(sql)
        params.extend(values)

    if f.repository_id is not None:
        add("repository_id = ?", f.repository_id)
    if f.type is not None:
        add("type = ?", f.type)
    if f.raw is not None:
        add("is_raw = ?", 1 if f.raw else 0)
    if f.rating is not None:
        add("rating = ?", f.rating)
    if f.liked is not None:
        add("liked = ?", 1 if f.liked else 0)
    if f.filename_mode is not None and f.filename_value is not None:
        sql, values = filename_condition(f.filename_mode, f.filename_value, dialect)
        add(sql, *values)
    if f.taken_from is not None:
        add("taken_utc >= ?", f.taken_from)
    if f.taken_to is not None:
        add("taken_utc <= ?", f.taken_to)
    if f.camera_make is not None:
        make = normalise_make(f.camera_make)
        if make is None:
            add("1 = 0")
        else:
            add("camera_make = ?", make)
    if f.lens is not None:
        key = lens_key(f.lens)
        if key is None:
            add("1 = 0")
        else:
            add("lens_key = ?", key)
    if f.country_code is not None:
        add("country_code = ?", f.country_code.upper())
    if f.city is not None:
        add("city_key = ?", f.city.casefold())
    if f.near is not None:
        sql, values = near_condition(f.near)
        add(sql, *values)
    if f.collapse_stacks:
        # Stack members other than the primary are hidden (the stacks read model knows them).
        add("asset_id NOT IN (SELECT asset_id FROM stack_members WHERE is_primary = 0)")
    for person_id in f.person_ids:  # all of them: one condition each (the people read model)
        add("asset_id IN (SELECT asset_id FROM people_faces WHERE person_id = ?)", person_id)
    if f.tags:  # any of them (the tags read model, labels lower-cased)
        add(f"asset_id IN (SELECT asset_id FROM asset_tags WHERE label IN ({', '.join('?' * len(f.tags))}))",
            *[t.strip().lower() for t in f.tags])
    return where, params
