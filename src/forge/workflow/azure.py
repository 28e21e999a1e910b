"""The Durable Functions side of the one pipeline: the orchestrator function `function_app.py` registers."""

from __future__ import annotations

from typing import Any, Generator

from forge.workflow import orchestrator
from forge.workflow.flow import DurableFunctionsFlow


def df_orchestrator(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    """`distill` driven by a `DurableOrchestrationContext`; replayed by the Functions host from its history."""
    return (yield from orchestrator.distill(DurableFunctionsFlow(context), context.get_input()))
