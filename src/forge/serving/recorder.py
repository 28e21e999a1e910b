"""Records router calls as traces: each call is handed to the capture queue before the call ends.

`record` puts one message on the durable queue and returns once the queue has it: from then on a recycled
instance cannot lose it. The put is one async REST request on this recorder's own keep-alive connections
(storage/queue_put.py), not the Azure SDK's blocking send in a thread: a fraction of the CPU, and no thread
contending with the event loop. Calls too large for a message (a blob first) and credentials the REST put does not
sign for still go through the SDK in a thread. The wait is bounded: past `WAIT_S`, or while the queue is unreachable, the
message stays in this process's memory and a background task keeps sending it (bounded by
FORGE_ROUTER_TRACE_QUEUE; past that, calls go on and their traces are counted as dropped). Recording never fails
a call. The drainer (services/capture.py) writes the traces; their ids are minted when the call began, so a
message sent twice (a slow send that also went to the retry buffer) is still one trace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import httpx

from forge.config import Settings
from forge.domain.capture import MAX_MESSAGE_CHARS, encode, to_text
from forge.domain.models import utcnow
from forge.serving.transport import PooledTransport
from forge.storage import Storage
from forge.storage.capture import QUEUE, CaptureCounts, CaptureQueue
from forge.storage.queue_put import MessagePut, QueueRefused

WAIT_S = 1.0  # the longest a call waits for the queue before its trace is left to the background sender
RETRY_EVERY_S = 1.0
COUNTS_EVERY_S = 10.0
SENDERS = 4  # threads for what still blocks: blob uploads of large calls, the counts, the SDK fallback
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
    # Milliseconds from the answer to the queue's 201, for recent captures: how long an answered call was not yet
    # durable (bench/router_bench.py prints it).
    window_ms: deque[float] = field(default_factory=lambda: deque(maxlen=4096))


class TraceRecorder:
    def __init__(self, storage: Storage, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self._storage = storage
        self._enabled = settings.router_capture
        self._capacity = settings.router_trace_queue
        self._queue: CaptureQueue | None = None  # the SDK client: creates the queue, uploads blobs
        self._put: MessagePut | None = None  # the lean put; None where only the SDK can sign
        self._own_transport = transport is None
        self._transport = transport or PooledTransport(max_idle=64)
        self._pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="forge-capture")
        self._held: deque[tuple[str, bytes, str]] = deque()
        self._counts: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._opening = asyncio.Lock()
        self._resending = asyncio.Lock()  # one resender at a time, or the head of the buffer goes twice
        self.stats = RecorderStats()

    async def record(self, call: CallRecord) -> None:
        """Hand the call to the capture queue; returns when the queue has it, or after WAIT_S. Never raises."""
        if not self._enabled:
            return
        started = time.perf_counter()
        try:
            payload = call.payload()
        except Exception as exc:  # recording must never break a call
            self.stats.dropped += 1
            log.warning("could not encode a router trace (%s)", type(exc).__name__)
            return
        self._ensure_task()
        try:
            async with asyncio.timeout(WAIT_S):
                await self._send(payload, call.trace_id)
        except Exception as exc:
            self._hold(call.tenant, payload, call.trace_id, exc)
            return
        self.stats.window_ms.append((time.perf_counter() - started) * 1000)
        self.stats.captured += 1
        self._counts[call.tenant] += 1

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Send what is held in memory now (and the counts); what still fails stays held."""
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(self._resend(), timeout_s)
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
        if self._own_transport:
            await self._transport.aclose()

    async def _send(self, payload: bytes, name: str) -> None:
        queue, loop = self._queue or await self._open(), asyncio.get_running_loop()
        text = to_text(payload)
        if self._put is None or len(text) > MAX_MESSAGE_CHARS:  # the SDK: a blob first, or a credential it signs
            await loop.run_in_executor(self._pool, queue.send, payload, name)
            return
        try:
            await self._put.send(self._transport, text)
        except QueueRefused as exc:
            if not exc.queue_missing:
                raise
            await loop.run_in_executor(self._pool, queue.create)  # deleted since (an emulator restarted in memory)
            await self._put.send(self._transport, text)

    async def _open(self) -> CaptureQueue:
        """The queue made sure of (once, in a thread), and the put for its account; nothing kept if it fails."""
        async with self._opening:
            if self._queue is None:
                account = self._storage.account
                queue = await asyncio.get_running_loop().run_in_executor(
                    self._pool, partial(CaptureQueue, account, fast=True))
                self._put = MessagePut.for_account(account, QUEUE)
                self._queue = queue
        return self._queue

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

    async def _resend(self) -> None:
        async with self._resending:
            while self._held:
                tenant, payload, name = self._held[0]
                await self._send(payload, name)  # raises while the queue is still unreachable: the rest stay held
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
                    await self._resend()
                if since_counts >= COUNTS_EVERY_S and self._counts:
                    since_counts = 0.0
                    await loop.run_in_executor(self._pool, self._flush_counts)
            except Exception:
                continue  # still unreachable: the next beat tries again
