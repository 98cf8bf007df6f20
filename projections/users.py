"""The users directory: accounts with their rights, state and quota, for admins and for the
per-request check that a token's user is still active (deactivation ends sessions at once)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.database import Database, Row, Transaction
from projections.base import Projection, handles, rows_in, ts, upsert

USER_COLUMNS = ("user_id, username, email, is_active, is_admin, quota_bytes, session_epoch, "
                "created_at, last_login")


class UsersProjection(Projection):
    name = "users"
    tables = ("users",)

    def create_tables(self, tx: Transaction) -> None:
        tx.execute(
            f"""CREATE TABLE {self.t('users')} (
                aggregate_id TEXT PRIMARY KEY,
                user_id BIGINT NOT NULL UNIQUE,
                username TEXT NOT NULL,
                email TEXT NOT NULL,
                is_active BIGINT NOT NULL,
                is_admin BIGINT NOT NULL,
                quota_bytes BIGINT NOT NULL,
                session_epoch BIGINT NOT NULL,
                created_at TEXT NOT NULL,
                last_login TEXT
            )"""
        )

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        return {r["aggregate_id"]: r for r in rows_in(
            tx, f"SELECT aggregate_id, {USER_COLUMNS} FROM {self.t('users')}", "aggregate_id", keys)}

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        columns = ["aggregate_id", *USER_COLUMNS.split(", ")]
        upsert(tx, self.t("users"), columns, "aggregate_id",
               [tuple(states[k][c] for c in columns) for k in sorted(states)])

    @handles("User.Registered")
    def registered(self, row: Row | None, e: Any) -> Row:
        return {"aggregate_id": str(e.originator_id), "user_id": e.user_id, "username": e.username,
                "email": e.email, "is_active": 1, "is_admin": int(e.is_admin), "quota_bytes": 0,
                "session_epoch": 0, "created_at": ts(e.registered_at), "last_login": None}

    @handles("User.LoggedIn")
    def logged_in(self, row: Row | None, e: Any) -> Row | None:
        if row is not None:
            row["last_login"] = ts(e.at)
        return row

    @handles("User.PasswordChanged")
    def password_changed(self, row: Row | None, e: Any) -> Row | None:
        if row is not None:
            row["session_epoch"] += 1
        return row

    @handles("User.Deactivated")
    def deactivated(self, row: Row | None, e: Any) -> Row | None:
        if row is not None:
            row["is_active"] = 0
            row["session_epoch"] += 1
        return row

    @handles("User.Reactivated")
    def reactivated(self, row: Row | None, e: Any) -> Row | None:
        if row is not None:
            row["is_active"] = 1
        return row

    @handles("User.AdminRightsChanged")
    def admin_rights_changed(self, row: Row | None, e: Any) -> Row | None:
        if row is not None:
            row["is_admin"] = int(e.is_admin)
        return row

    @handles("User.QuotaChanged")
    def quota_changed(self, row: Row | None, e: Any) -> Row | None:
        if row is not None:
            row["quota_bytes"] = e.quota_bytes
        return row


@dataclass(frozen=True)
class AuthState:
    """What each authenticated request checks: is the account open, is it admin, which sessions count."""

    is_active: bool
    is_admin: bool
    session_epoch: int


class Users:
    """Queries on the users directory (and on the catalog, for bytes used)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def auth_state(self, user_id: int) -> AuthState | None:
        row = self.db.query_one(
            "SELECT is_active, is_admin, session_epoch FROM users WHERE user_id = ?", (user_id,))
        if row is None:
            return None
        return AuthState(bool(row["is_active"]), bool(row["is_admin"]), int(row["session_epoch"]))

    def admin_exists(self) -> bool:
        return self.db.query_one("SELECT 1 AS x FROM users WHERE is_admin = 1 AND is_active = 1") is not None

    def usage_bytes(self, user_id: int) -> int:
        """Bytes of the user's originals (trashed ones too: their files are still on disk)."""
        row = self.db.query_one(
            "SELECT COALESCE(SUM(file_size), 0) AS used FROM catalog_assets WHERE owner_id = ?", (user_id,))
        return int(row["used"]) if row else 0

    def quota_left(self, user_id: int) -> int | None:
        """Bytes the user may still store, or None when they have no quota."""
        row = self.db.query_one("SELECT quota_bytes FROM users WHERE user_id = ?", (user_id,))
        if row is None or not row["quota_bytes"]:
            return None
        return max(0, int(row["quota_bytes"]) - self.usage_bytes(user_id))

    def list(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        rows = self.db.query(
            f"SELECT {USER_COLUMNS}, (SELECT COALESCE(SUM(c.file_size), 0) FROM catalog_assets c "
            "WHERE c.owner_id = u.user_id) AS usage_bytes FROM users u ORDER BY user_id LIMIT ? OFFSET ?",
            (limit, offset))
        total = self.db.query_one("SELECT COUNT(*) AS n FROM users")
        return [user_row(r) for r in rows], int(total["n"]) if total else 0


def user_row(row: Row) -> dict[str, Any]:
    """A directory row as the admin API shows it."""
    return {
        "user_id": int(row["user_id"]), "username": row["username"], "email": row["email"],
        "created_at": row["created_at"], "last_login": row["last_login"],
        "is_active": bool(row["is_active"]), "is_admin": bool(row["is_admin"]),
        "quota_bytes": int(row["quota_bytes"]), "usage_bytes": int(row.get("usage_bytes") or 0),
    }
