"""The reduce phase: one pass, in input order, over the compact frames the map phase made.

It decides what depends on other traces — exact duplicates, near duplicates, the `max_examples` cap — and writes
the already-encoded lines to train/valid/rejects. Candidates are taken in groups of exactly `GROUP`, whatever the
frames' sizes, so the decisions (near-duplicate lookups are made a group at a time) and the bytes written are the
same however the input was split among workers.

Memory: the exact keys (8 bytes per kept example), the near-duplicate index (`NearDuplicates`), one group, and the
frames not yet consumed (one per part while parts are merged).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from forge.domain.chat_format import ROLES
from forge.domain.dataset_stats import CurationStats
from forge.domain.dedup import KeyStore, NearDuplicates
from forge.curation.frames import Frame, concat

if TYPE_CHECKING:
    from forge.curation.curator import CurationOptions

GROUP = 1024
FILES = ("train", "valid", "rejects")
_DUPLICATE = b'{"reason":"duplicate","detail":"the same conversation was kept earlier"'
_NEAR = b'{"reason":"near_duplicate","detail":"close to an earlier example"'


class _Writer:
    """JSONL lines to a file, hashed and counted as they go."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = open(path, "wb")
        self.sha = hashlib.sha256()
        self.lines = 0

    def write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        data = b"".join(lines)
        self.handle.write(data)
        self.sha.update(data)
        self.lines += len(lines)

    def close(self) -> dict[str, Any]:
        self.handle.close()
        return {"path": str(self.path), "lines": self.lines, "sha256": self.sha.hexdigest()}


class Reducer:
    def __init__(self, options: "CurationOptions", out_dir: Path, limit: int):
        self.options = options
        self.limit = limit
        self.stats = CurationStats()
        self.exact = KeyStore()
        threshold = options.domain.filters.near_dup_threshold
        self.near = NearDuplicates(threshold) if threshold else None
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out = {name: _Writer(out_dir / f"{name}.jsonl") for name in FILES}
        self.buffer: list[Frame] = []
        self.buffered = 0
        self.pending: list[tuple[np.ndarray, list[bytes]]] = []  # map-phase rejects not yet written, in order

    def add(self, frame: Frame) -> None:
        """Take one frame (frames must come in key order)."""
        stats = self.stats
        stats.read += frame.read
        stats.graded += frame.graded
        stats.dropped.update(frame.dropped)
        if frame.reject_lines:
            self.pending.append((frame.reject_keys, frame.reject_lines))
        if len(frame):
            self.buffer.append(frame)
            self.buffered += len(frame)
        while self.buffered >= GROUP:
            self._group(self._take(GROUP))

    def close(self) -> dict[str, dict[str, Any]]:
        """Decide what is buffered, write the rest of the rejects, close the files: name → path, lines, sha256."""
        try:
            if self.buffered:
                self._group(self._take(self.buffered))
            self._rejects(np.empty((0, 2), np.uint64), [], last=None)
        finally:
            files = {name: writer.close() for name, writer in self.out.items()}
        # Counters in a fixed order: the stats file is the same bytes however the input was split.
        self.stats.dropped = Counter(dict(sorted(self.stats.dropped.items())))
        self.stats.pii = Counter(dict(sorted(self.stats.pii.items())))
        return files

    def _take(self, count: int) -> Frame:
        parts, taken = [], 0
        while taken < count:
            frame = self.buffer[0]
            need = count - taken
            if len(frame) <= need:
                parts.append(self.buffer.pop(0))
                taken += len(frame)
            else:
                parts.append(frame.take(np.arange(need)))
                self.buffer[0] = frame.take(np.arange(need, len(frame)))
                taken += need
        self.buffered -= count
        return concat(parts)

    def _group(self, g: Frame) -> None:
        stats, n = self.stats, len(g)
        # Exact duplicates: seen in an earlier group, or earlier in this one (the first occurrence stays).
        _, first = np.unique(g.exact, return_index=True)
        duplicate = np.ones(n, dtype=bool)
        duplicate[first] = False
        duplicate |= self.exact.contains(g.exact)
        self.exact.add(g.exact[~duplicate])
        for i, kinds in g.pii.items():
            if not duplicate[i]:
                stats.pii.update(kinds)
        stats.redacted_examples += int((g.redacted & ~duplicate).sum())
        stats.truncated_examples += int((g.truncated & ~duplicate).sum())
        reject_at: list[int] = []
        reject_lines: list[bytes] = []
        failed = ~duplicate & ~g.ok
        for i in np.flatnonzero(duplicate | failed).tolist():
            if duplicate[i]:
                stats.drop("duplicate")
                reject_lines.append(_DUPLICATE + g.who[i] + b"}\n")
            else:
                stats.drop(orjson.loads(g.lines[i])["reason"])
                reject_lines.append(g.lines[i])
            reject_at.append(i)
        keep = ~duplicate & g.ok
        if self.near is not None and keep.any():
            at = np.flatnonzero(keep)
            checked = self.near.check_sketched(g.prints[at], g.bands[at])
            self.near.keep(checked)
            for i in at[checked.duplicate].tolist():
                stats.drop("near_duplicate")
                reject_at.append(i)
                reject_lines.append(_NEAR + g.who[i] + b"}\n")
            keep[at[checked.duplicate]] = False
        kept = np.flatnonzero(keep)
        cap = self.options.max_examples
        if cap and stats.kept + kept.size > cap:
            over = kept[max(0, cap - stats.kept):]
            stats.dropped["over_max_examples"] += int(over.size)
            kept = kept[: max(0, cap - stats.kept)]
        self._write(g, kept)
        order = np.argsort(reject_at, kind="stable")
        self._rejects(g.keys[np.asarray(reject_at, dtype=np.int64)[order]], [reject_lines[i] for i in order.tolist()],
                      last=g.keys[-1])

    def _write(self, g: Frame, kept: np.ndarray) -> None:
        stats = self.stats
        valid = g.split[kept].astype(bool)
        lines = g.lines
        self.out["train"].write([lines[i] for i in kept[~valid].tolist()])
        self.out["valid"].write([lines[i] for i in kept[valid].tolist()])
        stats.kept += int(kept.size)
        stats.tokens.add_many(g.tokens[kept], g.role_tokens[kept], g.role_messages[kept], ROLES)
        stats.train += int((~valid).sum())
        stats.valid += int(valid.sum())
        stats.train_tokens[0] += int(np.minimum(g.tokens[kept[~valid]], self.limit).sum())

    def _rejects(self, keys: np.ndarray, lines: list[bytes], last: np.ndarray | None) -> None:
        """Write this group's rejects merged with the map's, in key order, up to `last` (None: all of them)."""
        ready_keys, ready_lines = [keys], [lines]
        while self.pending:
            pkeys, plines = self.pending[0]
            upto = len(plines) if last is None else int(
                ((pkeys[:, 0] < last[0]) | ((pkeys[:, 0] == last[0]) & (pkeys[:, 1] <= last[1]))).sum())
            ready_keys.append(pkeys[:upto])
            ready_lines.append(plines[:upto])
            if upto < len(plines):
                self.pending[0] = (pkeys[upto:], plines[upto:])
                break
            self.pending.pop(0)
        all_keys = np.concatenate(ready_keys)
        all_lines = [line for part in ready_lines for line in part]
        if len(all_lines) > len(lines):
            order = np.lexsort((all_keys[:, 1], all_keys[:, 0]))
            all_lines = [all_lines[i] for i in order.tolist()]
        self.out["rejects"].write(all_lines)
