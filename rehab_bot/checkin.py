"""Check-ins: questionnaires as content, answers, scoring and cadence (core, no telegram).

A check-in is one questionnaire from content (``questionnaires.toml``) put to
one patient, asked one item at a time with buttons. Every answer is stored the
moment it is given, so a check-in left half-done keeps what it has; it closes
(``expired``) ``expires_hours`` after it was due.

How it is stored (the clinician tools and exports read these rows)
-----------------------------------------------------------------

* ``checkin``: one row per questionnaire put to a patient.
  ``questionnaire_id`` is the content id ("pain", "mood", "symptoms",
  "phq2", "gad2", or a clinic's own such as "odi"); ``status`` is ``open``,
  ``complete`` or ``expired``; ``delivery_id`` is the scheduled delivery that
  asked it, NULL for one the patient started (``/pain``, ``/checkin``);
  ``local_date`` is the patient's local date it belongs to; ``started_at``,
  ``expires_at``, ``completed_at`` are UTC.
  ``score`` follows the questionnaire's ``scoring``: ``value`` = the answer
  itself (pain NRS 0-10, mood 1-5); ``sum`` = the item total (PHQ-2 and GAD-2
  0-6); ``percent`` = sum / (highest option x answered items) x 100 (ODI, NDI:
  0-100, skipped items left out as the ODI does); ``count`` = scored items
  answered above 0 (the symptom check: how many warning signs were reported).
  ``score`` is NULL when too few items were answered (``min_answered``, by
  default all scored items) or the scoring is ``none``. An expired check-in
  is scored from what it has, when that is enough.
* ``answer``: one row per item answered: ``item_id`` is the content item id,
  ``value`` the chosen option's value (= its item score). A skipped optional
  item is stored with ``value`` NULL and ``text`` "skipped". Items never
  reached have no row: after "none of these" in the symptom check (which is
  its own answer, item "any" = 0), after an emergency answer (which ends the
  check-in so the patient can act), or when the check-in expired.
* ``alert`` (see :mod:`rehab_bot.redflag`): kind ``red_flag`` for a flagged
  answer, ``checkin`` for a score rule, ``crisis`` for a crisis phrase,
  ``inactive`` for no response; ``severity`` low | high | critical |
  emergency; ``detail`` names the answers, in English, and ``detail_parts``
  the same in parts each staff member reads in their own language
  (:mod:`rehab_bot.alert_detail`).
* ``note``: free text the patient saved for the therapist; ``crisis`` is true
  when it matched a crisis phrase.

LOINC codes for panels, items, totals and answers are in the content
(``Questionnaire.loinc``/``score_loinc``, ``Item.loinc``, ``Option.loinc``).

When check-ins are sent
-----------------------

:func:`schedule_for` turns each questionnaire's cadence (days after surgery,
``Patient.surgery_date``; day 0 = the day of surgery, or the day of
enrolment when no surgery date is known) into ReminderRules of kind
``checkin``; questionnaires with the same days share one rule, whose payload
``{"questionnaires": ["pain", "mood", "symptoms"]}`` names them, and are asked
one after another in one message. A programme can have its own cadence for a
questionnaire (``[[cadence]]`` in questionnaires.toml). All check-ins go out
at one time a day, :func:`checkin_time`: an hour after the patient's last
session time (their own times, else their programme phase's default times),
kept between 17:00 and 20:30, or 19:00 without session times; the clinic
sets these in ``[checkin_time]``. One daily ``motivation`` rule follows
30 minutes later (motivation.py decides at send time whether anything applies).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import redflag, schedule
from rehab_bot.config import ClinicConfig
from rehab_bot.content import Content, Programme
from rehab_bot.content.checkins import CheckinTime, Item, Option, Questionnaire
from rehab_bot.i18n import N_
from rehab_bot.models import Answer, CheckIn, Kind, Patient, ReminderRule
from rehab_bot.reminders import DueMessage, add_rule, reschedule_rule
from rehab_bot.schedule import format_days, local_date, minutes_of_day
from rehab_bot.typed import number, plain

log = logging.getLogger(__name__)

OPEN, COMPLETE, EXPIRED = "open", "complete", "expired"
SKIPPED = "skipped"
# The questionnaires a patient gets from /checkin when none is open.
ON_DEMAND_SET = ("pain", "mood")


def on_demand_for(patient: Patient, content: Content) -> list[Questionnaire]:
    """The questionnaires the patient may start any time from /checkin.

    Every ``on_demand`` questionnaire (the mood screens PHQ-2 and GAD-2
    included), unless the patient's programme switches it off with a
    ``[[cadence]]`` of ``steps = []``.
    """
    return [
        q
        for q in content.questionnaires.values()
        if q.on_demand and content.programme_cadences.get((patient.programme_id, q.id)) != []
    ]


# --------------------------------------------------------------------------- scoring


def next_item(questionnaire: Questionnaire, answers: dict[str, Answer]) -> Item | None:
    """The first item not yet answered, or None when the questionnaire is done.

    A follow-up question (``when``) is passed over unless the answers it
    depends on call for it.
    """
    values = {item_id: answer.value for item_id, answer in answers.items()}
    for item in questionnaire.items:
        answer = answers.get(item.id)
        if answer is None:
            if not item.asked_after(values):
                continue
            return item
        option = item.option(answer.value) if answer.value is not None else None
        if option is not None and option.ends:
            return None
    return None


def score(questionnaire: Questionnaire, values: dict[str, int | None]) -> float | None:
    """The questionnaire's score from item values (None = skipped or missing), or None."""
    scored = questionnaire.scored_items
    answered = [(item, values[item.id]) for item in scored if values.get(item.id) is not None]
    method = questionnaire.scoring
    if method == "none":
        return None
    if method == "value":
        first = answered[0][1] if answered else None
        return None if first is None else float(first)
    needed = questionnaire.min_answered if questionnaire.min_answered is not None else len(scored)
    if method == "count":
        # "None of these" at a gate item answers every item with no.
        if not answered and _ended_early(questionnaire, values):
            return 0.0
        if len(answered) < needed:
            return None
        return float(sum(1 for _, v in answered if v))
    if len(answered) < needed:
        return None
    total = sum(v for _, v in answered if v is not None)
    if method == "sum":
        return float(total)
    if method == "mean":  # the PSFS: the mean of the items answered
        return round(total / len(answered), 1)
    # percent: the ODI rule, sum / (max per item x items answered) x 100
    maximum = sum(item.max_value for item, _ in answered)
    return round(total / maximum * 100, 1)


def _ended_early(questionnaire: Questionnaire, values: dict[str, int | None]) -> bool:
    for item in questionnaire.items:
        value = values.get(item.id)
        option = item.option(value) if value is not None else None
        if option is not None and option.ends:
            return True
    return False


# --------------------------------------------------------------------------- starting and answering


@dataclass(frozen=True)
class Step:
    """What to ask next: an item of one check-in, within a set asked together."""

    checkin: CheckIn
    questionnaire: Questionnaire
    item: Item
    index: int  # the item's index in questionnaire.items (goes into callback data)
    set_position: int  # 1-based: which questionnaire of the set
    set_size: int
    first_of_questionnaire: bool


async def start(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    questionnaire_ids: Sequence[str],
    now: datetime,
    *,
    delivery_id: int | None = None,
    local_date: date | None = None,
    due_at: datetime | None = None,
) -> list[CheckIn]:
    """Open one check-in per questionnaire (reusing those of the same delivery).

    Rendering a delivery may run twice (a retry after a network error), so a
    delivery's check-ins are created once. Older open check-ins of the same
    questionnaires are closed: a new one supersedes them.
    """
    assert patient.id is not None
    if delivery_id is not None:
        existing = await checkins_of_delivery(session, delivery_id)
        if existing:
            return existing
    day = local_date or schedule.local_date(patient, now)
    base = due_at or now
    wanted = [qid for qid in questionnaire_ids if qid in content.questionnaires]
    if not wanted:
        return []
    stale = (
        await session.exec(
            select(CheckIn).where(
                CheckIn.patient_id == patient.id,
                CheckIn.status == OPEN,
                col(CheckIn.questionnaire_id).in_(wanted),
            )
        )
    ).all()
    for old in stale:
        await _close(session, old, content, EXPIRED, now)
    created = []
    for qid in wanted:
        questionnaire = content.questionnaires[qid]
        checkin = CheckIn(
            patient_id=patient.id,
            questionnaire_id=qid,
            status=OPEN,
            delivery_id=delivery_id,
            started_at=now,
            expires_at=base + timedelta(hours=questionnaire.expires_hours),
            local_date=day,
        )
        session.add(checkin)
        created.append(checkin)
    await session.flush()
    return created


async def checkins_of_delivery(session: AsyncSession, delivery_id: int) -> list[CheckIn]:
    """The check-ins a scheduled delivery asks, in order."""
    rows = await session.exec(select(CheckIn).where(CheckIn.delivery_id == delivery_id).order_by(col(CheckIn.id)))
    return list(rows.all())


async def answers_of(session: AsyncSession, checkin_ids: Sequence[int]) -> dict[int, dict[str, Answer]]:
    """Answers by check-in id, then item id."""
    result: dict[int, dict[str, Answer]] = {cid: {} for cid in checkin_ids}
    if not checkin_ids:
        return result
    rows = await session.exec(select(Answer).where(col(Answer.checkin_id).in_(checkin_ids)))
    for answer in rows.all():
        result[answer.checkin_id][answer.item_id] = answer
    return result


async def the_set(session: AsyncSession, checkin: CheckIn) -> list[CheckIn]:
    """The check-ins asked together with this one (one delivery), or just this one."""
    if checkin.delivery_id is None:
        return [checkin]
    return await checkins_of_delivery(session, checkin.delivery_id)


async def next_step(session: AsyncSession, content: Content, checkins: Sequence[CheckIn], now: datetime) -> Step | None:
    """The next item to ask among a set of check-ins, expiring any that ran out of time."""
    ids = [c.id for c in checkins if c.id is not None]
    answers = await answers_of(session, ids)
    for position, checkin in enumerate(checkins, 1):
        if checkin.status != OPEN:
            continue
        questionnaire = content.questionnaires.get(checkin.questionnaire_id)
        if questionnaire is None:
            continue
        assert checkin.id is not None
        if is_expired(checkin, now):
            await _close(session, checkin, content, EXPIRED, now)
            continue
        item = next_item(questionnaire, answers[checkin.id])
        if item is None:
            continue
        return Step(
            checkin=checkin,
            questionnaire=questionnaire,
            item=item,
            index=questionnaire.items.index(item),
            set_position=position,
            set_size=len(checkins),
            first_of_questionnaire=not answers[checkin.id],
        )
    return None


@dataclass(frozen=True)
class Started:
    """Check-ins opened on demand just now, and their first question (None: nothing to ask)."""

    checkins: list[CheckIn]
    step: Step | None


async def begin(
    session: AsyncSession, patient: Patient, content: Content, questionnaire_ids: Sequence[str], now: datetime
) -> Started:
    """Open check-ins on demand and take the first step: /pain (with or without a typed answer), the
    /checkin menu, the symptom check offered for a symptom word, a caregiver's check-in for the patient."""
    checkins = await start(session, patient, content, questionnaire_ids, now)
    return Started(checkins, await next_step(session, content, checkins, now))


@dataclass(frozen=True)
class Opened:
    """A due check-in delivery, opened: the question to ask now and the check-ins of the message."""

    step: Step
    checkin_ids: tuple[int, ...]
    weekly: bool = False  # the maintenance phase's weekly check: its message offers to stop it


async def open_for_delivery(
    session: AsyncSession, content: Content, message: DueMessage, now: datetime
) -> Opened | None:
    """Before a check-in delivery is sent: open its questionnaires and find the first question; commits.

    The check-ins are created once per delivery (a retried send reuses them,
    see :func:`start`); those that ran out of time are closed. None when the
    patient is gone or nothing is left to ask. The renderer (bot/checkin)
    only turns the result into a message.
    """
    questionnaires = payload_questionnaires(message.payload) or list(ON_DEMAND_SET)
    if message.patient_id is None:
        return None
    patient = await session.get(Patient, message.patient_id)
    if patient is None:
        return None
    checkins = await start(
        session,
        patient,
        content,
        questionnaires,
        now,
        delivery_id=message.delivery_id,
        local_date=message.local_date,
        due_at=message.due_at,
    )
    step = await next_step(session, content, checkins, now)
    await session.commit()
    if step is None:
        return None
    return Opened(step, tuple(c.id for c in checkins if c.id is not None), payload_weekly(message.payload))


def is_expired(checkin: CheckIn, now: datetime) -> bool:
    """True when an open check-in is past its expiry."""
    return checkin.status == OPEN and checkin.expires_at is not None and now >= checkin.expires_at


async def _close(session: AsyncSession, checkin: CheckIn, content: Content, status: str, now: datetime) -> None:
    questionnaire = content.questionnaires.get(checkin.questionnaire_id)
    assert checkin.id is not None
    if questionnaire is not None:
        answers = (await answers_of(session, [checkin.id]))[checkin.id]
        checkin.score = score(questionnaire, {k: a.value for k, a in answers.items()})
    checkin.status = status
    if status == COMPLETE:
        checkin.completed_at = now
    session.add(checkin)


AnswerStatus = Literal["recorded", "duplicate", "stale", "expired", "closed", "invalid"]


# In the alert (English, for the clinician) when a red flag came as a second, different answer to an item.
ANSWERED_AGAIN_NOTE = N_(
    "This answer was sent after the item had already been answered otherwise (another window); "
    "the first answer is kept in the check-in."
)


@dataclass
class AnswerResult:
    """What became of a button press, and what the patient must be told."""

    status: AnswerStatus
    checkin: CheckIn | None = None
    completed: bool = False
    findings: list[redflag.Finding] = field(default_factory=list)
    stopped: bool = False  # an emergency answer ended the check-in set


async def answer(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    clinic: ClinicConfig,
    checkin_id: int,
    item_index: int,
    value: int | None,
    now: datetime,
) -> AnswerResult:
    """Record one answer (value None = skip) and run the red-flag rules on it.

    Safe to call twice with the same press (idempotent), and for presses on
    buttons that are no longer current (stale): nothing changes then.
    """
    checkin = await session.get(CheckIn, checkin_id)
    if checkin is None or checkin.patient_id != patient.id:
        return AnswerResult("invalid")
    questionnaire = content.questionnaires.get(checkin.questionnaire_id)
    if questionnaire is None or not 0 <= item_index < len(questionnaire.items):
        return AnswerResult("invalid", checkin)
    item = questionnaire.items[item_index]
    answers = (await answers_of(session, [checkin_id]))[checkin_id]
    if item.id in answers:
        return await _answered_again(
            session, patient, content, clinic, checkin, questionnaire, answers, item, value, now
        )
    if checkin.status == EXPIRED or is_expired(checkin, now):
        if checkin.status == OPEN:
            await _close(session, checkin, content, EXPIRED, now)
        return AnswerResult("expired", checkin)
    if checkin.status != OPEN:
        return AnswerResult("closed", checkin)
    if next_item(questionnaire, answers) is not item:
        return AnswerResult("stale", checkin)
    option: Option | None = None
    if value is None:
        if not item.optional:
            return AnswerResult("invalid", checkin)
    else:
        option = item.option(value)
        if option is None:
            return AnswerResult("invalid", checkin)
    row = Answer(
        checkin_id=checkin_id,
        patient_id=patient.id,
        item_id=item.id,
        value=value,
        text=SKIPPED if value is None else "",
        answered_at=now,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:  # the same press, processed twice at once
        await session.rollback()
        return AnswerResult("duplicate")
    answers[item.id] = row
    patient.last_activity_at = now
    session.add(patient)
    result = AnswerResult("recorded", checkin)
    if option is not None and option.flag is not None:
        finding = await redflag.on_flagged_answer(
            session, patient, content, clinic, checkin, questionnaire, item, option, answers, now
        )
        result.findings.append(finding)
        if option.flag == "emergency":
            # The patient's next step is to get help, not to answer more questions.
            await _close(session, checkin, content, COMPLETE, now)
            result.completed = result.stopped = True
            return result
    if next_item(questionnaire, answers) is None:
        await _close(session, checkin, content, COMPLETE, now)
        result.completed = True
        await session.flush()
        scored = await redflag.on_score(session, patient, content, clinic, checkin, questionnaire, now)
        if scored is not None:
            result.findings.append(scored)
    return result


async def _answered_again(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    clinic: ClinicConfig,
    checkin: CheckIn,
    questionnaire: Questionnaire,
    answers: dict[str, Answer],
    item: Item,
    value: int | None,
    now: datetime,
) -> AnswerResult:
    """An item already answered, answered again: a duplicate, and the first answer is kept. But a red-flag
    answer that differs from the kept one (a second Mini App window, or the chat's buttons after the Mini
    App answered) is still a red flag the patient reported: the clinic is alerted and the patient told
    what to do now, as for a first answer (redflag.on_flagged_answer; its alert key makes it once)."""
    result = AnswerResult("duplicate", checkin)
    kept = answers[item.id]
    option = item.option(value) if value is not None else None
    if option is None or option.flag is None or kept.value == value:
        return result
    sent = Answer(checkin_id=kept.checkin_id, patient_id=kept.patient_id, item_id=item.id, value=value, answered_at=now)
    finding = await redflag.on_flagged_answer(
        session, patient, content, clinic, checkin, questionnaire, item, option, {**answers, item.id: sent}, now,
        note=ANSWERED_AGAIN_NOTE,
    )  # fmt: skip
    result.findings.append(finding)
    return result


def typed_value(item: Item, typed: str) -> int | None:
    """An answer typed instead of tapped ("/pain 7"): the whole number of one of the item's options, else None.

    The value then goes through :func:`answer` like the button with that number: same triage, same reply.
    """
    value = number(plain(typed).strip(), 4)
    return value if value is not None and item.option(value) is not None else None


def value_range(item: Item) -> tuple[int, int]:
    """The lowest and highest answer value of an item (0 and 10 for the pain scale)."""
    values = [option.value for option in item.options]
    return min(values), max(values)


async def open_checkins(session: AsyncSession, patient: Patient, content: Content, now: datetime) -> list[CheckIn]:
    """The patient's newest set of open, unexpired check-ins (for /checkin)."""
    rows = (
        await session.exec(
            select(CheckIn)
            .where(CheckIn.patient_id == patient.id, CheckIn.status == OPEN)
            .order_by(col(CheckIn.id).desc())
        )
    ).all()
    for checkin in rows:
        if is_expired(checkin, now):
            await _close(session, checkin, content, EXPIRED, now)
            continue
        if checkin.questionnaire_id in content.questionnaires:
            return [c for c in await the_set(session, checkin) if c.status == OPEN]
    return []


async def waiting_step(session: AsyncSession, patient: Patient, content: Content, now: datetime) -> Step | None:
    """The next question of the patient's open check-ins (those that ran out are closed first), or None."""
    open_ones = await open_checkins(session, patient, content, now)
    return await next_step(session, content, open_ones, now) if open_ones else None


async def expire_due(session: AsyncSession, content: Content, now: datetime) -> int:
    """Close every open check-in past its expiry (scored from what it has)."""
    rows = (
        await session.exec(select(CheckIn).where(CheckIn.status == OPEN, col(CheckIn.expires_at) <= now).limit(1000))
    ).all()
    for checkin in rows:
        await _close(session, checkin, content, EXPIRED, now)
    return len(rows)


# --------------------------------------------------------------------------- scheduling


def _at(minutes: int) -> time:
    minutes = max(0, min(minutes, 23 * 60 + 59))
    return time(minutes // 60, minutes % 60)


def session_times(patient: Patient, content: Content, day_after_surgery: int) -> list[time]:
    """The patient's session times, else their programme phase's default times."""
    raw = [t for t in patient.session_times.split(",") if t.strip()]
    if not raw:
        programme = content.programmes.get(patient.programme_id)
        phase = programme.phase_for(max(0, day_after_surgery)) if programme is not None else None
        raw = list(phase.default_times) if phase is not None else []
    times = []
    for text in raw:
        hh, _, mm = text.strip().partition(":")
        if hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60:
            times.append(time(int(hh), int(mm)))
    return times


def checkin_time(patient: Patient, content: Content, day_after_surgery: int = 0) -> time:
    """When the patient's check-ins are sent: after their last session, in the evening.

    ``after_last_session_minutes`` after the last session time, kept between
    ``earliest`` and ``latest`` ([checkin_time] in questionnaires.toml); the
    ``default`` when the patient has no session times at all.
    """
    timing = content.checkin_time or CheckinTime()
    times = session_times(patient, content, day_after_surgery)
    if not times:
        return timing.default
    wanted = minutes_of_day(max(times)) + timing.after_last_session_minutes
    return _at(min(max(wanted, minutes_of_day(timing.earliest)), minutes_of_day(timing.latest)))


def motivation_time(patient: Patient, content: Content, day_after_surgery: int = 0) -> time:
    """When the daily motivation slot fires: a little after the check-in."""
    timing = content.checkin_time or CheckinTime()
    return _at(minutes_of_day(checkin_time(patient, content, day_after_surgery)) + timing.motivation_after_minutes)


async def retime(session: AsyncSession, patient: Patient, content: Content, now: datetime) -> int:
    """Move the evening check-in and motivation to follow new session times; return how many rules moved.

    The rules change in place and keep what they last delivered, so a
    check-in already sent today is not sent again at its new time.
    """
    assert patient.id is not None
    day = (local_date(patient, now) - day_zero(patient, now)).days
    wanted = {
        Kind.CHECKIN.value: checkin_time(patient, content, day).strftime("%H:%M"),
        Kind.MOTIVATION.value: motivation_time(patient, content, day).strftime("%H:%M"),
    }
    rules = (
        await session.exec(
            select(ReminderRule).where(
                ReminderRule.patient_id == patient.id,
                col(ReminderRule.kind).in_(list(wanted)),
                col(ReminderRule.active).is_(True),
                col(ReminderRule.once).is_(False),
            )
        )
    ).all()
    moved = 0
    for rule in rules:
        if rule.local_time != wanted[rule.kind]:
            rule.local_time = wanted[rule.kind]
            reschedule_rule(session, rule, patient.timezone, now)
            moved += 1
    return moved


@dataclass(frozen=True)
class PlannedRule:
    """One check-in rule to create: a date range, a pattern, the questionnaires."""

    questionnaires: tuple[str, ...]
    start_date: date
    end_date: date | None
    every_n_days: int | None
    days: str  # weekday digits ("" = every day)
    weekly: bool = False  # the maintenance phase's weekly check (its messages offer to stop it)


def day_zero(patient: Patient, now: datetime) -> date:
    """Day 0 of the cadence: the surgery date, else today (documented above)."""
    return patient.surgery_date or local_date(patient, now)


def plan(patient: Patient, content: Content, now: datetime, followed: Programme | None = None) -> list[PlannedRule]:
    """The check-in rules a patient should have, from content cadences (pure).

    A programme with a maintenance phase ([programme.maintenance]) ends every
    cadence on its last phase's last day; from the next day its questionnaires
    are asked every ``every_n_days`` (7) days instead: the weekly check.
    followed: the programme the patient follows (``programme.programme_for``: a
    patient's own plan ends when its last phase does, rehab_bot/plan.py); None:
    their content programme.
    """
    today = local_date(patient, now)
    zero = day_zero(patient, now)
    groups: dict[tuple[date, date | None, int | None, str], list[str]] = {}
    programme = followed if followed is not None else content.programmes.get(patient.programme_id)
    kept = programme.maintenance if programme is not None and patient.surgery_date is not None else None
    last_day = zero + timedelta(days=kept.from_day - 1) if kept is not None else None
    weekly = None
    if kept is not None and last_day is not None and kept.questionnaires:
        weekly = (last_day + timedelta(days=1), None, kept.every_n_days, "")
        groups[weekly] = list(kept.questionnaires)
    for questionnaire in content.questionnaires.values():
        steps = content.programme_cadences.get((patient.programme_id, questionnaire.id), questionnaire.cadence)
        for step in steps:
            start = zero + timedelta(days=step.from_day)
            end = None if step.to_day is None else zero + timedelta(days=step.to_day)
            if last_day is not None:
                if start > last_day:
                    continue
                end = last_day if end is None else min(end, last_day)
            if end is not None and end < today:
                continue
            every = step.every_n_days if step.every_n_days not in (None, 1) else None
            days = format_days(step.weekdays) if step.weekdays is not None else ""
            groups.setdefault((start, end, every, days), []).append(questionnaire.id)
    return [
        PlannedRule(tuple(qids), start, end, every, days, weekly=(start, end, every, days) == weekly)
        for (start, end, every, days), qids in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][3]))
    ]


async def schedule_for(
    session: AsyncSession, patient: Patient, content: Content, now: datetime, followed: Programme | None = None
) -> list[ReminderRule]:
    """Create the patient's check-in and motivation reminder rules (called when enrolment completes).

    Replaces the patient's existing check-in and motivation rules, so it is
    also the way to re-plan after a change of surgery date or programme.
    followed: the programme the patient follows; None: looked up
    (``programme.programme_for``: their own plan, else their content programme).
    """
    assert patient.id is not None
    if followed is None:
        from rehab_bot import programme  # programme imports this module

        followed = await programme.programme_for(session, content, patient)
    old = (
        await session.exec(
            select(ReminderRule).where(
                ReminderRule.patient_id == patient.id,
                col(ReminderRule.kind).in_([Kind.CHECKIN.value, Kind.MOTIVATION.value]),
                col(ReminderRule.active).is_(True),
                col(ReminderRule.once).is_(False),
            )
        )
    ).all()
    for rule in old:
        rule.active = False
        rule.next_due_at = None
        rule.updated_at = now
        session.add(rule)
    day = (local_date(patient, now) - day_zero(patient, now)).days
    at = checkin_time(patient, content, day).strftime("%H:%M")
    rules = []
    for planned in plan(patient, content, now, followed):
        rules.append(
            add_rule(
                session,
                patient,
                kind=Kind.CHECKIN,
                local_time=at,
                now=now,
                days=planned.days,
                every_n_days=planned.every_n_days,
                start_date=planned.start_date,
                end_date=planned.end_date,
                payload=rule_payload(planned),
            )
        )
    rules.append(
        add_rule(
            session,
            patient,
            kind=Kind.MOTIVATION,
            local_time=motivation_time(patient, content, day).strftime("%H:%M"),
            now=now,
            start_date=local_date(patient, now),
        )
    )
    await session.flush()
    log.info("patient %s: %d check-in rules scheduled", patient.id, len(rules) - 1)
    return rules


WEEKLY = "weekly"  # the payload key that marks the maintenance phase's weekly check


def rule_payload(planned: PlannedRule) -> str:
    """A check-in rule's payload: the questionnaires it asks, and whether it is the weekly check."""
    data: dict[str, object] = {"questionnaires": list(planned.questionnaires)}
    if planned.weekly:
        data[WEEKLY] = True
    return json.dumps(data)


def _payload_data(payload: str) -> dict[str, object]:
    """A check-in rule's payload as a mapping ({} if empty or unreadable)."""
    try:
        data = json.loads(payload) if payload else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def payload_weekly(payload: str) -> bool:
    """Whether a check-in delivery's payload is the maintenance phase's weekly check."""
    return _payload_data(payload).get(WEEKLY) is True


def payload_questionnaires(payload: str) -> list[str]:
    """The questionnaire ids a check-in rule's payload names ([] if unreadable)."""
    ids = _payload_data(payload).get("questionnaires")
    return [q for q in ids if isinstance(q, str)] if isinstance(ids, list) else []


# --------------------------------------------------------------------------- the Mini App's forms


@dataclass(frozen=True)
class Form:
    """A check-in as the Mini App's form shows it: the patient's own check-in and what to ask now."""

    checkin: CheckIn
    step: Step | None  # None: nothing left to ask (answered, expired or closed)
    # Nothing left to ask because a check-in of the set ran out of time: the page says it closed, not
    # that the answers are saved (an unanswered check-in opened late, or a form submitted after its end).
    expired: bool = False


async def for_form(
    session: AsyncSession, patient: Patient, content: Content, checkin_id: int, now: datetime
) -> Form | None:
    """The patient's own check-in by id and its next question (within its set); None when not theirs."""
    checkin = await session.get(CheckIn, checkin_id)
    if checkin is None or checkin.patient_id != patient.id:
        return None
    checkins = await the_set(session, checkin)
    step = await next_step(session, content, checkins, now)
    return Form(checkin, step, expired=step is None and any(c.status == EXPIRED for c in checkins))


RESULT_HOURS = 24  # how long the result page shows a red-flag reply


async def latest_findings(
    session: AsyncSession, patient: Patient, content: Content, clinic: ClinicConfig, now: datetime
) -> list[redflag.Finding]:
    """The red flags of the patient's newest check-in with one in the last 24 hours (the result page).

    The same findings the answers raised: each flagged option's severity and reply text
    (redflag.on_flagged_answer), and the score rules a completed check-in matched, such as pain 7
    and above (redflag.score_matches, as redflag.on_score read them); no alert is raised again.
    """
    assert patient.id is not None
    rows = (
        await session.exec(
            select(Answer, CheckIn)
            .where(
                Answer.patient_id == patient.id,
                col(Answer.answered_at) >= now - timedelta(hours=RESULT_HOURS),
                Answer.checkin_id == CheckIn.id,
            )
            .order_by(col(Answer.answered_at).desc(), col(Answer.id).desc())
        )
    ).all()
    answered: dict[int, tuple[CheckIn, list[Answer]]] = {}  # newest answered check-in first
    for answer_row, checkin in rows:
        assert checkin.id is not None
        answered.setdefault(checkin.id, (checkin, []))[1].append(answer_row)
    told = await redflag.has_recipients(session, patient, clinic)
    for checkin, answers in answered.values():
        questionnaire = content.questionnaires.get(checkin.questionnaire_id)
        if questionnaire is None:
            continue
        scored = checkin.status == COMPLETE
        findings = await _findings(session, patient, content, checkin, questionnaire, answers, told, now, scored=scored)
        if findings:
            return findings
    return []


async def _own_item(
    session: AsyncSession, patient: Patient, content: Content, checkin_id: int, item_index: int
) -> tuple[CheckIn, Questionnaire, Item, dict[str, Answer]] | None:
    """The patient's own check-in, its questionnaire, the item at this index and the check-in's answers;
    None for another patient's check-in or an item that is not there."""
    checkin = await session.get(CheckIn, checkin_id)
    if checkin is None or checkin.patient_id != patient.id:
        return None
    questionnaire = content.questionnaires.get(checkin.questionnaire_id)
    if questionnaire is None or not 0 <= item_index < len(questionnaire.items):
        return None
    answers = (await answers_of(session, [checkin_id]))[checkin_id]
    return checkin, questionnaire, questionnaire.items[item_index], answers


async def recorded_answer(
    session: AsyncSession, patient: Patient, content: Content, checkin_id: int, item_index: int
) -> tuple[Item, Answer] | None:
    """The patient's stored answer to this item of their check-in, with the item; None for another
    patient's check-in or an item not answered (what was kept when a second window answered it too)."""
    found = await _own_item(session, patient, content, checkin_id, item_index)
    if found is None:
        return None
    _, _, item, answers = found
    row = answers.get(item.id)
    return (item, row) if row is not None else None


async def findings_of_answer(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    clinic: ClinicConfig,
    checkin_id: int,
    item_index: int,
    now: datetime,
) -> list[redflag.Finding]:
    """The red flags the patient's recorded answer to this item raised, for the same answer sent again
    (a second tap on the Mini App's form, whose first response the browser dropped): its option's flag,
    and the score rules when it completed the check-in. Nothing for another patient's check-in."""
    found = await _own_item(session, patient, content, checkin_id, item_index)
    if found is None:
        return []
    checkin, questionnaire, item, answers = found
    row = answers.get(item.id)
    if row is None:
        return []
    last = max(answers.values(), key=lambda a: (a.answered_at, a.id or 0))
    scored = checkin.status == COMPLETE and last is row
    told = await redflag.has_recipients(session, patient, clinic)
    return await _findings(session, patient, content, checkin, questionnaire, [row], told, now, scored=scored)


async def _findings(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    checkin: CheckIn,
    questionnaire: Questionnaire,
    answers: Sequence[Answer],
    told: bool,
    now: datetime,
    *,
    scored: bool,
) -> list[redflag.Finding]:
    """The findings these answers raised (each flagged option's), and the check-in's score rules if scored."""
    findings: list[redflag.Finding] = []
    for answer_row in answers:
        item = questionnaire.item(answer_row.item_id)
        option = item.option(answer_row.value) if item is not None and answer_row.value is not None else None
        if option is None or option.flag is None:
            continue
        findings.append(redflag.Finding(option.flag, (redflag.reply_id(option),), None, told))
    if scored:
        matched, _ = await redflag.score_matches(session, patient, content, checkin, questionnaire, now)
        if matched:
            findings.append(redflag.score_finding(matched, told))
    return findings
