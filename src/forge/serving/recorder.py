"""Records router calls as traces: each call is handed to the capture queue before the call ends.

`record` puts one message on the durable queue (a thread does the blocking send, so the event loop never waits on
storage) and returns once the queue has it: that is the moment the trace is acknowledged, and from then on a
recycled instance cannot lose it. The wait is bounded: past `WAIT_S`, or while the queue is unreachable, the
message stays in this process's memory and a background task keeps sending it (bounded by
FORGE_ROUTER_TRACE_QUEUE; past that, calls go on and their traces are counted as dropped). Recording never fails
a call. The drainer (services/capture.py) writes the traces; their ids are minted when the call began, so a
message sent twice (a slow send that also went to the retry buffer) is still one trace.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from forge.config import Settings
from forge.domain.capture import encode
from forge.domain.models import utcnow
from forge.storage import Storage
from forge.storage.capture import CaptureCounts, CaptureQueue

WAIT_S = 1.0  # the longest a call waits for the queue before its trace is left to the background sender
RETRY_EVERY_S = 1.0
COUNTS_EVERY_S = 10.0
SENDERS = 8  # concurrent sends: one blocking HTTP request each
log = logging.getLogger("forge.serving")


@dataclass
class CallRecord:
    """What a call leaves behind, as the captured-call message (domain/capture.py CapturedCall) carries it."""

    trace_id: str
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

    def payload(self) -> bytes:
        return encode({**self.__dict__, "created_at": self.created_at.isoformat()})


@dataclass
class RecorderStats:
    captured: int = 0  # acknowledged by the queue while the call waited
    deferred: int = 0  # held in memory (queue slow or unreachable) and sent later by the background task
    dropped: int = 0  # the memory buffer was full, or the call could not be encoded
    waiting: int = 0  # held in memory now


class TraceRecorder:
    def __init__(self, storage: Storage, settings: Settings):
        self._storage = storage
        self._enabled = settings.router_capture
        self._capacity = settings.router_trace_queue
        self._queue: CaptureQueue | None = None
        self._pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="forge-capture")
        self._held: deque[tuple[str, bytes, str]] = deque()
        self._counts: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._resending = threading.Lock()  # one resender at a time, or the head of the buffer goes twice
        self.stats = RecorderStats()

    async def record(self, call: CallRecord) -> None:
        """Hand the call to the capture queue; returns when the queue has it, or after WAIT_S. Never raises."""
        if not self._enabled:
            return
        try:
            payload = call.payload()
        except Exception as exc:  # recording must never break a call
            self.stats.dropped += 1
            log.warning("could not encode a router trace (%s)", type(exc).__name__)
            return
        self._ensure_task()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(WAIT_S):
                await loop.run_in_executor(self._pool, self._send, payload, call.trace_id)
        except Exception as exc:
            self._hold(call.tenant, payload, call.trace_id, exc)
            return
        self.stats.captured += 1
        self._counts[call.tenant] += 1

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Send what is held in memory now (and the counts); what still fails stays held."""
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.run_in_executor(self._pool, self._resend), timeout_s)
        await asyncio.wait_for(loop.run_in_executor(self._pool, self._flush_counts), timeout_s)

    async def aclose(self, timeout_s: float = 10.0) -> None:
        if self._task is not None:
            self._task.cancel()
        try:
            await self.flush(timeout_s)
        except Exception as exc:
            log.warning("%d router traces could not be captured before closing (%s)", len(self._held),
                        type(exc).__name__)
        self._pool.shutdown(wait=False)

    def _send(self, payload: bytes, name: str) -> None:
        if self._queue is None:
            self._queue = CaptureQueue(self._storage.account, fast=True)
        self._queue.send(payload, name)

    def _hold(self, tenant: str, payload: bytes, name: str, exc: BaseException) -> None:
        if len(self._held) >= self._capacity:
            self.stats.dropped += 1
            if self.stats.dropped % 1000 == 1:
                log.warning("capture queue unreachable and memory buffer full: %d router traces dropped so far",
                            self.stats.dropped)
            return
        self._held.append((tenant, payload, name))
        self.stats.deferred += 1
        self.stats.waiting = len(self._held)
        if self.stats.deferred % 1000 == 1:
            # The type only: storage errors can carry URLs with SAS tokens, and traces carry user text.
            log.warning("capture queue slow or unreachable (%s): router traces held in memory",
                        type(exc).__name__ if not isinstance(exc, TimeoutError) else "timeout")

    def _resend(self) -> None:
        with self._resending:
            while self._held:
                tenant, payload, name = self._held[0]
                self._send(payload, name)  # raises while the queue is still unreachable: the rest stay held
                self._held.popleft()
                self._counts[tenant] += 1
                self.stats.waiting = len(self._held)

    def _flush_counts(self) -> None:
        counts, self._counts = self._counts, Counter()
        counter = CaptureCounts(self._storage.account)
        day = utcnow()
        for tenant, n in counts.items():
            try:
                counter.add(tenant, day, captured=n)
            except Exception:
                self._counts[tenant] += n  # counted on the next flush

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._maintain())

    async def _maintain(self) -> None:
        loop, since_counts = asyncio.get_running_loop(), 0.0
        while True:
            await asyncio.sleep(RETRY_EVERY_S)
            since_counts += RETRY_EVERY_S
            try:
                if self._held:
                    await loop.run_in_executor(self._pool, self._resend)
                if since_counts >= COUNTS_EVERY_S and self._counts:
                    since_counts = 0.0
                    await loop.run_in_executor(self._pool, self._flush_counts)
            except Exception:
                continue  # still unreachable: the next beat tries again
