"""The per-request stage clock: what is recorded where, how overlaps are shared out, pass kinds."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from models import stages
from models.stages import StageClock, pass_kind


@pytest.mark.parametrize(
    ("tag", "kind"),
    [
        ("d0-t0", "first"),
        ("d0-t0.5", "first"),  # a client's own temperature is still the first reading
        ("d1-t0", "tail"),
        ("d2-t0", "tail"),
        ("d0-t0.2-fb", "fallback"),
        ("d0-t0-np", "fallback"),
        ("d1-t0.4-fb-np", "fallback"),
        ("lang0", "lang"),
        ("shared", "shared"),
        ("chat", "first"),
        ("warmup", "warmup"),
        ("something", "other"),
    ],
)
def test_pass_kind_reads_the_family_tag(tag: str, kind: str) -> None:
    assert pass_kind(tag) == kind


def test_overlaps_go_to_the_more_specific_stage_and_sum_to_the_covered_time() -> None:
    clock = StageClock(started=0.0)
    clock.record("decode", 1.0, 3.0)
    clock.record("resample", 2.5, 3.0)  # inside decoding
    clock.record_pass("first", 4.0, 6.0)
    clock.record_pass("tail", 5.0, 7.0)  # overlaps the first pass: counted once
    clock.record("align", 6.5, 7.5)
    got = clock.exclusive(end=8.0)
    assert got == pytest.approx({"decode": 1.5, "resample": 0.5, "engine": 2.5, "align": 1.0})
    assert sum(got.values()) <= 8.0
    assert clock.pass_counts() == {"first": 1, "tail": 1}


def test_nothing_is_recorded_without_a_clock() -> None:
    with stages.stage("decode"), stages.engine_pass("d0-t0"):
        stages.record_bits("resample", 0.1)
    assert stages.current() is None


def test_stages_and_passes_land_in_the_current_clock() -> None:
    with stages.clocked() as clock:
        with stages.stage("vad"):
            pass
        with stages.engine_pass("d1-t0"):
            pass
        stages.record_bits("resample", 0.25)
    assert [iv.name for iv in clock.intervals] == ["vad", "engine", "resample"]
    assert clock.pass_counts() == {"tail": 1}
    assert clock.intervals[-1].seconds == pytest.approx(0.25)
    assert stages.current() is None


async def test_concurrent_tasks_and_threads_share_the_request_clock() -> None:
    async def one_pass(tag: str) -> None:
        with stages.engine_pass(tag):
            await asyncio.sleep(0)

    def in_thread() -> None:
        stages.record_bits("resample", 0.01)

    with stages.clocked() as clock:
        await asyncio.gather(one_pass("d0-t0"), one_pass("d0-t0.2-fb"), one_pass("lang0"))
        run = contextvars.copy_context().run
        await asyncio.get_running_loop().run_in_executor(None, run, in_thread)
    assert clock.pass_counts() == {"first": 1, "fallback": 1, "lang": 1}
    assert "resample" in {iv.name for iv in clock.intervals}


async def test_requests_keep_their_own_clocks() -> None:
    async def request(tag: str) -> StageClock:
        with stages.clocked() as clock:
            with stages.engine_pass(tag):
                await asyncio.sleep(0)
            return clock

    first, tail = await asyncio.gather(request("d0-t0"), request("d1-t0"))
    assert first.pass_counts() == {"first": 1}
    assert tail.pass_counts() == {"tail": 1}
