"""Pacing outgoing requests under Telegram's limits, patients first.

Telegram allows about 30 messages/s across all chats (1,000/s with paid
broadcasts) and about one per second into one private chat; beyond that it
answers 429 with retry_after. PTB's AIORateLimiter has no per-chat limit and
freezes every request on one 429, so we pace ourselves:

* one global pacer releases requests at most ``rate`` per second, and picks
  the most urgent waiter first: a reply to a patient's own tap (priority 0)
  never queues behind a reminder burst (priority 10);
* each chat has its own "not before" time, one interval after its last send;
* a 429 blocks only the scope it was given for (the chat, or everything for a
  request without a chat) until retry_after has passed.

A reply that must wait for its chat's spacing gives back the update slot it
runs in (:func:`slot_released`) while it sleeps, so that a patient whose
chat is busy never holds up another chat's update.

Plain asyncio, no telegram imports: the PTB adapter is in rehab_bot.transport.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Protocol

INTERACTIVE = 0
SAFETY = 5
BULK = 10
CHAT_MARGIN = 0.05
# Permits are granted in batches of at most this many seconds' worth (at least one): at 1,000 msg/s
# the pump wakes about 50 times a second instead of 1,000, and Telegram's bucket (a second's worth)
# absorbs the batch. At 30 msg/s a batch is one request, as before.
BATCH_SECONDS = 0.02


class Slot(Protocol):
    """A place among the updates handled at the same time (see rehab_bot.bot.updates)."""

    def release(self) -> None:
        """Give the place back (no-op when not held)."""

    async def acquire(self) -> None:
        """Wait for a place again."""


# The slot of the update being handled in this task, if any.
current_slot: ContextVar[Slot | None] = ContextVar("rehab_bot_update_slot", default=None)


@asynccontextmanager
async def slot_released() -> AsyncIterator[None]:
    """Give back the current update's slot while waiting inside this block, then take one again."""
    slot = current_slot.get()
    if slot is None:
        yield
        return
    slot.release()
    try:
        yield
    finally:
        await slot.acquire()


class Pacer:
    """A priority-ordered global rate limiter plus per-chat spacing."""

    def __init__(
        self,
        rate: float,
        per_chat_interval: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``monotonic`` and ``sleep`` are the pacer's time, real by default; they go together
        (rehab_bot.clock.ScaledTime runs both faster for the end-to-end tests)."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.batch = _batch(rate)
        # Spacing is measured here, when a request leaves; Telegram measures
        # on arrival, and transit times under load vary by tens of ms. A
        # small margin keeps two messages to one chat from arriving closer
        # than the limit (the cost: 5% slower only for back-to-back replies
        # into the same chat).
        self.per_chat_interval = per_chat_interval + CHAT_MARGIN
        self._monotonic = monotonic
        self._sleep = sleep
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._next_global = 0.0
        self._global_blocked_until = 0.0
        self._chat_next: dict[int, float] = {}
        self._chat_blocked_until: dict[int, float] = {}
        self._wakeup: asyncio.Event | None = None
        self._pump: asyncio.Task[None] | None = None
        # Told of every 429 this process gets, to share it with the other
        # processes sending for the bot (rehab_bot.send_budget); (chat or None, seconds).
        self.on_block: Callable[[int | None, float], None] | None = None

    async def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` on the pacer's clock (real time unless a scaled one was given)."""
        await self._sleep(seconds)

    def set_rate(self, rate: float) -> None:
        """Change the global rate (this process's share of the bot's budget); takes effect at the next release."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.batch = _batch(rate)

    def _ensure_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._wakeup = asyncio.Event()
            self._pump = asyncio.get_running_loop().create_task(self._run(), name="rehab-bot-pacer")

    async def close(self) -> None:
        """Stop the pump task; waiters still queued are cancelled."""
        if self._pump is not None:
            self._pump.cancel()
            try:
                await self._pump
            except asyncio.CancelledError:
                pass
            self._pump = None
        for _, _, fut in self._heap:
            fut.cancel()
        self._heap.clear()

    def block_chat(self, chat_id: int, seconds: float, *, share: bool = True) -> None:
        """Hold every request to chat_id for seconds (after a 429 for it); share=False: told by another process."""
        until = self._monotonic() + seconds
        self._chat_blocked_until[chat_id] = max(self._chat_blocked_until.get(chat_id, 0.0), until)
        if share and self.on_block is not None:
            self.on_block(chat_id, seconds)

    def block_all(self, seconds: float, *, share: bool = True) -> None:
        """Hold every request for seconds (after a 429 without a chat); share=False: told by another process."""
        self._global_blocked_until = max(self._global_blocked_until, self._monotonic() + seconds)
        if share and self.on_block is not None:
            self.on_block(None, seconds)

    def chat_ready_in(self, chat_id: int) -> float:
        """Seconds until chat_id may receive again (0 when it may now)."""
        now = self._monotonic()
        ready = max(self._chat_next.get(chat_id, 0.0), self._chat_blocked_until.get(chat_id, 0.0))
        return max(0.0, ready - now)

    async def acquire(self, chat_id: int | None, priority: int = BULK) -> None:
        """Wait until a request to chat_id (None: no chat) may be sent now."""
        if chat_id is not None:
            # Reserve the chat's next slot before waiting, so two concurrent
            # sends to one chat are spaced even while both are still queued.
            while True:
                wait = self.chat_ready_in(chat_id)
                if wait <= 0:
                    break
                # Waiting for this chat's turn must not keep other chats' updates waiting.
                async with slot_released():
                    await self._sleep(wait)
            self._chat_next[chat_id] = self._monotonic() + self.per_chat_interval
        self._ensure_pump()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (priority, next(self._seq), fut))
        assert self._wakeup is not None
        self._wakeup.set()
        await fut
        if chat_id is not None:
            # Measure spacing from the moment the request really leaves.
            self._chat_next[chat_id] = self._monotonic() + self.per_chat_interval
            if len(self._chat_next) > 50_000:
                self._forget_idle_chats()

    def sent(self, chat_id: int | None) -> None:
        """A request to chat_id got its answer: space the chat's next one from now.

        Telegram measures the spacing on arrival. A request granted in a batch
        may leave a little after its grant (the batch's others go first, or
        the loop is busy), so spacing measured from the grant alone could let
        two arrive too close; the answer comes after the arrival, so spacing
        from it always holds.
        """
        if chat_id is not None:
            self._chat_next[chat_id] = max(
                self._chat_next.get(chat_id, 0.0), self._monotonic() + self.per_chat_interval
            )

    def _forget_idle_chats(self) -> None:
        now = self._monotonic()
        self._chat_next = {c: t for c, t in self._chat_next.items() if t > now}
        self._chat_blocked_until = {c: t for c, t in self._chat_blocked_until.items() if t > now}

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            while not self._heap:
                self._wakeup.clear()
                await self._wakeup.wait()
            now = self._monotonic()
            # With several waiting, wake when a batch of their slots has come (one wake per
            # batch rather than per request); a lone waiter goes at its slot.
            waiting = min(len(self._heap), self.batch)
            start = max(self._next_global + (waiting - 1) * self.interval, self._global_blocked_until)
            if now < start:
                # Nothing may leave before start. A more urgent waiter that arrives
                # meanwhile is still served first: the heap is read at each grant.
                await self._sleep(start - now)
                continue
            # Grant at once every permit whose slot has come (a batch at most),
            # most urgent waiters first. Slots keep their cadence through timer
            # overshoots (or a burst would drain slower than the limit), but idle
            # time earns no more than one batch: never more than `rate` requests
            # in any window, plus one batch.
            due = int((now - self._next_global) / self.interval) + 1
            granted = 0
            while self._heap and granted < min(due, self.batch):
                _, _, fut = heapq.heappop(self._heap)
                if not fut.done():
                    fut.set_result(None)
                    granted += 1
            if due > self.batch:
                self._next_global = now + self.interval
            else:
                self._next_global += granted * self.interval
            # Let the released waiters run (and their requests leave) before the next grant.
            await asyncio.sleep(0)


def _batch(rate: float) -> int:
    return max(1, int(rate * BATCH_SECONDS))
