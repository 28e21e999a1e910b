"""Deduplication with bounded memory: exact keys and MinHash/LSH band keys kept as sorted uint64 arrays.

Memory is 8 bytes per exact key and 8 bytes × bands per near-duplicate signature, for kept examples only (plus
one transient copy while a batch is merged in): no Python object per example. Signatures use one-permutation
hashing (one hash per shingle, binned, then densified), so a signature costs one pass over the text's shingles.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

SHINGLE_BYTES = 5
NUM_PERM = 64
_MULT = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads shingle values over 64 bits
_FILL = np.uint64(0xFFFFFFFFFFFFFFFF)


class KeyStore:
    """A growing set of uint64 keys: a sorted array, merged batch by batch."""

    def __init__(self) -> None:
        self.keys = np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        return int(self.keys.size)

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        if self.keys.size == 0 or keys.size == 0:
            return np.zeros(keys.shape, dtype=bool)
        at = np.searchsorted(self.keys, keys)
        at[at == self.keys.size] = 0
        return self.keys[at] == keys

    def add(self, keys: np.ndarray) -> None:
        if keys.size == 0:
            return
        new = np.unique(keys.astype(np.uint64, copy=False))
        new = new[~self.contains(new)]
        self.keys = np.insert(self.keys, np.searchsorted(self.keys, new), new)


@functools.lru_cache(maxsize=32)
def lsh_params(threshold: float, num_perm: int = NUM_PERM) -> tuple[int, int]:
    """(bands, rows) whose S-curve best separates Jaccard similarity around `threshold` (equal FP/FN weight)."""

    def area(f, lo: float, hi: float, steps: int = 200) -> float:
        width = (hi - lo) / steps
        return sum(f(lo + (i + 0.5) * width) for i in range(steps)) * width

    best, best_error = (1, num_perm), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            false_pos = area(lambda s: 1 - (1 - s**rows) ** bands, 0.0, threshold)
            false_neg = area(lambda s: (1 - s**rows) ** bands, threshold, 1.0)
            if false_pos + false_neg < best_error:
                best, best_error = (bands, rows), false_pos + false_neg
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


class NearDuplicates:
    """Near-duplicate detection by LSH: an example whose band key matches any kept example's is a duplicate."""

    def __init__(self, threshold: float, num_perm: int = NUM_PERM):
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self.num_perm = num_perm
        self.store = KeyStore()

    def check(self, texts: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(is duplicate of an earlier kept text, band keys) for a batch, in order; within the batch too."""
        keys = band_keys(signatures(texts, self.num_perm), self.bands, self.rows)
        seen_before = self.store.contains(keys.ravel()).reshape(keys.shape).any(axis=1)
        duplicate = seen_before.copy()
        batch_seen: set[int] = set()
        for i in range(len(texts)):
            row = keys[i].tolist()
            if not duplicate[i] and batch_seen.isdisjoint(row):
                batch_seen.update(row)
            else:
                duplicate[i] = True
        return duplicate, keys

    def keep(self, keys: np.ndarray) -> None:
        """Remember the band keys of the examples that were kept."""
        self.store.add(keys.ravel())
