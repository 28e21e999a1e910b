"""Dedup structures: a sorted key store, MinHash signatures, LSH bands tuned to a threshold, and the threshold
meaning what it says."""

import random

import numpy as np

from forge.domain import dedup


def test_the_key_store_remembers_keys_across_batches():
    store = dedup.KeyStore()
    store.add(np.array([5, 3, 9, 3], dtype=np.uint64))
    store.add(np.array([1, 2**64 - 1], dtype=np.uint64))
    probe = np.array([3, 4, 9, 1, 2**64 - 1, 0], dtype=np.uint64)
    assert store.contains(probe).tolist() == [True, False, True, True, True, False]
    assert len(store) == 5 and store.nbytes == 40


def test_lsh_bands_move_with_the_threshold():
    strict, loose = dedup.lsh_params(0.95), dedup.lsh_params(0.5)
    assert strict[1] > loose[1]  # more rows per band: only very similar texts collide
    assert strict[0] * strict[1] <= dedup.NUM_PERM and loose[0] * loose[1] <= dedup.NUM_PERM


def _text(rng, words=150):
    return " ".join(f"w{rng.randrange(5000)}" for _ in range(words))


def test_near_duplicates_are_caught_within_and_across_batches_and_distinct_texts_are_not():
    rng = random.Random(3)
    originals = [_text(rng) for _ in range(300)]
    edited = []
    for text in originals[:100]:
        words = text.split()
        words[rng.randrange(len(words))] = "changed"
        edited.append(" ".join(words))
    near = dedup.NearDuplicates(0.8)
    checked = near.check([t.encode() for t in originals + edited[:50]])
    assert not checked.duplicate[:300].any() and checked.duplicate[300:].all()
    near.keep(checked)
    later = near.check([t.encode() for t in edited[50:]] + [_text(rng).encode() for _ in range(50)]).duplicate
    assert later[:50].all() and not later[50:].any()


def _jaccard(a: bytes, b: bytes) -> float:
    """The exact similarity the signatures estimate: Jaccard over the texts' 5-byte shingles."""
    x, y = ({t[i:i + dedup.SHINGLE_BYTES] for i in range(len(t) - dedup.SHINGLE_BYTES + 1)} for t in (a, b))
    return len(x & y) / len(x | y)


def test_pairs_well_above_the_threshold_are_duplicates_and_pairs_well_below_are_kept():
    rng = random.Random(5)
    originals, variants = [], []
    for _ in range(800):
        words = _text(rng, rng.randint(60, 250)).split()
        originals.append(" ".join(words).encode())
        for _ in range(rng.randint(0, len(words) // 6)):
            words[rng.randrange(len(words))] = f"w{rng.randrange(5000)}"
        variants.append(" ".join(words).encode())
    near = dedup.NearDuplicates(0.85)
    near.keep(near.check(originals))
    flagged = near.check(variants).duplicate
    similarity = [_jaccard(a, b) for a, b in zip(originals, variants)]
    above = [bool(f) for f, s in zip(flagged, similarity) if s >= 0.92]
    below = [bool(f) for f, s in zip(flagged, similarity) if s <= 0.75]
    assert len(above) > 100 and len(below) > 100
    # LSH bands alone (tuned to 0.85, no signature check) missed 10 of these 185 pairs above 0.92.
    assert sum(above) >= 0.98 * len(above), f"{len(above) - sum(above)} of {len(above)} similar pairs missed"
    assert sum(below) <= 0.02 * len(below), f"{sum(below)} of {len(below)} dissimilar pairs dropped"


def test_near_duplicate_memory_is_the_fingerprint_and_band_index_of_kept_examples():
    rng = random.Random(8)
    near = dedup.NearDuplicates(0.85)
    texts = [_text(rng).encode() for _ in range(200)]
    near.keep(near.check(texts + texts + texts[:100]))  # the 300 copies are duplicates: they take no memory
    assert near.kept == 200
    bitmap = 1 << (dedup.BandIndex.BITS - 3)  # fixed: the band keys' top bits, to skip searching for absent keys
    assert near.nbytes == 200 * (2 * dedup.NUM_PERM + 12 * near.bands) + bitmap


def test_signatures_of_equal_texts_are_equal_and_short_texts_get_full_signatures():
    sig = dedup.signatures([b"same text here", b"same text here", b"x"])
    assert (sig[0] == sig[1]).all()
    assert (sig != np.uint64(2**64 - 1)).all()


def test_the_band_index_finds_every_row_stored_under_a_key_across_merged_runs():
    rng = np.random.default_rng(4)
    index, stored = dedup.BandIndex(), {}
    for batch in range(40):
        keys = rng.integers(0, 300, size=int(rng.integers(1, 60))).astype(np.uint64)
        rows = np.arange(batch * 100, batch * 100 + keys.size, dtype=np.int32)
        index.add(keys, rows)
        for key, row in zip(keys.tolist(), rows.tolist()):
            stored.setdefault(key, []).append(row)
    assert len(index.runs) < 8  # merged as it grew, not one run per batch
    queries = np.array([7, 299, 1000, 7], dtype=np.uint64)
    query, rows = index.lookup(queries, limit=10_000)
    for i, key in enumerate(queries.tolist()):
        assert sorted(rows[query == i].tolist()) == sorted(stored.get(key, []))
