"""A small async TTL cache over a blocking loader: routes and API keys are read from storage once per TTL."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
log = logging.getLogger("forge.serving")


class TtlCache(Generic[K, V]):
    """Values live `ttl_s` seconds. In the next `ttl_s` an expired value is still served while one background
    reload refreshes it, so under steady traffic no call waits for storage; a value older than that is reloaded
    before it is served, so a change is seen within 2 × `ttl_s`. A failed reload keeps the old value; with none,
    `fallback` answers (or the error is raised). With `max_age_s`, a value read from storage longer ago than that
    is never served: past it, a failed reload raises (what answers for an API key must not outlive an outage).
    """

    def __init__(
        self,
        load: Callable[[K], V],
        ttl_s: float,
        *,
        fallback: Callable[[K], V] | None = None,
        max_age_s: float | None = None,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._load = load
        self.ttl_s = ttl_s
        self._fallback = fallback
        self._max_age_s = max_age_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, float, V]] = {}  # expires, loaded (from storage), value
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K) -> V:
        entry = self._entries.get(key)
        if entry is not None and not self._too_old(entry):
            expires, _, value = entry
            now = self._clock()
            if now < expires:
                return value
            if now < expires + self.ttl_s:  # recently expired: answer now, refresh for the next callers
                self._reload(key)
                return value
        return await asyncio.shield(self._reload(key))

    def _too_old(self, entry: tuple[float, float, V]) -> bool:
        return self._max_age_s is not None and self._clock() - entry[1] >= self._max_age_s

    def invalidate(self, key: K) -> None:
        self._entries.pop(key, None)

    def _reload(self, key: K) -> asyncio.Future[V]:
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(key))
            self._loading[key] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
        return pending

    async def _fetch(self, key: K) -> V:
        started = self._clock()  # storage vouches for the value as of the read, not as of its answer
        try:
            value = await asyncio.to_thread(self._load, key)
            loaded = started
        except Exception as exc:
            old = self._entries.get(key)
            if old is not None and self._too_old(old):
                old = None
            if old is None and self._fallback is None:
                raise
            # The type only: storage errors can carry URLs with SAS tokens.
            log.warning("cache reload failed (%s); serving %s", type(exc).__name__, "the last value" if old else "a fallback")
            # Kept with its first load time, so `max_age_s` still counts from when storage last vouched for it.
            if old is not None:
                loaded, value = old[1], old[2]
            else:
                loaded, value = self._clock(), self._fallback(key)  # type: ignore[misc]
        if len(self._entries) >= self._max_entries and key not in self._entries:
            self._entries.clear()  # bounds memory against callers spraying unknown keys
        self._entries[key] = (self._clock() + self.ttl_s, loaded, value)
        return value
