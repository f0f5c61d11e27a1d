"""Paid broadcasts with 1, 2 and 3 dispatch processes on one PostgreSQL: the combined rate and the budget.

Each run: a fresh schema with N session reminders due (16,000: a backlog, as
issue 14 asks; 4,000 with --quick), the fake Bot API server (in this process)
enforcing the configured paid-broadcast rate for the bot and 1 msg/s per
chat, and k `rehab-bot run --no-updates` processes started together, with the
default send window (BENCH_SEND_WINDOW sets another). The
combined rate is the N-th accepted reminder's arrival minus the first's, over
N. The processes share the configured rate (rehab_bot.send_budget), so the
combined rate may rise with k up to it and the server must answer no 429.
Targets: one process >= 600 msg/s, two >= 1.6x one, none above the rate.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from benchlib import REPO, Figure, Results, new_database, process_cpu

ONE = 600.0  # msg/s, one process (issue 14)
TWO = 1.6  # two processes, times one

if str(REPO / "tests" / "e2e") not in sys.path:
    sys.path.insert(0, str(REPO / "tests" / "e2e"))


def postgres_cpu() -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL server process on this machine (backends, WAL writer, autovacuum)."""
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "cmdline").read_bytes().startswith(b"postgres"):
                continue
        except OSError:
            continue
        seconds = process_cpu(int(entry.name))
        if seconds is not None:
            cpu[int(entry.name)] = seconds
    return cpu


async def combined_rate(
    results: Results,
    workdir: Path,
    *,
    reminders: int = 16_000,
    rate: float = 1_000,
    counts: tuple[int, ...] = (1, 2, 3),
) -> dict[int, float]:
    from factories import TEST_TOKEN
    from rig.telegram_server import FakeTelegram
    from test_processes import bot_env, seed_due, spawn, stop, wait_for_sends

    rates: dict[int, float] = {}
    for k in counts:
        bdb = new_database("postgres", workdir, f"procs{k}")
        try:
            db = await bdb.open()
            await seed_due(db, reminders)
            await db.dispose()
            server_cpu0 = time.process_time()
            async with FakeTelegram(token=TEST_TOKEN) as tg:
                tg.enforce_limits(global_per_second=rate, per_chat_per_second=1)
                env = bot_env(
                    tg,
                    db,
                    REHAB_BOT_DELIVERY_PAID_BROADCAST="true",
                    REHAB_BOT_DELIVERY_PAID_BROADCAST_RATE=str(int(rate)),
                    **(
                        {"REHAB_BOT_DELIVERY_SEND_WINDOW": os.environ["BENCH_SEND_WINDOW"]}
                        if "BENCH_SEND_WINDOW" in os.environ
                        else {}
                    ),
                )
                procs = [spawn(["run", "--no-updates"], env, workdir) for _ in range(k)]
                try:
                    # The bots' CPU at their first accepted send: start-up, to tell apart from sending.
                    await wait_for_sends(tg, 1, 120, procs)
                    startup_cpu = sum(process_cpu(proc.pid) or 0.0 for proc in procs)
                    pg_before = postgres_cpu()
                    await wait_for_sends(tg, reminders, 900, procs)
                    pg_after = postgres_cpu()  # before the bots stop: their backends end with them
                    pg_cpu = sum(t - pg_before.get(pid, 0.0) for pid, t in pg_after.items())
                    # The bots' CPU (start-up included) and this process's since the seeding (the fake
                    # server), to tell a bot short of CPU from one waiting on the others.
                    bots_cpu = sum(process_cpu(proc.pid) or 0.0 for proc in procs)
                    server_cpu = time.process_time() - server_cpu0
                finally:
                    for proc in procs:
                        await stop(proc)
                sends = tg.calls("sendMessage")
                ok = sorted(r.time for r in sends if r.ok)
                rejected = sum(1 for r in sends if r.response_status == 429)
        finally:
            await bdb.close()
        rates[k] = (len(ok) - 1) / (ok[-1] - ok[0])
        span = ok[-1] - ok[0]
        cpu_note = (
            f"; CPU over the run: the bot process{'es' if k > 1 else ''} {bots_cpu / len(ok) * 1000:.2f} ms per "
            f"message ({bots_cpu / span / k * 100:.0f}% of a core each, start-up included), "
            f"{(bots_cpu - startup_cpu) / len(ok) * 1000:.2f} ms per message after the first send "
            f"({(bots_cpu - startup_cpu) / span / k * 100:.0f}% of a core each), the fake server "
            f"{server_cpu / len(ok) * 1000:.2f} ms per message, PostgreSQL (every server process) "
            f"{pg_cpu / len(ok) * 1000:.2f} ms per message after the first send"
        )
        within = rates[k] <= rate * 1.02 and rejected == 0
        if k == 1:
            target, passed = f"≥ {ONE:g} msg/s, ≤ {rate:g}, 0 × 429", within and rates[k] >= ONE
        elif k == 2:
            target, passed = f"≥ {TWO:g}× one, ≤ {rate:g}, 0 × 429", within and rates[k] >= TWO * rates[1]
        else:
            target, passed = f"≤ {rate:g} msg/s, 0 × 429", within
        results.add(
            Figure(
                f"Paid broadcasts, {k} dispatch process{'es' if k > 1 else ''}: combined rate, {reminders:,} backlog",
                "postgres",
                rates[k],
                "msg/s",
                target,
                passed,
                f"{len(ok):,} of {reminders:,} accepted, 429s: {rejected}; "
                + (f"{rates[k] / rates[1]:.2f}× one process" if k > 1 else "one process alone")
                + cpu_note,
            )
        )
    return rates


async def main() -> None:
    import tempfile

    results = Results()
    with tempfile.TemporaryDirectory(prefix="rehab-bench-") as tmp:
        await combined_rate(results, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
