"""A loop on a daemon thread: the shape the projection daemon, the relays and the scheduler share.

A subclass sets up its state, calls `Background.__init__(name)`, and writes `_run`, which loops
`while not self._stop.is_set()` and waits with `self._pause(seconds)`; `wake()` cuts that wait
short (something was written), `stop()` ends the loop and joins the thread. A loop that runs in
one replica only sets `self.leadership` (`infra.leadership`); `stop()` gives it up.
"""

from __future__ import annotations

import threading
from typing import Any


class Background:
    def __init__(self, thread_name: str, join_timeout: float = 30.0) -> None:
        self.thread_name = thread_name
        self.join_timeout = join_timeout
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.leadership: Any = None  # an infra.leadership.Leadership, for loops one replica runs

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_timeout)
        if self.leadership is not None:
            self.leadership.release()

    def _pause(self, seconds: float) -> None:
        """Wait up to `seconds`, or until woken or stopped."""
        self._wake.wait(seconds)
        self._wake.clear()

    def _run(self) -> None:
        raise NotImplementedError
