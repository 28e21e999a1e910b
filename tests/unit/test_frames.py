"""Frames, the map phase's output: read back as written (data only), and parts merged into one stream by key."""

import io

import numpy as np
import pytest

from forge.curation.frames import Frame, concat, empty, merge, read_frames


def frame(keys: list[int], rejects: list[int] = (), near: bool = True, read: int = 0) -> Frame:
    n = len(keys)
    f = Frame(*empty((4, 2) if near else None))
    f = concat([f, Frame(
        np.array([[0, k] for k in keys], dtype=np.uint64).reshape(n, 2), np.array(keys, dtype=np.uint64) * 7,
        np.ones(n, dtype=bool), [f"line {k}\n".encode() for k in keys], [f',"line":{k}'.encode() for k in keys],
        np.array([k % 2 for k in keys], dtype=np.uint8), np.array(keys, dtype=np.int64) + 10,
        np.ones((n, 5), dtype=np.int64), np.ones((n, 5), dtype=np.int32), np.zeros(n, dtype=bool),
        np.zeros(n, dtype=bool), np.full((n, 4), 3, dtype=np.uint16) if near else None,
        np.full((n, 2), 9, dtype=np.uint64) if near else None, {0: {"email": 1}} if n else {})])
    f.reject_keys = np.array([[0, k] for k in rejects], dtype=np.uint64).reshape(len(rejects), 2)
    f.reject_lines = [f"reject {k}\n".encode() for k in rejects]
    f.read, f.dropped = len(keys) + len(rejects) + read, {"too_short": len(rejects)} if rejects else {}
    return f


@pytest.mark.parametrize("near", [True, False])
def test_a_frame_reads_back_exactly_as_it_was_written(near):
    original = frame([3, 5, 8], rejects=[4, 9], near=near)
    out = io.BytesIO()
    original.write(out)
    original.write(out)
    back = list(read_frames(io.BytesIO(out.getvalue())))
    assert len(back) == 2
    for f in back:
        assert f.lines == original.lines and f.who == original.who and f.reject_lines == original.reject_lines
        assert f.pii == {0: {"email": 1}} and (f.read, f.dropped) == (5, {"too_short": 2})
        for name in ("keys", "exact", "ok", "split", "tokens", "role_tokens", "reject_keys"):
            assert np.array_equal(getattr(f, name), getattr(original, name))
        assert (f.prints is None) == (not near) and (not near or np.array_equal(f.bands, original.bands))


def test_a_part_cut_short_is_refused_rather_than_read_as_fewer_traces():
    out = io.BytesIO()
    frame([1, 2]).write(out)
    with pytest.raises(ValueError, match="cut short"):
        list(read_frames(io.BytesIO(out.getvalue()[:-3])))


def test_parts_interleaved_in_time_merge_into_one_stream_in_key_order_with_every_item_once():
    parts = [[frame([1, 4]), frame([9, 12], rejects=[10])], [frame([2, 3], rejects=[5]), frame([20])],
             [frame([], rejects=[7]), frame([8, 11]), frame([], read=2)]]  # the last: blank lines only
    merged = list(merge([iter(p) for p in parts]))
    keys = [int(k) for f in merged for k in f.keys[:, 1]]
    rejects = [int(k) for f in merged for k in f.reject_keys[:, 1]]
    assert keys == [1, 2, 3, 4, 8, 9, 11, 12, 20] and rejects == [5, 7, 10]
    assert [line for f in merged for line in f.lines] == [f"line {k}\n".encode() for k in keys]
    assert sum(f.read for f in merged) == 14 and sum(f.dropped.get("too_short", 0) for f in merged) == 3
