"""A dataset file checked before it is stored (each problem by line, nothing kept), and a stored dataset's rejects."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import IO, Any

from forge import tokens
from forge.bootstrap import Forge
from forge.domain.dataset_stats import MIN_EXAMPLES, too_few_message
from forge.domain.errors import DatasetNotFound, InvalidInput
from forge.domain.job_settings import shown_models
from forge.curation import sources as trace_sources
from forge.curation.curator import Curator, CurationOptions
from forge.services.datasets import UPLOAD_FORMATS, get
from forge.services.domains import domain_for
from forge.services.pricing import price_table

MAX_REJECTS = 1000  # lines listed; the counts by reason cover every line


def check_upload(forge: Forge, tenant: str, domain: str, data: IO[bytes], fmt: str, *,
                 valid_share: float = 0.1, seed: int = 42) -> dict[str, Any]:
    """What uploading this file would keep and drop (each dropped line with its reason), without storing it."""
    if fmt not in UPLOAD_FORMATS:
        raise InvalidInput(f"Unknown format '{fmt}'; upload one of {', '.join(UPLOAD_FORMATS)}.")
    settings = forge.settings
    # The same options an upload is curated with (services.datasets.upload), without a grader: uploads need none.
    options = CurationOptions(domain=domain_for(forge, tenant, domain), model=settings.student_base_model,
                              min_score=settings.min_score,
                      valid_share=valid_share, seed=seed, require_golden=False, prices=price_table(settings))
    count = tokens.counter_for_model(options.model, home=settings.home, node_modules=settings.node_modules)
    with tempfile.TemporaryDirectory(prefix="forge-check-") as scratch:
        outcome = Curator(options, Path(scratch), count=count).run(
            trace_sources.parse_upload(data, fmt, tenant=tenant, domain=domain))
        rejects = _first_lines(Path(scratch) / "rejects.jsonl", MAX_REJECTS)
    stats = outcome.stats
    problem = None if stats.train >= MIN_EXAMPLES else too_few_message(stats.train)
    return {"domain": domain, "format": fmt, "counts": stats.counts(), "dropped": dict(stats.dropped),
            "pii": dict(stats.pii), "warnings": stats.warnings, "train": stats.train, "valid": stats.valid,
            "estimate": shown_models(outcome.estimate.model_dump(mode="json")), "rejects": rejects,
            "rejectsShown": len(rejects), "uploadable": problem is None, "problem": problem}


def stored_rejects(forge: Forge, tenant: str, dataset_id: str, *, limit: int = 200) -> dict[str, Any]:
    """The first `limit` examples a stored dataset dropped, each with its reason (and its line, for a file)."""
    dataset = get(forge, tenant, dataset_id)
    items: list[dict[str, Any]] = []
    try:
        for record in forge.storage.datasets.read_file(tenant, dataset_id, "rejects"):
            items.append(record)
            if len(items) >= limit:
                break
    except DatasetNotFound:  # registered without files (by a test or an older Forge): nothing to list
        pass
    return {"datasetId": dataset.dataset_id, "dropped": dataset.dropped, "items": items}


def _first_lines(path: Path, limit: int) -> list[dict[str, Any]]:
    found = []
    with open(path, "rb") as lines:
        for line in lines:
            if len(found) >= limit:
                break
            found.append(json.loads(line))
    return found
