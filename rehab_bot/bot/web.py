"""The web app's Telegram side: start/stop it, /dashboard sign-in links, the Mini App buttons.

- :func:`start_web` runs the web app (rehab_bot/web/) in the bot's event loop when
  ``[web] listen`` is set; :func:`stop_web` stops it.
- ``/dashboard`` in a staff member's private chat answers with a one-time sign-in link
  (rehab_bot.signin: 5 minutes, used once), without a link preview (a preview would
  fetch the URL). Anyone else gets the unknown-command answer, like every staff command.
- The Mini App: staff chats get a menu button that opens ``<public_url>/app``
  (setChatMenuButton, staff chats only; removed staff get the default button back), and
  /patients an "Open dashboard" button. Telegram opens Mini Apps over https only, so
  both appear only when ``[web] public_url`` is https.

- An alert acknowledged on the web: its copies in the staff chats say who acknowledged it and lose their
  Acknowledge buttons (rehab_bot.bot.staff.alerts.mark_copies), as when it is acknowledged in a chat.

Staff-facing text is in the staff member's language, like the rest of the clinician tools.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import LinkPreviewOptions, Update
from telegram.error import TelegramError
from telegram.ext import CommandHandler, ContextTypes, filters

from rehab_bot import signin
from rehab_bot.bot.checkin import result_notice
from rehab_bot.bot.miniapp import with_open_button
from rehab_bot.bot.services import App, svc
from rehab_bot.bot.session import _drop_buttons as drop_buttons
from rehab_bot.bot.staff import GROUP
from rehab_bot.bot.staff.alerts import mark_copies
from rehab_bot.bot.staff.press import staff_command
from rehab_bot.i18n import N_, t
from rehab_bot.models import Staff
from rehab_bot.transport import keyboard
from rehab_bot.web.app import WebServer
from rehab_bot.web.context import WebContext, load_secret

log = logging.getLogger(__name__)

OFF_TEXT = N_("The web dashboard is not switched on. An admin can set [web] listen in config.toml (see the README).")


async def start_web(app: App) -> None:
    """Serve the web app when [web] listen is set."""
    s = svc(app)
    listen = s.config.web.host_port
    if listen is None:
        return
    ctx = WebContext(
        config=s.config,
        db=s.db,
        clock=s.clock,
        content=s.content,
        secret=load_secret(s.config.web),
        bot_username=_username(app),
    )
    # A session finished in the Mini App: its chat message loses its buttons (the bot edits, paced as bulk).
    ctx.on_outcome = lambda chat_id, message_id: _in_background(drop_buttons(app.bot, chat_id, message_id))
    ctx.on_red_flag = lambda chat_id, lang: _in_background(tell_result(app, chat_id, lang))
    ctx.on_acknowledged = lambda alert_id: _in_background(mark_copies(app.bot, s, alert_id))
    s.web = WebServer(ctx, listen[0], listen[1])
    await s.web.start()
    log.info("web app on %s:%d", s.web.host, s.web.port)


def _username(app: App) -> str:
    try:
        return str(app.bot.username)
    except RuntimeError:  # Telegram has not answered getMe yet
        return ""


_background: set[asyncio.Task[None]] = set()


def _in_background(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def tell_result(app: App, chat_id: int, lang: str) -> None:
    """After a red-flag answer in the Mini App: a neutral chat message that opens the result there.

    The reply itself is on the patient's screen already; this reaches them if they closed the app.
    It names no symptom (checkin.result_notice), in both privacy modes.
    """
    public = svc(app).config.web.public_url
    web = svc(app).web
    base = public or (web.base_url if web is not None else "")
    if not base:
        return
    notice = result_notice(lang, base)
    try:
        await app.bot.send_message(chat_id, notice.text, reply_markup=keyboard([], notice.web_app))
    except TelegramError as exc:
        log.info("could not send the check-in result notice: %s", type(exc).__name__)


async def stop_web(app: App) -> None:
    s = svc(app)
    if _background:  # button removals and result notices still being sent
        await asyncio.wait(list(_background), timeout=5)
    if s.web is not None:
        await s.web.stop()
        s.web = None


@staff_command()
async def dashboard_command(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff
) -> None:
    """Reply with a one-time sign-in link to the web app."""
    message = update.effective_message
    assert message is not None
    web = svc(context).web
    if web is None:
        await message.reply_text(t(staff.language, OFF_TEXT))
        return
    token = await signin.create_link_token(session, staff, svc(context).clock.now())
    await session.commit()
    link = f"{web.base_url}/signin?token={token}"
    text = t(
        staff.language,
        "Your sign-in link to the dashboard. It works once, for {minutes} minutes; do not forward it.",
        minutes=signin.LINK_MINUTES,
    )
    await message.reply_text(
        f"{text}\n\n{link}",
        link_preview_options=LinkPreviewOptions(is_disabled=True),
        reply_markup=with_open_button(None, context, staff.language),
    )


def register(app: App) -> None:
    """Add /dashboard (with the staff commands, ahead of the patient features)."""
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    app.add_handler(CommandHandler("dashboard", dashboard_command, filters=private), group=GROUP)
