"""Handling updates: concurrent across chats, in order within a chat, within the inbound limit.

PTB hands every update to :class:`ChatUpdateProcessor` as soon as it is
fetched. For each update, in this order:

1. **The inbound limit** (rehab_bot.inbound) counts it against its sender.
   Over the limit it is dropped here, before any handler or database work;
   the first one over the limit is replaced by one "slow down" notice.
2. **Its chat's lock.** Updates from one chat are handled one at a time, in
   the order Telegram sent them (asyncio.Lock wakes waiters first come,
   first served), so conversation state stays consistent. An update waiting
   for its chat holds nothing else.
3. **A slot** among ``inbound.max_concurrent`` updates handled at the same
   time, which bounds the database connections and memory in use. A reply
   that waits for its chat's one-message-per-second pacing gives its slot
   back while it waits (rehab_bot.ratelimit.slot_released), so a chat that
   is being paced never holds up another chat.

SQLite has one writer. Transactions are short and SQLite waits up to 30 s
for the write lock (busy_timeout, rehab_bot.db), so handlers on many chats
queue for it rather than fail. Should a handler still fail with "database is
locked", :class:`RetryWhenLocked` handles the update again, in its chat's
turn, up to three times, before the generic error reply: the patient's input
is not lost.

The handlers' run time is recorded in ``rehab_bot_handler_latency_seconds``
as before; dropped updates in ``rehab_bot_updates_dropped_total{reason}``
(no user ids in labels).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import OperationalError
from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, BaseUpdateProcessor, ContextTypes

from rehab_bot.i18n import N_, t
from rehab_bot.inbound import CRISIS_REPEAT, OVER_LIMIT, InboundLimit, Verdict
from rehab_bot.metrics import Metrics
from rehab_bot.ratelimit import current_slot

log = logging.getLogger(__name__)

# PTB's own semaphore only bounds the tasks it starts; the real limits are
# the per-chat locks and the slots below, so it is set out of the way.
_PTB_BOUND = 1_000_000

SLOW_DOWN = N_(
    "You are sending messages faster than I can answer, so I will skip the next ones until you slow down. "
    "Please wait a few seconds, then send your message again."
)

Notice = Callable[[Update], Awaitable[None]]


class _UpdateSlot:
    """One update's place among those handled at once; given back while it waits for pacing.

    Only the update's own task may give it back and take it again: a task
    started from a handler (or a job scheduled from one) inherits the
    context variable that names the slot, and must not touch it.
    """

    __slots__ = ("_owner", "_semaphore", "closed", "held")

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore = semaphore
        self._owner = asyncio.current_task()
        self.held = False
        self.closed = False

    def _mine(self) -> bool:
        return not self.closed and asyncio.current_task() is self._owner

    def release(self) -> None:
        if self.held and self._mine():
            self.held = False
            self._semaphore.release()

    async def acquire(self) -> None:
        if self.held or not self._mine():
            return
        await self._semaphore.acquire()
        self.held = True

    def close(self) -> None:
        """The update is done: give the place back for good."""
        if self.held:
            self.held = False
            self._semaphore.release()
        self.closed = True


class _ChatTurn:
    """A chat's lock and how many updates hold or wait for it (forgotten at zero)."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class ChatUpdateProcessor(BaseUpdateProcessor):
    """Per-chat order, a global cap on concurrent updates, and the inbound limit."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        max_concurrent: int = 16,
        limit: InboundLimit | None = None,
        notice: Notice | None = None,
        is_crisis: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(max_concurrent_updates=_PTB_BOUND)
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._metrics = metrics
        self.max_concurrent = max_concurrent
        self._slots = asyncio.Semaphore(max_concurrent)
        self._chats: dict[int, _ChatTurn] = {}
        self.limit = limit
        self.notice = notice
        self.is_crisis = is_crisis

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free: every update's task gives its lock and slot back itself."""

    def chats_tracked(self) -> int:
        """Chats with an update being handled or waiting (0 when idle: nothing accumulates)."""
        return len(self._chats)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Apply the inbound limit, then run the handlers in the chat's turn and a free slot."""
        verdict = self._verdict(update)
        if verdict is Verdict.DROP or verdict is Verdict.NOTICE:
            _close(coroutine)
            assert isinstance(update, Update)
            reason = CRISIS_REPEAT if self._carries_crisis(update) else OVER_LIMIT
            self._metrics.updates_dropped.labels(reason=reason).inc()
            if verdict is Verdict.DROP or self.notice is None:
                return
            coroutine = self.notice(update)
        elif verdict is Verdict.CRISIS:
            self._metrics.updates_crisis_over_limit.inc()
        key = _chat_key(update)
        if key is None:
            await self._run(coroutine)
            return
        turn = self._chats.get(key)
        if turn is None:
            turn = self._chats[key] = _ChatTurn()
        turn.users += 1
        try:
            try:
                await turn.lock.acquire()
            except BaseException:  # cancelled while waiting (shutdown): the handlers never run
                _close(coroutine)
                raise
            try:
                await self._run(coroutine)
            finally:
                turn.lock.release()
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._chats[key]

    async def _run(self, coroutine: Awaitable[Any]) -> None:
        slot = _UpdateSlot(self._slots)
        try:
            await slot.acquire()
        except BaseException:
            slot.close()
            _close(coroutine)
            raise
        token = current_slot.set(slot)
        started = time.perf_counter()
        try:
            await coroutine
        finally:
            self._metrics.handler_latency.observe(time.perf_counter() - started)
            current_slot.reset(token)
            slot.close()

    def _verdict(self, update: object) -> Verdict:
        if self.limit is None or not isinstance(update, Update):
            return Verdict.HANDLE
        sender = _sender_key(update)
        if sender is None:
            return Verdict.HANDLE
        return self.limit.check(sender, crisis=lambda: self._carries_crisis(update))

    def _carries_crisis(self, update: Update) -> bool:
        message = update.message
        if self.is_crisis is None or message is None:
            return False
        text = message.text or message.caption
        return bool(text) and self.is_crisis(text or "")


def _close(coroutine: Awaitable[Any]) -> None:
    """Discard a coroutine that will not run (no "never awaited" warning)."""
    if inspect.iscoroutine(coroutine):
        coroutine.close()


def _sender_key(update: Update) -> int | None:
    if update.effective_user is not None:
        return update.effective_user.id
    if update.effective_chat is not None:
        return update.effective_chat.id
    return None


def _chat_key(update: object) -> int | None:
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return update.effective_user.id
    return None


async def slow_down_notice(bot: Any, update: Update, language: Callable[[Update], Awaitable[str]]) -> None:
    """Tell a sender over the inbound limit, once, to slow down (private chats only)."""
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        return
    try:
        lang = await language(update)
        await bot.send_message(chat.id, t(lang, SLOW_DOWN))
    except TelegramError as exc:
        log.info("could not send the slow-down notice: %s", type(exc).__name__)


LOCKED_RETRIES = 3


def is_database_locked(error: BaseException | None) -> bool:
    """True for SQLite's "database is locked" (as SQLAlchemy wraps it, or bare)."""
    if isinstance(error, OperationalError):
        error = error.orig
    return isinstance(error, sqlite3.OperationalError | OperationalError) and "database is locked" in str(error)


class RetryWhenLocked:
    """An error handler, registered first: handle an update again when SQLite was locked.

    It runs inside the update's own processing, so the retry keeps the chat's
    turn and its order. After LOCKED_RETRIES attempts the error goes on to the
    generic error handler.
    """

    def __init__(self, pause: float = 0.2) -> None:
        self.pause = pause
        self._tries: dict[int, int] = {}

    async def __call__(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not isinstance(update, Update) or not is_database_locked(context.error):
            return
        tries = self._tries.get(update.update_id, 0)
        if tries >= LOCKED_RETRIES:
            return
        self._tries[update.update_id] = tries + 1
        log.warning("database locked while handling update %d; handling it again", update.update_id)
        try:
            await asyncio.sleep(self.pause * (tries + 1))
            await context.application.process_update(update)
        finally:
            if tries == 0:
                self._tries.pop(update.update_id, None)
        raise ApplicationHandlerStop
