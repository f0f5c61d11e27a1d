"""The naive design, for comparison: one PTB JobQueue.run_daily job per reminder slot.

Runs in its own process so its memory is its own::

    python bench/naive_jobqueue.py --patients 10000 --slots 3

Prints one JSON line: seconds from interpreter start to the jobs being
registered, the registration itself, and peak RSS (VmHWM) before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dtm
import json
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

STARTED = time.monotonic()

from telegram.ext import ApplicationBuilder, ContextTypes  # noqa: E402

TOKEN = "123456789:AAE-bench_SECRET_token_value_0123456"
SLOTS = ("08:00", "13:00", "19:00", "10:00", "16:00", "21:00")


def vm(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


async def remind(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Would send the reminder (never runs here: no slot is due during the run)."""


async def main(patients: int, slots: int) -> dict[str, Any]:
    app = ApplicationBuilder().token(TOKEN).build()
    assert app.job_queue is not None
    await app.job_queue.start()  # a running scheduler, as inside a started Application
    baseline = vm("VmRSS")
    zone = ZoneInfo("Europe/Berlin")
    times = [dtm.time(int(s[:2]), int(s[3:]), tzinfo=zone) for s in SLOTS[:slots]]
    began = time.perf_counter()
    for patient in range(patients):
        for slot, at in enumerate(times):
            app.job_queue.run_daily(
                remind, at, chat_id=10_000_000 + patient, name=f"p{patient}:{slot}", data={"patient": patient}
            )
    registered = time.perf_counter() - began
    await asyncio.sleep(0.01)  # let the scheduler process the wake-ups the additions queued
    settled = time.perf_counter() - began
    jobs = len(app.job_queue.jobs())
    result = {
        "jobs": jobs,
        "register_seconds": registered,
        "settled_seconds": settled,
        "since_start_seconds": time.monotonic() - STARTED,
        "rss_before_jobs": baseline,
        "vmhwm": vm("VmHWM"),
    }
    await app.job_queue.stop(wait=False)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--slots", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.patients, args.slots))), flush=True)
