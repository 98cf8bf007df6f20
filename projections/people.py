"""People: the faces of each owner's photos grouped into people, incrementally.

Each face (from `Asset.FacesDetected`) joins the owner's person whose centre (the normalised mean
of its faces' embeddings) is nearest by cosine, when that is at least `SAME_PERSON_SIMILARITY`;
otherwise it starts a new person. Faces are taken in log order and ties go to the smaller person
id, and person ids are made from the event that founded them, so replaying the log gives the same
people. A new detection of an asset (reprocess) first takes its old faces out of their people, as
does deleting the asset; a person left with no face is gone, and faces recorded on an asset after
its deletion (a job that was running meanwhile) are ignored. People never span owners.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from infra.database import Database, Row, Transaction
from projections.base import Projection, delete_in, rows_in, to_json, upsert

SAME_PERSON_SIMILARITY = 0.6
FACE_COLUMNS = ["face_id", "asset_id", "owner_id", "face_index", "box", "confidence", "embedding",
                "person_id", "model"]
PERSON_COLUMNS = ["person_id", "owner_id", "vector_sum", "face_count"]


class PeopleProjection(Projection):
    name = "people"
    tables = ("people_assets", "people_faces", "people")
    schema_version = 2  # 2: faces recorded after the asset's deletion are ignored

    def create_tables(self, tx: Transaction) -> None:
        assets, faces, people = (self.t(b) for b in self.tables)
        tx.execute(f"CREATE TABLE {assets} (asset_id TEXT PRIMARY KEY, owner_id BIGINT NOT NULL)")
        tx.execute(
            f"""CREATE TABLE {faces} (
                face_id TEXT PRIMARY KEY,
                asset_id TEXT NOT NULL,
                owner_id BIGINT NOT NULL,
                face_index BIGINT NOT NULL,
                box TEXT NOT NULL,
                confidence DOUBLE PRECISION NOT NULL,
                embedding TEXT NOT NULL,
                person_id TEXT NOT NULL,
                model TEXT NOT NULL
            )"""
        )
        tx.execute(f"CREATE INDEX {self.index_name(faces, 'asset')} ON {faces} (asset_id)")
        tx.execute(f"CREATE INDEX {self.index_name(faces, 'person')} ON {faces} (owner_id, person_id)")
        tx.execute(
            f"""CREATE TABLE {people} (
                person_id TEXT PRIMARY KEY,
                owner_id BIGINT NOT NULL,
                vector_sum TEXT NOT NULL,
                face_count BIGINT NOT NULL
            )"""
        )
        tx.execute(f"CREATE INDEX {self.index_name(people, 'owner')} ON {people} (owner_id)")

    # Clustering needs every person of an owner, not just rows keyed by the batch's assets, so
    # this projection applies a batch itself: load what the batch touches, fold, write back.

    def apply_batch(self, tx: Transaction, events: Iterable[Any]) -> None:
        relevant = [e for e in events if type(e).__qualname__ in
                    ("Asset.Uploaded", "Asset.FacesDetected", "Asset.Deleted")]
        if not relevant:
            return
        batch = _Batch(self, tx)
        batch.load({str(e.originator_id) for e in relevant})
        for e in relevant:
            asset_id = str(e.originator_id)
            topic = type(e).__qualname__
            if topic == "Asset.Uploaded":
                batch.owners[asset_id] = e.owner_id
                batch.new_assets.add(asset_id)
            elif topic == "Asset.FacesDetected":
                batch.replace_faces(asset_id, e)
            else:
                batch.replace_faces(asset_id, None)
                batch.forget(asset_id)  # later faces of the deleted asset find no owner
        batch.save()


class _Batch:
    def __init__(self, projection: PeopleProjection, tx: Transaction) -> None:
        self.p = projection
        self.tx = tx
        self.owners: dict[str, int] = {}
        self.new_assets: set[str] = set()
        self.faces: dict[str, list[Row]] = {}  # asset -> its faces now
        self.people: dict[int, dict[str, dict[str, Any]]] = {}  # owner -> person id -> person
        self.touched_people: set[str] = set()
        self.deleted: set[str] = set()

    def load(self, asset_ids: set[str]) -> None:
        assets, faces, _ = (self.p.t(b) for b in self.p.tables)
        for row in rows_in(self.tx, f"SELECT asset_id, owner_id FROM {assets}", "asset_id", asset_ids):
            self.owners[row["asset_id"]] = int(row["owner_id"])
        for row in rows_in(self.tx, f"SELECT {', '.join(FACE_COLUMNS)} FROM {faces}", "asset_id", asset_ids,
                           order_by="face_id"):
            self.faces.setdefault(row["asset_id"], []).append(row)
        for asset_id in asset_ids:
            self.faces.setdefault(asset_id, [])
        self.loaded_faces = {a: list(f) for a, f in self.faces.items()}

    def people_of(self, owner_id: int) -> dict[str, dict[str, Any]]:
        if owner_id not in self.people:
            rows = self.tx.fetchall(
                f"SELECT {', '.join(PERSON_COLUMNS)} FROM {self.p.t('people')} WHERE owner_id = ? "
                "ORDER BY person_id", (owner_id,))
            self.people[owner_id] = {
                r["person_id"]: {"sum": np.array(json.loads(r["vector_sum"]), dtype=np.float64),
                                 "count": int(r["face_count"])}
                for r in rows
            }
        return self.people[owner_id]

    def replace_faces(self, asset_id: str, e: Any | None) -> None:
        owner = self.owners.get(asset_id)
        if owner is None:
            return
        people = self.people_of(owner)
        for face in self.faces.get(asset_id, []):
            person = people.get(face["person_id"])
            if person is not None:
                person["sum"] = person["sum"] - np.array(json.loads(face["embedding"]), dtype=np.float64)
                person["count"] -= 1
                self.touched_people.add(face["person_id"])
        self.faces[asset_id] = []
        if e is None:
            return
        for index, face in enumerate(e.faces):
            vector = np.array(face["embedding"], dtype=np.float64)
            norm = float(np.linalg.norm(vector))
            vector = vector / norm if norm else vector
            person_id = self.nearest(people, vector)
            if person_id is None:
                person_id = f"{asset_id}:{e.originator_version}:{index}"
                people[person_id] = {"sum": np.zeros_like(vector), "count": 0}
            people[person_id]["sum"] = people[person_id]["sum"] + vector
            people[person_id]["count"] += 1
            self.touched_people.add(person_id)
            self.faces[asset_id].append({
                "face_id": f"{asset_id}:{index}", "asset_id": asset_id, "owner_id": owner,
                "face_index": index, "box": to_json(face["box"]), "confidence": float(face["confidence"]),
                "embedding": json.dumps(vector.tolist()), "person_id": person_id, "model": e.model,
            })

    def forget(self, asset_id: str) -> None:
        self.owners.pop(asset_id, None)
        self.new_assets.discard(asset_id)
        self.deleted.add(asset_id)

    @staticmethod
    def nearest(people: dict[str, dict[str, Any]], vector: np.ndarray) -> str | None:
        best, best_similarity = None, SAME_PERSON_SIMILARITY
        for person_id in sorted(people):
            person = people[person_id]
            if person["count"] <= 0 or person["sum"].shape != vector.shape:
                continue
            norm = float(np.linalg.norm(person["sum"]))
            similarity = float(person["sum"] @ vector) / norm if norm else 0.0
            if similarity > best_similarity or best is None and similarity >= best_similarity:
                best, best_similarity = person_id, similarity
        return best

    def save(self) -> None:
        assets, faces, people_table = (self.p.t(b) for b in self.p.tables)
        upsert(self.tx, assets, ["asset_id", "owner_id"], "asset_id",
               [(a, self.owners[a]) for a in sorted(self.new_assets)])
        delete_in(self.tx, assets, "asset_id", self.deleted)
        changed = sorted(a for a, f in self.faces.items() if f != self.loaded_faces.get(a, []))
        delete_in(self.tx, faces, "asset_id", changed)
        rows = [tuple(f[c] for c in FACE_COLUMNS) for a in changed for f in self.faces[a]]
        if rows:
            self.tx.executemany(
                f"INSERT INTO {faces} ({', '.join(FACE_COLUMNS)}) VALUES ({', '.join('?' * len(FACE_COLUMNS))})",
                rows)
        keep, gone = [], []
        for owner, people in self.people.items():
            for person_id in sorted(self.touched_people & set(people)):
                person = people[person_id]
                if person["count"] > 0:
                    keep.append((person_id, owner, json.dumps(person["sum"].tolist()), person["count"]))
                else:
                    gone.append(person_id)
        upsert(self.tx, people_table, PERSON_COLUMNS, "person_id", keep)
        delete_in(self.tx, people_table, "person_id", gone)


class People:
    """Queries over the people read model, scoped to one owner."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def faces_of(self, owner_id: int, asset_id: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT f.face_index, f.box, f.confidence, f.person_id, f.model, p.face_count "
            "FROM people_faces f LEFT JOIN people p ON p.person_id = f.person_id "
            "WHERE f.owner_id = ? AND f.asset_id = ? ORDER BY f.face_index",
            (owner_id, asset_id),
        )
        return [{"box": json.loads(r["box"]), "confidence": r["confidence"], "person_id": r["person_id"],
                 "person_face_count": r["face_count"]} for r in rows]

    def people(self, owner_id: int) -> list[dict[str, Any]]:
        """The owner's people, most faces first."""
        rows = self.db.query(
            "SELECT person_id, face_count FROM people WHERE owner_id = ? ORDER BY face_count DESC, person_id",
            (owner_id,))
        return [{"person_id": r["person_id"], "face_count": r["face_count"]} for r in rows]
