"""curate_shard: the map phase of one shard of a job's traces, when `curate` fans out (FORGE_CURATE_FANOUT); its
frames go to Blob as one part, which the second `curate` call reduces with the others."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from forge.bootstrap import Forge
from forge.domain.models import utcnow
from forge.services.curation import curate_shard
from forge.services.jobs import update_job
from forge.stages.curate import Request as CurateStageRequest, request_for

NAME = "curate_shard"


class Request(CurateStageRequest):
    shard: int | None = None  # None: the rows `forge storage migrate` has not moved yet
    cutoff: datetime | None = None  # a capped build's oldest time (from the plan), else None


def run(forge: Forge, request: Request) -> dict[str, Any]:
    job = forge.storage.jobs.get(request.tenant, request.job_id)
    part = curate_shard(forge, request_for(job, request), request.shard, request.cutoff)
    # Progress on the job: the reconciler counts a curation that maps shard after shard as working, not stuck.
    update_job(forge, request.tenant, request.job_id, lambda job: setattr(job, "updated_at", utcnow()))
    return {"part": part}
