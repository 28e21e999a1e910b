"""The Durable Functions side of the one pipeline: the orchestrator function `function_app.py` registers."""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Generator, Iterator

from forge.services.runs import EngineUnavailable
from forge.workflow import canary_loop, orchestrator
from forge.workflow.flow import DurableFunctionsFlow


def df_orchestrator(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    """`distill` driven by a `DurableOrchestrationContext`; replayed by the Functions host from its history."""
    return (yield from orchestrator.distill(DurableFunctionsFlow(context), context.get_input()))


def df_canary_loop(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    """A domain's eternal canary control loop driven by Durable Functions (continue-as-new each window)."""
    return (yield from canary_loop.loop(DurableFunctionsFlow(context), context.get_input()))


# The Functions host hands each invocation its own durable client; the ASGI app reads it from here.
current_client: contextvars.ContextVar[Any] = contextvars.ContextVar("forge_durable_client", default=None)


@contextmanager
def using_client(client: Any) -> Iterator[None]:
    """`client` is the durable client of the code run inside the block (one HTTP invocation's app)."""
    token = current_client.set(client)
    try:
        yield
    finally:
        current_client.reset(token)


# Durable Functions' runtime statuses → the few states `services.reconcile` tells apart.
STATES = {"Running": "running", "Pending": "running", "ContinuedAsNew": "running", "Suspended": "running",
          "Completed": "completed", "Failed": "failed", "Canceled": "terminated", "Terminated": "terminated"}


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
        started = await self.client.start_new(orchestrator.NAME, instance_id=job_input["job_id"],
                                              client_input=job_input)
        if not started:  # the SDK answers None when the extension's HTTP API did not accept the start
            raise EngineUnavailable(f"Durable Functions did not start job {job_input['job_id']}; the reconciler "
                                    "retries it within minutes, or trigger it again.")
        return True

    async def ensure_loop(self, loop_input: dict[str, str]) -> bool:
        """Start a domain's canary control loop unless it runs (or is between two windows) already."""
        instance = canary_loop.instance_id(loop_input["tenant"], loop_input["domain"])
        if await self.state(instance) == "running":
            return False
        await self.client.start_new(canary_loop.NAME, instance_id=instance, client_input=loop_input)
        return True

    async def state(self, instance_id: str) -> str | None:
        """running, completed, failed or terminated; None when there is no such instance."""
        status = await self.client.get_status(instance_id)
        runtime = getattr(status, "runtime_status", None)
        if runtime is None:
            return None
        return STATES.get(getattr(runtime, "value", str(runtime)), "running")

    async def terminate(self, instance_id: str, reason: str) -> None:
        await self.client.terminate(instance_id, reason)

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> bool:
        try:
            await self.client.raise_event(instance_id, name, data)
        except Exception as exc:  # the SDK raises a bare Exception for 404 (no instance) and 410 (gone)
            if "No instance" in str(exc) or "is gone" in str(exc):
                return False
            raise
        return True
