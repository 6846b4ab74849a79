import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.localizer.window import FrameWindow


def _movie(n, h=4, w=5):
    return np.arange(n, dtype=np.float32)[:, None, None] * np.ones((n, h, w), np.float32)


def _frame_ids(chunk):
    return chunk.padded[:, 0, 0].astype(int).tolist()


def test_batches_give_the_same_context_as_the_whole_movie():
    movie = _movie(23)
    window = FrameWindow(context=1)
    chunks = []
    for start in range(0, 23, 5):
        chunks += window.push(movie[start : start + 5], start)
    chunks += window.flush()
    assert [c.first_frame for c in chunks] == [0, 4, 9, 14, 19, 22]
    assert sum(c.n_frames for c in chunks) == 23
    # every frame sees its true neighbours; the movie ends are replicated
    assert _frame_ids(chunks[0]) == [0, 0, 1, 2, 3, 4]
    assert _frame_ids(chunks[1]) == [3, 4, 5, 6, 7, 8, 9]
    assert _frame_ids(chunks[-2]) == [18, 19, 20, 21, 22]
    assert _frame_ids(chunks[-1]) == [21, 22, 22]
    np.testing.assert_array_equal(np.concatenate([c.frames for c in chunks]), movie)


def test_gap_in_frame_numbers_flushes_with_replicated_edges():
    window = FrameWindow(context=1)
    assert window.push(_movie(3), 0)[0].n_frames == 2
    chunks = window.push(_movie(3) + 10, 10)  # frames 10..12, frame 3..9 never came
    assert _frame_ids(chunks[0]) == [1, 2, 2]  # frame 2 flushed without a real successor
    assert chunks[1].first_frame == 10 and _frame_ids(chunks[1]) == [10, 10, 11, 12]
    assert window.held_first_frame == 12


def test_single_frame_batches_and_context_two():
    window = FrameWindow(context=2)
    movie = _movie(6)
    chunks = []
    for i in range(6):
        chunks += window.push(movie[i : i + 1], i)
    chunks += window.flush()
    assert [c.first_frame for c in chunks] == [0, 1, 2, 3, 4]
    assert _frame_ids(chunks[0]) == [0, 0, 0, 1, 2]
    assert _frame_ids(chunks[-1]) == [2, 3, 4, 5, 5, 5]


def test_no_context_releases_at_once():
    window = FrameWindow(context=0)
    (chunk,) = window.push(_movie(4), 0)
    assert chunk.n_frames == 4 and window.flush() == []


def test_bad_input():
    with pytest.raises(InvalidInput):
        FrameWindow(context=-1)
    with pytest.raises(InvalidInput):
        FrameWindow().push(np.zeros((0, 3, 3)), 0)


def test_flush_keeping_context_for_a_stream_that_cannot_wait():
    window = FrameWindow(context=1)
    movie = _movie(8)
    first = window.push(movie[:4], 0) + window.flush(keep_context=True)
    second = window.push(movie[4:], 4) + window.flush(keep_context=True)
    assert _frame_ids(first[-1]) == [2, 3, 3]  # no successor yet: replicated
    assert _frame_ids(second[0]) == [3, 4, 5, 6, 7]  # but the past context carries over
