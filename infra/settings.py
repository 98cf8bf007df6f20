"""Settings from `DARKROOM_*` environment variables or a TOML file.

Precedence: environment, then the TOML file named by `DARKROOM_CONFIG` (or `./darkroom.toml` when
present), then the defaults below. `darkroom config` prints the effective values.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class SettingsError(Exception):
    """A setting has a value Darkroom cannot use; the message names it."""


@dataclass
class Settings:
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8080
    # Empty: SQLite file in the data dir. `postgresql://user:pass@host:port/db` for PostgreSQL.
    database_url: str = ""
    # PostgreSQL schema for every table (events and read models); empty means `public`.
    database_schema: str = ""
    jwt_secret: str = ""
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # argon2id cost: memory in KiB and passes. The default is the RFC 9106 "second choice".
    password_memory_kib: int = 65536
    password_time_cost: int = 3
    max_json_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 8 * 1024**3
    upload_session_ttl_seconds: float = 24 * 3600.0  # idle chunked-upload sessions are deleted after this
    # Read-your-writes: how long a response waits for the read models to reach its command.
    read_wait_timeout_seconds: float = 5.0
    # Run the projections inside `darkroom serve` (embedded). Off when `darkroom projections run`
    # runs them in their own process.
    run_projections: bool = True
    projection_batch_size: int = 500
    # The job bus: "inprocess" (embedded) or "kafka://host:port[,host:port]" (then `darkroom serve`
    # runs API and projections only, and `darkroom worker` processes run the jobs).
    bus: str = "inprocess"
    # Kafka names: topics are <prefix>.jobs.<queue> and <prefix>.events, consumer groups
    # <prefix>.workers.<queue> (a prefix per test keeps test runs apart on one broker).
    kafka_prefix: str = "darkroom"
    # More repositories besides the default one in the data dir: a JSON object
    # {"<repository id>": "/path/to/dir", ...} (uploads pick one with `repository_id`).
    repositories: str = ""
    # Processing: run workers inside `darkroom serve` (embedded), their concurrency, per-job
    # timeout, attempts and retry backoff (exponential from the base, with jitter).
    run_workers: bool = True
    worker_concurrency: int = 2
    job_timeout_seconds: float = 300.0
    job_max_attempts: int = 3
    job_backoff_base_seconds: float = 2.0
    # Search: Elasticsearch when a URL is set (index names start with the prefix, behind an
    # alias), else the embedded index in the data dir.
    elasticsearch_url: str = ""
    elasticsearch_prefix: str = "darkroom"
    # Semantic search's text embedder as "module:factory" (tests); by default the CLIP model.
    embedder: str = ""
    # Machine learning: a model per task, as a local directory or a hub id; empty or "off" = task
    # off. OCR and faces default to the built-in models shipped in the default install's packages
    # (processors.ml.BUILTIN_OCR / BUILTIN_FACE); a directory or hub id selects a transformers one.
    model_clip: str = ""
    model_species: str = ""
    model_ocr: str = "pp-ocrv6"
    model_face: str = "blazeface+dlib-resnet"
    model_caption: str = ""
    model_labels: str = "efficientnet-lite0"  # ImageNet labels as tags, where the [ml] extra is installed
    ml_device: str = "auto"  # auto (CUDA when present), cpu, cuda, cuda:1 ...
    ml_batch_size: int = 8
    # Trash: trashed assets are purged this many days after their deletion; the sweeper that
    # does it (and finishes purges cut short by a crash) looks every so many seconds.
    trash_days: float = 30.0
    trash_sweep_seconds: float = 3600.0
    # Sharing: wrong passwords a public link takes per window (N/second|minute|hour), then 429.
    rate_limit_share_password: str = "10/minute"
    # External libraries: the folders (os.pathsep- or comma-separated) under which admins may
    # register libraries indexed in place; empty = no external library can be registered.
    library_roots: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    # -- derived -------------------------------------------------------------------------------

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "darkroom.sqlite3"

    def ensure_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def resolved_jwt_secret(self) -> str:
        """The configured secret, or one generated once and kept in the data dir."""
        if self.jwt_secret:
            return self.jwt_secret
        self.ensure_data_dir()
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            os.replace(tmp, path)
        self.jwt_secret = path.read_text().strip()
        return self.jwt_secret

    def postgres_parts(self) -> dict[str, str]:
        url = urlsplit(self.database_url)
        if not url.path.strip("/"):
            raise SettingsError(
                f"DARKROOM_DATABASE_URL {self.database_url!r} names no database; "
                "use postgresql://user:password@host:port/dbname"
            )
        return {
            "host": url.hostname or "127.0.0.1",
            "port": str(url.port or 5432),
            "user": url.username or "postgres",
            "password": url.password or "",
            "dbname": url.path.strip("/"),
        }

    def public_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["data_dir"] = str(self.data_dir)
        out["jwt_secret"] = "(set)" if self.jwt_secret else "(generated in data dir)"
        if self.database_url:
            url = urlsplit(self.database_url)
            if url.password:
                out["database_url"] = self.database_url.replace(url.password, "***", 1)
        return out


def _coerce(name: str, raw: Any, target: Any) -> Any:
    try:
        if target is bool or isinstance(target, bool):
            if isinstance(raw, bool):
                return raw
            value = str(raw).strip().lower()
            if value in ("1", "true", "yes", "on"):
                return True
            if value in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if isinstance(target, Path):
            return Path(raw)
        if isinstance(target, int):
            return int(raw)
        if isinstance(target, float):
            return float(raw)
        return str(raw)
    except ValueError:
        raise SettingsError(
            f"setting {name} has value {raw!r}, which is not a {type(target).__name__}"
        ) from None


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    env = dict(os.environ if environ is None else environ)
    settings = Settings()
    file_values: dict[str, Any] = {}
    config_path = env.get("DARKROOM_CONFIG") or ("darkroom.toml" if Path("darkroom.toml").exists() else "")
    if config_path:
        try:
            file_values = tomllib.loads(Path(config_path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config file {config_path}: {exc}") from None
    for f in fields(Settings):
        if f.name == "extra":
            continue
        default = getattr(settings, f.name)
        if f.name in file_values:
            setattr(settings, f.name, _coerce(f.name, file_values[f.name], default))
        env_key = "DARKROOM_" + f.name.upper()
        if env_key in env:
            setattr(settings, f.name, _coerce(env_key, env[env_key], default))
    for key, value in overrides.items():
        if value is not None:
            setattr(settings, key, _coerce(key, value, getattr(settings, key)))
    if not re.fullmatch(r"\s*[1-9][0-9]*\s*/\s*(second|minute|hour|day)s?\s*", settings.rate_limit_share_password):
        raise SettingsError(f"DARKROOM_RATE_LIMIT_SHARE_PASSWORD must look like 10/minute (N/second|minute|hour|day), "
                            f"got {settings.rate_limit_share_password!r}")
    if settings.database_url and not settings.is_postgres:
        raise SettingsError(
            f"DARKROOM_DATABASE_URL must start with postgresql://, got {settings.database_url!r}"
        )
    return settings
