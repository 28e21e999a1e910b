"""End to end at scale (issue 19): traces imported into the sharded trace table on a local Azurite, curated from
there on W workers (the shards mapped in parallel, merged in time order, reduced), stored as a dataset version.

Prints, per phase (import; curation: the shards mapped by the workers, the reduce and the stored dataset here), wall
seconds, this process's CPU and its workers' CPU, Azurite's CPU (the Node process serving every read and write: what
bounds the phases that wait on storage), and the peak RSS of this process.

    .venv/bin/python bench/scale_bench.py [--traces 100000] [--workers 2]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from curate_bench import make_file  # noqa: E402


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Phase:
    def __init__(self, name: str, azurite_pid: int):
        self.name, self.azurite_pid = name, azurite_pid

    def __enter__(self) -> "Phase":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        self.children = self._children()
        self.azurite = cpu_of(self.azurite_pid)
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.wall
        cpu, children = time.process_time() - self.cpu, self._children() - self.children
        azurite = cpu_of(self.azurite_pid) - self.azurite
        print(f"  {self.name:<10} {wall:>8.1f} s wall  {cpu:>8.1f} CPU s here  {children:>8.1f} CPU s in workers  "
              f"{azurite:>8.1f} CPU s in Azurite", flush=True)

    @staticmethod
    def _children() -> float:
        """CPU of reaped children, plus the forkserver's and the workers it has reaped (curation's pool forks its
        workers from there, not from here)."""
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = usage.ru_utime + usage.ru_stime
        from multiprocessing import forkserver

        pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
        if pid and Path(f"/proc/{pid}/stat").exists():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from forge.bootstrap import bootstrap
    from forge.config import load_settings
    from forge.domain_templates import load_domains
    from forge.services.curation import CurateRequest, curate
    from forge.services.traces import import_jsonl
    from forge.storage import Storage, StorageAccount
    from forge.storage.azurite import find_node_modules, start, stop_pid

    with tempfile.TemporaryDirectory(prefix="forge-scale-bench-") as tmp:
        path = Path(tmp) / "traces.jsonl"
        make_file(path, args.traces)
        azurite = start(find_node_modules(), data_dir=None, log_path=Path(tmp) / "azurite.log", detach=False)
        try:
            settings = load_settings(storage_connection=azurite.connection_string, home=Path(tmp) / "home")
            storage = Storage.open(StorageAccount.from_connection_string(azurite.connection_string),
                                   trace_shards=settings.trace_shards)
            forge = bootstrap(settings, storage=storage)
            tenant = f"scale{os.getpid()}"
            print(f"{args.traces:,} traces ({path.stat().st_size / 1e6:,.0f} MB), {settings.trace_shards} shards, "
                  f"{args.workers} workers, Azurite in memory; this machine's cores are shared, so compare CPU "
                  "seconds, not wall seconds:", flush=True)
            started = time.perf_counter()
            with Phase("import", azurite.pid):
                with open(path, "rb") as stream:
                    summary = import_jsonl(storage, io.BufferedReader(stream), tenant=tenant, domain="coding",
                                           known_domains=load_domains(), on_reject=lambda r: None)
            with Phase("curate", azurite.pid):
                result = curate(forge, CurateRequest(tenant=tenant, domain="coding", workers=args.workers))
            total = time.perf_counter() - started
            print(f"  imported {summary.imported:,}, dataset {result.dataset_id} v{result.version}: {result.train:,} "
                  f"train, {result.valid:,} valid, {sum(result.dropped.values()):,} dropped", flush=True)
            print(f"  end to end {total:,.0f} s wall; peak RSS of this process (import, reduce) "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)
        finally:
            stop_pid(azurite.pid)


if __name__ == "__main__":
    main()
