"""What every web handler needs, in one object on the aiohttp Application (no telegram import)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.access import is_admin
from rehab_bot.clock import Clock
from rehab_bot.config import Config, WebConfig
from rehab_bot.content import Content
from rehab_bot.db import Database
from rehab_bot.files import private_dir, write_private_text
from rehab_bot.models import Patient, Staff

log = logging.getLogger(__name__)


@dataclass
class WebContext:
    """The running bot's config, database, clock and content, the web secret and the public address."""

    config: Config
    db: Database
    clock: Clock
    content: Content = field(default_factory=Content)
    secret: bytes = b""
    # The address pages and links use: [web] public_url, or http://<bound host:port>.
    base_url: str = ""
    # The bot's @username, for invitation links (t.me/<bot>?start=...); "" before Telegram answered.
    bot_username: str = ""
    # Called with (chat id, message id) after a session was finished in the Mini App: the bot
    # takes that chat message's buttons away (set by bot/web.py; the web layer imports no telegram).
    on_outcome: Callable[[int, int], None] | None = None
    # Called with (chat id, language) after a red-flag answer in the Mini App: the bot sends the neutral
    # "Please open your check-in result now." with a button to the result (no health data in the chat).
    on_red_flag: Callable[[int, str], None] | None = None
    # Called with an alert's id after it was acknowledged here: its copies in the staff chats say who
    # acknowledged it and lose their Acknowledge buttons (set by bot/web.py: bot/staff/alerts.mark_copies).
    on_acknowledged: Callable[[int], None] | None = None

    def key(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (the session cookie, CSRF), derived from the secret."""
        return hashlib.sha256(purpose.encode() + b"\0" + self.secret).digest()


CONTEXT = web.AppKey("rehab_context", WebContext)


def context(request: web.Request) -> WebContext:
    """The WebContext of the application serving this request."""
    return request.app[CONTEXT]


def load_secret(settings: WebConfig) -> bytes:
    """[web] secret, or the secret file's content, made (random, mode 0600) if it does not exist."""
    if settings.secret:
        return settings.secret.encode()
    path = Path(settings.secret_file)
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
        if len(text) >= 32:
            return text.encode()
        log.warning("the web secret file is shorter than 32 characters; making a new one")
    private_dir(path.parent)
    text = secrets.token_urlsafe(48)
    write_private_text(path, text + "\n")
    log.info("made a new web secret file (mode 0600)")
    return text.encode()


@dataclass(frozen=True)
class Visitor:
    """The signed-in staff member or patient (both None for a stranger), and the page language."""

    staff: Staff | None
    patient: Patient | None
    lang: str
    # The session ended at this request: idle too long, or the access was removed.
    ended: bool = False
    # The patient has agreed but not finished enrolling: only the pages declared "agreed" (web/auth.py).
    enrolling: bool = False

    @property
    def is_staff(self) -> bool:
        return self.staff is not None

    @property
    def is_admin(self) -> bool:
        return is_admin(self.staff)


VISITOR = web.RequestKey("rehab_visitor", Visitor)
DB = web.RequestKey("rehab_db", AsyncSession)


VISITOR = web.RequestKey("rehab_visitor", Visitor)
DB = web.RequestKey("rehab_db", AsyncSession)
