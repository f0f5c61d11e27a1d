"""The fake Bot API server (tests/rig) in its own process, driven over stdin/stdout.

Running the server in a separate process keeps its CPU out of the bot's
figures and lets the simulated patients live next to it. Start it with::

    python bench/fake_server.py --token TOKEN

It prints one JSON line ``{"port": ..., "pid": ...}`` and then answers one
JSON command per stdin line with one JSON line on stdout:

* ``{"cmd": "limits", "global": 100, "chat": 1}``: enforce Telegram's flood limits.
* ``{"cmd": "wait_sent", "count": N, "timeout": T, "min_chat": C}``: wait
  until N messages to chats >= C were accepted (sendMessage answered 200),
  then report ``stats``.
* ``{"cmd": "stats", "min_chat": C}``: messages accepted into chats >= C,
  first/last acceptance time (``time.monotonic()``, comparable across
  processes on Linux), 429s given.
* ``{"cmd": "interact", "user": ID, "mode": "press"|"help", "every": S}``:
  from now on the user presses the newest inline button in their chat (or
  sends /help) every S seconds and records how long the bot takes to answer.
* ``{"cmd": "stop_interact"}``: stop those users; returns their latencies.
* ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from rig.telegram_server import FakeTelegram, RecordedRequest


class CountingTelegram(FakeTelegram):
    """FakeTelegram that keeps the acceptance time of every sendMessage, cheaply."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.accepted: list[tuple[float, int]] = []  # (time.monotonic(), chat_id)
        self.more_accepted = asyncio.Event()
        super().__init__(*args, **kwargs)

    def _m_sendMessage(self, rec: RecordedRequest) -> dict[str, Any]:
        result = super()._m_sendMessage(rec)
        self.accepted.append((time.monotonic(), rec.chat_id or 0))
        self.more_accepted.set()
        return result

    async def wait_accepted(self, count: int, min_chat: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while len(self.accepted_since(min_chat)) < count and time.monotonic() < deadline:
            self.more_accepted.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.more_accepted.wait(), min(0.5, max(0.0, deadline - time.monotonic())))

    def accepted_since(self, min_chat: int) -> list[float]:
        return [t for t, chat in self.accepted if chat >= min_chat]


class Interactions:
    """Simulated patients who tap a button or ask for /help at a steady pace."""

    def __init__(self, tg: FakeTelegram) -> None:
        self.tg = tg
        self.tasks: list[asyncio.Task[None]] = []
        self.latencies: dict[str, list[float]] = {"press": [], "help": []}
        self.unanswered: dict[str, int] = {"press": 0, "help": 0}

    def start(self, user_id: int, mode: str, every: float) -> None:
        self.tasks.append(asyncio.create_task(self._run(user_id, mode, every)))

    async def _run(self, user_id: int, mode: str, every: float) -> None:
        user = self.tg.user(user_id)
        next_at = time.monotonic()
        while True:
            next_at += every
            started = time.monotonic()
            try:
                if mode == "press":
                    await user.press_data("bench:ping")
                    await user.wait_for_answer(timeout=10)
                else:
                    user.mark_seen()
                    await user.send("/help")
                    await user.wait_for(timeout=10)
                self.latencies[mode].append(time.monotonic() - started)
            except AssertionError:
                self.unanswered[mode] += 1
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def stop(self) -> dict[str, Any]:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        result = {"latencies": self.latencies, "unanswered": self.unanswered}
        self.latencies = {"press": [], "help": []}
        self.unanswered = {"press": 0, "help": 0}
        return result


def stats(tg: CountingTelegram, min_chat: int = 0) -> dict[str, Any]:
    accepted = tg.accepted_since(min_chat)
    return {
        "accepted": len(accepted),
        "first": accepted[0] if accepted else None,
        "last": accepted[-1] if accepted else None,
        "limit_violations": tg.limit_violations,
        "retry_after_breaches": tg.retry_after_breaches,
        "requests": len(tg.requests),
    }


async def serve(token: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(payload: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()

    async with CountingTelegram(token=token) as tg:
        people = Interactions(tg)
        reply({"port": tg.port, "pid": os.getpid()})
        while line := await reader.readline():
            command = json.loads(line)
            name = command.pop("cmd")
            if name == "limits":
                tg.enforce_limits(global_per_second=command.get("global"), per_chat_per_second=command.get("chat"))
                reply({"ok": True})
            elif name == "stats":
                reply(stats(tg, int(command.get("min_chat", 0))))
            elif name == "wait_sent":
                min_chat = int(command.get("min_chat", 0))
                await tg.wait_accepted(int(command["count"]), min_chat, float(command.get("timeout", 600)))
                reply(stats(tg, min_chat))
            elif name == "interact":
                people.start(int(command["user"]), str(command["mode"]), float(command["every"]))
                reply({"ok": True})
            elif name == "stop_interact":
                reply(await people.stop())
            elif name == "quit":
                reply({"ok": True})
                break
            else:
                reply({"error": f"unknown command {name}"})
        await people.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.token))


if __name__ == "__main__":
    main()
