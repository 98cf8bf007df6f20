"""Watching external libraries: file-system events (watchfiles: inotify on Linux) become scans of
the folders that changed.

One thread watches every library with `watch` on. Changes arrive batched per burst (watchfiles
debounces); each burst queues one scan per library, of the parent folders of the changed paths
(a scan of a folder marks offline only what vanished under it). The set of watched libraries is
re-read every few seconds, so a library registered or deleted is picked up without a restart.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from infra.library_fs import glob_regex, inside
from projections.libraries import Libraries

log = logging.getLogger("darkroom.libraries")
REFRESH_SECONDS = 3.0


class LibraryWatcher:
    def __init__(self, services: Any, debounce_ms: int = 200) -> None:
        self.services = services
        self.debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polling = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="library-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _watched(self) -> dict[int, tuple[Path, Any]]:
        return {int(r["library_id"]): (Path(r["path"]), glob_regex(json.loads(r["exclusion_patterns"])))
                for r in Libraries(self.services.db).watched() if Path(r["path"]).is_dir()}

    def _run(self) -> None:
        from watchfiles import watch

        while not self._stop.is_set():
            try:
                libraries = self._watched()
                if not libraries:
                    self._stop.wait(REFRESH_SECONDS)
                    continue
                checked = time.monotonic()
                # yield_on_timeout: an empty set every rust_timeout, to notice new libraries.
                # After an error (inotify's watch limit on a huge tree, a network share without
                # events), fall back to polling the tree.
                for changes in watch(*(p for p, _ in libraries.values()), stop_event=self._stop,
                                     debounce=self.debounce_ms, step=50, rust_timeout=500,
                                     yield_on_timeout=True, raise_interrupt=False,
                                     force_polling=self.polling, poll_delay_ms=2000):
                    if changes:
                        self._queue_scans(libraries, {Path(path) for _, path in changes})
                    if time.monotonic() - checked > REFRESH_SECONDS:
                        checked = time.monotonic()
                        if self._watched().keys() != libraries.keys():
                            break  # watch the new set
            except Exception:
                log.exception("library watcher error; polling from now on, starting again in 1 s")
                self.polling = True
                self._stop.wait(1.0)

    def _queue_scans(self, libraries: dict[int, tuple[Path, Any]], paths: set[Path]) -> None:
        folders: dict[int, set[str]] = {}
        for path in paths:
            for library_id, (root, excluded) in libraries.items():
                if not inside(path, root) or path == root:
                    continue
                relative = path.relative_to(root).as_posix()
                if excluded is not None and excluded.match(relative):
                    continue
                parent = path.relative_to(root).parent.as_posix()
                folders.setdefault(library_id, set()).add("" if parent == "." else parent)
        for library_id, under in folders.items():
            # A change at the top of the library ("") means: scan it all.
            wanted = [] if "" in under else sorted(under)
            try:
                self.services.app.queue_library_scan(library_id, wanted)
                self.services.wake()
            except Exception:
                log.exception("could not queue a scan of library %s", library_id)
