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
* Telegram sends each button press with the message as it looked when the
  person pressed. Two presses within milliseconds both carry the buttons of
  before the first press's edit, so the buttons a press is checked against
  are also those our last edit of that message left (:class:`ShownButtons`).
* Reminders the engine sends take a lean path (:class:`BotApi`): the JSON
  body is encoded once, the keyboard from a template cached per set of labels
  (that is, per kind and language), and of the reply only ``ok``,
  ``result.message_id``, ``error_code``, ``description`` and ``parameters``
  are read; no PTB ``Message`` is built for a message nobody edits through
  PTB. It paces and maps errors exactly as the PTB path does (same pacer,
  same exceptions, so :func:`classify` sees no difference). Replies to a
  patient's own actions, media and edits keep going through PTB.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters, WebAppInfo
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import BaseRateLimiter, ExtBot

from rehab_bot import alert
from rehab_bot.aiohttp_request import AiohttpRequest
from rehab_bot.ratelimit import BULK, INTERACTIVE, SAFETY, Pacer
from rehab_bot.reminders import BookkeepingFailed, DueMessage, Failed, Outcome, Retry, Sent, Unreachable

log = logging.getLogger(__name__)

# Descriptions Telegram uses for chats we can never reach again. Matched in
# lower case because Telegram has changed capitalisation before.
_PERMANENT_400 = ("chat not found", "user not found", "peer_id_invalid", "bot can't initiate conversation")
_INTERACTIVE_RETRIES = 2
# A reply hit by a 5xx or a dropped connection is tried again after this, then twice this.
_NETWORK_RETRY_SECONDS = 0.5


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


class ShownButtons:
    """The callback data our own latest edit (or deletion) of a message left on it, per message.

    Telegram sends a press with the message as the person saw it when pressing. A double tap, or two
    buttons tapped at once, sends two presses that both show the buttons of before the first press's
    edit. A chat's updates are handled in turn (rehab_bot/bot/updates.py), so when the second press is
    handled the first one's edit has been made, and what it left is what the message shows now:
    rehab_bot.bot.common.buttons_on accepts a press only when both pictures show its button.

    Only this process's edits are known (the one that receives updates makes the edits that follow
    presses); the newest ``size`` messages are kept, as an older one's press carries an up-to-date
    picture anyway.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._left: dict[tuple[int, int], frozenset[str]] = {}

    def edited(self, result: object) -> None:
        """Note what an edit's result (the edited Message's JSON) shows; True (an inline message) is skipped."""
        if not isinstance(result, dict):
            return
        chat, message_id = (result.get("chat") or {}).get("id"), result.get("message_id")
        rows = (result.get("reply_markup") or {}).get("inline_keyboard") or []
        data = frozenset(str(b["callback_data"]) for row in rows for b in row if "callback_data" in b)
        self._note(chat, message_id, data)

    def deleted(self, data: Mapping[str, Any]) -> None:
        """A message we deleted shows no buttons."""
        self._note(_private_chat_id(dict(data)), data.get("message_id"), frozenset())

    def left_on(self, chat_id: int, message_id: int) -> frozenset[str] | None:
        """The buttons our latest edit left on the message; None when this process has not edited it."""
        return self._left.get((chat_id, message_id))

    def _note(self, chat: object, message_id: object, data: frozenset[str]) -> None:
        if not isinstance(chat, int) or not isinstance(message_id, int):
            return
        key = (chat, message_id)
        self._left.pop(key, None)  # re-inserted: the newest last
        self._left[key] = data
        while len(self._left) > self.size:
            del self._left[next(iter(self._left))]


class PacingRateLimiter(BaseRateLimiter[dict[str, Any]]):
    """PTB rate limiter over :class:`Pacer`: priorities, per-chat spacing, scoped 429s.

    Pass ``rate_limit_args={"priority": BULK}`` for reminders; everything else
    (replies in handlers) is INTERACTIVE. Interactive requests that hit a 429,
    a 5xx or a dropped connection wait and try again a couple of times (a
    timeout is not retried: the message may have arrived); bulk ones raise,
    and the engine re-queues them in the database instead of holding a task
    asleep.
    """

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self.shown = ShownButtons()

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
                try:
                    result = await callback(*args, **kwargs)
                finally:
                    if paced:
                        self.pacer.sent(chat_id)
                if endpoint.startswith("editMessage"):
                    self.shown.edited(result)
                elif endpoint == "deleteMessage" and result is True:
                    self.shown.deleted(data)
                return result
            except BadRequest as exc:
                # A press can only be answered for a short while. After a
                # restart or a slow handler Telegram refuses the answer, but
                # the press itself is still valid and its handler must go on
                # to record it, so the refusal is not an error for the caller.
                if endpoint == "answerCallbackQuery" and _is_stale_query(exc):
                    log.info("callback query too old to answer; handled without an answer")
                    return True
                raise
            except RetryAfter as exc:
                seconds = _block_scope(self.pacer, chat_id, exc)
                attempt += 1
                if priority >= BULK or attempt > _INTERACTIVE_RETRIES:
                    raise
                log.info("rate limited on %s; retrying in %.1fs", endpoint, seconds)
            except TimedOut:
                raise  # it may have arrived: sending it again could say it twice
            except NetworkError as exc:
                # A 5xx or a dropped connection: Telegram did not take it. A reply the person is
                # waiting for (the crisis text among them) would otherwise be lost for good, so it
                # is tried again shortly, as after a 429; bulk sends raise, and the engine retries
                # them from the database with its own backoff.
                attempt += 1
                if priority >= BULK or not paced or attempt > _INTERACTIVE_RETRIES or _too_large(exc):
                    raise  # a 413 is no passing fault: the same upload would be refused again
                delay = _NETWORK_RETRY_SECONDS * attempt
                log.info("network error on %s (%s); retrying in %.1fs", endpoint, exc.message, delay)
                await asyncio.sleep(delay)


def _is_stale_query(exc: BadRequest) -> bool:
    message = exc.message.lower()
    return "query is too old" in message or "query id is invalid" in message


def _private_chat_id(data: dict[str, Any]) -> int | None:
    chat_id = data.get("chat_id")
    if isinstance(chat_id, int):
        return chat_id
    if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
        return int(chat_id)
    return None


# --- the lean path for the engine's text messages ---------------------------------------------


def _telegram_error(code: int, payload: bytes) -> TelegramError:
    """The exception PTB raises for this HTTP status and reply (telegram.request.BaseRequest), so that
    both paths classify alike: the HTTP status decides, parameters may turn it into RetryAfter or ChatMigrated."""
    try:
        message = f"{HTTPStatus(code).phrase} ({code})"
    except ValueError:
        message = f"Unknown HTTPError ({code})"
    try:
        reply = json.loads(payload)
    except ValueError:
        reply = None
    if isinstance(reply, dict):
        message = reply.get("description") or message
        parameters = reply.get("parameters")
        if isinstance(parameters, dict):
            if parameters.get("migrate_to_chat_id"):
                return ChatMigrated(parameters["migrate_to_chat_id"])
            if parameters.get("retry_after"):
                return RetryAfter(parameters["retry_after"])
    if code == HTTPStatus.FORBIDDEN:
        return Forbidden(message)
    if code in (HTTPStatus.NOT_FOUND, HTTPStatus.UNAUTHORIZED):
        return InvalidToken(message)
    if code == HTTPStatus.BAD_REQUEST:
        return BadRequest(message)
    if code == HTTPStatus.CONFLICT:
        return Conflict(message)
    return NetworkError(message)


def _block_scope(pacer: Pacer, chat_id: int | None, exc: RetryAfter) -> float:
    """A 429 holds the scope it was given for: the chat, or everything for a request without one."""
    seconds = retry_after_seconds(exc)
    if chat_id is not None:
        pacer.block_chat(chat_id, seconds)
    else:
        pacer.block_all(seconds)
    return seconds


# Keyboards by their labels: the rows of (label, callback data) of one kind in one language
# always have the same labels, so the JSON around the callback data is built once.
_KEYBOARDS: dict[tuple[tuple[str, ...], ...], str] = {}
_KEYBOARDS_MAX = 512


def keyboard_json(buttons: Sequence[Sequence[tuple[str, str]]]) -> str:
    """The inline keyboard as Telegram's JSON, from a template cached per set of labels."""
    labels = tuple(tuple(label for label, _ in row) for row in buttons)
    template = _KEYBOARDS.get(labels)
    if template is None:
        rows = (
            "["
            + ",".join(
                '{"text":' + json.dumps(label, ensure_ascii=False).replace("%", "%%") + ',"callback_data":%s}'
                for label in row
            )
            + "]"
            for row in labels
        )
        template = '{"inline_keyboard":[' + ",".join(rows) + "]}"
        if len(_KEYBOARDS) < _KEYBOARDS_MAX:
            _KEYBOARDS[labels] = template
    return template % tuple(json.dumps(data) for row in buttons for _, data in row)


def message_body(
    chat_id: int,
    text: str,
    buttons: Sequence[Sequence[tuple[str, str]]] | None,
    *,
    web_app: tuple[str, str] | None = None,
    effect_id: str | None = None,
    reply_to: int | None = None,
) -> bytes:
    """sendMessage's JSON body, encoded once.

    web_app: a first row with one button that opens a Mini App, (label, https URL);
    effect_id: Telegram's message_effect_id (private chats only);
    reply_to: sent as a reply to that message of the chat, or alone if it is gone.
    """
    body = f'{{"chat_id":{int(chat_id)},"text":{json.dumps(text, ensure_ascii=False)}'
    if web_app:
        opener = json.dumps([{"text": web_app[0], "web_app": {"url": web_app[1]}}], ensure_ascii=False)
        rows = keyboard_json(buttons)[len('{"inline_keyboard":[') : -2] if buttons else ""
        body += ',"reply_markup":{"inline_keyboard":[' + opener + ("," + rows if rows else "") + "]}"
    elif buttons:
        body += ',"reply_markup":' + keyboard_json(buttons)
    if effect_id:
        body += ',"message_effect_id":' + json.dumps(effect_id)
    if reply_to is not None:
        body += f',"reply_parameters":{{"message_id":{int(reply_to)},"allow_sending_without_reply":true}}'
    return (body + "}").encode()


class BotApi:
    """sendMessage for the engine without PTB's request and reply objects (see the module docstring)."""

    def __init__(self, request: AiohttpRequest, base_url: str, pacer: Pacer) -> None:
        self.request = request
        self.url = base_url.rstrip("/") + "/sendMessage"
        self.pacer = pacer

    async def send_message(self, chat_id: int, body: bytes, priority: int) -> int:
        """Send a body from :func:`message_body` to chat_id when the pacer allows; the message id.

        Raises the TelegramError PTB would raise; a 429 blocks its scope first, as PacingRateLimiter does.
        """
        await self.pacer.acquire(chat_id, priority)
        try:
            code, payload = await self.request.post_json(self.url, body)
        finally:
            self.pacer.sent(chat_id)
        if 200 <= code <= 299:
            try:
                return int(json.loads(payload)["result"]["message_id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise NetworkError(f"Unexpected reply to sendMessage: {type(exc).__name__}") from exc
        error = _telegram_error(code, payload)
        if isinstance(error, RetryAfter):
            _block_scope(self.pacer, chat_id, error)
        raise error


# --- rendering and the engine's sender --------------------------------------


MAX_TEXT = 4096  # Telegram's limits, in UTF-16 code units after entity parsing
MAX_CAPTION = 1024


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (emoji outside the BMP count twice)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut text into messages of at most limit, at paragraph, then line, then word breaks."""
    chunks: list[str] = []
    rest = text.strip()
    while utf16_len(rest) > limit:
        # Binary search for the longest prefix that fits, then back off to a break.
        low, high = 1, len(rest)
        while low < high:
            mid = (low + high + 1) // 2
            if utf16_len(rest[:mid]) <= limit:
                low = mid
            else:
                high = mid - 1
        head = rest[:low]
        cut = max(head.rfind("\n\n"), 0) or max(head.rfind("\n"), 0) or max(head.rfind(" "), 0) or low
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    chunks.append(rest)
    return chunks


@dataclass(frozen=True)
class OutgoingMedia:
    """A photo, animation or video from content: a file path or URL, or Telegram's file_id for it."""

    kind: str  # "photo", "animation" or "video"
    source: str  # absolute file path or http(s) URL
    file_id: str | None = None  # from an earlier upload; sent instead of the file


@dataclass(frozen=True)
class SentItem:
    """A message that went out, for its renderer's batched bookkeeping.

    file_id: the new file_id of the message's own media after an upload;
    uploads: (source, file_id) of every media uploaded for it, its ``before`` parts included.
    """

    message: DueMessage
    message_id: int
    file_id: str | None
    data: Any
    uploads: tuple[tuple[str, str], ...] = ()


# Telegram's message effect for milestones ("🎉"), private chats only.
MILESTONE_EFFECT_ID = "5046509860389126442"


# What a settle function leaves for after the commit (Telegram calls, which wait for the pacer:
# the recording transaction must not), or None.
AfterCommit = Callable[[], Awaitable[None]]
# (db, items): the bookkeeping of a window's sent messages, in the transaction that records them.
SettleMany = Callable[[AsyncSession, list[SentItem]], Awaitable[AfterCommit | None]]


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered message: text plus inline buttons as (label, callback_data).

    With media, the text becomes its caption when it fits (1024), else the
    media goes first and the text follows with the buttons. Text over 4096 is
    split, buttons on the last part.

    settle is the one after-send hook: ``(settle_many, data)``. The sender
    collects a :class:`SentItem` per sent message (the id of the message with
    the buttons and, after an upload, the new file_id to reuse next time) and
    calls ``settle_many`` once per window, after the engine has recorded it,
    so the bookkeeping costs one transaction per window rather than one per
    patient.
    """

    text: str
    buttons: list[list[tuple[str, str]]] = field(default_factory=list)
    media: OutgoingMedia | None = None
    settle: tuple[SettleMany, Any] | None = field(default=None, compare=False)
    # A first row with one button that opens a Mini App: (label, https URL).
    web_app: tuple[str, str] | None = None
    # Telegram's message_effect_id (private chats), e.g. MILESTONE_EFFECT_ID.
    effect_id: str | None = None
    # Messages sent first, in order, each paced like any other (the exercises before "Done?").
    before: tuple[OutgoingMessage, ...] = ()
    # Sent as a Telegram reply to this message of the chat (threads a conversation); a message
    # deleted meanwhile does not stop it (allow_sending_without_reply).
    reply_to: int | None = None

    def markup(self) -> InlineKeyboardMarkup | None:
        """The inline keyboard, or None without buttons."""
        return keyboard(self.buttons, self.web_app)


def keyboard(
    buttons: list[list[tuple[str, str]]], web_app: tuple[str, str] | None = None
) -> InlineKeyboardMarkup | None:
    """Rows of (label, callback_data) as an inline keyboard, under an optional Mini App button; None if empty."""
    rows = [[InlineKeyboardButton(web_app[0], web_app=WebAppInfo(web_app[1]))]] if web_app else []
    rows += [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in buttons]
    return InlineKeyboardMarkup(rows) if rows else None


Renderer = Callable[[DueMessage], Awaitable[OutgoingMessage | None]]
# Renders a claimed window in one go, reading through the claim's transaction
# (db, messages, what the dispatcher opened for them): {delivery_id: message or
# None}; the deliveries it leaves out are rendered one by one.
BatchRenderer = Callable[
    [AsyncSession, Sequence[DueMessage], Mapping[int, Any]], Awaitable[dict[int, OutgoingMessage | None]]
]


class TelegramSender:
    """The engine's Sender: render, send through the paced bot, classify errors.

    With ``api`` (the aiohttp backend) text messages take the lean path, :class:`BotApi`;
    without it (PTB's httpx backend, tests with a stand-in bot) everything goes through PTB.
    """

    def __init__(
        self,
        bot: ExtBot[Any],
        render: Renderer,
        *,
        render_many: BatchRenderer | None = None,
        api: BotApi | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.bot = bot
        self.now = now or (lambda: datetime.now(UTC))
        self.render = render
        self.render_many = render_many
        self.api = api
        # Rendered ahead, keyed by (delivery, attempt) so that a retry of the
        # same delivery is rendered afresh.
        self._prepared: dict[tuple[int, int], OutgoingMessage | None] = {}
        self._unsettled: list[tuple[SettleMany, SentItem]] = []
        self._after_commit: list[AfterCommit] = []
        # Group chats Telegram upgraded to supergroups while we run: old id -> new id. Each is also
        # recorded in the database at the next flush (alert.record_chat_move), for new alerts and restarts.
        self._migrated: dict[int, int] = {}
        self._moves: list[tuple[int, int]] = []

    async def render_window(self, db: AsyncSession, messages: Sequence[DueMessage], opened: Mapping[int, Any]) -> None:
        """Render what the batch renderer can of a claimed window, inside the claim's transaction.

        The batch renderer only reads (through db). It raises what the
        renderer raised, having kept nothing: the dispatcher then takes the
        claim again without it, and :meth:`prepare` renders one by one.
        """
        if self.render_many is None or not messages:
            return
        rendered = await self.render_many(db, messages, opened)
        for message in messages:
            if message.delivery_id in rendered:
                self._prepared[(message.delivery_id, message.attempts)] = rendered[message.delivery_id]

    async def prepare(self, messages: Sequence[DueMessage]) -> None:
        """Render, one after another, the messages of a window the batch renderer left, before the sends start.

        Rendering one message after another here, rather than inside the
        concurrent sends, keeps the renderers' database writes from queueing
        behind each other (SQLite has one writer; each waiting transaction
        costs CPU in its retry loop).
        """
        for message in messages:
            key = (message.delivery_id, message.attempts)
            if key in self._prepared:
                continue
            try:
                self._prepared[key] = await self.render(message)
            except Exception:  # send() renders it again and the engine records the failure
                log.exception("rendering delivery %d failed", message.delivery_id)

    def forget(self, messages: Iterable[DueMessage]) -> None:
        """Drop what was rendered ahead for messages that will not be sent now (cancelled)."""
        for m in messages:
            self._prepared.pop((m.delivery_id, m.attempts), None)

    async def flush(self, db: AsyncSession, *, isolate: bool = False) -> None:
        """Run the batched bookkeeping of everything sent since the last flush, one call per renderer, in db.

        A failure raises BookkeepingFailed and keeps the items; the dispatcher
        rolls back and records again with isolate=True, where each call runs in
        a savepoint and a failing one is rolled back alone and logged (the
        messages are out: a bookkeeping bug must not get them re-sent).
        """
        moves, self._moves = self._moves, []
        for old, new in moves:
            await alert.record_chat_move(db, old, new, self.now())
        pending, self._unsettled = self._unsettled, []
        groups: dict[SettleMany, list[SentItem]] = {}
        for settle_many, item in pending:
            groups.setdefault(settle_many, []).append(item)
        after: list[AfterCommit] = []
        for settle_many, items in groups.items():
            if not isolate:
                try:
                    then = await settle_many(db, items)
                except Exception as exc:
                    self._unsettled = pending + self._unsettled
                    self._moves = moves + self._moves  # rolled back with the rest: recorded on the retry
                    raise BookkeepingFailed from exc
            else:
                try:
                    async with db.begin_nested():
                        then = await settle_many(db, items)
                except Exception:
                    log.exception("after-send bookkeeping failed for %d deliveries", len(items))
                    continue
            if then is not None:
                after.append(then)
        self._after_commit = after

    async def committed(self) -> None:
        """The recording transaction committed: run what the bookkeeping left for after it (edits)."""
        after, self._after_commit = self._after_commit, []
        for then in after:
            try:
                await then()
            except Exception:  # the bookkeeping is stored; a failed edit must not stop the engine
                log.exception("after-commit step of the bookkeeping failed")

    async def send(self, message: DueMessage) -> Outcome:
        """Send one due message and return its outcome; never raises TelegramError."""
        key = (message.delivery_id, message.attempts)
        rendered = self._prepared.pop(key) if key in self._prepared else await self.render(message)
        if rendered is None:
            return Failed("nothing to send: superseded")
        priority = SAFETY if message.kind in ("safety", "alert") else BULK
        limits = {"priority": priority}
        uploads: list[tuple[str, str]] = []
        chat_id = self._migrated.get(message.chat_id, message.chat_id)
        try:
            try:
                message_id, file_id = await self._deliver_parts(chat_id, rendered, limits, uploads)
            except ChatMigrated as exc:
                # Only a group migrates: the clinic's alert chat, upgraded to a supergroup by
                # Telegram. It has a new id from now on; the message goes there, once. The move is
                # recorded (and the operator told) at the next flush.
                new_chat_id = int(exc.new_chat_id)
                self._migrated[message.chat_id] = new_chat_id
                self._moves.append((chat_id, new_chat_id))
                message_id, file_id = await self._deliver_parts(new_chat_id, rendered, limits, uploads)
        except TelegramError as exc:
            outcome = classify(exc)
            log.info("delivery %d: %s", message.delivery_id, type(outcome).__name__)
            return outcome
        if file_id and rendered.media is not None:
            uploads.append((rendered.media.source, file_id))
        if rendered.settle is not None:
            settle_many, data = rendered.settle
            self._unsettled.append((settle_many, SentItem(message, message_id, file_id, data, tuple(uploads))))
        return Sent(message_id)

    async def _deliver_parts(
        self, chat_id: int, rendered: OutgoingMessage, limits: dict[str, Any], uploads: list[tuple[str, str]]
    ) -> tuple[int, str | None]:
        """Send the ``before`` parts, then the message; the uploads of the parts go to ``uploads``."""
        for part in rendered.before:
            _, part_file_id = await self._deliver(chat_id, part, limits)
            if part_file_id and part.media is not None:
                uploads.append((part.media.source, part_file_id))
        return await self._deliver(chat_id, rendered, limits)

    async def _deliver(self, chat_id: int, rendered: OutgoingMessage, limits: dict[str, Any]) -> tuple[int, str | None]:
        """Send the media and text; return the id of the message with the buttons and any new file_id."""
        chunks = split_text(rendered.text)
        file_id: str | None = None
        reply = (
            ReplyParameters(message_id=rendered.reply_to, allow_sending_without_reply=True)
            if rendered.reply_to is not None
            else None
        )
        if rendered.media is not None:
            fits = len(chunks) == 1 and utf16_len(chunks[0]) <= MAX_CAPTION
            sent = await self._send_media(
                chat_id,
                rendered.media,
                chunks[0] if fits else None,
                rendered.markup() if fits else None,
                {**limits, "effect": rendered.effect_id if fits else None},
                reply,
            )
            if sent is not None:
                message, file_id = sent
                reply = None
                if fits:
                    return message.message_id, file_id
        message_id = 0
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            if self.api is not None:
                body = message_body(
                    chat_id,
                    chunk,
                    rendered.buttons if last else None,
                    web_app=rendered.web_app if last else None,
                    effect_id=rendered.effect_id if last else None,
                    reply_to=reply.message_id if reply is not None and n == 0 else None,
                )
                message_id = await self.api.send_message(chat_id, body, limits["priority"])
                continue
            sent_text = await self.bot.send_message(
                chat_id=chat_id,
                text=chunk,
                reply_markup=rendered.markup() if last else None,
                message_effect_id=rendered.effect_id if last else None,
                reply_parameters=reply if n == 0 else None,
                rate_limit_args=limits,
            )
            message_id = sent_text.message_id
        return message_id, file_id

    async def _send_media(
        self,
        chat_id: int,
        media: OutgoingMedia,
        caption: str | None,
        markup: InlineKeyboardMarkup | None,
        limits: dict[str, Any],
        reply: ReplyParameters | None = None,
    ) -> tuple[Message, str | None] | None:
        """Send by file_id when known, else upload; None when the media cannot be sent at all.

        A missing file or a file_id Telegram no longer knows must not cost the
        patient the reminder: the text then goes out alone.
        """
        if media.file_id:
            try:
                return await self._media_call(chat_id, media.kind, media.file_id, caption, markup, limits, reply), None
            except BadRequest as exc:
                if isinstance(classify(exc), Unreachable):
                    raise
                log.warning("cached %s file_id refused (%s); uploading again", media.kind, exc.message)
        payload: Any = media.source
        if not media.source.lower().startswith(("http://", "https://")):
            try:
                payload = await asyncio.to_thread(Path(media.source).read_bytes)
            except OSError as exc:
                log.warning("media file cannot be read (%s); sending the text alone", exc.strerror)
                return None
        try:
            sent = await self._media_call(chat_id, media.kind, payload, caption, markup, limits, reply)
        except BadRequest as exc:
            if isinstance(classify(exc), Unreachable):
                raise
            log.warning("%s refused (%s); sending the text alone", media.kind, exc.message)
            return None
        except NetworkError as exc:
            # HTTP 413: the file is over Telegram's upload limit (50 MB). PTB raises a plain
            # NetworkError for it, but it is no passing fault: every retry would fail the same.
            if not _too_large(exc):
                raise
            log.warning("%s %s is too large for Telegram; sending the text alone", media.kind, media.source)
            return None
        return sent, _file_id(sent, media.kind)

    async def _media_call(
        self,
        chat_id: int,
        kind: str,
        payload: Any,
        caption: str | None,
        markup: InlineKeyboardMarkup | None,
        limits: dict[str, Any],
        reply: ReplyParameters | None = None,
    ) -> Message:
        limits = dict(limits)
        common: dict[str, Any] = {
            "chat_id": chat_id,
            "caption": caption,
            "reply_markup": markup,
            "message_effect_id": limits.pop("effect", None),
            "rate_limit_args": limits,
        }
        if reply is not None:
            common["reply_parameters"] = reply
        if isinstance(payload, bytes):
            common["filename"] = "exercise" + {"photo": ".jpg", "animation": ".gif", "video": ".mp4"}.get(kind, "")
        if kind == "animation":
            return await self.bot.send_animation(animation=payload, **common)
        if kind == "video":
            return await self.bot.send_video(video=payload, **common)
        return await self.bot.send_photo(photo=payload, **common)


def _too_large(exc: NetworkError) -> bool:
    """Telegram's 413 for an upload over its limit ("Request Entity Too Large", as JSON or a bare page)."""
    return "entity too large" in exc.message.lower() and not isinstance(exc, TimedOut)


def _file_id(message: Message, kind: str) -> str | None:
    """Telegram's file_id of what we just uploaded (the largest photo size)."""
    if kind == "photo" and message.photo:
        return message.photo[-1].file_id
    if kind == "animation" and message.animation is not None:
        return message.animation.file_id
    if kind == "video" and message.video is not None:
        return message.video.file_id
    return None
