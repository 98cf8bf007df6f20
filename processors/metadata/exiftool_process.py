"""The stay-open exiftool that metadata is read with: one exiftool process per Python process.

`read_exiftool(path)` asks it for the tags in `_EXIFTOOL_TAGS` and returns {"Group:Tag": value}.
PyExifTool has no timeout and no fork safety of its own, so this module adds both: a watchdog
kills a call that runs past EXIFTOOL_TIMEOUT_S (or whose exiftool died), a dead process is
restarted on the next call, and a forked child never uses or ends its parent's process.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from exiftool import ExifToolHelper

# exiftool has no timeout of its own and PyExifTool waits forever for its answer: a watchdog
# kills a call that runs longer than this. PyAV's interrupt callback gets the same budget
# (streams.PYAV_TIMEOUT_S).
EXIFTOOL_TIMEOUT_S = 30.0
EXIFTOOL_START_TIMEOUT_S = 30.0

# Tags asked of exiftool. `#` turns off print conversion for that tag (numbers stay numbers);
# LensID keeps its print conversion, which is the lens name.
_EXIFTOOL_TAGS = [
    "FileType", "MIMEType", "Error", "Warning",
    "ImageSize#", "Orientation#", "Rotation#", "Duration#",
    "Make", "Model", "UniqueCameraModel", "LensModel", "LensID",
    "FNumber#", "ExposureTime#", "FocalLength#", "ISO#",
    "DateTimeOriginal", "OffsetTimeOriginal", "CreateDate", "OffsetTimeDigitized",
    "CreationDate", "DateCreated",
    "GPSLatitude#", "GPSLongitude#",
    "XResolution#", "YResolution#", "ResolutionUnit#",
    "PixelsPerUnitX#", "PixelsPerUnitY#", "PixelUnits#",
    "ImageDescription", "Description", "Caption-Abstract", "Comment",
    "Title", "Author", "Creator", "Subject", "Artist", "Album", "Genre", "Year",
    "PageCount#",
]
# -a: every group's copy of a tag; -G1: group names specific enough to choose (IFD0, ExifIFD,
# Keys, Composite, ...); LargeFileSupport: videos over 2 GB.
_EXIFTOOL_ARGS = ["-a", "-G1", "-api", "LargeFileSupport=1"]


class ExifToolFailed(Exception):
    """exiftool could not be asked (timeout, died, no answer)."""


_exiftool_lock = threading.Lock()
_exiftool: ExifToolHelper | None = None
_exiftool_pid: int | None = None
# A forked child must neither use nor terminate the parent's process (the pipes are shared):
# it keeps the inherited helper referenced forever so its finaliser never runs.
_inherited: list[ExifToolHelper] = []
# PyExifTool starts exiftool with PR_SET_PDEATHSIG, which Linux ties to the starting *thread*:
# a process started from a short-lived thread (a thread pool, a test's timer thread) would get
# SIGTERM when that thread ends, possibly in the middle of the next call. So exiftool is always
# started by one daemon thread that lives as long as the process.
_starter: queue.Queue[queue.Queue[tuple[bool, Any]]] | None = None


def _forget_inherited_exiftool() -> None:
    global _exiftool, _exiftool_pid, _starter, _exiftool_lock
    if _exiftool is not None:
        _inherited.append(_exiftool)
    _exiftool, _exiftool_pid, _starter = None, None, None
    # Another thread may have held the lock at the fork; that thread does not exist here.
    _exiftool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_inherited_exiftool)


def _starter_loop(requests: queue.Queue[queue.Queue[tuple[bool, Any]]]) -> None:
    while True:
        reply = requests.get()
        try:
            helper = ExifToolHelper(
                common_args=_EXIFTOOL_ARGS, check_execute=False, check_tag_names=False,
                encoding="utf-8", auto_start=False,  # never started from the caller's thread
            )
            helper.run()
            reply.put((True, helper))
        except Exception as exc:  # handed to the caller
            reply.put((False, exc))


def _start_exiftool() -> ExifToolHelper:
    global _starter
    if _starter is None:
        _starter = queue.Queue()
        threading.Thread(target=_starter_loop, args=(_starter,), name="exiftool-starter",
                         daemon=True).start()
    reply: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)
    _starter.put(reply)
    try:
        ok, value = reply.get(timeout=EXIFTOOL_START_TIMEOUT_S)
    except queue.Empty:
        raise ExifToolFailed(f"exiftool did not start within {EXIFTOOL_START_TIMEOUT_S:g} s") from None
    if not ok:
        raise ExifToolFailed(f"exiftool did not start: {value}") from value
    return value


def _is_running(helper: ExifToolHelper) -> bool:
    with warnings.catch_warnings():  # "process died" is what we are checking for
        warnings.simplefilter("ignore")
        return helper.running


def _discard(helper: ExifToolHelper) -> None:
    """Kill a helper's process and release its pipes; `running` then reads False."""
    proc = getattr(helper, "_process", None)
    if proc is not None:
        try:
            proc.kill()
            proc.wait(timeout=5)
        except Exception:  # already gone
            pass
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
    _is_running(helper)


def _helper() -> ExifToolHelper:
    """The process's exiftool, started on first use and restarted if it died."""
    global _exiftool, _exiftool_pid
    if _exiftool is not None and _exiftool_pid == os.getpid() and _is_running(_exiftool):
        return _exiftool
    if _exiftool is not None and _exiftool_pid == os.getpid():
        _discard(_exiftool)
    _exiftool = None
    helper = _start_exiftool()
    _exiftool, _exiftool_pid = helper, os.getpid()
    return helper


def _make_reads_fail(proc: Any) -> None:
    """Kill exiftool and make the blocked reader in PyExifTool fail instead of spinning.

    PyExifTool reads stdout in a select/read loop that never ends at EOF. Putting a directory on
    the pipe's descriptor numbers (dup2 is atomic, the numbers stay owned by the Popen) makes the
    next read raise IsADirectoryError, which ends the call.
    """
    try:
        proc.kill()
    except OSError:
        pass
    try:
        dir_fd = os.open("/", os.O_RDONLY)
    except OSError:
        return
    try:
        for pipe in (proc.stdout, proc.stderr):
            try:
                os.dup2(dir_fd, pipe.fileno())
            except (OSError, ValueError):
                pass
    finally:
        os.close(dir_fd)


def _watch(proc: Any, done: threading.Event, fired: threading.Event, limit: float) -> None:
    """Until `done`: if exiftool dies (PyExifTool would then spin on EOF forever) or runs past
    `limit`, make the blocked call fail."""
    deadline = time.monotonic() + limit
    while not done.wait(0.05):
        if proc.poll() is not None or time.monotonic() >= deadline:
            fired.set()
            _make_reads_fail(proc)
            return


def read_exiftool(path: Path) -> dict[str, Any]:
    """exiftool's tags for `path` as {"Group:Tag": value}; raises ExifToolFailed on no answer."""
    encoded = os.fsencode(path)
    if b"\n" in encoded or b"\r" in encoded:  # arguments travel one per line
        raise ExifToolFailed("the path contains a line break")
    with _exiftool_lock:
        helper = _helper()
        proc = helper._process  # PyExifTool offers neither a timeout nor the process handle
        started = time.monotonic()
        done, fired = threading.Event(), threading.Event()
        watchdog = threading.Thread(target=_watch, args=(proc, done, fired, EXIFTOOL_TIMEOUT_S),
                                    name="exiftool-watchdog", daemon=True)
        watchdog.start()
        try:
            raw = helper.execute(
                "-j", *[f"-{t}" for t in _EXIFTOOL_TAGS], encoded, raw_bytes=True
            )
        except Exception as exc:  # whatever broke, the conversation is out of step: start over
            done.set()
            watchdog.join()
            _discard(helper)
            if time.monotonic() - started >= EXIFTOOL_TIMEOUT_S:
                raise ExifToolFailed(f"exiftool took longer than {EXIFTOOL_TIMEOUT_S:g} s") from exc
            if fired.is_set():
                raise ExifToolFailed("exiftool died while reading the file") from exc
            raise ExifToolFailed(f"exiftool failed: {exc}") from exc
        done.set()
        watchdog.join()
        if fired.is_set():  # fired just as the answer came: the process is gone
            _discard(helper)
    text = raw.decode("utf-8", errors="replace").strip() if isinstance(raw, bytes) else raw
    if not text:
        raise ExifToolFailed("exiftool gave no answer (file unreadable?)")
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise ExifToolFailed(f"exiftool answered something that is not JSON: {exc}") from exc
    if not isinstance(parsed, list) or not parsed or not isinstance(parsed[0], dict):
        raise ExifToolFailed("exiftool answered with no record")
    return {k: v for k, v in parsed[0].items() if k != "SourceFile"}
