"""What the map phase hands the reduce phase: one `Frame` per mapped batch, compact and in input order.

A frame holds, for each *candidate* (a trace that passed the rules and the golden filter), what the reduce needs to
decide and write it: its order key, exact-dedup key, near-duplicate sketch, the example line already encoded (or,
when formatting failed, its reject line), split, token counts and PII findings. Traces the map already rejected come
as finished reject lines with their keys. Keys are 128 bits (two uint64 columns): a line number in a file, a trace's
ULID in storage; both follow the order a single reader sees, so merging parts by key gives that order back.

Frames are written to a stream (a spool file, a blob) as a length-prefixed JSON header and raw arrays: no pickle,
so a frame read back from storage is data, never code.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import IO, Any, Iterator

import numpy as np
from ulid import ULID

from forge.domain.chat_format import ROLES

_LEN = struct.Struct("<Q")
KEY_MAX = np.iinfo(np.uint64).max


def ulid_key(trace_id: str) -> tuple[int, int]:
    """A stored trace's key: its id's ULID, whose order is its RowKey's (time, then id), the order one reader sees."""
    value = int(ULID.from_str(trace_id.rpartition(".")[2]))
    return value >> 64, value & 0xFFFFFFFFFFFFFFFF


@dataclass
class Frame:
    keys: np.ndarray  # uint64 (n, 2): order of the candidates
    exact: np.ndarray  # uint64 n: exact-dedup key of the conversation
    ok: np.ndarray  # bool n: formatted; False → lines[i] is its reject line (written if it is not a duplicate)
    lines: list[bytes]  # the example's JSONL line, or the reject line
    who: list[bytes]  # `,"id":…,"line":…` for a reject record of this candidate ('' when neither)
    split: np.ndarray  # uint8 n: 0 train, 1 valid
    tokens: np.ndarray  # int64 n
    role_tokens: np.ndarray  # int64 (n, len(ROLES))
    role_messages: np.ndarray  # int32 (n, len(ROLES))
    redacted: np.ndarray  # bool n
    truncated: np.ndarray  # bool n
    prints: np.ndarray | None  # uint16 (n, num_perm): near-duplicate fingerprints (None: near-dup off)
    bands: np.ndarray | None  # uint64 (n, bands): LSH band keys
    pii: dict[int, dict[str, int]] = field(default_factory=dict)  # candidate index → findings by kind
    reject_keys: np.ndarray = field(default_factory=lambda: np.empty((0, 2), np.uint64))
    reject_lines: list[bytes] = field(default_factory=list)  # map-phase rejects, in key order
    read: int = 0
    graded: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # map-phase drops by reason (rejects and cap)

    def __len__(self) -> int:
        return len(self.lines)

    def last_key(self) -> tuple[int, int] | None:
        """The largest key in the frame (candidates and rejects), or None when it holds neither."""
        last = [k[-1] for k in (self.keys, self.reject_keys) if len(k)]
        return max((int(k[0]), int(k[1])) for k in last) if last else None

    def take(self, at: np.ndarray) -> "Frame":
        """The candidates at these indices (in this order), without rejects or counters."""
        at = np.asarray(at, dtype=np.int64)
        index = {int(old): new for new, old in enumerate(at.tolist()) if int(old) in self.pii}
        return Frame(self.keys[at], self.exact[at], self.ok[at], [self.lines[i] for i in at.tolist()],
                     [self.who[i] for i in at.tolist()], self.split[at], self.tokens[at], self.role_tokens[at],
                     self.role_messages[at], self.redacted[at], self.truncated[at],
                     None if self.prints is None else self.prints[at], None if self.bands is None else self.bands[at],
                     {new: self.pii[old] for old, new in index.items()})

    def write(self, out: IO[bytes]) -> int:
        """Append the frame to a stream; returns the bytes written."""
        arrays = self._arrays()
        blobs = [b"".join(self.lines), b"".join(self.who), b"".join(self.reject_lines)]
        header = json.dumps({
            "n": len(self), "r": len(self.reject_lines), "read": self.read, "graded": self.graded,
            "dropped": self.dropped, "pii": [[i, kinds] for i, kinds in sorted(self.pii.items())],
            "near": None if self.prints is None else [self.prints.shape[1], self.bands.shape[1]],
            "blobs": [len(b) for b in blobs],
        }).encode()
        body = [_LEN.pack(len(header)), header, *(a.tobytes() for a in arrays), *blobs]
        size = sum(len(part) for part in body)
        out.write(_LEN.pack(size))
        for part in body:
            out.write(part)
        return size + _LEN.size

    def _arrays(self) -> list[np.ndarray]:
        arrays = [self.keys, self.exact, self.ok, self.split, self.tokens, self.role_tokens, self.role_messages,
                  self.redacted, self.truncated, _offsets(self.lines), _offsets(self.who), self.reject_keys,
                  _offsets(self.reject_lines)]
        if self.prints is not None:
            arrays += [self.prints, self.bands]
        return arrays


def _offsets(parts: list[bytes]) -> np.ndarray:
    out = np.zeros(len(parts) + 1, dtype=np.uint64)
    np.cumsum([len(p) for p in parts], out=out[1:])
    return out


def _split(blob: memoryview, offsets: np.ndarray) -> list[bytes]:
    bounds = offsets.tolist()
    return [bytes(blob[a:b]) for a, b in zip(bounds, bounds[1:])]


def read_frames(stream: IO[bytes]) -> Iterator[Frame]:
    """Every frame in a stream written by `Frame.write`, in order."""
    while True:
        head = stream.read(_LEN.size)
        if not head:
            return
        if len(head) != _LEN.size:
            raise ValueError("a frame is cut short: the part was not written completely")
        (size,) = _LEN.unpack(head)
        data = stream.read(size)
        if len(data) != size:
            raise ValueError("a frame is cut short: the part was not written completely")
        yield parse_frame(memoryview(data))


def parse_frame(data: memoryview) -> Frame:
    (hlen,) = _LEN.unpack(data[: _LEN.size])
    header = json.loads(bytes(data[_LEN.size: _LEN.size + hlen]))
    n, r, roles = header["n"], header["r"], len(ROLES)
    shapes: list[tuple[Any, tuple[int, ...]]] = [
        (np.uint64, (n, 2)), (np.uint64, (n,)), (np.bool_, (n,)), (np.uint8, (n,)), (np.int64, (n,)),
        (np.int64, (n, roles)), (np.int32, (n, roles)), (np.bool_, (n,)), (np.bool_, (n,)),
        (np.uint64, (n + 1,)), (np.uint64, (n + 1,)), (np.uint64, (r, 2)), (np.uint64, (r + 1,)),
    ]
    if header["near"]:
        perm, bands = header["near"]
        shapes += [(np.uint16, (n, perm)), (np.uint64, (n, bands))]
    at = _LEN.size + hlen
    arrays = []
    for dtype, shape in shapes:
        count = int(np.prod(shape))
        arrays.append(np.frombuffer(data, dtype=dtype, count=count, offset=at).reshape(shape))
        at += count * np.dtype(dtype).itemsize
    blobs = []
    for length in header["blobs"]:
        blobs.append(data[at: at + length])
        at += length
    (keys, exact, ok, split, tokens, role_tokens, role_messages, redacted, truncated, line_at, who_at,
     reject_keys, reject_at, *near) = arrays
    prints, bands = near if near else (None, None)
    return Frame(keys, exact, ok, _split(blobs[0], line_at), _split(blobs[1], who_at), split, tokens, role_tokens,
                 role_messages, redacted, truncated, prints, bands, {int(i): k for i, k in header["pii"]},
                 reject_keys, _split(blobs[2], reject_at), header["read"], header["graded"], header["dropped"])


def concat(frames: list[Frame]) -> Frame:
    """The candidates of several frames, one after another (rejects and counters are not carried)."""
    if len(frames) == 1:
        return frames[0]
    pii: dict[int, dict[str, int]] = {}
    base = 0
    for f in frames:
        pii.update({base + i: kinds for i, kinds in f.pii.items()})
        base += len(f)
    near = frames[0].prints is not None
    return Frame(
        np.concatenate([f.keys for f in frames]), np.concatenate([f.exact for f in frames]),
        np.concatenate([f.ok for f in frames]), [x for f in frames for x in f.lines],
        [x for f in frames for x in f.who], np.concatenate([f.split for f in frames]),
        np.concatenate([f.tokens for f in frames]), np.concatenate([f.role_tokens for f in frames]),
        np.concatenate([f.role_messages for f in frames]), np.concatenate([f.redacted for f in frames]),
        np.concatenate([f.truncated for f in frames]),
        np.concatenate([f.prints for f in frames]) if near else None,
        np.concatenate([f.bands for f in frames]) if near else None, pii)


def _not_after(keys: np.ndarray, bound: tuple[int, int]) -> np.ndarray:
    hi, lo = np.uint64(bound[0]), np.uint64(bound[1])
    return (keys[:, 0] < hi) | ((keys[:, 0] == hi) & (keys[:, 1] <= lo))


def merge(streams: list[Iterator[Frame]]) -> Iterator[Frame]:
    """Frames from several parts (each in key order) as one stream in key order.

    Each round takes, from every part's current frame, what is not after the smallest of their last keys: nothing
    later can come before it. Memory is one frame per part."""
    if len(streams) == 1:
        yield from streams[0]
        return
    heads: list[tuple[Frame, int, int] | None] = [None] * len(streams)  # frame, candidates used, rejects used
    counters = Frame(*empty())

    def load(i: int) -> None:
        for frame in streams[i]:
            counters.read += frame.read
            counters.graded += frame.graded
            for reason, count in frame.dropped.items():
                counters.dropped[reason] = counters.dropped.get(reason, 0) + count
            if frame.last_key() is not None:
                heads[i] = (frame, 0, 0)
                return
        heads[i] = None

    for i in range(len(streams)):
        load(i)
    while any(h is not None for h in heads):
        bound = min(h[0].last_key() for h in heads if h is not None)
        parts, rejects = [], []
        for i, head in enumerate(heads):
            if head is None:
                continue
            frame, used, used_rejects = head
            upto = used + int(_not_after(frame.keys[used:], bound).sum())
            upto_rejects = used_rejects + int(_not_after(frame.reject_keys[used_rejects:], bound).sum())
            if upto > used:
                parts.append(frame.take(np.arange(used, upto)))
            if upto_rejects > used_rejects:
                rejects.append((frame.reject_keys[used_rejects:upto_rejects],
                                frame.reject_lines[used_rejects:upto_rejects]))
            heads[i] = (frame, upto, upto_rejects)
            if upto == len(frame) and upto_rejects == len(frame.reject_lines):
                load(i)
        merged = concat(parts) if parts else Frame(*empty())
        if parts:
            order = np.lexsort((merged.keys[:, 1], merged.keys[:, 0]))
            merged = merged.take(order)
        if rejects:
            keys = np.concatenate([k for k, _ in rejects])
            lines = [line for _, ls in rejects for line in ls]
            order = np.lexsort((keys[:, 1], keys[:, 0]))
            merged.reject_keys, merged.reject_lines = keys[order], [lines[i] for i in order.tolist()]
        merged.read, merged.graded, merged.dropped = counters.read, counters.graded, dict(counters.dropped)
        counters.read = counters.graded = 0
        counters.dropped.clear()
        yield merged
    if counters.read or counters.graded or counters.dropped:  # frames with nothing but counts, loaded last
        yield counters


def empty(near: tuple[int, int] | None = None) -> tuple[Any, ...]:
    """The fields of a frame with no candidates (`Frame(*empty())`)."""
    roles = len(ROLES)
    return (np.empty((0, 2), np.uint64), np.empty(0, np.uint64), np.empty(0, np.bool_), [], [],
            np.empty(0, np.uint8), np.empty(0, np.int64), np.empty((0, roles), np.int64),
            np.empty((0, roles), np.int32), np.empty(0, np.bool_), np.empty(0, np.bool_),
            None if near is None else np.empty((0, near[0]), np.uint16),
            None if near is None else np.empty((0, near[1]), np.uint64))
