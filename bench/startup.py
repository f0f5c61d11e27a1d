"""(a) Start-up at scale: the real ``rehab-bot run`` against 100,000 patients x 3 daily slots.

The database is filled first (bulk inserts, not measured). Then the bot is
spawned as a child process with a config file pointing at a fake Bot API
server running in this process; we measure from the spawn to the first
sendMessage the server receives, and read the child's peak RSS (VmHWM)
from /proc before stopping it. The naive design (one JobQueue.run_daily job
per slot) is measured in bench/naive_jobqueue.py for comparison.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchlib import (
    BENCH,
    TOKEN,
    Figure,
    Results,
    bot_config,
    config_toml,
    new_database,
    populate,
    proc_status,
)
from rig.telegram_server import FakeTelegram

MB = 1024 * 1024
SLOTS = ("09:00", "13:00", "18:00")  # the example programme's default times


def _bot_command() -> list[str]:
    script = Path(sys.executable).parent / "rehab-bot"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rehab_bot"]


async def startup(
    kind: str, workdir: Path, results: Results, *, patients: int, due_now: int, informational: bool = False
) -> tuple[float | None, float | None]:
    """Time from spawning `rehab-bot run` to its first sendMessage, and its peak RSS."""
    bdb = new_database(kind, workdir, "startup")
    log_path = workdir / f"startup-{kind}.log"
    first: float | None = None
    peak: int | None = None
    exited: int | None = None
    try:
        db = await bdb.open()
        began = time.monotonic()
        await populate(db, patients=patients, slots=SLOTS, due_now=due_now, now=datetime.now(UTC))
        await db.dispose()  # the child must be the only user of the database
        took = time.monotonic() - began
        print(f"    ({kind}: {patients * len(SLOTS):,} rules inserted in {took:.1f} s, not measured)")
        async with FakeTelegram(token=TOKEN) as tg:
            tg.enforce_limits(global_per_second=30, per_chat_per_second=1)
            config = bot_config(f"http://127.0.0.1:{tg.port}", bdb.config())
            config_path = workdir / f"startup-{kind}.toml"
            config_path.write_text(config_toml(config), encoding="utf-8")
            with log_path.open("wb") as log:
                spawned = time.monotonic()
                child = await asyncio.create_subprocess_exec(
                    *_bot_command(), "--config", str(config_path), "run", stdout=log, stderr=log
                )
                try:
                    seen = 0
                    deadline = spawned + 60
                    while first is None and time.monotonic() < deadline and child.returncode is None:
                        for rec in tg.requests[seen:]:
                            if rec.method == "sendMessage":
                                first = rec.time
                                break
                        seen = len(tg.requests)
                        peak = proc_status(child.pid, "VmHWM") or peak
                        await asyncio.sleep(0.005)
                    # Keep it running a little (it goes on sending) and read the
                    # peak before stopping it: VmHWM covers the whole life so far.
                    settle = time.monotonic() + 3.0
                    while time.monotonic() < settle and child.returncode is None:
                        peak = proc_status(child.pid, "VmHWM") or peak
                        await asyncio.sleep(0.1)
                    sent_meanwhile = len(tg.calls("sendMessage"))
                finally:
                    if child.returncode is None:
                        # A clean stop waits for the running tick (the backlog at
                        # 30 msg/s); the bench does not need it, so give up soon.
                        child.send_signal(signal.SIGTERM)
                        try:
                            await asyncio.wait_for(child.wait(), 3)
                        except TimeoutError:
                            child.kill()
                            await child.wait()
                    exited = child.returncode
    finally:
        await bdb.close()
    if first is None:
        tail = log_path.read_text(errors="replace")[-2000:]
        print(f"    the bot sent nothing (exit status {exited}); its log ends:\n{tail}")
    elapsed = first - spawned if first is not None else None
    n = f"{patients:,} patients × {len(SLOTS)} slots"
    if informational:
        results.add(
            Figure(
                f"Start-up to first dispatch, all {due_now:,} first slots due ({n})",
                kind,
                elapsed,
                "s",
                "",
                None,
                f"a restart right after the busiest slot: the first window goes out after one batch of the "
                f"{due_now:,} due rules, the rest are materialised while it is sent; "
                f"peak RSS {peak / MB if peak else 0:.0f} MB",
            )
        )
        return elapsed, peak / MB if peak else None
    results.add(
        Figure(
            f"Start-up to first dispatch ({n})",
            kind,
            elapsed,
            "s",
            "≤ 3 s",
            elapsed is not None and elapsed <= 3.0,
            f"{due_now:,} slots due at start; {sent_meanwhile} sent in the following 3 s at 30 msg/s",
        )
    )
    results.add(
        Figure(
            f"Peak RSS of the bot ({n})",
            kind,
            peak / MB if peak else None,
            "MB",
            "≤ 250 MB",
            peak is not None and peak <= 250 * MB,
            "VmHWM of the `rehab-bot run` process, read before stopping it",
        )
    )
    return elapsed, peak / MB if peak else None


async def naive_baseline(
    results: Results, *, patients: int, ours: dict[str, tuple[float | None, float | None]], our_slots: int
) -> None:
    """One JobQueue.run_daily job per slot, in a bare PTB Application (its own process)."""
    jobs_wanted = patients * len(SLOTS)
    spawned = time.monotonic()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(BENCH / "naive_jobqueue.py"),
        "--patients",
        str(patients),
        "--slots",
        str(len(SLOTS)),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    wall = time.monotonic() - spawned
    data = json.loads(out.decode().strip().splitlines()[-1])
    jobs = int(data["jobs"])
    assert jobs == jobs_wanted, data
    per_job_ms = data["settled_seconds"] / jobs * 1000
    per_job_kb = (data["vmhwm"] - data["rss_before_jobs"]) / jobs / 1024
    results.add(
        Figure(
            f"Naive JobQueue: register {jobs:,} run_daily jobs",
            "-",
            data["settled_seconds"],
            "s",
            "",
            None,
            f"{per_job_ms:.3f} ms/job; {wall:.1f} s from spawn; issue report: 90,000 jobs took 43 s",
        )
    )
    results.add(
        Figure(
            f"Naive JobQueue: peak RSS with {jobs:,} jobs",
            "-",
            data["vmhwm"] / MB,
            "MB",
            "",
            None,
            f"{per_job_kb:.1f} KB/job above a bare Application; issue report: 456 MB at 90,000 jobs",
        )
    )
    # Scale per job to our 300,000 slots (linear: a lower bound for the naive design).
    naive_s = per_job_ms / 1000 * our_slots
    naive_mb = (data["rss_before_jobs"] + per_job_kb * 1024 * our_slots) / MB
    for kind, (start_s, peak_mb) in ours.items():
        results.add(
            Figure(
                f"Naive / ours: time, {our_slots:,} slots (naive scaled per job)",
                kind,
                naive_s / start_s if start_s else None,
                "x",
                "",
                None,
                f"naive ≈ {naive_s:.0f} s just to register the jobs vs ours {start_s or 0:.2f} s to the first message",
            )
        )
        results.add(
            Figure(
                f"Naive / ours: peak RSS, {our_slots:,} slots (naive scaled per job)",
                kind,
                naive_mb / peak_mb if peak_mb else None,
                "x",
                "",
                None,
                f"naive ≈ {naive_mb:.0f} MB vs ours {peak_mb or 0:.0f} MB",
            )
        )
