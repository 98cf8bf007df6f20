"""Parquet export: per-type files with typed columns from the catalogue, incremental runs, and
the README's DuckDB questions answered from a real export."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra.event_stream import read_events
from infra.parquet_export import export_parquet, last_exported
from tests.golden_log import golden_logs, load_into
from tests.scenario import busy_library

README = Path(__file__).resolve().parent.parent / "README.md"


def _rows_by_type(root: Path) -> dict[str, pa.Table]:
    return {folder.name.removeprefix("type="): pq.read_table(folder) for folder in sorted(root.glob("type=*"))}


def test_round_trip_counts_and_types_per_event_type(services, tmp_path: Path) -> None:
    """Given the golden log, the export has one folder per type, as many rows as the log has
    events of the type, and columns typed from the catalogue."""
    load_into(services, golden_logs()[0])
    result = export_parquet(services.app, tmp_path / "events")
    records = list(read_events(services.app))
    assert result.events == len(records) and result.position == records[-1]["position"]
    tables = _rows_by_type(tmp_path / "events")
    assert {name: t.num_rows for name, t in tables.items()} == dict(Counter(r["type"] for r in records))
    uploaded = tables["Asset.Uploaded"]
    assert uploaded.schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert uploaded.schema.field("file_size").type == pa.int64()
    assert uploaded.schema.field("upload_time").type == pa.timestamp("us", tz="UTC")
    assert tables["Asset.LikeChanged"].schema.field("liked").type == pa.bool_()
    assert tables["Asset.MetadataExtracted"].schema.field("duration").type == pa.float64()
    assert tables["Asset.MetadataExtracted"].schema.field("specific_metadata").type == pa.string()
    assert tables["User.Registered"].column("password_hash").to_pylist() == ["***"] * tables["User.Registered"].num_rows
    assert "originator_topic" not in tables["User.Registered"].column_names
    # Values survive: the golden log's ratings, in log order.
    rated = [r["payload"]["rating"] for r in records if r["type"] == "Asset.RatingChanged"]
    assert tables["Asset.RatingChanged"].column("rating").to_pylist() == rated
    # Old shapes arrive upcast: version-1 Job.Enqueued rows (args a copy of the asset id) read as
    # version 3, whose args are null unless a job needs more than its asset.
    assert set(tables["Job.Enqueued"].column("args").to_pylist()) == {None}


def test_export_is_incremental(services, tmp_path: Path) -> None:
    root = tmp_path / "events"
    owned = busy_library(services, users=1, assets_per_user=4)
    first = export_parquet(services.app, root)
    assert last_exported(root) == first.position > 0
    again = export_parquet(services.app, root)
    assert again.events == 0 and again.files == []
    (user_id, ids), = owned.items()
    for asset_id in ids[:2]:
        services.app.like(user_id, asset_id, False)
        services.app.rate(user_id, asset_id, 5)
    second = export_parquet(services.app, root)
    assert second.after == first.position and second.events > 0
    total = sum(t.num_rows for t in _rows_by_type(root).values())
    assert total == len(list(read_events(services.app)))
    positions = sorted(p for t in _rows_by_type(root).values() for p in t.column("log_position").to_pylist())
    assert positions == sorted(set(positions))  # nothing twice
    with pytest.raises(ValueError):
        export_parquet(services.app, root, after=0)  # would duplicate rows: refused


def test_an_unfinished_export_is_cleaned_up(services, tmp_path: Path) -> None:
    root = tmp_path / "events"
    busy_library(services, users=1, assets_per_user=4)
    export_parquet(services.app, root, to=10)
    stray = root / "type=Asset.RatingChanged" / "part-000000000011-000000000020.parquet"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"written by an export that died before recording its position")
    export_parquet(services.app, root)
    assert not stray.exists()
    assert sum(t.num_rows for t in _rows_by_type(root).values()) == len(list(read_events(services.app)))


def test_readme_duckdb_questions_run_on_an_export(services, tmp_path: Path, monkeypatch) -> None:
    load_into(services, golden_logs()[0])
    export_parquet(services.app, tmp_path / "events")
    section = README.read_text().split("## The event log for analysts", 1)[1].split("\n## ", 1)[0]
    queries = re.findall(r"```sql\n(.*?)```", section, re.S)
    assert len(queries) == 2
    monkeypatch.chdir(tmp_path)
    cameras = duckdb.sql(queries[0]).fetchall()
    assert sum(n for _, _, n in cameras) == 5  # the golden log's five uploads
    assert ("NIKON CORPORATION" in {c for _, c, _ in cameras})
    latency = {q: (jobs, median) for q, jobs, median, _ in duckdb.sql(queries[1]).fetchall()}
    assert latency["metadata_asset"][0] >= 4 and all(m >= 0 for _, m in latency.values())


def test_cli_exports_parquet_and_continues(services, settings, tmp_path: Path) -> None:
    from tests.test_cli import darkroom

    busy_library(services, users=1, assets_per_user=4)
    out = tmp_path / "pq"
    first = darkroom(settings, "events", "export", "--format", "parquet", "-o", str(out))
    head = services.app.recorder.max_notification_id()
    assert f"exported {head} events after position 0" in first.stderr
    again = darkroom(settings, "events", "export", "--format", "parquet", "-o", str(out))
    assert f"exported 0 events after position {head}" in again.stderr
    refused = darkroom(settings, "events", "export", "--format", "parquet", "-o", str(out), "--from", "0", check=False)
    assert refused.returncode == 2 and "twice" in refused.stderr
    missing = darkroom(settings, "events", "export", "--format", "parquet", check=False)
    assert missing.returncode == 2 and "--output" in missing.stderr
