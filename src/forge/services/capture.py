"""Draining the capture queue into the trace table, and what the capture path has done.

The same `handle` runs in the queue-triggered function in Azure (one message per invocation) and in `forge worker`
locally (`drain_once`, batches). A message is settled as written (deleted), poisoned (set aside with its reason,
then deleted) or left for a retry (a transient storage error: it becomes visible again); after `MAX_ATTEMPTS`
deliveries a message still failing is poisoned too. Traces are upserted under their request-derived ids, so a
redelivered message changes nothing. A batch write that the store refuses is retried one trace at a time, so one
bad trace never costs another.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from pydantic import ValidationError

from forge.bootstrap import Forge
from forge.domain.capture import InvalidCapture, blob_of, decode, parse
from forge.domain.models import Trace, utcnow
from forge.storage.capture import CaptureCounts, CaptureQueue, Incoming, PoisonedTraces

MAX_ATTEMPTS = 5  # host.json's queues.maxDequeueCount says the same for the Azure trigger
BATCH = 32  # the most messages one receive call returns
VISIBILITY_S = 60  # a message handed out is hidden this long: enough to write a batch
log = logging.getLogger("forge.services.capture")


@dataclass
class Drained:
    written: list[Incoming] = field(default_factory=list)
    poisoned: list[Incoming] = field(default_factory=list)
    retry: list[Incoming] = field(default_factory=list)

    @property
    def settled(self) -> list[Incoming]:
        return self.written + self.poisoned


def handle(forge: Forge, messages: list[Incoming], queue: CaptureQueue | None = None) -> Drained:
    """Write each message's trace; poison what can never be written; leave transient failures for a retry."""
    queue = queue or CaptureQueue(forge.storage.account)
    poison = PoisonedTraces(forge.storage.account)
    done, ready, blobs = Drained(), [], {}
    tenants: Counter[str] = Counter()
    poisoned_by: Counter[str] = Counter()
    for message in messages:
        try:
            value = decode(message.payload)
            blob = blob_of(value)
            if blob is not None:
                value = decode(queue.read_blob(blob))
                blobs[message.id] = blob
            trace = _trace(value)
        except InvalidCapture as bad:
            _poison(poison, None, message, bad.reason, done, poisoned_by)
            continue
        except (ServiceRequestError, ServiceResponseError, HttpResponseError) as exc:
            _transient(poison, None, message, exc, done, poisoned_by)
            continue
        ready.append((message, trace))
    try:
        forge.storage.traces.add(trace for _, trace in ready)
        done.written += [message for message, _ in ready]
    except (ServiceRequestError, ServiceResponseError) as exc:  # storage unreachable: all of them, later
        for message, trace in ready:
            _transient(poison, trace.tenant, message, exc, done, poisoned_by)
    except Exception:  # a transaction refused: one at a time, so only the bad one is set aside
        for message, trace in ready:
            try:
                forge.storage.traces.add([trace])
                done.written.append(message)
            except (ServiceRequestError, ServiceResponseError) as exc:
                _transient(poison, trace.tenant, message, exc, done, poisoned_by)
            except Exception as exc:
                _poison(poison, trace.tenant, message, f"the trace store refused it: {_brief(exc)}", done,
                        poisoned_by)
    for message, trace in ready:
        if message in done.written:
            tenants[trace.tenant] += 1
            if message.id in blobs:
                queue.delete_blob(blobs[message.id])
    _count(forge, tenants, poisoned_by)
    return done


def drain_once(forge: Forge, queue: CaptureQueue | None = None, batches: int = 100) -> int:
    """Drain what is waiting now (up to `batches` receives); returns the messages settled."""
    queue = queue or CaptureQueue(forge.storage.account)
    settled = 0
    for _ in range(batches):
        messages = queue.receive(BATCH, VISIBILITY_S)
        if not messages:
            break
        done = handle(forge, messages, queue)
        for message in done.settled:
            queue.delete(message)
        settled += len(done.settled)
        if done.retry and not done.settled:
            break  # storage is down: wait for the next beat rather than spin
    return settled


def drain_forever(forge: Forge, stopped: Any, idle_s: float = 0.5) -> None:
    """`forge worker`'s drainer: drain, then wait a little when the queue is empty, until `stopped` is set."""
    queue = None
    while not stopped.is_set():
        try:
            queue = queue or CaptureQueue(forge.storage.account)
            if drain_once(forge, queue):
                continue
        except Exception as exc:  # storage down: keep trying, quietly
            log.warning("draining the capture queue failed (%s); retrying", type(exc).__name__)
            time.sleep(min(5.0, idle_s * 4))
        stopped.wait(idle_s)


def status(forge: Forge, tenant: str) -> dict[str, Any]:
    """The tenant's capture counts (today and the last 30 days) and the queue's backlog."""
    counts = CaptureCounts(forge.storage.account)
    today = counts.totals(tenant, since=utcnow())
    month = counts.totals(tenant, since=utcnow() - timedelta(days=30))
    waiting, lag = CaptureQueue(forge.storage.account).backlog()
    return {"today": today, "last30Days": month, "queue": {"waiting": waiting, "lagSeconds": lag},
            "recentlyPoisoned": PoisonedTraces(forge.storage.account).recent(tenant)}


def _trace(value: dict[str, Any]) -> Trace:
    call = parse(value)
    try:
        return call.trace()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidCapture(f"not a trace: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def _poison(poison: PoisonedTraces, tenant: str | None, message: Incoming, reason: str, done: Drained,
            counts: Counter[str]) -> None:
    try:
        poison.add(tenant, message.id, reason, message.payload, message.dequeue_count)
    except Exception as exc:  # cannot even set it aside: leave it on the queue for the next try
        log.warning("could not set aside message %s (%s)", message.id, type(exc).__name__)
        done.retry.append(message)
        return
    log.warning("capture message %s poisoned: %s", message.id, reason)
    done.poisoned.append(message)
    counts[tenant or "-"] += 1


def _transient(poison: PoisonedTraces, tenant: str | None, message: Incoming, exc: Exception, done: Drained,
               counts: Counter[str]) -> None:
    if message.dequeue_count >= MAX_ATTEMPTS:
        _poison(poison, tenant, message, f"still failing after {message.dequeue_count} attempts: {_brief(exc)}",
                done, counts)
    else:
        done.retry.append(message)


def _count(forge: Forge, written: Counter[str], poisoned: Counter[str]) -> None:
    counts = CaptureCounts(forge.storage.account)
    for tenant in set(written) | set(poisoned):
        try:
            counts.add(tenant, utcnow(), written=written[tenant], poisoned=poisoned[tenant])
        except Exception as exc:  # the counts are a view; the traces are written
            log.warning("capture counts not updated (%s)", type(exc).__name__)


def _brief(exc: Exception) -> str:
    # The type and the service's error code only: messages can carry URLs with SAS tokens.
    code = getattr(exc, "error_code", None)
    return f"{type(exc).__name__}" + (f" ({code})" if code else "")
