"""Records router calls as traces in the background: a bounded queue drained in batches by one task.

A call only puts a small record on the queue (never waits); when the queue is full the record is dropped and
counted. The store is written from a worker thread, so a slow or broken store never fails or slows a call.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

from forge.domain.models import Trace
from forge.domain.traces import new_trace_id

BATCH = 500
log = logging.getLogger("forge.serving")


@dataclass
class CallRecord:
    """What a call leaves behind; turned into a Trace off the request path."""

    tenant: str
    domain: str
    created_at: datetime
    model: str
    request: dict[str, Any]
    response: dict[str, Any]
    usage: dict[str, Any] | None
    latency_ms: float
    metadata: dict[str, Any] = field(default_factory=dict)
    user: str | None = None
    conversation_id: str | None = None

    def trace(self) -> Trace:
        usage = self.usage or {}
        return Trace(
            id=new_trace_id(self.domain, self.created_at), tenant=self.tenant, domain=self.domain,
            created_at=self.created_at, model=self.model, messages=self.request.get("messages") or [],
            response=self.response, tools=self.request.get("tools"), prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"), latency_ms=round(self.latency_ms, 3), source="router",
            user=self.user, conversation_id=self.conversation_id, metadata=self.metadata,
        )


@dataclass
class RecorderStats:
    recorded: int = 0
    dropped: int = 0  # the queue was full
    failed: int = 0  # the store refused or could not be reached


class TraceRecorder:
    def __init__(self, sink: Callable[[Iterable[Trace]], Any], capacity: int = 10_000):
        self._sink = sink
        self._capacity = capacity
        self._queue: asyncio.Queue[CallRecord] | None = None
        self._task: asyncio.Task[None] | None = None
        self.stats = RecorderStats()

    def record(self, call: CallRecord) -> None:
        """Queue a call for recording; never blocks and never raises."""
        try:
            if self._queue is None:
                self._queue = asyncio.Queue(self._capacity)
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._drain(self._queue))
            self._queue.put_nowait(call)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            if self.stats.dropped % 1000 == 1:
                log.warning("trace queue full: %d router traces dropped so far", self.stats.dropped)
        except Exception as exc:  # recording must never break a call
            self.stats.dropped += 1
            log.warning("could not queue a router trace (%s)", type(exc).__name__)

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until everything queued so far has been written (or has failed)."""
        if self._queue is not None:
            await asyncio.wait_for(self._queue.join(), timeout_s)

    async def aclose(self, timeout_s: float = 10.0) -> None:
        try:
            await self.flush(timeout_s)
        except (asyncio.TimeoutError, RuntimeError):
            pass
        if self._task is not None:
            self._task.cancel()

    def _write(self, batch: list[CallRecord]) -> None:
        # Building the traces here, in the worker thread, keeps their validation off the event loop.
        self._sink([call.trace() for call in batch])

    async def _drain(self, queue: asyncio.Queue[CallRecord]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await asyncio.to_thread(self._write, batch)
                self.stats.recorded += len(batch)
            except Exception as exc:
                self.stats.failed += len(batch)
                # The type only: storage errors can carry URLs with SAS tokens, and traces carry user text.
                log.warning("%d router traces could not be recorded (%s)", len(batch), type(exc).__name__)
            finally:
                for _ in batch:
                    queue.task_done()
