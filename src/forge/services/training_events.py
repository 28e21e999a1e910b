"""Which Forge job a provider's training event is about."""

from __future__ import annotations

from typing import Any

from forge.providers.training import JOB_TAG, TENANT_TAG


def job_for_azureml_event(data: Any) -> str | None:
    """The job id an Azure ML `RunStatusChanged` event carries in its run tags (set when Forge submits the run)."""
    return _run_tag(data, JOB_TAG)


def tenant_for_azureml_event(data: Any) -> str | None:
    """The tenant of that job, from the same run tags (jobs are stored per tenant)."""
    return _run_tag(data, TENANT_TAG)


def _run_tag(data: Any, name: str) -> str | None:
    if not isinstance(data, dict):
        return None
    tags = data.get("runTags") or {}
    value = tags.get(name) if isinstance(tags, dict) else None
    return value if isinstance(value, str) and value else None
