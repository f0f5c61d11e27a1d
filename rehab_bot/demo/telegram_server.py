"""A fake Telegram Bot API server: what the end-to-end tests and ``rehab-bot demo`` run the bot against.

The real python-telegram-bot ``Application`` talks HTTP to this server exactly as it would
to api.telegram.org, so the tests (and the demo) exercise PTB's own request encoding, polling,
error mapping and retry logic, not a mock of them::

    async with FakeTelegram() as tg:
        config = replace(config, telegram=replace(config.telegram, base_url=tg.base_url, ...))
        ...  # start the Application
        anna = tg.user(42, first_name="Anna")
        await anna.send("/start")
        (reply,) = await anna.wait_for()
        await anna.press("Yes")

This module is the one copy: tests/rig/telegram_server.py re-exports it and adds the
test-only helpers that need python-telegram-bot (``application_builder``, ``running``); this
module itself imports no ``telegram``, like every module outside ``rehab_bot/bot/``.

How PTB 22.x encodes requests (see telegram/request/_httpxrequest.py): every call is a POST;
without files the body is ``application/x-www-form-urlencoded`` where *every* value is a
string — str values as-is, everything else (ints, bools, dicts, lists) ``json.dumps``-ed, so
``chat_id=42``, ``show_alert=true``, ``reply_markup={"inline_keyboard": ...}``. With files
the same string fields and the file parts go as ``multipart/form-data``; single files
(sendPhoto etc.) are a part named after the parameter, media groups use ``attach://name``.
Telegram itself also accepts JSON bodies and GET query strings, so we accept those too.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any, Literal, NamedTuple

from aiohttp import BodyPartReader, web

JSONDict = dict[str, Any]

# --------------------------------------------------------------------------------------------
# Telegram's exact error descriptions (PTB strips the "Bad Request: " prefix and capitalises
# the rest, so BadRequest.message is e.g. "Chat not found").
# --------------------------------------------------------------------------------------------
UNAUTHORIZED = "Unauthorized"
NOT_FOUND = "Not Found"
BLOCKED = "Forbidden: bot was blocked by the user"
DEACTIVATED = "Forbidden: user is deactivated"
CHAT_NOT_FOUND = "Bad Request: chat not found"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup"
    " are exactly the same as a current content and reply markup of the message"
)
EDIT_NOT_FOUND = "Bad Request: message to edit not found"
MIGRATED = "Bad Request: group chat was upgraded to a supergroup chat"
DELETE_NOT_FOUND = "Bad Request: message to delete not found"
CANT_EDIT = "Bad Request: message can't be edited"
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
TEXT_EMPTY = "Bad Request: message text is empty"
TEXT_TOO_LONG = "Bad Request: message is too long"
CAPTION_TOO_LONG = "Bad Request: message caption is too long"
BUTTON_DATA_INVALID = "Bad Request: BUTTON_DATA_INVALID"
BAD_MARKUP = "Bad Request: can't parse reply keyboard markup JSON object"
EFFECT_ID_INVALID = "Bad Request: EFFECT_ID_INVALID"
BUTTON_TYPE_INVALID = "Bad Request: BUTTON_TYPE_INVALID"  # a web_app button outside a private chat
ANSWER_TOO_LONG = "Bad Request: MESSAGE_TOO_LONG"  # answerCallbackQuery text over 200 characters
MAX_ANSWER = 200
# Message effects any bot may send in private chats (the free ones Telegram's clients offer):
# 🔥 👍 👎 ❤️ 🎉 💩. Telegram refuses other ids, and any effect outside a private chat.
MESSAGE_EFFECTS = frozenset(
    {
        "5104841245755180586",
        "5107584321108051014",
        "5104858069142078462",
        "5044134455711629726",
        "5046509860389126442",
        "5046589136895476101",
    }
)
CANT_PARSE = "Bad Request: can't parse entities: "
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
# A multipart upload over 50 MB is refused before any method runs: HTTP 413, which PTB turns
# into a NetworkError("Request Entity Too Large"), not a BadRequest.
MAX_UPLOAD = 50 * 1024 * 1024
TOO_LARGE = "Request Entity Too Large"


# Methods that create or change a message in a chat: subject to flood limits.
# sendChatAction is deliberately excluded: Telegram does not count it as a message, and a
# bot that sends "typing…" right before its reply must not trip a 1 msg/s per-chat limit.
def _is_limited(method: str) -> bool:
    m = method.lower()
    return m != "sendchataction" and m.startswith(("send", "edit", "copy"))


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------
FaultKind = Literal["error", "slow", "reset", "timeout"]


@dataclass(frozen=True)
class Fault:
    """What to do to a matching request. Build with the factory functions below."""

    kind: FaultKind
    status: int = 0
    description: str = ""
    retry_after: int | None = None
    delay: float = 0.0
    applied: bool = False  # reset/timeout: perform the method first, then lose the response


def retry_after(seconds: int) -> Fault:
    """429 flood control; PTB raises ``RetryAfter`` with ``retry_after == seconds``."""
    return Fault("error", 429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)


def blocked() -> Fault:
    """403: the user blocked the bot (PTB ``Forbidden``)."""
    return Fault("error", 403, BLOCKED)


def deactivated() -> Fault:
    """403: the user deleted their account (PTB ``Forbidden``)."""
    return Fault("error", 403, DEACTIVATED)


def chat_not_found() -> Fault:
    """400 "chat not found" (PTB ``BadRequest("Chat not found")``)."""
    return Fault("error", 400, CHAT_NOT_FOUND)


def server_error(status: int = 500) -> Fault:
    """5xx; PTB maps these to ``NetworkError`` (502 included)."""
    desc = {500: "Internal Server Error", 502: "Bad Gateway"}.get(status)
    return Fault("error", status, desc or HTTPStatus(status).phrase)


def conflict() -> Fault:
    """409 to getUpdates while another client polls with the same token (PTB ``Conflict``)."""
    return Fault(
        "error",
        409,
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    )


def bad_request(description: str) -> Fault:
    """400 with a custom description (``"Bad Request: "`` is prefixed if missing)."""
    if not description.startswith("Bad Request: "):
        description = "Bad Request: " + description
    return Fault("error", 400, description)


def not_modified() -> Fault:
    """400 "message is not modified" (an edit that changes nothing)."""
    return Fault("error", 400, NOT_MODIFIED)


def query_too_old() -> Fault:
    """400 for answerCallbackQuery after Telegram's ~15 s window."""
    return Fault("error", 400, QUERY_TOO_OLD)


def slow(seconds: float) -> Fault:
    """Delay, then handle the request normally."""
    return Fault("slow", delay=seconds)


def reset(*, applied: bool = False) -> Fault:
    """Abort the TCP connection without a response (PTB ``NetworkError``).

    ``applied=True`` performs the method first: "the message was sent but the reply was lost".
    """
    return Fault("reset", applied=applied)


def timeout(seconds: float = 30.0, *, applied: bool = False) -> Fault:
    """Sleep longer than the client's read timeout (PTB ``TimedOut``).

    Without ``applied`` the method never takes effect: aiohttp cancels the handler when the
    client hangs up. ``applied=True`` performs it before stalling (a duplicate-send hazard).
    """
    return Fault("timeout", delay=seconds, applied=applied)


@dataclass
class FaultRule:
    """An injected fault; ``times=None`` means forever. ``hits`` counts applications."""

    method: str  # lower-case, or "*"
    chat_id: int | None
    fault: Fault
    times: int | None
    hits: int = 0

    def matches(self, method: str, chat_id: int | None) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method not in ("*", method.lower()):
            return False
        return self.chat_id is None or self.chat_id == chat_id


@dataclass
class _RandomFaults:
    methods: frozenset[str]  # lower-case; "*" = all
    rate: float
    errors: Sequence[Fault]
    rng: random.Random


class _ApiError(Exception):
    def __init__(self, status: int, description: str, retry: int | None = None, migrate_to: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry
        self.migrate_to_chat_id = migrate_to


class _Aborted(Exception):
    """The connection was torn down on purpose; there is no response to send."""


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UploadedFile:
    """One multipart file part as received."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class MediaInfo:
    """A file the server knows: uploaded by the bot, reused by file_id, or sent by a user."""

    kind: str  # "photo" | "document" | "animation" | "video" | "sticker"
    file_id: str
    file_unique_id: str
    filename: str | None
    mime_type: str | None
    data: bytes | None  # None when only a file_id/URL string was given
    file_path: str = ""

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else 0


@dataclass(eq=False)
class SentMessage:
    """A message the bot sent, reflecting its current state after edits/deletes.

    ``text`` is what the patient sees (HTML/Markdown rendered to plain text; the caption for
    media); ``raw_text`` is the string the bot sent, with ``parse_mode``.
    """

    message_id: int
    chat_id: int
    method: str
    text: str | None
    raw_text: str | None
    parse_mode: str | None
    reply_markup: JSONDict | None
    date: int
    media: MediaInfo | None = None
    reply_to_message_id: int | None = None
    edited: bool = False
    deleted: bool = False
    edit_date: int | None = None
    history: list[str | None] = field(default_factory=list)  # previous texts, oldest first
    params: JSONDict = field(default_factory=dict)  # params of the creating call
    effect_id: str | None = None  # message_effect_id, echoed as Message.effect_id

    @property
    def caption(self) -> str | None:
        return self.text if self.media is not None else None

    @property
    def photo(self) -> MediaInfo | None:
        return self.media if self.media and self.media.kind == "photo" else None

    @property
    def document(self) -> MediaInfo | None:
        return self.media if self.media and self.media.kind == "document" else None

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Keyboard rows as ``(label, callback_data or url or None)``; [] if no keyboard."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        out: list[list[tuple[str, str | None]]] = []
        for row in rows:
            cells: list[tuple[str, str | None]] = []
            for b in row:
                if isinstance(b, str):  # reply keyboards may use bare strings
                    cells.append((b, None))
                    continue
                target = b.get("callback_data") or b.get("url") or (b.get("web_app") or {}).get("url")
                cells.append((str(b.get("text", "")), target))
            out.append(cells)
        return out

    @property
    def button_labels(self) -> list[str]:
        return [label for row in self.buttons for label, _ in row]

    @property
    def callback_data(self) -> list[str]:
        """All inline callback_data values, flat."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [b["callback_data"] for row in rows for b in row if "callback_data" in b]

    @property
    def has_inline_keyboard(self) -> bool:
        return bool((self.reply_markup or {}).get("inline_keyboard"))


@dataclass(frozen=True)
class CallbackAnswer:
    """One answerCallbackQuery call."""

    query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass
class RecordedRequest:
    """One HTTP call to the Bot API. ``response_status`` is 0 while pending and for
    connections that were reset/abandoned; ``time`` is the server's ``monotonic()`` on arrival
    (time.monotonic() unless the server was given another clock)."""

    method: str
    params: JSONDict
    chat_id: int | None
    time: float
    response_status: int = 0
    description: str | None = None  # error description, if any
    files: dict[str, UploadedFile] = field(default_factory=dict)
    fault: Fault | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.response_status < 300


class CommandScopeKey(NamedTuple):
    """Where a setMyCommands list applies."""

    scope_type: str
    chat_id: int | str | None
    user_id: int | None
    language_code: str


class BotCommandEntry(NamedTuple):
    command: str
    description: str


# --------------------------------------------------------------------------------------------
# Param decoding and text rendering
# --------------------------------------------------------------------------------------------
_JSON_KEYS = frozenset(
    "reply_markup commands scope entities caption_entities allowed_updates link_preview_options"
    " reply_parameters media menu_button results message_ids options".split()
)
_INT_KEYS = frozenset(
    "chat_id message_id from_chat_id reply_to_message_id message_thread_id user_id offset"
    " limit timeout cache_time max_connections duration width height".split()
)
_BOOL_KEYS = frozenset(
    "show_alert disable_notification protect_content drop_pending_updates has_spoiler"
    " disable_web_page_preview allow_sending_without_reply disable_content_type_detection"
    " supports_streaming show_caption_above_media".split()
)


def _decode(key: str, value: Any) -> Any:
    """Undo PTB's stringification for keys whose type we know; leave other strings alone
    (a numeric-looking text or callback_query_id must stay a str)."""
    if not isinstance(value, str):
        return value
    if key in _JSON_KEYS:
        with contextlib.suppress(ValueError):
            return json.loads(value)
    elif key in _INT_KEYS:
        with contextlib.suppress(ValueError):
            return int(value)
        with contextlib.suppress(ValueError):
            return float(value)
    elif key in _BOOL_KEYS and value in ("true", "false", "True", "False", "1", "0"):
        return value in ("true", "True", "1")
    return value


async def _read_params(request: web.Request) -> tuple[JSONDict, dict[str, UploadedFile]]:
    raw: JSONDict = dict(request.query)
    files: dict[str, UploadedFile] = {}
    if request.can_read_body:
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError as exc:
                raise _ApiError(400, "Bad Request: can't parse JSON body") from exc
            if not isinstance(body, dict):
                raise _ApiError(400, "Bad Request: parameters must be a JSON object")
            raw.update(body)
        elif ctype == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    data = bytes(await part.read())
                    ctype_part = part.headers.get("Content-Type")
                    files[part.name] = UploadedFile(part.name, part.filename, ctype_part, data)
                else:
                    raw[part.name] = await part.text()
        else:
            form = await request.post()
            raw.update({k: v for k, v in form.items() if isinstance(v, str)})
    params = {k: _decode(k, v) for k, v in raw.items()}
    params.update(files)  # so params["photo"] shows the upload
    return params, files


def _utf16_len(text: str) -> int:
    # Telegram counts message length in UTF-16 code units (emoji count double).
    return len(text.encode("utf-16-le")) // 2


_HTML_TAGS = frozenset("b strong i em u ins s strike del span tg-spoiler a tg-emoji code pre blockquote".split())
_TAG_NAME = re.compile(r"/?([a-zA-Z0-9-]*)")


def _render_html(src: str) -> str:
    """Validate like Telegram (only its tag whitelist, balanced tags, ``<`` escaped) and
    return the visible text. Catches the classic bug of interpolating unescaped user input."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while (j := src.find("<", i)) >= 0:
        out.append(src[i:j])
        offset = len(src[:j].encode())
        m = _TAG_NAME.match(src, j + 1)
        name = m.group(1).lower() if m else ""
        closing = src.startswith("/", j + 1)
        # Like tdlib: the tag name is checked before looking for ">", so "1 < 2" is an
        # unsupported (empty-named) start tag rather than an unclosed one.
        if not closing and name not in _HTML_TAGS:
            raise _ApiError(400, f'{CANT_PARSE}Unsupported start tag "{name}" at byte offset {offset}')
        k = src.find(">", j)
        if k < 0:
            kind = "end" if closing else "start"
            raise _ApiError(400, f"{CANT_PARSE}Unclosed {kind} tag at byte offset {offset}")
        if closing:
            if not stack:
                raise _ApiError(400, f"{CANT_PARSE}Unexpected end tag at byte offset {offset}")
            if name != stack[-1]:
                raise _ApiError(
                    400,
                    f'{CANT_PARSE}Unmatched end tag at byte offset {offset}, expected "</'
                    f'{stack[-1]}>", found "</{name}>"',
                )
            stack.pop()
        else:
            stack.append(name)
        i = k + 1
    out.append(src[i:])
    if stack:
        raise _ApiError(400, f'{CANT_PARSE}Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return html.unescape("".join(out))


def _render_markdown_v2(src: str) -> str:
    """Approximate MarkdownV2: strips markup, and rejects unescaped reserved characters
    (the "." / "-" / "!" in ordinary sentences that breaks so many bots)."""
    out: list[str] = []
    i, n = 0, len(src)
    code = pre = False
    links = 0
    at_line_start = True
    while i < n:
        c = src[i]
        line_start, at_line_start = at_line_start, c == "\n"
        if c == "\\" and i + 1 < n:
            out.append(src[i + 1])
            i += 2
            continue
        if src.startswith("```", i) and not code:
            pre = not pre
            i += 3
            if pre:  # optional language tag up to the newline
                nl = src.find("\n", i)
                i = nl + 1 if nl >= 0 else n
            continue
        if c == "`" and not pre:
            code = not code
        elif code or pre or c in "*_~|":
            if code or pre:
                out.append(c)
        elif c == "[":
            links += 1
        elif c == "]" and links:
            links -= 1
            if src.startswith("(", i + 1):
                end = src.find(")", i + 2)
                i = (end if end >= 0 else n - 1) + 1
                continue
        elif (c == ">" and line_start) or (c == "!" and src.startswith("[", i + 1)):
            pass
        elif c in "[]()>#+-={}.!":
            raise _ApiError(
                400,
                f"{CANT_PARSE}Character '{c}' is reserved and must be escaped with the preceding '\\'",
            )
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _render_markdown(src: str) -> str:
    """Legacy Markdown: an unpaired ``*``/``_``/`` ` `` (e.g. in a username) is an error."""
    src = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", src)
    out: list[str] = []
    open_c: str | None = None
    open_at = 0
    i = 0
    while i < len(src):
        c = src[i]
        if c == "\\" and i + 1 < len(src) and src[i + 1] in "*_`[" and open_c is None:
            out.append(src[i + 1])
            i += 2
            continue
        if open_c is None and c in "*_`":
            open_c, open_at = c, i
        elif c == open_c:
            open_c = None
        else:
            out.append(c)
        i += 1
    if open_c is not None:
        offset = len(src[:open_at].encode())
        raise _ApiError(400, f"{CANT_PARSE}Can't find end of the entity starting at byte offset {offset}")
    return "".join(out)


def render_text(text: str, parse_mode: str | None) -> str:
    """Telegram's view of ``text`` under ``parse_mode``; raises like Telegram on bad markup."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return _render_html(text)
    if mode == "markdownv2":
        return _render_markdown_v2(text)
    if mode == "markdown":
        return _render_markdown(text)
    return text


_BUTTON_ACTIONS = frozenset(
    "callback_data url web_app login_url switch_inline_query switch_inline_query_current_chat"
    " switch_inline_query_chosen_chat callback_game pay copy_text".split()
)


def _check_markup(markup: Any) -> JSONDict | None:
    """Validate reply_markup the way Telegram does for the mistakes bots actually make."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _ApiError(400, BAD_MARKUP)
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _ApiError(
                400,
                'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays',
            )
        for button in (b for row in rows for b in row):
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise _ApiError(
                    400,
                    'Bad Request: can\'t parse inline keyboard button: Field "text" must be of type String',
                )
            if not _BUTTON_ACTIONS & button.keys():
                raise _ApiError(
                    400,
                    "Bad Request: can't parse inline keyboard button: Text buttons are "
                    "unallowed in the inline keyboard",
                )
            data = button.get("callback_data")
            # Telegram measures callback_data in bytes: 64 ASCII chars but only 32 Cyrillic.
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                raise _ApiError(400, BUTTON_DATA_INVALID)
    return markup


# --------------------------------------------------------------------------------------------
# Rate limiting
# --------------------------------------------------------------------------------------------
class _TokenBucket:
    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate, self.capacity, self.tokens, self.stamp = rate, capacity, capacity, now

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0 if available now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


# --------------------------------------------------------------------------------------------
# Chats as seen by tests
# --------------------------------------------------------------------------------------------
class _ChatView:
    """Bot messages in one chat, plus robust waiting on them."""

    chat_type: str = "private"

    def __init__(self, tg: FakeTelegram, chat_id: int) -> None:
        self.tg = tg
        self.chat_id = chat_id
        self.messages: list[SentMessage] = []  # bot messages, in send order
        self._events: list[tuple[str, SentMessage]] = []  # ("send"|"edit", msg)
        self._cursor = 0

    def chat_json(self) -> JSONDict:
        raise NotImplementedError

    @property
    def last(self) -> SentMessage:
        """The latest bot message that is not deleted."""
        alive = [m for m in self.messages if not m.deleted]
        if not alive:
            raise AssertionError(f"the bot has sent no (undeleted) message to chat {self.chat_id}")
        return alive[-1]

    def texts(self, *, include_deleted: bool = False) -> list[str]:
        return [m.text or "" for m in self.messages if include_deleted or not m.deleted]

    def mark_seen(self) -> None:
        """Forget pending events so the next wait_for only sees what happens after now."""
        self._cursor = len(self._events)

    async def wait_for(
        self,
        predicate: Callable[[SentMessage], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - the API the tests read
        include_edits: bool = True,
    ) -> list[SentMessage]:
        """Wait until ``count`` new bot messages (sends, and edits unless ``include_edits``
        is False) matching ``predicate`` arrived in this chat since the previous wait, and
        return them (current state). Events before the last match are consumed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        cond = self.tg._activity
        async with cond:
            while True:
                found: list[SentMessage] = []
                last_idx = self._cursor - 1
                for idx in range(self._cursor, len(self._events)):
                    kind, msg = self._events[idx]
                    if kind == "edit" and not include_edits:
                        continue
                    if predicate is None or predicate(msg):
                        found.append(msg)
                        last_idx = idx
                        if len(found) == count:
                            break
                if len(found) >= count:
                    self._cursor = last_idx + 1
                    return found
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise AssertionError(self._timeout_report(len(found), count, timeout))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await cond.wait()

    async def next_message(
        self,
        predicate: Callable[[SentMessage], bool] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the API the tests read
    ) -> SentMessage:
        """``wait_for(count=1)`` returning the single message."""
        return (await self.wait_for(predicate, timeout=timeout))[0]

    async def expect_silence(self, duration: float = 0.3) -> None:
        """Assert the bot sends/edits nothing in this chat for ``duration`` seconds."""
        start = len(self._events)
        await asyncio.sleep(duration)
        if len(self._events) > start:
            new = [f"{k} {m.method} {m.text!r}" for k, m in self._events[start:]]
            raise AssertionError(f"expected silence in chat {self.chat_id}, got: {new}")

    def _timeout_report(self, got: int, count: int, timeout: float) -> str:
        recent = [f"  #{m.message_id} {m.method} {m.text!r}" for m in self.messages[-5:]]
        errors = [
            f"  {r.method} -> {r.response_status} {r.description}"
            for r in self.tg.requests
            if r.chat_id == self.chat_id and r.description
        ][-5:]
        return (
            f"timed out after {timeout}s waiting for {count} new bot message(s) in chat "
            f"{self.chat_id}; {got} matched.\nLast bot messages:\n"
            + ("\n".join(recent) or "  (none)")
            + "\nFailed API calls to this chat:\n"
            + ("\n".join(errors) or "  (none)")
        )


class FakeUser(_ChatView):
    """A Telegram user and their private chat with the bot (chat id == user id)."""

    def __init__(
        self,
        tg: FakeTelegram,
        user_id: int,
        first_name: str,
        language_code: str | None,
        last_name: str | None = None,
        username: str | None = None,
    ) -> None:
        super().__init__(tg, user_id)
        self.user_id = user_id
        self.first_name, self.last_name, self.username = first_name, last_name, username
        self.language_code = language_code
        self.callback_answers: list[CallbackAnswer] = []
        self.last_query_id: str | None = None

    def user_json(self) -> JSONDict:
        d: JSONDict = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            d["last_name"] = self.last_name
        if self.username:
            d["username"] = self.username
        if self.language_code:
            d["language_code"] = self.language_code
        return d

    def chat_json(self) -> JSONDict:
        d: JSONDict = {"id": self.user_id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            d["last_name"] = self.last_name
        if self.username:
            d["username"] = self.username
        return d

    async def _post(self, content: JSONDict, reply_to: int | None = None) -> JSONDict:
        msg = self.tg._new_user_message(self, self, content, reply_to)
        return await self.tg.push_update({"message": msg})

    async def send(self, text: str, *, reply_to: int | None = None) -> JSONDict:
        """Send a text message; ``/commands`` get a bot_command entity like Telegram adds."""
        return await self._post(_text_content(text), reply_to)

    async def share_location(self, latitude: float, longitude: float) -> JSONDict:
        return await self._post({"location": {"latitude": latitude, "longitude": longitude}})

    async def send_sticker(self, emoji: str = "👍") -> JSONDict:
        media = self.tg._register_file("sticker", "sticker.webp", "image/webp", b"RIFF")
        sticker = {
            "file_id": media.file_id,
            "file_unique_id": media.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return await self._post({"sticker": sticker})

    async def send_voice(self, duration: int = 4, data: bytes = b"OggS fake voice") -> JSONDict:
        """Send a voice message (an OGG/Opus recording, as Telegram's microphone button makes)."""
        media = self.tg._register_file("voice", "voice.ogg", "audio/ogg", data)
        voice = {
            "file_id": media.file_id,
            "file_unique_id": media.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(data),
        }
        return await self._post({"voice": voice})

    async def send_document(
        self,
        data: bytes = b"%PDF-1.4 fake",
        filename: str = "report.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
    ) -> JSONDict:
        """Upload a document; the bot can getFile + download these bytes."""
        media = self.tg._register_file("document", filename, mime_type, data)
        content: JSONDict = {"document": self.tg._media_json(media)}
        if caption:
            content["caption"] = caption
        return await self._post(content)

    async def send_photo(
        self, data: bytes = b"\xff\xd8fake-jpeg", caption: str | None = None, *, reply_to: int | None = None
    ) -> JSONDict:
        """Send a photo (as Telegram does: several sizes, the largest last); the bot can getFile + download it."""
        media = self.tg._register_file("photo", "photo.jpg", "image/jpeg", data)
        content: JSONDict = {"photo": self.tg._media_json(media)}
        if caption:
            content["caption"] = caption
        return await self._post(content, reply_to)

    async def send_contact(
        self, phone_number: str = "+10000000000", first_name: str | None = None, *, own: bool = True
    ) -> JSONDict:
        """Share a contact; ``own=True`` is the "share my phone number" button (user_id set)."""
        contact: JSONDict = {
            "phone_number": phone_number,
            "first_name": first_name or self.first_name,
        }
        if own:
            contact["user_id"] = self.user_id
        return await self._post({"contact": contact})

    async def edit(self, message_id: int, text: str) -> JSONDict:
        """Edit one of this user's earlier messages (an ``edited_message`` update)."""
        original = self.tg._user_messages.get((self.chat_id, message_id))
        if original is None:
            raise AssertionError(f"user {self.user_id} has no message #{message_id} to edit")
        # A new dict: the original may still sit unfetched in the update queue.
        edited = {k: v for k, v in original.items() if k not in ("text", "entities")}
        edited.update(_text_content(text), edit_date=self.tg._now())
        self.tg._user_messages[(self.chat_id, message_id)] = edited
        return await self.tg.push_update({"edited_message": edited})

    async def press(self, label_or_data: str, message: SentMessage | int | None = None) -> JSONDict:
        """Press an inline button (matched by label, else by callback_data) on ``message``
        or on the newest bot message in this chat that has such a button. A reply-keyboard
        button is "pressed" by sending its label, as the Telegram client does."""
        candidates = self._candidates(message)
        for msg in candidates:
            rows = (msg.reply_markup or {}).get("inline_keyboard") or []
            flat = [b for row in rows for b in row]
            hit = next((b for b in flat if b.get("text") == label_or_data), None) or next(
                (b for b in flat if b.get("callback_data") == label_or_data), None
            )
            if hit is not None:
                if "callback_data" not in hit:
                    raise AssertionError(f"button {label_or_data!r} is not a callback button: {hit}")
                return await self._callback(hit["callback_data"], msg)
        if message is None:
            keyboard = self._reply_keyboard()
            if keyboard is not None and label_or_data in keyboard.button_labels:
                return await self.send(label_or_data)
        available = [f"#{m.message_id}: {m.buttons}" for m in candidates if m.buttons]
        # The chat's last messages, with or without buttons: a failure should say what the bot sent instead.
        recent = [f"  #{m.message_id} {m.method} {m.text!r}" for m in self.messages[-5:]]
        raise AssertionError(
            f"no button {label_or_data!r} in chat {self.chat_id}; available: "
            + ("; ".join(available) or "none")
            + "\nLast bot messages:\n"
            + ("\n".join(recent) or "  (none)")
        )

    async def press_data(self, data: str, message_id: int | None = None) -> JSONDict:
        """Send a callback query with arbitrary (possibly forged) ``data`` for a message."""
        if message_id is None:
            msg = self.last
        else:
            found = self.tg._bot_messages.get((self.chat_id, message_id))
            if found is None:
                raise AssertionError(f"no bot message #{message_id} in chat {self.chat_id}")
            msg = found
        return await self._callback(data, msg)

    async def wait_for_answer(self, timeout: float = 5.0) -> CallbackAnswer:  # noqa: ASYNC109 - the API the tests read
        """Wait for the bot to answer this user's latest callback query."""
        qid = self.last_query_id
        if qid is None:
            raise AssertionError("the user has not pressed anything")
        await self.tg.wait_until(
            lambda: any(a.query_id == qid for a in self.callback_answers),
            timeout=timeout,
            what=f"answerCallbackQuery for query {qid}",
        )
        return next(a for a in self.callback_answers if a.query_id == qid)

    def _candidates(self, message: SentMessage | int | None) -> list[SentMessage]:
        if message is None:
            return [m for m in reversed(self.messages) if not m.deleted]
        mid = message if isinstance(message, int) else message.message_id
        found = self.tg._bot_messages.get((self.chat_id, mid))
        return [found] if found is not None else []

    def _reply_keyboard(self) -> SentMessage | None:
        # The client shows the last reply keyboard until a ReplyKeyboardRemove arrives.
        for m in reversed(self.messages):
            markup = m.reply_markup or {}
            if "keyboard" in markup:
                return m
            if markup.get("remove_keyboard"):
                return None
        return None

    async def _callback(self, data: str, msg: SentMessage) -> JSONDict:
        qid = self.tg._new_query(self)
        self.last_query_id = qid
        query: JSONDict = {
            "id": qid,
            "from": self.user_json(),
            "message": self.tg._message_json(msg),
            "chat_instance": str(abs(hash((self.tg.bot_id, self.chat_id)))),
            "data": data,
        }
        return await self.tg.push_update({"callback_query": query})


class FakeGroup(_ChatView):
    """A group, supergroup or channel (negative chat id)."""

    def __init__(self, tg: FakeTelegram, chat_id: int, title: str, chat_type: str) -> None:
        super().__init__(tg, chat_id)
        self.title, self.chat_type = title, chat_type

    def chat_json(self) -> JSONDict:
        return {"id": self.chat_id, "type": self.chat_type, "title": self.title}

    async def send(self, from_user_id: int, text: str, *, reply_to: int | None = None) -> JSONDict:
        """Member ``from_user_id`` posts ``text`` (write ``/cmd@rehab_test_bot`` to address
        the bot explicitly, as Telegram clients do in groups)."""
        user = self.tg.user(from_user_id)
        msg = self.tg._new_user_message(self, user, _text_content(text), reply_to)
        return await self.tg.push_update({"message": msg})


def _text_content(text: str) -> JSONDict:
    content: JSONDict = {"text": text}
    if text.startswith("/") and len(text) > 1:
        # Telegram marks the leading command (incl. an @botname suffix) as a bot_command
        # entity; PTB's CommandHandler only matches messages that have it at offset 0.
        command = text.split(maxsplit=1)[0]
        content["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
    return content


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------
class FakeTelegram:
    """The fake Bot API. Use ``async with FakeTelegram() as tg`` or ``start()``/``stop()``."""

    BOT_FIRST_NAME = "Rehab Bot"
    BOT_USERNAME = "rehab_test_bot"

    def __init__(
        self,
        token: str = "123456:TEST-token_abc",  # noqa: S107 - the fake server's own token, no secret
        *,
        clock: Callable[[], float | datetime] = time.time,
        host: str = "127.0.0.1",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        # Request arrival times, flood limits and retry_after windows are measured on this clock;
        # the end-to-end tests pass the bot's pacer clock (a ScaledTime's). A callback query's age
        # (callback_query_ttl) stays real time: it measures how fast a handler answers, not pacing.
        self.monotonic = monotonic
        digits = re.match(r"\d+", token)
        self.bot_id = int(digits.group()) if digits else 1
        self.clock = clock  # unix time (or an aware datetime) for message dates
        self.host = host
        self.port = 0
        self.strict_chats = False
        self.blocked_users: set[int] = set()
        self.deactivated_users: set[int] = set()
        self.migrated_chats: dict[int, int] = {}  # a group upgraded to a supergroup: old id -> new id
        self.callback_query_ttl: float | None = None  # Telegram: ~15 s; off by default
        self.max_upload_bytes = MAX_UPLOAD  # the files of one request together; tests may lower it
        self.requests: list[RecordedRequest] = []
        self.commands: dict[CommandScopeKey, list[BotCommandEntry]] = {}
        self.menu_buttons: dict[int | None, JSONDict] = {}
        self.webhook: JSONDict | None = None
        self.limit_violations = 0
        self.retry_after_breaches = 0
        self.breach_log: list[tuple[str, int | None, float]] = []  # method, chat, early by (s)
        self.rules: list[FaultRule] = []
        self._random: list[_RandomFaults] = []
        self._global_rate: float | None = None
        self._chat_rate: float | None = None
        self._global_bucket: _TokenBucket | None = None
        self._chat_buckets: dict[int, _TokenBucket] = {}
        self._retry_windows: dict[tuple[Any, ...], float] = {}
        self._views: dict[int, _ChatView] = {}
        self._bot_messages: dict[tuple[int, int], SentMessage] = {}
        self._user_messages: dict[tuple[int, int], JSONDict] = {}
        self._next_message_id: dict[int, int] = {}
        self._files: dict[str, MediaInfo] = {}
        self._file_paths: dict[str, MediaInfo] = {}
        self._queries: dict[str, tuple[FakeUser, float, bool]] = {}  # user, created, answered
        self._updates: list[JSONDict] = []
        self._next_update_id = 1
        self._fetched_upto = 0
        self._counter = 0
        self._closing = False
        self._inflight: dict[asyncio.Task[Any], str] = {}  # handler task -> method
        self._runner: web.AppRunner | None = None
        self._activity = asyncio.Condition()
        self._updates_cond = asyncio.Condition()
        names = (
            "getMe getUpdates deleteWebhook setWebhook getWebhookInfo logOut close "
            "sendMessage editMessageText editMessageReplyMarkup editMessageCaption "
            "answerCallbackQuery deleteMessage sendPhoto sendDocument sendAnimation "
            "sendVideo sendChatAction setMyCommands getMyCommands deleteMyCommands "
            "setChatMenuButton getChatMenuButton getFile getChat setMyDescription "
            "setMyShortDescription setMyName"
        ).split()
        # Telegram matches method names case-insensitively; we record the canonical name.
        self._canonical = {name.lower(): name for name in names}
        self._methods: dict[str, Callable[[RecordedRequest], Any]] = {
            name.lower(): getattr(self, f"_m_{name}") for name in names
        }

    # ---- lifecycle ----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """What ``ApplicationBuilder.base_url`` expects; PTB appends the token."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self.host}:{self.port}/file/bot"

    async def start(self) -> None:
        self._closing = False
        self._activity = asyncio.Condition()
        self._updates_cond = asyncio.Condition()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # handler_cancellation: when PTB gives up (read timeout, updater.stop()) the handler
        # is cancelled, like Telegram forgetting an abandoned long poll.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = int(self._runner.addresses[0][1])  # port 0: the OS picked a free one

    async def stop(self) -> None:
        """Wake long polls, cancel stalled handlers (slow/timeout faults), close the port."""
        self._closing = True
        async with self._updates_cond:
            self._updates_cond.notify_all()
        # Let woken long polls answer [] (a clean "no updates") before tearing down.
        # aiohttp runs each request in its own task, so we can wait on exactly those.
        polls = [t for t, method in self._inflight.items() if method == "getUpdates"]
        if polls:
            await asyncio.wait(polls, timeout=0.5)
        for task in list(self._inflight):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- chats and updates ----------------------------------------------------------------
    @property
    def bot_user(self) -> JSONDict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.BOT_FIRST_NAME,
            "username": self.BOT_USERNAME,
        }

    def user(
        self,
        user_id: int,
        first_name: str = "Anna",
        language_code: str | None = "en",
        *,
        last_name: str | None = None,
        username: str | None = None,
    ) -> FakeUser:
        """The user ``user_id`` (created on first use; later calls return the same object)."""
        view = self._views.get(user_id)
        if isinstance(view, FakeUser):
            return view
        if user_id <= 0:
            raise ValueError("user ids are positive")
        created = FakeUser(self, user_id, first_name, language_code, last_name, username)
        self._views[user_id] = created
        return created

    def group(self, chat_id: int, title: str = "Test group", *, supergroup: bool = False) -> FakeGroup:
        """A group chat (negative id) the bot is a member of."""
        return self._chat(chat_id, title, "supergroup" if supergroup else "group")

    def channel(self, chat_id: int, title: str = "Test channel") -> FakeGroup:
        return self._chat(chat_id, title, "channel")

    def _chat(self, chat_id: int, title: str, chat_type: str) -> FakeGroup:
        view = self._views.get(chat_id)
        if isinstance(view, FakeGroup):
            return view
        if chat_id >= 0:
            raise ValueError("group/channel ids are negative")
        created = FakeGroup(self, chat_id, title, chat_type)
        self._views[chat_id] = created
        return created

    def migrate_group(self, chat_id: int, new_chat_id: int) -> FakeGroup:
        """Upgrade group ``chat_id`` to a supergroup, as Telegram does (when it grows or an admin
        changes certain settings): it gets the new id ``new_chat_id``, and every later call to the old id
        is refused with 400 and ``parameters.migrate_to_chat_id`` (PTB ``ChatMigrated``)."""
        old = self._views.get(chat_id)
        title = old.title if isinstance(old, FakeGroup) else "Test group"
        self.migrated_chats[chat_id] = new_chat_id
        return self._chat(new_chat_id, title, "supergroup")

    async def announce_migration(self, chat_id: int, by_user_id: int) -> None:
        """The two service messages Telegram sends to the bot when a group it is in was upgraded
        (:meth:`migrate_group` first): one in the old group with ``migrate_to_chat_id``, one in the new
        supergroup with ``migrate_from_chat_id``, both from the member whose action upgraded it."""
        new_chat_id = self.migrated_chats[chat_id]
        old, new = self._chat(chat_id, "Test group", "group"), self._chat(new_chat_id, "", "supergroup")
        member = self.user(by_user_id).user_json()
        for view, key, value in ((old, "migrate_to_chat_id", new_chat_id), (new, "migrate_from_chat_id", chat_id)):
            msg: JSONDict = {
                "message_id": self._new_message_id(view.chat_id),
                "from": member,
                "chat": view.chat_json(),
                "date": self._now(),
                key: value,
            }
            await self.push_update({"message": msg})

    async def channel_post(self, chat_id: int, text: str) -> JSONDict:
        chan = self.channel(chat_id)
        msg: JSONDict = {
            "message_id": self._new_message_id(chat_id),
            "sender_chat": chan.chat_json(),
            "chat": chan.chat_json(),
            "date": self._now(),
            **_text_content(text),
        }
        return await self.push_update({"channel_post": msg})

    async def push_update(self, update: JSONDict) -> JSONDict:
        """Queue any update dict for getUpdates; ``update_id`` is assigned if missing."""
        update = dict(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, int(update["update_id"])) + 1
        async with self._updates_cond:
            self._updates.append(update)
            self._updates_cond.notify_all()
        return update

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed by the bot (via a higher getUpdates offset)."""
        return list(self._updates)

    async def wait_fetched(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - the API the tests read
        """Wait until every queued update was handed to the bot at least once."""
        target = self._next_update_id - 1
        await self.wait_until(
            lambda: self._fetched_upto >= target,
            timeout=timeout,
            what=f"getUpdates to fetch update {target}",
        )

    async def wait_until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the API the tests read
        what: str = "condition",
    ) -> None:
        """Re-check ``condition`` after every API request until true, or AssertionError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._activity:
            while not condition():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._activity.wait()

    # ---- inspection -------------------------------------------------------------------------
    def calls(self, method: str) -> list[RecordedRequest]:
        """Recorded requests for ``method`` (case-insensitive)."""
        return [r for r in self.requests if r.method.lower() == method.lower()]

    def commands_for(
        self,
        scope_type: str = "default",
        chat_id: int | None = None,
        language_code: str = "",
        user_id: int | None = None,
    ) -> list[BotCommandEntry]:
        return self.commands.get(CommandScopeKey(scope_type, chat_id, user_id, language_code), [])

    def message(self, chat_id: int, message_id: int) -> SentMessage:
        return self._bot_messages[(chat_id, message_id)]

    def file(self, file_id: str) -> MediaInfo:
        return self._files[file_id]

    # ---- faults and limits -----------------------------------------------------------------
    def inject(self, method: str, *, chat_id: int | None = None, error: Fault, times: int | None = 1) -> FaultRule:
        """Make the next ``times`` calls of ``method`` ("*" = any) to ``chat_id`` (None = any)
        suffer ``error``. Rules are checked in order of injection."""
        rule = FaultRule(method.lower(), chat_id, error, times)
        self.rules.append(rule)
        return rule

    def fail_randomly(
        self,
        methods: str | Iterable[str],
        rate: float,
        errors: Sequence[Fault] | None = None,
        seed: int | None = 0,
    ) -> None:
        """Fail a ``rate`` fraction of calls to ``methods`` with a random one of ``errors``
        (default: 429 retry 1 s, 500, 502, connection reset). Seeded for reproducible soaks."""
        names = [methods] if isinstance(methods, str) else list(methods)
        self._random.append(
            _RandomFaults(
                frozenset(m.lower() for m in names),
                rate,
                list(errors) if errors else [retry_after(1), server_error(500), server_error(502), reset()],
                random.Random(seed),  # noqa: S311 - reproducible fault injection, not cryptography
            )
        )

    def clear_faults(self) -> None:
        self.rules.clear()
        self._random.clear()

    def enforce_limits(self, global_per_second: float | None = 30, per_chat_per_second: float | None = 1) -> None:
        """Enforce Telegram's flood limits on send*/edit*/copy* calls that carry a chat_id
        (None disables a limit). Over the limit: 429 with retry_after = ceil(wait) >= 1.
        Measured on the server's ``monotonic`` clock, as the bot's pacer must be to pass."""
        self._global_rate, self._chat_rate = global_per_second, per_chat_per_second
        self._global_bucket = None
        self._chat_buckets.clear()

    # ---- HTTP ---------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["method"]
        rec = RecordedRequest(self._canonical.get(name.lower(), name), {}, None, self.monotonic())
        task = asyncio.current_task()
        if task is not None:
            self._inflight[task] = rec.method
        self.requests.append(rec)
        status, body = 500, {}
        try:
            if request.match_info["token"] != self.token:
                raise _ApiError(401, UNAUTHORIZED)
            rec.params, rec.files = await _read_params(request)
            chat = rec.params.get("chat_id")
            rec.chat_id = chat if isinstance(chat, int) else None
            if sum(f.size for f in rec.files.values()) > self.max_upload_bytes:
                raise _ApiError(413, TOO_LARGE)
            if name.lower() not in self._methods:
                raise _ApiError(404, NOT_FOUND)
            result = await self._process(rec, request)
            status, body = 200, {"ok": True, "result": result}
        except _ApiError as err:
            status = err.status
            body = {"ok": False, "error_code": err.status, "description": err.description}
            if err.retry_after is not None:
                body["parameters"] = {"retry_after": err.retry_after}
            if err.migrate_to_chat_id is not None:
                body["parameters"] = {"migrate_to_chat_id": err.migrate_to_chat_id}
            rec.description = err.description
        except _Aborted:
            rec.description = "connection reset"
            return web.Response(status=500)  # never delivered: the transport is gone
        except asyncio.CancelledError:
            rec.description = "abandoned by client"
            raise
        except Exception as exc:  # a bug in the rig: make it loud on the client side too
            rec.description = f"rig error: {exc!r}"
            status = 500
            body = {"ok": False, "error_code": 500, "description": rec.description}
        finally:
            if task is not None:
                self._inflight.pop(task, None)
            await self._notify()
        rec.response_status = status
        return web.json_response(body, status=status)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        media = self._file_paths.get(request.match_info["path"])
        if request.match_info["token"] != self.token or media is None or media.data is None:
            return web.json_response({"ok": False, "error_code": 404, "description": NOT_FOUND}, status=404)
        return web.Response(body=media.data, content_type=media.mime_type or "application/octet-stream")

    async def _notify(self) -> None:
        async with self._activity:
            self._activity.notify_all()

    async def _process(self, rec: RecordedRequest, request: web.Request) -> Any:
        method, chat_id = rec.method, rec.chat_id
        now = self.monotonic()
        self._check_breach(method, chat_id, now)
        fault = self._pick_fault(method, chat_id)
        rec.fault = fault
        handler = self._methods[method.lower()]
        if fault is not None:
            if fault.kind == "error":
                if fault.retry_after is not None:
                    scope = ("chat", chat_id) if chat_id is not None else ("method", method)
                    self._retry_windows[scope] = now + fault.retry_after
                raise _ApiError(fault.status, fault.description, fault.retry_after)
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "reset":
                if fault.applied:
                    await self._checked_call(handler, rec, now)
                if request.transport is not None:
                    request.transport.abort()
                raise _Aborted
            elif fault.kind == "timeout":
                if fault.applied:
                    await self._checked_call(handler, rec, now)
                await asyncio.sleep(fault.delay)
                if fault.applied:
                    raise _Aborted
        return await self._checked_call(handler, rec, now)

    async def _checked_call(self, handler: Callable[[RecordedRequest], Any], rec: RecordedRequest, now: float) -> Any:
        chat_id = rec.chat_id
        if chat_id is not None:
            if chat_id in self.blocked_users:
                raise _ApiError(403, BLOCKED)
            if chat_id in self.deactivated_users:
                raise _ApiError(403, DEACTIVATED)
            if chat_id in self.migrated_chats:
                raise _ApiError(400, MIGRATED, migrate_to=self.migrated_chats[chat_id])
            if chat_id not in self._views:
                if self.strict_chats or chat_id < 0:
                    raise _ApiError(400, CHAT_NOT_FOUND)
                self.user(chat_id, first_name=f"User{chat_id}", language_code=None)
            if _is_limited(rec.method):
                self._rate_limit(chat_id, now)
        result = handler(rec)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    def _pick_fault(self, method: str, chat_id: int | None) -> Fault | None:
        for rule in self.rules:
            if rule.matches(method, chat_id):
                rule.hits += 1
                return rule.fault
        for rnd in self._random:
            if ("*" in rnd.methods or method.lower() in rnd.methods) and (rnd.rng.random() < rnd.rate):
                return rnd.rng.choice(list(rnd.errors))
        return None

    def _check_breach(self, method: str, chat_id: int | None, now: float) -> None:
        """Count requests that ignored a retry_after we gave to their scope."""
        scopes: list[tuple[Any, ...]] = [("method", method)]
        if chat_id is not None:
            scopes.append(("chat", chat_id))
            if _is_limited(method):
                scopes.append(("global",))
        for scope in scopes:
            until = self._retry_windows.get(scope)
            if until is not None and now < until:
                self.retry_after_breaches += 1
                self.breach_log.append((method, chat_id, until - now))
                return

    def _rate_limit(self, chat_id: int, now: float) -> None:
        buckets: list[tuple[tuple[Any, ...], _TokenBucket]] = []
        if self._chat_rate:
            bucket = self._chat_buckets.get(chat_id)
            if bucket is None:
                cap = max(1.0, self._chat_rate)
                bucket = self._chat_buckets[chat_id] = _TokenBucket(self._chat_rate, cap, now)
            buckets.append((("chat", chat_id), bucket))
        if self._global_rate:
            if self._global_bucket is None:
                self._global_bucket = _TokenBucket(self._global_rate, self._global_rate, now)
            buckets.append((("global",), self._global_bucket))
        waits = [(bucket.wait(now), scope) for scope, bucket in buckets]
        worst, scope = max(waits, default=(0.0, ("global",)))
        if worst > 0:
            self.limit_violations += 1
            seconds = max(1, math.ceil(worst))
            self._retry_windows[scope] = now + seconds
            raise _ApiError(429, f"Too Many Requests: retry after {seconds}", seconds)
        for _, bucket in buckets:
            bucket.take()

    # ---- helpers for messages and files ---------------------------------------------------
    def _now(self) -> int:
        value = self.clock()
        return int(value.timestamp() if isinstance(value, datetime) else value)

    def _new_message_id(self, chat_id: int) -> int:
        # One sequence per chat shared by both sides, as in a real private chat.
        n = self._next_message_id.get(chat_id, 0) + 1
        self._next_message_id[chat_id] = n
        return n

    def _new_user_message(self, view: _ChatView, user: FakeUser, content: JSONDict, reply_to: int | None) -> JSONDict:
        msg: JSONDict = {
            "message_id": self._new_message_id(view.chat_id),
            "from": user.user_json(),
            "chat": view.chat_json(),
            "date": self._now(),
            **content,
        }
        if reply_to is not None:
            replied = self._reply_json(view.chat_id, reply_to)
            if replied is not None:
                msg["reply_to_message"] = replied
        self._user_messages[(view.chat_id, msg["message_id"])] = msg
        return msg

    def _reply_json(self, chat_id: int, message_id: int) -> JSONDict | None:
        bot_msg = self._bot_messages.get((chat_id, message_id))
        if bot_msg is not None:
            return self._message_json(bot_msg, nested=True)
        user_msg = self._user_messages.get((chat_id, message_id))
        return {k: v for k, v in user_msg.items() if k != "reply_to_message"} if user_msg else None

    def _new_query(self, user: FakeUser) -> str:
        self._counter += 1
        qid = str(4_200_000_000_000_000_000 + self._counter)
        self._queries[qid] = (user, time.monotonic(), False)
        return qid

    def _register_file(
        self,
        kind: str,
        filename: str | None,
        mime: str | None,
        data: bytes | None,
        file_id: str | None = None,
    ) -> MediaInfo:
        self._counter += 1
        n = self._counter
        media = MediaInfo(
            kind,
            file_id or f"fake-{kind}-{n}",
            f"uniq{n}",
            filename,
            mime,
            data,
            file_path=f"{kind}s/file_{n}",
        )
        self._files[media.file_id] = media
        self._file_paths[media.file_path] = media
        return media

    def _media_json(self, media: MediaInfo) -> Any:
        base: JSONDict = {
            "file_id": media.file_id,
            "file_unique_id": media.file_unique_id,
            "file_size": media.size,
        }
        if media.kind == "photo":
            # Telegram returns several sizes, smallest first; the largest is the original.
            thumb = {
                **base,
                "file_id": media.file_id + "-s",
                "file_unique_id": media.file_unique_id + "s",
                "width": 90,
                "height": 90,
            }
            self._files.setdefault(thumb["file_id"], media)
            return [thumb, {**base, "width": 1280, "height": 960}]
        extra: JSONDict = {"file_name": media.filename, "mime_type": media.mime_type}
        if media.kind in ("video", "animation"):
            extra.update(width=640, height=360, duration=1)
        return {**base, **{k: v for k, v in extra.items() if v is not None}}

    def _message_json(self, m: SentMessage, *, nested: bool = False) -> JSONDict:
        view = self._views[m.chat_id]
        if m.deleted and not nested:
            # What Telegram sends for a callback on a message that no longer exists.
            return {"chat": view.chat_json(), "message_id": m.message_id, "date": 0}
        d: JSONDict = {"message_id": m.message_id, "chat": view.chat_json(), "date": m.date}
        if view.chat_type == "channel":
            d["sender_chat"] = view.chat_json()
        else:
            d["from"] = self.bot_user
        if m.edit_date is not None:
            d["edit_date"] = m.edit_date
        if m.effect_id is not None:
            d["effect_id"] = m.effect_id
        if m.media is None:
            d["text"] = m.text or ""
        else:
            d[m.media.kind] = self._media_json(m.media)
            if m.media.kind == "animation":  # Telegram sends both for backward compatibility
                d["document"] = self._media_json(
                    MediaInfo(
                        "document",
                        m.media.file_id,
                        m.media.file_unique_id,
                        m.media.filename,
                        m.media.mime_type,
                        m.media.data,
                    )
                )
            if m.text:
                d["caption"] = m.text
        # Only inline keyboards are echoed back in a Message; reply keyboards are not.
        if m.reply_markup and "inline_keyboard" in m.reply_markup:
            d["reply_markup"] = m.reply_markup
        if m.reply_to_message_id is not None and not nested:
            replied = self._reply_json(m.chat_id, m.reply_to_message_id)
            if replied is not None:
                d["reply_to_message"] = replied
        return d

    def _resolve_media(self, kind: str, rec: RecordedRequest) -> MediaInfo:
        value = rec.params.get(kind)
        upload = rec.files.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = rec.files.get(value[len("attach://") :])
        if upload is not None:
            return self._register_file(kind, upload.filename, upload.content_type, upload.data)
        if isinstance(value, str) and value:
            known = self._files.get(value)
            if known is not None:  # resending by file_id reuses the stored file
                return known
            name = value.rsplit("/", 1)[-1] if value.startswith("http") else None
            return self._register_file(kind, name, None, None, file_id=value)
        raise _ApiError(400, f"Bad Request: there is no {kind} in the request")

    def _store_sent(
        self,
        rec: RecordedRequest,
        text: str | None,
        raw: str | None,
        markup: JSONDict | None,
        media: MediaInfo | None = None,
    ) -> JSONDict:
        assert rec.chat_id is not None
        rows = (markup or {}).get("inline_keyboard") or []
        if self._views[rec.chat_id].chat_type != "private" and any("web_app" in b for row in rows for b in row):
            raise _ApiError(400, BUTTON_TYPE_INVALID)  # Mini App buttons work in private chats only
        effect = rec.params.get("message_effect_id")
        if effect is not None:
            effect = str(effect)
            if effect not in MESSAGE_EFFECTS or self._views[rec.chat_id].chat_type != "private":
                raise _ApiError(400, EFFECT_ID_INVALID)
        reply_params = rec.params.get("reply_parameters")
        reply_to = rec.params.get("reply_to_message_id")
        allow_without = bool(rec.params.get("allow_sending_without_reply"))
        if isinstance(reply_params, dict):
            reply_to = reply_params.get("message_id")
            allow_without = bool(reply_params.get("allow_sending_without_reply"))
        target = self._bot_messages.get((rec.chat_id, reply_to)) if isinstance(reply_to, int) else None
        exists = (target is not None and not target.deleted) or (rec.chat_id, reply_to) in self._user_messages
        if isinstance(reply_to, int) and not exists:
            # What Telegram does when the message to reply to is not in the chat (never was, or deleted).
            if not allow_without:
                raise _ApiError(400, "Bad Request: message to be replied not found")
            reply_to = None
        msg = SentMessage(
            message_id=self._new_message_id(rec.chat_id),
            chat_id=rec.chat_id,
            method=rec.method,
            text=text,
            raw_text=raw,
            parse_mode=rec.params.get("parse_mode"),
            reply_markup=markup,
            date=self._now(),
            media=media,
            reply_to_message_id=reply_to if isinstance(reply_to, int) else None,
            params=dict(rec.params),
            effect_id=effect,
        )
        self._bot_messages[(msg.chat_id, msg.message_id)] = msg
        view = self._views[msg.chat_id]
        view.messages.append(msg)
        view._events.append(("send", msg))
        return self._message_json(msg)

    def _render(self, rec: RecordedRequest, key: str, limit: int, too_long: str) -> tuple[str | None, str | None]:
        raw = rec.params.get(key)
        if raw is None:
            return None, None
        raw = str(raw)
        text = render_text(raw, rec.params.get("parse_mode"))
        if _utf16_len(text) > limit:
            raise _ApiError(400, too_long)
        return text, raw

    def _editable(self, rec: RecordedRequest) -> SentMessage | None:
        """The target of an edit*, or None for inline-mode messages (inline_message_id)."""
        if rec.params.get("inline_message_id"):
            return None
        key = (rec.chat_id or 0, rec.params.get("message_id"))
        msg = self._bot_messages.get(key)  # type: ignore[arg-type]
        if msg is None and key in self._user_messages:
            raise _ApiError(400, CANT_EDIT)
        if msg is None or msg.deleted:
            raise _ApiError(400, EDIT_NOT_FOUND)
        return msg

    def _apply_edit(
        self,
        msg: SentMessage,
        text: str | None,
        raw: str | None,
        markup: JSONDict | None,
        rec: RecordedRequest,
    ) -> JSONDict:
        msg.history.append(msg.text)
        msg.text, msg.raw_text, msg.reply_markup = text, raw, markup
        if "parse_mode" in rec.params or raw is not None:
            msg.parse_mode = rec.params.get("parse_mode")
        msg.edited, msg.edit_date = True, self._now()
        self._views[msg.chat_id]._events.append(("edit", msg))
        return self._message_json(msg)

    # ---- Bot API methods (named _m_<method>) --------------------------------------------
    def _m_getMe(self, rec: RecordedRequest) -> JSONDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_getUpdates(self, rec: RecordedRequest) -> list[JSONDict]:
        if self.webhook is not None:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is "
                "active; use deleteWebhook to delete the webhook first",
            )
        p = rec.params
        offset, limit = p.get("offset"), p.get("limit") or 100
        wait = float(p.get("timeout") or 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        async with self._updates_cond:
            while True:
                if isinstance(offset, int) and offset < 0:
                    # Negative offset: keep only the last -offset updates.
                    del self._updates[:offset]
                elif isinstance(offset, int):
                    # An offset confirms (and forgets) every update with a smaller id.
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                batch = self._updates[: int(limit)]
                remaining = deadline - loop.time()
                if batch or remaining <= 0 or self._closing:
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._updates_cond.wait()
        if batch:
            self._fetched_upto = max(self._fetched_upto, batch[-1]["update_id"])
        return batch

    def _m_deleteWebhook(self, rec: RecordedRequest) -> bool:
        self.webhook = None
        if rec.params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_setWebhook(self, rec: RecordedRequest) -> bool:
        self.webhook = dict(rec.params)
        if rec.params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_getWebhookInfo(self, rec: RecordedRequest) -> JSONDict:
        url = (self.webhook or {}).get("url", "")
        return {
            "url": url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    def _m_logOut(self, rec: RecordedRequest) -> bool:
        return True

    def _m_close(self, rec: RecordedRequest) -> bool:
        return True

    _m_setMyDescription = _m_setMyShortDescription = _m_setMyName = _m_logOut

    def _m_sendMessage(self, rec: RecordedRequest) -> JSONDict:
        text, raw = self._render(rec, "text", MAX_TEXT, TEXT_TOO_LONG)
        if not text or not text.strip():  # Telegram trims before checking
            raise _ApiError(400, TEXT_EMPTY)
        return self._store_sent(rec, text, raw, _check_markup(rec.params.get("reply_markup")))

    def _send_media(self, rec: RecordedRequest, kind: str) -> JSONDict:
        markup = _check_markup(rec.params.get("reply_markup"))
        caption, raw = self._render(rec, "caption", MAX_CAPTION, CAPTION_TOO_LONG)
        media = self._resolve_media(kind, rec)
        return self._store_sent(rec, caption, raw, markup, media)

    def _m_sendPhoto(self, rec: RecordedRequest) -> JSONDict:
        return self._send_media(rec, "photo")

    def _m_sendDocument(self, rec: RecordedRequest) -> JSONDict:
        return self._send_media(rec, "document")

    def _m_sendAnimation(self, rec: RecordedRequest) -> JSONDict:
        return self._send_media(rec, "animation")

    def _m_sendVideo(self, rec: RecordedRequest) -> JSONDict:
        return self._send_media(rec, "video")

    def _m_editMessageText(self, rec: RecordedRequest) -> JSONDict | bool:
        text, raw = self._render(rec, "text", MAX_TEXT, TEXT_TOO_LONG)
        if not text or not text.strip():
            raise _ApiError(400, TEXT_EMPTY)
        # Quirk: an edit without reply_markup *removes* the inline keyboard.
        markup = _check_markup(rec.params.get("reply_markup"))
        msg = self._editable(rec)
        if msg is None:
            return True
        if msg.media is not None:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        if (raw, rec.params.get("parse_mode"), markup) == (
            msg.raw_text,
            msg.parse_mode,
            msg.reply_markup,
        ):
            raise _ApiError(400, NOT_MODIFIED)
        return self._apply_edit(msg, text, raw, markup, rec)

    def _m_editMessageCaption(self, rec: RecordedRequest) -> JSONDict | bool:
        caption, raw = self._render(rec, "caption", MAX_CAPTION, CAPTION_TOO_LONG)
        markup = _check_markup(rec.params.get("reply_markup"))
        msg = self._editable(rec)
        if msg is None:
            return True
        if msg.media is None:
            raise _ApiError(400, "Bad Request: there is no caption in the message to edit")
        if (raw, markup) == (msg.raw_text, msg.reply_markup):
            raise _ApiError(400, NOT_MODIFIED)
        return self._apply_edit(msg, caption, raw, markup, rec)

    def _m_editMessageReplyMarkup(self, rec: RecordedRequest) -> JSONDict | bool:
        markup = _check_markup(rec.params.get("reply_markup"))
        msg = self._editable(rec)
        if msg is None:
            return True
        if markup == msg.reply_markup:
            raise _ApiError(400, NOT_MODIFIED)
        return self._apply_edit(msg, msg.text, msg.raw_text, markup, rec)

    def _m_deleteMessage(self, rec: RecordedRequest) -> bool:
        key = (rec.chat_id or 0, rec.params.get("message_id"))
        msg = self._bot_messages.get(key)  # type: ignore[arg-type]
        if msg is None:
            if self._user_messages.pop(key, None) is not None:  # type: ignore[arg-type]
                return True
            raise _ApiError(400, DELETE_NOT_FOUND)
        if msg.deleted:
            raise _ApiError(400, DELETE_NOT_FOUND)
        msg.deleted = True
        return True

    def _m_answerCallbackQuery(self, rec: RecordedRequest) -> bool:
        qid = str(rec.params.get("callback_query_id", ""))
        entry = self._queries.get(qid)
        if entry is None or entry[2]:  # unknown, or answered already
            raise _ApiError(400, QUERY_TOO_OLD)
        user, created, _ = entry
        if self.callback_query_ttl is not None and time.monotonic() - created > (self.callback_query_ttl):
            raise _ApiError(400, QUERY_TOO_OLD)
        p = rec.params
        if p.get("text") is not None and _utf16_len(str(p["text"])) > MAX_ANSWER:
            raise _ApiError(400, ANSWER_TOO_LONG)
        self._queries[qid] = (user, created, True)
        user.callback_answers.append(
            CallbackAnswer(
                qid,
                p.get("text"),
                bool(p.get("show_alert", False)),
                p.get("url"),
                p.get("cache_time"),
            )
        )
        return True

    def _m_sendChatAction(self, rec: RecordedRequest) -> bool:
        return True

    def _scope_key(self, rec: RecordedRequest) -> CommandScopeKey:
        scope = rec.params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise _ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        return CommandScopeKey(
            scope["type"],
            scope.get("chat_id"),
            scope.get("user_id"),
            str(rec.params.get("language_code") or ""),
        )

    def _m_setMyCommands(self, rec: RecordedRequest) -> bool:
        raw = rec.params.get("commands")
        if not isinstance(raw, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        entries = []
        for c in raw:
            command = str(c.get("command", "")) if isinstance(c, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            entries.append(BotCommandEntry(command, str(c.get("description", ""))))
        key = self._scope_key(rec)
        if entries:
            self.commands[key] = entries
        else:  # Telegram treats an empty list as delete
            self.commands.pop(key, None)
        return True

    def _m_getMyCommands(self, rec: RecordedRequest) -> list[JSONDict]:
        return [c._asdict() for c in self.commands.get(self._scope_key(rec), [])]

    def _m_deleteMyCommands(self, rec: RecordedRequest) -> bool:
        self.commands.pop(self._scope_key(rec), None)
        return True

    def _m_setChatMenuButton(self, rec: RecordedRequest) -> bool:
        button = rec.params.get("menu_button") or {"type": "default"}
        self.menu_buttons[rec.chat_id] = button if isinstance(button, dict) else {}
        return True

    def _m_getChatMenuButton(self, rec: RecordedRequest) -> JSONDict:
        return self.menu_buttons.get(rec.chat_id, {"type": "commands"})

    def _m_getFile(self, rec: RecordedRequest) -> JSONDict:
        media = self._files.get(str(rec.params.get("file_id", "")))
        if media is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": media.file_id,
            "file_unique_id": media.file_unique_id,
            "file_size": media.size,
            "file_path": media.file_path,
        }

    def _m_getChat(self, rec: RecordedRequest) -> JSONDict:
        if rec.chat_id is None:  # @username lookups are not modelled
            raise _ApiError(400, CHAT_NOT_FOUND)
        return {
            **self._views[rec.chat_id].chat_json(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
            },
        }
