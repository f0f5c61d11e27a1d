"""The experiment notice's opt-out button (thin: rehab_bot.experiment decides and records).

A patient who consented before any experiment ran is told once, on the first nudge that would
have been randomised (bot/session.render_nudge adds the clinic's ``experiment_notice`` text and
this module's button). Pressing it records the opt-out (experiment.opt_out): the patient is never
randomised again. The answer is the clinic's ``experiment_opted_out`` text; only the button goes,
the nudge's own buttons stay.
"""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.error import BadRequest
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler, ContextTypes

from rehab_bot import experiment
from rehab_bot.bot.common import buttons_on, keyboard_without, language_for
from rehab_bot.bot.services import App, svc
from rehab_bot.i18n import N_, t
from rehab_bot.patient import find as find_patient

log = logging.getLogger(__name__)

OPT_OUT = "xo:out"
STALE = N_("This button is no longer active.")


def opt_out_row(lang: str) -> list[tuple[str, str]]:
    """The button row under the notice."""
    return [(t(lang, "🚫 Leave me out of tests"), OPT_OUT)]


async def on_opt_out(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The presser's own opt-out, from the message that carried the notice."""
    query, user = update.callback_query, update.effective_user
    assert query is not None
    message = query.message if isinstance(query.message, Message) else None
    if user is None or message is None or query.data not in buttons_on(message):
        await query.answer(t(await language_for(update, context), STALE))
        raise ApplicationHandlerStop
    s = svc(context)
    async with s.db.session() as db:
        patient = await find_patient(db, user.id)
        if patient is not None and patient.id is not None:
            await experiment.opt_out(db, patient.id, s.clock.now())
            await db.commit()
    lang = patient.language if patient is not None else await language_for(update, context)
    if patient is None:
        await query.answer(t(lang, STALE))
        raise ApplicationHandlerStop
    await query.answer()
    log.info("patient %s opted out of experiments", patient.id)
    try:
        await message.edit_reply_markup(reply_markup=keyboard_without(message, OPT_OUT))
    except BadRequest as exc:  # too old to edit, or already without the button
        log.info("could not take the opt-out button away: %s", exc.message)
    await message.reply_text(s.content.text("experiment_opted_out", lang))
    raise ApplicationHandlerStop


def register(app: App) -> None:
    """Add the opt-out button's handler."""
    app.add_handler(CallbackQueryHandler(on_opt_out, pattern=rf"^{OPT_OUT}$"))
