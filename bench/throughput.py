"""(b) CPU per delivered reminder; (c) draining a burst at Telegram's limit; (d) a patient's tap meanwhile.

The bot runs in this process exactly as ``rehab-bot run`` builds it
(build_application, startup, polling), against the fake Bot API server in a
child process, so the CPU counted here is the bot's alone.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import (
    FIRST_CHAT,
    BenchDatabase,
    FakeServerProcess,
    Figure,
    Results,
    bot_config,
    new_database,
    percentile,
    populate,
    postgres_backend_cpu,
)
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from rehab_bot.bot.app import DISPATCH_JOB, background_tasks, build_application, start_polling_app, stop_app
from rehab_bot.bot.services import svc as services
from rehab_bot.transport import OutgoingMessage

PRESS_USER = 777
HELP_USER = 778


async def _start_bot(server: FakeServerProcess, bdb: BenchDatabase, **delivery: Any) -> Any:
    db = await bdb.open()  # the caller closes it, also when starting fails
    http_client = delivery.pop("http_client", "aiohttp")
    config = bot_config(server.base, bdb.config(), poll_interval=3600.0, **delivery)
    if http_client != "aiohttp":
        from dataclasses import replace

        config = replace(config, telegram=replace(config.telegram, http_client=http_client))
    app = build_application(config, db=db)
    await start_polling_app(app, poll_timeout=10)
    # The dispatch job runs once at start (nothing is due yet) and then only
    # hourly; the bench runs the same job itself when the burst is in place.
    # The /progress chart's warm-up (a worker thread) must be over too: its CPU is not the engine's.
    await asyncio.gather(*background_tasks)
    await asyncio.sleep(0.5)
    return app


async def run_dispatch_job(app: Any) -> int:
    """Run the bot's dispatch job once, as its timer would; return how many reminders it sent."""
    dispatcher = services(app).dispatcher
    assert dispatcher is not None and app.job_queue is not None
    before = dispatcher.totals.sent
    [job] = app.job_queue.get_jobs_by_name(DISPATCH_JOB)
    await job.run(app)
    return int(dispatcher.totals.sent - before)


async def cpu_per_reminder(
    kind: str,
    workdir: Path,
    results: Results,
    *,
    reminders: int,
    http_client: str = "aiohttp",
    plain: bool = False,
) -> None:
    """CPU of this process (bot + database driver threads) per reminder delivered.

    plain=True swaps the session renderer for a fixed text, to show the
    engine's and the HTTP stack's share without the session feature's own
    per-reminder database work (informational).
    """
    client = "aiohttp" if http_client == "aiohttp" else f"{http_client} (PTB's default)"
    if plain:
        label = f"CPU per reminder, engine + HTTP only (fixed text, no session rendering), {client}"
    else:
        label = "CPU per delivered reminder" + ("" if http_client == "aiohttp" else f", {client}")
    bdb = new_database(kind, workdir, "cpu")
    async with FakeServerProcess() as server:
        await server.call("limits", **{"global": 1000, "chat": 1})
        app = None
        try:
            app = await _start_bot(
                server, bdb, paid_broadcast=True, paid_broadcast_rate=1000.0, http_client=http_client
            )
            assert bdb.db is not None
            await populate(bdb.db, patients=reminders, due_now=reminders, now=datetime.now(UTC))
            dispatcher = services(app).dispatcher
            assert dispatcher is not None
            if plain:
                text = OutgoingMessage("Time for your exercise session.", buttons=[[("Done", "bench:done")]])

                async def fixed(message: Any) -> OutgoingMessage:
                    return text

                dispatcher.sender.render = fixed  # type: ignore[attr-defined]
                dispatcher.sender.render_many = None  # type: ignore[attr-defined]
            pg_before = await postgres_backend_cpu(bdb.db) if kind == "postgres" else {}
            cpu0, wall0 = time.process_time(), time.monotonic()
            sent = await run_dispatch_job(app)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            pg_after = await postgres_backend_cpu(bdb.db) if kind == "postgres" else {}
            stats = await server.call("stats", min_chat=FIRST_CHAT)
        finally:
            if app is not None:
                await stop_app(app)
            await bdb.close()
    delivered = sent
    ok = delivered == reminders == stats["accepted"]
    per = cpu / delivered * 1000 if delivered else None
    note = (
        f"{delivered:,}/{reminders:,} delivered in {wall:.1f} s ({delivered / wall:.0f}/s, paced at most 1,000/s), "
        f"{cpu:.2f} s CPU ({cpu / wall * 100:.0f}% of a core); 429s: {stats['limit_violations']}"
    )
    if http_client == "aiohttp" and not plain:
        results.add(Figure(label, kind, per, "ms", "≤ 1.0 ms", per is not None and per <= 1.0 and ok, note))
    else:
        results.add(Figure(label, kind, per, "ms", "", None, note))
    if kind == "postgres" and delivered:
        server_cpu = sum(t - pg_before.get(pid, 0.0) for pid, t in pg_after.items())
        results.add(
            Figure(
                "… the same plus the PostgreSQL server's CPU for it",
                kind,
                (cpu + server_cpu) / delivered * 1000,
                "ms",
                "",
                None,
                f"the backends serving the bot used {server_cpu:.2f} s CPU "
                f"({server_cpu / delivered * 1000:.3f} ms per reminder; WAL writer etc. not counted)",
            )
        )


async def burst(
    kind: str, workdir: Path, results: Results, *, reminders: int, rate: float, help_every: float | None = None
) -> None:
    """Drain N due reminders at R msg/s (enforced by the server) while a patient taps a button.

    With help_every, a second patient sends /help that often as well (a
    mixed load, reported for information).
    """
    bdb = new_database(kind, workdir, "burst")
    delivery: dict[str, Any] = (
        {"global_rate": rate} if rate <= 30 else {"paid_broadcast": True, "paid_broadcast_rate": rate}
    )
    async with FakeServerProcess() as server:
        await server.call("limits", **{"global": rate, "chat": 1})
        app = None
        try:
            app = await _start_bot(server, bdb, **delivery)
            assert bdb.db is not None
            ping = InlineKeyboardMarkup([[InlineKeyboardButton("Ping", callback_data="bench:ping")]])
            await app.bot.send_message(PRESS_USER, "A message with a button to press", reply_markup=ping)
            await populate(bdb.db, patients=reminders, due_now=reminders, now=datetime.now(UTC))
            dispatcher = services(app).dispatcher
            assert dispatcher is not None
            started = time.monotonic()
            tick = asyncio.create_task(run_dispatch_job(app))
            await server.call("wait_sent", count=1, min_chat=FIRST_CHAT, timeout=60)
            await asyncio.sleep(0.5)
            await server.call("interact", user=PRESS_USER, mode="press", every=0.5)
            if help_every is not None:
                await server.call("interact", user=HELP_USER, mode="help", every=help_every)
            # Interact only while the burst is still draining: stop with ~1 s to go.
            while not tick.done():
                stats = await server.call("stats", min_chat=FIRST_CHAT)
                if stats["accepted"] >= reminders - rate:
                    break
                await asyncio.sleep(0.5)
            people = await server.call("stop_interact")
            sent = await tick
            tick_wall = time.monotonic() - started
            stats = await server.call("stats", min_chat=FIRST_CHAT)
        finally:
            if app is not None:
                await stop_app(app)
            await bdb.close()
    ideal = reminders / rate
    drained = (stats["last"] - stats["first"]) if stats["first"] is not None else None
    ratio = drained / ideal if drained is not None else None
    complete = sent == reminders == stats["accepted"]
    presses = people["latencies"]["press"]
    helps = people["latencies"]["help"]
    p95 = percentile(presses, 95)
    press_note = (
        f"p50 {percentile(presses, 50) or 0:.3f} s, max {max(presses, default=0):.3f} s, "
        f"{len(presses)} presses every 0.5 s, {people['unanswered']['press']} unanswered"
    )
    if help_every is not None:
        results.add(
            Figure(
                f"Button press → answer, p95, with /help every {help_every:g} s from another patient",
                kind,
                p95,
                "s",
                "",
                None,
                press_note,
            )
        )
        help95 = percentile(helps, 95)
        results.add(
            Figure(
                f"/help → first reply, p95, sent every {help_every:g} s during the burst",
                kind,
                help95,
                "s",
                "",
                None,
                f"p50 {percentile(helps, 50) or 0:.3f} s, {len(helps)} commands, "
                f"{people['unanswered']['help']} unanswered",
            )
        )
        return
    results.add(
        Figure(
            f"Burst drain time / (N/R), N={reminders:,} R={rate:g}/s",
            kind,
            ratio,
            "",
            "≤ 1.05",
            ratio is not None and ratio <= 1.05 and complete,
            f"first→last delivery {drained or 0:.1f} s vs N/R {ideal:.1f} s; whole tick {tick_wall:.1f} s; "
            f"{sent:,}/{reminders:,} sent; 429s from the server: {stats['limit_violations']}",
        )
    )
    results.add(
        Figure(
            "Button press → answer during the burst, p95",
            kind,
            p95,
            "s",
            "≤ 1 s",
            p95 is not None and p95 <= 1.0 and people["unanswered"]["press"] == 0,
            press_note,
        )
    )
