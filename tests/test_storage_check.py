"""The sweeper and `darkroom fsck`: stale staging files and originals no event names are swept
after a grace period, a referenced original never is; fsck reports missing, changed and orphaned
originals against the log. Also: a malformed multipart part is a 400, not a 500."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from processors.storage_check import fsck, sweep
from tests.helpers import API, jpeg, register

ROOT = Path(__file__).resolve().parent.parent


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


async def test_sweeper_removes_only_what_no_event_names(client, services, media):
    alice = await register(client, "alice")
    up = await alice.upload_bytes(jpeg(media, "kept"), "kept.jpg")
    storage = services.storage
    repo = storage.repositories[storage.repository(None)]
    kept = next(p for p in (repo / "originals").rglob("*") if p.is_file())
    orphan = repo / "originals" / str(alice.user_id) / "ab" / ("ab" + "0" * 62 + ".jpg")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by an upload whose append failed")
    fresh_orphan = orphan.with_name("cd" + "0" * 62 + ".jpg")
    fresh_orphan.write_bytes(b"an upload between keep and append, right now")
    stale = storage.staging / "dead.part"
    stale.write_bytes(b"x" * 10)
    live = storage.staging / "live.part"
    live.write_bytes(b"being written")
    for path in (kept, orphan, stale):
        _age(path, 7200)

    report = sweep(services.app, storage, grace_seconds=3600)
    assert report.as_dict() == {"staging_removed": 1, "originals_removed": 1,
                                "bytes_freed": 10 + len(b"left by an upload whose append failed")}
    assert kept.exists() and fresh_orphan.exists() and live.exists()
    assert not orphan.exists() and not stale.exists()
    resp = await client.get(f"{API}/assets/{up['data']['asset_id']}/original", headers=alice.headers)
    assert resp.status == 200


async def test_fsck_reports_missing_changed_and_orphaned(client, services, media):
    alice = await register(client, "alice")
    ids = [(await alice.upload_bytes(jpeg(media, f"f{n}"), f"f{n}.jpg"))["data"]["asset_id"] for n in range(3)]
    assert fsck(services.app, services.storage).clean
    rows = [services.catalog.row(alice.user_id, i) for i in ids]
    paths = [services.storage.path_of(r["repository_id"], r["storage_path"]) for r in rows]
    paths[0].unlink()
    data = bytearray(paths[1].read_bytes())
    data[-1] ^= 0xFF  # same size, other content: only the hash tells
    paths[1].write_bytes(bytes(data))
    orphan = paths[2].with_name("ee" + "1" * 62 + ".jpg")
    orphan.write_bytes(b"nobody's")
    report = fsck(services.app, services.storage)
    assert report.checked == 3
    assert [m["asset_id"] for m in report.missing] == [ids[0]]
    assert [c["asset_id"] for c in report.changed] == [ids[1]] and "expected_hash" in report.changed[0]
    assert report.orphaned == [str(orphan)]
    assert fsck(services.app, services.storage, rehash=False).changed == []  # sizes alone agree
    assert paths[2].exists() and orphan.exists()  # fsck deletes nothing


def test_fsck_and_sweep_commands(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DARKROOM_DATA_DIR": str(tmp_path / "data")}
    env.pop("DARKROOM_DATABASE_URL", None)
    run = subprocess.run([sys.executable, "-m", "infra.cli", "fsck"], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["clean"] is True
    stray = tmp_path / "data" / "repositories" / "default" / "originals" / "1" / "stray.jpg"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"x")
    run = subprocess.run([sys.executable, "-m", "infra.cli", "fsck", "--no-rehash"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=120)
    assert run.returncode == 1 and json.loads(run.stdout)["orphaned"] == [str(stray)]
    run = subprocess.run([sys.executable, "-m", "infra.cli", "sweep", "--grace", "0"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=120)
    assert run.returncode == 0 and json.loads(run.stdout.strip().splitlines()[-1])["originals_removed"] == 1
    assert not stray.exists()


async def test_malformed_multipart_parts_are_400(client):
    alice = await register(client, "alice")
    for body in (b"--B\r\n12345--B--\r\n", b"--B\r\nfoo\r\n\r\nx\r\n--B--\r\n", b"garbage"):
        for path in ("/assets", "/assets/batch"):
            resp = await client.post(API + path, data=body, headers={
                **alice.headers, "Content-Type": "multipart/form-data; boundary=B"})
            assert resp.status == 400, (path, body, await resp.text())
            assert (await resp.json())["code"] == 400


async def test_scheduled_sweep_and_fsck_report_to_admins(tmp_path, backend, pg_schema, aiohttp_client, media):
    from api.app import create_app
    from infra.bootstrap import bootstrap
    from tests.conftest import make_settings

    services = bootstrap(make_settings(tmp_path, backend, pg_schema, sweep_interval_seconds=0.2,
                                       fsck_interval_seconds=0.2))
    try:
        client = await aiohttp_client(create_app(services))
        alice = await register(client, "alice")
        up = await alice.upload_bytes(jpeg(media, "s"), "s.jpg")
        row = services.catalog.row(alice.user_id, up["data"]["asset_id"])
        services.storage.path_of(row["repository_id"], row["storage_path"]).unlink()
        for _ in range(100):
            fsck_report = services.sweeper.last_fsck
            if fsck_report and fsck_report["missing"]:
                break
            time.sleep(0.05)
        health = (await (await client.get(f"{API}/health", headers=alice.headers)).json())["data"]
        assert health["storage"]["last_fsck"]["missing"] == 1, health["storage"]
        assert health["storage"]["last_sweep"] is not None
    finally:
        services.close()
