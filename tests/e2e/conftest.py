"""End-to-end harness: the real Application, polling our fake Bot API server.

`bot` starts rehab-bot exactly as `rehab-bot run` does (same build and
startup code), with base_url pointing at the fake server, a SQLite file or a
PostgreSQL schema, and a FakeClock. The engine's repeating job is slowed
right down so that tests drive it with `await bot.tick()` after moving the
clock: a week of reminders then takes seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from factories import TEST_TOKEN, make_config
from rig.telegram_server import FakeTelegram

from rehab_bot.bot import session as session_bot
from rehab_bot.bot.app import build_application, start_polling_app, stop_app
from rehab_bot.bot.services import Services
from rehab_bot.bot.services import svc as services
from rehab_bot.clock import FakeClock
from rehab_bot.config import Config
from rehab_bot.db import Database
from rehab_bot.reminders import TickReport


@dataclass
class Bot:
    """A running rehab-bot and handles on its insides."""

    app: Any
    config: Config
    clock: FakeClock
    tg: FakeTelegram

    @property
    def services(self) -> Services:
        return services(self.app)

    @property
    def db(self) -> Database:
        return self.services.db

    async def tick(self) -> TickReport:
        """Run the engine once at the fake clock's now, waiting for a running tick.

        It also waits for the buttons the window's bookkeeping moves off older
        messages (after the window's transaction, in the background).
        """
        dispatcher = self.services.dispatcher
        assert dispatcher is not None
        report = await dispatcher.tick(wait=True)
        await session_bot.settled()
        return report


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TEST_TOKEN) as server:
        yield server


@pytest.fixture
async def bot_factory(
    tg: FakeTelegram, clock: FakeClock, database_factory: Callable[..., Any]
) -> AsyncIterator[Callable[..., Any]]:
    running: list[Bot] = []

    async def start(backend: str = "sqlite", **sections: Any) -> Bot:
        db: Database = await database_factory(backend, name=f"bot{len(running)}")
        delivery = {"poll_interval": 3600.0, **sections.pop("delivery", {})}
        # Scripted users tap as fast as the bot answers, far faster than a
        # person: the inbound limit is raised unless a test sets it
        # (tests/e2e/test_flood.py tests it at the default).
        inbound = {"user_limit": 10_000, **sections.pop("inbound", {})}
        config = make_config(db.url, delivery=delivery, inbound=inbound, **sections)
        config = replace(
            config, telegram=replace(config.telegram, base_url=tg.base_url, base_file_url=tg.base_file_url)
        )
        app = build_application(config, clock=clock, db=db)
        await start_polling_app(app, poll_timeout=1)
        bot = Bot(app=app, config=config, clock=clock, tg=tg)
        running.append(bot)
        return bot

    yield start
    for bot in running:
        await stop_app(bot.app)


@pytest.fixture
async def bot(bot_factory: Callable[..., Any]) -> Bot:
    """A running bot on SQLite with default settings (quiet hours off)."""
    started: Bot = await bot_factory()
    return started
