"""End-to-end harness: the real Application, polling our fake Bot API server.

`bot` starts rehab-bot exactly as `rehab-bot run` does (same build and
startup code), with base_url pointing at the fake server, a SQLite file or a
PostgreSQL schema, and a FakeClock. The engine's repeating job is slowed
right down so that tests drive it with `await bot.tick()` after moving the
clock: a week of reminders then takes seconds.

Telegram's pacing (one message a second per chat, 30 a second in all) runs on
`pace_time`, a ScaledTime shared by the bot's pacer and the fake Bot API's
flood limits: PACE_SCALE times faster than real time, so a second of pacing
costs 20 ms and a bot that sends too fast still earns its 429s. Tests about
real wall-clock behaviour (marked `timing` or `realtime`) get real time.
REHAB_BOT_TEST_PACE_SCALE overrides the scale (1 runs everything in real time).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from factories import TEST_TOKEN, make_config
from rig.telegram_server import FakeTelegram

from rehab_bot.bot.app import build_application, start_polling_app, stop_app
from rehab_bot.bot.services import App, Services
from rehab_bot.bot.services import svc as services
from rehab_bot.clock import FakeClock, ScaledTime
from rehab_bot.config import Config
from rehab_bot.db import Database
from rehab_bot.reminders import TickReport

PACE_SCALE = float(os.environ.get("REHAB_BOT_TEST_PACE_SCALE", "50"))


@dataclass
class Bot:
    """A running rehab-bot and handles on its insides."""

    app: Any
    config: Config
    clock: FakeClock
    tg: FakeTelegram
    pace: ScaledTime

    def build(self, config: Config | None = None, db: Database | None = None) -> App:
        """A new Application (a restarted bot) on this bot's clocks: build_application as the fixture calls it."""
        return build(config or self.config, clock=self.clock, db=db or self.db, pace=self.pace)

    async def start(self, app: App) -> None:
        """Start a rebuilt Application as the fixture starts its own (see start_app)."""
        await start_app(app)

    async def handled(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - mirrors wait_for
        """Wait until every update pushed so far was fetched and its handlers have finished.

        Chats are handled side by side: an answer in one chat says nothing about another.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while quiet < 3:  # idle on three looks 10 ms apart: between the queue and a handler too
            busy = (
                bool(self.tg.pending_updates)
                or not self.app.update_queue.empty()
                or self.app.update_processor.current_concurrent_updates > 0
            )
            quiet = 0 if busy else quiet + 1
            if loop.time() > deadline:
                raise AssertionError(f"the bot was still handling updates after {timeout} s")
            await asyncio.sleep(0.01)

    @property
    def services(self) -> Services:
        return services(self.app)

    @property
    def db(self) -> Database:
        return self.services.db

    async def tick(self) -> TickReport:
        """Run the engine once at the fake clock's now, waiting for a running tick."""
        dispatcher = self.services.dispatcher
        assert dispatcher is not None
        return await dispatcher.tick(wait=True)


async def start_app(app: App, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """start_polling_app, then wait for the engine's run at start (0.1 s in, as in production).

    Every start, the fixture's and a restart's (Bot.start): the tests drive the
    engine with bot.tick(), and a run at start that came late would land in the
    middle of a test's steps, at a moved clock (a late 13:00 reminder once
    arrived in place of a /today answer). The wait took 0.16 s in the median and
    0.48 s at most over the 231 starts of a fast-suite run (-n 4, 2026-12-01),
    and the suite's time did not change measurably (74 to 80 s against 74 to
    76 s). Best effort: after ``timeout`` the test goes on (on a loaded machine
    the run at start was once seen not to finish within 30 s in about 2% of
    starts; cause not found).
    """
    await start_polling_app(app, poll_timeout=1)
    dispatcher = services(app).dispatcher
    if dispatcher is None:
        return
    for _ in range(int(timeout / 0.01)):
        if dispatcher.ticks:
            break
        await asyncio.sleep(0.01)


def build(config: Config, *, clock: FakeClock, db: Database | None, pace: ScaledTime) -> App:
    """build_application with the pacer on pace_time (what `rehab-bot run` builds, on the tests' clocks)."""
    return build_application(config, clock=clock, db=db, monotonic=pace.monotonic, sleep=pace.sleep)


@pytest.fixture
def pace_time(request: pytest.FixtureRequest) -> ScaledTime:
    """The pacer's and the fake Bot API's clock: scaled, or real for `timing` and `realtime` tests."""
    real = request.node.get_closest_marker("timing") or request.node.get_closest_marker("realtime")
    return ScaledTime(1.0 if real else PACE_SCALE)


@pytest.fixture
async def tg(pace_time: ScaledTime) -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TEST_TOKEN, monotonic=pace_time.monotonic) as server:
        yield server


@pytest.fixture
async def bot_factory(
    tg: FakeTelegram, clock: FakeClock, database_factory: Callable[..., Any], pace_time: ScaledTime
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
        app = build(config, clock=clock, db=db, pace=pace_time)
        await start_app(app)
        bot = Bot(app=app, config=config, clock=clock, tg=tg, pace=pace_time)
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
