"""The event log as Parquet for analysts: one folder per event type, typed columns, incremental.

`darkroom events export --format parquet -o DIR` writes `DIR/type=<Type>/part-<first>-<last>.parquet`
(hive-style, so DuckDB, pandas or Spark read a type with `read_parquet('DIR/type=Asset.Uploaded/*')`).
Columns come from the event catalogue (`infra.event_catalogue`), not from the data: every part of
a type has the same schema, whatever its rows hold. Envelope columns: `log_position`,
`event_time` (UTC), `aggregate_id`, `aggregate_version`, `event_version`; then one column per
payload field (integers int64, numbers float64, booleans, date-times as UTC timestamps, text;
objects and lists as JSON text, which DuckDB reads with `->>`). Secrets stay redacted.

`DIR/_export.json` holds the last exported position; the next run continues after it, so a
nightly export only adds new parts. Parts of an export that died before writing that file are
removed by the next run (they lie beyond the recorded position), so no row is exported twice.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from eventsourcing.application import Application

from domain.versioning import event_classes, version_of
from infra.event_catalogue import REDACTED, REDACTED_FIELDS, event_schema
from infra.event_stream import _plain, read_stored_events

STATE_FILE = "_export.json"
ENVELOPE_COLUMNS = ("log_position", "event_time", "aggregate_id", "aggregate_version", "event_version")
_PART = re.compile(r"^part-(\d+)-(\d+)\.parquet$")
_TIMESTAMP = pa.timestamp("us", tz="UTC")


def _arrow_type(schema: dict[str, Any]) -> tuple[pa.DataType, bool]:
    """The Arrow type of a payload field's JSON Schema, and whether its values go as JSON text."""
    kind = schema.get("type")
    if isinstance(kind, list):  # ["integer", "null"]: nullable, which every Arrow column is
        kind = next((k for k in kind if k != "null"), None)
    if "const" in schema:
        return pa.string(), False
    if kind == "integer":
        return pa.int64(), False
    if kind == "number":
        return pa.float64(), False
    if kind == "boolean":
        return pa.bool_(), False
    if kind == "string":
        return (_TIMESTAMP if schema.get("format") == "date-time" else pa.string()), False
    return pa.string(), True  # objects, arrays, anything: JSON text


@dataclass
class _TypeTable:
    """The columns of one event type, filled row by row until written as a part."""

    name: str
    schema: pa.Schema
    fields: list[tuple[str, bool]]  # payload field, as JSON text?
    columns: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str) -> _TypeTable:
        payload = event_schema(name, event_classes()[name])["properties"]["payload"]["properties"]
        arrow = [pa.field("log_position", pa.int64(), nullable=False), pa.field("event_time", _TIMESTAMP, nullable=False),
                 pa.field("aggregate_id", pa.string(), nullable=False), pa.field("aggregate_version", pa.int64()),
                 pa.field("event_version", pa.int64())]
        fields = []
        for key, spec in payload.items():
            if key in ENVELOPE_COLUMNS:
                raise ValueError(f"{name}.{key} clashes with an envelope column of the Parquet export")
            kind, as_json = _arrow_type(spec)
            arrow.append(pa.field(key, kind))
            fields.append((key, as_json))
        table = cls(name, pa.schema(arrow, metadata={"darkroom.event_type": name,
                                                     "darkroom.event_version": str(version_of(event_classes()[name]))}),
                    fields)
        table.clear()
        return table

    def clear(self) -> None:
        self.columns = {f.name: [] for f in self.schema}

    def __len__(self) -> int:
        return len(self.columns["log_position"])

    def add(self, position: int, event: Any) -> None:
        c = self.columns
        c["log_position"].append(position)
        c["event_time"].append(event.timestamp)
        c["aggregate_id"].append(str(event.originator_id))
        c["aggregate_version"].append(event.originator_version)
        c["event_version"].append(version_of(type(event)))
        values = vars(event)
        for key, as_json in self.fields:
            value = values.get(key)  # a field added after the event was written: null
            if key in REDACTED_FIELDS:
                value = REDACTED
            elif as_json:
                value = None if value is None else json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))
            elif isinstance(value, datetime) or type(value) in (int, float, bool, str) or value is None:
                pass
            else:
                value = str(value)  # a UUID in a text column
            c[key].append(value)

    def write(self, root: Path) -> Path:
        first, last = self.columns["log_position"][0], self.columns["log_position"][-1]
        folder = root / f"type={self.name}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{first:012d}-{last:012d}.parquet"
        table = pa.Table.from_pydict(self.columns, schema=self.schema)
        pq.write_table(table, path, compression="zstd")
        self.clear()
        return path


@dataclass
class ExportResult:
    events: int
    after: int
    position: int  # the last position exported (the next export starts after it)
    files: list[Path]


def last_exported(root: Path) -> int:
    """The position an earlier export of this folder reached (0: none)."""
    try:
        return int(json.loads((root / STATE_FILE).read_text())["position"])
    except FileNotFoundError:
        return 0


def _remove_unfinished(root: Path, position: int) -> None:
    # Parts past the recorded position come from an export that died before recording it.
    for part in root.glob("type=*/part-*.parquet"):
        match = _PART.match(part.name)
        if match and int(match.group(2)) > position:
            part.unlink()


def export_parquet(
    app: Application[Any], root: Path | str, after: int | None = None, to: int | None = None,
    types: set[str] | None = None, rows_per_part: int = 100_000,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Export the events in (after, to] to Parquet under `root`; `after` None continues from
    where the last export of `root` stopped. Returns what was written."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    recorded = last_exported(root)
    after = recorded if after is None else after
    if after < recorded:
        raise ValueError(f"{root} already holds the events up to {recorded}: exporting from {after} would "
                         "write some twice; export into another folder")
    _remove_unfinished(root, recorded)
    head = app.recorder.max_notification_id() or 0
    stop = head if to is None else min(to, head)
    tables: dict[str, _TypeTable] = {}
    files: list[Path] = []
    count = 0
    position = after
    for position, event in read_stored_events(app, after, stop, batch=5000):
        name = type(event).__qualname__
        if types and name not in types and name.split(".")[-1] not in types:
            continue
        table = tables.get(name)
        if table is None:
            table = tables[name] = _TypeTable.of(name)
        table.add(position, event)
        count += 1
        if len(table) >= rows_per_part:
            files.append(table.write(root))
        if progress is not None and count % 5000 == 0:
            progress(position)
    for table in tables.values():
        if len(table):
            files.append(table.write(root))
    position = max(position, stop) if stop > after else after
    if position > recorded:
        tmp = root / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps({"position": position}))
        os.replace(tmp, root / STATE_FILE)
    return ExportResult(count, after, position, files)
