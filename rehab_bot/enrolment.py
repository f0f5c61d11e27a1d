"""Enrolment: the steps a patient goes through after opening their invitation, and consent.

    (new) ──redeem──▶ consent ──agree──▶ timezone ──zone──▶ times ──times──▶ done
                        │  ▲                 ▲                │
                     decline│agree           └────back────────┘
                        ▼  │
                      declined

The step is stored in ``Patient.enrol_step``, so an abandoned enrolment
resumes where it stopped. Each transition checks the step it starts from
and returns False when it does not apply (a stale button), changing nothing.
Plain Python over a SQLModel session; the Telegram handlers in
rehab_bot.bot.enrol parse, call these, and render.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import experiment
from rehab_bot import programme as programmes
from rehab_bot.content import Content
from rehab_bot.i18n import N_
from rehab_bot.models import Patient, ReminderRule


class EnrolStep(StrEnum):
    """Where a patient is in enrolment (Patient.enrol_step)."""

    NEW = ""
    CONSENT = "consent"
    DECLINED = "declined"
    TIMEZONE = "timezone"
    TIMES = "times"
    DONE = "done"


# Steps of a patient who is enrolling: their text and buttons belong to enrolment.
IN_PROGRESS = frozenset({EnrolStep.CONSENT, EnrolStep.DECLINED, EnrolStep.TIMEZONE, EnrolStep.TIMES})
# Steps at which consent is asked (a patient who declined may still agree).
ASKING_CONSENT = frozenset({EnrolStep.NEW, EnrolStep.CONSENT, EnrolStep.DECLINED})


def step_of(patient: Patient) -> EnrolStep:
    """The patient's step (an unknown stored value counts as new)."""
    try:
        return EnrolStep(patient.enrol_step)
    except ValueError:
        return EnrolStep.NEW


def begin(patient: Patient) -> None:
    """An invitation was redeemed: a new patient is asked for consent; one further along resumes."""
    if step_of(patient) is EnrolStep.NEW:
        patient.enrol_step = EnrolStep.CONSENT.value


async def _move(session: AsyncSession, patient: Patient, step: EnrolStep) -> None:
    patient.enrol_step = step.value
    session.add(patient)
    await session.commit()


async def agree(
    session: AsyncSession,
    patient: Patient,
    consent_version: str,
    now: datetime,
    content: Content | None = None,
    *,
    experiments: bool = True,
) -> bool:
    """Record consent (when, and to which text) and go on to the time zone.

    With the content: while an experiment runs, the consent text mentioned it, so the patient
    is recorded as told (rehab_bot.experiment.record_consent) and gets no separate notice;
    experiments=False (they agreed but without tests) records their opt-out at once.
    """
    if step_of(patient) not in (EnrolStep.CONSENT, EnrolStep.DECLINED):
        return False
    patient.consent_at = now
    patient.consent_version = consent_version
    if content is not None and patient.id is not None:
        await experiment.record_consent(session, content, patient.id, now)
        if not experiments:
            await experiment.opt_out(session, patient.id, now)
    await _move(session, patient, EnrolStep.TIMEZONE)
    return True


async def decline(session: AsyncSession, patient: Patient) -> bool:
    """The patient does not agree: nothing is sent; they may agree later."""
    if step_of(patient) not in (EnrolStep.CONSENT, EnrolStep.DECLINED):
        return False
    await _move(session, patient, EnrolStep.DECLINED)
    return True


# What a patient who declined (or stopped setting up) is told when they write or send /stop again.
NOT_TAKING_PART = N_(
    "You chose not to take part, so I will not send you anything. If you change your mind, just type /start."
)


async def withdraw(session: AsyncSession, patient: Patient) -> bool:
    """The patient stops setting up (/stop before enrolment is finished): as declining, and an agreement given
    is taken back, so nothing is sent and the Mini App's "agreed" pages close; they may agree again later
    (/start, or the link again). False when there is nothing to stop (declined already, or enrolled)."""
    if step_of(patient) not in (EnrolStep.NEW, EnrolStep.CONSENT, EnrolStep.TIMEZONE, EnrolStep.TIMES):
        return False
    patient.consent_at = None
    patient.consent_version = ""
    await _move(session, patient, EnrolStep.DECLINED)
    return True


async def set_timezone(session: AsyncSession, patient: Patient, zone: str) -> bool:
    """Store the patient's zone and go on to the session times."""
    if step_of(patient) is not EnrolStep.TIMEZONE:
        return False
    patient.timezone = zone
    await _move(session, patient, EnrolStep.TIMES)
    return True


async def back_to_timezone(session: AsyncSession, patient: Patient) -> bool:
    """From the times, back to choosing the zone."""
    if step_of(patient) is not EnrolStep.TIMES:
        return False
    await _move(session, patient, EnrolStep.TIMEZONE)
    return True


async def finish(
    session: AsyncSession, patient: Patient, times: list[str], content: Content, now: datetime
) -> list[ReminderRule]:
    """Store the session times, mark enrolment done and plan the programme; returns the rules made.

    The caller commits (with whatever else it wrote in the same transaction).
    """
    patient.session_times = ",".join(sorted(times))
    patient.enrol_step = EnrolStep.DONE.value
    patient.last_activity_at = now
    rules = await programmes.on_enrolled(session, patient, content, now)
    await session.flush()
    return rules
