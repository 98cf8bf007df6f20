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
from urllib.parse import unquote, urlsplit, urlunsplit


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
    # The KDF's own pool: threads, and calls that may wait for one (more answer 429 at once).
    # Half the cores by default, so a flood of logins always leaves the API cores to run on.
    password_workers: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2))
    password_queue: int = 32
    # Rate limits, N/second|minute|hour: failed logins per username and per client address,
    # registrations and refreshes per address, password changes per user.
    rate_limit_login_user: str = "10/minute"
    rate_limit_login_address: str = "30/minute"
    rate_limit_register_address: str = "20/hour"
    rate_limit_refresh_address: str = "60/minute"
    rate_limit_password_user: str = "10/minute"
    # A failed login is answered no sooner than this after it arrived, so its timing says nothing
    # about whether the user exists (the lookup of a known user costs a little more).
    login_failure_seconds: float = 0.25
    # A refused (429) request is answered after this delay (at most its Retry-After): a flooding
    # client then waits instead of looping, and costs the server a sleeping coroutine, not CPU.
    rate_limit_delay_seconds: float = 1.0
    # Proxies whose X-Forwarded-For is believed (addresses or networks, comma separated).
    trusted_proxies: str = ""
    # Self-registration: "open" (anyone; the first account is admin) or "closed" (403 once an
    # admin exists; admins create users, `darkroom users create --admin` makes the first one).
    registration: str = "open"
    # Bytes of originals a new user may store; 0 = no limit. Admins change it per user.
    default_quota_bytes: int = 0
    # The sweeper: staging files and unreferenced originals untouched this long are deleted,
    # every `sweep_interval_seconds` (0: never, in this process).
    sweep_grace_seconds: float = 3600.0
    sweep_interval_seconds: float = 3600.0
    # The scheduled fsck: re-hash every original against the log this often (0: never).
    fsck_interval_seconds: float = 7 * 24 * 3600.0
    # Chunked-upload sessions one user may have open at once.
    max_upload_sessions_per_user: int = 64
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
    # Decoder limits per task in the worker's children: pixels per image (a bomb is refused by
    # its header) and bytes of address space on top of what the child maps already (0: none).
    max_image_pixels: int = 16384 * 16384
    decoder_memory_bytes: int = 4 * 1024**3
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
    # Approximate species from the label model's animal classes where the [ml] extra is installed;
    # a CLIP or SigLIP model here gives zero-shot species instead.
    model_species: str = "efficientnet-lite0"
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

    def queue_timeout(self, queue: str, default: float | None = None) -> float:
        """`DARKROOM_QUEUE_<NAME>_TIMEOUT_SECONDS`, else the default job timeout."""
        value = self.extra.get("queues", {}).get(queue, {}).get("timeout_seconds")
        return float(value) if value is not None else (self.job_timeout_seconds if default is None else default)

    def queue_concurrency(self, queue: str, default: int | None = None) -> int:
        """`DARKROOM_QUEUE_<NAME>_CONCURRENCY`: jobs of that queue at once in one worker."""
        value = self.extra.get("queues", {}).get(queue, {}).get("concurrency")
        return int(value) if value is not None else (self.worker_concurrency if default is None else default)

    def max_queue_timeout(self) -> float:
        """The longest job timeout of any queue (what the rescuers wait for)."""
        return max([self.job_timeout_seconds, *(float(q["timeout_seconds"]) for q in
                    self.extra.get("queues", {}).values() if "timeout_seconds" in q)])

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
            # Born 0600 (never readable by others, not even for a moment), written in full under a
            # private name, then linked into place: link refuses to replace, so when two processes
            # start together the first link wins and both read that one secret.
            tmp = self.data_dir / f".jwt-secret.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, secrets.token_urlsafe(48).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won the race: use its secret
            finally:
                tmp.unlink(missing_ok=True)
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
            # Percent-escapes in the URL (a password with '@' or '/') mean the character itself.
            "user": unquote(url.username or "") or "postgres",
            "password": unquote(url.password or ""),
            "dbname": url.path.strip("/"),
        }

    def postgres_server(self) -> str:
        """`host:port/dbname`: names the server in logs and keys its circuit breaker."""
        parts = self.postgres_parts()
        return f"{parts['host']}:{parts['port']}/{parts['dbname']}"

    def public_dict(self) -> dict[str, Any]:
        """The settings as `darkroom config` prints them: secrets masked by key, never by
        searching for their value (a user name equal to the password once showed it)."""
        out = asdict(self)
        out["data_dir"] = str(self.data_dir)
        out["jwt_secret"] = "(set)" if self.jwt_secret else "(generated in data dir)"
        for key in ("database_url", "elasticsearch_url", "bus"):
            out[key] = mask_url_password(out[key])
        return out


def mask_url_password(raw: str) -> str:
    """A URL with its password (if any) replaced by ***, rebuilt from its parts."""
    if "://" not in raw:
        return raw
    parts = [p.strip() for p in raw.split(",")] if raw.startswith("kafka://") else [raw]
    masked = []
    for part in parts:
        url = urlsplit(part)
        if url.password is None:
            masked.append(part)
            continue
        host = url.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{url.username or ''}:***@{host}" + (f":{url.port}" if url.port else "")
        masked.append(urlunsplit((url.scheme, netloc, url.path, url.query, url.fragment)))
    return ",".join(masked)


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
    for key, raw in env.items():
        m = re.fullmatch(r"DARKROOM_QUEUE_([A-Z0-9_]+?)_(TIMEOUT_SECONDS|CONCURRENCY)", key)
        if m is None:
            continue
        queue, what = m.group(1).lower(), m.group(2).lower()
        value = _coerce(key, raw, 1.0 if what == "timeout_seconds" else 1)
        if value <= 0:
            raise SettingsError(f"{key} must be positive, got {raw!r}")
        settings.extra.setdefault("queues", {}).setdefault(queue, {})[what] = value
    if settings.registration not in ("open", "closed"):
        raise SettingsError(f"DARKROOM_REGISTRATION must be open or closed, got {settings.registration!r}")
    if settings.database_url and not settings.is_postgres:
        raise SettingsError(
            f"DARKROOM_DATABASE_URL must start with postgresql://, got {settings.database_url!r}"
        )
    return settings
