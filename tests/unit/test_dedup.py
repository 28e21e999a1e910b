"""Dedup structures: a sorted key store, MinHash signatures and LSH bands tuned to a threshold."""

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
    duplicate, keys = near.check([t.encode() for t in originals + edited[:50]])
    assert not duplicate[:300].any() and duplicate[300:].all()
    near.keep(keys[~duplicate])
    later, _ = near.check([t.encode() for t in edited[50:]] + [_text(rng).encode() for _ in range(50)])
    assert later[:50].all() and not later[50:].any()


def test_signatures_of_equal_texts_are_equal_and_short_texts_get_full_signatures():
    sig = dedup.signatures([b"same text here", b"same text here", b"x"])
    assert (sig[0] == sig[1]).all()
    assert (sig != np.uint64(2**64 - 1)).all()
