"""One rate budget for every process that sends for the bot (PostgreSQL).

Telegram's limits are per bot, not per process: about 30 messages/s in all
(1,000/s with paid broadcasts) and about one per second into one chat. When
several processes send (``rehab-bot run`` plus ``run --no-updates``), each
pacing itself at the full rate, together they go over it and Telegram answers
429. So the processes share the budget:

* **A lease per process splits the rate.** Each sending process holds a row
  in ``send_share`` and renews it every :data:`HEARTBEAT` seconds; it paces
  itself at ``rate / n``, n being the rows not expired. A process that joins
  and finds others waits :data:`JOIN_WAIT` (longer than one heartbeat) before
  its first send, so that every other process has lowered its share by then
  (it counts after committing its row, so of two that join at once the later
  one to count sees the other and waits); a process that
  stops deletes its row, and one that crashes stops counting after
  :data:`TTL`, so the others only run slower for a moment, never faster.
* **429s are shared.** A retry_after Telegram gives one process goes into
  ``rate_block`` (the chat, or "*" for everything) and every process holds
  that scope until it passes (read every heartbeat).
* **The per-chat interval across processes**: a process does not claim a
  delivery for a chat that another process is sending to right now
  (rehab_bot.reminders.claim_query); within a process the pacer spaces sends
  to one chat.

Why a split lease rather than a token bucket in the database from which each
process takes batches of permits: the lease costs one small statement per
process per heartbeat whatever the rate (a bucket costs one per batch of
permits, i.e. 30 to 1,000 a second at the paid rate, on the same database
that claims and records the reminders), and it fails safe: a process that
stops talking to the database keeps its last share, which was never more than
the budget. Its cost: the share of an idle process is not used by the others.
All processes claim from one queue, so during a burst (when the limit
matters) every process is busy; outside a burst the rate is not the limit.

Times are PostgreSQL's (clock_timestamp() in UTC, naive as UTCDateTime stores them), so clock skew between hosts
does not matter. SQLite runs one process, which keeps the whole rate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any

from sqlalchemy import text

from rehab_bot.db import Database
from rehab_bot.ratelimit import Pacer

log = logging.getLogger(__name__)

HEARTBEAT = 0.5  # seconds between renewals (and reads of the others' 429s)
TTL = 3.0  # a share not renewed for this long no longer counts
JOIN_WAIT = 2.5 * HEARTBEAT  # every other process has seen a new one by then


def holder_id() -> str:
    """host:pid:random, unique per process start."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class SendBudget:
    """This process's share of the bot's rate, kept in PostgreSQL next to the other processes'."""

    def __init__(self, db: Database, pacer: Pacer, rate: float, *, holder: str | None = None) -> None:
        self.db = db
        self.pacer = pacer
        self.rate = rate
        self.holder = holder or holder_id()
        self.processes = 1
        self._task: asyncio.Task[None] | None = None
        self._pending: list[tuple[str, float]] = []
        self._publisher: asyncio.Task[None] | None = None

    @property
    def share(self) -> float:
        """Messages per second this process may send."""
        return self.rate / max(1, self.processes)

    async def start(self) -> None:
        """Join: take a share, hold every send until the others have seen us, then renew in the background."""
        self.pacer.on_block = self._publish
        await self.heartbeat()
        if self.processes > 1:
            # Until the others have lowered their shares, sending would go over the budget.
            self.pacer.block_all(JOIN_WAIT, share=False)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rehab-bot-send-budget")

    async def stop(self) -> None:
        """Leave: the others take over this share at their next heartbeat."""
        for task in (self._task, self._publisher):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._task = self._publisher = None
        self.pacer.on_block = None
        try:
            async with self.db.engine.begin() as conn:
                await conn.execute(text("DELETE FROM send_share WHERE holder = :h"), {"h": self.holder})
        except Exception:  # stopping anyway: the share expires after TTL
            log.warning("could not give back the send share; it expires in %.0f s", TTL)

    async def _run(self) -> None:
        while True:
            # On the pacer's clock, as JOIN_WAIT is (Pacer.block_all): a pacer on a scaled
            # clock (a test hook, rehab_bot.cli.PACE_CLOCK_ENV) beats as often in its time.
            await self.pacer.wait(HEARTBEAT)
            try:
                await self.heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away: keep the last share (never more than the budget)
                log.warning("send budget heartbeat failed; keeping %.1f msg/s", self.share, exc_info=True)

    async def heartbeat(self) -> None:
        """Renew our share, count the live ones and take our part of the rate; apply the others' 429s."""
        async with self.db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO send_share (holder, expires_at) "
                    "VALUES (:h, (clock_timestamp() AT TIME ZONE 'UTC') + make_interval(secs => :ttl)) "
                    "ON CONFLICT (holder) DO UPDATE SET expires_at = excluded.expires_at"
                ),
                {"h": self.holder, "ttl": TTL},
            )
        # Counted after our row is committed: of two processes joining at once,
        # the one that counts last sees the other and waits (see start()).
        async with self.db.engine.begin() as conn:
            live = (
                await conn.execute(
                    text("SELECT count(*) FROM send_share WHERE expires_at > (clock_timestamp() AT TIME ZONE 'UTC')")
                )
            ).scalar_one()
            blocks = (
                await conn.execute(
                    text(
                        "SELECT scope, extract(epoch FROM blocked_until - (clock_timestamp() AT TIME ZONE 'UTC')) "
                        "FROM rate_block "
                        "WHERE blocked_until > (clock_timestamp() AT TIME ZONE 'UTC')"
                    )
                )
            ).all()
            if self._beats % 20 == 0:
                await conn.execute(
                    text(
                        "DELETE FROM send_share "
                        "WHERE expires_at < (clock_timestamp() AT TIME ZONE 'UTC') - interval '1 minute'"
                    )
                )
                await conn.execute(
                    text("DELETE FROM rate_block WHERE blocked_until < (clock_timestamp() AT TIME ZONE 'UTC')")
                )
        self._beats += 1
        processes = max(1, int(live))
        if processes != self.processes:
            log.info("%d processes send for this bot; this one paces at %.1f msg/s", processes, self.rate / processes)
        self.processes = processes
        self.pacer.set_rate(self.share)
        for scope, seconds in blocks:
            if scope == "*":
                self.pacer.block_all(float(seconds), share=False)
            else:
                self.pacer.block_chat(int(scope), float(seconds), share=False)

    _beats = 0

    def _publish(self, chat_id: int | None, seconds: float) -> None:
        """A 429 here: tell the other processes (written at once, in the background)."""
        self._pending.append(("*" if chat_id is None else str(chat_id), seconds))
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.get_running_loop().create_task(self._write_blocks())

    async def _write_blocks(self) -> None:
        while self._pending:
            pending, self._pending = self._pending, []
            try:
                await self.write_blocks(pending)
            except Exception:  # the local pacer holds the scope anyway
                log.warning("could not share a 429 with the other processes", exc_info=True)

    async def write_blocks(self, blocks: list[tuple[str, float]]) -> None:
        """Store retry_afters so that every process holds those scopes (the later end wins)."""
        params: list[dict[str, Any]] = [{"scope": scope, "secs": seconds} for scope, seconds in blocks]
        async with self.db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO rate_block (scope, blocked_until) "
                    "VALUES (:scope, (clock_timestamp() AT TIME ZONE 'UTC') + make_interval(secs => :secs)) "
                    "ON CONFLICT (scope) DO UPDATE SET blocked_until = "
                    "greatest(rate_block.blocked_until, excluded.blocked_until)"
                ),
                params,
            )
