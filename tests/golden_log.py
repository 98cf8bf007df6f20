"""Golden logs: real event logs written by an older version of Darkroom, replayed by this one.

A golden log lives in `tests/golden/<name>/`: `events.jsonl` (the stored events exactly as the
event store held them: topic, originator, version and the stored state as text), `keys.json`
(the users' keys that sealed personal fields, which live outside the log), `manifest.json`
(every event type and its version in the domain when it was written, and the `features` whose
questions it answers, see FEATURE_QUESTIONS) and `answers.json` (what
the API answered, for each user, once the read models had followed the log live). A new version
of the code loads the stored events into an empty store, rebuilds every read model from them
and must answer the same. `scripts/make_golden_log.py` writes a new one; old ones are never
rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from infra.bootstrap import Services

GOLDEN = Path(__file__).resolve().parent / "golden"
API = "/api/v1"

# Values that depend on when a question is asked, not on the log.
_VOLATILE = frozenset({"token", "refreshToken", "expiresAt", "took_ms", "generated_at"})


def golden_logs() -> list[Path]:
    """Every committed golden log, oldest first: by the date its name starts with, then by the
    time its manifest says it was written (`written_at`; logs from before it was recorded have
    none and come first), then by name. Names alone do not order logs of one day."""
    if not GOLDEN.is_dir():
        return []
    return sorted((p for p in GOLDEN.iterdir() if (p / "events.jsonl").is_file()), key=_written)


def _written(path: Path) -> tuple[str, str, str]:
    manifest = json.loads((path / "manifest.json").read_text()) if (path / "manifest.json").is_file() else {}
    return path.name[:10], manifest.get("written_at", ""), path.name


def read_stored_events(path: Path) -> list[dict[str, Any]]:
    with open(path / "events.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_into(services: Services, path: Path) -> int:
    """Insert a golden log's stored events, in their order, into an empty event store, and its
    users' keys (they live outside the log, in the read-model database) where it has some."""
    keys_file = path / "keys.json"
    if keys_file.is_file():
        keys = json.loads(keys_file.read_text())
        with services.db.transaction() as tx:
            for user_id, key in keys["keys"].items():
                tx.execute("INSERT INTO personal_keys (user_id, data_key) VALUES (?, ?)", (int(user_id), key))
            for user_id in keys["erased"]:
                tx.execute("INSERT INTO personal_keys_erased (user_id) VALUES (?)", (int(user_id),))
    rows = read_stored_events(path)
    recorder = services.app.recorder
    batch: list[StoredEvent] = []
    for row in rows:
        batch.append(StoredEvent(
            originator_id=UUID(row["originator_id"]), originator_version=row["originator_version"],
            topic=row["topic"], state=row["state"].encode("utf-8"),
        ))
        if len(batch) == 500:
            recorder.insert_events(batch)
            batch = []
    if batch:
        recorder.insert_events(batch)
    return len(rows)


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


# Questions about features a log's manifest names under `features` (logs written before a
# feature existed do not ask them): (for admins only, paths).
FEATURE_QUESTIONS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "people": (False, ("/people?include_hidden=true",)),
    "trash": (False, ("/trash",)),
    "duplicates": (False, ("/duplicates",)),
    "places": (False, ("/places", "/map/markers")),
    "sharing": (False, ("/albums?scope=all", "/shared-links")),
    "libraries": (True, ("/admin/libraries",)),
    "users": (True, ("/admin/users",)),
}
# Asked for each asset of a log with the "asset_detail" feature.
DETAIL = "?include_tags=true&include_faces=true"


def questions(users: list[dict[str, Any]], assets: dict[str, list[str]], albums: dict[str, list[int]],
              features: list[str] | tuple[str, ...] = ()) -> list[tuple[str, str, str, Any]]:
    """(user, method, path, body) of every question the answers record."""
    asked: list[tuple[str, str, str, Any]] = []
    for user in users:
        name = user["username"]
        asked += [(name, "GET", p, None) for p in (
            "/auth/me", "/assets?types=PHOTO,VIDEO&limit=100", "/assets/liked", "/assets/rating/5", "/albums",
            "/assets/filter-options", "/stats/time-distribution", "/assets/types",
        )]
        asked.append((name, "POST", "/assets/filter", {"filter": {"type": "PHOTO"}, "limit": 100}))
        for asset_id in assets.get(name, []):
            asked += [(name, "GET", f"/assets/{asset_id}", None), (name, "GET", f"/assets/{asset_id}/albums", None)]
            if "asset_detail" in features:
                asked.append((name, "GET", f"/assets/{asset_id}{DETAIL}", None))
        for album_id in albums.get(name, []):
            asked += [(name, "GET", f"/albums/{album_id}", None), (name, "GET", f"/albums/{album_id}/assets", None)]
        if user["is_admin"]:
            asked += [(name, "GET", p, None) for p in (
                "/admin/river/jobs?limit=1000", "/admin/river/queues",
            )]
        for feature in features:
            admin_only, paths = FEATURE_QUESTIONS.get(feature, (False, ()))
            if user["is_admin"] or not admin_only:
                asked += [(name, "GET", p, None) for p in paths]
    return asked


async def answer(client: Any, services: Services, users: list[dict[str, Any]],
                 asked: list[tuple[str, str, str, Any]]) -> list[dict[str, Any]]:
    """Ask every question as its user (a fresh access token each) and keep the answers."""
    by_name = {u["username"]: u for u in users}
    out = []
    for name, method, path, body in asked:
        user = by_name[name]
        token, _ = services.tokens.issue(user["user_id"], user["is_admin"])
        resp = await client.request(method, API + path, json=body, headers={"Authorization": f"Bearer {token}"})
        out.append({"user": name, "method": method, "path": path, "body": body,
                    "status": resp.status, "answer": _normalise(await resp.json())})
    return out
