"""The demo clinic: staff, patients at different stages, and a few weeks of their history.

Everything goes through the core as the bot and the CLI would do it (staff.add_staff,
invite.create_patient_invite, invite.redeem, enrolment, checkin.start/answer, so the red-flag
rules run on the seeded answers); only the exercise sessions of past days are written as rows,
since the engine would need weeks of wall-clock reminders to make them. Plain Python over a
SQLModel session: no Telegram here.

The cast (aliases only, as in a real clinic; the staff names are invented):

- an admin and a therapist, responsible for every patient, speaking the clinic's language (--lang);
- P-2041, four weeks after surgery, doing well (pain falling, most sessions done);
- P-2042, twelve days after surgery, struggling: fewer sessions, pain rising, and this morning a
  pain entry of 8, a critical alert that reaches the therapist when the demo starts;
- P-2043, German-speaking, three weeks after surgery, who paused the reminders for three days (/pause);
- P-2044, invited five days after surgery and not yet enrolled: the visitor opens their invitation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import checkin, enrolment, invite, programme, staff
from rehab_bot import patient as patients
from rehab_bot.config import Config
from rehab_bot.content import Content
from rehab_bot.db import Database
from rehab_bot.models import Alert, Delivery, DeliveryStatus, ExerciseSession, Patient, Role
from rehab_bot.schedule import zone

ADMIN_ID = 7_000_001
THERAPIST_ID = 7_000_002
VISITOR_ID = 7_100_044  # the patient the visitor plays (P-2044)
PROGRAMME = "lumbar-example"
CONSENT_VERSION = "demo"
ACTOR = "demo"


@dataclass(frozen=True)
class Seeded:
    """What the demo page needs to know about the seeded clinic."""

    admin_id: int
    therapist_id: int
    therapist_name: str
    visitor_id: int
    visitor_alias: str
    invite_code: str
    patients: tuple[str, ...]  # every alias, the visitor's last


@dataclass(frozen=True)
class Story:
    """One enrolled patient's past: how long ago, how well it went."""

    alias: str
    telegram_id: int
    language: str
    surgery_days_ago: int
    enrolled_days_ago: int
    adherence: tuple[float, float]  # chance a session is done: at enrolment, and yesterday
    pain: tuple[int, int]  # evening pain: at enrolment, and yesterday
    mood: tuple[int, int]


STORIES = (
    Story("P-2041", 7_100_041, "en", 30, 28, (0.7, 0.95), (6, 2), (3, 4)),
    Story("P-2042", 7_100_042, "en", 12, 10, (0.9, 0.35), (4, 7), (4, 2)),
    Story("P-2043", 7_100_043, "de", 21, 18, (0.8, 0.8), (5, 3), (3, 4)),
)


def demo_start(today: date, timezone: str) -> datetime:
    """The demo clock's first instant: 08:40 in the clinic's zone, twenty minutes before the first slot."""
    return datetime.combine(today, time(8, 40), tzinfo=zone(timezone)).astimezone(UTC)


def _at(day: date, hhmm: str, timezone: str, minutes: int = 0) -> datetime:
    local = datetime.combine(day, time.fromisoformat(hhmm), tzinfo=zone(timezone)) + timedelta(minutes=minutes)
    return local.astimezone(UTC)


def _between(start: float, end: float, share: float) -> float:
    return start + (end - start) * share


async def seed(db: Database, content: Content, config: Config, now: datetime) -> Seeded:
    """Fill an empty, migrated database with the demo clinic as it stands at ``now``."""
    clinic = config.clinic
    rng = random.Random(2041)  # noqa: S311 - invented history, the same at every start
    async with db.session() as session:
        for telegram_id, role, name in (
            (ADMIN_ID, Role.ADMIN.value, "Dr Sam Admin"),
            (THERAPIST_ID, Role.THERAPIST.value, "Alex Physio"),
        ):
            member, _ = await staff.add_staff(
                session,
                telegram_id=telegram_id,
                role=role,
                name=name,
                now=now,
                default_timezone=clinic.timezone,
                language=clinic.language,  # `demo --lang de`: the staff pages in German too
            )
            if role == Role.THERAPIST.value:
                therapist = member
        await session.commit()
        assert therapist.id is not None
        for story in STORIES:
            await _live(session, content, config, story, therapist.id, now, rng)
        paused = await invite.patient_by_alias(session, "P-2043")
        assert paused is not None
        yesterday = now - timedelta(hours=14)
        await patients.pause(
            session, paused, patients.pause_until_for(3, _local_today(yesterday, clinic.timezone)), yesterday
        )
        await session.commit()
        await _alert_this_morning(session, content, config, "P-2042", now - timedelta(minutes=40))
        # What happened before this morning has been delivered and read.
        await session.exec(
            update(Delivery)
            .where(col(Delivery.status) == DeliveryStatus.QUEUED.value, col(Delivery.due_at) < now - timedelta(hours=2))
            .values(status=DeliveryStatus.SENT.value, sent_at=Delivery.due_at)
        )
        old = (await session.exec(select(Alert).where(col(Alert.created_at) < now - timedelta(days=1)))).all()
        for alert in old:
            alert.acknowledged_at = alert.created_at + timedelta(hours=3)
            alert.acknowledged_by = therapist.id
            session.add(alert)
        await session.commit()
        visitor = await invite.create_patient_invite(
            session,
            content,
            alias="P-2044",
            surgery_date=_local_today(now, clinic.timezone) - timedelta(days=5),
            programme_id=PROGRAMME,
            now=now - timedelta(days=1),
            valid_days=clinic.invite_valid_days,
            timezone=clinic.timezone,
            language=clinic.language,
            therapist_id=therapist.id,
            created_by=therapist.id,
            actor=ACTOR,
        )
        await session.commit()
        return Seeded(
            admin_id=ADMIN_ID,
            therapist_id=THERAPIST_ID,
            therapist_name=therapist.name,
            visitor_id=VISITOR_ID,
            visitor_alias=visitor.patient.alias,
            invite_code=visitor.invite.code,
            patients=(*(s.alias for s in STORIES), visitor.patient.alias),
        )


def _local_today(now: datetime, timezone: str) -> date:
    return now.astimezone(zone(timezone)).date()


async def _live(
    session: AsyncSession,
    content: Content,
    config: Config,
    story: Story,
    therapist_id: int,
    now: datetime,
    rng: random.Random,
) -> None:
    """Invite, enrol and give one patient their weeks of sessions and check-ins."""
    clinic = config.clinic
    today = _local_today(now, clinic.timezone)
    enrolled_on = today - timedelta(days=story.enrolled_days_ago)
    enrolled_at = _at(enrolled_on, "10:00", clinic.timezone)
    made = await invite.create_patient_invite(
        session,
        content,
        alias=story.alias,
        surgery_date=today - timedelta(days=story.surgery_days_ago),
        programme_id=PROGRAMME,
        now=enrolled_at - timedelta(days=1),
        valid_days=clinic.invite_valid_days,
        timezone=clinic.timezone,
        language=clinic.language,
        therapist_id=therapist_id,
        actor=ACTOR,
    )
    await session.commit()
    redeemed = await invite.redeem(
        session,
        made.invite.code,
        telegram_id=story.telegram_id,
        language=story.language,
        timezone=clinic.timezone,
        now=enrolled_at,
    )
    patient = redeemed.patient
    assert patient is not None and patient.id is not None
    enrolment.begin(patient)
    await enrolment.agree(session, patient, CONSENT_VERSION, enrolled_at)
    await enrolment.set_timezone(session, patient, clinic.timezone)
    phase = programme.current_phase(content, patient, today)
    times = list(phase.default_times) if phase is not None else ["09:00"]
    # Planned from now: the reminders the demo will send start today.
    await enrolment.finish(session, patient, times, content, now)
    await session.commit()

    days = story.enrolled_days_ago
    last_answer = enrolled_at
    for n in range(days):
        day = enrolled_on + timedelta(days=n)
        share = n / max(days - 1, 1)
        chance = _between(*story.adherence, share)
        day_phase = programme.current_phase(content, patient, day)
        slots = list(day_phase.default_times) if day_phase is not None else []
        if day == enrolled_on:
            slots = [s for s in slots if s > "10:00"]
        for slot in slots:
            roll = rng.random()
            answered = _at(day, slot, clinic.timezone, 25 + rng.randrange(30))
            pain = round(_between(*story.pain, share)) + rng.choice((-1, 0, 0, 1))
            if roll < chance:
                status, answered_at = ("done" if rng.random() < 0.85 else "partly"), answered
            elif roll < chance + (1 - chance) / 2:
                status, answered_at = "skipped", answered
            else:
                status, answered_at = "missed", None
            session.add(
                ExerciseSession(
                    patient_id=patient.id,
                    local_date=day,
                    slot=slot,
                    phase_id=day_phase.id if day_phase is not None else "",
                    status=status,
                    effort=rng.choice(("easy", "ok", "ok", "hard")) if status in ("done", "partly") else "",
                    pain=max(0, min(10, pain)) if status in ("done", "partly") else None,
                    skip_reason=rng.choice(("pain", "no_time", "unwell")) if status == "skipped" else "",
                    step="closed",
                    answered_at=answered_at,
                    created_at=_at(day, slot, clinic.timezone),
                )
            )
            if answered_at is not None:
                last_answer = max(last_answer, answered_at)
        evening = _at(day, "19:00", clinic.timezone)
        if day.weekday() in (0, 2, 4) or (day - patient.surgery_date).days < 14:  # type: ignore[operator]
            pain = max(0, min(10, round(_between(*story.pain, share))))
            mood = max(1, min(5, round(_between(*story.mood, share))))
            for questionnaire_id, value in (("pain", pain), ("mood", mood)):
                [opened] = await checkin.start(session, patient, content, [questionnaire_id], evening, local_date=day)
                assert opened.id is not None
                answered_at = evening + timedelta(minutes=12)
                await checkin.answer(session, patient, content, clinic, opened.id, 0, value, answered_at)
                last_answer = max(last_answer, answered_at)
        await session.commit()
    patient.last_activity_at = last_answer
    session.add(patient)
    await session.commit()


async def _alert_this_morning(
    session: AsyncSession, content: Content, config: Config, alias: str, when: datetime
) -> None:
    """A pain entry of 8 (as /pain records it): the red-flag rules raise a critical alert to the therapist."""
    patient = (await session.exec(select(Patient).where(col(Patient.alias) == alias))).one()
    [opened] = await checkin.start(session, patient, content, ["pain"], when)
    assert opened.id is not None
    later = when + timedelta(seconds=20)
    result = await checkin.answer(session, patient, content, config.clinic, opened.id, 0, 8, later)
    assert result.findings, "a pain of 8 raises an alert (content/defaults/questionnaires.toml)"
    await session.commit()
