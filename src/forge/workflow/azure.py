"""The Durable Functions side of the one pipeline: the orchestrator function `function_app.py` registers."""

from __future__ import annotations

import contextvars
from typing import Any, Generator

from forge.workflow import orchestrator
from forge.workflow.flow import DurableFunctionsFlow


def df_orchestrator(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    """`distill` driven by a `DurableOrchestrationContext`; replayed by the Functions host from its history."""
    return (yield from orchestrator.distill(DurableFunctionsFlow(context), context.get_input()))


# The Functions host hands each invocation its own durable client; the ASGI app reads it from here.
current_client: contextvars.ContextVar[Any] = contextvars.ContextVar("forge_durable_client", default=None)


class DurableFunctionsOrchestrations:
    """`services.runs.Orchestrations` over Durable Functions' client (this invocation's, or the one given)."""

    def __init__(self, client: Any = None):
        self._client = client

    @property
    def client(self) -> Any:
        client = self._client or current_client.get()
        if client is None:
            raise RuntimeError("no durable client in this invocation")
        return client

    async def start(self, job_input: dict[str, Any]) -> bool:
        existing = await self.client.get_status(job_input["job_id"])
        if existing is not None and getattr(existing, "runtime_status", None) is not None:
            return False  # start_new would silently replace a live instance: never do that
        await self.client.start_new(orchestrator.NAME, instance_id=job_input["job_id"], client_input=job_input)
        return True

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> bool:
        try:
            await self.client.raise_event(instance_id, name, data)
        except Exception as exc:  # the SDK raises a bare Exception for 404 (no instance) and 410 (gone)
            if "No instance" in str(exc) or "is gone" in str(exc):
                return False
            raise
        return True
