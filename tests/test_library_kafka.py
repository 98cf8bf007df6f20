"""External library scans on the Kafka bus: `darkroom serve` consumes the scan_library queue
(one replica per message, through the queue's consumer group), so a library scans there too."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import jpeg
from tests.kafka_fixtures import kafka_darkroom, wait_until

__all__ = ["kafka_darkroom"]  # the fixture, imported for pytest


def test_a_library_scans_on_kafka(kafka_darkroom, tmp_path: Path, media: Path) -> None:
    roots = tmp_path / "roots"
    folder = roots / "photos"
    (folder / "a").mkdir(parents=True)
    shutil.copy(media / "photo" / "kodak_dx4330.jpg", folder / "a" / "kodak.jpg")
    (folder / "b.jpg").write_bytes(jpeg(media, "kafka"))
    darkroom = kafka_darkroom(library_roots=str(roots))
    services = darkroom.serve()
    app = services.app
    owner = app.register("alice", "alice@example.org", services.passwords.hash("a long password")).user.user_id
    library_id, _ = app.create_library(owner, "photos", owner, folder.resolve(), [], False)
    job_id, position = app.queue_library_scan(library_id)
    services.wait_for(position)
    services.wake()

    def scanned() -> bool:
        row = services.db.query_one("SELECT state FROM jobs WHERE job_id = ?", (job_id,))
        return bool(row and row["state"] == "completed")

    wait_until(scanned, 60, "the scan job to complete on Kafka")
    services.wait_for(app.recorder.max_notification_id())
    rows = services.db.query("SELECT relative_path FROM library_files WHERE library_id = ? ORDER BY relative_path",
                             (library_id,))
    assert [r["relative_path"] for r in rows] == ["a/kodak.jpg", "b.jpg"]
