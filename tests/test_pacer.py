"""The hand-written Pacer (rehab_bot.ratelimit) on its own: rate, priority, per-chat spacing, 429 blocks.

Real asyncio time at high rates (tens of milliseconds), with generous bounds; then on a ScaledTime,
as the end-to-end tests run it.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time

import pytest

from rehab_bot.clock import ScaledTime
from rehab_bot.ratelimit import BULK, CHAT_MARGIN, INTERACTIVE, Pacer


async def _stamp(pacer: Pacer, chat_id: int | None, priority: int, out: list[tuple[str, float]], name: str) -> None:
    await pacer.acquire(chat_id, priority)
    out.append((name, time.monotonic()))


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)


async def test_requests_leave_no_faster_than_the_rate() -> None:
    pacer = Pacer(50)  # one every 20 ms
    out: list[tuple[str, float]] = []
    start = time.monotonic()
    try:
        await asyncio.gather(*(_stamp(pacer, None, BULK, out, str(n)) for n in range(6)))
    finally:
        await pacer.close()
    times = [at for _, at in out]
    assert times[-1] - start >= 5 * 0.02 * 0.9
    # The k-th release is never earlier than k intervals after the first (late ones may catch up).
    assert all(times[k] - times[0] >= k * 0.02 - 0.002 for k in range(6)), [round(t - times[0], 3) for t in times]


async def test_a_patients_own_tap_overtakes_a_queued_reminder_burst() -> None:
    pacer = Pacer(10)  # one every 100 ms
    out: list[tuple[str, float]] = []
    try:
        burst = [asyncio.create_task(_stamp(pacer, None, BULK, out, f"bulk{n}")) for n in range(5)]
        await asyncio.sleep(0.01)  # the burst is queued, its first request has left
        tap = asyncio.create_task(_stamp(pacer, None, INTERACTIVE, out, "tap"))
        await asyncio.gather(*burst, tap)
    finally:
        await pacer.close()
    order = [name for name, _ in out]
    assert order[0] == "bulk0"
    assert order.index("tap") == 1, order


async def test_one_chat_is_spaced_by_its_interval_and_other_chats_are_not() -> None:
    pacer = Pacer(1000, per_chat_interval=0.3)
    out: list[tuple[str, float]] = []
    try:
        await asyncio.gather(
            _stamp(pacer, 1, BULK, out, "a1"), _stamp(pacer, 1, BULK, out, "a2"), _stamp(pacer, 2, BULK, out, "b1")
        )
    finally:
        await pacer.close()
    at = dict(out)
    assert at["a2"] - at["a1"] >= (0.3 + CHAT_MARGIN) * 0.9
    assert at["b1"] - at["a1"] < 0.15
    assert pacer.chat_ready_in(1) > 0 and pacer.chat_ready_in(3) == 0


async def test_a_429_blocks_its_chat_or_everything_for_retry_after() -> None:
    pacer = Pacer(1000, per_chat_interval=0)
    try:
        pacer.block_chat(7, 0.3)
        assert 0.2 < pacer.chat_ready_in(7) <= 0.3 and pacer.chat_ready_in(8) == 0
        start = time.monotonic()
        await pacer.acquire(8)
        assert time.monotonic() - start < 0.15, "another chat is not held"
        await pacer.acquire(7)
        assert time.monotonic() - start >= 0.27
        pacer.block_all(0.3)
        start = time.monotonic()
        await pacer.acquire(None)
        assert time.monotonic() - start >= 0.27
    finally:
        await pacer.close()


def test_scaled_time_must_run_forwards() -> None:
    with pytest.raises(ValueError, match="positive"):
        ScaledTime(0)


async def test_scaled_time_runs_and_sleeps_scale_times_as_fast() -> None:
    # Each reading is bracketed by real readings, so a pause of this process between two of them
    # (a busy machine) cannot fail the test: the bounds are exact.
    before = time.monotonic()
    fast = ScaledTime(50)  # its origin is a real instant between `before` and `first`
    first = fast.monotonic()
    after = time.monotonic()
    assert before <= first <= before + (after - before) * 50, "it reads like time.monotonic() at first"

    origin = time.monotonic()
    fast = ScaledTime(50, origin=origin)
    await fast.sleep(2.0)  # 40 ms of real time
    low = time.monotonic()
    scaled = fast.monotonic() - origin
    high = time.monotonic() - origin
    assert scaled >= 2.0 * 0.95
    assert (low - origin) * 50 <= scaled <= high * 50, "50 scaled seconds per real second"
    assert high < 1.0, "two scaled seconds are not two real ones"
    low = time.monotonic()
    same = ScaledTime(1).monotonic()
    assert low <= same <= time.monotonic(), "scale 1 is real time"


async def test_on_scaled_time_one_chat_is_spaced_a_scaled_second_apart() -> None:
    # The end-to-end tests' pacer: Telegram's one message a second per chat, 50 times as fast.
    fast = ScaledTime(50)
    pacer = Pacer(30, per_chat_interval=1.0, monotonic=fast.monotonic, sleep=fast.sleep)
    out: list[tuple[str, float]] = []

    async def stamp(name: str, chat_id: int) -> None:
        await pacer.acquire(chat_id, BULK)
        out.append((name, fast.monotonic()))

    real_start = time.monotonic()
    try:
        await asyncio.gather(stamp("a1", 1), stamp("a2", 1), stamp("a3", 1), stamp("b1", 2))
    finally:
        await pacer.close()
    real = time.monotonic() - real_start
    one = sorted(at for name, at in out if name.startswith("a"))
    assert all(b - a >= 1.0 + CHAT_MARGIN - 0.01 for a, b in itertools.pairwise(one)), one
    assert dict(out)["b1"] - one[0] < 1.0, "another chat is not held"
    assert real < 1.5, f"2.1 scaled seconds of spacing took {real:.2f} real ones"


def test_a_shared_scaled_time_reads_the_same_in_another_process() -> None:
    # CLOCK_MONOTONIC is one clock for every process of the host: a child given
    # shared() reads the clock this process reads (REHAB_BOT_TEST_PACE_CLOCK).
    fast = ScaledTime(10)
    time.sleep(0.2)  # now two scaled seconds ahead of time.monotonic(): a child reading real time falls behind
    code = "import sys; from rehab_bot.clock import ScaledTime; print(ScaledTime.from_shared(sys.argv[1]).monotonic())"
    before = fast.monotonic()
    out = subprocess.run([sys.executable, "-c", code, fast.shared()], capture_output=True, text=True, check=True)
    after = fast.monotonic()
    child = float(out.stdout)
    assert before <= child <= after, (before, child, after)
    again = ScaledTime.from_shared(fast.shared())
    assert again.scale == 10 and again.monotonic() == pytest.approx(fast.monotonic(), abs=0.05)


@pytest.mark.parametrize("text", ["10", "ten@1.0", "10@", "0@5.0", ""])
def test_a_shared_clock_that_is_not_scale_at_origin_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="SCALE@ORIGIN"):
        ScaledTime.from_shared(text)


async def test_the_pacer_waits_on_its_own_clock() -> None:
    # SendBudget's heartbeat waits here, so it beats as often in the pacer's time as JOIN_WAIT lasts.
    fast = ScaledTime(50)
    pacer = Pacer(30, monotonic=fast.monotonic, sleep=fast.sleep)
    real_start, start = time.monotonic(), fast.monotonic()
    await pacer.wait(1.0)
    assert fast.monotonic() - start >= 0.95
    assert time.monotonic() - real_start < 0.5
