"""Places, map markers and memories: queries over the catalog's position, place and taken-time
columns (the catalog projection keeps them; this module only reads)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from infra.database import Database
from projections.catalog import CATALOG_COLUMNS, asset_from_row


class Places:
    """Every query is scoped to one owner's assets that are not in the trash."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def places(self, owner_id: int, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Cities with photos, most photos first: `{country_code, country, city, region,
        asset_count, cover_asset_id}` (the cover is the newest asset there)."""
        scope = "FROM catalog_assets WHERE owner_id = ? AND is_deleted = 0 AND country_code IS NOT NULL"
        with self.db.reader() as tx:
            counted = tx.fetchone(f"SELECT COUNT(*) AS n FROM (SELECT country_code, city_key {scope} "
                                  "GROUP BY country_code, city_key) AS g", (owner_id,))
            rows = tx.fetchall(
                f"SELECT country_code, city_key, COUNT(*) AS n, MIN(place) AS place, "
                f"MAX(sort_time || '|' || asset_id) AS newest {scope} GROUP BY country_code, city_key "
                "ORDER BY n DESC, country_code, city_key LIMIT ? OFFSET ?", (owner_id, limit, offset))
        out = []
        for r in rows:
            place = json.loads(r["place"])
            out.append({"country_code": r["country_code"], "country": place["country"], "city": place["city"],
                        "region": place.get("region"), "asset_count": int(r["n"]),
                        "cover_asset_id": str(r["newest"]).rsplit("|", 1)[1]})
        return out, int(counted["n"]) if counted else 0

    def markers(self, owner_id: int, *, type: str | None, liked: bool | None, rating: int | None,
                taken_from: str | None, taken_to: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Positions of the owner's assets with GPS, newest first."""
        where = ["owner_id = ?", "is_deleted = 0", "latitude IS NOT NULL"]
        params: list[Any] = [owner_id]
        for sql, value in (("type = ?", type), ("liked = ?", None if liked is None else int(liked)),
                           ("rating = ?", rating), ("taken_utc >= ?", taken_from), ("taken_utc <= ?", taken_to)):
            if value is not None:
                where.append(sql)
                params.append(value)
        clause = " AND ".join(where)
        with self.db.reader() as tx:
            counted = tx.fetchone(f"SELECT COUNT(*) AS n FROM catalog_assets WHERE {clause}", params)
            rows = tx.fetchall(
                f"SELECT asset_id, latitude, longitude, taken_time FROM catalog_assets WHERE {clause} "
                "ORDER BY sort_time DESC, asset_id DESC LIMIT ? OFFSET ?", (*params, limit, offset))
        return [{"asset_id": r["asset_id"], "lat": r["latitude"], "lon": r["longitude"],
                 "taken_time": r["taken_time"]} for r in rows], int(counted["n"]) if counted else 0

    def memories(self, owner_id: int, day: date, per_year: int) -> list[dict[str, Any]]:
        """What was taken on this month and day in earlier years, by the wall-clock taken time in
        the photo's own time zone, most recent year first. On 28 February of a year without a
        29th, photos of a 29 February count too."""
        days = [day.strftime("%m-%d")]
        if days[0] == "02-28" and not _leap(day.year):
            days.append("02-29")
        rows = self.db.query(
            f"SELECT {CATALOG_COLUMNS} FROM catalog_assets WHERE owner_id = ? AND is_deleted = 0 "
            f"AND taken_monthday IN ({', '.join('?' * len(days))}) AND taken_local < ? "
            "ORDER BY taken_local DESC, asset_id", (owner_id, *days, f"{day.year:04d}"))
        by_year: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            year = int(r["taken_local"][:4])
            if len(by_year.setdefault(year, [])) < per_year:
                by_year[year].append(asset_from_row(r))
        return [{"year": year, "years_ago": day.year - year, "assets": assets}
                for year, assets in sorted(by_year.items(), reverse=True)]


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
