"""The inbound limit and the update processor: concurrent across chats, ordered within one, floods dropped."""

from __future__ import annotations

import asyncio

import pytest
from telegram import Chat, Message, Update, User

from rehab_bot.bot.updates import ChatUpdateProcessor
from rehab_bot.inbound import InboundLimit, Verdict
from rehab_bot.metrics import Metrics
from rehab_bot.ratelimit import Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_sender_within_the_limit_is_always_handled() -> None:
    clock = Clock()
    limit = InboundLimit(5, 10.0, monotonic=clock)
    for _ in range(20):
        assert limit.check(1) is Verdict.HANDLE
        clock.now += 2.0  # 5 per 10 s exactly: never over


def test_over_the_limit_one_notice_then_drops_until_the_rate_falls() -> None:
    clock = Clock()
    limit = InboundLimit(3, 10.0, monotonic=clock)
    verdicts = []
    for _ in range(8):
        verdicts.append(limit.check(1))
        clock.now += 0.1
    assert verdicts == [Verdict.HANDLE] * 3 + [Verdict.NOTICE] + [Verdict.DROP] * 4
    assert limit.check(2) is Verdict.HANDLE, "another sender is not affected"
    clock.now += 10.0  # quiet for a window
    assert limit.check(1) is Verdict.HANDLE
    for _ in range(2):
        assert limit.check(1) is Verdict.HANDLE
    assert limit.check(1) is Verdict.NOTICE, "a new flood gets one notice again"


def test_a_crisis_message_over_the_limit_is_handled_once_per_window() -> None:
    clock = Clock()
    limit = InboundLimit(2, 10.0, monotonic=clock)
    assert [limit.check(1), limit.check(1), limit.check(1)] == [Verdict.HANDLE, Verdict.HANDLE, Verdict.NOTICE]
    assert limit.check(1, crisis=lambda: True) is Verdict.CRISIS
    assert limit.check(1, crisis=lambda: True) is Verdict.DROP
    for _ in range(10):  # still flooding, one a second
        clock.now += 1.0
        assert limit.check(1, crisis=lambda: clock.now < 1009) is Verdict.DROP
    clock.now += 0.5  # a window after the first crisis message
    assert limit.check(1, crisis=lambda: True) is Verdict.CRISIS


def test_idle_senders_are_forgotten() -> None:
    clock = Clock()
    limit = InboundLimit(3, 10.0, monotonic=clock)
    for sender in range(1000):
        limit.check(sender)
    assert limit.tracked() == 1000
    clock.now += 11.0
    limit.check(5000)
    assert limit.tracked() == 1


def test_limit_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        InboundLimit(0, 10.0)
    with pytest.raises(ValueError):
        InboundLimit(5, 0)


# --- the processor ---------------------------------------------------------------------------


def update(update_id: int, user_id: int, text: str = "hi") -> Update:
    user = User(user_id, "Pat", is_bot=False)
    chat = Chat(user_id, Chat.PRIVATE)
    message = Message(update_id, date=None, chat=chat, from_user=user, text=text)  # type: ignore[arg-type]
    return Update(update_id, message=message)


async def test_chats_run_concurrently_and_one_chat_in_order() -> None:
    processor = ChatUpdateProcessor(Metrics(), max_concurrent=8)
    log: list[tuple[str, int, int]] = []
    running: dict[int, int] = {}
    overlap = 0

    async def handle(chat: int, n: int) -> None:
        nonlocal overlap
        running[chat] = running.get(chat, 0) + 1
        assert running[chat] == 1, "two updates of one chat at once"
        overlap = max(overlap, sum(1 for v in running.values() if v))
        log.append(("start", chat, n))
        await asyncio.sleep(0.01 * (3 - n))  # later updates are quicker: order must still hold
        log.append(("end", chat, n))
        running[chat] -= 1

    tasks = [
        asyncio.create_task(processor.process_update(update(chat * 10 + n, chat), handle(chat, n)))
        for n in range(3)
        for chat in range(1, 6)
    ]
    await asyncio.gather(*tasks)
    for chat in range(1, 6):
        assert [n for kind, c, n in log if c == chat and kind == "start"] == [0, 1, 2]
    assert overlap == 5, "different chats were handled at the same time"
    assert processor.chats_tracked() == 0, "nothing is kept for idle chats"


async def test_the_global_cap_bounds_updates_handled_at_once() -> None:
    processor = ChatUpdateProcessor(Metrics(), max_concurrent=3)
    now = 0
    peak = 0

    async def handle() -> None:
        nonlocal now, peak
        now += 1
        peak = max(peak, now)
        await asyncio.sleep(0.01)
        now -= 1

    await asyncio.gather(*(processor.process_update(update(i, 100 + i), handle()) for i in range(20)))
    assert peak == 3


async def test_a_reply_waiting_for_its_chats_pacing_holds_no_slot() -> None:
    # One slot only. Chat 1 has just been sent a message, so its reply waits
    # about a second for its turn; chat 2's update must not wait behind it.
    processor = ChatUpdateProcessor(Metrics(), max_concurrent=1)
    pacer = Pacer(1000.0, per_chat_interval=1.0)
    await pacer.acquire(1)
    done: dict[int, float] = {}
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def reply(chat: int) -> None:
        await pacer.acquire(chat)
        done[chat] = loop.time() - started

    first = asyncio.create_task(processor.process_update(update(1, 1), reply(1)))
    await asyncio.sleep(0.05)
    await processor.process_update(update(2, 2), reply(2))
    assert done[2] < 0.3, f"chat 2 waited {done[2]:.2f}s behind chat 1's pacing"
    await first
    assert done[1] >= 0.9
    await pacer.close()


async def test_a_flood_is_dropped_before_any_handler_runs_with_one_notice() -> None:
    metrics = Metrics()
    notices: list[int] = []

    async def notice(upd: Update) -> None:
        assert upd.effective_chat is not None
        notices.append(upd.effective_chat.id)

    processor = ChatUpdateProcessor(
        metrics, limit=InboundLimit(20, 10.0), notice=notice, is_crisis=lambda text: "end it all" in text
    )
    handled: list[str] = []

    async def handle(text: str) -> None:
        handled.append(text)

    texts = [f"spam {i}" for i in range(300)]
    texts[150] = "I want to end it all"
    texts[151] = "I want to end it all"
    await asyncio.gather(*(processor.process_update(update(i, 7, text), handle(text)) for i, text in enumerate(texts)))
    # The first 20 in full, the first crisis message over the limit too; nothing else.
    assert handled == [*texts[:20], texts[150]]
    assert notices == [7]
    assert metrics.updates_dropped.labels(reason="over_limit")._value.get() == 278
    assert metrics.updates_dropped.labels(reason="crisis_repeat")._value.get() == 1
    assert metrics.updates_crisis_over_limit._value.get() == 1
    assert _labels(metrics) == {"reason"}, "no user or chat id in the metrics' labels"
    # Another patient is not affected.
    await processor.process_update(update(1000, 8, "/help"), handle("/help"))
    assert handled[-1] == "/help"


def _labels(metrics: Metrics) -> set[str]:
    names: set[str] = set()
    for family in metrics.registry.collect():
        if "updates" in family.name:
            for sample in family.samples:
                names |= set(sample.labels)
    return names


async def test_a_task_started_by_a_handler_never_takes_its_slot() -> None:
    # A job or task started from a handler inherits the context that names
    # the update's slot; if it waited for pacing after the update ended, it
    # must not take a slot for good (the cap would shrink by one each time).
    processor = ChatUpdateProcessor(Metrics(), max_concurrent=1)
    pacer = Pacer(1000.0, per_chat_interval=0.2)
    spawned: list[asyncio.Task[None]] = []

    async def handle() -> None:
        await pacer.acquire(5)

        async def later() -> None:
            await asyncio.sleep(0.05)
            await pacer.acquire(5)  # waits for chat 5's turn after the update is done

        spawned.append(asyncio.create_task(later()))

    await processor.process_update(update(1, 5), handle())
    await spawned[0]
    ran: list[int] = []

    async def other() -> None:
        ran.append(1)

    await asyncio.wait_for(processor.process_update(update(2, 6), other()), 1.0)
    assert ran == [1], "the only slot is free again"
    await pacer.close()
