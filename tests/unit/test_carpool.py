"""Sharing a window between requests: who owns which segment, and when a piece must be read alone."""

from __future__ import annotations

import asyncio

import numpy as np

from app.carpool import GAP_S, Carpool, assign
from models.interface import DecodeOptions, Piece, Reading, Segment

SPANS = [(0.0, 3.0), (4.0, 6.5), (7.5, 12.0)]


def seg(start: float, end: float, text: str = " words") -> Segment:
    return Segment(start=start, end=end, text=text)


def test_each_segment_goes_to_the_piece_holding_it() -> None:
    owned, alone = assign([seg(0.0, 1.5), seg(1.5, 3.2), seg(4.0, 6.4), seg(7.6, 9.0), seg(9.0, 12.1)], SPANS)
    assert [len(o) for o in owned] == [2, 1, 2] and alone == set()


def test_a_straddling_segment_or_a_piece_left_empty_is_read_alone() -> None:
    _, alone = assign([seg(0.0, 2.9), seg(2.5, 5.0), seg(7.6, 11.0)], SPANS)
    assert alone == {0, 1}
    # Nothing read in the last piece: it could have been skipped, so it is read again alone.
    _, alone = assign([seg(0.0, 2.9), seg(4.1, 6.0)], SPANS)
    assert alone == {2}


def test_whole_second_timestamps_a_little_into_the_next_piece_are_not_a_straddle() -> None:
    # As read on telephone prompts: segments stamped in whole seconds, ending 0.06 s into the next piece.
    spans = [(0.0, 3.94), (4.94, 10.88), (11.88, 15.56)]
    owned, alone = assign([seg(0.0, 5.0), seg(5.0, 12.0), seg(12.0, 16.0)], spans)
    assert [len(o) for o in owned] == [1, 1, 1] and alone == set()


def piece(seconds: float, offset: float = 0.0) -> Piece:
    return Piece(0, np.ones(int(seconds * 16000), dtype=np.float32), 16000, offset, True)


async def test_riders_share_one_read_and_get_their_own_segments_back() -> None:
    reads: list[float] = []

    async def read(p: Piece, options: DecodeOptions, tag: str) -> Reading:
        # One segment per piece-sized stretch, as a model with honest timestamps would give.
        reads.append(p.duration)
        segments, t = [], 0.0
        for length in (2.0, 3.0, 4.0) if p.duration > 5 else (p.duration,):
            segments.append(seg(t, t + length, f" {length:g} s"))
            t += length + GAP_S
        return Reading(segments=segments, output_tokens=9)

    pool = Carpool(read, window_s=30.0, max_piece_s=10.0, wait_s=0.05)
    readings = await asyncio.gather(*(pool.read(piece(s, offset=100.0), DecodeOptions()) for s in (2.0, 3.0, 4.0)))
    assert reads == [2.0 + 3.0 + 4.0 + 2 * GAP_S]
    assert [[(s.start, s.end, s.text) for s in r.segments] for r in readings] == [
        [(100.0, 102.0, " 2 s")],
        [(100.0, 103.0, " 3 s")],
        [(100.0, 104.0, " 4 s")],
    ]
    assert sum(r.output_tokens for r in readings) == 9


class WholeReader:
    """Reads any piece as one segment over all of it, and notes each piece's length."""

    def __init__(self) -> None:
        self.reads: list[float] = []

    async def __call__(self, p: Piece, options: DecodeOptions, tag: str) -> Reading:
        self.reads.append(p.duration)
        return Reading(segments=[seg(0.0, p.duration)])


async def test_different_options_never_share_and_a_full_window_departs() -> None:
    read = WholeReader()
    reads = read.reads
    pool = Carpool(read, window_s=10.0, max_piece_s=10.0, wait_s=0.05)
    german = DecodeOptions(language="de")
    await asyncio.gather(pool.read(piece(2.0), DecodeOptions()), pool.read(piece(2.0), german))
    assert sorted(reads) == [2.0, 2.0]
    reads.clear()
    # 4 + 1 + 4 fits in 10 s; a third 4 s piece starts a new window.
    await asyncio.gather(*(pool.read(piece(4.0), DecodeOptions()) for _ in range(3)))
    assert reads[0] == 9.0 and 4.0 in reads


async def test_a_rider_that_leaves_before_departure_leaves_no_trace() -> None:
    read = WholeReader()
    reads = read.reads
    pool = Carpool(read, window_s=30.0, max_piece_s=10.0, wait_s=0.1)
    # The one leaving is not the first aboard: riders are told apart by identity, not by value.
    staying = asyncio.ensure_future(pool.read(piece(2.0), DecodeOptions()))
    leaving = asyncio.ensure_future(pool.read(piece(5.0), DecodeOptions()))
    await asyncio.sleep(0.01)
    leaving.cancel()
    reading = await staying
    assert reads == [2.0] and reading.segments[0].end == 2.0


async def test_an_idle_engine_takes_a_lone_piece_at_once() -> None:
    read = WholeReader()
    pool = Carpool(read, window_s=30.0, max_piece_s=10.0, wait_s=5.0, busy=lambda: False)
    await asyncio.wait_for(pool.read(piece(3.0), DecodeOptions()), 0.05)
    assert read.reads == [3.0]


async def test_a_window_everyone_left_is_called_off() -> None:
    started, aborted = asyncio.Event(), asyncio.Event()

    async def slow(p: Piece, options: DecodeOptions, tag: str) -> Reading:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            aborted.set()
            raise
        return Reading()

    pool = Carpool(slow, window_s=30.0, max_piece_s=10.0, wait_s=0.01)
    riders = [asyncio.ensure_future(pool.read(piece(2.0), DecodeOptions())) for _ in range(2)]
    await asyncio.wait_for(started.wait(), 1.0)
    riders[0].cancel()
    await asyncio.sleep(0.05)
    assert not aborted.is_set()  # one rider still waits for the window
    riders[1].cancel()
    await asyncio.wait_for(aborted.wait(), 1.0)
