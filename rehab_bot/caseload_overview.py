"""The caseload at a glance: every patient a staff member may see, with the figures and risk flag.

What the web app's caseload page shows, filtered and sorted here so that no
rule lives in a front end. Visibility and the figures are the same as /patients
(rehab_bot.caseload.listed and patient_row: "mine" is the therapist's own
patients, "all" everyone in care or discharged); the risk flag is the weekly
digest's (rehab_bot.caseload.risk_reasons, as risk_for applies it). The figures of
all patients are read with a fixed number of grouped queries (2,000 patients:
see bench/web.py); tests/test_caseload_overview.py checks they equal
patient_row and risk_for patient by patient.

Plain Python over SQLModel: no telegram or web imports.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as select_columns
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import caseload as core
from rehab_bot import education
from rehab_bot import session as session_core
from rehab_bot import staff as members
from rehab_bot.config import StaffConfig
from rehab_bot.models import Alert, Answer, ExerciseSession, LessonProgress, Note, Patient, PatientStatus, Staff
from rehab_bot.schedule import local_date

SCOPES = ("mine", "all")
# Patients computed between two yields to the event loop (the bot answers patients in between).
YIELD_EVERY = 200
# The newest answers are first looked for this far back (see _figures).
RECENT_DAYS = 14
# Sort keys, each with the value it sorts by; None (no data yet) always sorts last.
SORTS: dict[str, Callable[[Any], Any]] = {
    "alias": lambda e: e.row.alias.upper(),
    "status": lambda e: e.row.status,
    "day": lambda e: e.row.days_since_surgery,
    "adherence": lambda e: e.row.adherence_7d,
    "pain": lambda e: e.row.last_pain,
    "mood": lambda e: e.row.last_mood,
    "alerts": lambda e: e.row.open_alerts,
    "risk": lambda e: len(e.risk_reasons),
}


@dataclass(frozen=True)
class Entry:
    """One patient's line: the /patients figures, why they are at risk (empty: not at risk), whose they are."""

    row: core.PatientRow
    risk_reasons: tuple[str, ...]
    therapist_name: str
    mine: bool

    @property
    def at_risk(self) -> bool:
        return bool(self.risk_reasons)


@dataclass(frozen=True)
class Caseload:
    entries: list[Entry]
    total: int  # visible in the scope before the filters
    scope: str
    at_risk: bool
    open_alerts: bool
    sort: str
    descending: bool
    shown: int = 0  # entries after the filters, on all pages
    page: int = 1  # the page entries holds (1 when all are there)


async def _rows(session: AsyncSession, query: Any) -> Any:
    """Plain result tuples, without the ORM's per-row work (thousands of rows per query here)."""
    conn = await session.connection()
    return (await conn.execute(query)).all()


async def _last_values(
    session: AsyncSession, ids: Any, since: datetime | None
) -> dict[tuple[int, str], tuple[int, int | None]]:
    """The newest pain and mood value per patient (ties: the highest id), answered after since."""
    conditions: list[Any] = [
        col(Answer.patient_id).in_(ids),
        col(Answer.item_id).in_([*core.PAIN_ITEMS, *core.MOOD_ITEMS]),
        col(Answer.value).is_not(None),
    ]
    if since is not None:
        conditions.append(col(Answer.answered_at) > since)
    latest = (
        select(col(Answer.patient_id), col(Answer.item_id), func.max(col(Answer.answered_at)).label("at"))
        .where(*conditions)
        .group_by(col(Answer.patient_id), col(Answer.item_id))
        .subquery()
    )
    query = (
        select(col(Answer.patient_id), col(Answer.item_id), col(Answer.id), col(Answer.value))
        .join(
            latest,
            (col(Answer.patient_id) == latest.c.patient_id)
            & (col(Answer.item_id) == latest.c.item_id)
            & (col(Answer.answered_at) == latest.c.at),
        )
        .where(col(Answer.value).is_not(None))
    )
    found: dict[tuple[int, str], tuple[int, int | None]] = {}
    for pid, item, answer_id, value in await _rows(session, query):
        kind = "pain" if item in core.PAIN_ITEMS else "mood"
        if (pid, kind) not in found or answer_id > found[(pid, kind)][0]:
            found[(pid, kind)] = (answer_id, value)
    return found


async def _last_responses(session: AsyncSession, ids: Any, since: datetime | None) -> dict[int, datetime]:
    """staff.last_response's database part for many patients: the newest answer, session answer or note."""
    found: dict[int, datetime] = {}
    for column, model in (
        (Answer.answered_at, Answer),
        (ExerciseSession.answered_at, ExerciseSession),
        (Note.created_at, Note),
    ):
        query = select(col(model.patient_id), func.max(col(column))).where(col(model.patient_id).in_(ids))
        if since is not None:
            query = query.where(col(column) > since)
        for pid, value in await _rows(session, query.group_by(col(model.patient_id))):
            if value is not None:
                seen = core._aware(value)
                found[pid] = max(seen, found.get(pid, seen))
    return found


async def _figures(
    session: AsyncSession, patients: list[Patient], now: datetime, settings: StaffConfig, among: Any = None
) -> dict[int, tuple[core.PatientRow, list[str]]]:
    """The /patients figures and the risk reasons of many patients in a fixed number of queries.

    The same rules as staff.patient_row and staff.risk_for (session.compute_stats for adherence,
    staff.pain_means_of, staff.risk_reasons), fed from grouped queries instead of a dozen per patient.
    The newest values are looked for in the last RECENT_DAYS first, and over the whole history only
    for the patients with nothing that recent.
    """
    listed = [p.id for p in patients if p.id is not None]
    if not listed:
        return {}
    # The patients as a sub-select when the caller has one: 2,000 bound ids cost more to send than the query.
    ids: Any = among if among is not None else listed
    todays_by_zone: dict[str, date] = {}  # one zone conversion per time zone, not per patient
    for p in patients:
        if p.timezone not in todays_by_zone:
            todays_by_zone[p.timezone] = local_date(p, now)
    todays = {p.id: todays_by_zone[p.timezone] for p in patients}
    recent = now - timedelta(days=RECENT_DAYS)

    # Sessions of the last 7 local days counted per patient, done or partly and the other resolved
    # ones: one query per time zone (the days differ by zone). share_7d needs no more than how many
    # of each on a day of the window, so each count stands in for that many sessions.
    days: dict[int, list[tuple[date, str]]] = defaultdict(list)
    done = col(ExerciseSession.status).in_(list(session_core.DONE_STATUSES))
    for zone, today in todays_by_zone.items():
        zone_ids: Any = (
            among.where(col(Patient.timezone) == zone)
            if among is not None
            else [p.id for p in patients if p.timezone == zone]
        )
        query = (
            select(col(ExerciseSession.patient_id), done.label("done"), func.count())
            .where(
                col(ExerciseSession.patient_id).in_(zone_ids),
                col(ExerciseSession.local_date) >= today - timedelta(days=6),
                col(ExerciseSession.local_date) <= today,
                col(ExerciseSession.status).in_(list(session_core.RESOLVED_STATUSES)),
            )
            .group_by(col(ExerciseSession.patient_id), done)
        )
        for pid, is_done, count in await _rows(session, query):
            status = session_core.DONE_STATUSES[0] if is_done else session_core.Status.MISSED.value
            days[pid].extend([(today, status)] * int(count))

    last_values = await _last_values(session, ids, recent)
    older = [pid for pid in listed if (pid, "pain") not in last_values or (pid, "mood") not in last_values]
    if older:
        for key, value in (await _last_values(session, older, None)).items():
            last_values.setdefault(key, value)

    alert_counts = dict(
        await _rows(
            session,
            select(col(Alert.patient_id), func.count())
            .where(col(Alert.patient_id).in_(ids), col(Alert.acknowledged_at).is_(None))
            .group_by(col(Alert.patient_id)),
        )
    )

    gaps: dict[int, list[str]] = defaultdict(list)
    unanswered: dict[int, list[str]] = defaultdict(list)
    lessons = (
        select(
            col(LessonProgress.patient_id),
            col(LessonProgress.lesson_id),
            col(LessonProgress.wrong_answers),
            col(LessonProgress.answered_at),
        )
        .where(col(LessonProgress.patient_id).in_(ids), col(LessonProgress.safety).is_(True))
        .order_by(col(LessonProgress.id))
    )
    for pid, lesson_id, wrong, answered_at in await _rows(session, lessons):
        if wrong >= education.GAP_WRONG_ANSWERS:
            gaps[pid].append(lesson_id)
        if answered_at is None:
            unanswered[pid].append(lesson_id)

    active = [p.id for p in patients if p.id is not None and p.status == PatientStatus.ACTIVE.value]
    active_ids: Any = among.where(col(Patient.status) == PatientStatus.ACTIVE.value) if among is not None else active
    responses = await _last_responses(session, active_ids, recent) if active else {}
    silent = [pid for pid in active if pid not in responses]
    if silent:
        responses.update(await _last_responses(session, silent, None))
    last_seen: dict[int, datetime] = {}
    for p in patients:
        if p.id is None:
            continue
        candidates = [t for t in (p.last_activity_at, responses.get(p.id)) if t is not None]
        if candidates:
            last_seen[p.id] = max(candidates)

    # Pain of the last 14 days, counted per value and week: pain_means_of needs only which side
    # of now - 7 days an answer lies, so the values come split by week (pain_means_split).
    pains: dict[int, tuple[list[int], list[int]]] = {}
    middle = now - timedelta(days=7)
    later = (col(Answer.answered_at) > middle).label("later")
    query_pain = (
        select(col(Answer.patient_id), later, col(Answer.value), func.count())
        .where(
            col(Answer.patient_id).in_(ids),
            col(Answer.item_id).in_(list(core.PAIN_ITEMS)),
            col(Answer.value).is_not(None),
            col(Answer.answered_at) > now - timedelta(days=14),
            col(Answer.answered_at) <= now,
        )
        .group_by(col(Answer.patient_id), later, col(Answer.value))
    )
    for pid, is_later, value, count in await _rows(session, query_pain):
        if value is not None:
            pains.setdefault(pid, ([], []))[0 if is_later else 1].extend([value] * int(count))

    result: dict[int, tuple[core.PatientRow, list[str]]] = {}
    for n, patient in enumerate(patients):
        if n and n % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # let the bot answer patients in between (one event loop)
        pid = patient.id
        assert pid is not None
        adherence = session_core.share_7d(days[pid], todays[pid])[0]
        row = core.PatientRow(
            id=pid,
            alias=patient.alias,
            status=patient.status,
            therapist_id=patient.therapist_id,
            days_since_surgery=core.days_since_surgery(patient, now),
            adherence_7d=adherence,
            last_pain=last_values.get((pid, "pain"), (0, None))[1],
            last_mood=last_values.get((pid, "mood"), (0, None))[1],
            open_alerts=int(alert_counts.get(pid, 0)),
            lesson_gaps=tuple(gaps[pid]),
        )
        is_active = patient.status == PatientStatus.ACTIVE.value
        reasons = core.risk_reasons(
            patient,
            now,
            settings,
            last_response=last_seen.get(pid) if is_active else None,
            adherence_7d=adherence if is_active else None,
            pain=core.pain_means_split(*pains.get(pid, ((), ()))),
            unanswered_safety=unanswered[pid],
        )
        result[pid] = (row, reasons)
    return result


# Sort keys read from the patient alone, with the same value as SORTS reads from the row
# (PatientRow copies alias and status and computes days_since_surgery the same way): with one of
# these and no filter, only the page shown needs its figures.
PATIENT_SORTS: dict[str, Callable[[Any, datetime], Any]] = {
    "alias": lambda p, now: p.alias.upper(),
    "status": lambda p, now: p.status,
    "day": lambda p, now: core.days_since_surgery(p, now),
}


def _ordered(items: list[Any], key: Callable[[Any], Any], alias: Callable[[Any], str], descending: bool) -> list[Any]:
    """items by key (then alias), highest first when descending; None (no data yet) always last."""
    known = sorted((i for i in items if key(i) is not None), key=lambda i: (key(i), alias(i)))
    if descending:
        known.reverse()
    unknown = sorted((i for i in items if key(i) is None), key=alias)
    return known + unknown


async def caseload(
    session: AsyncSession,
    staff: Staff,
    now: datetime,
    settings: StaffConfig,
    *,
    scope: str | None = None,
    at_risk: bool = False,
    open_alerts: bool = False,
    sort: str = "alias",
    descending: bool = False,
    page: int | None = None,
    page_size: int = 100,
) -> Caseload:
    """The patients staff may see in scope, filtered ("at risk", "open alerts") and sorted.

    With page (1-based, past the end: the last page) only that page's entries are returned and
    Caseload.shown counts them all; without it, every entry.
    """
    scope = scope if scope in SCOPES else core.default_scope(staff)
    sort = sort if sort in SORTS else "alias"
    names = {s.id: s.name for s in await members.staff_members(session, include_inactive=True)}
    among = core.listed(select(col(Patient.id)), staff, scope)
    paged = page is not None and not at_risk and not open_alerts and sort in PATIENT_SORTS
    if paged:  # the order needs no figures: the page's patients first, then only their figures
        # Only the columns the sort reads, as plain rows (the same attribute names as Patient).
        columns = select_columns(
            col(Patient.id), col(Patient.alias), col(Patient.status), col(Patient.surgery_date), col(Patient.timezone)
        )
        light = list(await _rows(session, core.listed(columns, staff, scope)))
        patient_key = PATIENT_SORTS[sort]
        ordered = _ordered(light, lambda p: patient_key(p, now), lambda p: p.alias.upper(), descending)
        page_no = min(max(1, page or 1), max(1, -(-len(ordered) // page_size)))
        ids = [p.id for p in ordered[(page_no - 1) * page_size : page_no * page_size]]
        found = {p.id: p for p in (await session.exec(select(Patient).where(col(Patient.id).in_(ids)))).all()}
        patients = [found[pid] for pid in ids]
        among = among.where(col(Patient.id).in_(ids))
    else:
        patients = list((await session.exec(core.listed(select(Patient), staff, scope))).all())
    figures = await _figures(session, patients, now, settings, among)
    entries = []
    for patient in patients:
        assert patient.id is not None
        row, reasons = figures[patient.id]
        entries.append(
            Entry(
                row=row,
                risk_reasons=tuple(reasons),
                therapist_name=names.get(row.therapist_id, "") if row.therapist_id is not None else "",
                mine=row.therapist_id == staff.id,
            )
        )
    if paged:
        return Caseload(
            entries=entries,  # already in order
            total=len(ordered),
            scope=scope,
            at_risk=at_risk,
            open_alerts=open_alerts,
            sort=sort,
            descending=descending,
            shown=len(ordered),
            page=page_no,
        )
    shown = [e for e in entries if (not at_risk or e.at_risk) and (not open_alerts or e.row.open_alerts)]
    key = SORTS[sort]
    result = _ordered(shown, key, lambda e: e.row.alias.upper(), descending)
    page_no = 1
    if page is not None:
        page_no = min(max(1, page), max(1, -(-len(result) // page_size)))
        result = result[(page_no - 1) * page_size : page_no * page_size]
    return Caseload(
        entries=result,
        total=len(patients),
        scope=scope,
        at_risk=at_risk,
        open_alerts=open_alerts,
        sort=sort,
        descending=descending,
        shown=len(shown),
        page=page_no,
    )
