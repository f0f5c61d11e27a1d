"""TelegramSender's window hooks: render ahead (batch, then one by one) and settle after the window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from factories import T0

from rehab_bot.reminders import DueMessage
from rehab_bot.transport import OutgoingMessage, SentItem, TelegramSender


def due(delivery_id: int, kind: str = "session", attempts: int = 0) -> DueMessage:
    return DueMessage(
        delivery_id=delivery_id, key=f"k{delivery_id}", kind=kind, chat_id=100 + delivery_id, patient_id=1,
        staff_id=None, language="en", late=False, local_date=None, slot="09:00", payload="", body="",
        attempts=attempts, due_at=T0,
    )  # fmt: skip


async def test_prepare_renders_in_a_batch_then_in_turn_and_a_failing_render_is_left_to_send() -> None:
    calls: list[Any] = []

    async def render_many(messages: Sequence[DueMessage]) -> dict[int, OutgoingMessage | None]:
        calls.append(("batch", [m.delivery_id for m in messages]))
        return {1: OutgoingMessage("batched"), 2: None}

    async def render(message: DueMessage) -> OutgoingMessage | None:
        calls.append(("one", message.delivery_id))
        if message.delivery_id == 4:
            raise RuntimeError("content bug")
        return OutgoingMessage(f"single {message.delivery_id}")

    sender = TelegramSender(None, render, render_many=render_many)  # type: ignore[arg-type]
    await sender.prepare([due(1), due(2), due(3, "checkin"), due(4, "checkin")])
    assert calls == [("batch", [1, 2, 3, 4]), ("one", 3), ("one", 4)]
    assert sender._prepared == {(1, 0): OutgoingMessage("batched"), (2, 0): None, (3, 0): OutgoingMessage("single 3")}
    # A retry of delivery 1 is a new attempt: rendered afresh, not from what was prepared for the first.
    sender.forget([due(1), due(2), due(3, "checkin")])
    assert sender._prepared == {}


async def test_a_failing_batch_renderer_falls_back_to_one_by_one() -> None:
    async def render_many(messages: Sequence[DueMessage]) -> dict[int, OutgoingMessage | None]:
        raise RuntimeError("batch bug")

    async def render(message: DueMessage) -> OutgoingMessage | None:
        return OutgoingMessage(f"single {message.delivery_id}")

    sender = TelegramSender(None, render, render_many=render_many)  # type: ignore[arg-type]
    await sender.prepare([due(1), due(2)])
    assert sender._prepared == {(1, 0): OutgoingMessage("single 1"), (2, 0): OutgoingMessage("single 2")}


async def test_flush_settles_once_per_function_and_survives_a_failing_one() -> None:
    settled: list[list[Any]] = []

    async def good(items: list[SentItem]) -> None:
        settled.append([i.data for i in items])

    async def bad(items: list[SentItem]) -> None:
        raise RuntimeError("bookkeeping bug")

    sender = TelegramSender(None, None)  # type: ignore[arg-type]
    for n, settle in enumerate((good, bad, good, bad, good)):
        sender._unsettled.append((settle, SentItem(due(n), 500 + n, None, n)))
    await sender.flush()
    assert settled == [[0, 2, 4]]
    await sender.flush()
    assert settled == [[0, 2, 4]], "each item is settled once"
