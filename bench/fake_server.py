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
* ``{"cmd": "flood", "user": ID, "count": N, "seconds": S}``: the user sends N
  text messages evenly over S seconds (bench/flood.py).
* ``{"cmd": "crowd", "first_user": ID, "count": N, "seconds": S}``: N users
  (ID, ID+1, ...) each once, evenly over S seconds: even ones press the newest
  button in their chat, odd ones send /help; latencies as for ``interact``.
* ``{"cmd": "red_flags", "users": [ID, ...], "every": S}``: one after another,
  every S seconds, a patient sends /pain and answers 8; the latency is from
  the press to the "Your pain is high" advice.
* ``{"cmd": "join", "timeout": T}``: wait for flood/crowd/red_flags to finish;
  returns their latencies and unanswered counts.
* ``{"cmd": "texts", "user": ID}``: the bot's messages in that user's chat.
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
        self.latencies: dict[str, list[float]] = {"press": [], "help": [], "red_flag": []}
        self.unanswered: dict[str, int] = {"press": 0, "help": 0, "red_flag": 0}
        self.finite: list[asyncio.Task[None]] = []

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
        self.latencies = {"press": [], "help": [], "red_flag": []}
        self.unanswered = {"press": 0, "help": 0, "red_flag": 0}
        return result

    def flood(self, user_id: int, count: int, seconds: float) -> None:
        async def run() -> None:
            user = self.tg.user(user_id)
            began = time.monotonic()
            for i in range(count):
                await user.send(f"spam {i}")
                await asyncio.sleep(max(0.0, began + (i + 1) * seconds / count - time.monotonic()))

        self.finite.append(asyncio.create_task(run()))

    async def _once(self, user_id: int, mode: str) -> None:
        user = self.tg.user(user_id)
        started = time.monotonic()
        try:
            if mode == "press":
                await user.press_data("bench:ping")
                await user.wait_for_answer(timeout=30)
            else:
                user.mark_seen()
                await user.send("/help")
                await user.wait_for(timeout=30)
            self.latencies[mode].append(time.monotonic() - started)
        except AssertionError:
            self.unanswered[mode] += 1

    def crowd(self, first_user: int, count: int, seconds: float) -> None:
        async def run() -> None:
            began = time.monotonic()
            each: list[asyncio.Task[None]] = []
            for i in range(count):
                await asyncio.sleep(max(0.0, began + i * seconds / count - time.monotonic()))
                each.append(asyncio.create_task(self._once(first_user + i, "press" if i % 2 == 0 else "help")))
            await asyncio.gather(*each)

        self.finite.append(asyncio.create_task(run()))

    def red_flags(self, users: list[int], every: float) -> None:
        async def one(user_id: int) -> None:
            user = self.tg.user(user_id)
            try:
                user.mark_seen()
                await user.send("/pain")
                await user.wait_for(timeout=30)
                pressed = time.monotonic()
                await user.press("8")
                await user.wait_for(lambda m: "Your pain is high" in (m.text or ""), timeout=30)
                self.latencies["red_flag"].append(time.monotonic() - pressed)
            except AssertionError:
                self.unanswered["red_flag"] += 1

        async def run() -> None:
            began = time.monotonic()
            for n, user_id in enumerate(users):
                await asyncio.sleep(max(0.0, began + n * every - time.monotonic()))
                await one(user_id)

        self.finite.append(asyncio.create_task(run()))

    async def join(self, seconds: float) -> dict[str, Any]:
        if self.finite:
            await asyncio.wait(self.finite, timeout=seconds)
        for task in self.finite:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.finite.clear()
        return await self.stop()


def stats(tg: CountingTelegram, min_chat: int = 0, max_chat: int | None = None) -> dict[str, Any]:
    accepted = tg.accepted_since(min_chat)
    if max_chat is not None:
        accepted = [t for t, chat in tg.accepted if min_chat <= chat <= max_chat]
    span = [t for t, _ in tg.accepted if accepted and accepted[0] <= t <= accepted[-1]]
    return {
        "in_span": len(span),
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
                max_chat = command.get("max_chat")
                reply(stats(tg, int(command.get("min_chat", 0)), None if max_chat is None else int(max_chat)))
            elif name == "flood":
                people.flood(int(command["user"]), int(command["count"]), float(command["seconds"]))
                reply({"ok": True})
            elif name == "crowd":
                people.crowd(int(command["first_user"]), int(command["count"]), float(command["seconds"]))
                reply({"ok": True})
            elif name == "red_flags":
                people.red_flags([int(u) for u in command["users"]], float(command["every"]))
                reply({"ok": True})
            elif name == "join":
                reply(await people.join(float(command.get("timeout", 600))))
            elif name == "texts":
                reply({"texts": tg.user(int(command["user"])).texts()})
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
