"""Everything about talking to Telegram that is not obvious.

* Telegram paces bots (about 30 msg/s overall, 1 msg/s per private chat) and
  answers 429 with retry_after when we go faster. All requests pass through
  :class:`PacingRateLimiter`, PTB's documented rate-limiter hook, so replies
  to a patient and reminder bursts share one budget, replies first.
* Some errors are permanent for a chat: the patient blocked the bot, deleted
  their account, or the chat never existed. Retrying those only earns more
  errors, so they become :class:`Unreachable` and the engine pauses the
  patient and tells the therapist once.
* Network errors and 5xx are passing: retried later with backoff by the
  engine, from the database, so a restart does not forget them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import BaseRateLimiter, ExtBot

from rehab_bot.ratelimit import BULK, INTERACTIVE, SAFETY, Pacer
from rehab_bot.reminders import DueMessage, Failed, Outcome, Retry, Sent, Unreachable

log = logging.getLogger(__name__)

# Descriptions Telegram uses for chats we can never reach again. Matched in
# lower case because Telegram has changed capitalisation before.
_PERMANENT_400 = ("chat not found", "user not found", "peer_id_invalid", "bot can't initiate conversation")
_INTERACTIVE_RETRIES = 2


def retry_after_seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after is a timedelta since PTB 22.2, an int before."""
    value: Any = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def classify(exc: TelegramError) -> Outcome:
    """Map a PTB exception to what the engine should do about it."""
    if isinstance(exc, RetryAfter):
        return Retry(f"429 retry after {retry_after_seconds(exc):g}s", retry_after_seconds(exc), rate_limited=True)
    if isinstance(exc, Forbidden):
        return Unreachable(exc.message)
    if isinstance(exc, ChatMigrated):
        # Only group chats migrate; we serve private chats only.
        return Failed(f"chat migrated to {exc.new_chat_id}")
    if isinstance(exc, BadRequest):
        if any(marker in exc.message.lower() for marker in _PERMANENT_400):
            return Unreachable(exc.message)
        return Failed(exc.message)
    if isinstance(exc, TimedOut | NetworkError):
        # PTB raises NetworkError for 5xx and connection errors alike.
        return Retry(f"network: {exc.message}")
    return Failed(f"{type(exc).__name__}: {exc.message}")


class PacingRateLimiter(BaseRateLimiter[dict[str, Any]]):
    """PTB rate limiter over :class:`Pacer`: priorities, per-chat spacing, scoped 429s.

    Pass ``rate_limit_args={"priority": BULK}`` for reminders; everything else
    (replies in handlers) is INTERACTIVE. Interactive requests that hit a 429
    wait and try again a couple of times; bulk ones raise, and the engine
    re-queues them in the database instead of holding a task asleep.
    """

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer

    async def initialize(self) -> None:
        """Nothing to set up: the pacer starts its task on first use."""

    async def shutdown(self) -> None:
        """Stop the pacer's task."""
        await self.pacer.close()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Wait for our turn, call Telegram, and honour retry_after for that scope."""
        priority = (rate_limit_args or {}).get("priority", INTERACTIVE)
        chat_id = _private_chat_id(data)
        paced = chat_id is not None or endpoint.startswith(("send", "edit", "copy", "forward"))
        attempt = 0
        while True:
            if paced:
                await self.pacer.acquire(chat_id, priority)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = retry_after_seconds(exc)
                if chat_id is not None:
                    self.pacer.block_chat(chat_id, seconds)
                else:
                    self.pacer.block_all(seconds)
                attempt += 1
                if priority >= BULK or attempt > _INTERACTIVE_RETRIES:
                    raise
                log.info("rate limited on %s; retrying in %.1fs", endpoint, seconds)


def _private_chat_id(data: dict[str, Any]) -> int | None:
    chat_id = data.get("chat_id")
    if isinstance(chat_id, int):
        return chat_id
    if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
        return int(chat_id)
    return None


# --- rendering and the engine's sender --------------------------------------


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered message: text plus inline buttons as (label, callback_data)."""

    text: str
    buttons: list[list[tuple[str, str]]] = field(default_factory=list)

    def markup(self) -> InlineKeyboardMarkup | None:
        """The inline keyboard, or None without buttons."""
        if not self.buttons:
            return None
        return InlineKeyboardMarkup(
            [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in self.buttons]
        )


Renderer = Callable[[DueMessage], Awaitable[OutgoingMessage | None]]
AfterSend = Callable[[DueMessage, int], Awaitable[None]]


class TelegramSender:
    """The engine's Sender: render, send through the paced bot, classify errors."""

    def __init__(self, bot: ExtBot[Any], render: Renderer, after_send: AfterSend | None = None) -> None:
        self.bot = bot
        self.render = render
        self.after_send = after_send

    async def send(self, message: DueMessage) -> Outcome:
        """Send one due message and return its outcome; never raises TelegramError."""
        rendered = await self.render(message)
        if rendered is None:
            return Failed("nothing to send: superseded")
        priority = SAFETY if message.kind in ("safety", "alert") else BULK
        try:
            sent = await self.bot.send_message(
                chat_id=message.chat_id,
                text=rendered.text,
                reply_markup=rendered.markup(),
                rate_limit_args={"priority": priority},
            )
        except TelegramError as exc:
            outcome = classify(exc)
            log.info("delivery %d: %s", message.delivery_id, type(outcome).__name__)
            return outcome
        if self.after_send is not None:
            await self.after_send(message, sent.message_id)
        return Sent(sent.message_id)
