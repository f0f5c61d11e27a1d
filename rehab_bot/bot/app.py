"""Build the python-telegram-bot Application from config, and run it.

The Application is the only place that knows about every feature: each
feature module under rehab_bot.bot exposes ``register(app)``, like a router.
Services (config, database, clock, engine, metrics) live in one
:class:`Services` object in ``bot_data``; nothing is pickled.

Lifecycle: :func:`startup` (migrate, start the engine's job, health server,
command menus) and :func:`shutdown` run as PTB's post_init/post_shutdown under
``run_polling``/``run_webhook``, and are called directly by tests and by the
dispatch-only mode, so every path runs the same code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, SimpleUpdateProcessor

from rehab_bot.aiohttp_request import AiohttpRequest
from rehab_bot.bot import checkin, common, education, enrol, patient, render, session, staff, start
from rehab_bot.clock import Clock, SystemClock
from rehab_bot.config import Config
from rehab_bot.content import Content, load_content
from rehab_bot.db import Database
from rehab_bot.health import HealthServer
from rehab_bot.metrics import Metrics
from rehab_bot.ratelimit import Pacer
from rehab_bot.reminders import Dispatcher, Failed, Retry, Sent, TickReport, Unreachable
from rehab_bot.transport import PacingRateLimiter, TelegramSender

log = logging.getLogger(__name__)

DISPATCH_JOB = "dispatch"


@dataclass
class Services:
    """What handlers and jobs need, shared through bot_data["services"]."""

    config: Config
    db: Database
    clock: Clock
    metrics: Metrics
    pacer: Pacer
    dispatcher: Dispatcher | None = None
    health: HealthServer | None = None
    receive_updates: bool = True
    mode: str = "polling"
    extra: dict[str, Any] = field(default_factory=dict)
    # Loaded once in build_application; invalid content stops the start (ContentError).
    content: Content = field(default_factory=Content)


def services(context: ContextTypes.DEFAULT_TYPE | Application[Any, Any, Any, Any, Any, Any]) -> Services:
    """The Services of the running bot, from a handler context or the Application."""
    data = context.bot_data
    result = data["services"]
    assert isinstance(result, Services)
    return result


class TimedUpdateProcessor(SimpleUpdateProcessor):
    """Sequential update processing (ConversationHandler needs it) that times each update."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(max_concurrent_updates=1)
        self._metrics = metrics

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the handlers for one update and record how long they took."""
        started = time.perf_counter()
        try:
            await coroutine
        finally:
            self._metrics.handler_latency.observe(time.perf_counter() - started)


class RehabApplication(Application[Any, Any, Any, Any, Any, Any]):
    """PTB's Application, stopping the reminder engine's claims before the job queue waits for its tick."""

    async def stop(self) -> None:
        """Stop claiming reminders, then stop as PTB does (it waits for the running tick)."""
        svc = self.bot_data.get("services")
        if svc is not None and svc.dispatcher is not None:
            svc.dispatcher.stop_claiming()
        await super().stop()


def build_application(
    config: Config,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    receive_updates: bool = True,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """Build the Application: handlers, paced requests, engine services."""
    metrics = Metrics()
    delivery = config.delivery
    pacer = Pacer(delivery.effective_rate, delivery.per_chat_interval)
    builder = (
        ApplicationBuilder()
        .application_class(RehabApplication)
        .token(config.telegram.token)
        .base_url(config.telegram.base_url)
        .base_file_url(config.telegram.base_file_url)
        .rate_limiter(PacingRateLimiter(pacer))
        .concurrent_updates(TimedUpdateProcessor(metrics))
        .post_init(startup)
        .post_shutdown(shutdown)
    )
    # A send burst runs many requests at once; the default pool of 256 is
    # plenty for a window of 30, but the pool timeout must not fire while
    # requests wait for the pacer, which happens before the pool is used.
    pool_size = max(64, delivery.send_window * 2)
    if config.telegram.http_client == "aiohttp":
        # A fraction of the CPU per request of PTB's default httpx stack (bench/).
        request = AiohttpRequest(connection_pool_size=pool_size, read_timeout=config.telegram.request_timeout)
        builder = builder.request(request).get_updates_request(AiohttpRequest(connection_pool_size=1))
    else:
        builder = builder.connection_pool_size(pool_size).read_timeout(config.telegram.request_timeout)
    if not receive_updates:
        builder = builder.updater(None)
    app = builder.build()
    svc = Services(
        config=config,
        db=db or Database(config.database.url, echo=config.database.echo, pg_schema=config.database.pg_schema or None),
        clock=clock or SystemClock(),
        metrics=metrics,
        pacer=pacer,
        receive_updates=receive_updates,
        mode=config.telegram.mode if receive_updates else "dispatch-only",
        content=load_content(config.content.dir),
    )
    app.bot_data["services"] = svc
    common.register(app)
    # Enrolment first: its /start with an invite code must win over plain /start.
    enrol.register(app)
    start.register(app)
    session.register(app)
    checkin.register(app)
    patient.register(app)
    education.register(app)
    staff.register(app)
    common.register_fallbacks(app)
    return app


async def startup(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Migrate the database, start the engine's job and the health endpoint, set menus."""
    svc = services(app)
    await svc.db.upgrade()
    sender = TelegramSender(app.bot, render.render_due(app), render_many=render.render_due_many(app))
    svc.dispatcher = Dispatcher(svc.db, svc.clock, svc.config.delivery, svc.config.clinic, sender)
    assert app.job_queue is not None
    app.job_queue.run_repeating(
        dispatch_job,
        interval=svc.config.delivery.poll_interval,
        first=0.1,
        name=DISPATCH_JOB,
        job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
    )
    if svc.receive_updates:
        await common.set_command_menus(app)
        await staff.startup_menus(app)
    listen = svc.config.http.host_port
    if listen is not None:
        svc.health = HealthServer(
            listen[0], listen[1], lambda: health_status(app), svc.metrics, lambda: refresh_metrics(app)
        )
        await svc.health.start()
        log.info("health endpoint on http://%s:%d/healthz", svc.health.host, svc.health.port)


async def shutdown(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Stop the health endpoint and close the database."""
    svc = services(app)
    if svc.health is not None:
        await svc.health.stop()
    await svc.db.dispose()


async def dispatch_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send every reminder that is due (one tick of the engine)."""
    svc = services(context)
    if svc.dispatcher is None:
        return
    try:
        # Escalations and weekly digests are queued here, so they go out in this tick.
        await staff.clinic_tick(context)
    except Exception:  # the clinic's jobs must never stop reminders going out
        log.exception("clinic tick failed")
    report = await svc.dispatcher.tick()
    record_metrics(svc, report)


def record_metrics(svc: Services, report: TickReport) -> None:
    """Count a tick's outcomes into Prometheus counters."""
    for _, outcome in report.outcomes:
        if isinstance(outcome, Sent):
            svc.metrics.sent.labels(kind="any").inc()
        elif isinstance(outcome, Retry):
            svc.metrics.retried.inc()
        elif isinstance(outcome, Unreachable | Failed):
            svc.metrics.failed.labels(kind="any", reason=type(outcome).__name__.lower()).inc()


async def health_status(app: Application[Any, Any, Any, Any, Any, Any]) -> dict[str, bool | str]:
    """Database reachable; updates flowing (polling or webhook) unless dispatch-only."""
    svc = services(app)
    status: dict[str, bool | str] = {"mode": svc.mode, "database": await svc.db.ping()}
    if svc.receive_updates:
        status["telegram"] = bool(app.updater is not None and app.updater.running)
    job = app.job_queue.get_jobs_by_name(DISPATCH_JOB) if app.job_queue is not None else ()
    status["dispatcher"] = bool(job)
    return status


async def refresh_metrics(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Update gauges that are read from the database."""
    svc = services(app)
    if svc.dispatcher is not None:
        svc.metrics.backlog.set(await svc.dispatcher.backlog())


# --- running -------------------------------------------------------------------


async def start_polling_app(app: Application[Any, Any, Any, Any, Any, Any], *, poll_timeout: float = 10) -> None:
    """Start like run_polling does, without owning the event loop (tests, embedding)."""
    await app.initialize()
    await startup(app)
    if app.updater is not None:
        await app.updater.start_polling(poll_interval=0, timeout=int(poll_timeout), allowed_updates=Update.ALL_TYPES)
    await app.start()


async def stop_app(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Stop what start_polling_app started, in reverse order."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await shutdown(app)
    await app.shutdown()


def run(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Run until SIGINT/SIGTERM in the configured mode (polling, webhook or dispatch-only)."""
    svc = services(app)
    tg = svc.config.telegram
    if not svc.receive_updates:
        asyncio.run(_run_dispatch_only(app))
        return
    if tg.mode == "webhook":
        app.run_webhook(
            listen=tg.webhook_listen,
            port=tg.webhook_port,
            url_path=tg.webhook_path,
            webhook_url=tg.webhook_url,
            secret_token=tg.secret_token,
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        app.run_polling(allowed_updates=Update.ALL_TYPES)


async def _run_dispatch_only(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await start_polling_app(app)
    log.info("dispatch-only process running (no updates are received here)")
    try:
        await stop.wait()
    finally:
        await stop_app(app)
