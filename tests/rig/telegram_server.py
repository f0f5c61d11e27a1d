"""The fake Telegram Bot API for the tests: rehab_bot/demo/telegram_server.py (one copy), plus test helpers.

The server lives in the package so that ``rehab-bot demo`` ships it; it imports no ``telegram``.
This module re-exports it for the tests and adds what needs python-telegram-bot: an
``ApplicationBuilder`` pointed at the server and ``running(app)``::

    async with FakeTelegram() as tg:
        app = tg.application_builder().build()
        app.add_handler(CommandHandler("start", start))
        async with running(app):
            anna = tg.user(42, first_name="Anna")
            await anna.send("/start")
            (reply,) = await anna.wait_for()
            await anna.press("Yes")
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from telegram.ext import Application, ApplicationBuilder

from rehab_bot.demo import telegram_server as _server
from rehab_bot.demo.telegram_server import (
    BAD_MARKUP,
    BLOCKED,
    BUTTON_DATA_INVALID,
    CANT_EDIT,
    CANT_PARSE,
    CAPTION_TOO_LONG,
    CHAT_NOT_FOUND,
    DEACTIVATED,
    DELETE_NOT_FOUND,
    EDIT_NOT_FOUND,
    MAX_CALLBACK_DATA,
    MAX_CAPTION,
    MAX_TEXT,
    MIGRATED,
    NOT_FOUND,
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    TEXT_EMPTY,
    TEXT_TOO_LONG,
    TOO_LARGE,
    UNAUTHORIZED,
    BotCommandEntry,
    CallbackAnswer,
    CommandScopeKey,
    FakeGroup,
    FakeUser,
    Fault,
    FaultRule,
    MediaInfo,
    RecordedRequest,
    SentMessage,
    UploadedFile,
    bad_request,
    blocked,
    chat_not_found,
    conflict,
    deactivated,
    not_modified,
    query_too_old,
    render_text,
    reset,
    retry_after,
    server_error,
    slow,
    timeout,
)

AnyApp = Application[Any, Any, Any, Any, Any, Any]


class FakeTelegram(_server.FakeTelegram):
    """The package's fake Bot API, with an ``ApplicationBuilder`` pointed at it."""

    def application_builder(self) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
        """An ``ApplicationBuilder`` pointed at this server (token and URLs set)."""
        return ApplicationBuilder().token(self.token).base_url(self.base_url).base_file_url(self.base_file_url)


@contextlib.asynccontextmanager
async def running(app: AnyApp, *, poll_timeout: int = 1) -> AsyncIterator[AnyApp]:
    """Run a PTB ``Application`` with polling for the duration of the block, and shut it
    down cleanly (updater, application, then HTTP clients) even if the block fails."""
    await app.initialize()
    try:
        assert app.updater is not None, "build the Application with an Updater"
        await app.updater.start_polling(poll_interval=0.0, timeout=poll_timeout)
        await app.start()
        yield app
    finally:
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()


__all__ = [
    "BAD_MARKUP",
    "BLOCKED",
    "BUTTON_DATA_INVALID",
    "CANT_EDIT",
    "CANT_PARSE",
    "CAPTION_TOO_LONG",
    "CHAT_NOT_FOUND",
    "DEACTIVATED",
    "DELETE_NOT_FOUND",
    "EDIT_NOT_FOUND",
    "MAX_CALLBACK_DATA",
    "MAX_CAPTION",
    "MAX_TEXT",
    "MIGRATED",
    "NOT_FOUND",
    "NOT_MODIFIED",
    "QUERY_TOO_OLD",
    "TEXT_EMPTY",
    "TEXT_TOO_LONG",
    "TOO_LARGE",
    "UNAUTHORIZED",
    "BotCommandEntry",
    "CallbackAnswer",
    "CommandScopeKey",
    "FakeGroup",
    "FakeTelegram",
    "FakeUser",
    "Fault",
    "FaultRule",
    "MediaInfo",
    "RecordedRequest",
    "SentMessage",
    "UploadedFile",
    "bad_request",
    "blocked",
    "chat_not_found",
    "conflict",
    "deactivated",
    "not_modified",
    "query_too_old",
    "render_text",
    "reset",
    "retry_after",
    "running",
    "server_error",
    "slow",
    "timeout",
]
