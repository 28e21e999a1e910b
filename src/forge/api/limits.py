"""Request limits: a body size limit (on the declared length and on the bytes received), and a limit on failed
authentications per client address."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, deque
from typing import Any, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": "Payload too large",
            "status": 413,
            "detail": f"The request body is over {self.max_bytes} bytes; send smaller batches.",
        }
        payload = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


class FailureLimit:
    """Refuses a client that failed `max_failures` authentications within `window_s` until the oldest of them ages out.

    In memory and per process: it slows key guessing and spares storage one lookup per guess; it is not a quota.
    Thread-safe, since FastAPI runs sync dependencies in a thread pool."""

    def __init__(self, max_failures: int = 10, window_s: float = 60.0, *, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.max_failures, self.window_s, self.max_clients = max_failures, window_s, max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()  # client -> its last failure times
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float | None:
        """Seconds until `client` may try again, or None if it is not refused."""
        with self._lock:
            failures = self._failures.get(client)
            if failures is None or len(failures) < self.max_failures:
                return None
            wait = failures[0] + self.window_s - self._clock()
            return wait if wait > 0 else None

    def fail(self, client: str) -> None:
        with self._lock:
            failures = self._failures.pop(client, None) or deque(maxlen=self.max_failures)
            failures.append(self._clock())
            self._failures[client] = failures  # most recent last, so the oldest is evicted first
            if len(self._failures) > self.max_clients:  # bounds memory against many addresses
                self._failures.popitem(last=False)
