"""/start and /help: the first thing a patient, a stranger or a therapist sees."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ApplicationHandlerStop, CommandHandler, ContextTypes, MessageHandler, filters

from rehab_bot import invite as invites
from rehab_bot import patient as patients
from rehab_bot import staff as staff_core
from rehab_bot.bot import caregiver, enrol
from rehab_bot.bot import staff as staff_bot
from rehab_bot.bot.common import PATIENT_COMMANDS, language_for, stranger_text
from rehab_bot.bot.services import App, svc
from rehab_bot.i18n import N_, t

JOIN = N_("Once you have the link, open it (or scan its QR code): I will guide you through joining.")


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet an enrolled patient, or tell a stranger how to get an invitation."""
    message = update.effective_message
    assert message is not None
    # Someone we know: resume their enrolment, or welcome back a patient or staff member.
    if await enrol.greet_known_user(update, context):
        raise ApplicationHandlerStop
    lang = await language_for(update, context)
    await message.reply_text(stranger_text(lang, svc(context).config.clinic.name))
    raise ApplicationHandlerStop  # handled: the catch-all fallbacks (group 10) must stay quiet


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Explain what the bot does, what it is not for, and the commands; staff get their own (staff_help), a
    stranger how to join (the patient commands are not theirs); and the emergency route."""
    message, user = update.effective_message, update.effective_user
    assert message is not None
    if user is not None:
        async with svc(context).db.session() as session:
            staff = await staff_core.active_staff(session, user.id)
        if staff is not None:  # the clinic's staff: their commands, in their language
            await message.reply_text(staff_bot.staff_help(staff))
            raise ApplicationHandlerStop
    lang = await language_for(update, context)
    s = svc(context)
    config = s.config.clinic
    async with s.db.session() as db:
        standing, _ = await patients.standing(db, user.id) if user is not None else (patients.Standing.STRANGER, None)
    if standing is patients.Standing.STRANGER:
        lines = [
            stranger_text(lang, config.name),
            t(lang, JOIN),
            t(lang, "I am not for emergencies.") + "\n" + config.text("emergency_text", lang),
        ]
        await message.reply_text("\n\n".join(lines))
        raise ApplicationHandlerStop
    lines = [
        t(lang, "I remind you of your home exercises, ask how you are doing, and keep your physiotherapist informed."),
        t(lang, "I am not for emergencies."),
        config.text("emergency_text", lang),
        "\n".join(
            [t(lang, "Commands:")]
            + [f"/{command} – {t(lang, description)}" for command, description in PATIENT_COMMANDS]
        ),
    ]
    await message.reply_text("\n\n".join(lines))
    raise ApplicationHandlerStop


# After the edits' handlers (-8), before the caregiver's commands (-6) and crisis watch (-5): a pasted
# link is neither an answer to a question nor the patient's words.
PASTED_LINK_GROUP = -7


async def pasted_link(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A message that is nothing but this bot's invitation link, pasted instead of tapped: as if tapped.

    Newcomers often copy the link from an e-mail or a letter into the chat. Telegram would have sent
    "/start <code>" for a tap, so the link is redeemed the same way (a caregiver's link, or else a
    patient's or staff member's). Any other text goes on to the other handlers.
    """
    message = update.effective_message
    if message is None or not message.text or not context.bot.username:
        return
    code = invites.pasted_link_code(message.text, context.bot.username)
    if code is None:
        return
    context.args = [code]
    await caregiver.start_with_code(update, context)  # stops the update when it is a caregiver's code
    await enrol.start_with_code(update, context)


def register(app: App) -> None:
    """Add /start, /help, and pasted invitation links."""
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("help", help_command))
    text = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND
    app.add_handler(MessageHandler(text, pasted_link), group=PASTED_LINK_GROUP)
