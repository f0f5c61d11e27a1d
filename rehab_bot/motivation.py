"""Motivational messages: rules over the content library (core, no telegram).

The daily ``motivation`` reminder rule (created by
:func:`rehab_bot.checkin.schedule_for`) fires every evening; at send time
:func:`choose` looks at the patient's facts and picks at most one message, or
nothing. The rules, in order of precedence (the first that applies wins):

0. Milestones, sent with a message effect (``Choice.milestone``):
   ``first_full_week`` (a streak of 7 days, SessionStats.streak_days; once per patient),
   ``phase_change`` (the first 2 days of a programme phase after the first;
   once per phase) and ``pain_halved`` (the last 7 days' average pain at most
   half the first week's, which was 2 or more; both with 3 or more entries,
   14 or more days after the first entry; once per patient).
1. ``welcome``: nothing was ever sent, and the patient enrolled within 7 days.
2. ``comeback``: a session was done today after 2 or more days without one.
3. ``first_session``: the first session was done in the last 2 days (once per patient).
4. ``streak``: the streak (SessionStats.streak_days) reached a length a
   message has (3, 7, 14, 30): the longest one reached, once per streak run
   (the run starts on SessionStats.streak_since, so a grace day inside it,
   which the streak bridges without counting, does not start a new run).
   Neither this nor ``first_full_week`` in a maintenance phase (weekly sessions).
5. ``milestone``: 2, 4, 6 or 12 weeks since surgery (in the week after the
   date; once per milestone).
6. ``pain_improved``: the average pain of the last 7 days is at least 1 point
   below the patient's first week (the 7 days from their first pain entry), both
   with at least 3 entries, 14 or more days after the first entry; at most once
   in 14 days. The message states both numbers.
7. ``weekly_summary``: 7 days since the last one (or since enrolment).

Limits, whatever the rules say: at most one motivational message a day, none on
a day with a red flag (redflag.RED_FLAG_KINDS), none that states pain, mood or the
programme phase when the chat must carry no health data (``health_data=False``), and never the same message
(id) to the same patient within 14 days. Among a trigger's messages the
never-sent or least recently sent wins, then content order; a message whose
{placeholders} cannot all be filled that day is left out. Each choice is
recorded in ``motivation_log`` (message id, local date).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from statistics import fmean

from babel.numbers import format_decimal, format_percent
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import programme as programmes
from rehab_bot import redflag
from rehab_bot import session as sessions
from rehab_bot.content import Content, Programme, localize
from rehab_bot.content.checkins import HEALTH_PLACEHOLDERS, MILESTONE_TRIGGERS, Message
from rehab_bot.models import CheckIn, ExerciseSession, MotivationLog, Patient
from rehab_bot.reminders import DueMessage
from rehab_bot.schedule import local_date

log = logging.getLogger(__name__)

NO_REPEAT_DAYS = 14
WELCOME_WITHIN_DAYS = 7
COMEBACK_AFTER_MISSED = 2
FIRST_SESSION_WITHIN_DAYS = 2
PAIN_MIN_DROP = 1.0
PAIN_MIN_ENTRIES = 3
PAIN_EVERY_DAYS = 14
WEEKLY_EVERY_DAYS = 7
DONE = ("done", "partly")


@dataclass(frozen=True)
class Facts:
    """What the rules look at, for one patient on one local day."""

    today: date
    days_enrolled: int | None = None
    days_since_surgery: int | None = None
    streak_days: int = 0
    streak_since: date | None = None  # the streak run's first day (grace days make it longer than streak_days)
    done_total: int = 0
    days_since_first_done: int | None = None  # days since the first session done or partly
    done_today: bool = False
    missed_before_today: int = 0  # days without a session before today's (0 = none missed)
    red_flag_today: bool = False
    first_week_pain: float | None = None
    recent_pain: float | None = None
    pain_days_known: int = 0  # days since the first pain entry
    week_done: int = 0
    week_planned: int = 0
    week_pain: float | None = None
    week_mood: float | None = None
    clinic: str = ""
    phase_title: str = ""  # the programme phase today, in the patient's language
    days_in_phase: int | None = None  # None: no phase, or the programme's first phase
    maintenance: bool = False  # after the programme's end: weekly sessions, so no streak messages


@dataclass(frozen=True)
class Sent:
    message_id: str
    local_date: date


@dataclass(frozen=True)
class Choice:
    message: Message
    values: dict[str, object] = field(default_factory=dict)

    def render(self, lang: str) -> str:
        return self.message.render(lang, **self.values)

    @property
    def milestone(self) -> bool:
        """A milestone: the chat shows it with a message effect."""
        return self.message.trigger in MILESTONE_TRIGGERS


PHASE_CHANGE_WITHIN_DAYS = 2
PAIN_HALVED_MIN_BASELINE = 2.0


def encouragement(content: Content, lang: str, seed: int) -> str:
    """The line of encouragement closing a session reminder: the ``reminder`` messages in turn ("" if none)."""
    lines = [m for m in content.messages.values() if m.trigger == "reminder"]
    if not lines:
        return ""
    return lines[seed % len(lines)].render(lang, clinic="").strip()


def _fmt(lang: str, value: float) -> str:
    return format_decimal(round(value, 1), format="0.0", locale=lang)


def _values(trigger: str, facts: Facts, lang: str, param: int | None) -> dict[str, object]:
    """Placeholder values a trigger offers today (missing keys: no value)."""
    values: dict[str, object] = {"clinic": facts.clinic}
    if trigger == "streak" and param is not None:
        values["days"] = param
    elif trigger == "milestone" and param is not None:
        values["weeks"] = param
    elif trigger == "comeback":
        values["missed"] = facts.missed_before_today
    elif trigger == "phase_change" and facts.phase_title:
        values["phase"] = facts.phase_title
    elif (
        trigger in ("pain_improved", "pain_halved")
        and facts.first_week_pain is not None
        and facts.recent_pain is not None
    ):
        values["before"] = _fmt(lang, facts.first_week_pain)
        values["now"] = _fmt(lang, facts.recent_pain)
    elif trigger == "weekly_summary" and facts.week_planned:
        values["done"] = facts.week_done
        values["planned"] = facts.week_planned
        values["adherence"] = format_percent(facts.week_done / facts.week_planned, locale=lang)
        if facts.week_pain is not None:
            values["pain"] = _fmt(lang, facts.week_pain)
        if facts.week_mood is not None:
            values["mood"] = _fmt(lang, facts.week_mood)
    return values


def _events(facts: Facts, content: Content, history: Sequence[Sent]) -> list[tuple[str, int | None]]:
    """The (trigger, parameter) events that apply today, most important first."""
    ids_by_event: dict[tuple[str, int | None], set[str]] = {}
    for message in content.messages.values():
        ids_by_event.setdefault((message.trigger, message.param), set()).add(message.id)

    def sent_since(trigger: str, param: int | None, since: date | None) -> bool:
        ids = ids_by_event.get((trigger, param), set())
        return any(s.message_id in ids and (since is None or s.local_date >= since) for s in history)

    def trigger_sent_since(trigger: str, since: date | None) -> bool:
        return any(sent_since(t, p, since) for (t, p) in ids_by_event if t == trigger)

    events: list[tuple[str, int | None]] = []
    if facts.maintenance:
        facts = replace(facts, streak_days=0)  # weekly sessions: "days in a row" would not be true
    if facts.streak_days >= 7 and not trigger_sent_since("first_full_week", None):
        events.append(("first_full_week", None))
    if facts.days_in_phase is not None and facts.days_in_phase < PHASE_CHANGE_WITHIN_DAYS:
        if not trigger_sent_since("phase_change", facts.today - timedelta(days=facts.days_in_phase)):
            events.append(("phase_change", None))
    if (
        facts.first_week_pain is not None
        and facts.recent_pain is not None
        and facts.pain_days_known >= 14
        and facts.first_week_pain >= PAIN_HALVED_MIN_BASELINE
        and facts.recent_pain <= facts.first_week_pain / 2
        and not trigger_sent_since("pain_halved", None)
    ):
        events.append(("pain_halved", None))
    if not history and facts.days_enrolled is not None and facts.days_enrolled <= WELCOME_WITHIN_DAYS:
        events.append(("welcome", None))
    if facts.done_today and facts.missed_before_today >= COMEBACK_AFTER_MISSED and facts.done_total > 1:
        events.append(("comeback", None))
    first_recent = facts.days_since_first_done is not None and facts.days_since_first_done <= FIRST_SESSION_WITHIN_DAYS
    if first_recent and not trigger_sent_since("first_session", None):
        events.append(("first_session", None))
    lengths = sorted((p for (t, p) in ids_by_event if t == "streak" and p is not None), reverse=True)
    reached = next((n for n in lengths if facts.streak_days >= n), None)
    if reached is not None:
        streak_start = facts.streak_since or facts.today - timedelta(days=facts.streak_days - 1)
        # The first full week's milestone stands for this run's 7 days.
        milestone_run = reached <= 7 and trigger_sent_since("first_full_week", streak_start)
        if not sent_since("streak", reached, streak_start) and not milestone_run:
            events.append(("streak", reached))
    if facts.days_since_surgery is not None:
        for t, weeks in sorted(ids_by_event, key=lambda e: (e[0], e[1] or 0)):
            if t != "milestone" or weeks is None:
                continue
            if 7 * weeks <= facts.days_since_surgery < 7 * weeks + 7 and not sent_since("milestone", weeks, None):
                events.append(("milestone", weeks))
    if (
        facts.first_week_pain is not None
        and facts.recent_pain is not None
        and facts.pain_days_known >= 14
        and facts.recent_pain <= facts.first_week_pain - PAIN_MIN_DROP
        and not trigger_sent_since("pain_improved", facts.today - timedelta(days=PAIN_EVERY_DAYS - 1))
    ):
        events.append(("pain_improved", None))
    weekly_due = not trigger_sent_since("weekly_summary", facts.today - timedelta(days=WEEKLY_EVERY_DAYS - 1))
    if weekly_due and facts.days_enrolled is not None and facts.days_enrolled >= WEEKLY_EVERY_DAYS:
        events.append(("weekly_summary", None))
    return events


def select_message(
    facts: Facts, content: Content, history: Sequence[Sent], lang: str, *, health_data: bool = True
) -> Choice | None:
    """The one message for today, or None (pure: the rules and limits above).

    health_data=False leaves out every message that would state pain, mood or the phase.
    """
    if facts.red_flag_today:
        return None
    if any(s.local_date == facts.today for s in history):
        return None  # at most one a day
    recent = {s.message_id for s in history if s.local_date > facts.today - timedelta(days=NO_REPEAT_DAYS)}
    last_sent: dict[str, date] = {}
    for s in history:
        if s.message_id not in last_sent or s.local_date > last_sent[s.message_id]:
            last_sent[s.message_id] = s.local_date
    order = {message_id: n for n, message_id in enumerate(content.messages)}
    for trigger, param in _events(facts, content, history):
        values = _values(trigger, facts, lang, param)
        candidates = [
            m
            for m in content.messages.values()
            if m.trigger == trigger
            and m.param == param
            and m.id not in recent
            and m.placeholders <= values.keys()
            and (health_data or not m.placeholders & HEALTH_PLACEHOLDERS)
        ]
        if candidates:
            best = min(candidates, key=lambda m: (last_sent.get(m.id, date.min), order[m.id]))
            return Choice(best, {k: v for k, v in values.items() if k in best.placeholders})
    return None


# --------------------------------------------------------------------------- facts from the database


async def _daily_scores(session: AsyncSession, patient: Patient, questionnaire_id: str) -> list[tuple[date, float]]:
    rows = await session.exec(
        select(CheckIn).where(
            CheckIn.patient_id == patient.id,
            CheckIn.questionnaire_id == questionnaire_id,
            CheckIn.status == "complete",
            col(CheckIn.score).is_not(None),
        )
    )
    result = []
    for checkin in rows.all():
        assert checkin.score is not None
        day = checkin.local_date or local_date(patient, checkin.completed_at or checkin.started_at)
        result.append((day, float(checkin.score)))
    return result


def _mean_between(scores: Sequence[tuple[date, float]], first: date, last: date) -> tuple[float | None, int]:
    chosen = [s for d, s in scores if first <= d <= last]
    return (fmean(chosen) if chosen else None), len(chosen)


async def gather_facts(
    session: AsyncSession,
    patient: Patient,
    now: datetime,
    *,
    clinic: str = "",
    stats: sessions.SessionStats | None = None,
    content: Content | None = None,
) -> Facts:
    """Everything select_message needs, from the database (and session.stats; the phase from content)."""
    today = local_date(patient, now)
    enrolled_at = patient.consent_at or patient.created_at
    if stats is None:
        stats = await sessions.stats(session, patient, now)
    sessions_rows = (
        await session.exec(
            select(ExerciseSession).where(ExerciseSession.patient_id == patient.id, ExerciseSession.local_date <= today)
        )
    ).all()
    rows = [(s.local_date, s.status) for s in sessions_rows]
    done_days = sorted({d for d, status in rows if status in DONE})
    done_total = sum(1 for _, status in rows if status in DONE)
    done_today = bool(done_days) and done_days[-1] == today
    missed = 0
    if done_today and len(done_days) >= 2:
        missed = (today - done_days[-2]).days - 1
    week_start = today - timedelta(days=6)
    week_rows = [status for d, status in rows if week_start <= d <= today]
    pain = await _daily_scores(session, patient, "pain")
    mood = await _daily_scores(session, patient, "mood")
    first_week = recent = None
    known = 0
    if pain:
        first_day = min(d for d, _ in pain)
        known = (today - first_day).days
        first_week, first_n = _mean_between(pain, first_day, first_day + timedelta(days=6))
        recent, recent_n = _mean_between(pain, week_start, today)
        if first_n < PAIN_MIN_ENTRIES or recent_n < PAIN_MIN_ENTRIES:
            first_week = recent = None
    followed = await programmes.programme_for(session, content, patient) if content is not None else None
    phase_title, days_in_phase = _phase_facts(patient, followed, today)
    current = programmes.phase_in(followed, patient, today)
    return Facts(
        today=today,
        days_enrolled=(today - local_date(patient, enrolled_at)).days if enrolled_at is not None else None,
        days_since_surgery=(today - patient.surgery_date).days if patient.surgery_date is not None else None,
        streak_days=stats.streak_days,
        streak_since=stats.streak_since,
        done_total=max(done_total, stats.done_total),
        days_since_first_done=(today - done_days[0]).days if done_days else None,
        done_today=done_today,
        missed_before_today=missed,
        red_flag_today=await redflag.red_flag_on(session, patient, today),
        first_week_pain=first_week,
        recent_pain=recent,
        pain_days_known=known,
        week_done=sum(1 for s in week_rows if s in DONE),
        week_planned=len(week_rows),
        week_pain=_mean_between(pain, week_start, today)[0],
        week_mood=_mean_between(mood, week_start, today)[0],
        clinic=clinic,
        phase_title=phase_title,
        days_in_phase=days_in_phase,
        maintenance=current is not None and current.every_n_days is not None,
    )


def _phase_facts(patient: Patient, programme: Programme | None, today: date) -> tuple[str, int | None]:
    """The phase's title and how many days the patient has been in it (None in the programme's first phase).

    programme: the one the patient follows (their own plan, else their content programme).
    """
    if programme is None or patient.surgery_date is None:
        return "", None
    phase = programmes.phase_in(programme, patient, today)
    if phase is None:
        return "", None
    first = min(p.from_day for p in programme.phases)
    days_in = (today - patient.surgery_date).days - phase.from_day
    return localize(phase.title, patient.language), None if phase.from_day == first else days_in


async def history(session: AsyncSession, patient: Patient) -> list[Sent]:
    """Motivational messages sent to the patient (the log)."""
    rows = await session.exec(select(MotivationLog).where(MotivationLog.patient_id == patient.id))
    return [Sent(row.message_key, row.local_date) for row in rows.all()]


async def choose(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    now: datetime,
    *,
    clinic: str = "",
    stats: sessions.SessionStats | None = None,
    retry_of: datetime | None = None,
    health_data: bool = True,
) -> Choice | None:
    """Pick today's message and record it in the log; None when nothing applies.

    retry_of: the due time of a delivery being sent again after an error; the
    message logged for it at or after that time is sent again, not a new one.
    """
    assert patient.id is not None
    facts = await gather_facts(session, patient, now, clinic=clinic, stats=stats, content=content)
    sent = await history(session, patient)
    if retry_of is not None:
        logged = (
            await session.exec(
                select(MotivationLog).where(
                    MotivationLog.patient_id == patient.id,
                    MotivationLog.local_date == facts.today,
                    col(MotivationLog.sent_at) >= retry_of,
                )
            )
        ).first()
        if logged is not None and logged.message_key in content.messages:
            message = content.messages[logged.message_key]
            values = _values(message.trigger, facts, patient.language, message.param)
            if message.placeholders <= values.keys():
                return Choice(message, {k: v for k, v in values.items() if k in message.placeholders})
    choice = select_message(facts, content, sent, patient.language, health_data=health_data)
    if choice is None:
        return None
    session.add(
        MotivationLog(patient_id=patient.id, message_key=choice.message.id, local_date=facts.today, sent_at=now)
    )
    await session.flush()
    log.info("motivation %s for patient %s", choice.message.id, patient.id)
    return choice


async def choose_for_delivery(
    session: AsyncSession,
    content: Content,
    message: DueMessage,
    now: datetime,
    *,
    clinic: str = "",
    health_data: bool = True,
) -> tuple[Patient, Choice] | None:
    """Before a motivation delivery is sent: pick today's message and log it (:func:`choose`); commits.

    A retried send (attempts > 1) gets the message logged for it, not a new
    one. None when the patient is gone or no message applies.
    """
    if message.patient_id is None:
        return None
    patient = await session.get(Patient, message.patient_id)
    if patient is None:
        return None
    choice = await choose(
        session,
        patient,
        content,
        now,
        clinic=clinic,
        retry_of=message.due_at if message.attempts > 1 else None,
        health_data=health_data,
    )
    await session.commit()
    return (patient, choice) if choice is not None else None
