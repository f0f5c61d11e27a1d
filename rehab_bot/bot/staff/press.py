"""The staff side's plumbing: commands and button presses by active staff, keyboards, conversations.

Every staff command (:func:`staff_command`) and every staff button (a
:class:`Press`, routed by rehab_bot.bot.staff.on_button) looks the sender up
in the database again (rehab_bot.staff.active_staff), so a member removed or
demoted loses access at once. Anyone else gets exactly what an unknown
command or a stale button gets (common.unknown_message / unknown_button).

Conversations (/invite, /staffinvite, new session times) keep their answers
in the staff_draft table (:func:`begin`, :func:`prompt`), so a restart in the
middle loses nothing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    ContextTypes,
)

from rehab_bot import access
from rehab_bot import alert as alert_core
from rehab_bot import staff as core
from rehab_bot.bot import common
from rehab_bot.bot.services import svc
from rehab_bot.i18n import N_, t
from rehab_bot.models import Patient, Staff, StaffDraft
from rehab_bot.transport import utf16_len

log = logging.getLogger(__name__)

MAX_TEXT = 4096


ADMIN_ONLY = N_("Only an admin can do this.")  # a msgid: t(staff.language, ADMIN_ONLY)


def keyboard(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup | None:
    """Inline keyboard from (label, callback data) rows; None without buttons."""
    rows = [row for row in rows if row]
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


CANCEL = N_("✖ Cancel")


def cancel_row(lang: str) -> list[tuple[str, str]]:
    """The Cancel button under a conversation's question, in the staff member's language."""
    return [(t(lang, CANCEL), "st:x")]


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Telegram refuses longer messages; cut at a word boundary, never mid-word.

    Telegram counts UTF-16 code units, in which an emoji outside the Basic Multilingual Plane (🩺, 👍) is
    two: a text of 4,096 characters with one such emoji is refused ("Message is too long")."""
    if utf16_len(text) <= limit:
        return text
    size = limit
    while True:
        cut = alert_core.shorten(text, size)
        over = utf16_len(cut) - limit
        if over <= 0:
            return cut
        size -= (over + 1) // 2  # each character cut is one or two units


def fmt(value: float | int | None, pattern: str = "{}") -> str:
    return "–" if value is None else pattern.format(value)


StaffCommand = Callable[[Update, ContextTypes.DEFAULT_TYPE, AsyncSession, Staff], Awaitable[None]]


def staff_command(*, admin_only: bool = False) -> Callable[[StaffCommand], Any]:
    """Run a command only for active staff (admins if admin_only), rechecked in the database.

    Anybody else gets the unknown-command answer, word for word. The update
    stops here either way, so no patient feature sees a staff command.
    """

    def wrap(fn: StaffCommand) -> Any:
        @functools.wraps(fn)
        async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            user = update.effective_user
            message = update.effective_message
            refused, lang = "", "en"
            async with svc(context).db.session() as session:
                staff = await core.active_staff(session, user.id) if user is not None else None
                if staff is None:
                    refused = "unknown"
                elif admin_only and not access.is_admin(staff):
                    refused, lang = "admin", staff.language
                else:
                    await fn(update, context, session, staff)
            if refused == "unknown":
                await common.unknown_message(update, context)
            elif refused == "admin" and message is not None:
                await message.reply_text(t(lang, ADMIN_ONLY))
            raise ApplicationHandlerStop

        return handler

    return wrap


@dataclass
class Press:
    """A staff member's button press, with the open database session."""

    update: Update
    context: ContextTypes.DEFAULT_TYPE
    session: AsyncSession
    staff: Staff
    args: list[str]
    answered: bool = False

    @property
    def message(self) -> Message | None:
        query = self.update.callback_query
        assert query is not None
        return common.message_of(query)

    @property
    def now(self) -> datetime:
        return svc(self.context).clock.now()

    async def answer(self, text: str | None = None, *, alert: bool = False) -> None:
        """Answer the callback query (once)."""
        if self.answered:
            return
        self.answered = True
        query = self.update.callback_query
        assert query is not None
        await query.answer(text, show_alert=alert)

    async def edit(self, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """Replace the pressed message's text (and so its buttons)."""
        message = self.message
        if message is None:
            return
        try:
            if message.photo or message.document:
                await message.edit_caption(clip(text, 1024), reply_markup=markup)
            else:
                await message.edit_text(clip(text), reply_markup=markup)
        except TelegramError as exc:  # deleted, too old, or not modified: the action itself stands
            log.info("could not edit a staff message: %s", type(exc).__name__)

    async def strip_buttons(self) -> None:
        """Take the buttons off the pressed message, keeping its text."""
        message = self.message
        if message is None or not message.reply_markup:
            return
        try:
            await message.edit_reply_markup(reply_markup=None)
        except TelegramError as exc:
            log.info("could not take buttons off a staff message: %s", type(exc).__name__)

    async def reply(self, text: str, markup: InlineKeyboardMarkup | None = None) -> Message:
        """A new message in the staff member's chat."""
        return await self.context.bot.send_message(self.staff.telegram_id, clip(text), reply_markup=markup)

    def int_arg(self, index: int) -> int:
        """A numeric argument: a database id or a count; anything else is a stale or forged button."""
        value = int(self.args[index])
        if not 0 <= value < 2**31:
            raise ValueError("out of range")
        return value


Route = Callable[[Press], Awaitable[None]]


async def patient_arg(press: Press, needed: access.Access) -> Patient:
    patient = await press.session.get(Patient, press.int_arg(0))
    if patient is None:
        raise access.StaffError(N_("This patient no longer exists."))
    access.require(press.staff, patient, needed)
    return patient


async def prompt(
    context: ContextTypes.DEFAULT_TYPE,
    session: AsyncSession,
    staff: Staff,
    draft: StaffDraft,
    text: str,
    rows: list[list[tuple[str, str]]],
) -> None:
    """Ask the next question and remember which message carries the live buttons.

    The answers so far are committed before anything goes to Telegram, so no
    write transaction stays open across a (paced) request.
    """
    old_prompt = draft.message_id
    draft.message_id = None
    draft.updated_at = svc(context).clock.now()
    session.add(draft)
    await session.commit()
    await retire_prompt(context, staff, old_prompt)
    sent = await context.bot.send_message(
        staff.telegram_id, text, reply_markup=keyboard([*rows, cancel_row(staff.language)])
    )
    draft.message_id = sent.message_id
    session.add(draft)
    await session.commit()


async def begin(
    context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff, kind: str, step: str, **values: Any
) -> StaffDraft:
    """Start a conversation (committed); the buttons of one it replaces go."""
    old = await session.get(StaffDraft, staff.id)
    old_prompt = old.message_id if old is not None else None
    draft = await core.start_draft(session, staff, kind, step, svc(context).clock.now(), **values)
    await session.commit()
    await retire_prompt(context, staff, old_prompt)
    return draft


async def retire_prompt(context: ContextTypes.DEFAULT_TYPE, staff: Staff, message_id: int | None) -> None:
    """Take the buttons off a conversation's earlier prompt."""
    if message_id is None:
        return
    try:
        await context.bot.edit_message_reply_markup(staff.telegram_id, message_id, reply_markup=None)
    except TelegramError:  # already gone or unchanged: nothing to take away
        pass


async def draft_for_press(press: Press, kind: str, step: str) -> StaffDraft | None:
    """The draft a conversation button belongs to, if the press is current; answers stale presses."""
    draft = await core.draft_for(press.session, press.staff, press.now)
    message = press.message
    if draft is None or draft.kind != kind or message is None or draft.message_id != message.message_id:
        await press.answer(t(press.staff.language, "This step is no longer active."))
        await press.strip_buttons()
        return None
    if draft.step != step:
        await press.answer(t(press.staff.language, "This step is done already."))
        return None
    return draft
