"""Recovery education: the day-by-day course of lessons, and what each patient learnt.

The lessons are clinic content (``lessons.toml``, see
:mod:`rehab_bot.content.lessons`); this module decides who gets which lesson
when, and keeps the record in ``lesson_progress``.

* **The plan** (:func:`course_plan`, pure): the lessons whose conditions match
  the patient (surgery type, programme, the programme phase on the lesson's
  day), each on its day after surgery. At most one lesson a day: a lesson
  whose day is taken moves to the next free day. Day 0 is the surgery date,
  else the day the patient consented (or was created).
* **Delivery** goes through the reminder engine: one daily ``lesson`` rule
  (:func:`schedule_for`) at the course's ``time``, else with the patient's
  first session (a minute after its reminder), so quiet hours, pause and stop apply as to every
  reminder. At send time :func:`due` names today's lesson, if any, and the
  earlier lessons that never went out (the days were paused, missed, or
  before enrolment). Those are *offered* once, in one line with one button,
  never sent one by one; /learn lists them too. :func:`record_sent` writes
  the record once the message is out.
* **Teach-back**: :func:`answer` stores an answer to a lesson's question;
  the explanation is shown after any answer and a wrong one may be tried
  again. Two or more wrong answers to a safety lesson are a *gap in
  understanding* the therapist sees in the caseload (:func:`gaps`); safety
  lessons out but never answered are listed in the weekly digest
  (:func:`unanswered_safety`).

Plain Python over SQLModel sessions: no telegram imports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.checkin import session_times
from rehab_bot.content import Content
from rehab_bot.content.lessons import Course, Lesson
from rehab_bot.i18n import N_, t
from rehab_bot.models import Kind, LessonProgress, Patient, ReminderRule
from rehab_bot.reminders import DueMessage, add_rule, reschedule_rule
from rehab_bot.schedule import local_date

log = logging.getLogger(__name__)

# Wrong answers to one safety lesson that make a gap in understanding.
GAP_WRONG_ANSWERS = 2
DEFAULT_TIME = time(9, 0)  # no course time and no session times at all
# With the first session, a minute after its reminder: the engine sends one
# window's messages concurrently, and the lesson belongs below the reminder.
AFTER_FIRST_SESSION = timedelta(minutes=1)


# --------------------------------------------------------------------------- the plan (pure)


@dataclass(frozen=True)
class Planned:
    """One lesson of a patient's course and the local date it is due."""

    lesson: Lesson
    on: date
    day: int  # days after day 0 on that date


def course_of(content: Content) -> Course:
    return content.course or Course()


def day_zero(patient: Patient) -> date:
    """Day 0 of the course: the surgery date, else the (local) day of consent or creation."""
    if patient.surgery_date is not None:
        return patient.surgery_date
    start = patient.consent_at or patient.created_at
    return local_date(patient, start)


def applies(lesson: Lesson, patient: Patient, content: Content, day: int) -> bool:
    """True when every condition the lesson sets matches the patient on that day after surgery."""
    if lesson.surgery_types and patient.surgery_type not in lesson.surgery_types:
        return False
    if lesson.programmes and patient.programme_id not in lesson.programmes:
        return False
    if lesson.phases:
        programme = content.programmes.get(patient.programme_id)
        phase = programme.phase_for(day) if programme is not None else None
        if phase is None or phase.id not in lesson.phases:
            return False
    return True


def course_plan(patient: Patient, content: Content) -> list[Planned]:
    """The patient's lessons in order, each on its own date (at most one a day)."""
    zero = day_zero(patient)
    plan: list[Planned] = []
    taken: date | None = None
    for lesson in course_of(content).lessons:  # sorted by day, then file order
        if not applies(lesson, patient, content, lesson.day):
            continue
        on = zero + timedelta(days=lesson.day)
        if taken is not None and on <= taken:
            on = taken + timedelta(days=1)
        taken = on
        plan.append(Planned(lesson, on, (on - zero).days))
    return plan


def lesson_of(content: Content, lesson_id: str) -> Lesson | None:
    return next((lesson for lesson in course_of(content).lessons if lesson.id == lesson_id), None)


def lesson_time(patient: Patient, content: Content, now: datetime) -> time:
    """When lessons are sent: the course's time, else with the patient's first session of the day.

    "With" is a minute after the session reminder, so the lesson arrives below it (never past 23:59).
    """
    course = course_of(content)
    if course.time is not None:
        return course.time
    day = (local_date(patient, now) - day_zero(patient)).days
    times = session_times(patient, content, day)
    if not times:
        return DEFAULT_TIME
    first = datetime.combine(date.min, min(times)) + AFTER_FIRST_SESSION
    return first.time() if first.date() == date.min else time(23, 59)


# --------------------------------------------------------------------------- the engine's rule


async def _lesson_rules(session: AsyncSession, patient: Patient) -> list[ReminderRule]:
    return list(
        (
            await session.exec(
                select(ReminderRule).where(
                    col(ReminderRule.patient_id) == patient.id,
                    col(ReminderRule.kind) == Kind.LESSON.value,
                    col(ReminderRule.active).is_(True),
                    col(ReminderRule.once).is_(False),
                )
            )
        ).all()
    )


async def schedule_for(session: AsyncSession, patient: Patient, content: Content, now: datetime) -> ReminderRule | None:
    """Create the patient's daily lesson rule, replacing any; None when no lesson of the course is left."""
    assert patient.id is not None
    for rule in await _lesson_rules(session, patient):
        rule.active = False
        rule.next_due_at = None
        rule.updated_at = now
        session.add(rule)
    if await _course_done(session, patient, content):
        return None  # every lesson went out or was offered; they stay in /learn
    # No end date: a pause that reaches past the last lesson's day still ends
    # with the missed lessons offered. The rule stops once every lesson of the
    # plan went out or was offered (record_sent).
    rule = add_rule(
        session,
        patient,
        kind=Kind.LESSON,
        local_time=lesson_time(patient, content, now).strftime("%H:%M"),
        now=now,
        start_date=local_date(patient, now),
    )
    await session.flush()
    log.info("patient %s: lesson rule scheduled", patient.id)
    return rule


async def retime(session: AsyncSession, patient: Patient, content: Content, now: datetime) -> int:
    """Move the lesson rule to follow new session times; returns how many rules moved."""
    wanted = lesson_time(patient, content, now).strftime("%H:%M")
    moved = 0
    for rule in await _lesson_rules(session, patient):
        if rule.local_time != wanted:
            rule.local_time = wanted
            reschedule_rule(session, rule, patient.timezone, now)
            moved += 1
    return moved


# --------------------------------------------------------------------------- at send time


@dataclass(frozen=True)
class Due:
    """What a lesson reminder brings: today's lesson and the earlier ones to offer."""

    lesson: Lesson | None
    missed: tuple[Lesson, ...] = ()

    @property
    def empty(self) -> bool:
        return self.lesson is None and not self.missed


async def progress_of(session: AsyncSession, patient_id: int) -> dict[str, LessonProgress]:
    rows = (await session.exec(select(LessonProgress).where(col(LessonProgress.patient_id) == patient_id))).all()
    return {row.lesson_id: row for row in rows}


async def due(session: AsyncSession, patient: Patient, content: Content, local_date: date) -> Due:
    """Today's lesson (if not out yet) and earlier lessons neither sent nor offered (read only)."""
    assert patient.id is not None
    known = await progress_of(session, patient.id)
    today: Lesson | None = None
    missed: list[Lesson] = []
    for planned in course_plan(patient, content):
        if planned.on > local_date:
            break
        if planned.lesson.id in known:
            continue
        if planned.on == local_date:
            today = planned.lesson
        else:
            missed.append(planned.lesson)
    return Due(today, tuple(missed))


async def due_for_delivery(session: AsyncSession, content: Content, message: DueMessage) -> Due | None:
    """What a due lesson delivery brings (:func:`due`, read only); None when the patient is gone or nothing is due.

    What was sent is recorded after the send (:func:`record_sent`, with the message id).
    """
    if message.patient_id is None or message.local_date is None:
        return None
    patient = await session.get(Patient, message.patient_id)
    if patient is None:
        return None
    found = await due(session, patient, content, message.local_date)
    return None if found.empty else found


async def _course_done(session: AsyncSession, patient: Patient, content: Content) -> bool:
    """True when the patient has no course, or every planned lesson went out or was offered."""
    assert patient.id is not None
    known = await progress_of(session, patient.id)
    return all(planned.lesson.id in known for planned in course_plan(patient, content))


async def record_sent(
    session: AsyncSession,
    patient_id: int,
    lesson_id: str | None,
    missed: list[str],
    content: Content,
    *,
    local_date: date | None,
    delivery_id: int | None,
    message_id: int | None,
    now: datetime,
) -> None:
    """The lesson message went out: today's lesson is delivered, the missed ones are offered."""
    known = await progress_of(session, patient_id)
    items = ([(lesson_id, True)] if lesson_id else []) + [(lid, False) for lid in missed]
    for lid, delivered in items:
        lesson = lesson_of(content, lid)
        row = known.get(lid)
        if row is None:
            row = LessonProgress(patient_id=patient_id, lesson_id=lid, safety=bool(lesson and lesson.safety))
        if delivered:
            row.delivered_at = row.delivered_at or now
            row.delivery_id = delivery_id
            row.message_id = message_id
        else:
            row.offered_at = row.offered_at or now
        row.local_date = row.local_date or local_date
        session.add(row)
    await session.flush()
    patient = await session.get(Patient, patient_id)
    if patient is not None and await _course_done(session, patient, content):
        for rule in await _lesson_rules(session, patient):
            rule.active = False
            rule.next_due_at = None
            rule.updated_at = now
            session.add(rule)
        log.info("patient %s: every lesson of the course went out; lesson rule ended", patient_id)


# --------------------------------------------------------------------------- the patient reads and answers


@dataclass(frozen=True)
class Entry:
    """One lesson of the course as the patient sees it in /learn."""

    planned: Planned
    progress: LessonProgress | None

    @property
    def lesson(self) -> Lesson:
        return self.planned.lesson


@dataclass(frozen=True)
class Overview:
    """/learn: the lessons so far (with their record) and the next one."""

    so_far: list[Entry]
    next: Planned | None


async def overview(session: AsyncSession, patient: Patient, content: Content, now: datetime) -> Overview:
    assert patient.id is not None
    known = await progress_of(session, patient.id)
    today = local_date(patient, now)
    so_far: list[Entry] = []
    upcoming: Planned | None = None
    for planned in course_plan(patient, content):
        if planned.on <= today or planned.lesson.id in known:
            so_far.append(Entry(planned, known.get(planned.lesson.id)))
        elif upcoming is None:
            upcoming = planned
    return Overview(so_far, upcoming)


async def available(
    session: AsyncSession, patient: Patient, content: Content, lesson_id: str, now: datetime
) -> Lesson | None:
    """The lesson, if it is in this patient's course and its day has come (else None: never trust a button)."""
    assert patient.id is not None
    today = local_date(patient, now)
    for planned in course_plan(patient, content):
        if planned.lesson.id == lesson_id:
            if planned.on <= today:
                return planned.lesson
            known = await progress_of(session, patient.id)
            return planned.lesson if lesson_id in known else None
    return None


async def _row(session: AsyncSession, patient: Patient, lesson: Lesson, now: datetime) -> LessonProgress:
    assert patient.id is not None
    row = (
        await session.exec(
            select(LessonProgress).where(
                col(LessonProgress.patient_id) == patient.id, col(LessonProgress.lesson_id) == lesson.id
            )
        )
    ).first()
    if row is None:
        row = LessonProgress(
            patient_id=patient.id,
            lesson_id=lesson.id,
            safety=lesson.safety,
            offered_at=now,
            local_date=local_date(patient, now),
        )
        session.add(row)
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError:  # a concurrent press created it
            return await _row(session, patient, lesson, now)
    return row


async def open_lesson(
    session: AsyncSession, patient: Patient, content: Content, lesson_id: str, now: datetime
) -> tuple[Lesson, LessonProgress] | None:
    """The patient opens (rereads) a lesson: recorded as read. None when it is not theirs to open."""
    lesson = await available(session, patient, content, lesson_id, now)
    if lesson is None:
        return None
    row = await _row(session, patient, lesson, now)
    row.opened_at = row.opened_at or now
    session.add(row)
    return lesson, row


@dataclass(frozen=True)
class Answered:
    lesson: Lesson
    correct: bool
    progress: LessonProgress
    gap: bool  # this answer made a gap in understanding (a safety lesson's second wrong answer)


async def answer(
    session: AsyncSession, patient: Patient, content: Content, lesson_id: str, index: int, now: datetime
) -> Answered | None:
    """Store one answer to a lesson's teach-back question; None when the press is not valid."""
    lesson = await available(session, patient, content, lesson_id, now)
    if lesson is None or lesson.question is None or not 0 <= index < len(lesson.question.answers):
        return None
    row = await _row(session, patient, lesson, now)
    correct = lesson.question.answers[index].correct
    if row.first_answer is None:
        row.first_answer = index
    row.last_answer = index
    row.answered_at = now
    gap = False
    if correct:
        row.understood = True
    else:
        row.wrong_answers += 1
        gap = lesson.safety and row.wrong_answers == GAP_WRONG_ANSWERS
    session.add(row)
    if gap:
        log.info("patient %s: gap in understanding of a safety lesson", patient.id)
    return Answered(lesson, correct, row, gap)


# --------------------------------------------------------------------------- for staff


def is_gap(row: LessonProgress) -> bool:
    return row.safety and row.wrong_answers >= GAP_WRONG_ANSWERS


async def gaps(session: AsyncSession, patient_id: int) -> list[str]:
    """Safety lessons the patient answered wrongly twice or more (a gap in understanding)."""
    rows = (
        await session.exec(
            select(LessonProgress.lesson_id)
            .where(
                col(LessonProgress.patient_id) == patient_id,
                col(LessonProgress.safety).is_(True),
                col(LessonProgress.wrong_answers) >= GAP_WRONG_ANSWERS,
            )
            .order_by(col(LessonProgress.id))
        )
    ).all()
    return list(rows)


async def unanswered_safety(session: AsyncSession, patient_id: int, content: Content | None = None) -> list[str]:
    """Safety lessons out (sent or offered) whose question the patient never answered."""
    rows = (
        await session.exec(
            select(LessonProgress.lesson_id)
            .where(
                col(LessonProgress.patient_id) == patient_id,
                col(LessonProgress.safety).is_(True),
                col(LessonProgress.answered_at).is_(None),
            )
            .order_by(col(LessonProgress.id))
        )
    ).all()
    if content is None:
        return list(rows)
    return [lid for lid in rows if (lesson := lesson_of(content, lid)) is None or lesson.question is not None]


@dataclass(frozen=True)
class Summary:
    """What the patient detail shows of the course."""

    delivered: int
    offered: int
    read: int
    understood: int
    questions: int  # lessons out that have a question
    gaps: list[str]
    unanswered_safety: list[str]
    lines: list[str]


# A lesson's state in the patient detail's course lines (msgids; summary says them in the reader's language).
LESSON_DELIVERED = N_("delivered")
LESSON_OFFERED = N_("offered")
LESSON_READ = N_("read")
LESSON_UNDERSTOOD = N_("understood")
LESSON_NOT_UNDERSTOOD = N_("not understood")
LESSON_WRONG = N_("({n} wrong)")


async def summary(session: AsyncSession, patient: Patient, content: Content | None, lang: str = "en") -> Summary:
    """The course as the patient detail shows it; the lines' words in lang (the reader's)."""
    assert patient.id is not None
    rows = sorted(
        (await progress_of(session, patient.id)).values(), key=lambda r: (r.local_date or date.min, r.id or 0)
    )
    lines = []
    questions = 0
    for row in rows:
        lesson = lesson_of(content, row.lesson_id) if content is not None else None
        has_question = lesson is not None and lesson.question is not None
        questions += has_question
        words = [LESSON_DELIVERED if row.delivered_at else LESSON_OFFERED]
        if row.opened_at or row.answered_at:
            words.append(LESSON_READ)
        if row.understood:
            words.append(LESSON_UNDERSTOOD)
        elif has_question and row.answered_at:
            words.append(LESSON_NOT_UNDERSTOOD)
        state = ", ".join(t(lang, word) for word in words)
        if row.wrong_answers:
            state += " " + t(lang, LESSON_WRONG, n=row.wrong_answers)
        mark = "⚠️ " if is_gap(row) else ""
        lines.append(f"{mark}{row.lesson_id}: {state}")
    return Summary(
        delivered=sum(1 for r in rows if r.delivered_at),
        offered=sum(1 for r in rows if not r.delivered_at),
        read=sum(1 for r in rows if r.opened_at or r.answered_at),
        understood=sum(1 for r in rows if r.understood),
        questions=questions,
        gaps=[r.lesson_id for r in rows if is_gap(r)],
        unanswered_safety=await unanswered_safety(session, patient.id, content),
        lines=lines,
    )


def export_row(row: LessonProgress) -> dict[str, Any]:
    """One lesson_progress row for the CSV export."""
    return {
        "lesson_id": row.lesson_id,
        "safety": row.safety,
        "local_date": row.local_date,
        "delivered_at": row.delivered_at,
        "offered_at": row.offered_at,
        "opened_at": row.opened_at,
        "first_answer": row.first_answer,
        "last_answer": row.last_answer,
        "wrong_answers": row.wrong_answers,
        "understood": row.understood,
        "answered_at": row.answered_at,
    }
