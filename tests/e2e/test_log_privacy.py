"""Clean logs at every level: a patient's journey at DEBUG leaves no private data in the log.

`rehab-bot run` with ``[logging] level = "DEBUG"``, as cli.main sets it up:
a webhook start with a secret token, then (polling) a patient with a first
and last name and a username enrols from an invite link, shares a phone
number, types free text and a /note, and stops. Every record logged, and
everything written to stderr, is searched for: the free text, the names, the
username, the phone number, the Telegram id, the webhook secret and the token.
"""

from __future__ import annotations

import socket
from datetime import date
from typing import Any

import aiohttp
import pytest
from factories import TEST_TOKEN, make_config
from rig.telegram_server import FakeTelegram, FakeUser, SentMessage
from telegram import Update

from rehab_bot import invite as invites
from rehab_bot.bot.app import build_application, shutdown, startup
from rehab_bot.logs import add_secret, setup_logging

TELEGRAM_ID = 8_123_456_789
FIRST, LAST, USERNAME = "Zebulon", "Quackenbush", "zq_private_user"
PHONE = "+491705550123"
FREE_TEXT = "my wound is leaking yellowish fluid"
NOTE = "the scar itches badly at night"
SECRET = "wh-SECRET_marker_4242"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def next_text(user: FakeUser) -> SentMessage:
    [message] = await user.wait_for(include_edits=False, timeout=15)
    return message


async def webhook_start_and_one_update(tg: FakeTelegram, database_factory: Any, clock: Any) -> None:
    db = await database_factory("sqlite", name="webhook")
    port = _free_port()
    config = make_config(
        db.url,
        telegram={
            "mode": "webhook",
            "webhook_url": "https://bot.example.org/telegram",
            "secret_token": SECRET,
            "base_url": tg.base_url,
            "base_file_url": tg.base_file_url,
        },
        delivery={"poll_interval": 3600.0},
    )
    add_secret(config.telegram.secret_token)  # as cli.main does
    app = build_application(config, clock=clock, db=db)
    await app.initialize()
    await startup(app)
    assert app.updater is not None
    await app.updater.start_webhook(
        listen="127.0.0.1",
        port=port,
        url_path="telegram",
        webhook_url=config.telegram.webhook_url,
        secret_token=SECRET,
        allowed_updates=Update.ALL_TYPES,
    )
    await app.start()
    try:
        assert tg.calls("setWebhook")[-1].params["secret_token"] == SECRET
        sender = {"id": TELEGRAM_ID, "is_bot": False, "first_name": FIRST, "last_name": LAST, "username": USERNAME}
        update = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": TELEGRAM_ID, "type": "private", "first_name": FIRST, "username": USERNAME},
                "from": {**sender, "language_code": "en"},
                "text": "/help",
                "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            },
        }
        async with aiohttp.ClientSession() as http:
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            async with http.post(f"http://127.0.0.1:{port}/telegram", json=update, headers=headers) as resp:
                assert resp.status == 200
        user = tg.user(TELEGRAM_ID, FIRST, last_name=LAST, username=USERNAME)
        await user.wait_for()
    finally:
        await app.updater.stop()
        await app.stop()
        await shutdown(app)
        await app.shutdown()


@pytest.mark.slow
async def test_a_journey_at_debug_logs_no_private_data(
    tg: FakeTelegram,
    bot_factory: Any,
    database_factory: Any,
    clock: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    setup_logging("DEBUG")  # as cli.main does for [logging] level = "DEBUG"
    try:
        await webhook_start_and_one_update(tg, database_factory, clock)

        bot = await bot_factory("sqlite")
        async with bot.db.session() as session:
            made = await invites.create_patient_invite(
                session,
                bot.services.content,
                alias="P-LOG-1",
                surgery_date=date(2026, 6, 1),
                programme_id="lumbar-example",
                now=bot.clock.now(),
                valid_days=14,
                timezone="Europe/Berlin",
                language="en",
            )
            await session.commit()
        user = tg.user(TELEGRAM_ID)  # the same person, now over polling
        await user.send(f"/start {made.invite.code}")
        await next_text(user)
        await user.press("Yes, I agree")
        zone = await next_text(user)
        await user.press(zone.button_labels[0])
        times = await next_text(user)
        await user.press(times.button_labels[0])
        summary = await next_text(user)
        assert summary.text.startswith("✅ All set!")
        await user.send_contact(PHONE, FIRST)
        await next_text(user)
        await user.send(FREE_TEXT)
        await user.wait_for(timeout=15)
        await user.send(f"/note {NOTE}")
        await user.wait_for(timeout=15)
        await user.send("/stop")
        await user.wait_for(timeout=15)

        logged = (
            "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
            + capfd.readouterr().err
        )
        leaks = {
            name: marker
            for name, marker in {
                "free text": FREE_TEXT,
                "free text (part)": "yellowish",
                "note": NOTE,
                "first name": FIRST,
                "last name": LAST,
                "username": USERNAME,
                "phone number": PHONE,
                "phone number (digits)": PHONE.lstrip("+"),
                "Telegram id": str(TELEGRAM_ID),
                "webhook secret": SECRET,
                "token": TEST_TOKEN.split(":")[1],
                "invite code": made.invite.code,
            }.items()
            if marker in logged
        }
        assert not leaks, f"found in the log: {sorted(leaks)}"
        assert "invite link opened" in logged and "finished enrolment" in logged, "the log itself was captured"
    finally:
        setup_logging("INFO")


def test_debug_is_for_rehab_bot_only_and_libraries_stay_quiet() -> None:
    import logging

    setup_logging("DEBUG")
    try:
        assert logging.getLogger("rehab_bot.bot.app").isEnabledFor(logging.DEBUG)
        for chatty in ("telegram.ext.Application", "telegram._bot", "aiosqlite", "httpx", "aiohttp.access", "PIL"):
            assert not logging.getLogger(chatty).isEnabledFor(logging.DEBUG), chatty
        assert not logging.getLogger("some.other.library").isEnabledFor(logging.DEBUG)
    finally:
        setup_logging("INFO")


def test_registered_secrets_are_scrubbed_from_every_record(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from rehab_bot.logs import install_record_scrubber

    install_record_scrubber()
    add_secret("short")  # too short to scrub safely: ignored
    add_secret("s3cret-Webhook_value")
    logging.getLogger("rehab_bot.test").warning("header was %s", "s3cret-Webhook_value")
    assert caplog.records[-1].getMessage() == "header was <redacted>"
    logging.getLogger("rehab_bot.test").warning("a short word")
    assert caplog.records[-1].getMessage() == "a short word"


async def test_database_echo_keeps_its_warning(bot_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    await bot_factory("sqlite", database={"echo": True})
    assert any("echo is on" in r.getMessage() and "health data" in r.getMessage() for r in caplog.records)


async def test_a_database_error_is_logged_without_the_values_it_was_given(
    bot_factory: Any,
    tg: FakeTelegram,
    backend: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The traceback of a failed statement names the statement, never its values.

    SQLAlchemy puts a statement's bound values into its error's message
    (``[parameters: (1, '<the note>', ...)]``), and PostgreSQL adds a DETAIL
    line with the failing row; the update's error handler logs the traceback.
    """
    from sqlalchemy import text
    from test_checkins import enrolled

    setup_logging("DEBUG")
    try:
        bot = await bot_factory(backend)
        await enrolled(bot, TELEGRAM_ID, schedule=False)
        async with bot.db.engine.begin() as conn:  # the disk fills up, or a constraint is broken: the insert fails
            if backend == "sqlite":
                fail = "CREATE TRIGGER full BEFORE INSERT ON note BEGIN SELECT RAISE(ABORT, 'full'); END"
            else:
                fail = "ALTER TABLE note ADD CONSTRAINT short_notes CHECK (length(text) < 5)"
            await conn.execute(text(fail))
        user = tg.user(TELEGRAM_ID)
        await user.send(f"/note {NOTE}")
        [sorry] = await user.wait_for(timeout=15)
        assert "Something went wrong" in (sorry.text or "")

        logged = (
            "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
            + capfd.readouterr().err
        )
        assert "error while handling an update" in logged and "INSERT INTO note" in logged, "the error was logged"
        assert "itches" not in logged, "the note's text is in the log"
        assert "Failing row" not in logged
    finally:
        setup_logging("INFO")
