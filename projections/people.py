"""People: the faces of each owner's photos grouped into people, incrementally.

Each face (from `Asset.FacesDetected`) joins the owner's person whose centre (the normalised mean
of its faces' embeddings) is nearest by cosine, when that is at least `SAME_PERSON_SIMILARITY`;
otherwise it starts a new person. Faces are taken in log order and ties go to the smaller person
id, and person ids are made from the event that founded them, so replaying the log gives the same
people. A new detection of an asset (reprocess) first takes its old faces out of their people, as
does moving the asset to the trash; a person left with no face is gone, and faces recorded on an
asset after its deletion (a job that was running meanwhile) are ignored. A trashed asset's faces
are kept aside (`people_trashed`): restoring it puts them back into people as a new detection
would (a pinned face back into its person); a purge forgets them. People never span owners.

The owner's corrections (`PeopleBook` events) apply in log order too: a name or hiding is a column
of the person; a merge folds the merged people's faces and vectors into the kept person and
remembers each merged id as an alias of it; a moved face leaves its person for the named one and
is pinned there, so a later detection of its asset (reprocess) puts it back in that person.
Person ids are UUIDs (uuid5 of the founding face, or the id a move chose), face ids
`<asset id>:<index>`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from uuid import UUID, uuid5

from infra.database import Database, Row, Transaction
from projections.base import Projection, delete_in, rows_in, to_json, upsert

# Cosine similarity (of normalised embeddings) from which a face joins a person, per model: each
# encoder has its own scale. dlib's 128-d encoder: the same person scored 0.97 on the corpus,
# different people 0.83-0.92 (its usual Euclidean 0.6 on raw vectors is about 0.9 here).
SAME_PERSON_SIMILARITY = 0.6
SAME_PERSON_BY_MODEL = {"blazeface+dlib-resnet": 0.94}
PERSON_NAMESPACE = UUID("3b0d1f7a-58a4-4c41-9d55-7d0e5c2a8b61")
FACE_COLUMNS = ["face_id", "asset_id", "owner_id", "face_index", "box", "confidence", "embedding",
                "person_id", "model", "crop"]
PERSON_COLUMNS = ["person_id", "owner_id", "vector_sum", "face_count"]
ASSET_TOPICS = ("Asset.Uploaded", "Asset.FacesDetected", "Asset.Deleted", "Asset.Restored", "Asset.Purged")
BOOK_TOPICS = ("PeopleBook.PersonNamed", "PeopleBook.PersonHidden", "PeopleBook.PeopleMerged",
               "PeopleBook.FaceMoved")


def threshold_for(model: str) -> float:
    return SAME_PERSON_BY_MODEL.get(model, SAME_PERSON_SIMILARITY)


class PeopleProjection(Projection):
    name = "people"
    tables = ("people_assets", "people_faces", "people", "people_aliases", "people_pins", "people_trashed")
    # 2: faces recorded after the asset's deletion are ignored; 3: UUID person ids, per-model
    # thresholds, names, hiding, merges and moved faces; 4: a restored asset's faces come back
    schema_version = 4

    def create_tables(self, tx: Transaction) -> None:
        assets, faces, people, aliases, pins, trashed = (self.t(b) for b in self.tables)
        tx.execute(f"CREATE TABLE {assets} (asset_id TEXT PRIMARY KEY, owner_id BIGINT NOT NULL)")
        # A trashed asset: its owner and its faces as detected (JSON), until restored or purged.
        tx.execute(f"CREATE TABLE {trashed} (asset_id TEXT PRIMARY KEY, owner_id BIGINT NOT NULL, "
                   "faces TEXT NOT NULL)")
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
                model TEXT NOT NULL,
                crop TEXT
            )"""
        )
        tx.execute(f"CREATE INDEX {self.index_name(faces, 'asset')} ON {faces} (asset_id)")
        tx.execute(f"CREATE INDEX {self.index_name(faces, 'person')} ON {faces} (owner_id, person_id)")
        tx.execute(
            f"""CREATE TABLE {people} (
                person_id TEXT PRIMARY KEY,
                owner_id BIGINT NOT NULL,
                vector_sum TEXT NOT NULL,
                face_count BIGINT NOT NULL,
                name TEXT NOT NULL DEFAULT '',
                hidden BIGINT NOT NULL DEFAULT 0
            )"""
        )
        tx.execute(f"CREATE INDEX {self.index_name(people, 'owner')} ON {people} (owner_id)")
        tx.execute(f"CREATE TABLE {aliases} (person_id TEXT PRIMARY KEY, owner_id BIGINT NOT NULL, "
                   "into_id TEXT NOT NULL)")
        tx.execute(f"CREATE TABLE {pins} (face_id TEXT PRIMARY KEY, owner_id BIGINT NOT NULL, "
                   "person_id TEXT NOT NULL)")

    # Clustering needs every person of an owner, not just rows keyed by the batch's assets, so
    # this projection applies a batch itself: load what the batch touches, fold, write back. A
    # correction (PeopleBook event) is applied on its own, between runs of asset events, so the
    # log order holds.

    def apply_batch(self, tx: Transaction, events: Iterable[Any]) -> None:
        run: list[Any] = []
        for e in events:
            topic = type(e).__qualname__
            if topic in ASSET_TOPICS:
                run.append(e)
            elif topic in BOOK_TOPICS:
                self._apply_assets(tx, run)
                run = []
                _Corrections(self, tx).apply(topic, e)
        self._apply_assets(tx, run)

    def _apply_assets(self, tx: Transaction, relevant: list[Any]) -> None:
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
            elif topic == "Asset.Deleted":
                batch.trash(asset_id)
                batch.replace_faces(asset_id, None)
                batch.forget(asset_id)  # later faces of the deleted asset find no owner
            elif topic == "Asset.Restored":
                batch.restore(asset_id, e.originator_version)
            else:  # Asset.Purged
                batch.trashed[asset_id] = None
        batch.save()


def _vector(text: str) -> np.ndarray:
    return np.array(json.loads(text), dtype=np.float64)


def resolve(tx: Transaction, table: str, person_id: str) -> str:
    """The person an id names now: itself, or the person it was merged into."""
    row = tx.fetchone(f"SELECT into_id FROM {table} WHERE person_id = ?", (person_id,))
    return str(row["into_id"]) if row else person_id


class _Corrections:
    """One PeopleBook event applied to the tables."""

    def __init__(self, projection: PeopleProjection, tx: Transaction) -> None:
        self.tx = tx
        self.assets, self.faces, self.people, self.aliases, self.pins, _ = (projection.t(b) for b in projection.tables)

    def person(self, owner_id: int, person_id: str) -> Row | None:
        return self.tx.fetchone(
            f"SELECT person_id, owner_id, vector_sum, face_count, name, hidden FROM {self.people} "
            "WHERE person_id = ? AND owner_id = ?", (person_id, owner_id))

    def apply(self, topic: str, e: Any) -> None:
        owner = int(e.owner_id)
        if topic == "PeopleBook.PersonNamed":
            self.tx.execute(f"UPDATE {self.people} SET name = ? WHERE person_id = ? AND owner_id = ?",
                            (e.name, resolve(self.tx, self.aliases, e.person_id), owner))
        elif topic == "PeopleBook.PersonHidden":
            self.tx.execute(f"UPDATE {self.people} SET hidden = ? WHERE person_id = ? AND owner_id = ?",
                            (1 if e.hidden else 0, resolve(self.tx, self.aliases, e.person_id), owner))
        elif topic == "PeopleBook.PeopleMerged":
            self.merge(owner, resolve(self.tx, self.aliases, e.person_id), e.merged_ids)
        else:
            self.move(owner, e.face_id, e.person_id)

    def merge(self, owner: int, into_id: str, merged_ids: list[str]) -> None:
        into = self.person(owner, into_id)
        if into is None:
            return  # the kept person was gone by then (its faces deleted): nothing to fold into
        total, count, name = _vector(into["vector_sum"]), int(into["face_count"]), into["name"]
        for merged_id in merged_ids:
            merged_id = resolve(self.tx, self.aliases, merged_id)
            merged = self.person(owner, merged_id)
            if merged is None or merged_id == into_id:
                continue
            other = _vector(merged["vector_sum"])
            total = total + other if other.shape == total.shape else total
            count += int(merged["face_count"])
            name = name or merged["name"]
            self.tx.execute(f"UPDATE {self.faces} SET person_id = ? WHERE person_id = ? AND owner_id = ?",
                            (into_id, merged_id, owner))
            self.tx.execute(f"UPDATE {self.pins} SET person_id = ? WHERE person_id = ?", (into_id, merged_id))
            self.tx.execute(f"UPDATE {self.aliases} SET into_id = ? WHERE into_id = ?", (into_id, merged_id))
            upsert(self.tx, self.aliases, ["person_id", "owner_id", "into_id"], "person_id",
                   [(merged_id, owner, into_id)])
            self.tx.execute(f"DELETE FROM {self.people} WHERE person_id = ?", (merged_id,))
        self.tx.execute(f"UPDATE {self.people} SET vector_sum = ?, face_count = ?, name = ? WHERE person_id = ?",
                        (json.dumps(total.tolist()), count, name, into_id))

    def move(self, owner: int, face_id: str, person_id: str) -> None:
        target_id = resolve(self.tx, self.aliases, person_id)
        upsert(self.tx, self.pins, ["face_id", "owner_id", "person_id"], "face_id", [(face_id, owner, target_id)])
        face = self.tx.fetchone(f"SELECT embedding, person_id FROM {self.faces} WHERE face_id = ? AND owner_id = ?",
                                (face_id, owner))
        if face is None or face["person_id"] == target_id:
            return
        vector = _vector(face["embedding"])
        old = self.person(owner, face["person_id"])
        if old is not None:
            if int(old["face_count"]) <= 1:
                self.tx.execute(f"DELETE FROM {self.people} WHERE person_id = ?", (old["person_id"],))
            else:
                self.tx.execute(f"UPDATE {self.people} SET vector_sum = ?, face_count = ? WHERE person_id = ?",
                                (json.dumps((_vector(old["vector_sum"]) - vector).tolist()),
                                 int(old["face_count"]) - 1, old["person_id"]))
        target = self.person(owner, target_id)
        if target is None:
            self.tx.execute(f"INSERT INTO {self.people} (person_id, owner_id, vector_sum, face_count) "
                            "VALUES (?, ?, ?, 1)", (target_id, owner, json.dumps(vector.tolist())))
        else:
            self.tx.execute(f"UPDATE {self.people} SET vector_sum = ?, face_count = ? WHERE person_id = ?",
                            (json.dumps((_vector(target["vector_sum"]) + vector).tolist()),
                             int(target["face_count"]) + 1, target_id))
        self.tx.execute(f"UPDATE {self.faces} SET person_id = ? WHERE face_id = ?", (target_id, face_id))


class _Batch:
    def __init__(self, projection: PeopleProjection, tx: Transaction) -> None:
        self.p = projection
        self.tx = tx
        self.owners: dict[str, int] = {}
        self.new_assets: set[str] = set()
        self.faces: dict[str, list[Row]] = {}  # asset -> its faces now
        self.people: dict[int, dict[str, dict[str, Any]]] = {}  # owner -> person id -> person
        self.pins: dict[str, str] = {}  # face id -> person id, for the batch's assets
        self.touched_people: set[str] = set()
        self.deleted: set[str] = set()
        # asset -> (owner, faces as detected) while in the trash; None: to forget
        self.trashed: dict[str, tuple[int, list[dict[str, Any]]] | None] = {}

    def load(self, asset_ids: set[str]) -> None:
        assets, faces, _, aliases, pins, trashed = (self.p.t(b) for b in self.p.tables)
        for row in rows_in(self.tx, f"SELECT asset_id, owner_id, faces FROM {trashed}", "asset_id", asset_ids):
            self.trashed[row["asset_id"]] = (int(row["owner_id"]), json.loads(row["faces"]))
        self.loaded_trashed = dict(self.trashed)
        for row in rows_in(self.tx, f"SELECT asset_id, owner_id FROM {assets}", "asset_id", asset_ids):
            self.owners[row["asset_id"]] = int(row["owner_id"])
        for row in rows_in(self.tx, f"SELECT {', '.join(FACE_COLUMNS)} FROM {faces}", "asset_id", asset_ids,
                           order_by="face_id"):
            self.faces.setdefault(row["asset_id"], []).append(row)
        for asset_id in asset_ids:
            self.faces.setdefault(asset_id, [])
        self.loaded_faces = {a: list(f) for a, f in self.faces.items()}
        owners = sorted(set(self.owners.values()) | {kept[0] for kept in self.trashed.values() if kept})
        if owners:
            # Pins of these owners whose face id names one of these assets (ids are "<asset>:<i>").
            for row in rows_in(self.tx, f"SELECT face_id, person_id FROM {pins}", "owner_id", owners):
                if row["face_id"].rsplit(":", 1)[0] in asset_ids:
                    self.pins[row["face_id"]] = resolve(self.tx, aliases, row["person_id"])

    def people_of(self, owner_id: int) -> dict[str, dict[str, Any]]:
        if owner_id not in self.people:
            rows = self.tx.fetchall(
                f"SELECT {', '.join(PERSON_COLUMNS)} FROM {self.p.t('people')} WHERE owner_id = ? "
                "ORDER BY person_id", (owner_id,))
            self.people[owner_id] = {
                r["person_id"]: {"sum": _vector(r["vector_sum"]), "count": int(r["face_count"])}
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
                person["sum"] = person["sum"] - _vector(face["embedding"])
                person["count"] -= 1
                self.touched_people.add(face["person_id"])
        self.faces[asset_id] = []
        if e is None:
            return
        threshold = threshold_for(str(e.model))
        for index, face in enumerate(e.faces):
            vector = np.array(face["embedding"], dtype=np.float64)
            norm = float(np.linalg.norm(vector))
            vector = vector / norm if norm else vector
            face_id = f"{asset_id}:{index}"
            # A restored face (it carries the person it was in) goes back to that person while it
            # exists (a named one is kept with no faces), else the nearest, else founds it again.
            before = face.get("person_id")
            person_id = (self.pins.get(face_id) or (before if before in people else None)
                         or self.nearest(people, vector, threshold))
            if person_id is None:
                person_id = before or str(uuid5(PERSON_NAMESPACE, f"{asset_id}:{e.originator_version}:{index}"))
            if person_id not in people:
                people[person_id] = {"sum": np.zeros_like(vector), "count": 0}
            people[person_id]["sum"] = people[person_id]["sum"] + vector
            people[person_id]["count"] += 1
            self.touched_people.add(person_id)
            self.faces[asset_id].append({
                "face_id": face_id, "asset_id": asset_id, "owner_id": owner,
                "face_index": index, "box": to_json(face["box"]), "confidence": float(face["confidence"]),
                "embedding": json.dumps(vector.tolist()), "person_id": person_id, "model": e.model,
                "crop": face.get("crop"),  # the face cut out (a derived file), when the processor made one
            })

    def trash(self, asset_id: str) -> None:
        """Keep the asset's faces aside, as detected, for a restore."""
        owner = self.owners.get(asset_id)
        if owner is None:
            return
        faces = [{"box": json.loads(f["box"]), "confidence": float(f["confidence"]),
                  "embedding": json.loads(f["embedding"]), "crop": f.get("crop"), "model": f["model"],
                  "person_id": f["person_id"]}
                 for f in sorted(self.faces.get(asset_id, []), key=lambda f: int(f["face_index"]))]
        self.trashed[asset_id] = (owner, faces)

    def restore(self, asset_id: str, version: int) -> None:
        """Out of the trash: the asset is the owner's again and its faces join people anew."""
        kept = self.trashed.get(asset_id)
        if kept is None:
            return
        self.trashed[asset_id] = None
        owner, faces = kept
        self.owners[asset_id] = owner
        self.new_assets.add(asset_id)
        self.deleted.discard(asset_id)
        if faces:
            from types import SimpleNamespace

            self.replace_faces(asset_id, SimpleNamespace(model=faces[0]["model"], faces=faces,
                                                         originator_version=version))

    def forget(self, asset_id: str) -> None:
        self.owners.pop(asset_id, None)
        self.new_assets.discard(asset_id)
        self.deleted.add(asset_id)

    @staticmethod
    def nearest(people: dict[str, dict[str, Any]], vector: np.ndarray, threshold: float) -> str | None:
        best, best_similarity = None, threshold
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
        assets, faces, people_table, _, _, trashed = (self.p.t(b) for b in self.p.tables)
        changed_trash = sorted(a for a, v in self.trashed.items() if v != self.loaded_trashed.get(a))
        delete_in(self.tx, trashed, "asset_id", changed_trash)
        upsert(self.tx, trashed, ["asset_id", "owner_id", "faces"], "asset_id",
               [(a, self.trashed[a][0], json.dumps(self.trashed[a][1])) for a in changed_trash
                if self.trashed[a] is not None])
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
                keep.append((person_id, owner, json.dumps(person["sum"].tolist()), max(0, person["count"])))
                if person["count"] <= 0:
                    gone.append(person_id)
        # Upserting these columns keeps a person's name and hiding. A person left with no face is
        # gone, unless the owner named or hid them: kept (unlisted) for faces that come back from
        # the trash.
        upsert(self.tx, people_table, PERSON_COLUMNS, "person_id", keep)
        for part in range(0, len(gone), 500):
            ids = gone[part:part + 500]
            self.tx.execute(f"DELETE FROM {people_table} WHERE name = '' AND hidden = 0 "
                            f"AND person_id IN ({', '.join('?' * len(ids))})", ids)


class People:
    """Queries over the people read model, scoped to one owner."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def faces_of(self, owner_id: int, asset_id: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT f.face_id, f.face_index, f.box, f.confidence, f.person_id, f.model, p.face_count "
            "FROM people_faces f LEFT JOIN people p ON p.person_id = f.person_id "
            "WHERE f.owner_id = ? AND f.asset_id = ? ORDER BY f.face_index",
            (owner_id, asset_id),
        )
        return [face_dto(r) | {"person_face_count": r["face_count"]} for r in rows]

    def face(self, owner_id: int, face_id: str) -> dict[str, Any] | None:
        row = self.db.query_one(
            "SELECT face_id, asset_id, box, confidence, person_id, crop FROM people_faces "
            "WHERE owner_id = ? AND face_id = ?", (owner_id, face_id))
        return None if row is None else face_dto(row) | {"asset_id": row["asset_id"], "crop": row["crop"]}

    _PERSON_SELECT = (
        "SELECT p.person_id, p.name, p.face_count, p.hidden, "
        "(SELECT COUNT(DISTINCT f.asset_id) FROM people_faces f WHERE f.person_id = p.person_id) AS asset_count, "
        "(SELECT f.face_id FROM people_faces f WHERE f.person_id = p.person_id "
        " ORDER BY f.confidence DESC, f.face_id LIMIT 1) AS cover_face_id "
        "FROM people p WHERE p.owner_id = ? AND p.face_count > 0")

    def people(self, owner_id: int, include_hidden: bool = False, limit: int = 100,
               offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The owner's people, most faces first, and how many there are."""
        hidden = "" if include_hidden else " AND p.hidden = 0"
        rows = self.db.query(f"{self._PERSON_SELECT}{hidden} ORDER BY p.face_count DESC, p.person_id "
                             "LIMIT ? OFFSET ?", (owner_id, limit, offset))
        total = self.db.query_one(f"SELECT COUNT(*) AS n FROM people p WHERE p.owner_id = ? AND p.face_count > 0"
                                  f"{hidden}", (owner_id,))
        return [person_dto(r) for r in rows], int(total["n"]) if total else 0

    def person(self, owner_id: int, person_id: str) -> dict[str, Any] | None:
        """One person of the owner, or None (unknown, another owner's, or merged away)."""
        row = self.db.query_one(f"{self._PERSON_SELECT} AND p.person_id = ?", (owner_id, person_id))
        return None if row is None else person_dto(row)

    def asset_ids(self, owner_id: int, person_id: str) -> list[str]:
        rows = self.db.query("SELECT DISTINCT asset_id FROM people_faces WHERE owner_id = ? AND person_id = ? "
                             "ORDER BY asset_id", (owner_id, person_id))
        return [r["asset_id"] for r in rows]


def face_dto(row: Row) -> dict[str, Any]:
    x, y, w, h = json.loads(row["box"])
    return {"face_id": row["face_id"], "box": {"x": x, "y": y, "w": w, "h": h},
            "score": row["confidence"], "confidence": row["confidence"], "person_id": row["person_id"]}


def person_dto(row: Row) -> dict[str, Any]:
    return {"person_id": row["person_id"], "name": row["name"] or None, "face_count": int(row["face_count"]),
            "asset_count": int(row["asset_count"] or 0), "cover_face_id": row["cover_face_id"],
            "hidden": bool(row["hidden"])}
