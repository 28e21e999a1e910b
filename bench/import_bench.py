"""Trace import at scale: peak memory of `forge traces import`'s streaming path as the file grows.

Each import runs in a child process so its peak RSS is its own. The peer, measured in the same run, is the
whole-file approach (read every line, parse every trace, then write): its peak is what streaming avoids.
Prints, per size: lines/s, rejected lines, peak RSS of both, and the ratios.

    .venv/bin/python bench/import_bench.py [--sizes 10000,100000]

`--chunks 100000` measures the sharded trace keys instead: that many traces of one day imported 10,000 at a time
into one tenant and domain, the seconds each 10,000 took (flat means no partition grows with the day), against the
same import into one partition per day (`FORGE_TRACE_SHARDS=1`, the layout before sharding) for the first
`--peer-lines` lines (default 20,000: it grows quadratically on Azurite). `--shards N` sets the sharded arm's
FORGE_TRACE_SHARDS (default 16): Azurite's cost per insert grows with the rows already in that partition (a new
tenant's partitions in the same table import at the first chunk's speed), so more shards flatten the curve.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from child import run_child  # noqa: E402


def make_file(path: Path, lines: int, seed: int = 1) -> int:
    """`lines` chat traces of realistic size, 1% of them malformed; returns how many are malformed."""
    rng = random.Random(seed)
    bad = 0
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(lines):
            record = {
                "messages": [
                    {"role": "system", "content": "You are a senior software engineer."},
                    {"role": "user", "content": f"Question {i}: " + "explain this code " * rng.randint(5, 40)},
                    {"role": "assistant", "content": "```python\n" + "x = 1\n" * rng.randint(5, 60) + "```"},
                ],
                "score": rng.randint(50, 100),
                "conversation_id": f"c{i // 3}",
            }
            line = json.dumps(record)
            if i % 100 == 37:
                line, bad = line[: rng.randint(5, 80)], bad + 1
            handle.write(line + "\n")
    return bad


def chunks(path: str, connection: str, shards: int, lines: int) -> None:
    """Import `path` 10,000 lines at a time into one tenant and domain; print the seconds of each chunk."""
    from forge.domain_templates import load_domains
    from forge.services.traces import import_jsonl
    from forge.storage import Storage, StorageAccount

    storage = Storage.open(StorageAccount.from_connection_string(connection), trace_shards=shards)
    tenant, seconds = f"chunks{shards}x{os.getpid()}", []
    with open(path, "rb") as handle:
        for start in range(0, lines, 10_000):
            block = b"".join(handle.readline() for _ in range(min(10_000, lines - start)))
            began = time.perf_counter()
            import_jsonl(storage, io.BytesIO(block), tenant=tenant, domain="coding", known_domains=load_domains(),
                         on_reject=lambda r: None)
            seconds.append(time.perf_counter() - began)
            print(f"  shards={shards}: lines {start + 1:>7,}-{start + 10_000:>7,} in {seconds[-1]:6.1f}s", flush=True)
    print(json.dumps({"seconds": seconds}))


def child(mode: str, path: str, connection: str) -> None:
    from forge.domain.models import utcnow
    from forge.domain.traces import InvalidTrace, parse_line
    from forge.domain_templates import load_domains
    from forge.services.traces import import_jsonl
    from forge.storage import Storage, StorageAccount

    started = time.perf_counter()
    if mode == "stream":
        storage = Storage.open(StorageAccount.from_connection_string(connection))
        with open(path, "rb") as stream:
            summary = import_jsonl(storage, stream, tenant=f"bench{os.getpid()}", domain="coding",
                                   known_domains=load_domains(), on_reject=lambda r: None)
        result = {"imported": summary.imported, "rejected": summary.rejected_total}
    else:  # the peer: hold the whole file and every parsed trace before writing anything
        with open(path, "rb") as handle:
            lines = handle.read().splitlines()
        traces, rejected = [], 0
        for line in lines:
            try:
                traces.append(parse_line(line, tenant="peer", domain="coding", source="import", now=utcnow()))
            except InvalidTrace:
                rejected += 1
        result = {"imported": len(traces), "rejected": rejected}
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result))


def measure(mode: str, path: Path, connection: str) -> dict:
    return run_child([__file__, "--child", mode, str(path), connection])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--persist", action="store_true", help="Azurite on disk (its in-memory mode can run out of heap)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "CONNECTION"))
    parser.add_argument("--chunks", type=int, help="Lines of one day to import 10,000 at a time (sharded keys)")
    parser.add_argument("--peer-lines", type=int, default=20_000, help="Lines the one-partition peer imports")
    parser.add_argument("--shards", type=int, default=16, help="With --chunks: FORGE_TRACE_SHARDS of the sharded arm")
    parser.add_argument("--chunk-child", nargs=4, metavar=("FILE", "CONNECTION", "SHARDS", "LINES"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.chunk_child:
        path, connection, shards, lines = args.chunk_child
        chunks(path, connection, int(shards), int(lines))
        return
    if args.chunks:
        sharded_import(args.chunks, args.peer_lines, args.persist, args.shards)
        return

    from forge.storage.azurite import find_node_modules, start, stop_pid

    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        azurite = start(find_node_modules(), data_dir=Path(tmp) / "azurite" if args.persist else None,
                        log_path=Path(tmp) / "azurite.log", detach=False)
        try:
            rows = []
            for size in sizes:
                path = Path(tmp) / f"traces-{size}.jsonl"
                bad = make_file(path, size)
                stream = measure("stream", path, azurite.connection_string)
                peer = measure("whole-file", path, azurite.connection_string)
                assert stream["rejected"] == bad and stream["imported"] == size - bad, stream
                rows.append((size, path.stat().st_size, stream, peer))
                print(f"{size:>8} lines ({path.stat().st_size / 2**20:6.1f} MiB, {bad} malformed): "
                      f"streaming import {stream['imported']} traces in {stream['seconds']:.1f}s "
                      f"({size / stream['seconds']:.0f} lines/s), peak {stream['peak_mib']:.0f} MiB | "
                      f"whole-file peer (parse only, no writes) peak {peer['peak_mib']:.0f} MiB | "
                      f"peer/streaming {peer['peak_mib'] / stream['peak_mib']:.2f}x", flush=True)
        finally:
            stop_pid(azurite.pid)
    if len(rows) > 1:
        (s0, _, a, pa), (s1, _, b, pb) = rows[0], rows[-1]
        print(f"growth {s0}→{s1} lines ({s1 / s0:.0f}x the file): streaming peak {b['peak_mib'] / a['peak_mib']:.2f}x, "
              f"whole-file peer peak {pb['peak_mib'] / pa['peak_mib']:.2f}x")


def sharded_import(lines: int, peer_lines: int, persist: bool, shard_count: int = 16) -> None:
    import subprocess

    from forge.storage.azurite import find_node_modules, start, stop_pid

    def run(path: Path, connection: str, shards: int, count: int) -> list[float]:
        proc = subprocess.run([sys.executable, __file__, "--chunk-child", str(path), connection, str(shards),
                               str(count)], capture_output=True, text=True, check=True)
        print(proc.stdout.rsplit("\n", 2)[0], flush=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traces.jsonl"
        make_file(path, lines)
        results = {}
        for shards, count in ((shard_count, lines), (1, min(peer_lines, lines))):
            # A fresh Azurite per arm: neither pays for the other's rows.
            azurite = start(find_node_modules(), data_dir=Path(tmp) / f"azurite{shards}" if persist else None,
                            log_path=Path(tmp) / f"azurite{shards}.log", detach=False)
            try:
                results[shards] = run(path, azurite.connection_string, shards, count)
            finally:
                stop_pid(azurite.pid)
    sharded, peer = results[shard_count], results[1]
    total = sum(sharded)
    print(f"sharded ({shard_count}): {lines:,} traces of one day in {total / 60:.1f} min (target <= 10); per 10,000: "
          f"first {sharded[0]:.1f}s, last {sharded[-1]:.1f}s, max/min {max(sharded) / min(sharded):.2f} "
          f"(flat within ±25% means <= {1.25 / 0.75:.2f})")
    both = min(len(peer), len(sharded))
    print(f"one partition per day (the layout before): first {both * 10_000:,} lines in {sum(peer):.1f}s, per "
          f"10,000: {', '.join(f'{s:.1f}s' for s in peer)}; sharded/one-partition speed over those lines "
          f"{sum(peer[:both]) / sum(sharded[:both]):.2f}x")


if __name__ == "__main__":
    main()
