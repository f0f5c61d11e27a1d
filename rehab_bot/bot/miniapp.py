"""The web app's buttons in Telegram: the staff chats' menu button and "Open dashboard" under /patients;
the patient chats' menu button that opens the patients' Mini App.

Both open the Mini App (``<[web] public_url>/app``). Telegram opens Mini Apps over
https only, so neither appears unless public_url is https. A leaf beside services.py:
bot/staff.py and bot/web.py both use it.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, MenuButtonDefault, MenuButtonWebApp, WebAppInfo
from telegram.error import TelegramError

from rehab_bot.bot.services import svc
from rehab_bot.i18n import N_, t
from rehab_bot.miniapp import home_url
from rehab_bot.models import Staff

log = logging.getLogger(__name__)

MENU_TEXT = N_("Dashboard")
OPEN_TEXT = N_("Open dashboard")


def miniapp_url(holder: Any) -> str | None:
    """The Mini App's address when Telegram can open it (an https public_url), else None."""
    web = svc(holder).config.web
    return f"{web.public_url.rstrip('/')}/app" if web.https and web.listen else None


async def set_menu_button(bot: Bot, staff: Staff, url: str | None) -> None:
    """The staff chat's menu button: the Mini App for active staff (when it can open), else the default."""
    if url is not None and staff.active:
        button: MenuButtonWebApp | MenuButtonDefault = MenuButtonWebApp(t(staff.language, MENU_TEXT), WebAppInfo(url))
    else:
        button = MenuButtonDefault()
    await bot.set_chat_menu_button(chat_id=staff.telegram_id, menu_button=button)


PATIENT_MENU_TEXT = N_("My rehab")


async def set_patient_menu_button(holder: Any, bot: Bot, chat_id: int, lang: str) -> bool:
    """A patient chat's menu button opens the patients' Mini App (``[web] public_url``); False when not set.

    Set once an enrolment is finished (bot/enrol.py). Only the patient's private chat, never a group.
    """
    public = svc(holder).config.web.public_url
    if not public or chat_id <= 0:
        return False
    button = MenuButtonWebApp(t(lang, PATIENT_MENU_TEXT), WebAppInfo(home_url(public)))
    try:
        await bot.set_chat_menu_button(chat_id=chat_id, menu_button=button)
    except TelegramError as exc:
        log.info("could not set a patient chat's menu button: %s", type(exc).__name__)
        return False
    return True


def open_button(holder: Any, lang: str = "en") -> list[InlineKeyboardButton]:
    """The Mini App button under /patients, in the staff member's language (private chats only; none when it
    cannot open)."""
    url = miniapp_url(holder)
    return [InlineKeyboardButton(t(lang, OPEN_TEXT), web_app=WebAppInfo(url))] if url else []


def with_open_button(markup: InlineKeyboardMarkup | None, holder: Any, lang: str = "en") -> InlineKeyboardMarkup | None:
    """markup with the Mini App button (in lang) as its last row."""
    extra = open_button(holder, lang)
    if not extra:
        return markup
    rows = [list(row) for row in markup.inline_keyboard] if markup is not None else []
    return InlineKeyboardMarkup([*rows, extra])
