"""The eventsourcing environment for the configured backend (SQLite file or PostgreSQL)."""

from __future__ import annotations

from infra.settings import Settings


def eventstore_env(settings: Settings) -> dict[str, str]:
    """Environment for `commands.Darkroom`: eventsourcing reads its persistence from here."""
    if settings.is_postgres:
        parts = settings.postgres_parts()
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts["dbname"],
            "POSTGRES_HOST": parts["host"],
            "POSTGRES_PORT": parts["port"],
            "POSTGRES_USER": parts["user"],
            "POSTGRES_PASSWORD": parts["password"],
            # Its default waits forever for the table lock taken by every insert.
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_POOL_SIZE": "8",
            "POSTGRES_MAX_OVERFLOW": "8",
            "POSTGRES_CONNECT_TIMEOUT": "10",
        }
        if settings.database_schema:
            env["POSTGRES_SCHEMA"] = settings.database_schema
        return env
    settings.ensure_data_dir()
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(settings.sqlite_path),
        "SQLITE_LOCK_TIMEOUT": "30",
    }
