"""Foundation end to end: /start, /help, menus, private chats only, errors, logs, webhook, health."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import aiohttp
import pytest
from factories import TEST_TOKEN
from rig.telegram_server import FakeTelegram, server_error
from telegram import Update
from test_checkins import enrolled

from rehab_bot.bot.app import build_application, shutdown, startup
from rehab_bot.logs import setup_logging


async def test_stranger_sends_start_and_gets_the_answer(bot: Any, tg: FakeTelegram) -> None:
    user = tg.user(501, first_name="Anna", language_code="en")
    await user.send("/start")
    [reply] = await user.wait_for()
    assert "exercise and recovery assistant" in reply.text
    assert "invitation link" in reply.text


@pytest.mark.parametrize(
    ("name", "language_code", "expected"),
    [
        ("Our clinic", "en", "Welcome! I am your clinic's exercise and recovery assistant."),
        ("", "en", "Welcome! I am your clinic's exercise and recovery assistant."),
        ("Our clinic", "de", "Willkommen! Ich bin der Übungs- und Genesungsassistent Ihrer Klinik."),
        ("Praxis Nord", "en", "Welcome! I am Praxis Nord's exercise and recovery assistant."),
    ],
)
async def test_start_greeting_reads_well_when_the_clinic_kept_the_default_name(
    bot_factory: Any, tg: FakeTelegram, name: str, language_code: str, expected: str
) -> None:
    await bot_factory(clinic={"name": name})
    user = tg.user(509, language_code=language_code)
    await user.send("/start")
    [reply] = await user.wait_for()
    assert reply.text.startswith(expected), reply.text


async def test_start_answers_in_german_for_a_german_telegram(bot: Any, tg: FakeTelegram) -> None:
    user = tg.user(502, first_name="Jonas", language_code="de-AT")
    await user.send("/start")
    [reply] = await user.wait_for()
    assert reply.text.startswith("Willkommen! Ich bin der Übungs- und Genesungsassistent"), reply.text
    assert "brauchen Sie einen Einladungslink Ihrer Klinik" in reply.text
    assert "invitation link" not in reply.text


async def test_help_explains_and_names_the_emergency_route(bot: Any, tg: FakeTelegram) -> None:
    user = tg.user(503)
    await user.send("/help")
    [reply] = await user.wait_for()
    assert "not for emergencies" in reply.text
    assert bot.config.clinic.text("emergency_text", "en") in reply.text


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_help_for_a_stranger_says_how_to_join_and_lists_no_patient_commands(
    bot: Any, tg: FakeTelegram, lang: str
) -> None:
    # A stranger's /help listed every patient command (/today, /mydata, /delete ...), none of which they can use.
    user = tg.user(506, language_code=lang)
    await user.send("/help")
    [reply] = await user.wait_for()
    joining = {
        "en": ("you need an invitation link from your clinic", "open it"),
        "de": ("brauchen Sie einen Einladungslink Ihrer Klinik", "öffnen Sie ihn"),
    }[lang]
    assert joining[0] in reply.text and joining[1] in reply.text, reply.text
    assert bot.config.clinic.text("emergency_text", lang) in reply.text
    for command in ("/today", "/checkin", "/mydata", "/delete", "/settings", "/caregiver"):
        assert command not in reply.text, command
    # A patient's /help still lists their commands.
    await enrolled(bot, 507, schedule=False, language=lang)
    patient = tg.user(507, language_code=lang)
    await patient.send("/help")
    [theirs] = await patient.wait_for()
    assert "/today" in theirs.text and "/mydata" in theirs.text and joining[0] not in theirs.text


async def test_command_menu_is_registered_per_language(bot: Any, tg: FakeTelegram) -> None:
    default = [c.command for c in tg.commands_for("default")]
    assert default[:2] == ["start", "help"]
    german = tg.commands_for("default", language_code="de")
    assert german and all(c.description for c in german)
    assert {c.description for c in german} != {c.description for c in tg.commands_for("default", language_code="en")}


async def test_groups_hear_once_that_the_bot_is_private_only(bot: Any, tg: FakeTelegram) -> None:
    group = tg.group(-100123, "Physio friends")
    await group.send(601, "/start")
    [notice] = await group.wait_for()
    assert "private chat" in notice.text
    await group.send(601, "/help")
    await group.send(602, "hello bot")
    await group.expect_silence(0.5)
    assert len(group.messages) == 1
    await tg.channel_post(-100999, "channel news")
    user = tg.user(504)
    await user.send("/help")  # the bot is still fine afterwards
    await user.wait_for()


async def test_unknown_text_and_forged_buttons_get_a_friendly_answer(bot: Any, tg: FakeTelegram) -> None:
    user = tg.user(505)
    await user.send("what now?")
    [reply] = await user.wait_for()
    # A stranger: told what the bot is and that it needs an invitation (not "use the buttons": there are none).
    assert reply.text.startswith("Welcome! I am ") and "you need an invitation link from your clinic" in reply.text
    await user.press_data("x:999:forged", message_id=reply.message_id)
    answer = await user.wait_for_answer(timeout=5)
    assert answer is not None


async def test_handler_error_is_logged_without_token_and_user_is_reassured(
    bot: Any, tg: FakeTelegram, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    setup_logging("DEBUG")
    logging.getLogger("httpx").setLevel(logging.DEBUG)  # make httpx log the URLs it would leak
    caplog.set_level(logging.DEBUG)
    user = tg.user(506)
    # A reply is tried three times (a 5xx is passing: transport.PacingRateLimiter); all three fail here.
    tg.inject("sendMessage", chat_id=506, error=server_error(500), times=3)
    await user.send("/start")
    [reply] = await user.wait_for(timeout=10)
    assert "Something went wrong" in reply.text and "kept" in reply.text
    secret = TEST_TOKEN.split(":")[1]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    # The handler's exception is logged once, with its traceback, naming the error Telegram returned.
    assert [(r.name, r.getMessage()) for r in errors] == [("rehab_bot.bot.common", "error while handling an update")]
    [error] = errors
    assert (error.exc_text or "").startswith("Traceback (most recent call last):")
    assert (error.exc_text or "").endswith("telegram.error.NetworkError: Internal Server Error")
    everything = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records) + caplog.text
    everything += capfd.readouterr().err
    assert TEST_TOKEN not in everything and secret not in everything
    logging.getLogger("httpx").setLevel(logging.WARNING)


def test_setup_logging_holds_httpx_at_warning() -> None:
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    setup_logging("DEBUG")
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_webhook_requires_the_secret_token(tg: FakeTelegram, database_factory: Any, clock: Any) -> None:
    db = await database_factory("sqlite")
    from factories import make_config

    port, health_port = _free_port(), _free_port()
    config = make_config(
        db.url,
        telegram={
            "mode": "webhook",
            "webhook_url": "https://bot.example.org/telegram",
            "secret_token": "s3cret-Token_ok",
            "base_url": tg.base_url,
            "base_file_url": tg.base_file_url,
        },
        http={"listen": f"127.0.0.1:{health_port}"},
        delivery={"poll_interval": 3600.0},
    )
    app = build_application(config, clock=clock, db=db)
    await app.initialize()
    await startup(app)
    assert app.updater is not None
    await app.updater.start_webhook(
        listen="127.0.0.1",
        port=port,
        url_path="telegram",
        webhook_url=config.telegram.webhook_url,
        secret_token=config.telegram.secret_token,
        allowed_updates=Update.ALL_TYPES,
    )
    await app.start()
    try:
        assert tg.calls("setWebhook")[-1].params["secret_token"] == "s3cret-Token_ok"
        user = tg.user(701)
        update = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": 701, "type": "private", "first_name": "Anna"},
                "from": {"id": 701, "is_bot": False, "first_name": "Anna", "language_code": "en"},
                "text": "/help",
                "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            },
        }
        url = f"http://127.0.0.1:{port}/telegram"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=update) as resp:
                assert resp.status == 403
            async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as resp:
                assert resp.status == 403
            await user.expect_silence(0.3)
            async with http.post(
                url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_ok"}
            ) as resp:
                assert resp.status == 200
            [reply] = await user.wait_for()
            assert "not for emergencies" in reply.text
            async with http.get(f"http://127.0.0.1:{health_port}/healthz") as resp:
                body = json.loads(await resp.text())
                assert resp.status == 200 and body["mode"] == "webhook" and body["telegram"] is True
    finally:
        await app.updater.stop()
        await app.stop()
        await shutdown(app)
        await app.shutdown()


async def test_health_and_metrics_in_polling_mode(bot_factory: Any, tg: FakeTelegram) -> None:
    port = _free_port()
    bot = await bot_factory(http={"listen": f"127.0.0.1:{port}"})
    user = tg.user(801)
    await user.send("/help")
    await user.wait_for()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            body = json.loads(await resp.text())
            assert resp.status == 200, body
            assert body == {"mode": "polling", "database": True, "telegram": True, "dispatcher": True, "alerts": False}
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
    assert "rehab_bot_handler_latency_seconds_count" in text
    assert "rehab_bot_due_backlog 0.0" in text
    assert "rehab_bot_messages_sent" in text
    # When the updater stops, health says so.
    await bot.app.updater.stop()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 503
