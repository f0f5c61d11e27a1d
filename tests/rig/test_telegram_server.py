"""Self-tests of the fake Telegram server against the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import datetime as dtm
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from telegram import (
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyParameters,
    Update,
    WebAppInfo,
)
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from rehab_bot.clock import ScaledTime

from .telegram_server import (
    BUTTON_DATA_INVALID,
    TOO_LARGE,
    FakeTelegram,
    bad_request,
    blocked,
    chat_not_found,
    deactivated,
    reset,
    retry_after,
    running,
    server_error,
    slow,
    timeout,
)

AnyApp = Application[Any, Any, Any, Any, Any, Any]
KEYBOARD = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("Yes", callback_data="ans:yes"),
            InlineKeyboardButton("No", callback_data="ans:no"),
        ]
    ]
)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def app(tg: FakeTelegram) -> AsyncIterator[AnyApp]:
    """An initialised (not polling) Application with short timeouts, for direct bot calls."""
    application = tg.application_builder().read_timeout(0.5).connect_timeout(1).build()
    await application.initialize()
    try:
        yield application
    finally:
        await application.shutdown()


def seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 deprecates the int form of retry_after
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text("How is your back today?", reply_markup=KEYBOARD)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("Thanks!")
    await query.edit_message_text(f"You said: <b>{query.data}</b>", parse_mode="HTML")


# ---- the real PTB Application, polling ----------------------------------------------------
async def test_start_press_edit_and_answer(tg: FakeTelegram) -> None:
    application = tg.application_builder().build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CallbackQueryHandler(on_button))
    async with running(application):
        anna = tg.user(42, first_name="Anna")
        await anna.send("/start")
        (reply,) = await anna.wait_for()
        assert reply.text == "How is your back today?"
        assert reply.buttons == [[("Yes", "ans:yes"), ("No", "ans:no")]]
        assert reply.button_labels == ["Yes", "No"]

        await anna.press("Yes")
        (edited,) = await anna.wait_for()
        assert edited is reply and edited.edited
        assert edited.text == "You said: ans:yes"  # HTML rendered
        assert edited.raw_text == "You said: <b>ans:yes</b>"
        assert edited.reply_markup is None  # editing without reply_markup drops the keyboard
        answer = await anna.wait_for_answer()
        assert (answer.text, answer.show_alert) == ("Thanks!", False)
        assert anna.texts() == ["You said: ans:yes"]

        with pytest.raises(AssertionError, match="no button 'Maybe'"):
            await anna.press("Maybe")
    assert [r.method for r in tg.requests[:2]] == ["getMe", "deleteWebhook"]
    assert all(r.response_status in (200, 0) for r in tg.requests)


async def test_updates_of_every_kind_reach_handlers(tg: FakeTelegram) -> None:
    seen: list[str] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        assert msg is not None
        kind = (
            "edited"
            if update.edited_message
            else "channel"
            if update.channel_post
            else "location"
            if msg.location
            else "sticker"
            if msg.sticker
            else "contact"
            if msg.contact
            else "document"
            if msg.document
            else msg.chat.type
        )
        seen.append(kind)
        if msg.document:
            data = await (await msg.document.get_file()).download_as_bytearray()
            await context.bot.send_message(msg.chat.id, f"got {len(data)} bytes")

    application = tg.application_builder().build()
    application.add_handler(MessageHandler(filters.ALL, record))
    async with running(application):
        bob = tg.user(7, first_name="Bob")
        first = await bob.send("hello")
        await bob.edit(first["message"]["message_id"], "hello again")
        await bob.share_location(52.5, 13.4)
        await bob.send_sticker()
        await bob.send_contact("+491234")
        await bob.send_document(b"x" * 1000, filename="scan.pdf")
        await tg.group(-100, "Ward 3").send(7, "hi all")
        await tg.channel_post(-200, "news")
        (msg,) = await bob.wait_for()
        assert msg.text == "got 1000 bytes"
        await tg.wait_fetched()
    assert seen == [
        "private",
        "edited",
        "location",
        "sticker",
        "contact",
        "document",
        "group",
        "channel",
    ]


async def test_push_update_and_long_poll_semantics(tg: FakeTelegram) -> None:
    url = f"{tg.base_url}{tg.token}/getUpdates"
    async with aiohttp.ClientSession() as http:
        t0 = time.monotonic()
        async with http.post(url, data={"timeout": "0.3"}) as r:
            assert (await r.json()) == {"ok": True, "result": []}
        assert time.monotonic() - t0 >= 0.25

        async def push_later() -> None:
            await asyncio.sleep(0.1)
            await tg.push_update({"message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}})

        pusher = asyncio.create_task(push_later())
        t0 = time.monotonic()
        async with http.post(url, data={"timeout": "5"}) as r:
            result = (await r.json())["result"]
        await pusher
        assert time.monotonic() - t0 < 2 and [u["update_id"] for u in result] == [1]
        await tg.push_update({"update_id": 10, "message": {}})
        async with http.get(url, params={"offset": "2"}) as r:  # confirms update 1
            assert [u["update_id"] for u in (await r.json())["result"]] == [10]
        assert [u["update_id"] for u in tg.pending_updates] == [10]


async def test_protocol_errors_have_telegram_shapes(tg: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.base_url}999:wrong/getMe") as r:
            assert r.status == 401
            assert await r.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.post(f"{tg.base_url}{tg.token}/frobnicate") as r:
            assert r.status == 404
            assert await r.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with http.post(f"{tg.base_url}{tg.token}/GETME") as r:  # case-insensitive
            body = await r.json()
            assert body["result"]["id"] == 123456 and body["result"]["is_bot"] is True
        tg.inject("sendMessage", error=retry_after(3))
        async with http.post(f"{tg.base_url}{tg.token}/sendMessage", json={"chat_id": 5, "text": "hi"}) as r:
            assert r.status == 429
            assert await r.json() == {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3},
            }
    assert [r.method for r in tg.requests] == ["getMe", "frobnicate", "getMe", "sendMessage"]
    assert [r.response_status for r in tg.requests] == [401, 404, 200, 429]


# ---- errors as PTB sees them --------------------------------------------------------------
async def test_injected_errors_surface_as_ptb_exceptions(tg: FakeTelegram, app: AnyApp) -> None:
    bot = app.bot
    tg.inject("sendMessage", chat_id=1, error=retry_after(7))
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(1, "x")
    assert seconds(flood.value) == 7

    for fault, exc_type, text in [
        (blocked(), Forbidden, "Forbidden: bot was blocked by the user"),
        (deactivated(), Forbidden, "Forbidden: user is deactivated"),
        (chat_not_found(), BadRequest, "Chat not found"),
        (server_error(500), NetworkError, "Internal Server Error"),
        (server_error(502), NetworkError, "Bad Gateway"),
        (bad_request("PEER_ID_INVALID"), BadRequest, "Peer_id_invalid"),
    ]:
        tg.inject("sendmessage", chat_id=2, error=fault)
        with pytest.raises(exc_type) as err:
            await bot.send_message(2, "x")
        assert err.value.message == text

    tg.inject("sendMessage", error=reset())
    with pytest.raises(NetworkError) as net:
        await bot.send_message(3, "x")
    assert not isinstance(net.value, TimedOut)
    tg.inject("sendMessage", error=timeout(5))
    with pytest.raises(TimedOut):
        await bot.send_message(3, "x")
    await asyncio.sleep(0.05)  # let the server notice the hang-up and cancel the handler
    tg.inject("sendMessage", error=slow(0.1))
    assert (await bot.send_message(3, "finally")).text == "finally"
    assert tg.user(3).texts() == ["finally"]  # reset/timeout without applied=True: no effect

    tg.inject("sendMessage", error=timeout(5, applied=True))
    with pytest.raises(TimedOut):
        await bot.send_message(3, "ghost")
    assert tg.user(3).texts() == ["finally", "ghost"]  # delivered although PTB saw a timeout
    statuses = [r.response_status for r in tg.calls("sendMessage")]
    assert statuses == [429, 403, 403, 400, 500, 502, 400, 0, 0, 200, 0]


async def test_times_and_forever_and_random(tg: FakeTelegram, app: AnyApp) -> None:
    rule = tg.inject("*", error=server_error(500), times=2)
    for _ in range(2):
        with pytest.raises(NetworkError):
            await app.bot.send_chat_action(9, "typing")
    await app.bot.send_chat_action(9, "typing")
    assert rule.hits == 2

    tg.inject("sendMessage", chat_id=9, error=chat_not_found(), times=None)
    for _ in range(3):
        with pytest.raises(BadRequest):
            await app.bot.send_message(9, "x")
    await app.bot.send_message(10, "other chat is fine")
    tg.clear_faults()
    await app.bot.send_message(9, "x")

    runs = []
    for _ in range(2):
        tg.clear_faults()
        tg.fail_randomly("sendMessage", rate=0.5, errors=[server_error(500)], seed=3)
        for i in range(20):
            try:
                await app.bot.send_message(11, f"m{i}")
            except NetworkError:
                pass
        runs.append([r.response_status for r in tg.requests[-20:]])
    assert runs[0] == runs[1] and 500 in runs[0] and 200 in runs[0]


async def test_blocked_users_strict_chats_and_unknown_groups(tg: FakeTelegram, app: AnyApp) -> None:
    tg.blocked_users.add(50)
    with pytest.raises(Forbidden, match="blocked"):
        await app.bot.send_message(50, "x")
    with pytest.raises(BadRequest, match="Chat not found"):
        await app.bot.send_message(-5, "unknown group")
    await app.bot.send_message(51, "stranger")  # lenient default
    assert tg.user(51).last.text == "stranger"
    tg.strict_chats = True
    with pytest.raises(BadRequest, match="Chat not found"):
        await app.bot.send_message(52, "x")
    tg.user(52)
    await app.bot.send_message(52, "now known")


async def test_message_validation_like_telegram(tg: FakeTelegram, app: AnyApp) -> None:
    bot = app.bot
    msg = await bot.send_message(1, "a", reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("a", chat_id=1, message_id=msg.message_id, reply_markup=KEYBOARD)
    await bot.edit_message_reply_markup(chat_id=1, message_id=msg.message_id, reply_markup=None)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("b", chat_id=1, message_id=999)
    assert await bot.delete_message(1, msg.message_id)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(1, msg.message_id)
    assert tg.user(1).messages[0].deleted

    long_data = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"text": "x" * 4097}, "Message is too long"),
        ({"text": "   "}, "Message text is empty"),
        (
            {"text": "ok", "reply_markup": long_data},
            BUTTON_DATA_INVALID.removeprefix("Bad Request: "),
        ),
        (
            {"text": "1 < 2", "parse_mode": "HTML"},
            'Can\'t parse entities: unsupported start tag ""',
        ),
        ({"text": "line<br>break", "parse_mode": "HTML"}, 'unsupported start tag "br"'),
        ({"text": "<b>open", "parse_mode": "HTML"}, "can't find end tag"),
        ({"text": "Done.", "parse_mode": "MarkdownV2"}, "character '.' is reserved"),
        ({"text": "hi @some_user", "parse_mode": "Markdown"}, "can't find end of the entity"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(BadRequest) as err:
            await bot.send_message(1, **kwargs)
        assert expected.lower() in err.value.message.lower(), err.value.message
    ok = await bot.send_message(1, "x" * 4096 + "", parse_mode="HTML")
    assert len(ok.text or "") == 4096
    assert (await bot.send_message(1, "Done\\. *bold*", parse_mode="MarkdownV2")).text == "Done. bold"
    assert (await bot.send_message(1, "1 &lt; 2 <i>x</i>", parse_mode="HTML")).text == "1 < 2 x"


async def test_callback_answer_twice_is_too_old(tg: FakeTelegram, app: AnyApp) -> None:
    await app.bot.send_message(8, "pick", reply_markup=KEYBOARD)
    user = tg.user(8)
    update = await user.press("ans:no")  # by callback_data
    qid = update["callback_query"]["id"]
    assert update["callback_query"]["data"] == "ans:no"
    assert await app.bot.answer_callback_query(qid, "ok", show_alert=True)
    with pytest.raises(BadRequest, match="Query is too old"):
        await app.bot.answer_callback_query(qid)
    assert user.callback_answers[0].show_alert is True
    forged = await user.press_data("admin:delete_all")
    assert forged["callback_query"]["data"] == "admin:delete_all"


async def test_photo_upload_file_id_reuse_and_download(tg: FakeTelegram, app: AnyApp) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    sent = await app.bot.send_photo(4, photo=png, caption="<i>exercise 1</i>", parse_mode="HTML", filename="ex1.png")
    record = tg.user(4).last
    assert record.method == "sendPhoto" and record.caption == "exercise 1"
    assert record.photo is not None and record.photo.data == png and record.photo.size == len(png)
    assert record.photo.filename == "ex1.png"
    (call,) = tg.calls("sendPhoto")
    assert call.files["photo"].data == png and call.params["chat_id"] == 4

    again = await app.bot.send_photo(4, photo=sent.photo[-1].file_id)
    assert again.photo[-1].file_id == sent.photo[-1].file_id
    assert tg.user(4).last.photo is record.photo
    data = await (await app.bot.get_file(sent.photo[-1].file_id)).download_as_bytearray()
    assert bytes(data) == png

    doc = await app.bot.send_document(4, document=b"%PDF-1.4", filename="plan.pdf")
    assert doc.document is not None and doc.document.file_name == "plan.pdf"
    stored = tg.user(4).last.document
    assert stored is not None and stored.size == 8 and stored.data == b"%PDF-1.4"
    await app.bot.send_chat_action(4, "upload_photo")
    assert tg.calls("sendChatAction")[0].params["action"] == "upload_photo"


async def test_commands_per_scope(tg: FakeTelegram, app: AnyApp) -> None:
    bot = app.bot
    await bot.set_my_commands([BotCommand("start", "Begin"), BotCommand("help", "Help")])
    await bot.set_my_commands([BotCommand("today", "Heute")], language_code="de")
    await bot.set_my_commands([BotCommand("alerts", "Open alerts")], scope=BotCommandScopeChat(chat_id=77))
    assert tg.commands_for() == [("start", "Begin"), ("help", "Help")]
    assert tg.commands_for(language_code="de") == [("today", "Heute")]
    assert tg.commands_for("chat", chat_id=77) == [("alerts", "Open alerts")]
    got = await bot.get_my_commands(scope=BotCommandScopeChat(chat_id=77))
    assert [c.command for c in got] == ["alerts"]
    await bot.delete_my_commands(scope=BotCommandScopeChat(chat_id=77))
    assert tg.commands_for("chat", chat_id=77) == []
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])
    assert await bot.set_chat_menu_button()


async def test_enforce_limits(tg: FakeTelegram, app: AnyApp) -> None:
    tg.enforce_limits(global_per_second=30, per_chat_per_second=1)
    await app.bot.send_message(1, "first")
    await app.bot.send_chat_action(1, "typing")  # chat actions are not messages
    with pytest.raises(RetryAfter) as flood:
        await app.bot.send_message(1, "too soon")
    assert seconds(flood.value) == 1 and tg.limit_violations == 1
    assert tg.retry_after_breaches == 0
    with pytest.raises(RetryAfter):
        await app.bot.send_message(1, "ignoring retry_after")
    assert tg.retry_after_breaches == 1 and tg.limit_violations == 2
    await app.bot.send_message(2, "another chat is fine")

    tg.enforce_limits(global_per_second=3, per_chat_per_second=None)
    sent = 0
    with pytest.raises(RetryAfter):
        for chat in range(100, 110):
            await app.bot.send_message(chat, "broadcast")
            sent += 1
    assert sent == 3


async def test_enforce_limits_on_a_scaled_clock() -> None:
    # The end-to-end harness gives the server the bot's pacer clock: the limits hold in its seconds.
    fast = ScaledTime(50)
    async with FakeTelegram(monotonic=fast.monotonic) as server:
        application = server.application_builder().read_timeout(0.5).connect_timeout(1).build()
        await application.initialize()
        try:
            server.enforce_limits(global_per_second=30, per_chat_per_second=1)
            burst = await asyncio.gather(
                *(application.bot.send_message(1, f"at once {n}") for n in range(3)), return_exceptions=True
            )
            assert any(isinstance(result, RetryAfter) for result in burst), burst
            assert server.limit_violations >= 1
            await fast.sleep(1.2)  # a scaled second and a bit: 24 ms
            violations, breaches = server.limit_violations, server.retry_after_breaches
            await application.bot.send_message(1, "a scaled second later")
            assert (server.limit_violations, server.retry_after_breaches) == (violations, breaches)
            first_ok, *_, last = [r for r in server.calls("sendMessage") if r.ok]
            assert last.time - first_ok.time >= 1.0, "arrivals are stamped on the scaled clock"
        finally:
            await application.shutdown()


async def test_wait_for_count_predicate_silence_and_clock(tg: FakeTelegram, app: AnyApp) -> None:
    tg.clock = lambda: 1_700_000_000.0
    user = tg.user(6)

    async def later() -> None:
        for i in range(3):
            await asyncio.sleep(0.02)
            await app.bot.send_message(6, f"m{i}")

    task = asyncio.create_task(later())
    msgs = await user.wait_for(count=2)
    assert [m.text for m in msgs] == ["m0", "m1"]
    assert (await user.next_message(lambda m: m.text == "m2")).date == 1_700_000_000
    await task
    await user.expect_silence(0.05)
    with pytest.raises(AssertionError, match=r"timed out after 0\.1s"):
        await user.wait_for(timeout=0.1)


async def test_stop_does_not_hang_on_pending_long_poll() -> None:
    tg = FakeTelegram()
    await tg.start()
    url = f"{tg.base_url}{tg.token}/getUpdates"
    async with aiohttp.ClientSession() as http:
        poll = asyncio.create_task(http.post(url, data={"timeout": "30"}))
        await asyncio.sleep(0.1)
        tg.inject("getMe", error=slow(30))
        stalled = asyncio.create_task(http.post(f"{tg.base_url}{tg.token}/getMe"))
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        await tg.stop()
        assert time.monotonic() - t0 < 2
        response = await poll
        assert (await response.json())["result"] == []
        with pytest.raises(aiohttp.ClientError):
            await stalled


async def test_retry_after_breach_reply_keyboard_group_and_media(tg: FakeTelegram, app: AnyApp) -> None:
    bot = app.bot
    tg.inject("sendMessage", chat_id=30, error=retry_after(5))
    with pytest.raises(RetryAfter):
        await bot.send_message(30, "x")
    await bot.send_message(31, "other chats are not affected")
    assert tg.retry_after_breaches == 0
    await bot.send_message(30, "too early")  # succeeds (fault used up) but is a breach
    assert tg.retry_after_breaches == 1 and tg.breach_log[0][:2] == ("sendMessage", 30)

    keyboard = ReplyKeyboardMarkup([["Pain 0-3", "Pain 4-6"]])
    await bot.send_message(32, "How bad?", reply_markup=keyboard)
    update = await tg.user(32).press("Pain 4-6")  # a reply-keyboard press is a text message
    assert update["message"]["text"] == "Pain 4-6"
    assert tg.user(32).last.buttons == [[("Pain 0-3", None), ("Pain 4-6", None)]]

    ward = tg.group(-300, "Ward")
    await bot.send_message(-300, "Group hello")
    assert ward.last.text == "Group hello" and ward.texts() == ["Group hello"]

    video = await bot.send_video(33, video="https://example.org/clip.mp4", caption="Do this")
    media = tg.user(33).last.media
    assert video.video is not None and media is not None
    assert media.file_id == "https://example.org/clip.mp4" and media.data is None
    gif = await bot.send_animation(33, animation=b"GIF89a", filename="a.gif")
    assert gif.animation is not None and tg.user(33).last.method == "sendAnimation"


async def test_message_effects_in_private_chats_only_and_known_ids_only(tg: FakeTelegram, app: AnyApp) -> None:
    party = "5046509860389126442"  # 🎉
    sent = await app.bot.send_message(1, "A full week!", message_effect_id=party)
    assert sent.effect_id == party, "Telegram echoes the effect in the Message"
    assert tg.user(1).last.effect_id == party
    photo = await app.bot.send_photo(1, b"\xff\xd8jpeg", caption="Milestone", message_effect_id=party)
    assert photo.effect_id == party
    with pytest.raises(BadRequest, match="Effect_id_invalid"):
        await app.bot.send_message(1, "x", message_effect_id="123")
    tg.group(-100, "Ward")
    with pytest.raises(BadRequest, match="Effect_id_invalid"):
        await app.bot.send_message(-100, "x", message_effect_id=party)
    plain = await app.bot.send_message(1, "no effect")
    assert plain.effect_id is None and tg.user(1).last.effect_id is None


async def test_replies_thread_like_telegram(tg: FakeTelegram, app: AnyApp) -> None:
    """reply_parameters: the sent message carries reply_to_message; a missing target is refused unless allowed."""
    bot = app.bot
    user = tg.user(61)
    sent = await user.send("my wound looks red")
    mine = sent["message"]["message_id"]
    reply = await bot.send_message(61, "Please send a photo.", reply_parameters=ReplyParameters(message_id=mine))
    assert reply.reply_to_message is not None and reply.reply_to_message.text == "my wound looks red"
    assert user.last.reply_to_message_id == mine
    # The user answers the bot's reply with Telegram's reply: the update nests the replied message (one level).
    answer = await user.send_photo(b"\xff\xd8wound", caption="here", reply_to=reply.message_id)
    nested = answer["message"]["reply_to_message"]
    assert nested["message_id"] == reply.message_id and "reply_to_message" not in nested
    photo = answer["message"]["photo"]
    assert len(photo) == 2 and photo[-1]["file_size"] == len(b"\xff\xd8wound")
    data = await (await bot.get_file(photo[-1]["file_id"])).download_as_bytearray()
    assert bytes(data) == b"\xff\xd8wound"
    # Re-sent by file_id to another chat, as a reply there.
    note = await bot.send_message(62, "notice")
    again = await bot.send_photo(
        62, photo=photo[-1]["file_id"], caption="from 61", reply_parameters=ReplyParameters(message_id=note.message_id)
    )
    assert again.photo[-1].file_id == photo[-1]["file_id"] and again.reply_to_message is not None
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(61, "x", reply_parameters=ReplyParameters(message_id=999))
    deleted = await bot.send_message(61, "gone soon")
    await bot.delete_message(61, deleted.message_id)
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(61, "x", reply_parameters=ReplyParameters(message_id=deleted.message_id))
    alone = await bot.send_message(
        61, "sent anyway", reply_parameters=ReplyParameters(message_id=999, allow_sending_without_reply=True)
    )
    assert alone.reply_to_message is None and user.last.reply_to_message_id is None


async def test_an_upload_over_the_limit_is_a_413_not_a_bad_request(tg: FakeTelegram, app: AnyApp) -> None:
    """Telegram refuses a multipart body over 50 MB with HTTP 413 before any method runs; PTB
    raises a plain NetworkError for it (not a BadRequest), and nothing reaches the chat."""
    tg.max_upload_bytes = 1000
    with pytest.raises(NetworkError, match=TOO_LARGE) as caught:
        await app.bot.send_video(7, video=b"v" * 1001, filename="big.mp4", caption="too big")
    assert not isinstance(caught.value, BadRequest)
    [call] = tg.calls("sendVideo")
    assert call.response_status == 413 and tg.user(7).messages == []
    sent = await app.bot.send_video(7, video=b"v" * 1000, filename="ok.mp4")  # at the limit: accepted
    assert sent.video is not None and tg.user(7).last.media is not None


async def test_a_group_upgraded_to_a_supergroup_answers_with_its_new_id(tg: FakeTelegram, app: AnyApp) -> None:
    """Telegram's 400 "group chat was upgraded to a supergroup chat" carries parameters.migrate_to_chat_id,
    which PTB raises as ChatMigrated (a BadRequest would hide the new id)."""
    tg.group(-4001, "Alerts")
    await app.bot.send_message(-4001, "before")
    new = tg.migrate_group(-4001, -100_4001)
    with pytest.raises(ChatMigrated) as caught:
        await app.bot.send_message(-4001, "after")
    assert caught.value.new_chat_id == -100_4001
    [_, refused] = tg.calls("sendMessage")
    assert (
        refused.response_status == 400
        and refused.description == "Bad Request: group chat was upgraded to a supergroup chat"
    )
    await app.bot.send_message(-100_4001, "in the supergroup")
    assert new.chat_type == "supergroup" and new.last.text == "in the supergroup"


async def test_web_app_buttons_only_in_private_chats_and_short_callback_answers(tg: FakeTelegram, app: AnyApp) -> None:
    """Telegram refuses a web_app button outside a private chat (BUTTON_TYPE_INVALID) and an
    answerCallbackQuery text over 200 characters (MESSAGE_TOO_LONG); the query stays answerable."""
    opener = InlineKeyboardMarkup([[InlineKeyboardButton("Open", web_app=WebAppInfo("https://app.example/"))]])
    tg.group(-4002, "Alerts")
    with pytest.raises(BadRequest, match="Button_type_invalid"):
        await app.bot.send_message(-4002, "open it", reply_markup=opener)
    assert tg.group(-4002).messages == []
    await app.bot.send_message(8, "open it", reply_markup=opener)  # a private chat: fine
    user = tg.user(8)
    await user.press_data("x")
    assert user.last_query_id is not None
    with pytest.raises(BadRequest, match="Message_too_long"):
        await app.bot.answer_callback_query(user.last_query_id, "x" * 201)
    assert await app.bot.answer_callback_query(user.last_query_id, "x" * 200)
