"""What the map phase builds per batch: one `Candidate` per trace that passed the rules and the golden filter, and
the `FrameBuilder` that packs them (and the map's rejects) into a `Frame`; the keys that order them; JSONL encoding."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import orjson

from forge.curation.frames import KEY_MAX, Frame, ulid_key
from forge.curation.sources import Incoming
from forge.domain import chat_format, curation
from forge.domain.dedup import sketch
from forge.domain.traces import any_float


def encode(record: dict[str, Any]) -> bytes:
    """One JSONL line: orjson's bytes where they equal json's, else json's (floats, lone surrogates, big ints)."""
    if not any_float(record):  # orjson writes floats in another notation (1e16, not 1e+16)
        try:
            return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)  # the same bytes as json's, faster
        except TypeError:  # lone surrogates, integers past 64 bits: json's encoding below decides
            pass
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8", "replace")


@dataclass
class Candidate:
    key: tuple[int, int]
    exact: int
    who: bytes
    line: bytes = b""
    example: dict[str, Any] | None = None
    failed: tuple[str, str] | None = None
    split: bool = False  # valid
    tokens: int = 0
    per_role: dict[str, int] = field(default_factory=dict)
    roles: dict[str, int] = field(default_factory=dict)
    pii: Counter = field(default_factory=Counter)
    redacted: bool = False
    truncated: bool = False


class FrameBuilder:
    """A frame being mapped: plain lists until `build` packs them into arrays."""

    def __init__(self) -> None:
        self.read = self.graded = 0
        self.dropped: Counter = Counter()
        self.rejects: list[tuple[tuple[int, int], bytes]] = []
        self.candidates: list[Candidate] = []
        self.keys_of: dict[int, tuple[int, int]] = {}
        self.near: tuple[np.ndarray, np.ndarray] | None = None
        self.sketched = 0

    def copy(self) -> "FrameBuilder":
        other = FrameBuilder()
        other.read, other.graded, other.dropped = self.read, self.graded, Counter(self.dropped)
        other.rejects, other.candidates = list(self.rejects), list(self.candidates)
        other.near, other.sketched = self.near, self.sketched
        return other

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def reject(self, key: tuple[int, int], item: Incoming, reason: str, detail: str) -> None:
        self.drop(reason)
        self.rejects.append((key, encode({"reason": reason, "detail": detail, **identity(item)})))

    def sketch(self, threshold: float | None) -> None:
        """Near-duplicate sketches of the candidates not yet sketched (one vectorised pass over the batch)."""
        fresh = self.candidates[self.sketched:]
        self.sketched = len(self.candidates)
        if not threshold:
            return
        prints, bands = sketch([dedup_text(c.example) if c.example is not None else b"" for c in fresh], threshold)
        if self.near is not None:
            prints, bands = np.concatenate([self.near[0], prints]), np.concatenate([self.near[1], bands])
        self.near = (prints, bands)
        for c in fresh:
            c.example = None  # encoded already: the dicts need not outlive the batch

    def build(self) -> Frame:
        cs = self.candidates
        n, roles = len(cs), len(chat_format.ROLES)
        role_tokens = np.zeros((n, roles), dtype=np.int64)
        role_messages = np.zeros((n, roles), dtype=np.int32)
        for i, c in enumerate(cs):
            for role, count in c.per_role.items():
                role_tokens[i, _ROLE[role]] = count
            for role, count in c.roles.items():
                role_messages[i, _ROLE[role]] = count
        self.rejects.sort(key=lambda r: r[0])
        return Frame(
            keys=np.array([c.key for c in cs], dtype=np.uint64).reshape(n, 2),
            exact=np.array([c.exact for c in cs], dtype=np.uint64),
            ok=np.array([c.failed is None for c in cs], dtype=bool),
            lines=[c.line if c.failed is None else encode({"reason": c.failed[0], "detail": c.failed[1]})[:-2] + c.who
                   + b"}\n" for c in cs],
            who=[c.who for c in cs],
            split=np.array([c.split for c in cs], dtype=np.uint8),
            tokens=np.array([c.tokens for c in cs], dtype=np.int64),
            role_tokens=role_tokens, role_messages=role_messages,
            redacted=np.array([c.redacted for c in cs], dtype=bool),
            truncated=np.array([c.truncated for c in cs], dtype=bool),
            prints=self.near[0] if self.near is not None else None,
            bands=self.near[1] if self.near is not None else None,
            pii={i: dict(c.pii) for i, c in enumerate(cs) if c.pii},
            reject_keys=np.array([k for k, _ in self.rejects], dtype=np.uint64).reshape(len(self.rejects), 2),
            reject_lines=[line for _, line in self.rejects],
            read=self.read, graded=self.graded, dropped=dict(self.dropped),
        )


_ROLE = {role: i for i, role in enumerate(chat_format.ROLES)}


def identity(item: Incoming) -> dict[str, Any]:
    """How a reject names its trace: a stored trace by its id; a file's line by its own id, if any, and number."""
    record: dict[str, Any] = {}
    if item.trace is not None and (item.number is None or item.trace.external_id):
        record["id"] = item.trace.id if item.number is None else item.trace.external_id
    if item.number is not None:
        record["line"] = item.number
    return record


def who(item: Incoming) -> bytes:
    """The identity as the tail of a JSON object: `,"id":…,"line":…` (empty when neither applies)."""
    record = identity(item)
    return b"," + encode(record)[1:-2] if record else b""


def position_key() -> Callable[[Incoming], tuple[int, int]]:
    counter = iter(range(1 << 62))
    return lambda item: (0, next(counter))


def line_key(item: Incoming) -> tuple[int, int]:
    return (0, item.number) if item.number is not None else (int(KEY_MAX), 0)


def stored_key(item: Incoming) -> tuple[int, int]:
    return ulid_key(item.trace.id)


def dedup_text(example: dict[str, Any]) -> bytes:
    """Prompt turns and answer, normalised; the system prompt is left out because every example shares it."""
    parts = [m["content"] for m in example["messages"] if m.get("role") != "system" and isinstance(m.get("content"), str)]
    return curation.normalise("\n".join(parts)).encode("utf-8", "replace")
