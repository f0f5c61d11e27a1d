"""(e) One person floods the bot while a reminder burst drains and a crowd of patients use it (issue 11).

The bot runs in this process exactly as ``rehab-bot run`` builds it (default
inbound limit: 20 updates per 10 s per person, 16 updates at once), against
the fake Bot API server in a child process that enforces Telegram's limits
(R msg/s overall, 1 msg/s per chat). The simulated people live next to the
server. Once the burst is under way, for ``window`` seconds:

* a stranger sends ``flood`` text messages in ``flood_seconds``;
* ``others`` enrolled patients, evenly spread, each press a button (even
  ones: the bot's fallback answers the press) or send /help (odd ones);
* every 10 s a patient sends /pain and answers 8 (a red flag): the latency
  is from the press to the "Your pain is high" advice.

Measured: the others' latency (press → answerCallbackQuery, /help → first
reply, as received by the server), the red-flag latency, the burst's drain
ratio and the bot process's memory during the window.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from benchlib import FIRST_CHAT, FakeServerProcess, Figure, Results, new_database, percentile, populate, proc_status
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from throughput import _start_bot, run_dispatch_job

from rehab_bot.bot.app import stop_app
from rehab_bot.bot.services import svc as services

FLOODER = 9_000_000


async def flood(
    kind: str,
    workdir: Path,
    results: Results,
    *,
    reminders: int,
    others: int,
    window: float,
    flood_messages: int = 300,
    flood_seconds: float = 10.0,
    rate: float = 30.0,
) -> None:
    """Run the scenario once and add its figures."""
    bdb = new_database(kind, workdir, "flood")
    first_other = FIRST_CHAT + reminders
    red_flag_users = [first_other + others + n for n in range(int(window // 10))]
    async with FakeServerProcess() as server:
        app = None
        try:
            app = await _start_bot(server, bdb, global_rate=rate)
            assert bdb.db is not None
            now = datetime.now(UTC)
            # The burst's patients, then the others and the red-flag patients (nothing due for them).
            await populate(bdb.db, patients=reminders + others + len(red_flag_users), due_now=reminders, now=now)
            ping = InlineKeyboardMarkup([[InlineKeyboardButton("Ping", callback_data="bench:ping")]])
            pressers = [first_other + i for i in range(0, others, 2)]
            # A message with a button for each presser (paced by the bot at R/s, before the clock starts).
            for start in range(0, len(pressers), 100):
                batch = pressers[start : start + 100]
                await asyncio.gather(*(app.bot.send_message(c, "A button to press", reply_markup=ping) for c in batch))
            await server.call("limits", **{"global": rate, "chat": 1})
            processor = app.update_processor
            started = time.monotonic()
            tick = asyncio.create_task(run_dispatch_job(app))
            await server.call("wait_sent", count=1, min_chat=FIRST_CHAT, timeout=60)
            await asyncio.sleep(0.5)
            rss_start = own_status("VmRSS")
            await server.call("crowd", first_user=first_other, count=others, seconds=window)
            await server.call("red_flags", users=red_flag_users, every=10.0)
            await asyncio.sleep(2.0)
            await server.call("flood", user=FLOODER, count=flood_messages, seconds=flood_seconds)
            rss: list[int] = []
            while time.monotonic() - started < window + 5:
                rss.append(own_status("VmRSS"))
                await asyncio.sleep(1.0)
            people = await server.call("join", timeout=60)
            flooder = (await server.call("texts", user=FLOODER))["texts"]
            sent = await tick
            rss_end = own_status("VmRSS")
            tick_wall = time.monotonic() - started
            stats = await server.call("stats", min_chat=FIRST_CHAT, max_chat=first_other - 1)
            chats_left, senders_left = processor.chats_tracked(), processor.limit.tracked()
            dropped = services(app).metrics.updates_dropped.labels(reason="over_limit")._value.get()
        finally:
            if app is not None:
                await stop_app(app)
            await bdb.close()
    latencies = people["latencies"]["press"] + people["latencies"]["help"]
    unanswered = people["unanswered"]["press"] + people["unanswered"]["help"]
    p95, p99 = percentile(latencies, 95), percentile(latencies, 99)
    crowd_note = (
        f"{len(latencies):,} of {others:,} patients over {window:g} s (half press, half /help), "
        f"{unanswered} unanswered; p50 {percentile(latencies, 50) or 0:.3f} s, max {max(latencies, default=0):.3f} s"
    )
    results.add(
        Figure(
            "Flood: other patients' reply, p95",
            kind,
            p95,
            "s",
            "≤ 1 s",
            p95 is not None and p95 <= 1.0 and unanswered == 0,
            crowd_note,
        )
    )
    results.add(
        Figure("Flood: other patients' reply, p99", kind, p99, "s", "≤ 2 s", p99 is not None and p99 <= 2.0, "")
    )
    red = people["latencies"]["red_flag"]
    worst = max(red, default=None)
    results.add(
        Figure(
            "Flood: red-flag answer → advice, slowest",
            kind,
            worst,
            "s",
            "≤ 2 s",
            worst is not None and worst <= 2.0 and people["unanswered"]["red_flag"] == 0,
            f"{len(red)} patients answering /pain with 8, one every 10 s; p50 {percentile(red, 50) or 0:.3f} s",
        )
    )
    drained = (stats["last"] - stats["first"]) if stats["first"] is not None else None
    ideal = stats["in_span"] / rate
    ratio = drained / ideal if drained is not None else None
    results.add(
        Figure(
            f"Flood: burst drain time / (messages in it / R), N={reminders:,} R={rate:g}/s",
            kind,
            ratio,
            "",
            "≤ 1.05",
            ratio is not None and ratio <= 1.05 and sent == reminders == stats["accepted"],
            f"first→last reminder {drained or 0:.1f} s; {stats['in_span']:,} messages in that span "
            f"(reminders plus replies, which share the {rate:g}/s) → {ideal:.1f} s at R; N/R alone "
            f"{reminders / rate:.1f} s; {sent:,}/{reminders:,} sent; "
            f"429s from the server: {stats['limit_violations']}; whole tick {tick_wall:.1f} s",
        )
    )
    notices = sum(1 for t in flooder if "faster than I can answer" in t)
    results.add(
        Figure(
            "Flood: replies to the flooder",
            kind,
            float(len(flooder)),
            "",
            "≤ 21, one notice",
            len(flooder) <= 21 and notices == 1,
            f"{flood_messages} messages in {flood_seconds:g} s: {len(flooder) - notices} answered, {notices} "
            f"slow-down notice, {dropped:.0f} dropped before any handler ran",
        )
    )
    mb = 1024 * 1024
    growth = (max(rss) - rss_start) / mb if rss else None
    results.add(
        Figure(
            "Flood: bot memory growth during the flood window",
            kind,
            growth,
            "MB",
            "≤ 20 MB",
            growth is not None and growth <= 20 and chats_left == 0,
            f"VmRSS {rss_start / mb:.0f} MB at the start, peak {max(rss, default=0) / mb:.0f} MB, "
            f"{rss_end / mb:.0f} MB after the burst; chat locks left {chats_left}, senders remembered {senders_left}",
        )
    )


def own_status(key: str) -> int:
    """A /proc/self/status figure (VmRSS) of this process, the bot's, in bytes."""
    return proc_status(os.getpid(), key) or 0
