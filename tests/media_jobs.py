"""Processor inputs for corpus files, and a run over media/broken/ in a child process within a
budget (a hang fails the test instead of hanging it; a crash cannot take pytest down)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra.media_types import sniff_file
from processors.base import JobInput

REPO = Path(__file__).resolve().parents[1]
BROKEN_BUDGET_S = 60

_SCRIPT = """
import importlib, json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from infra.media_types import sniff_file
from processors.base import JobInput, UnprocessableMedia
module, name = sys.argv[4].split(":")
process = getattr(importlib.import_module(module), name)
out = {}
for p in sorted(Path(sys.argv[2]).iterdir()):
    t = time.monotonic()
    found = sniff_file(str(p), p.name)
    if found is None:
        out[p.name] = {"outcome": "unrecognised"}
        continue
    job = JobInput(1, p.stem, found.asset_type.value, found.mime_type, p, p.name,
                   Path(sys.argv[3]) / p.stem, Path(sys.argv[3]))
    try:
        out[p.name] = {"outcome": "ok", "result": process(job)}
    except UnprocessableMedia as e:
        out[p.name] = {"outcome": "unprocessable", "message": str(e)}
    except BaseException as e:
        out[p.name] = {"outcome": "error", "message": f"{type(e).__name__}: {e}"}
    out[p.name]["seconds"] = time.monotonic() - t
print(json.dumps(out))
"""


def job_for(path: Path, tmp_path: Path) -> JobInput:
    """The JobInput a worker would build for this corpus file (type sniffed from its bytes)."""
    found = sniff_file(str(path), path.name)
    assert found is not None, f"{path.name} is not recognised"
    return JobInput(
        job_id=1,
        asset_id=path.stem,
        asset_type=found.asset_type.value,
        mime_type=found.mime_type,
        original_path=path,
        original_filename=path.name,
        derived_dir=tmp_path / "d" / path.stem,
        derived_root=tmp_path,
    )


def run_on_broken(processor: str, broken_dir: Path, out_dir: Path) -> dict[str, dict[str, Any]]:
    """`processor` is `module:function`; returns the outcome per file name."""
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(REPO), str(broken_dir), str(out_dir), processor],
        capture_output=True, text=True, timeout=BROKEN_BUDGET_S,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
