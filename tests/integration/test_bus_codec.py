"""The bus codec without a server: splitting stays within budget and round-trips exactly."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pointillist.core.bus import (
    SeqTracker,
    particles_to_proto,
    parts_complete,
    validate_run_id,
)
from pointillist.core.bus.codec import (
    assemble_tiles,
    batch_columns,
    frames_from_proto,
    message_type,
    particles_from_proto,
    split_frames,
    split_localizations,
    split_particles,
    table_columns,
    table_from_batch,
    validate,
)
from pointillist.core.bus.connection import InFlight
from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.v1 import frames_pb2, run_pb2, table_pb2


def locs(n: int) -> LocalizationTable:
    rng = np.random.default_rng(n)
    return LocalizationTable(
        {
            "x": rng.uniform(0, 1e4, n),
            "y": rng.uniform(0, 1e4, n),
            "photons": rng.uniform(100, 1e4, n),
            "frame": np.arange(n),
        }
    )


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 5000), budget=st.integers(1200, 40_000))
def test_localization_parts_fit_the_budget_and_rejoin(n: int, budget: int) -> None:
    table = locs(n)
    pieces = list(split_localizations(table_columns(table), n, budget, run_id="r", seq=3))
    assert all(p.message.ByteSize() <= budget for p in pieces)
    assert [(p.part, p.part_count) for p in pieces] == [
        (i, len(pieces)) for i in range(len(pieces))
    ]
    assert sum(p.items for p in pieces) == n
    joined = LocalizationTable.concat(LocalizationTable.from_proto(p.message) for p in pieces)
    for c in joined:
        np.testing.assert_array_equal(joined[c], table[c])


def test_split_keeps_units_of_proto_columns() -> None:
    msg = table_pb2.LocalizationBatch(run_id="r", n_rows=2)
    msg.columns.add(name="x", dtype=table_pb2.DTYPE_FLOAT32, data=b"\0" * 8, unit="nm")
    msg.columns.add(name="y", dtype=table_pb2.DTYPE_FLOAT32, data=b"\0" * 8, unit="nm")
    msg.columns.add(name="snr", dtype=table_pb2.DTYPE_FLOAT64, data=b"\0" * 16, unit="dB")
    (piece,) = split_localizations(batch_columns(msg.columns, 2), 2, 4096, run_id="r", seq=0)
    assert [c.unit for c in piece.message.columns] == ["nm", "nm", "dB"]
    msg.n_rows = 3
    with pytest.raises(InvalidInput, match="8 bytes for 3 rows"):
        batch_columns(msg.columns, 3)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 300),
    w=st.integers(1, 300),
    n=st.integers(1, 4),
    budget=st.integers(2000, 60_000),
)
def test_frames_split_or_tile_and_reassemble_bit_exact(h: int, w: int, n: int, budget: int) -> None:
    if w * 2 + 200 > budget:
        return
    frames = np.random.default_rng(h * w).integers(0, 2**16, (n, h, w), dtype=np.uint16)
    pieces = list(split_frames(frames, budget, run_id="r", seq=1, first_frame=10, tile_stream="T"))
    out = []
    for p in pieces:
        assert p.message.ByteSize() <= budget
        if p.tiles:
            assert all(t.ByteSize() <= budget for t in p.tiles)
            p.message.tile_refs.extend(range(len(p.tiles)))
            whole = assemble_tiles(p.message, p.tiles)
        else:
            whole = p.message
        assert whole.first_frame == 10 + sum(len(f) for f in out)
        out.append(frames_from_proto(whole))
    np.testing.assert_array_equal(np.concatenate(out), frames)


def test_tiles_out_of_place_are_rejected() -> None:
    frame = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    (piece,) = split_frames(frame, 3000, run_id="r", seq=0, tile_stream="T")
    head, tiles = piece.message, piece.tiles
    head.tile_refs.extend(range(len(tiles)))
    with pytest.raises(InvalidInput, match="out of place"):
        assemble_tiles(head, [tiles[1], tiles[0], *tiles[2:]])
    with pytest.raises(InvalidInput, match="tiles for"):
        assemble_tiles(head, tiles[:-1])
    tiles[-1].data = tiles[-1].data[:-2]
    with pytest.raises(InvalidInput, match="bytes for"):
        assemble_tiles(head, tiles)


def test_particles_too_large_to_keep_whole_are_split_by_rows() -> None:
    table = locs(3000).with_columns(particle=np.zeros(3000, dtype="i4"))  # one huge particle
    truth = {"particle": np.array([0], dtype="i4"), "radius_nm": np.array([50.0])}
    pieces = list(split_particles(table, truth, 8000, run_id="r", seq=0))
    assert len(pieces) > 2 and all(p.message.ByteSize() <= 8000 for p in pieces)
    parts = [particles_from_proto(p.message) for p in pieces]
    joined = LocalizationTable.concat(t for t, _ in parts if len(t))
    np.testing.assert_array_equal(joined["x"], table["x"])
    assert sum(len(tr.get("particle", [])) for _, tr in parts) == 1


def test_truth_needs_a_particle_column() -> None:
    with pytest.raises(InvalidInput, match="'particle' column"):
        list(split_particles(locs(3), {"radius_nm": np.ones(2)}, 8000, run_id="r", seq=0))


def test_validation_names_the_problem() -> None:
    bad = frames_pb2.FrameBatch(run_id="r", n_frames=1, height=2, width=2, dtype=5, data=b"\0" * 6)
    with pytest.raises(InvalidInput, match="6 bytes, expected 8"):
        validate(bad, "r")
    with pytest.raises(InvalidInput, match="does not match subject run"):
        validate(bad, "other")
    with pytest.raises(InvalidInput, match="unspecified"):
        validate(run_pb2.Event(run_id="r"), "r")
    assert message_type("events", "pointillist.v1.RunStatus") is run_pb2.RunStatus
    assert message_type("locs", None) is table_pb2.LocalizationBatch
    with pytest.raises(InvalidInput, match="not allowed"):
        message_type("frames", "pointillist.v1.Event")


@pytest.mark.parametrize("bad", ["", "a.b", "a b", "*", ">", "x" * 129, "é"])
def test_run_ids_must_be_safe_subject_tokens(bad: str) -> None:
    with pytest.raises(InvalidInput, match="invalid run id"):
        validate_run_id(bad)
    assert validate_run_id("run_2024-01") == "run_2024-01"


def test_hierarchical_parts_complete() -> None:
    assert parts_complete({(0,): (1,)})
    assert not parts_complete({(0,): (2,)})
    # outputs derived from input parts 0 and 1 of 2; part 1 was split in 3
    leaves = {(0, 0): (2, 1), (1, 0): (2, 3), (1, 1): (2, 3)}
    assert not parts_complete(leaves)
    assert parts_complete({**leaves, (1, 2): (2, 3)})
    assert not parts_complete({(0, 0): (2, 1), (1, 0): (3, 1)})  # counts disagree


def test_seq_tracker_watermark_gaps_and_missing() -> None:
    t = SeqTracker()
    t.add(0)
    t.add(2, (0,), (2,))
    t.add(3)
    assert t.gaps == 1 and t.watermark == 0 and t.missing(3) == [1, 2]
    t.add(2, (1,), (2,))
    t.add(1)
    assert t.complete_through(3) and t.missing(3) == []
    t.add(1)  # a repeat changes nothing
    assert t.watermark == 3 and t.gaps == 1


async def test_in_flight_window_bounds_bytes_and_count() -> None:
    window = InFlight(max_count=3, max_bytes=100)
    await window.acquire(60)
    await window.acquire(40)
    blocked = asyncio.ensure_future(window.acquire(10))  # bytes full
    later = asyncio.ensure_future(window.acquire(1))  # waits its turn (FIFO)
    await asyncio.sleep(0)
    assert not blocked.done() and not later.done()
    window.release(60)
    await asyncio.sleep(0)
    assert blocked.done() and later.done() and window.count == 3
    cancelled = asyncio.ensure_future(window.acquire(1))  # count full
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    for size in (40, 10, 1):
        window.release(size)
    assert (window.count, window.bytes) == (0, 0)
    await window.acquire(10_000)  # alone, a message larger than the window goes through


def test_particle_sets_keep_non_finite_coordinates_for_the_consumer_to_skip() -> None:
    """One particle's NaN must not cost the whole set; plain locs batches still refuse it."""
    table = LocalizationTable(
        {"x": [1.0, np.nan, 3.0], "y": [1.0, 2.0, 3.0], "particle": [0, 1, 1]},
        check_finite=False,
    )
    got, _ = particles_from_proto(particles_to_proto(table, run_id="r"))
    assert np.isnan(got["x"][1]) and len(got) == 3
    with pytest.raises(InvalidInput, match="finite"):
        table_from_batch(table.to_proto("r", 0))
