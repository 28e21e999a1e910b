"""Builders for test records: valid by default, each field overridable."""

from __future__ import annotations

import itertools
import json
import os
from datetime import datetime, timezone
from typing import Any

from forge.domain.models import DistillationJob, Trace
from forge.domain.traces import new_trace_id

_counter = itertools.count()


def unique_name(prefix: str) -> str:
    """A tenant or domain name no other test in this session uses."""
    return f"{prefix}{os.getpid()}-{next(_counter)}"


def chat_record(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You write Python."},
            {"role": "user", "content": f"Write a function that returns {i} squared."},
            {"role": "assistant", "content": f"```python\ndef f():\n    return {i} ** 2\n```"},
        ],
        **extra,
    }


def chat_line(i: int = 0, **extra: Any) -> str:
    return json.dumps(chat_record(i, **extra))


def make_trace(tenant: str, domain: str = "coding", *, created_at: datetime | None = None, **fields: Any) -> Trace:
    created_at = created_at or datetime.now(timezone.utc)
    values: dict[str, Any] = {
        "id": new_trace_id(domain, created_at),
        "tenant": tenant,
        "domain": domain,
        "created_at": created_at,
        "messages": [{"role": "user", "content": "What is 2 + 2?"}],
        "response": {"role": "assistant", "content": "4"},
    }
    values.update(fields)
    return Trace(**values)


def make_job(tenant: str, domain: str = "coding", **fields: Any) -> DistillationJob:
    return DistillationJob(tenant=tenant, domain=domain, **fields)
