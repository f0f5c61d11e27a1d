"""``rehab-bot demo``: the real bot, its engine and a seeded clinic, against the embedded fake Bot API.

The same Application and engine as ``rehab-bot run`` (bot/app.build_application and
start_polling_app) poll rehab_bot/demo/telegram_server.FakeTelegram on 127.0.0.1 with a token that
exists nowhere else; the database is a SQLite file in a temporary folder (mode 0700, removed at
exit), seeded by rehab_bot/demo/seed.py; the clock is the bot's injected clock (rehab_bot/clock.py),
a FakeClock that moves only when the visitor asks: "next reminder" or "+1 day". Moving it runs
what the bot's repeating jobs would have run at every instant something fell due on the way (the
engine's tick, the end-of-day sweep, check-in expiry), as tests/e2e/test_journey.py does.

The page (rehab_bot/demo/page.py) shows a patient's and a therapist's chats; what the visitor types
and presses becomes real updates through the fake server. Nothing goes to the network, nothing is
read from config.toml or REHAB_BOT_* variables, and nothing is written outside the folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time as clock_time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from rehab_bot import redflag
from rehab_bot.clock import FakeClock
from rehab_bot.config import ClinicConfig, Config, DatabaseConfig, DeliveryConfig, TelegramConfig, WebConfig
from rehab_bot.content import load_content
from rehab_bot.db import Database
from rehab_bot.demo import seed
from rehab_bot.demo.telegram_server import FakeTelegram, FakeUser
from rehab_bot.files import touch_private
from rehab_bot.models import Delivery, DeliveryStatus, Patient, ReminderRule
from rehab_bot.schedule import zone

log = logging.getLogger(__name__)

# A token in Telegram's format that only the embedded server knows.
DEMO_TOKEN = "123456789:DEMO-token-known-only-to-the-fake-server"  # noqa: S105 - not a secret
CLINIC = "Demo Clinic"
BOT_USERNAME = "rehab_demo_bot"
DAY = timedelta(days=1)


def demo_config(folder: Path, tg: FakeTelegram, language: str = "en") -> Config:
    """The demo's configuration: built here, never read from the environment or a file.

    The web app (dashboard) is on, on a free loopback port, with a session key made for this run
    (so no secret file is written).
    """
    return Config(
        clinic=ClinicConfig(name=CLINIC, timezone="Europe/Berlin", language=language),
        telegram=TelegramConfig(token=DEMO_TOKEN, base_url=tg.base_url, base_file_url=tg.base_file_url),
        database=DatabaseConfig(url=f"sqlite+aiosqlite:///{folder / 'demo.db'}"),
        delivery=DeliveryConfig(poll_interval=1.0),
        web=WebConfig(listen="127.0.0.1:0", secret=secrets.token_urlsafe(48), secret_file=folder / "web-secret"),
    )


@dataclass
class Demo:
    """The running demo: fake Telegram, the bot, the clock, and the two people the visitor plays."""

    folder: Path
    language: str = "en"
    clock: FakeClock = field(default_factory=lambda: FakeClock(datetime.now(UTC)))
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    tg: FakeTelegram | None = None
    app: Any = None
    seeded: seed.Seeded | None = None
    patient: FakeUser | None = None
    therapist: FakeUser | None = None
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)
    dashboard: Callable[..., Any] | None = None  # set when the web dashboard runs: a sign-in link (dashboard_link)

    @property
    def timezone(self) -> str:
        return self.config.clinic.timezone

    @property
    def config(self) -> Config:
        assert self.app is not None
        config: Config = self.app.bot_data["services"].config
        return config

    async def start(self) -> None:
        """Start the fake server, seed the clinic, start the bot."""
        from rehab_bot.bot.app import build_application, start_polling_app

        today = self.clock.now().astimezone(zone("Europe/Berlin")).date()
        self.clock = FakeClock(seed.demo_start(today, "Europe/Berlin"))
        self.started = self.clock.now()
        self.tg = FakeTelegram(token=DEMO_TOKEN, clock=self.clock.now)
        self.tg.BOT_USERNAME = BOT_USERNAME
        await self.tg.start()
        config = demo_config(self.folder, self.tg, self.language)
        touch_private(self.folder / "demo.db")  # health data, even made up: 0600 (SQLite's -wal/-shm follow it)
        db = Database(config.database.url)
        await db.upgrade()
        self.seeded = await seed.seed(db, load_content(config.content.dir), config, self.clock.now())
        self.patient = self.tg.user(self.seeded.visitor_id, "Patient", self.language)
        self.therapist = self.tg.user(self.seeded.therapist_id, "Alex", "en")
        self.app = build_application(config, clock=self.clock, db=db, monotonic=self.monotonic)
        await start_polling_app(self.app, poll_timeout=1)
        if self.app.bot_data["services"].web is not None:
            self.dashboard = self.dashboard_link
        await self.settle()

    async def dashboard_link(self, admin: bool = False) -> str:
        """A one-time sign-in link to the web dashboard for the therapist (or the clinic's admin, whose pages
        add staff, invitations, the audit log and the reports), as /dashboard hands out."""
        from rehab_bot import signin, staff

        assert self.seeded is not None
        services = self.app.bot_data["services"]
        async with self._db().session() as session:
            member = await staff.active_staff(session, self.seeded.admin_id if admin else self.seeded.therapist_id)
            assert member is not None
            token = await signin.create_link_token(session, member, self.clock.now())
            await session.commit()
        return f"{services.web.base_url}/signin?token={token}"

    def monotonic(self) -> float:
        """The pacer's time: real seconds plus every jump of the demo clock.

        Telegram's one message a second per chat holds in demo time: replies within one moment are
        a second apart, but a reminder at 09:00 does not hold up the one at 13:00 by a real second.
        """
        return clock_time.monotonic() + (self.clock.now() - self.started).total_seconds()

    async def stop(self) -> None:
        from rehab_bot.bot.app import CHART_WARM_UP_THREAD, stop_app

        if self.app is not None:
            await stop_app(self.app)
            self.app = None
        if self.tg is not None:
            await self.tg.stop()
        # The chart's warm-up (a daemon thread; the stop ends it after the chart it is drawing, about
        # a second) writes matplotlib's font cache into the folder (MPLCONFIGDIR): wait for it, so that
        # nothing is written there while the folder is removed, and no thread is inside matplotlib
        # while the interpreter shuts down.
        for thread in threading.enumerate():
            if thread.name == CHART_WARM_UP_THREAD:
                await asyncio.to_thread(thread.join, 30)

    # --- the clock ----------------------------------------------------------------------------

    async def _visitor_patient_id(self) -> int | None:
        assert self.seeded is not None
        async with self._db().session() as session:
            patient = (
                await session.exec(select(Patient).where(col(Patient.alias) == self.seeded.visitor_alias))
            ).first()
            return patient.id if patient is not None else None

    def _db(self) -> Database:
        db: Database = self.app.bot_data["services"].db
        return db

    async def next_due(self, patient_id: int | None = None) -> datetime | None:
        """The next instant a reminder rule (of this patient, or anyone's), a deferred message or a crisis
        question's unanswered alert falls due."""
        async with self._db().session() as session:
            rules = select(ReminderRule.next_due_at).where(
                col(ReminderRule.active).is_(True), col(ReminderRule.next_due_at).is_not(None)
            )
            waiting = select(Delivery.not_before).where(col(Delivery.status) == DeliveryStatus.QUEUED.value)
            if patient_id is not None:
                rules = rules.where(col(ReminderRule.patient_id) == patient_id)
                waiting = waiting.where(col(Delivery.patient_id) == patient_id)
            dues = [d for d in (await session.exec(rules)).all() if d is not None]
            dues += [d for d in (await session.exec(waiting)).all() if d is not None]
            # A crisis question left open: its alert is due then (the periodic check would raise it).
            minutes = self.app.bot_data["services"].config.staff.crisis_question_minutes
            question = await redflag.unanswered_question_due(session, timedelta(minutes=minutes), patient_id)
            dues += [question] if question is not None else []
        return min(dues) if dues else None

    async def settle(self) -> None:
        """Run, at the clock's now, what the bot's repeating jobs run: sweep, check-in expiry, the engine."""
        from rehab_bot.bot import checkin as checkin_bot
        from rehab_bot.bot import session as session_bot

        await session_bot.sweep(self.app)
        await checkin_bot.run_periodic(self.app)
        dispatcher = self.app.bot_data["services"].dispatcher
        if dispatcher is not None:
            await dispatcher.tick(wait=True)

    async def advance_to(self, until: datetime) -> None:
        """Move the clock to ``until``, stopping at every due instant and every local midnight on the way."""
        async with self.busy:
            while True:
                now = self.clock.now()
                due = await self.next_due()
                local = now.astimezone(zone(self.timezone))
                midnight = datetime.combine(local.date() + DAY, time(0), tzinfo=zone(self.timezone)).astimezone(UTC)
                stop = midnight if due is None or due <= now else min(due, midnight)
                if stop > until:
                    break
                self.clock.set(stop)
                await self.settle()
            if until > self.clock.now():
                self.clock.set(until)
            await self.settle()

    async def next_reminder(self) -> datetime:
        """Jump to the next reminder of the visitor's patient (anyone's before they enrol)."""
        mine = await self.next_due(await self._visitor_patient_id())
        target = mine if mine is not None else await self.next_due()
        now = self.clock.now()
        await self.advance_to(max(target or now + timedelta(hours=1), now))
        return self.clock.now()

    async def plus_day(self) -> datetime:
        await self.advance_to(self.clock.now() + DAY)
        return self.clock.now()


# What stops the demo as Ctrl+C does: SIGTERM (kill, a service manager) and SIGHUP (its terminal closed).
STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP as a stop request, for the times serve has not taken them over.

    Python's default for SIGTERM and SIGHUP ends the process on the spot, leaving the temporary folder
    (and its database) behind. Here the first stop signal is a KeyboardInterrupt, as Ctrl+C is, but
    only while ``armed`` (between arm and disarm: while the demo starts and runs); outside that, while
    the folder is made and removed, it is noted and raised by arm, so nothing cuts the folder's making
    or removal short. Later signals are ignored: a closed terminal may send SIGHUP twice (the
    terminal's and the shell's). While serve runs, its own handlers stop the demo in order.
    """

    def __init__(self) -> None:
        self.requested = False
        self.armed = False

    def interrupt(self, signum: int, frame: Any) -> None:
        if self.requested:
            return
        self.requested = True
        if self.armed:
            raise KeyboardInterrupt

    def arm(self) -> None:
        """From now on a stop signal interrupts; one that came before interrupts now."""
        self.armed = True
        if self.requested:
            raise KeyboardInterrupt

    def disarm(self) -> None:
        self.armed = False


@contextlib.contextmanager
def interrupt_on_stop_signals() -> Any:
    """StopSignals' handler for every STOP_SIGNALS signal, the earlier handlers put back afterwards.

    Outside the main thread signals cannot be handled, and nothing is changed.
    """
    signals = StopSignals()
    previous: dict[int, Any] = {}
    for sig in STOP_SIGNALS:
        with contextlib.suppress(ValueError):  # not the main thread
            previous[sig] = signal.signal(sig, signals.interrupt)
    try:
        yield signals
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def demo_folder() -> Any:
    """A private temporary folder (0700) for everything the demo writes, removed afterwards.

    Libraries that would write caches into the home folder (matplotlib's font cache) are
    pointed into it too.
    """
    folder = Path(tempfile.mkdtemp(prefix="rehab-bot-demo-"))
    previous = os.environ.get("MPLCONFIGDIR")
    os.environ["MPLCONFIGDIR"] = str(folder / "matplotlib")
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop("MPLCONFIGDIR", None)
        else:
            os.environ["MPLCONFIGDIR"] = previous
        shutil.rmtree(folder, ignore_errors=True)


async def serve(
    folder: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    language: str = "en",
    ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the demo and its page until ``stop`` is set or a STOP_SIGNALS signal comes; ``ready(url)`` once it serves.

    A second Ctrl+C (SIGINT) while it stops cuts the stop short (KeyboardInterrupt), as Python's does;
    a second SIGTERM or SIGHUP only asks again for the stop under way: closing a terminal can send
    SIGHUP twice (the terminal's and the shell's).
    """
    from rehab_bot.demo.page import DemoPage

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: dict[int, Any] = {}  # signal -> the handler it had before
    for sig in STOP_SIGNALS:
        previous = signal.getsignal(sig)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled[sig] = previous

    def release(signals: list[int]) -> None:
        # remove_signal_handler leaves Python's default (for SIGHUP and SIGTERM: die on the spot, the
        # folder left behind); the handler from before (interrupt_on_stop_signals) is put back.
        for sig in signals:
            previous = handled.pop(sig)
            loop.remove_signal_handler(sig)
            if previous is not None:
                signal.signal(sig, previous)

    demo = Demo(folder, language=language)
    page: DemoPage | None = None
    try:
        await demo.start()
        page = DemoPage(demo)
        url = await page.start(host, port)
        if ready is not None and not stop.is_set():
            ready(url)
        await stop.wait()
    finally:
        release([sig for sig in handled if sig == signal.SIGINT])
        try:
            if page is not None:
                await page.stop()
            await demo.stop()
        finally:
            release(list(handled))
