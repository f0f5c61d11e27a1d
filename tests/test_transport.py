"""TelegramSender's window hooks: render ahead (batch, then one by one) and settle after the window.

Observed through what the sender does (what it renders, sends and settles), not its private fields.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import pytest
from factories import T0
from telegram.error import NetworkError, TimedOut

from rehab_bot.reminders import BatchSender, BookkeepingFailed, DueMessage, Failed, Retry, Sent, Unreachable
from rehab_bot.transport import OutgoingMessage, SentItem, TelegramSender, _telegram_error, classify, message_body


def due(delivery_id: int, kind: str = "session", attempts: int = 0) -> DueMessage:
    return DueMessage(
        delivery_id=delivery_id, key=f"k{delivery_id}", kind=kind, chat_id=100 + delivery_id, patient_id=1,
        staff_id=None, language="en", late=False, local_date=None, slot="09:00", payload="", body="",
        attempts=attempts, due_at=T0,
    )  # fmt: skip


class FakeBot:
    """Just enough of telegram.Bot: sendMessage answers with a message id."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def send_message(self, *, chat_id: int, text: str, **_: Any) -> Any:
        self.sent.append((chat_id, text))
        return SimpleNamespace(message_id=500 + len(self.sent))


async def test_prepare_renders_in_a_batch_then_in_turn_and_a_failing_render_is_left_to_send() -> None:
    calls: list[Any] = []

    async def render_many(db: Any, messages: Sequence[DueMessage], opened: Any) -> dict[int, OutgoingMessage | None]:
        assert db == "the claim's session" and opened == {1: "opened"}
        calls.append(("batch", [m.delivery_id for m in messages]))
        return {1: OutgoingMessage("batched"), 2: None}

    async def render(message: DueMessage) -> OutgoingMessage | None:
        calls.append(("one", message.delivery_id))
        if message.delivery_id == 4:
            raise RuntimeError("content bug")
        return OutgoingMessage(f"single {message.delivery_id}")

    bot = FakeBot()
    sender = TelegramSender(bot, render, render_many=render_many)  # type: ignore[arg-type]
    window = [due(1), due(2), due(3, "checkin"), due(4, "checkin")]
    await sender.render_window("the claim's session", window, {1: "opened"})  # type: ignore[arg-type]
    assert calls == [("batch", [1, 2, 3, 4])]
    await sender.prepare(window)
    assert calls == [("batch", [1, 2, 3, 4]), ("one", 3), ("one", 4)]
    # What was prepared is sent as it is, without rendering again.
    assert isinstance(await sender.send(due(1)), Sent)
    assert await sender.send(due(2)) == Failed("nothing to send: superseded")
    assert isinstance(await sender.send(due(3, "checkin")), Sent)
    assert bot.sent == [(101, "batched"), (103, "single 3")]
    assert calls == [("batch", [1, 2, 3, 4]), ("one", 3), ("one", 4)]
    # The failed render was left to the send, which renders it (and fails) again.
    with pytest.raises(RuntimeError, match="content bug"):
        await sender.send(due(4, "checkin"))
    assert calls[-1] == ("one", 4)
    # A retry of delivery 1 is a new attempt: rendered afresh, not from what was prepared for the first.
    await sender.render_window("the claim's session", [due(1)], {1: "opened"})  # type: ignore[arg-type]
    await sender.prepare([due(1)])
    sender.forget([due(1)])
    calls.clear()
    await sender.send(due(1))
    assert calls == [("one", 1)] and bot.sent[-1] == (101, "single 1")


async def test_a_failing_batch_renderer_falls_back_to_one_by_one() -> None:
    async def render_many(db: Any, messages: Sequence[DueMessage], opened: Any) -> dict[int, OutgoingMessage | None]:
        raise RuntimeError("batch bug")

    rendered: list[int] = []

    async def render(message: DueMessage) -> OutgoingMessage | None:
        rendered.append(message.delivery_id)
        return OutgoingMessage(f"single {message.delivery_id}")

    bot = FakeBot()
    sender = TelegramSender(bot, render, render_many=render_many)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="batch bug"):  # the dispatcher takes the claim again without it
        await sender.render_window(None, [due(1), due(2)], {})  # type: ignore[arg-type]
    assert rendered == []
    await sender.prepare([due(1), due(2)])
    assert rendered == [1, 2]
    await sender.send(due(1))
    await sender.send(due(2))
    assert rendered == [1, 2], "sent as prepared"
    assert bot.sent == [(101, "single 1"), (102, "single 2")]


class FakeSession:
    """The record transaction as flush() uses it: savepoints, rolled back when the block raises."""

    def __init__(self) -> None:
        self.savepoints: list[str] = []

    def begin_nested(self) -> Any:
        session = self

        class Savepoint:
            async def __aenter__(self) -> None:
                session.savepoints.append("open")

            async def __aexit__(self, kind: Any, *_: Any) -> None:
                session.savepoints[-1] = "rolled back" if kind is not None else "released"

        return Savepoint()


async def test_flush_settles_once_per_function_and_survives_a_failing_one() -> None:
    settled: list[list[Any]] = []
    db = FakeSession()

    async def good(session: Any, items: list[SentItem]) -> None:
        assert session is db
        settled.append([(i.data, i.message_id) for i in items])

    async def bad(session: Any, items: list[SentItem]) -> None:
        raise RuntimeError("bookkeeping bug")

    messages = {n: OutgoingMessage(f"m{n}", settle=(fn, n)) for n, fn in enumerate((good, bad, good, bad, good))}

    async def render(message: DueMessage) -> OutgoingMessage | None:
        return messages[message.delivery_id]

    sender = TelegramSender(FakeBot(), render)  # type: ignore[arg-type]
    for n in messages:
        assert isinstance(await sender.send(due(n)), Sent)
    assert settled == [], "settled after the window, not per send"
    # In the recording transaction, without savepoints: a failure is raised and nothing is lost...
    with pytest.raises(BookkeepingFailed):
        await sender.flush(db)  # type: ignore[arg-type]
    assert db.savepoints == []
    settled.clear()
    # ...so that the dispatcher records again, each part in a savepoint: the failing one is undone alone.
    await sender.flush(db, isolate=True)  # type: ignore[arg-type]
    assert settled == [[(0, 501), (2, 503), (4, 505)]]
    assert db.savepoints == ["released", "rolled back"]
    await sender.flush(db, isolate=True)  # type: ignore[arg-type]
    assert len(settled) == 1, "each item is settled once"


async def test_what_bookkeeping_leaves_for_after_the_commit_runs_only_then() -> None:
    edits: list[str] = []

    async def settle(session: Any, items: list[SentItem]) -> Any:
        async def edit() -> None:
            edits.append(f"drop buttons of {len(items)}")

        return edit

    async def render(message: DueMessage) -> OutgoingMessage | None:
        return OutgoingMessage("nudge", settle=(settle, None))

    sender = TelegramSender(FakeBot(), render)  # type: ignore[arg-type]
    await sender.send(due(1))
    await sender.send(due(2))
    await sender.flush(FakeSession())  # type: ignore[arg-type]
    assert edits == [], "not inside the recording transaction"
    await sender.committed()
    await sender.committed()
    assert edits == ["drop buttons of 2"]


def test_the_dispatcher_knows_a_batch_sender_by_its_declared_protocol() -> None:
    async def render(message: DueMessage) -> OutgoingMessage | None:
        return None

    class OneByOne:
        async def send(self, message: DueMessage) -> Sent:
            return Sent(1)

    assert isinstance(TelegramSender(FakeBot(), render), BatchSender)  # type: ignore[arg-type]
    assert not isinstance(OneByOne(), BatchSender)


def test_the_lean_body_is_the_json_telegram_expects_whatever_the_labels_and_data() -> None:
    buttons = [[('✅ 100% "done"', "s:7:d"), ("%s \\ {x}", "s:7:p")], [("⏭ Skip", 's:7:"k')]]
    for _ in range(2):  # the second comes from the cached template of these labels
        body = json.loads(message_body(42, 'Ü "quoted" 💪 50%', buttons))
        assert body == {
            "chat_id": 42,
            "text": 'Ü "quoted" 💪 50%',
            "reply_markup": {
                "inline_keyboard": [[{"text": label, "callback_data": data} for label, data in row] for row in buttons]
            },
        }
    other = [[(label, data.replace("7", "8")) for label, data in row] for row in buttons]
    assert json.loads(message_body(1, "x", other))["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "s:8:d"
    assert json.loads(message_body(1, "no buttons", None)) == {"chat_id": 1, "text": "no buttons"}


@pytest.mark.parametrize(
    ("status", "reply", "outcome"),
    [
        (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
         Unreachable("Forbidden: bot was blocked by the user")),
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
         Unreachable("Chat not found")),
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"},
         Failed("Message is too long")),
        (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
               "parameters": {"retry_after": 7}}, Retry("429 retry after 7s", 7.0, rate_limited=True)),
        (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}, Retry("network: Bad Gateway")),
        (500, b"<html>oops</html>", Retry("network: Internal Server Error (500)")),
    ],
)  # fmt: skip
def test_the_lean_path_classifies_replies_as_ptb_does(status: int, reply: Any, outcome: Any) -> None:
    payload = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
    assert classify(_telegram_error(status, payload)) == outcome


@pytest.mark.parametrize(
    ("error", "calls"),
    [
        (NetworkError("Bad Gateway"), 3),  # passing: tried twice more
        (NetworkError("Request Entity Too Large"), 1),  # a 413: the same upload would be refused again
        (TimedOut("Timed out"), 1),  # it may have arrived
    ],
)
async def test_a_reply_is_tried_again_after_a_passing_network_error_only(error: Exception, calls: int) -> None:
    from rehab_bot.ratelimit import Pacer
    from rehab_bot.transport import PacingRateLimiter

    pacer = Pacer(1000.0, per_chat_interval=0.0)
    limiter = PacingRateLimiter(pacer)
    tried: list[int] = []

    async def failing() -> bool:
        tried.append(1)
        raise error

    with patch("rehab_bot.transport._NETWORK_RETRY_SECONDS", 0.0), pytest.raises(type(error)):
        await limiter.process_request(failing, (), {}, "sendMessage", {"chat_id": 42}, None)
    await pacer.close()
    assert len(tried) == calls


def _edited(chat: int, message_id: int, *data: str) -> dict[str, Any]:
    rows = [[{"text": d, "callback_data": d}] for d in data] + [[{"text": "App", "web_app": {"url": "https://x"}}]]
    return {
        "message_id": message_id,
        "chat": {"id": chat, "type": "private"},
        "reply_markup": {"inline_keyboard": rows},
    }


async def test_the_limiter_remembers_what_its_edits_and_deletions_left_on_a_message() -> None:
    from rehab_bot.ratelimit import Pacer
    from rehab_bot.transport import PacingRateLimiter

    pacer = Pacer(1000.0, per_chat_interval=0.0)
    limiter = PacingRateLimiter(pacer)

    async def answer(result: Any) -> Any:
        return result

    calls = [
        ("editMessageText", {"chat_id": 42, "message_id": 7}, _edited(42, 7, "nt:s", "nt:x")),
        ("editMessageReplyMarkup", {"chat_id": 42, "message_id": 8}, {**_edited(42, 8), "reply_markup": None}),
        ("editMessageCaption", {"chat_id": 42, "message_id": 9}, _edited(42, 9, "a")),
        ("deleteMessage", {"chat_id": "42", "message_id": 9}, True),
        ("editMessageText", {"inline_message_id": "abc"}, True),  # an inline message: no chat, nothing to note
        ("sendMessage", {"chat_id": 42}, _edited(42, 10, "b")),  # a new message: Telegram's picture is current
    ]
    for endpoint, data, result in calls:
        assert await limiter.process_request(answer, (result,), {}, endpoint, data, None) == result
    await pacer.close()
    shown = limiter.shown
    assert shown.left_on(42, 7) == {"nt:s", "nt:x"}
    assert shown.left_on(42, 8) == frozenset(), "an edit without a keyboard leaves none"
    assert shown.left_on(42, 9) == frozenset(), "a deleted message shows nothing"
    assert shown.left_on(42, 10) is None and shown.left_on(43, 7) is None


def test_shown_buttons_keeps_the_newest_messages_only() -> None:
    from rehab_bot.transport import ShownButtons

    shown = ShownButtons(size=3)
    for message_id in (1, 2, 3):
        shown.edited(_edited(42, message_id, f"d{message_id}"))
    shown.edited(_edited(42, 1, "again"))  # edited again: now the newest
    shown.edited(_edited(42, 4, "d4"))
    assert [shown.left_on(42, m) for m in (1, 2, 3, 4)] == [{"again"}, None, {"d3"}, {"d4"}]
