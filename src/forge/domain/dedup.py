"""Deduplication with bounded memory: exact keys as a sorted uint64 array; near-duplicates by MinHash, with LSH
bands to find candidates and the signatures to decide.

Memory is 8 bytes per exact key, and per near-duplicate kept example 2 bytes × NUM_PERM of fingerprint plus 12 bytes
× bands of band index (plus transient copies while a batch is merged in): no Python object per example.
Signatures use one-permutation hashing (one hash per shingle, binned, then densified), so a signature costs one pass
over the text's shingles.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

SHINGLE_BYTES = 5
NUM_PERM = 128
CANDIDATE_RECALL = 0.99  # chance that a pair at the threshold shares an LSH band and so gets compared
MAX_CANDIDATES = 64  # kept examples compared per band key: bounds the work when many share boilerplate
_MULT = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads shingle values over 64 bits
_FILL = np.uint64(0xFFFFFFFFFFFFFFFF)


class KeyStore:
    """A growing set of uint64 keys: sorted runs of geometrically growing size, so adding a batch copies each key
    O(log n) times in all (one sorted array merged batch by batch made n keys cost O(n²/batch))."""

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []  # sorted, disjoint, largest first

    def __len__(self) -> int:
        return sum(int(run.size) for run in self.runs)

    @property
    def nbytes(self) -> int:
        return sum(int(run.nbytes) for run in self.runs)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(keys.shape, dtype=bool)
        for run in self.runs:
            if keys.size == 0:
                break
            at = np.searchsorted(run, keys)
            at[at == run.size] = 0
            found |= run[at] == keys
        return found

    def add(self, keys: np.ndarray) -> None:
        if keys.size == 0:
            return
        new = np.unique(keys.astype(np.uint64, copy=False))
        new = new[~self.contains(new)]
        if new.size == 0:
            return
        self.runs.append(new)
        while len(self.runs) > 1 and 2 * self.runs[-1].size >= self.runs[-2].size:
            newer, older = self.runs.pop(), self.runs.pop()
            self.runs.append(np.insert(older, np.searchsorted(older, newer), newer))


@functools.lru_cache(maxsize=32)
def lsh_params(threshold: float, num_perm: int = NUM_PERM, recall: float = CANDIDATE_RECALL) -> tuple[int, int]:
    """(bands, rows) for finding candidates: the most rows per band (fewest dissimilar candidates) that still make
    a pair exactly at `threshold` share a band with probability `recall`; the signatures then decide."""
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= recall:
            best = (bands, rows)
    return best


def signatures(texts: Sequence[bytes], num_perm: int = NUM_PERM) -> np.ndarray:
    """MinHash signatures (len(texts) × num_perm, uint64) over `SHINGLE_BYTES`-byte shingles of each text."""
    n = len(texts)
    if n == 0:
        return np.full((0, num_perm), _FILL, dtype=np.uint64)
    gap = b"\0" * (SHINGLE_BYTES - 1)
    # Texts are joined with NUL gaps, so a shingle never mixes two texts; trailing bytes let the last 8-byte
    # window be read.
    raw = gap.join(texts) + b"\0" * 8
    windows = len(raw) - 8
    # Every byte offset read as a little-endian uint64 in place (no copy), masked to the shingle's bytes.
    view = np.ndarray((windows,), dtype="<u8", buffer=raw, strides=(1,))
    hashed = (view & np.uint64((1 << (8 * SHINGLE_BYTES)) - 1)) * _MULT
    sizes = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    spans = sizes + len(gap)
    # Each window's slot in the flat signature array: its text's row, plus its bin, the hash's top bits (always
    # below num_perm). A window starting in a gap would reach into the next text: it goes to a spare row instead.
    base = np.repeat(np.arange(n, dtype=np.int64) * num_perm, spans)[:windows]
    gaps = ((np.cumsum(spans) - len(gap))[:, None] + np.arange(len(gap))).ravel()
    base[gaps[gaps < windows]] = n * num_perm
    slots = (hashed >> np.uint64(64 - num_perm.bit_length() + 1)).astype(np.int64)
    slots += base
    flat = np.full((n + 1) * num_perm, _FILL, dtype=np.uint64)
    np.minimum.at(flat, slots, hashed)
    sig = flat[: n * num_perm].reshape(n, num_perm)
    return _densify(sig)


def _densify(sig: np.ndarray) -> np.ndarray:
    """Fill each empty bin from the next filled one (circularly), offset by distance, so short texts compare."""
    empty = sig == _FILL
    if not empty.any():
        return sig
    out = sig.copy()
    source = sig
    for step in range(1, sig.shape[1]):
        source = np.roll(source, -1, axis=1)
        fill = empty & (source != _FILL)
        out[fill] = source[fill] + np.uint64(step * 0x51ED27)
        empty &= ~fill
        if not empty.any():
            break
    return out


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per band (len × bands): equal keys mean equal signature rows in that band."""
    n = sig.shape[0]
    used = sig[:, : bands * rows].reshape(n, bands, rows)
    mults = np.array([0x9E3779B97F4A7C15 ^ (r * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF) | 1 for r in range(rows)],
                     dtype=np.uint64)
    keys = (used * mults).sum(axis=2, dtype=np.uint64)
    return keys ^ (np.arange(bands, dtype=np.uint64) * np.uint64(0x94D049BB133111EB))


def fingerprints(sig: np.ndarray) -> np.ndarray:
    """The signature kept per example: 16 bits of each bin's minimum (bits 32–47: the top bits name the bin, the low
    ones see only a shingle's first bytes). Bins agree by chance once in 65,536, so the share of agreeing bins
    still estimates the Jaccard similarity."""
    return (sig >> np.uint64(32)).astype(np.uint16)


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of fingerprint rows, pairwise along the first axis."""
    return (a == b).mean(axis=-1)


def sketch(texts: Sequence[bytes], threshold: float, num_perm: int = NUM_PERM) -> tuple[np.ndarray, np.ndarray]:
    """What near-duplicate detection keeps of each text: its fingerprint and its LSH band keys at `threshold`.
    The costly part (hashing every shingle), independent of every other text: the map phase does it in parallel."""
    sig = signatures(texts, num_perm)
    return fingerprints(sig), band_keys(sig, *lsh_params(threshold, num_perm))


@dataclass
class Checked:
    """One batch after `NearDuplicates.check`: which texts are duplicates, and what to remember of the rest."""

    duplicate: np.ndarray  # bool, one per text
    prints: np.ndarray  # uint16, texts × num_perm
    keys: np.ndarray  # uint64, texts × bands


class BandIndex:
    """Band key → kept example rows (several rows may share a key), as sorted runs of geometrically growing size.

    A batch becomes a run and is merged only into runs of similar size, so each entry is copied O(log n) times in
    all rather than once per batch, and a lookup searches O(log n) runs with its queries sorted. A fixed bitmap of
    the keys' top bits (16 MiB) answers most lookups of absent keys without searching.
    """

    BITS = 27

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted uint64 keys, int32 rows), largest first
        self.present = np.zeros(1 << (self.BITS - 3), dtype=np.uint8)

    @property
    def nbytes(self) -> int:
        return self.present.nbytes + sum(int(keys.nbytes + rows.nbytes) for keys, rows in self.runs)

    def _slots(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        top = keys >> np.uint64(64 - self.BITS)
        return (top >> np.uint64(3)).astype(np.int64), (np.uint8(1) << (top & np.uint64(7)).astype(np.uint8))

    def add(self, keys: np.ndarray, rows: np.ndarray) -> None:
        byte, bit = self._slots(keys)
        np.bitwise_or.at(self.present, byte, bit)
        order = np.argsort(keys, kind="stable")
        self.runs.append((keys[order], rows[order]))
        while len(self.runs) > 1 and 2 * self.runs[-1][0].size >= self.runs[-2][0].size:
            newer_keys, newer_rows = self.runs.pop()
            older_keys, older_rows = self.runs.pop()
            at = np.searchsorted(older_keys, newer_keys, side="right")
            self.runs.append((np.insert(older_keys, at, newer_keys), np.insert(older_rows, at, newer_rows)))

    def lookup(self, queries: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(query index, row) for every stored entry whose key equals a query, at most `limit` per key and run."""
        byte, bit = self._slots(queries)
        order = np.flatnonzero(self.present[byte] & bit)  # the queries whose key may be stored
        order = order[np.argsort(queries[order])]
        ordered = queries[order]
        found_queries, found_rows = [np.empty(0, np.int64)], [np.empty(0, np.int32)]
        for keys, rows in self.runs:
            lo = np.searchsorted(keys, ordered, side="left")
            hit = np.flatnonzero(keys[np.minimum(lo, keys.size - 1)] == ordered)
            if hit.size == 0:
                continue
            lo = lo[hit]
            counts = np.minimum(np.searchsorted(keys, ordered[hit], side="right") - lo, limit)
            starts = np.cumsum(counts) - counts
            at = np.repeat(lo, counts) + (np.arange(int(counts.sum())) - np.repeat(starts, counts))
            found_queries.append(np.repeat(order[hit], counts))
            found_rows.append(rows[at])
        return np.concatenate(found_queries), np.concatenate(found_rows)


class NearDuplicates:
    """Near-duplicate detection: LSH bands find the kept examples that may be similar, then their signatures are
    compared; an example at or above the threshold to any kept one (or an earlier one in its batch) is a duplicate.

    Memory per kept example: num_perm × 2 bytes of fingerprint and bands × 12 bytes of band index (key + row).
    """

    BLOCK = 1 << 16  # fingerprints are stored in blocks of this many rows: growing never copies what is stored

    def __init__(self, threshold: float, num_perm: int = NUM_PERM):
        self.threshold = threshold
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self.num_perm = num_perm
        self.blocks: list[np.ndarray] = []  # uint16 fingerprints, BLOCK rows each; the last one fills up
        self.kept = 0
        self.index = BandIndex()

    @property
    def nbytes(self) -> int:
        return self.kept * self.num_perm * 2 + self.index.nbytes

    def check(self, texts: Sequence[bytes]) -> Checked:
        """Which texts of a batch, in order, are near-duplicates of a kept example or of an earlier text here."""
        return self.check_sketched(*sketch(texts, self.threshold, self.num_perm))

    def check_sketched(self, prints: np.ndarray, keys: np.ndarray) -> Checked:
        """`check` for texts already sketched (the map phase sketches; this decides, in order)."""
        duplicate = self._seen_before(prints, keys)
        # Within the batch, only texts sharing a band key with another text can be near-duplicates of each other.
        _, where, counts = np.unique(keys.ravel(), return_inverse=True, return_counts=True)
        shares = (counts[where] > 1).reshape(keys.shape).any(axis=1) & ~duplicate
        in_batch: dict[int, list[int]] = {}  # band key → texts of this batch that are not duplicates
        for i in np.flatnonzero(shares).tolist():
            row = keys[i].tolist()
            candidates = {j for key in row for j in in_batch.get(key, ())}
            if candidates and (similarity(prints[sorted(candidates)], prints[i]) >= self.threshold).any():
                duplicate[i] = True
                continue
            for key in row:
                in_batch.setdefault(key, []).append(i)
        return Checked(duplicate, prints, keys)

    def _seen_before(self, prints: np.ndarray, keys: np.ndarray) -> np.ndarray:
        duplicate = np.zeros(len(prints), dtype=bool)
        if self.kept == 0 or len(prints) == 0:
            return duplicate
        query, kept = self.index.lookup(keys.ravel(), MAX_CANDIDATES)
        # Every (text, kept example) pair that shares a band, each pair once.
        pairs = np.unique((query // self.bands) << 32 | kept.astype(np.int64))
        text, kept = pairs >> 32, pairs & 0xFFFFFFFF
        close = similarity(prints[text], self._prints(kept)) >= self.threshold
        duplicate[text[close]] = True
        return duplicate

    def _prints(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((rows.size, self.num_perm), dtype=np.uint16)
        block = rows // self.BLOCK
        for b in np.unique(block).tolist():
            at = block == b
            out[at] = self.blocks[b][rows[at] % self.BLOCK]
        return out

    def keep(self, checked: Checked) -> None:
        """Remember the texts of a checked batch that were kept: the non-duplicates."""
        prints, keys = checked.prints[~checked.duplicate], checked.keys[~checked.duplicate]
        rows = np.arange(self.kept, self.kept + len(prints), dtype=np.int32)
        done = 0
        while done < len(prints):
            if self.kept % self.BLOCK == 0:
                self.blocks.append(np.empty((self.BLOCK, self.num_perm), dtype=np.uint16))
            at = self.kept % self.BLOCK
            take = min(len(prints) - done, self.BLOCK - at)
            self.blocks[-1][at: at + take] = prints[done: done + take]
            self.kept += take
            done += take
        if len(rows):
            self.index.add(keys.ravel(), np.repeat(rows, self.bands))
