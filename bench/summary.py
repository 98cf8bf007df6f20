"""The hot-path table of issue #15 in one summary: runs the benches that measure it and prints
each figure's ratio to its baseline (measured in the same run) beside the aim.

    python bench/summary.py     # PostgreSQL/Elasticsearch from the environment (source .services.env)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RUNS = [
    ("hot_paths.py", []),
    ("event_store.py", ["--commands", "3000", "--assets", "1500"]),
    ("search.py", ["--assets", "30000", "--queries", "20"]),
]
ROWS = [  # (what, script, pattern of its ratio line, aim)
    ("GET /assets?type=PHOTO&limit=50 vs GET /health", "hot_paths.py", r"GET /assets\?type.*ratio\s+([\d.]+)", 0.6),
    ("GET /assets/{id} vs GET /health", "hot_paths.py", r"GET /assets/\{id\}.*ratio\s+([\d.]+)", 0.9),
    ("uploads/s PostgreSQL(+ES) vs embedded", "hot_paths.py", r"small-photo uploads.*ratio\s+([\d.]+)", 0.8),
    ("catalog rebuild (PostgreSQL) vs raw scan", "event_store.py", r"ratio rebuild / raw scan:\s+([\d.]+)", 0.3),
    ("embedded search build vs bare insert", "search.py", r"embedded: rebuild from the log.*ratio ([\d.]+)", 0.2),
]


def main() -> int:
    outputs: dict[str, str] = {}
    for script, args in RUNS:
        if script == "event_store.py" and not os.environ.get("DARKROOM_DATABASE_URL", "").startswith("postgres"):
            outputs[script] = ""
            continue
        done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True)
        outputs[script] = done.stdout
        print(done.stdout, end="")
        if done.returncode:
            print(done.stderr[-2000:], file=sys.stderr)
    print(f"\nsummary ({os.cpu_count()} cores; each ratio against a baseline in the same run)")
    for what, script, pattern, aim in ROWS:
        found = re.search(pattern, outputs[script])
        ratio = f"{float(found.group(1)):5.2f}" if found else "  n/a"
        mark = "" if not found else ("  met" if float(found.group(1)) >= aim else "  below")
        print(f"  {what:<46} ratio {ratio}   aim >= {aim}{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
