"""Build the python-telegram-bot Application from config, and run it.

The Application is the only place that knows about every feature: each
feature module under rehab_bot.bot exposes ``register(app)``, like a router.
Services (config, database, clock, engine, metrics) live in one
:class:`Services` object in ``bot_data``; nothing is pickled.

Lifecycle (:func:`serve`, what ``rehab-bot run`` runs, and
:func:`start_polling_app` for tests): :func:`prepare` migrates the database
and takes the receiver lease before Telegram is contacted; :func:`connect`
asks Telegram who the bot is, retrying network failures with backoff;
:func:`startup` (the engine's job, the lease heartbeat, health server,
command menus) and :func:`shutdown` (releases the lease, closes the
database) follow, so every path runs the same code. PTB's run_polling and
run_webhook are not used: they contact Telegram before anything else and
leave sessions open when it cannot be reached.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes

from rehab_bot import crisis_model, receiver, report
from rehab_bot import session as session_core
from rehab_bot.aiohttp_request import AiohttpRequest
from rehab_bot.bot import (
    care,
    caregiver,
    checkin,
    common,
    education,
    enrol,
    experiments,
    patient,
    render,
    session,
    staff,
    start,
    timing,
    web,
)
from rehab_bot.bot import services as bot_services
from rehab_bot.bot.services import App, Services
from rehab_bot.bot.updates import ChatUpdateProcessor, RetryWhenLocked, slow_down_notice
from rehab_bot.clock import Clock, SystemClock
from rehab_bot.config import Config, ConfigError
from rehab_bot.content import load_content
from rehab_bot.db import Database
from rehab_bot.health import HealthServer
from rehab_bot.inbound import InboundLimit
from rehab_bot.metrics import Metrics
from rehab_bot.ratelimit import Pacer
from rehab_bot.receiver import HEARTBEAT_SECONDS, Holder
from rehab_bot.redflag import is_crisis
from rehab_bot.reminders import Dispatcher, Failed, Retry, Sent, TickReport, Unreachable
from rehab_bot.send_budget import SendBudget
from rehab_bot.transport import BotApi, PacingRateLimiter, TelegramSender

log = logging.getLogger(__name__)

# Set when the bot stops: the chart's warm-up then ends early (see _warm_up_chart).
chart_warm_up_stop = threading.Event()
# Tasks started at start-up that nothing awaits (kept here so they are not garbage-collected;
# bench/ waits for them so that the chart's warm-up is not counted as the engine's CPU).
background_tasks: set[asyncio.Task[None]] = set()

DISPATCH_JOB = "dispatch"
CHART_WARM_UP = "chart-warm-up-started"
CHART_WARM_UP_THREAD = "rehab-bot-chart-warm-up"
LEASE_JOB = "receiver-lease"


class RehabApplication(App):
    """PTB's Application, stopping the reminder engine's claims before the job queue waits for its tick."""

    async def stop(self) -> None:
        """Stop claiming reminders, then stop as PTB does (it waits for the running tick)."""
        svc = self.bot_data.get("services")
        if svc is not None and svc.dispatcher is not None:
            svc.dispatcher.stop_claiming()
        chart_warm_up_stop.set()
        await super().stop()


def build_application(
    config: Config,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    receive_updates: bool = True,
    monotonic: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> App:
    """Build the Application: handlers, paced requests, engine services.

    ``monotonic`` and ``sleep`` are the pacer's time (default time.monotonic and asyncio.sleep);
    `rehab-bot demo` passes a monotonic that also moves when its clock jumps, so a message sent
    hours earlier in demo time holds up nothing; the end-to-end tests pass a ScaledTime's pair
    (rehab_bot.clock), so a second of pacing takes a fraction of one.
    """
    metrics = Metrics()
    delivery = config.delivery
    pacer = Pacer(
        delivery.effective_rate,
        delivery.per_chat_interval,
        monotonic=monotonic or time.monotonic,
        sleep=sleep or asyncio.sleep,
    )
    inbound = config.inbound
    # Concurrent across chats, in order within one (ConversationHandler needs that), inbound limit first.
    processor = ChatUpdateProcessor(
        metrics,
        max_concurrent=inbound.max_concurrent,
        limit=InboundLimit(inbound.user_limit, inbound.user_window_seconds),
    )
    builder = (
        ApplicationBuilder()
        .application_class(RehabApplication)
        .token(config.telegram.token)
        .base_url(config.telegram.base_url)
        .base_file_url(config.telegram.base_file_url)
        .rate_limiter(PacingRateLimiter(pacer))
        .concurrent_updates(processor)
        .post_init(startup)
        .post_shutdown(shutdown)
    )
    # A send burst runs many requests at once; the default pool of 256 is
    # plenty for a window of 30, but the pool timeout must not fire while
    # requests wait for the pacer, which happens before the pool is used.
    pool_size = max(64, delivery.window * 2)
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
    crisis_model.model_of(*svc.content.crisis_examples)  # learned now (about 1.2 s), not at a first message
    processor.notice = lambda update: slow_down_notice(
        app.bot, update, lambda u: common.language_for(u, app.context_types.context.from_update(u, app))
    )
    processor.is_crisis = lambda text: is_crisis(text, svc.content)
    # Before common's error handler: a locked SQLite database is retried, not reported.
    app.add_error_handler(RetryWhenLocked())
    common.register(app)
    # Enrolment first: its /start with an invite code must win over plain /start.
    enrol.register(app)
    start.register(app)
    session.register(app)
    checkin.register(app)
    patient.register(app)
    education.register(app)
    timing.register(app)
    experiments.register(app)
    staff.register(app)
    web.register(app)
    care.register(app)
    caregiver.register(app)
    common.register_fallbacks(app)
    return app


async def prepare(app: App) -> None:
    """What needs no Telegram: migrate the database and, to receive updates, take the receiver lease.

    Raises receiver.ReceiverBusy when another live process receives updates.
    Idempotent, so startup() can call it again.
    """
    svc = bot_services.svc(app)
    if svc.config.database.echo and not svc.echo_warned:
        svc.echo_warned = True
        log.warning(
            "[database] echo is on: every SQL statement is logged, with health data; turn it off after debugging"
        )
    await svc.db.upgrade()
    if svc.receive_updates and svc.lease is None:
        holder = Holder.this_process(svc.mode)
        await receiver.acquire(svc.db, holder, svc.clock.now())
        svc.lease = holder


async def startup(app: App) -> None:
    """Migrate the database, start the engine's job and the health endpoint, set menus."""
    svc = bot_services.svc(app)
    await prepare(app)
    await staff.check_alert_reach(app)  # logs at ERROR, once per start, when alerts can reach nobody
    if svc.lease is not None:
        assert app.job_queue is not None
        app.job_queue.run_repeating(
            lease_heartbeat, interval=HEARTBEAT_SECONDS, first=HEARTBEAT_SECONDS, name=LEASE_JOB
        )
    if svc.db.dialect == "postgresql":
        # Other processes may send for this bot too: share one rate budget with them.
        budget = SendBudget(svc.db, svc.pacer, svc.config.delivery.effective_rate)
        await budget.start()
        svc.send_budget = budget
    request = app.bot.request
    # Reminders take the lean path on the aiohttp backend (rehab_bot.transport.BotApi).
    api = BotApi(request, app.bot.base_url, svc.pacer) if isinstance(request, AiohttpRequest) else None
    sender = TelegramSender(
        app.bot, render.render_due(app), render_many=render.render_due_many(app), api=api, now=svc.clock.now
    )
    # The dispatcher opens each window's exercise sessions in the window's claim transaction.
    delivery = svc.config.delivery
    opener = session_core.window_opener(svc.content, (delivery.taper_after_weeks, delivery.taper_adherence))
    svc.dispatcher = Dispatcher(svc.db, svc.clock, svc.config.delivery, svc.config.clinic, sender, open_window=opener)
    assert app.job_queue is not None
    common.repeat(app, dispatch_job, every=svc.config.delivery.poll_interval, first=0.1, name=DISPATCH_JOB)
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
    await web.start_web(app)
    # What exists now (modules, content, the Application) lives as long as the process: keep it out
    # of the garbage collector's full scans, whose cost grows with the heap and which otherwise run
    # every few thousand allocations of a reminder burst. shutdown() hands it back to the collector
    # (a process that builds bot after bot, like the tests, would otherwise keep every one).
    gc.freeze()


async def _warm_up_chart() -> None:
    """report.warm_up in a daemon thread: unlike the loop's executor, it never holds up a stop (SIGTERM)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[BaseException | None] = loop.create_future()

    def finished(error: BaseException | None) -> None:
        if not done.done():
            done.set_result(error)

    def work() -> None:
        error: BaseException | None = None
        try:
            report.warm_up(stop=chart_warm_up_stop)
        except Exception as exc:
            error = exc
        try:
            loop.call_soon_threadsafe(finished, error)
        except RuntimeError:  # the loop is closed: the bot stopped meanwhile
            pass

    chart_warm_up_stop.clear()
    threading.Thread(target=work, name=CHART_WARM_UP_THREAD, daemon=True).start()
    error = await done
    if error is not None:  # the first chart is then drawn cold, nothing worse
        log.warning("could not prepare the progress chart: %s", type(error).__name__)


async def shutdown(app: App) -> None:
    """Stop the health endpoint and close the database."""
    gc.unfreeze()
    svc = bot_services.svc(app)
    if svc.health is not None:
        await svc.health.stop()
    await web.stop_web(app)
    if svc.send_budget is not None:
        await svc.send_budget.stop()
        svc.send_budget = None
    if svc.lease is not None:
        try:
            await receiver.release(svc.db, svc.lease)
        except Exception as exc:  # the lease then expires on its own
            log.warning("could not release the receiver lease: %s", type(exc).__name__)
        svc.lease = None
    await svc.db.dispose()


async def lease_heartbeat(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Renew the receiver lease; if another process took it over, stop receiving."""
    svc = bot_services.svc(context)
    if svc.lease is None:
        return
    try:
        held = await receiver.renew(svc.db, svc.lease, svc.clock.now())
    except Exception as exc:  # the database is away for a moment: try again at the next beat
        log.warning("could not renew the receiver lease: %s", type(exc).__name__)
        return
    if not held:
        log.error(
            "another process took over the receiver lease (this one missed its heartbeats); "
            "stopping so that only one process receives updates"
        )
        svc.lease = None
        if svc.stop is not None:
            svc.stop.set()
        elif context.application.updater is not None and context.application.updater.running:
            await context.application.updater.stop()


async def dispatch_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send every reminder that is due (one tick of the engine)."""
    svc = bot_services.svc(context)
    if svc.dispatcher is None:
        return
    try:
        # Escalations and weekly digests are queued here, so they go out in this tick.
        await staff.clinic_tick(context)
    except Exception:  # the clinic's jobs must never stop reminders going out
        log.exception("clinic tick failed")
    try:
        # Unanswered care-team messages to the admins, caregivers' copies: also sent in this tick.
        await caregiver.care_tick(context)
    except Exception:
        log.exception("care tick failed")
    report = await svc.dispatcher.tick()
    record_metrics(svc, report)
    # Tests and the demo run a tick with the Application itself as the holder.
    application: Any = context if isinstance(context, Application) else context.application
    if svc.receive_updates and not application.bot_data.get(CHART_WARM_UP):
        # The first /progress after a start would pay matplotlib's import and font cache (about a
        # second): pay it now, in a thread, once the engine has sent what was due at the start
        # (the warm-up's CPU would slow that burst, and a stop during it).
        application.bot_data[CHART_WARM_UP] = True
        task = asyncio.get_running_loop().create_task(_warm_up_chart(), name="rehab-bot-chart-warm-up")
        background_tasks.add(task)
        task.add_done_callback(background_tasks.discard)


def record_metrics(svc: Services, report: TickReport) -> None:
    """Count a tick's outcomes into Prometheus counters."""
    for _, outcome in report.outcomes:
        if isinstance(outcome, Sent):
            svc.metrics.sent.labels(kind="any").inc()
        elif isinstance(outcome, Retry):
            svc.metrics.retried.inc()
        elif isinstance(outcome, Unreachable | Failed):
            svc.metrics.failed.labels(kind="any", reason=type(outcome).__name__.lower()).inc()


async def health_status(app: App) -> dict[str, bool | str]:
    """Database reachable; updates flowing (polling or webhook) unless dispatch-only; alerts reach someone."""
    svc = bot_services.svc(app)
    status: dict[str, bool | str] = {"mode": svc.mode, "database": await svc.db.ping()}
    if svc.receive_updates:
        status["telegram"] = bool(app.updater is not None and app.updater.running)
    job = app.job_queue.get_jobs_by_name(DISPATCH_JOB) if app.job_queue is not None else ()
    status["dispatcher"] = bool(job)
    # Reported, not a liveness failure (a restart cannot add staff): false when alerts reach nobody.
    status["alerts"] = (await staff.alert_reach(app)).anyone
    return status


async def refresh_metrics(app: App) -> None:
    """Update gauges that are read from the database."""
    svc = bot_services.svc(app)
    if svc.dispatcher is not None:
        svc.metrics.backlog.set(await svc.dispatcher.backlog())


# --- running -------------------------------------------------------------------


async def start_polling_app(app: App, *, poll_timeout: float = 10) -> None:
    """Start like `rehab-bot run` does, without owning the event loop (tests, embedding)."""
    await prepare(app)
    await app.initialize()
    await startup(app)
    if app.updater is not None:
        await app.updater.start_polling(
            poll_interval=0,
            timeout=int(poll_timeout),
            allowed_updates=Update.ALL_TYPES,
            error_callback=_polling_error_callback(),
        )
    await app.start()


async def stop_app(app: App) -> None:
    """Stop what start_polling_app started, in reverse order."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await shutdown(app)
    await app.shutdown()
    await app.bot.shutdown()  # closes the HTTP sessions even if initialize() never completed


def run(app: App) -> None:
    """Run until SIGINT/SIGTERM in the configured mode (polling, webhook or dispatch-only).

    Raises receiver.ReceiverBusy and TokenRejected for the CLI to report.
    """
    try:
        asyncio.run(serve(app))
    finally:
        _end_warm_up()


def _end_warm_up(timeout: float = 10.0) -> None:
    """Wait (at most timeout) for the chart warm-up thread, told to stop at shutdown, before the interpreter
    exits: a daemon thread still in matplotlib's C++ code then aborts the process ("terminate called
    without an active exception", exit -6)."""
    chart_warm_up_stop.set()
    for thread in threading.enumerate():
        if thread.name == CHART_WARM_UP_THREAD:
            thread.join(timeout)


class TokenRejected(Exception):
    """Telegram answered 401 to getMe: the token is wrong or was revoked."""


def _not_the_bot_api(exc: BaseException) -> bool:
    """True when python-telegram-bot read a 401/404 as InvalidToken although the answer was no Bot API
    JSON at all (its cause is 'Invalid server response'): [telegram] base_url names another server."""
    from telegram.error import TelegramError

    cause = exc.__cause__
    while cause is not None:  # Bot.initialize wraps the request's InvalidToken in one of its own
        if isinstance(cause, TelegramError) and cause.message == "Invalid server response":
            return True
        cause = cause.__cause__
    return False


def _wrong_base_url(config: Config, exc: BaseException) -> ConfigError:
    from telegram.error import TelegramError

    # The request's own InvalidToken says the HTTP status: "Not Found (404). Parsing the server response ..."
    first = exc.__cause__ if isinstance(exc.__cause__, TelegramError) else exc
    status = first.message.split(".", 1)[0] if isinstance(first, TelegramError) else type(exc).__name__
    return ConfigError(
        "telegram.base_url",
        f"is {config.telegram.base_url}, whose server answered {status} with something that is not the Bot API",
        "check the address (Telegram's is https://api.telegram.org/bot; a self-hosted server's ends in /bot)",
    )


async def bot_username(config: Config) -> str:
    """Ask Telegram for the bot's username (getMe) with the configured token and server."""
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError, TelegramError

    from rehab_bot.config import ConfigError

    tg = config.telegram
    bot = Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url)
    try:
        async with bot:
            return bot.username
    except InvalidToken as exc:
        if _not_the_bot_api(exc):
            raise _wrong_base_url(config, exc) from exc
        raise ConfigError(
            "telegram.token", "was refused by Telegram", "copy it again from @BotFather, or pass --bot-username"
        ) from exc
    except NetworkError as exc:
        raise ConfigError(
            "telegram.base_url",
            f"could not be reached ({type(exc).__name__})",
            "check the network, or pass --bot-username to work offline",
        ) from exc
    except TelegramError as exc:
        raise ConfigError("telegram.token", f"could not be used to ask for the bot's name ({exc.message})") from exc


def _api_host(config: Config) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(config.telegram.base_url)
    return parts.netloc.rsplit("@", 1)[-1] or config.telegram.base_url


def _reason(exc: BaseException) -> str:
    """A short, token-free reason for a network failure."""
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    os_error = getattr(cause, "os_error", None)  # aiohttp's ClientConnectorError
    if isinstance(os_error, OSError) and os_error.strerror:
        return str(os_error.strerror)
    if isinstance(cause, OSError) and cause.strerror:
        return str(cause.strerror)
    text = str(cause) or type(cause).__name__
    return text.splitlines()[0][:200]


async def connect(app: App, stop: asyncio.Event) -> bool:
    """app.initialize() (getMe), retrying network failures with backoff until stop is set.

    One warning line for the first failure, DEBUG for the retries, INFO once
    connected; False if stopped before Telegram answered.
    """
    from telegram.error import InvalidToken, NetworkError

    host = _api_host(bot_services.svc(app).config)
    delay, failures = 1.0, 0
    while True:
        try:
            await app.initialize()
        except InvalidToken as exc:
            if _not_the_bot_api(exc):
                raise _wrong_base_url(bot_services.svc(app).config, exc) from exc
            raise TokenRejected(host) from exc
        except NetworkError as exc:
            failures += 1
            line = "cannot reach the Bot API at %s: %s; check the network or [telegram] base_url (retrying)"
            log.log(logging.WARNING if failures == 1 else logging.DEBUG, line, host, _reason(exc))
        else:
            if failures:
                log.info("reached the Bot API at %s after %d failed attempt(s)", host, failures)
            return True
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            delay = min(delay * 2, 60.0)
            continue
        return False


def _polling_error_callback() -> Any:
    """Log polling failures in one line each; a 409 Conflict once, naming its cause."""
    from telegram.error import Conflict, TelegramError

    told = {"conflict": False}

    def on_error(exc: TelegramError) -> None:
        if isinstance(exc, Conflict):
            if not told["conflict"]:
                told["conflict"] = True
                log.error(
                    "Telegram answers 409 Conflict to getUpdates: another program receives updates for this "
                    "bot token (a rehab-bot on another database or host, or another bot). Only one may; stop "
                    "the other one (this message is logged once)"
                )
            return
        log.warning("polling for updates failed: %s", _reason(exc))

    return on_error


async def serve(app: App) -> None:
    """The whole life of `rehab-bot run`: database first, then Telegram, until SIGINT/SIGTERM."""
    import signal

    svc = bot_services.svc(app)
    tg = svc.config.telegram
    stop = asyncio.Event()
    svc.stop = stop
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        # The database is created, migrated and the lease taken before Telegram is contacted.
        await prepare(app)
        if not await connect(app, stop):
            return
        await startup(app)
        if app.updater is not None:
            if tg.mode == "webhook":
                await app.updater.start_webhook(
                    listen=tg.webhook_listen,
                    port=tg.webhook_port,
                    url_path=tg.webhook_path,
                    webhook_url=tg.webhook_url,
                    secret_token=tg.secret_token,
                    allowed_updates=Update.ALL_TYPES,
                    bootstrap_retries=5,
                )
            else:
                await app.updater.start_polling(
                    allowed_updates=Update.ALL_TYPES,
                    bootstrap_retries=5,
                    error_callback=_polling_error_callback(),
                )
        await app.start()
        if app.updater is None:
            log.info("dispatch-only process running (no updates are received here)")
        else:
            log.info("receiving updates (%s)", svc.mode)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await stop_app(app)
