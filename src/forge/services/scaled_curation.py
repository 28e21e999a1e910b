"""Curation scaled out (issue 19): the map phase over file chunks or trace shards, the reduce phase over their frames.

Locally, `build_parallel` maps on a process pool (`--workers`, `FORGE_CURATE_WORKERS`). In Azure, with
`FORGE_CURATE_FANOUT` set, `distill` runs one `curate_shard` activity per trace shard (`map_shard`: its frames go to
Blob as one part, written whole) and then `curate` again with the parts (`reduce_parts`): a shard that fails is
retried alone by the engine and its part is replaced, never appended to.
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from forge import tokens
from forge.bootstrap import connect
from forge.config import Settings
from forge.curation import parallel
from forge.curation.curator import CurationOptions, CurationOutcome, reduce_frames
from forge.curation.frames import Frame, empty, merge, read_frames, ulid_key
from forge.curation.sources import Incoming
from forge.domain.domains import DomainConfig
from forge.storage import Storage
from forge.services.pricing import grader_for

PARTS = "curation-parts"  # Blob container of the map phase's parts: {tenant}/{job}/{shard}.frames


def worker_tools(settings: Settings, domain: DomainConfig, model: str, tenant: str, store_scores: bool) -> parallel.Tools:
    """What a map worker builds once: the token counter, and the grader (with where its scores are stored)."""
    count = tokens.counter_for_model(model, home=settings.home, node_modules=settings.node_modules)
    grader = grader_for(settings, domain)
    if grader is None:
        return count, None, None
    on_graded = None
    if store_scores:
        storage = _storage(settings)
        on_graded = lambda trace, score: storage.traces.set_score(tenant, trace.id, score)  # noqa: E731
    return count, grader.grade, on_graded


@functools.lru_cache(maxsize=4)
def _storage(settings: Settings) -> Storage:
    account, _ = connect(settings)
    return Storage.open(account, trace_shards=settings.trace_shards)


@dataclass(frozen=True)
class StoredShard:
    """One shard of a domain's traces in Table storage (None: rows not yet migrated), within [since, until)."""

    settings: Settings
    tenant: str
    domain: str
    shard: int | None
    since: datetime | None = None
    until: datetime | None = None

    def items(self) -> Iterator[Incoming]:
        for trace in _storage(self.settings).traces.scan_shard(self.tenant, self.domain, self.shard,
                                                               since=self.since, until=self.until):
            yield Incoming(None, trace)

    def _ids(self) -> list[tuple[str, datetime]]:
        return [(t.id, t.created_at) for t in _storage(self.settings).traces.scan_shard(
            self.tenant, self.domain, self.shard, since=self.since, until=self.until)]

    def split(self) -> list[parallel.Unit]:
        """Halves by time (traces of one millisecond stay together)."""
        ids = self._ids()
        if len(ids) < 2 or ids[0][1] == ids[-1][1]:
            return []
        middle = ids[len(ids) // 2][1]
        if middle == ids[0][1]:
            middle = next(moment for _, moment in ids if moment > ids[0][1])
        return [StoredShard(self.settings, self.tenant, self.domain, self.shard, self.since, middle),
                StoredShard(self.settings, self.tenant, self.domain, self.shard, middle, self.until)]

    def crashed(self) -> Frame:
        """Every trace of this millisecond of the shard (the smallest unit it splits into) as a reject."""
        rejects = [(ulid_key(trace_id), {"id": trace_id}) for trace_id, _ in self._ids()]
        return parallel.reject_frame(*rejects[0], *rejects[1:]) if rejects else Frame(*empty())


def shard_units(settings: Settings, tenant: str, domain: str, since: datetime | None,
                until: datetime | None) -> list[StoredShard]:
    """Every shard of a domain, and the unmigrated rows as one more."""
    shards: list[int | None] = [*range(settings.trace_shards), None]
    return [StoredShard(settings, tenant, domain, shard, since, until) for shard in shards]


def _job(settings: Settings, options: CurationOptions, tenant: str, store_scores: bool, keys: str,
         cutoff: datetime | None) -> parallel.MapJob:
    tools = functools.partial(worker_tools, settings, options.domain, options.model, tenant, store_scores)
    return parallel.MapJob(options, tools, keys, cutoff)


def build_parallel(settings: Settings, options: CurationOptions, work: Path, *, tenant: str, domain: str,
                   source_file: str | None, since: datetime | None, until: datetime | None,
                   cutoff: datetime | None, workers: int) -> CurationOutcome:
    """The whole build on `workers` processes: a file in chunks, or the trace table shard by shard."""
    with tempfile.TemporaryDirectory(prefix="forge-curate-parts-") as scratch:
        if source_file:
            units: list[Any] = parallel.plan_file(source_file, parallel.chunks_for(source_file, workers),
                                                  tenant=tenant, domain=domain, since=since, until=until)
            job = _job(settings, options, tenant, False, "line", cutoff)
            outcome = parallel.curate_units(job, units, work, Path(scratch), workers=workers, ordered=True)
        else:
            units = shard_units(settings, tenant, domain, cutoff or since, until)
            job = _job(settings, options, tenant, True, "ulid", cutoff)
            outcome = parallel.curate_units(job, units, work, Path(scratch), workers=workers, ordered=False)
    write_stats(work, outcome, options)
    return outcome


def write_stats(work: Path, outcome: CurationOutcome, options: CurationOptions) -> None:
    (work / "stats.json").write_text(json.dumps(outcome.stats_json(options), indent=2), encoding="utf-8")


def part_name(tenant: str, job_id: str, shard: int | None) -> str:
    return f"{tenant}/{job_id}/{'legacy' if shard is None else f'{shard:02d}'}.frames"


def map_shard(settings: Settings, storage: Storage, options: CurationOptions, *, tenant: str, domain: str,
              job_id: str, shard: int | None, since: datetime | None, until: datetime | None,
              cutoff: datetime | None) -> str:
    """Map one shard into a part in Blob (uploaded whole, so a retry replaces it); returns the part's name."""
    name = part_name(tenant, job_id, shard)
    container = _container(storage)
    if container.get_blob_client(name).exists():
        return name  # mapped by an earlier attempt: the part is complete (a blob upload is all or nothing)
    unit = StoredShard(settings, tenant, domain, shard, since, until)
    job = _job(settings, options, tenant, True, "ulid", cutoff)
    with tempfile.TemporaryDirectory(prefix="forge-curate-shard-") as scratch:
        spool = Path(scratch) / "part.frames"
        parallel.map_unit(job, unit, spool, job.tools())
        with open(spool, "rb") as data:
            container.upload_blob(name, data, overwrite=True)
    return name


def reduce_parts(storage: Storage, options: CurationOptions, parts: list[str], work: Path) -> CurationOutcome:
    """The reduce over the parts the shard activities stored, merged in time order; the parts are then deleted."""
    container = storage.account.blobs.get_container_client(PARTS)
    with tempfile.TemporaryDirectory(prefix="forge-curate-reduce-") as scratch:
        local = []
        for i, name in enumerate(parts):
            path = Path(scratch) / f"{i:03d}.frames"
            with open(path, "wb") as out:
                container.download_blob(name).readinto(out)
            local.append(path)
        streams = [_read(path) for path in local]
        outcome = reduce_frames(options, merge(streams), work)
    write_stats(work, outcome, options)
    return outcome


def delete_parts(storage: Storage, parts: list[str]) -> None:
    """Remove a job's parts once its dataset is stored (a retried reduce still finds them until then)."""
    container = storage.account.blobs.get_container_client(PARTS)
    for name in parts:
        try:
            container.delete_blob(name, delete_snapshots="include")
        except ResourceNotFoundError:
            pass


def _read(path: Path) -> Iterator[Frame]:
    with open(path, "rb") as stream:
        yield from read_frames(stream)


def _container(storage: Storage) -> Any:
    container = storage.account.blobs.get_container_client(PARTS)
    try:
        container.create_container()
    except ResourceExistsError:
        pass
    return container
