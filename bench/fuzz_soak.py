"""Fuzz soak: feed at least 10,000 generated updates through the real bot.

    python bench/fuzz_soak.py [--updates 10000] [--seed 1]

The bot runs in this process exactly as `rehab-bot run` builds it, on a fresh
SQLite file, polling the fake Bot API server from tests/rig. Updates come
from the hypothesis strategies in tests/fuzz_strategies.py: random, huge and
odd-unicode text; unknown and forged callback_data; commands with garbage
arguments; group and channel updates; edited messages; stickers, locations,
contacts and documents; unknown users. After every batch a control user
sends /help and must get the answer.

Prints, and returns as JSON on the last line: updates fed, handler errors
(an exception that reached the error handler), presses left unanswered,
groups told more than once, and whether /help still answered at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from factories import T0, TEST_TOKEN, make_config  # noqa: E402
from fuzz_strategies import CONTROL_USER, spread_users, updates  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from rig.telegram_server import FakeTelegram  # noqa: E402

from rehab_bot.bot.app import build_application, start_polling_app, stop_app  # noqa: E402
from rehab_bot.clock import FakeClock  # noqa: E402


class ErrorCounter(logging.Handler):
    """Counts records at ERROR and above (the error handler logs every escaped exception)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.samples) < 5:
            self.samples.append(f"{record.getMessage()} {(record.exc_text or '').splitlines()[-1:]}")


def generate(n: int, seed: int) -> list[dict[str, Any]]:
    """At least n updates, reproducible for a seed."""
    batch: list[dict[str, Any]] = []
    round_ = 0
    while len(batch) < n:

        @hypothesis_seed(seed * 1000 + round_)
        @settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(st.lists(updates(), min_size=10, max_size=40))
        def collect(chunk: list[dict[str, Any]]) -> None:
            batch.extend(chunk)

        collect()
        round_ += 1
    return spread_users(batch[:n], seed)


async def soak(n: int, seed: int) -> dict[str, Any]:
    counter = ErrorCounter()
    logging.getLogger().addHandler(counter)
    logging.getLogger().setLevel(logging.WARNING)
    started = time.perf_counter()
    generated = generate(n, seed)
    generation_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeTelegram(token=TEST_TOKEN) as tg:
            config = make_config(
                f"sqlite+aiosqlite:///{tmp}/soak.db",
                delivery={"paid_broadcast": True, "paid_broadcast_rate": 1000.0, "poll_interval": 3600.0},
            )
            config = replace(
                config, telegram=replace(config.telegram, base_url=tg.base_url, base_file_url=tg.base_file_url)
            )
            app = build_application(config, clock=FakeClock(T0))
            await start_polling_app(app, poll_timeout=1)
            fed = alive_checks = 0
            started = time.perf_counter()
            try:
                for i in range(0, len(generated), 200):
                    for update in generated[i : i + 200]:
                        await tg.push_update(update)
                        fed += 1
                    control = tg.user(CONTROL_USER)
                    control.mark_seen()
                    await control.send("/help")
                    await control.wait_for(timeout=120)
                    alive_checks += 1
            finally:
                feeding_s = time.perf_counter() - started
                pressed = {u["callback_query"]["id"] for u in generated if "callback_query" in u}
                answered = {r.params.get("callback_query_id") for r in tg.calls("answerCallbackQuery")}
                groups = [r.chat_id for r in tg.calls("sendMessage") if r.chat_id is not None and r.chat_id < 0]
                await stop_app(app)
    return {
        "updates_fed": fed,
        "kinds": _kinds(generated),
        "handler_errors": counter.count,
        "error_samples": counter.samples,
        "presses_unanswered": len(pressed - answered),
        "groups_told_twice": len(groups) - len(set(groups)),
        "help_answered_after_every_batch": alive_checks,
        "generation_seconds": round(generation_s, 1),
        "feeding_seconds": round(feeding_s, 1),
    }


def _kinds(generated: list[dict[str, Any]]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for update in generated:
        key = next(iter(update))
        kinds[key] = kinds.get(key, 0) + 1
    return kinds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=10_000, help="how many updates to feed (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the generator")
    args = parser.parse_args()
    result = asyncio.run(soak(args.updates, args.seed))
    ok = result["handler_errors"] == 0 and result["presses_unanswered"] == 0 and result["groups_told_twice"] == 0
    for key, value in result.items():
        print(f"{key}: {value}")
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
