"""Curation over several cores: the map phase in worker processes, one unit (a file chunk, a storage shard) at a
time, each spooling its frames to a local file; the reduce phase here, over those frames in order.

A unit whose worker raises is retried alone (its spool is rewritten from the start, so nothing is doubled). A unit
whose worker *dies* (a crash, the OOM killer) is run again alone; if it dies again it is split in two and each half
run alone, down to the one line that kills it, which becomes the reject `unprocessable`. So a poisoned line costs
its own line, never the build.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import numpy as np

from forge.curation.curator import CurationOptions, CurationOutcome, Mapper, encode, reduce_frames
from forge.curation.frames import Frame, merge, read_frames
from forge.curation.sources import Incoming, file_range

Tools = tuple[Callable[[str], int], Any, Any]  # count(text), grade(traces) or None, on_graded(trace, score) or None
ATTEMPTS = 3  # a unit whose worker raises is tried this many times in all
CHUNK_BYTES = 32 << 20  # a file is mapped in chunks of about this size (more when there are many workers)


def default_workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class Unit(Protocol):
    """One piece of the map phase: it reads its traces, can split itself, and names its own reject."""

    def items(self) -> Iterator[Incoming]: ...

    def split(self) -> list["Unit"]:
        """Two or more smaller units covering the same traces, or [] when it is one trace."""
        ...

    def crashed(self) -> Frame:
        """The frame that stands for this unit (one trace) when it kills every worker that maps it."""
        ...


@dataclass(frozen=True)
class MapJob:
    """What every worker needs, sent once per worker process."""

    options: CurationOptions
    tools: Callable[[], Tools]  # picklable (a module-level function, or a partial of one)
    keys: str  # how frames are keyed: "line" for files, "ulid" for stored traces
    cutoff: datetime | None = None


@dataclass(frozen=True)
class FileChunk:
    """Lines of a JSONL file from byte `start` to `end` (both at line starts), numbered from `first_line`."""

    path: str
    start: int
    end: int
    first_line: int
    tenant: str
    domain: str
    since: datetime | None = None
    until: datetime | None = None

    def items(self) -> Iterator[Incoming]:
        return file_range(self.path, self.start, self.end, self.first_line, tenant=self.tenant, domain=self.domain,
                          since=self.since, until=self.until)

    def split(self) -> list["Unit"]:
        with open(self.path, "rb") as f:
            f.seek(self.start)
            data = f.read(self.end - self.start)
        middle = data.find(b"\n", len(data) // 2)
        if middle < 0 or middle + 1 >= len(data):
            middle = data.rfind(b"\n", 0, max(0, len(data) - 1))
            if middle < 0:
                return []
        cut = self.start + middle + 1
        lines_before = data.count(b"\n", 0, middle + 1)
        return [FileChunk(self.path, self.start, cut, self.first_line, self.tenant, self.domain, self.since,
                          self.until),
                FileChunk(self.path, cut, self.end, self.first_line + lines_before, self.tenant, self.domain,
                          self.since, self.until)]

    def crashed(self) -> Frame:
        return reject_frame((0, self.first_line), {"line": self.first_line})


def reject_frame(key: tuple[int, int], identity: dict[str, Any], *more: tuple[tuple[int, int], dict[str, Any]]) -> Frame:
    """A frame of `unprocessable` rejects: the traces of a unit that made its worker process die."""
    from forge.curation.frames import empty

    rejects = [(key, identity), *more]
    frame = Frame(*empty())
    frame.read = len(rejects)
    frame.dropped = {"unprocessable": len(rejects)}
    frame.reject_keys = np.array([k for k, _ in rejects], dtype=np.uint64).reshape(len(rejects), 2)
    frame.reject_lines = [encode({"reason": "unprocessable", "detail": "mapping this trace stopped the worker "
                                  "process; it was left out and the rest of the build went on", **who})
                          for _, who in rejects]
    return frame


def plan_file(path: str, chunks: int, *, tenant: str, domain: str, since: datetime | None = None,
              until: datetime | None = None) -> list[FileChunk]:
    """`chunks` pieces of about equal size, cut after a newline, with the number of each one's first line.

    One sequential read counting newlines (memchr speed); no line is held."""
    size = os.path.getsize(path)
    targets = [size * i // chunks for i in range(1, chunks)]
    cuts: list[tuple[int, int]] = [(0, 1)]  # (byte, first line number)
    lines = 0
    at = 0
    with open(path, "rb") as f:
        while targets:
            block = f.read(16 << 20)
            if not block:
                break
            while targets and targets[0] < at + len(block):
                found = block.find(b"\n", max(0, targets[0] - 1 - at))
                if found < 0:
                    targets[0] = at + len(block)  # the line goes on into the next block
                    break
                cut = at + found + 1
                targets.pop(0)
                if cut < size and cut > cuts[-1][0]:
                    cuts.append((cut, lines + block.count(b"\n", 0, found + 1) + 1))
                while targets and targets[0] < cut:
                    targets.pop(0)
            lines += block.count(b"\n")
            at += len(block)
    bounds = [*cuts, (size, 0)]
    return [FileChunk(path, start, end, first, tenant, domain, since, until)
            for (start, first), (end, _) in zip(bounds, bounds[1:]) if end > start]


def chunks_for(path: str, workers: int) -> int:
    """How many chunks to map a file in: at least four per worker (so a slow one does not hold the rest up)."""
    return max(4 * workers, -(-os.path.getsize(path) // CHUNK_BYTES), 1)


_job: MapJob | None = None
_tools: Tools | None = None


def _start_worker(job: MapJob) -> None:
    global _job, _tools
    _job, _tools = job, None


def map_unit(job: MapJob, unit: Unit, spool: Path, tools: Tools | None = None) -> int:
    """Map one unit into a spool file of frames (written whole, then renamed: a retry never appends)."""
    count, grade, on_graded = tools if tools is not None else job.tools()
    mapper = Mapper(job.options, count=count, grade=grade, on_graded=on_graded, keys=job.keys)
    partial = spool.with_suffix(".partial")
    written = 0
    with open(partial, "wb") as out:
        for frame in mapper.map(unit.items(), job.cutoff):
            written += frame.write(out)
    os.replace(partial, spool)
    return written


def _map_in_worker(unit: Unit, spool: str) -> int:
    global _tools
    assert _job is not None
    if _tools is None:
        _tools = _job.tools()
    return map_unit(_job, unit, Path(spool), _tools)


class _Runner:
    """Units through a process pool, their spools handed back in unit order; crashes isolated as described above."""

    def __init__(self, job: MapJob, scratch: Path, workers: int, context: str | None):
        self.job, self.scratch, self.workers = job, scratch, workers
        self.context = multiprocessing.get_context(context or _default_context())
        self.names = iter(range(1 << 62))

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=self.context, initializer=_start_worker, initargs=(self.job,))

    def _spool(self) -> Path:
        return self.scratch / f"part-{next(self.names):06d}.frames"

    def run(self, units: list[Unit]) -> Iterator[list[Path]]:
        results: dict[int, list[Path]] = {}
        queue: list[tuple[int, Unit]] = list(enumerate(units))[::-1]  # popped from the end: first unit first
        attempts: dict[int, int] = {}
        inflight: dict[Future[int], tuple[int, Unit, Path]] = {}
        following = 0
        pool = self._pool(self.workers)
        try:
            while queue or inflight:
                while queue and len(inflight) < 2 * self.workers:
                    index, unit = queue.pop()
                    spool = self._spool()
                    inflight[pool.submit(_map_in_worker, unit, str(spool))] = (index, unit, spool)
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                crashed: list[tuple[int, Unit]] = []
                for future in done:
                    index, unit, spool = inflight.pop(future)
                    try:
                        future.result()
                        results[index] = [spool]
                    except BrokenProcessPool:
                        crashed.append((index, unit))
                    except Exception:
                        attempts[index] = attempts.get(index, 0) + 1
                        if attempts[index] >= ATTEMPTS:
                            raise
                        queue.append((index, unit))  # tried again, from the start of its unit
                if crashed:  # a worker died: every unit then in flight is a suspect, and runs alone
                    pool.shutdown(wait=True, cancel_futures=True)
                    for future, (index, unit, spool) in inflight.items():
                        if future.done() and not future.cancelled() and future.exception() is None:
                            results[index] = [spool]
                        else:
                            crashed.append((index, unit))
                    inflight.clear()
                    for index, unit in sorted(crashed, key=lambda c: c[0]):
                        results[index] = self._alone(unit)
                    pool = self._pool(self.workers)
                while following in results:
                    yield results.pop(following)
                    following += 1
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _alone(self, unit: Unit) -> list[Path]:
        """Run one unit in a pool of its own; split it while it kills its worker; one trace that does → a reject."""
        for attempt in range(ATTEMPTS):
            spool = self._spool()
            pool = self._pool(1)
            try:
                pool.submit(_map_in_worker, unit, str(spool)).result()
                return [spool]
            except BrokenProcessPool:
                break
            except Exception:
                if attempt == ATTEMPTS - 1:
                    raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        parts = unit.split()
        if parts:
            return [spool for part in parts for spool in self._alone(part)]
        spool = self._spool()
        with open(spool, "wb") as out:
            unit.crashed().write(out)
        return [spool]


def _default_context() -> str:
    # forkserver: workers fork from a clean server process, never from this one, whose threads (gRPC, HTTP
    # servers, storage clients) a fork would copy mid-lock.
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _frames(spools: list[Path]) -> Iterator[Frame]:
    for spool in spools:
        with open(spool, "rb") as stream:
            yield from read_frames(stream)
        spool.unlink()


def curate_units(job: MapJob, units: list[Unit], out_dir: Path, scratch: Path, *, workers: int,
                 ordered: bool = True, context: str | None = None) -> CurationOutcome:
    """Map `units` on `workers` processes and reduce their frames into `out_dir`.

    `ordered`: the units follow one another in key order (file chunks), so each is reduced as soon as it and those
    before it are mapped; otherwise (storage shards, interleaved in time) the parts are merged by key."""
    scratch.mkdir(parents=True, exist_ok=True)
    runner = _Runner(job, scratch, max(1, workers), context)
    results = runner.run(units)
    if ordered:
        frames: Iterator[Frame] = chain.from_iterable(_frames(spools) for spools in results)
    else:
        frames = merge([_frames(spools) for spools in list(results)])
    return reduce_frames(job.options, frames, out_dir)
