"""Ingest and processing benchmark: thumbnails/s, upload MB/s, memory of a big upload.

    python bench/processing.py [--big-gib 2] [--upload-mib 512]

Each figure is printed beside a baseline measured in the same run on the same machine:
  1. thumbnails (small, medium, large WebP) for the corpus photos through our processor, vs the
     `vipsthumbnail` command making the same three sizes of the same files (one process per size
     for all files, so its start-up is paid three times only) — aim >= 0.8;
  2. upload MB/s through POST /assets/batch in 8 MiB chunks to a real `darkroom serve`, vs writing
     and BLAKE3-hashing the same bytes locally in 8 MiB pieces — aim >= 0.5;
  3. the server's peak RSS growth while a --big-gib file is uploaded in chunks (should be flat).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from blake3 import blake3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.media_types import sniff_file  # noqa: E402
from processors.base import JobInput  # noqa: E402
from processors.thumbnails import make_thumbnails  # noqa: E402
from tests.live_server import API, LiveServer  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1] / "tests" / "media"
CHUNK = 8 * 1024 * 1024


def bench_thumbnails(work: Path) -> None:
    photos = [p for p in sorted((MEDIA / "photo").iterdir()) if p.suffix.lower() != ".gif"]
    # Only files both sides can read, so they do the same work.
    usable = []
    for p in photos:
        probe = subprocess.run(["vipsthumbnail", "-s", "64", "-o", str(work / "probe-%s.webp"), str(p)],
                               capture_output=True)
        if probe.returncode == 0:
            usable.append(p)
    rounds = 3
    start = time.perf_counter()
    for r in range(rounds):
        for i, p in enumerate(usable):
            media = sniff_file(str(p), p.name)
            d = work / f"ours-{r}-{i}"
            make_thumbnails(JobInput(i, f"{r}-{i}", media.asset_type.value, media.mime_type, p, p.name, d, work))
    ours = len(usable) * rounds / (time.perf_counter() - start)

    start = time.perf_counter()
    for r in range(rounds):
        for size in (256, 1024, 2048):
            out = work / f"vips-{r}-{size}"
            out.mkdir()
            subprocess.run(["vipsthumbnail", "-s", f"{size}x{size}>",
                            "-o", str(out / "%s.webp[Q=80,strip]"), *map(str, usable)], check=True)
    baseline = len(usable) * rounds / (time.perf_counter() - start)
    print(f"thumbnails: {len(usable)} corpus photos x {rounds} rounds, 3 sizes each")
    print(f"  ours (processors.thumbnails):   {ours:8.1f} photos/s")
    print(f"  vipsthumbnail (same 3 sizes):   {baseline:8.1f} photos/s")
    print(f"  ratio:                          {ours / baseline:8.2f}   (aim >= 0.8)")


def wav_bytes(size: int) -> bytes:
    """A WAV header for `size` bytes of PCM, so the upload is recognised as audio."""
    data = size - 44
    return (b"RIFF" + struct.pack("<I", size - 8) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 2, 44100, 44100 * 4, 4, 16)
            + b"data" + struct.pack("<I", data))


def make_file(path: Path, size: int) -> None:
    block = os.urandom(CHUNK)
    with open(path, "wb") as f:
        f.write(wav_bytes(size))
        left = size - 44
        while left > 0:
            f.write(block[: min(left, CHUNK)])
            left -= min(left, CHUNK)


async def upload_chunked(base: str, token: str, path: Path) -> float:
    size = path.stat().st_size
    total = (size + CHUNK - 1) // CHUNK
    session_id = uuid.uuid4().hex
    start = time.perf_counter()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        with open(path, "rb") as f:
            for index in range(total):
                form = aiohttp.FormData()
                form.add_field(f"chunk_{session_id}_{index}_{total}", f.read(CHUNK), filename=path.name)
                async with http.post(base + API + "/assets/batch", data=form) as resp:
                    body = await resp.json()
                    assert resp.status == 200 and body["data"]["results"][0]["success"], body
    return time.perf_counter() - start


def local_write_and_hash(path: Path, target: Path) -> float:
    start = time.perf_counter()
    hasher = blake3()
    with open(path, "rb") as src, open(target, "wb") as dst:
        while chunk := src.read(CHUNK):
            hasher.update(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    hasher.hexdigest()
    return time.perf_counter() - start


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def bench_upload(work: Path, upload_mib: int, big_gib: float) -> None:
    server = LiveServer(work / "data", DARKROOM_RUN_WORKERS="false",
                        DARKROOM_MAX_UPLOAD_BYTES=str(int((big_gib + 1) * 1024**3)))
    try:
        token = server.json("POST", "/auth/register", json_body={
            "username": "bench", "email": "bench@example.org", "password": "correct horse"}, expect=201)["data"]["token"]
        medium = work / "medium.wav"
        make_file(medium, upload_mib * 1024 * 1024)
        # Warm the page cache for both sides equally.
        local_write_and_hash(medium, work / "warm.bin")
        baseline = local_write_and_hash(medium, work / "copy.bin")
        took = asyncio.run(upload_chunked(server.base, token, medium))
        mb = medium.stat().st_size / 1e6
        print(f"upload: {upload_mib} MiB in 8 MiB chunks through POST /assets/batch")
        print(f"  through the API:                {mb / took:8.1f} MB/s")
        print(f"  local write + BLAKE3:           {mb / baseline:8.1f} MB/s")
        print(f"  ratio:                          {baseline / took:8.2f}   (aim >= 0.5)")
        for p in (medium, work / "warm.bin", work / "copy.bin"):
            p.unlink()

        big = work / "big.wav"
        make_file(big, int(big_gib * 1024**3))
        Path(f"/proc/{server.proc.pid}/clear_refs").write_text("5")  # reset the high-water mark
        before = vm_hwm_kib(server.proc.pid)
        took = asyncio.run(upload_chunked(server.base, token, big))
        after = vm_hwm_kib(server.proc.pid)
        print(f"big upload: {big_gib:g} GiB in {took:.1f} s ({big.stat().st_size / 1e6 / took:.0f} MB/s)")
        print(f"  server peak RSS: {before / 1024:.0f} MiB before, {after / 1024:.0f} MiB during (+{(after - before) / 1024:.0f} MiB)")
        big.unlink()
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upload-mib", type=int, default=512)
    parser.add_argument("--big-gib", type=float, default=2.0)
    parser.add_argument("--skip-upload", action="store_true")
    args = parser.parse_args()
    if shutil.which("vipsthumbnail") is None:
        print("bench: vipsthumbnail is missing; run `make install` (scripts/system-deps.sh)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="darkroom-bench-"))
    try:
        bench_thumbnails(work)
        if not args.skip_upload:
            bench_upload(work, args.upload_mib, args.big_gib)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
