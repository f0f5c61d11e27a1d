"""The demo's page: a patient's and a therapist's Telegram chats side by side, at http://127.0.0.1:<port>/.

A thin front end over rehab_bot/demo/runner.Demo: it draws what the fake Bot API holds for the two
chats (bubbles, button rows, photos, the "edited" marker, a button's toast) and turns what the
visitor does into what a Telegram client would send: a text message, a callback query for a
button that is on that message now, the label of a reply-keyboard button, ``/start <code>`` for
the invitation link. aiohttp.web + aiohttp-jinja2 (autoescape on) + htmx (vendored under
rehab_bot/web/static/vendor/); the chats refresh by htmx polling, answered with 204 when nothing
changed.

Input is not trusted: a press names a message and a button position, and only a callback
button that is on that message now is pressed; every POST must carry the page's random token in
a header (a cross-site form cannot set it), and every request must name a loopback Host (a
rebound DNS name gets nothing).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from babel.dates import format_date, format_datetime

from rehab_bot.demo.runner import Demo
from rehab_bot.demo.telegram_server import FakeUser, SentMessage
from rehab_bot.i18n import SUPPORTED_LANGUAGES, t
from rehab_bot.schedule import zone

HERE = Path(__file__).parent
VENDOR = HERE.parent / "web" / "static" / "vendor"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
MAX_TEXT = 4096
TOAST_SECONDS = 4.0


def labels(lang: str) -> dict[str, str]:
    """Every text of the page in the visitor's language."""
    return {
        "title": t(lang, "rehab-bot demo"),
        "intro": t(
            lang,
            "The real bot with a made-up clinic, on this computer only. Type and tap as the patient "
            "or as the therapist; move the clock to see the reminders.",
        ),
        "patient": t(lang, "Patient {alias}"),
        "therapist": t(lang, "Therapist {name}"),
        "message": t(lang, "Message"),
        "log": t(lang, "Messages"),
        "send": t(lang, "Send"),
        "next": t(lang, "Next reminder"),
        "day": t(lang, "+1 day"),
        "clock": t(lang, "Demo time"),
        "edited": t(lang, "edited"),
        "photo": t(lang, "Photo"),
        "start": t(lang, "Start"),
        "invite": t(lang, "The clinic's invitation link opens this chat:"),
        "empty": t(lang, "No messages yet."),
        "bot": t(lang, "Bot"),
        "you": t(lang, "You"),
        "keyboard": t(lang, "Reply keyboard"),
        "dashboard": t(lang, "Dashboard"),
        "admin_dashboard": t(lang, "Dashboard (admin)"),
        "working": t(lang, "Moving the clock…"),
        "skip": t(lang, "Skip to the chats"),
        "language": t(lang, "Deutsch"),
        "reply": t(lang, "Reply"),
        "replying": t(lang, "Replying to:"),
        "cancel_reply": t(lang, "Cancel the reply"),
    }


@dataclass(frozen=True)
class Bubble:
    """One message as drawn: who sent it, its text, buttons, photo, time, edited."""

    message_id: int
    mine: bool  # sent by the person the visitor plays (drawn on the right)
    text: str
    time: str
    edited: bool = False
    photo: str | None = None  # URL of the picture, when the fake server holds its bytes
    has_photo: bool = False
    file: tuple[str, str] | None = None  # (name, URL) of a file sent as a document (/mydata, an export)
    buttons: tuple[tuple[tuple[int, int, str, str | None, bool], ...], ...] = ()  # (row, col, label, url, live)
    quote: str | None = None  # the start of the message this one replies to, as Telegram shows it above


class DemoPage:
    """The aiohttp application of the page."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.token = secrets.token_urlsafe(24)
        self._answers_seen: dict[int, tuple[int, float]] = {}
        self.runner: web.AppRunner | None = None
        app = web.Application(client_max_size=64 * 1024, middlewares=[self.loopback_only])
        aiohttp_jinja2.setup(
            app, loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True, enable_async=False
        )
        app.router.add_get("/", self.index)
        app.router.add_get("/chat/{who}", self.chat)
        app.router.add_post("/chat/{who}/send", self.send)
        app.router.add_post("/chat/{who}/press", self.press)
        app.router.add_post("/clock/next", self.next_reminder)
        app.router.add_post("/clock/day", self.plus_day)
        app.router.add_get("/clock", self.clock)
        app.router.add_get("/media/{file_id}", self.media)
        app.router.add_get("/dashboard", self.dashboard)
        app.router.add_static("/static/vendor/", VENDOR)
        app.router.add_static("/static/demo/", HERE / "static")
        self.app = app

    @web.middleware
    async def loopback_only(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Answer only requests addressed to this computer (a rebound DNS name gets nothing)."""
        host = (request.host or "").rsplit(":", 1)[0]
        if host not in LOOPBACK:
            raise web.HTTPForbidden(text="the demo answers only on 127.0.0.1 and localhost")
        response: web.StreamResponse = await handler(request)
        return response

    async def start(self, host: str, port: int) -> str:
        """Serve on host:port (0: a free one); return the page's URL."""
        self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        bound = int(self.runner.addresses[0][1])
        return f"http://{host}:{bound}/"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    # --- helpers ----------------------------------------------------------------------------

    def _lang(self, request: web.Request) -> str:
        lang = request.query.get("lang", self.demo.language)
        return lang if lang in SUPPORTED_LANGUAGES else "en"

    def _user(self, request: web.Request) -> FakeUser:
        who = request.match_info["who"]
        user = {"patient": self.demo.patient, "therapist": self.demo.therapist}.get(who)
        if user is None:
            raise web.HTTPNotFound()
        return user

    def _check(self, request: web.Request) -> None:
        if not secrets.compare_digest(request.headers.get("X-Demo-Token", ""), self.token):
            raise web.HTTPForbidden(text="this page only takes requests from itself")

    def _time(self, when: datetime | int, lang: str, fmt: str = "HH:mm") -> str:
        moment = datetime.fromtimestamp(when, UTC) if isinstance(when, int) else when
        return format_datetime(moment, fmt, tzinfo=zone(self.demo.timezone), locale=lang)

    def _toast(self, user: FakeUser) -> str | None:
        """The answer to the visitor's latest press, for a few seconds, as Telegram shows it over the chat."""
        count = len(user.callback_answers)
        seen = self._answers_seen.get(user.chat_id)
        if seen is None or seen[0] != count:
            seen = self._answers_seen[user.chat_id] = (count, time.monotonic())
        if not count or time.monotonic() - seen[1] > TOAST_SECONDS:
            return None
        return user.callback_answers[-1].text or None

    def _local_date(self) -> date:
        return self.demo.clock.now().astimezone(zone(self.demo.timezone)).date()

    def version(self, user: FakeUser) -> str:
        """Changes whenever something in the chat does (a send, an edit, a delete, a toast)."""
        assert self.demo.tg is not None
        deleted = sum(1 for m in user.messages if m.deleted)
        mine = sum(1 for chat, _ in self.demo.tg._user_messages if chat == user.chat_id)
        return f"{len(user._events)}.{deleted}.{mine}.{len(user.callback_answers)}"

    def bubbles(self, user: FakeUser, lang: str) -> list[Bubble]:
        """The chat as Telegram draws it: both sides, in order, deleted messages gone."""
        assert self.demo.tg is not None
        drawn: list[Bubble] = []
        for (chat, message_id), raw in self.demo.tg._user_messages.items():
            if chat != user.chat_id:
                continue
            text = raw.get("text") or raw.get("caption") or ""
            replied = raw.get("reply_to_message") or {}
            quote = self._quote(user, replied.get("message_id")) if isinstance(replied, dict) else None
            drawn.append(Bubble(message_id, True, str(text), self._time(int(raw["date"]), lang), quote=quote))
        for message in user.messages:
            if not message.deleted:
                drawn.append(self._bot_bubble(message, lang, self._quote(user, message.reply_to_message_id)))
        return sorted(drawn, key=lambda b: b.message_id)

    def _in_chat(self, user: FakeUser, message_id: Any) -> str | None:
        """The text of a message of this chat, the person's or the bot's (not deleted); "" for one without
        text; None when there is no such message."""
        assert self.demo.tg is not None
        if not isinstance(message_id, int):
            return None
        raw = self.demo.tg._user_messages.get((user.chat_id, message_id))
        if raw is not None:
            return str(raw.get("text") or raw.get("caption") or "")
        found = next((m for m in user.messages if m.message_id == message_id and not m.deleted), None)
        return (found.text or "") if found is not None else None

    def _quote(self, user: FakeUser, message_id: Any) -> str | None:
        """The first words of a message of this chat (the bot's or the person's), for a reply's quote."""
        line = " ".join((self._in_chat(user, message_id) or "").split())
        return (line[:60] + "…" if len(line) > 60 else line) or None

    def _bot_bubble(self, message: SentMessage, lang: str, quote: str | None = None) -> Bubble:
        rows = (message.reply_markup or {}).get("inline_keyboard") or []
        buttons = tuple(
            tuple(
                (r, c, str(b.get("text", "")), b.get("url"), "callback_data" in b)
                for c, b in enumerate(row)
                if isinstance(b, dict)
            )
            for r, row in enumerate(rows)
        )
        media = message.media
        photo = None
        if media is not None and media.kind == "photo" and media.data is not None:
            photo = f"/media/{media.file_id}"
        return Bubble(
            message.message_id,
            False,
            message.text or "",
            self._time(message.edit_date or message.date, lang),
            edited=message.edited,
            photo=photo,
            has_photo=media is not None and media.kind == "photo",
            file=(media.filename or media.kind, f"/media/{media.file_id}")
            if media is not None and media.kind == "document" and media.data is not None
            else None,
            buttons=buttons,
            quote=quote,
        )

    def reply_keyboard(self, user: FakeUser) -> list[list[str]]:
        """The reply keyboard the client shows under the input, if the bot set one."""
        keyboard = user._reply_keyboard()
        if keyboard is None:
            return []
        return [[label for label, _ in row] for row in keyboard.buttons]

    def _chat_context(self, request: web.Request, who: str, user: FakeUser) -> dict[str, Any]:
        lang = self._lang(request)
        seeded = self.demo.seeded
        assert seeded is not None
        # The invitation stays until it was opened: a visitor who types first (and is told, as a stranger, that
        # they need an invitation) must still find the link.
        opened = f"/start {seeded.invite_code}"
        started = (
            any(
                chat == user.chat_id and str(raw.get("text") or "").strip() == opened
                for (chat, _), raw in self.demo.tg._user_messages.items()
            )
            if self.demo.tg
            else True
        )
        return {
            "who": who,
            "l": labels(lang),
            "lang": lang,
            "bubbles": self.bubbles(user, lang),
            "keyboard": self.reply_keyboard(user),
            "version": self.version(user),
            "toast": self._toast(user),
            "invite": f"/start {seeded.invite_code}" if who == "patient" and not started else None,
            "invite_link": f"https://t.me/{self.demo.tg.BOT_USERNAME}?start={seeded.invite_code}"
            if self.demo.tg
            else "",
        }

    def _clock_context(self, request: web.Request) -> dict[str, Any]:
        lang = self._lang(request)
        day = format_date(self._local_date(), "full", locale=lang)
        return {"l": labels(lang), "lang": lang, "now": f"{day}, {self._time(self.demo.clock.now(), lang)}"}

    # --- routes -----------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        lang = self._lang(request)
        seeded = self.demo.seeded
        assert seeded is not None and self.demo.patient is not None and self.demo.therapist is not None
        names = labels(lang)
        context = {
            "l": names,
            "lang": lang,
            "other_lang": "de" if lang == "en" else "en",
            "token": self.token,
            "patient_title": names["patient"].format(alias=seeded.visitor_alias),
            "therapist_title": names["therapist"].format(name=seeded.therapist_name),
            "patient": self._chat_context(request, "patient", self.demo.patient),
            "therapist": self._chat_context(request, "therapist", self.demo.therapist),
            "dashboard": self.demo.dashboard is not None,
            **self._clock_context(request),
        }
        return aiohttp_jinja2.render_template("demo.html", request, context)

    def _draw(self, request: web.Request, user: FakeUser) -> web.Response:
        """The chat's log as it now is (swapped into the page, with the chat's title out of band)."""
        context = self._chat_context(request, request.match_info["who"], user)
        return aiohttp_jinja2.render_template("messages.html", request, {**context, "oob": True})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        user = self._user(request)
        if request.query.get("since") == self.version(user):
            return web.Response(status=204)
        return self._draw(request, user)

    async def _after(self, request: web.Request, user: FakeUser) -> web.StreamResponse:
        """Give the bot a moment to answer, then draw the chat."""
        before = self.version(user)
        assert self.demo.tg is not None
        try:
            await self.demo.tg.wait_until(lambda: self.version(user) != before, timeout=2.0, what="a reply")
        except AssertionError:
            pass  # no answer (yet): the polling shows it when it comes
        return self._draw(request, user)

    async def send(self, request: web.Request) -> web.StreamResponse:
        self._check(request)
        user = self._user(request)
        form = await request.post()
        text = str(form.get("text", "")).strip()
        if not text or len(text) > MAX_TEXT:
            raise web.HTTPBadRequest(text="a message is 1 to 4096 characters")
        await user.send(text, reply_to=self.replied_to(user, str(form.get("reply_to", ""))))
        return await self._after(request, user)

    def replied_to(self, user: FakeUser, chosen: str) -> int | None:
        """The message a text answers: the one the visitor chose with its ↩ (Telegram's swipe or Reply), if it
        is still in this chat, else the bot's ForceReply question, if one is open."""
        if chosen.isascii() and chosen.isdigit() and self._in_chat(user, int(chosen)) is not None:
            return int(chosen)
        return self.force_reply_to(user)

    def force_reply_to(self, user: FakeUser) -> int | None:
        """The bot's message that asked for a reply (ForceReply) since the person last wrote, if any.

        Telegram's app opens a reply to such a message at once, so what is typed next is sent as a reply
        to it: /note's "Please type your note" keeps the note that way. Without this the demo sent it as
        plain text, and the bot offered to send it to the care team instead of saving the note.
        """
        assert self.demo.tg is not None
        last_mine = max((m for chat, m in self.demo.tg._user_messages if chat == user.chat_id), default=0)
        asking = [
            m.message_id
            for m in user.messages
            if m.message_id > last_mine and not m.deleted and (m.reply_markup or {}).get("force_reply")
        ]
        return asking[-1] if asking else None

    async def press(self, request: web.Request) -> web.StreamResponse:
        self._check(request)
        user = self._user(request)
        form = await request.post()
        try:
            message_id, row, column = (int(str(form.get(k, ""))) for k in ("message", "row", "col"))
        except ValueError as exc:
            raise web.HTTPBadRequest(text="message, row and col are numbers") from exc
        message = next((m for m in user.messages if m.message_id == message_id and not m.deleted), None)
        rows = ((message.reply_markup or {}).get("inline_keyboard") or []) if message is not None else []
        if message is None or not 0 <= row < len(rows) or not 0 <= column < len(rows[row]):
            # A button that is gone (a double click, or the bot edited the message meanwhile) cannot be
            # pressed in Telegram either: nothing is sent, and the chat is drawn as it now is.
            return self._draw(request, user)
        button = rows[row][column]
        if not isinstance(button, dict) or "callback_data" not in button:
            raise web.HTTPBadRequest(text="not a callback button")
        await user.press(str(button["callback_data"]), message)
        return await self._after(request, user)

    async def clock(self, request: web.Request) -> web.StreamResponse:
        return aiohttp_jinja2.render_template("clock.html", request, self._clock_context(request))

    async def next_reminder(self, request: web.Request) -> web.StreamResponse:
        self._check(request)
        await self.demo.next_reminder()
        return aiohttp_jinja2.render_template("clock.html", request, self._clock_context(request))

    async def plus_day(self, request: web.Request) -> web.StreamResponse:
        self._check(request)
        await self.demo.plus_day()
        return aiohttp_jinja2.render_template("clock.html", request, self._clock_context(request))

    async def media(self, request: web.Request) -> web.StreamResponse:
        assert self.demo.tg is not None
        media = self.demo.tg._files.get(request.match_info["file_id"])
        if media is None or media.data is None:
            raise web.HTTPNotFound()
        if media.kind == "document":  # a download, never a page of this site, whatever its type
            name = "".join(c for c in (media.filename or "file") if c.isascii() and (c.isalnum() or c in "._-"))
            headers = {
                "Content-Disposition": f'attachment; filename="{name or "file"}"',
                "X-Content-Type-Options": "nosniff",
            }
            return web.Response(body=media.data, content_type="application/octet-stream", headers=headers)
        return web.Response(body=media.data, content_type=media.mime_type or "image/png")

    async def dashboard(self, request: web.Request) -> web.StreamResponse:
        """The therapist's way into the web dashboard (?as=admin: the admin's), a one-time sign-in link, when
        the web app exists."""
        if self.demo.dashboard is None:
            raise web.HTTPNotFound(text="the web dashboard is not part of this version")
        url = await self.demo.dashboard(admin=request.query.get("as") == "admin")
        raise web.HTTPFound(url)
