"""Turn a due delivery into the message the patient (or clinician) reads.

Each kind belongs to a feature module, which renders it; this module only
routes. A renderer may return None when the message no longer applies (for
example a nudge for a session the patient already logged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import alert as alerts
from rehab_bot import experiment
from rehab_bot import staff as staff_core
from rehab_bot.bot import care, checkin, education, session, staff
from rehab_bot.bot.services import App, svc
from rehab_bot.i18n import t
from rehab_bot.models import Alert, Kind, Patient
from rehab_bot.reminders import DueMessage
from rehab_bot.transport import OutgoingMessage

KindRenderer = Callable[[App, DueMessage], Awaitable[OutgoingMessage | None]]


async def render_nudge(app: App, message: DueMessage) -> OutgoingMessage | None:
    """A nudge: the core makes a running experiment's draw first (and commits); the renderer only reads it."""
    services = svc(app)
    async with services.db.session() as db:
        delivery = services.config.delivery
        await experiment.draw_for_nudge(
            db,
            services.content,
            message,
            services.clock.now(),
            taper_weeks=delivery.taper_after_weeks,
            taper_adherence=delivery.taper_adherence,
        )
    return await session.render_nudge(app, message)


def render_due(
    app: App,
) -> Callable[[DueMessage], Awaitable[OutgoingMessage | None]]:
    """A renderer bound to the running application."""
    by_kind: dict[str, KindRenderer] = {
        Kind.SESSION.value: session.render_reminder,
        Kind.NUDGE.value: render_nudge,
        Kind.CHECKIN.value: checkin.render_checkin,
        Kind.MOTIVATION.value: checkin.render_motivation,
        Kind.LESSON.value: education.render_lesson,
    }

    async def render(message: DueMessage) -> OutgoingMessage | None:
        if message.kind == Kind.MESSAGE.value:  # care-team messages: photo, buttons, threaded
            return await care.render_message(app, message)
        if message.body:  # alerts and safety messages are written when raised
            body = message.body
            if not svc(app).config.privacy.health_data_in_chat and message.kind == Kind.ALERT.value:
                body = await _neutral_alert(app, message)
            return OutgoingMessage(body, staff.alert_buttons(message.kind, message.payload))
        renderer = by_kind.get(message.kind)
        if renderer is not None:
            return await renderer(app, message)
        return OutgoingMessage(t(message.language, "Time for your check-in."))

    return render


async def _neutral_alert(app: App, message: DueMessage) -> str:
    """A staff message that names no symptom and no answer: whose alert, how urgent, open the dashboard.

    In its reader's language (the payload's, see alert.ack_payload), like the message it stands in for.
    """
    alert_id = alerts.ack_alert_id(message.payload)
    lang = staff_core.payload_language(message.payload)
    async with svc(app).db.session() as db:
        alert = await db.get(Alert, alert_id) if alert_id is not None else None
        patient = await db.get(Patient, alert.patient_id) if alert is not None else None
    if alert is None or patient is None:
        return t(lang, alerts.NEUTRAL_STAFF_MESSAGE)
    return alerts.neutral_text(alert.severity, patient.alias, lang)


def render_due_many(
    app: App,
) -> Callable[[AsyncSession, Sequence[DueMessage], Mapping[int, Any]], Awaitable[dict[int, OutgoingMessage | None]]]:
    """A batch renderer bound to the running application: the kinds that send in bulk render per window.

    It runs in the claim's transaction (db), after the dispatcher opened the
    window's sessions (rehab_bot.session.window_opener); it only reads.
    """

    async def render_many(
        db: AsyncSession, messages: Sequence[DueMessage], opened: Mapping[int, Any]
    ) -> dict[int, OutgoingMessage | None]:
        return await session.render_reminders(app, db, opened)

    return render_many
