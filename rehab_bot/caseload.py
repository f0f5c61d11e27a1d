"""The caseload: the patients a clinician looks after, listed, in detail, at risk, and changed.

A therapist sees their own patients by default and may look at colleagues'
(read-only); an admin sees everyone (rehab_bot.access, rechecked on every
call). The figures (adherence, last pain and mood, open alerts, lesson gaps)
are read fresh from the database; :func:`risk_for` says why a patient needs a
look this week (the weekly digest, rehab_bot.digest, lists these).

Changes a clinician makes to a patient's care (programme, session times,
pause, resume, discharge) are here too, each checked against access.require
and audited.

Plain Python over SQLModel: no telegram imports.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TypeVar

from sqlalchemy import Select, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import alert as alert_core
from rehab_bot import audit, education, formats
from rehab_bot import programme as programme_core
from rehab_bot import session as session_core
from rehab_bot.access import Access, StaffError, access, require
from rehab_bot.config import StaffConfig
from rehab_bot.content import Content, localize
from rehab_bot.i18n import N_, t, translator
from rehab_bot.models import (
    Alert,
    Answer,
    CheckIn,
    Delivery,
    DeliveryStatus,
    ExerciseSession,
    Kind,
    Note,
    Patient,
    PatientStatus,
    ProgrammePlan,
    ReminderRule,
    Role,
    Staff,
)
from rehab_bot.schedule import QuietHours, local_date, parse_days

_Q = TypeVar("_Q", bound=Select)  # a query over patients, narrowed by listed()

PAGE_SIZE = 5
# Answer.item_id values that hold pain (NRS 0-10) and mood; the check-in
# content names its items, these are the names the list and the digest read.
PAIN_ITEMS = ("pain",)
MOOD_ITEMS = ("mood",)


def days_since_surgery(patient: Patient, now: datetime) -> int | None:
    """Days after surgery in the patient's zone (0 = the day of surgery)."""
    if patient.surgery_date is None:
        return None
    return (local_date(patient, now) - patient.surgery_date).days


@dataclass(frozen=True)
class PatientRow:
    """One line of /patients."""

    id: int
    alias: str
    status: str
    therapist_id: int | None
    days_since_surgery: int | None
    adherence_7d: float | None
    last_pain: int | None
    last_mood: int | None
    open_alerts: int
    # Safety lessons answered wrongly twice or more: a gap in understanding (rehab_bot/education.py).
    lesson_gaps: tuple[str, ...] = ()


@dataclass(frozen=True)
class PatientPage:
    rows: list[PatientRow]
    page: int
    pages: int
    total: int
    scope: str  # "mine" or "all"


def default_scope(staff: Staff) -> str:
    """A therapist sees their own patients by default, an admin everyone."""
    return "all" if staff.role == Role.ADMIN.value else "mine"


async def _last_value(session: AsyncSession, patient_id: int, items: Sequence[str]) -> int | None:
    query = (
        select(Answer.value)
        .where(
            col(Answer.patient_id) == patient_id,
            col(Answer.item_id).in_(list(items)),
            col(Answer.value).is_not(None),
        )
        .order_by(col(Answer.answered_at).desc(), col(Answer.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def open_alert_count(session: AsyncSession, patient_id: int) -> int:
    query = (
        select(func.count())
        .select_from(Alert)
        .where(col(Alert.patient_id) == patient_id, col(Alert.acknowledged_at).is_(None))
    )
    return int((await session.exec(query)).one())


async def patient_row(
    session: AsyncSession, patient: Patient, now: datetime, *, stats: session_core.SessionStats | None = None
) -> PatientRow:
    """The figures /patients shows for one patient (stats: session_core.stats at now, when already read)."""
    assert patient.id is not None
    if stats is None:
        stats = await session_core.stats(session, patient, now)
    return PatientRow(
        id=patient.id,
        alias=patient.alias,
        status=patient.status,
        therapist_id=patient.therapist_id,
        days_since_surgery=days_since_surgery(patient, now),
        adherence_7d=stats.adherence_7d,
        last_pain=await _last_value(session, patient.id, PAIN_ITEMS),
        last_mood=await _last_value(session, patient.id, MOOD_ITEMS),
        open_alerts=await open_alert_count(session, patient.id),
        lesson_gaps=tuple(await education.gaps(session, patient.id)),
    )


def _visible(query: _Q, staff: Staff, scope: str) -> _Q:
    if scope == "mine":
        return query.where(col(Patient.therapist_id) == staff.id)
    return query


def listed(query: _Q, staff: Staff, scope: str) -> _Q:
    """query narrowed to the patients the list shows in scope ("mine" or "all"): everyone but the stopped."""
    return _visible(query, staff, scope).where(col(Patient.status) != PatientStatus.STOPPED.value)


async def patient_page(
    session: AsyncSession,
    staff: Staff,
    now: datetime,
    *,
    scope: str | None = None,
    page: int = 0,
    page_size: int = PAGE_SIZE,
) -> PatientPage:
    """One page of the patient list: in care first, then discharged, each by alias."""
    scope = scope if scope in ("mine", "all") else default_scope(staff)
    base = listed(select(Patient), staff, scope)
    count_query = _visible(select(func.count()).select_from(Patient), staff, scope).where(
        col(Patient.status) != PatientStatus.STOPPED.value
    )
    total = int((await session.exec(count_query)).one())
    pages = max(1, math.ceil(total / page_size))
    page = min(max(0, page), pages - 1)
    discharged_last = col(Patient.status) == PatientStatus.DISCHARGED.value
    query = base.order_by(discharged_last, func.upper(col(Patient.alias))).offset(page * page_size).limit(page_size)
    patients = (await session.exec(query)).all()
    rows = [await patient_row(session, p, now) for p in patients]
    return PatientPage(rows=rows, page=page, pages=pages, total=total, scope=scope)


@dataclass(frozen=True)
class AnswerLine:
    answered_at: datetime
    questionnaire_id: str
    item_id: str
    value: int | None
    text: str
    proxy: bool = False  # a caregiver answered on the patient's behalf


@dataclass(frozen=True)
class PatientDetail:
    patient: Patient
    row: PatientRow
    access: Access
    therapist_name: str
    programme_name: str
    session_times: list[str]
    stats: session_core.SessionStats
    answers: list[AnswerLine]
    notes: list[Note]
    alerts: list[Alert]
    lessons: education.Summary | None = None
    # The session reminders as planned now (tapered, maintenance: fewer than the phase's sessions).
    reminders: list[ReminderSlot] = field(default_factory=list)
    maintenance: bool = False  # past the programme's end: the weekly session and check-in


@dataclass(frozen=True)
class ReminderSlot:
    """One session reminder rule as the care team reads it: its time, weekdays (0 = Monday) or every N days."""

    local_time: str
    days: tuple[int, ...] = ()  # () = every day
    every_n_days: int | None = None


ANSWER_SKIPPED = N_("skipped")
ANSWERED_BY_CAREGIVER = N_("(answered by a caregiver)")


def answer_text(content: Content | None, line: AnswerLine, lang: str = "en") -> str:
    """One answer in plain words, in the reader's language: the question (its first line) and the chosen option's label.

    Falls back to "questionnaire/item" only when the content no longer has the item.
    """
    questionnaire = content.questionnaires.get(line.questionnaire_id) if content is not None else None
    item = questionnaire.item(line.item_id) if questionnaire is not None else None
    if item is None:
        question = f"{line.questionnaire_id}/{line.item_id}:"
    else:
        text = item.text.get(lang) or item.text.get("en") or next(iter(item.text.values()), line.item_id)
        question = alert_core.shorten(text.strip().splitlines()[0], 100)
    if line.value is None:
        value = alert_core.shorten(line.text, 120) or t(lang, ANSWER_SKIPPED)
    elif item is not None and item.yes_no:
        value = t(lang, "Yes") if line.value else t(lang, "No")
    else:
        option = item.option(line.value) if item is not None else None
        label = (option.label.get(lang) or option.label.get("en")) if option is not None else None
        label = label or str(line.value)
        # The value in brackets unless the label already shows it ("🙁 2", not "🙁 2 (2)").
        value = label if str(line.value) in label.split() else f"{label} ({line.value})"
    return f"{question} {value}" + (" " + t(lang, ANSWERED_BY_CAREGIVER) if line.proxy else "")


OWN_PLAN = N_("own plan v{version} (from {start})")
EMPTY_PLAN = N_("empty")


def programme_title(content: Content | None, programme_id: str, lang: str) -> str:
    """A content programme's name in lang (the reader's); its id only when the content no longer has it."""
    programme = content.programmes.get(programme_id) if content is not None else None
    return programme.title(lang) if programme is not None else programme_id


async def programme_name_of(session: AsyncSession, patient: Patient, content: Content | None, lang: str) -> str:
    """The programme the patient follows, by name in lang: their own plan from the programme builder
    ("own plan v2 (from <programme>)"), else their content programme; "" when they have none."""
    own = (await session.exec(select(ProgrammePlan).where(col(ProgrammePlan.patient_id) == patient.id))).first()
    if own is not None:  # saved in the programme builder: it replaces the programme's phases and sessions
        start = programme_title(content, own.based_on, lang) if own.based_on else t(lang, EMPTY_PLAN)
        return t(lang, OWN_PLAN, version=own.version, start=start)
    return programme_title(content, patient.programme_id, lang) if patient.programme_id else ""


async def patient_detail(
    session: AsyncSession,
    staff: Staff,
    patient: Patient,
    now: datetime,
    content: Content | None,
    *,
    recent: int = 8,
    lang: str = "en",
) -> PatientDetail:
    """What /patient shows: figures, programme, recent answers and notes, open alerts.

    The programme's name is said in lang (the reader's): the content's name in that language, else English.
    """
    assert patient.id is not None
    level = access(staff, patient)
    therapist = await session.get(Staff, patient.therapist_id) if patient.therapist_id is not None else None

    programme_name = await programme_name_of(session, patient, content, lang)
    answers_query = (
        select(Answer, CheckIn.questionnaire_id)
        .join(CheckIn, col(CheckIn.id) == col(Answer.checkin_id))
        .where(col(Answer.patient_id) == patient.id)
        .order_by(col(Answer.answered_at).desc(), col(Answer.id).desc())
        .limit(recent)
    )
    answers = [
        AnswerLine(a.answered_at, questionnaire_id, a.item_id, a.value, a.text, a.proxy)
        for a, questionnaire_id in (await session.exec(answers_query)).all()
    ]
    notes = list(
        (
            await session.exec(
                select(Note)
                .where(col(Note.patient_id) == patient.id)
                .order_by(col(Note.created_at).desc(), col(Note.id).desc())
                .limit(recent)
            )
        ).all()
    )
    alerts = list(
        (
            await session.exec(
                select(Alert)
                .where(col(Alert.patient_id) == patient.id, col(Alert.acknowledged_at).is_(None))
                .order_by(col(Alert.created_at))
            )
        ).all()
    )
    stats = await session_core.stats(session, patient, now)
    return PatientDetail(
        patient=patient,
        row=await patient_row(session, patient, now, stats=stats),
        access=level,
        therapist_name=therapist.name if therapist is not None else "",
        programme_name=programme_name,
        session_times=session_times_of(patient, content, now),
        stats=stats,
        answers=answers,
        notes=notes,
        alerts=alerts,
        lessons=await education.summary(session, patient, content, lang),
        reminders=await reminder_slots(session, patient),
        maintenance=content is not None and await programme_core.in_maintenance(session, content, patient, now),
    )


async def reminder_slots(session: AsyncSession, patient: Patient) -> list[ReminderSlot]:
    """The patient's recurring session reminders that still have a slot ahead, by time."""
    rules = [r for r in await programme_core.session_rules(session, patient) if r.next_due_at is not None]
    return sorted(
        (
            ReminderSlot(r.local_time, tuple(sorted(parse_days(r.days))) if r.days else (), r.every_n_days)
            for r in rules
        ),
        key=lambda slot: slot.local_time,
    )


def session_times_of(patient: Patient, content: Content | None, now: datetime) -> list[str]:
    """The patient's own times, else the current phase's defaults."""
    if patient.session_times:
        return [t for t in patient.session_times.split(",") if t]
    if content is None or patient.programme_id not in content.programmes:
        return []
    day = days_since_surgery(patient, now)
    phase = content.programmes[patient.programme_id].phase_for(day) if day is not None else None
    return list(phase.default_times) if phase is not None else []


# --- changes ---------------------------------------------------------------------


async def change_programme(
    session: AsyncSession,
    staff: Staff,
    patient: Patient,
    programme_id: str,
    content: Content,
    now: datetime,
    *,
    quiet: tuple[time | None, time | None] | None = None,
    actor: str | None = None,
    neutral: bool = False,
) -> None:
    """Move the patient to another content programme (it replaces an own plan from the programme builder).

    The same path as a plan saved in the builder (programme.apply_change):
    re-planned from the next slot, one message to the patient when quiet
    (the clinic's quiet hours) is given, audited.
    """
    from rehab_bot import programme as programme_core

    require(staff, patient, Access.WRITE)
    if programme_id not in content.programmes:
        raise StaffError(N_("That programme is no longer available."))
    before = await programme_core.programme_for(session, content, patient)
    old = patient.programme_id
    patient.programme_id = programme_id
    session.add(patient)
    await programme_core.drop_own_plan(session, patient)
    await programme_core.apply_change(
        session,
        staff,
        patient,
        content,
        now,
        before=before,
        times_before=patient.session_times,
        action=audit.CHANGE_PROGRAMME,
        detail=f"programme {old or '-'} -> {programme_id}",
        quiet=quiet,
        actor=actor,
        neutral=neutral,
    )
    if patient.status not in (PatientStatus.DISCHARGED.value, PatientStatus.STOPPED.value):
        await education.schedule_for(session, patient, content, now)  # lessons may depend on the programme


class Discharged(StaffError):
    """The patient was discharged (perhaps after the change was begun): nothing was changed."""


async def change_session_times(
    session: AsyncSession,
    staff: Staff,
    patient: Patient,
    times: list[str],
    content: Content,
    now: datetime,
    *,
    quiet: tuple[time | None, time | None] | None = None,
    actor: str | None = None,
    neutral: bool = False,
) -> None:
    """Set the patient's preferred session times (local HH:MM); the same path as a programme change.

    Refused for a discharged patient (:class:`Discharged`, before anything is changed): their care is
    over, no reminder would follow, and times saved then would look as if they still applied.
    """
    from rehab_bot import programme as programme_core

    require(staff, patient, Access.WRITE)
    if patient.status == PatientStatus.DISCHARGED.value:
        raise Discharged(
            N_("{alias} has been discharged, so their session times were not changed."), alias=patient.alias
        )
    hours = QuietHours.for_patient(patient, *quiet) if quiet is not None else None
    clashing = hours.clashing(times) if hours is not None else []
    if hours is not None and clashing:
        # As the patient's own /settings refuses them (patient.set_times): a reminder due in the quiet
        # hours would wait for their end, so the session would never come at the time it names.
        raise StaffError(
            N_(
                "{times}: in {alias}'s quiet hours ({start}-{end}), when no reminders are sent. "
                "Please choose other times; nothing was changed."
            ),
            times=", ".join(clashing),
            alias=patient.alias,
            start=hours.start_text,
            end=hours.end_text,
        )
    before = await programme_core.programme_for(session, content, patient)
    old = patient.session_times
    patient.session_times = ",".join(times)
    session.add(patient)
    await programme_core.apply_change(
        session,
        staff,
        patient,
        content,
        now,
        before=before,
        times_before=old,
        action=audit.CHANGE_TIMES,
        detail=f"times {old or '-'} -> {patient.session_times}",
        quiet=quiet,
        actor=actor,
        neutral=neutral,
    )


async def discharge(session: AsyncSession, staff: Staff, patient: Patient, now: datetime) -> bool:
    """End the patient's care: no more reminders. False if already discharged."""
    require(staff, patient, Access.WRITE)
    if patient.status == PatientStatus.DISCHARGED.value:
        return False
    patient.status = PatientStatus.DISCHARGED.value
    patient.discharged_at = now
    session.add(patient)
    # Rules stop here rather than being skipped at every slot: a discharged
    # patient's schedule is over, and the engine need not look at it again.
    await session.exec(
        update(ReminderRule)
        .where(col(ReminderRule.patient_id) == patient.id, col(ReminderRule.active).is_(True))
        .values(active=False, next_due_at=None, updated_at=now)
    )
    await session.exec(
        update(Delivery)
        .where(
            col(Delivery.patient_id) == patient.id,
            col(Delivery.status) == DeliveryStatus.QUEUED.value,
            col(Delivery.kind) != Kind.ALERT.value,
        )
        .values(status=DeliveryStatus.SKIPPED.value, error="patient discharged")
    )
    audit.record(session, action=audit.DISCHARGE, now=now, staff=staff, patient_id=patient.id)
    return True


# --- risk ------------------------------------------------------------------------


@dataclass(frozen=True)
class Risk:
    """Why a patient is in the digest."""

    patient_id: int
    alias: str
    day: int | None
    reasons: list[str] = field(default_factory=list)


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.fmean(values) if values else None


async def last_response(session: AsyncSession, patient: Patient) -> datetime | None:
    """The last time the patient answered anything: a session, a check-in item, a note."""
    candidates: list[datetime] = []
    if patient.last_activity_at is not None:
        candidates.append(patient.last_activity_at)
    for column, model in (
        (Answer.answered_at, Answer),
        (ExerciseSession.answered_at, ExerciseSession),
        (Note.created_at, Note),
    ):
        value = (await session.exec(select(func.max(column)).where(col(model.patient_id) == patient.id))).one()
        if value is not None:
            candidates.append(_aware(value))
    return max(candidates) if candidates else None


def _aware(value: datetime | str) -> datetime:
    # Aggregates bypass the column type: SQLite hands back naive UTC text or datetimes.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def pain_means(session: AsyncSession, patient: Patient, now: datetime) -> tuple[float | None, float | None]:
    """Mean pain over the last 7 days and over the 7 days before."""
    start = now - timedelta(days=14)
    rows = (
        await session.exec(
            select(Answer.answered_at, Answer.value).where(
                col(Answer.patient_id) == patient.id,
                col(Answer.item_id).in_(list(PAIN_ITEMS)),
                col(Answer.value).is_not(None),
                col(Answer.answered_at) > start,
                col(Answer.answered_at) <= now,
            )
        )
    ).all()
    return pain_means_of([(at, v) for at, v in rows if v is not None], now)


def pain_means_of(rows: Iterable[tuple[datetime, int]], now: datetime) -> tuple[float | None, float | None]:
    """Mean pain over the last 7 days and the 7 days before, from (answered_at, value) of the last 14 days."""
    middle = now - timedelta(days=7)
    rows = list(rows)
    return pain_means_split([v for at, v in rows if at > middle], [v for at, v in rows if at <= middle])


def pain_means_split(recent: Iterable[int], before: Iterable[int]) -> tuple[float | None, float | None]:
    """(mean of the last 7 days, mean of the 7 days before) from the pain values already split by week."""
    return _mean(map(float, recent)), _mean(map(float, before))


async def risk_for(
    session: AsyncSession,
    patient: Patient,
    now: datetime,
    settings: StaffConfig,
    lang: str = "en",
    titles: Mapping[str, str] | None = None,
) -> Risk | None:
    """Why this patient is at risk this week (the reasons in lang: the digest's reader's; the lessons
    named by titles, lesson_titles), or None."""
    assert patient.id is not None
    active = patient.status == PatientStatus.ACTIVE.value
    reasons = risk_reasons(
        patient,
        now,
        settings,
        last_response=await last_response(session, patient) if active else None,
        adherence_7d=(await session_core.stats(session, patient, now)).adherence_7d if active else None,
        pain=await pain_means(session, patient, now),
        unanswered_safety=await education.unanswered_safety(session, patient.id),
        lang=lang,
        titles=titles,
    )
    if not reasons:
        return None
    return Risk(patient.id, patient.alias, days_since_surgery(patient, now), reasons)


@dataclass(frozen=True)
class RiskReason:
    """One reason a patient is at risk: a message (an English msgid) and its values, already formatted.

    text() renders it in English (the digest) or through a translator in a language (the web caseload,
    its figures as that language writes them: "44 %", "3,5" in German); kind and values are what the
    web caseload stores (rehab_bot/caseload_overview.py), the figures as English writes them.
    """

    kind: str
    values: tuple[tuple[str, str], ...] = ()

    @property
    def msgid(self) -> str:
        return RISK_MESSAGES[self.kind]

    def text(
        self, translate: Callable[..., str] | None = None, lang: str = "en", titles: Mapping[str, str] | None = None
    ) -> str:
        """The reason in lang; titles names the lessons (id -> title in lang), whose ids are what is stored."""
        values = dict(self.values)
        if titles is not None and "lessons" in values:
            values["lessons"] = ", ".join(titles.get(lid, lid) for lid in values["lessons"].split(", "))
        if translate is None:
            return self.msgid.format(**values)
        return translate(self.msgid, **{key: _figure_in(key, value, lang) for key, value in values.items()})


def lesson_titles(content: Content, lang: str) -> dict[str, str]:
    """Every lesson's title in lang, by id: how a risk reason names the safety lessons left unanswered."""
    return {lesson.id: localize(lesson.title, lang) for lesson in education.course_of(content).lessons}


def _figure_in(key: str, value: str, lang: str) -> str:
    """A stored figure ("44%", "3.5") as lang writes it; any other value as it is."""
    try:
        if key == "share" and value.endswith("%"):
            return formats.percent(int(value[:-1]) / 100, lang)
        if key in ("before", "recent"):
            return formats.number(float(value), lang, fixed=True)
    except ValueError:
        pass
    return value


# The reasons' texts (msgids; the web caseload shows them translated, the digest in English).
RISK_MESSAGES = {
    "unreachable": N_("unreachable: Telegram refuses our messages"),
    "silent": N_("no response for {days} days"),
    "adherence": N_("adherence {share} over 7 days"),
    "pain": N_("pain rising: mean {before} → {recent}"),
    "lessons": N_("safety lessons unanswered: {lessons}"),
}


def risk_reasons(
    patient: Patient,
    now: datetime,
    settings: StaffConfig,
    *,
    last_response: datetime | None,
    adherence_7d: float | None,
    pain: tuple[float | None, float | None],
    unanswered_safety: Sequence[str],
    lang: str = "en",
    titles: Mapping[str, str] | None = None,
) -> list[str]:
    """Why a patient is at risk, in lang (English by default), from figures already read (risk_for; see
    risk_reason_list); titles names the lessons (lesson_titles)."""
    translate = None if lang == "en" else translator(lang)
    return [
        reason.text(translate, lang, titles)
        for reason in risk_reason_list(
            patient,
            now,
            settings,
            last_response=last_response,
            adherence_7d=adherence_7d,
            pain=pain,
            unanswered_safety=unanswered_safety,
        )
    ]


def risk_reason_list(
    patient: Patient,
    now: datetime,
    settings: StaffConfig,
    *,
    last_response: datetime | None,
    adherence_7d: float | None,
    pain: tuple[float | None, float | None],
    unanswered_safety: Sequence[str],
) -> list[RiskReason]:
    """Why a patient is at risk, from figures already read (risk_for, and the web caseload for many at once).

    pain is (mean of the last 7 days, mean of the 7 days before), as pain_means returns it.
    """
    reasons: list[RiskReason] = []
    if patient.status == PatientStatus.UNREACHABLE.value:
        reasons.append(RiskReason("unreachable"))
    elif patient.status == PatientStatus.ACTIVE.value:
        since = last_response or patient.consent_at or patient.created_at
        silent_days = (now - since).days
        if silent_days >= settings.digest_no_response_days:
            reasons.append(RiskReason("silent", (("days", str(silent_days)),)))
    if patient.status == PatientStatus.ACTIVE.value:
        if adherence_7d is not None and adherence_7d < settings.digest_low_adherence:
            reasons.append(RiskReason("adherence", (("share", f"{adherence_7d:.0%}"),)))
    recent, before = pain
    if recent is not None and before is not None and recent - before >= settings.digest_pain_rise:
        reasons.append(RiskReason("pain", (("before", f"{before:.1f}"), ("recent", f"{recent:.1f}"))))
    if unanswered_safety:
        reasons.append(RiskReason("lessons", (("lessons", ", ".join(unanswered_safety)),)))
    return reasons
