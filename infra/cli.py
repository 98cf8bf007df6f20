"""The `darkroom` command: serve, worker, projections, events export, config."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from typing import Any

from infra.bus import check_bus_url
from infra.eventstore import DatabaseUnavailable
from infra.settings import SettingsError, load_settings


def _settings(args: argparse.Namespace) -> Any:
    return load_settings(
        data_dir=getattr(args, "data_dir", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from api.app import create_app
    from infra.bootstrap import bootstrap

    settings = _settings(args)
    if args.no_projections:
        settings.run_projections = False
    check_bus_url(settings.bus)
    services = bootstrap(settings)
    if settings.bus != "inprocess":  # Kafka: API, projections, relay and scheduler; no workers
        services.start_outbox()
    backend = "PostgreSQL" if settings.is_postgres else f"SQLite at {settings.sqlite_path}"
    print(f"darkroom: serving on http://{settings.host}:{settings.port} (event store: {backend})", flush=True)
    web.run_app(create_app(services), host=settings.host, port=settings.port, print=None,
                access_log=None)
    return 0


def cmd_projections_status(args: argparse.Namespace) -> int:
    from infra.bootstrap import bootstrap
    from projections.runner import head_position

    services = bootstrap(_settings(args))
    try:
        head = head_position(services.app)
        print(f"{'projection':<12} {'position':>10} {'lag':>8}")
        for name, runner in services.runners.items():
            position = runner.position()
            print(f"{name:<12} {position:>10} {head - position:>8}")
        print(f"{'(log head)':<12} {head:>10}")
        elastic = getattr(services.search, "elastic", None)
        if elastic is not None:  # the search index's mirror: its lag counts documents, not events
            try:
                lag = elastic.lag()
                shown = "not built yet" if lag is None else f"{lag} documents behind search_index"
            except Exception as exc:
                shown = f"unreachable ({type(exc).__name__}: {exc})"
            print(f"elasticsearch mirror {elastic.alias} at {elastic.url}: {shown}")
    finally:
        services.close()
    return 0


def cmd_projections_rebuild(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from infra.bootstrap import bootstrap
    from projections.registry import PROJECTIONS
    from projections.runner import rebuild

    names = list(PROJECTIONS) if args.all else [args.name]
    unknown = [n for n in names if n not in PROJECTIONS]
    if not names or names == [None] or unknown:
        print(f"darkroom: name a projection ({', '.join(PROJECTIONS)}) or pass --all", file=sys.stderr)
        return 2
    services = bootstrap(_settings(args))
    try:
        for name in names:
            with tqdm(desc=f"rebuild {name}", unit="ev", file=sys.stderr, disable=args.quiet) as bar:

                def progress(done: int, total: int, bar: Any = bar) -> None:
                    bar.total = total
                    bar.n = done
                    bar.refresh()

                count = rebuild(services.app, services.db, PROJECTIONS[name], progress=progress)
            print(f"darkroom: rebuilt {name} from {count} events and swapped it in")
    finally:
        services.close()
    return 0


def cmd_projections_run(args: argparse.Namespace) -> int:
    from infra.bootstrap import bootstrap

    services = bootstrap(_settings(args))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    services.start_daemon()
    print("darkroom: projections running; Ctrl-C to stop", flush=True)
    stop.wait()
    services.close()
    return 0


def _export_parquet(args: argparse.Namespace) -> int:
    from infra.bootstrap import bootstrap
    from infra.parquet_export import export_parquet

    if not args.output:
        print("darkroom: --format parquet needs --output DIR (a folder)", file=sys.stderr)
        return 2
    services = bootstrap(_settings(args))
    try:
        types = {t for t in (args.type or []) for t in t.split(",") if t}
        try:
            result = export_parquet(services.app, args.output, after=args.from_, to=args.to, types=types)
        except ValueError as exc:
            print(f"darkroom: {exc}", file=sys.stderr)
            return 2
        print(f"darkroom: exported {result.events} events after position {result.after} into "
              f"{len(result.files)} Parquet files; the next export continues after {result.position}",
              file=sys.stderr)
    finally:
        services.close()
    return 0


def cmd_events_schema(args: argparse.Namespace) -> int:
    from infra.event_catalogue import asyncapi_document, catalogue
    from infra.settings import load_settings

    if args.asyncapi:
        document = asyncapi_document(prefix=args.prefix or load_settings().kafka_prefix)
    else:
        document = catalogue()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_events_export(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from infra.bootstrap import bootstrap
    from infra.event_stream import read_events

    if args.format == "parquet":
        return _export_parquet(args)
    args.from_ = args.from_ or 0
    services = bootstrap(_settings(args))
    out = open(args.output, "w") if args.output else sys.stdout
    try:
        head = services.app.recorder.max_notification_id() or 0
        stop = min(head, args.to) if args.to is not None else head
        types = {t for t in (args.type or []) for t in t.split(",") if t}
        count = 0
        with tqdm(total=max(0, stop - args.from_), desc="export", unit="ev", file=sys.stderr,
                  disable=args.quiet or not args.output) as bar:
            last = args.from_
            for record in read_events(services.app, after=args.from_, to=stop, types=types):
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
                bar.update(record["position"] - last)
                last = record["position"]
                count += 1
            bar.update(stop - last)
        print(f"darkroom: exported {count} events", file=sys.stderr)
    finally:
        if out is not sys.stdout:
            out.close()
        services.close()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from domain.asset import OPTIONAL_TASKS
    from infra.bootstrap import bootstrap
    from processors.registry import PROCESSORS

    settings = _settings(args)
    check_bus_url(settings.bus)
    if settings.bus == "inprocess":
        print("darkroom: `darkroom worker` consumes from Kafka: set DARKROOM_BUS=kafka://host:port "
              "(with the in-process bus, `darkroom serve` runs the workers itself)", file=sys.stderr)
        return 2
    processors = dict(PROCESSORS)
    for spec in args.processor or []:
        queue, _, target = spec.partition("=")
        if not queue or target.count(":") != 1 or not all(target.split(":")):
            print(f"darkroom: --processor {spec!r} must be QUEUE=MODULE:FUNCTION", file=sys.stderr)
            return 2
        processors[queue] = target
    services = bootstrap(settings)
    # By default: every core task, and the optional (ML) ones that have a model configured.
    enabled = set(getattr(services.app, "enrichment_tasks", ()))
    default = [q for q in PROCESSORS if q not in OPTIONAL_TASKS or q in enabled]
    queues = list(dict.fromkeys(args.queue or default))
    unknown = [q for q in queues if q not in processors]
    if unknown:
        print(f"darkroom: no processor for queue(s) {', '.join(unknown)}; "
              f"known queues: {', '.join(processors)}", file=sys.stderr)
        services.close()
        return 2
    concurrency = args.concurrency if args.concurrency is not None else settings.worker_concurrency
    if concurrency < 1:
        print(f"darkroom: --concurrency must be at least 1, got {concurrency}", file=sys.stderr)
        services.close()
        return 2
    from processors.ml import MODEL_SETTINGS
    from processors.ml.models import threads_per_slot
    from processors.registry import with_options

    for queue in MODEL_SETTINGS:  # model threads bounded by this worker's slots
        if processors.get(queue) == PROCESSORS[queue]:
            processors[queue] = with_options(PROCESSORS[queue], threads=threads_per_slot(concurrency))
    grace = args.grace if args.grace is not None else settings.job_timeout_seconds
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker = services.start_worker(queues, concurrency, processors)
    print(f"darkroom: worker {worker.worker_id} consuming {', '.join(queues)} from {settings.bus} "
          f"(prefix {settings.kafka_prefix}, concurrency {concurrency})", flush=True)
    stop.wait()
    print("darkroom: stopping: no new work; finishing jobs in flight", flush=True)
    released = worker.drain(grace)
    services.close()  # leaves the consumer groups: their partitions move on at once
    print(f"darkroom: worker {worker.worker_id} stopped ({worker.taken} jobs taken, "
          f"{released} released)", flush=True)
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    """An account from the shell: the first admin of a server with closed registration."""
    import getpass

    from commands.users import check_registration
    from domain.errors import DomainError
    from infra.bootstrap import bootstrap

    password = args.password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif password is None:
        password = getpass.getpass(f"password for {args.username}: ")
    settings = _settings(args)
    settings.run_workers = False
    services = bootstrap(settings)
    try:
        check_registration(args.username, args.email, password)
        email = args.email.lower()
        services.app.check_free(args.username, email)
        quota = settings.default_quota_bytes if args.quota_bytes is None else args.quota_bytes
        session = services.app.register(args.username, email, services.passwords.hash(password),
                                        is_admin=args.admin, quota_bytes=quota)
        services.wait_for(session.position)
    except DomainError as exc:
        print(f"darkroom: {exc.message}", file=sys.stderr)
        return 1
    finally:
        services.close()
    user = session.user
    print(json.dumps({"user_id": user.user_id, "username": user.username, "is_admin": user.is_admin,
                      "quota_bytes": user.quota_bytes}))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from infra.bootstrap import bootstrap
    from processors.storage_check import sweep

    settings = _settings(args)
    services = bootstrap(settings)
    try:
        grace = settings.sweep_grace_seconds if args.grace is None else args.grace
        print(json.dumps(sweep(services.app, services.storage, grace).as_dict()))
    finally:
        services.close()
    return 0


def cmd_fsck(args: argparse.Namespace) -> int:
    """Exit 0 when every original the log names is there and intact and none is orphaned, else 1."""
    from infra.bootstrap import bootstrap
    from processors.storage_check import fsck

    services = bootstrap(_settings(args))
    try:
        report = fsck(services.app, services.storage, rehash=not args.no_rehash)
    finally:
        services.close()
    print(json.dumps(report.as_dict(), indent=2))
    return 0 if report.clean else 1


def cmd_backfill(args: argparse.Namespace) -> int:
    """Places, stacks and fingerprints for photos stored before this release (see
    commands/backfill.py); prints progress, then a summary. Safe to run again."""
    import time
    from collections import Counter
    from uuid import UUID

    from commands.backfill import FINGERPRINT, PLACE, STACK
    from infra.bootstrap import bootstrap

    services = bootstrap(_settings(args))
    try:
        rows = services.db.query("SELECT asset_id FROM catalog_assets WHERE is_deleted = 0 ORDER BY asset_id")
        total, done, shown = len(rows), Counter(), time.monotonic()
        print(f"backfill: {total} assets to look at", file=sys.stderr)
        for n, row in enumerate(rows, 1):
            done.update(services.app.backfill_asset(UUID(row["asset_id"]), fingerprints=not args.no_fingerprints))
            if time.monotonic() - shown >= 2 or n == total:
                shown = time.monotonic()
                print(f"backfill: {n}/{total} assets; places {done[PLACE]}, stacks {done[STACK]}, "
                      f"fingerprints queued {done[FINGERPRINT]}", file=sys.stderr)
    finally:
        services.close()
    print(json.dumps({"assets": total, "places": done[PLACE], "stacks": done[STACK],
                      "fingerprints_queued": done[FINGERPRINT]}))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(json.dumps(settings.public_dict(), indent=2, default=str))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="darkroom", description="Darkroom media library server")
    p.add_argument("--data-dir", help="data directory (default ./data, or DARKROOM_DATA_DIR)")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    serve.add_argument("--no-projections", action="store_true",
                       help="do not run projections here (run `darkroom projections run` instead)")
    serve.set_defaults(func=cmd_serve)

    proj = sub.add_parser("projections", help="read models: status, rebuild, run")
    proj_sub = proj.add_subparsers(dest="action", required=True)
    status = proj_sub.add_parser("status", help="each projection's position and lag")
    status.set_defaults(func=cmd_projections_status)
    rb = proj_sub.add_parser("rebuild", help="replay into fresh tables, then swap them in")
    rb.add_argument("name", nargs="?")
    rb.add_argument("--all", action="store_true")
    rb.add_argument("--quiet", action="store_true")
    rb.set_defaults(func=cmd_projections_rebuild)
    run = proj_sub.add_parser("run", help="follow the event log and keep read models current")
    run.set_defaults(func=cmd_projections_run)

    events = sub.add_parser("events", help="the event stream")
    events_sub = events.add_subparsers(dest="action", required=True)
    export = events_sub.add_parser("export", help="write events as JSON lines or Parquet")
    export.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl",
                        help="jsonl (default) or parquet: a folder per event type, typed columns")
    export.add_argument("--from", dest="from_", type=int, default=None,
                        help="start after this position (default: 0 for jsonl; for parquet, where the "
                             "last export into the same folder stopped)")
    export.add_argument("--to", type=int, help="stop at this position (inclusive)")
    export.add_argument("--type", action="append", help="only these event types (repeatable)")
    export.add_argument("--output", "-o", help="file to write (default stdout)")
    export.add_argument("--quiet", action="store_true")
    export.set_defaults(func=cmd_events_export)
    schema = events_sub.add_parser("schema", help="the event catalogue (JSON Schema per type) or AsyncAPI")
    schema.add_argument("--asyncapi", action="store_true", help="the AsyncAPI 3 document of the Kafka topics")
    schema.add_argument("--prefix", help="Kafka topic prefix (default DARKROOM_KAFKA_PREFIX)")
    schema.add_argument("--output", "-o", help="file to write (default stdout)")
    schema.set_defaults(func=cmd_events_schema)

    worker = sub.add_parser("worker", help="run jobs from Kafka (DARKROOM_BUS=kafka://...)")
    worker.add_argument("--queue", action="append", help="a queue to consume (repeatable; default all)")
    worker.add_argument("--concurrency", type=int, help="jobs at once (default DARKROOM_WORKER_CONCURRENCY)")
    worker.add_argument("--processor", action="append", metavar="QUEUE=MODULE:FUNCTION",
                        help="run this function for a queue instead of the built-in processor")
    worker.add_argument("--grace", type=float,
                        help="seconds a stopping worker lets jobs finish before releasing them "
                             "(default DARKROOM_JOB_TIMEOUT_SECONDS)")
    worker.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    worker.set_defaults(func=cmd_worker)

    users = sub.add_parser("users", help="user accounts")
    users_sub = users.add_subparsers(dest="action", required=True)
    create = users_sub.add_parser("create", help="create an account (e.g. the first admin)")
    create.add_argument("username")
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="the password (prefer --password-stdin or the prompt)")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    create.add_argument("--admin", action="store_true", help="make the account an administrator")
    create.add_argument("--quota-bytes", type=int, help="bytes of originals allowed (0: no limit)")
    create.set_defaults(func=cmd_users_create)

    sw = sub.add_parser("sweep", help="delete stale staging files and originals no event names")
    sw.add_argument("--grace", type=float, help="only files untouched this many seconds "
                    "(default DARKROOM_SWEEP_GRACE_SECONDS)")
    sw.set_defaults(func=cmd_sweep)

    fs = sub.add_parser("fsck", help="re-hash originals against the log; report missing, changed, orphaned")
    fs.add_argument("--no-rehash", action="store_true", help="compare sizes only")
    fs.set_defaults(func=cmd_fsck)

    bf = sub.add_parser("backfill", help="places, stacks and fingerprints for photos stored before this release")
    bf.add_argument("--no-fingerprints", action="store_true",
                    help="do not queue the thumbnail task for photos without a fingerprint")
    bf.set_defaults(func=cmd_backfill)
    config = sub.add_parser("config", help="print the effective settings")
    config.set_defaults(func=cmd_config)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (SettingsError, DatabaseUnavailable) as exc:
        print(f"darkroom: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
