"""The caseload at a glance: every patient a staff member may see, with the figures and risk flag.

What the web app's caseload page shows, filtered and sorted here so that no
rule lives in a front end. Visibility and the figures are the same as /patients
(rehab_bot.caseload.listed and patient_row: "mine" is the therapist's own
patients, "all" everyone in care or discharged); the risk flag is the weekly
digest's (rehab_bot.caseload.risk_reason_list, as risk_for applies it). The
figures of many patients are computed with a fixed number of grouped queries
and kept per patient in caseload_figures (models.CaseloadFigures): a cache of
the rules' output, valid until time alone would change it and cleared by
database triggers whenever the patient's data changes. A filtered or sorted
page over 2,000 patients then reads one row per patient and recomputes only the
stale ones (bench/web.py); tests/test_caseload_overview.py checks the figures
equal patient_row and risk_for patient by patient, before and after each kind
of change.

Plain Python over SQLModel: no telegram or web imports.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, update
from sqlalchemy import select as select_columns
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import __version__, education
from rehab_bot import caseload as core
from rehab_bot import session as session_core
from rehab_bot import staff as members
from rehab_bot.config import StaffConfig
from rehab_bot.db import insert_ignore
from rehab_bot.models import (
    Alert,
    Answer,
    CaseloadFigures,
    ExerciseSession,
    LessonProgress,
    Note,
    Patient,
    PatientStatus,
    Staff,
)
from rehab_bot.schedule import local_date

SCOPES = ("mine", "all")
# Patients computed between two yields to the event loop (the bot answers patients in between).
YIELD_EVERY = 200
# The newest answers are first looked for this far back (see _figures).
RECENT_DAYS = 14
FIGURES = CaseloadFigures.__table__  # type: ignore[attr-defined]


class Line(NamedTuple):
    """One patient's figures as stored (or just computed): what the filters and sorts read."""

    id: int
    alias: str
    status: str
    therapist_id: int | None
    days_since_surgery: int | None
    adherence_7d: float | None
    last_pain: int | None
    last_mood: int | None
    open_alerts: int
    risk_count: int
    lesson_gaps: str  # JSON, as stored
    risk: str  # JSON, as stored


# Sort keys, each with the value it sorts by; None (no data yet) always sorts last.
SORTS: dict[str, Callable[[Line], Any]] = {
    "alias": lambda line: line.alias.upper(),
    "status": lambda line: line.status,
    "day": lambda line: line.days_since_surgery,
    "adherence": lambda line: line.adherence_7d,
    "pain": lambda line: line.last_pain,
    "mood": lambda line: line.last_mood,
    "alerts": lambda line: line.open_alerts,
    "risk": lambda line: line.risk_count,
}
# Sorts read from the patient alone: with one of these and no filter only the page's figures must be current.
PATIENT_SORTS = ("alias", "status", "day")


@dataclass(frozen=True)
class Entry:
    """One patient's line: the /patients figures, why they are at risk (empty: not at risk), whose they are."""

    row: core.PatientRow
    risk_reasons: tuple[core.RiskReason, ...]
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
) -> dict[int, Computed]:
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
    # of now - 7 days an answer lies, so the values come split by week (pain_means_split). The
    # oldest answer of each week says when the means next change with time alone (see Computed).
    pains: dict[int, tuple[list[int], list[int]]] = {}
    pain_moves: dict[int, datetime] = {}
    middle = now - timedelta(days=7)
    later = (col(Answer.answered_at) > middle).label("later")
    pain_answers = (
        col(Answer.patient_id).in_(ids),
        col(Answer.item_id).in_(list(core.PAIN_ITEMS)),
        col(Answer.value).is_not(None),
    )
    query_pain = (
        select_columns(
            col(Answer.patient_id), later, col(Answer.value), func.count(), func.min(col(Answer.answered_at))
        )
        .where(*pain_answers, col(Answer.answered_at) > now - timedelta(days=14), col(Answer.answered_at) <= now)
        .group_by(col(Answer.patient_id), later, col(Answer.value))
    )
    for pid, is_later, value, count, oldest in await _rows(session, query_pain):
        if value is not None:
            pains.setdefault(pid, ([], []))[0 if is_later else 1].extend([value] * int(count))
            # An answer of the last week moves to the week before 7 days after it, one of that week leaves at 14.
            moves = core._aware(oldest) + timedelta(days=7 if is_later else 14)
            pain_moves[pid] = min(moves, pain_moves.get(pid, moves))
    query_future = (
        select(col(Answer.patient_id), func.min(col(Answer.answered_at)))
        .where(*pain_answers, col(Answer.answered_at) > now)
        .group_by(col(Answer.patient_id))
    )
    for pid, first in await _rows(session, query_future):  # answers stamped ahead of now enter the window later
        if first is not None:
            moves = core._aware(first)
            pain_moves[pid] = min(moves, pain_moves.get(pid, moves))
    midnights = {zone: session_core.day_end(today, zone) for zone, today in todays_by_zone.items()}

    result: dict[int, Computed] = {}
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
        reasons = core.risk_reason_list(
            patient,
            now,
            settings,
            last_response=last_seen.get(pid) if is_active else None,
            adherence_7d=adherence if is_active else None,
            pain=core.pain_means_split(*pains.get(pid, ((), ()))),
            unanswered_safety=unanswered[pid],
        )
        # Until when these hold with no change to the data: the local day (adherence, day after
        # surgery), a whole day more of silence (risk_reason_list counts (now - since).days), pain moving.
        changes = [midnights[patient.timezone]]
        if is_active:
            since = last_seen.get(pid) or patient.consent_at or patient.created_at
            changes.append(since + timedelta(days=(now - since).days + 1))
        if pid in pain_moves:
            changes.append(pain_moves[pid])
        result[pid] = Computed(row, reasons, min(changes))
    return result


@dataclass(frozen=True)
class Computed:
    """One patient's figures and risk reasons, and the instant time alone would change them."""

    row: core.PatientRow
    reasons: list[core.RiskReason]
    valid_until: datetime


def settings_key(settings: StaffConfig) -> str:
    """What stored figures were computed under: the rules' settings and the code's version."""
    return "|".join(
        map(
            str,
            (__version__, settings.digest_no_response_days, settings.digest_low_adherence, settings.digest_pain_rise),
        )
    )


def _reasons_json(reasons: Iterable[core.RiskReason]) -> str:
    return json.dumps([[r.kind, dict(r.values)] for r in reasons], ensure_ascii=False)


def _reasons_of(stored: str) -> tuple[core.RiskReason, ...]:
    return tuple(core.RiskReason(kind, tuple(values.items())) for kind, values in json.loads(stored or "[]"))


def _line(computed: Computed) -> Line:
    row = computed.row
    return Line(
        id=row.id,
        alias=row.alias,
        status=row.status,
        therapist_id=row.therapist_id,
        days_since_surgery=row.days_since_surgery,
        adherence_7d=row.adherence_7d,
        last_pain=row.last_pain,
        last_mood=row.last_mood,
        open_alerts=row.open_alerts,
        risk_count=len(computed.reasons),
        lesson_gaps=json.dumps(list(row.lesson_gaps), ensure_ascii=False),
        risk=_reasons_json(computed.reasons),
    )


async def _store(
    session: AsyncSession, computed: dict[int, Computed], generations: dict[int, int | None], key: str, now: datetime
) -> None:
    """Write recomputed figures back, each only if no change came since its generation was read.

    A patient without a row (made before the triggers) gets an empty, stale one to be filled next time.
    On PostgreSQL the rows are locked without waiting first (SKIP LOCKED): a row a writer holds is
    being changed anyway, and the caseload never waits on, or deadlocks with, the bot's writes.
    """
    if not computed:
        return
    conn = await session.connection()
    missing = [pid for pid in computed if generations.get(pid) is None]
    if missing:
        await conn.execute(
            insert_ignore(conn.dialect.name, FIGURES, keys=["patient_id"]),
            [
                {
                    "patient_id": pid,
                    "generation": 0,
                    "settings_key": "",
                    "open_alerts": 0,
                    "lesson_gaps": "",
                    "risk": "",
                    "risk_count": 0,
                }
                for pid in missing
            ],
        )
    known = [pid for pid in computed if generations.get(pid) is not None]
    if conn.dialect.name == "postgresql" and known:
        locked = (
            select_columns(FIGURES.c.patient_id)
            .where(FIGURES.c.patient_id.in_(known))
            .with_for_update(skip_locked=True)
        )
        known = list((await conn.execute(locked)).scalars())
    if not known:
        return
    statement = (
        update(FIGURES)
        .where(FIGURES.c.patient_id == bindparam("b_id"), FIGURES.c.generation == bindparam("b_generation"))
        .values(
            valid_until=bindparam("b_valid_until"),
            settings_key=bindparam("b_key"),
            computed_at=bindparam("b_now"),
            adherence_7d=bindparam("b_adherence"),
            last_pain=bindparam("b_pain"),
            last_mood=bindparam("b_mood"),
            open_alerts=bindparam("b_alerts"),
            lesson_gaps=bindparam("b_gaps"),
            risk=bindparam("b_risk"),
            risk_count=bindparam("b_risk_count"),
        )
    )
    rows = []
    for pid in known:
        line, figures = _line(computed[pid]), computed[pid]
        rows.append(
            {
                "b_id": pid,
                "b_generation": generations[pid],
                "b_valid_until": figures.valid_until,
                "b_key": key,
                "b_now": now,
                "b_adherence": line.adherence_7d,
                "b_pain": line.last_pain,
                "b_mood": line.last_mood,
                "b_alerts": line.open_alerts,
                "b_gaps": line.lesson_gaps,
                "b_risk": line.risk,
                "b_risk_count": line.risk_count,
            }
        )
    await conn.execute(statement, rows)


async def refresh_stale(session: AsyncSession, now: datetime, settings: StaffConfig, *, limit: int = 200) -> int:
    """Recompute up to limit patients' stale figures ahead of any page (the caller commits); how many.

    The web app calls this in the background (rehab_bot/web/app.py), so that after a local midnight,
    when every row of that zone lapses at once, the first filtered page does not pay for all of them.
    """
    f = FIGURES.c
    key = settings_key(settings)
    query = (
        select_columns(col(Patient.id), f.generation)
        .select_from(Patient.__table__.join(FIGURES, f.patient_id == col(Patient.id)))  # type: ignore[attr-defined]
        .where(
            col(Patient.status) != PatientStatus.STOPPED.value,
            f.valid_until.is_(None) | (f.valid_until <= now) | (f.settings_key != key),
        )
        .limit(limit)
    )
    generations = {pid: generation for pid, generation in await _rows(session, query)}
    if not generations:
        return 0
    patients = list((await session.exec(select(Patient).where(col(Patient.id).in_(list(generations))))).all())
    await _store(session, await _figures(session, patients, now, settings), dict(generations), key, now)
    return len(generations)


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
    Caseload.shown counts them all; without it, every entry. The figures come from
    caseload_figures; those stale (or missing) among the patients the answer needs are recomputed
    and written back (the caller commits): all of them for a filter or a figure's sort, the page's
    only for a sort by alias, status or day with no filter.
    """
    scope = scope if scope in SCOPES else core.default_scope(staff)
    sort = sort if sort in SORTS else "alias"
    names = {s.id: s.name for s in await members.staff_members(session, include_inactive=True)}
    f = FIGURES.c
    columns = select_columns(
        col(Patient.id),
        col(Patient.alias),
        col(Patient.status),
        col(Patient.therapist_id),
        col(Patient.surgery_date),
        col(Patient.timezone),
        f.generation,
        f.valid_until,
        f.settings_key,
        f.adherence_7d,
        f.last_pain,
        f.last_mood,
        f.open_alerts,
        f.risk_count,
        f.lesson_gaps,
        f.risk,
    ).select_from(Patient.__table__.outerjoin(FIGURES, f.patient_id == col(Patient.id)))  # type: ignore[attr-defined]
    # The generations are read before any figure is recomputed: a change after this read bumps them.
    stored = list(await _rows(session, core.listed(columns, staff, scope)))
    key = settings_key(settings)
    todays: dict[str, date] = {}
    lines: dict[int, Line] = {}
    for r in stored:
        if r.timezone not in todays:
            todays[r.timezone] = local_date(r, now)
        day = (todays[r.timezone] - r.surgery_date).days if r.surgery_date is not None else None
        lines[r.id] = Line(
            r.id,
            r.alias,
            r.status,
            r.therapist_id,
            day,
            r.adherence_7d,
            r.last_pain,
            r.last_mood,
            r.open_alerts or 0,
            r.risk_count or 0,
            r.lesson_gaps or "[]",
            r.risk or "[]",
        )

    def stale(r: Any) -> bool:
        return r.valid_until is None or r.valid_until <= now or r.settings_key != key

    paged = page is not None and not at_risk and not open_alerts and sort in PATIENT_SORTS
    if paged:  # the order needs no figures: only the page's patients need current ones
        ordered = _ordered(list(lines.values()), SORTS[sort], lambda line: line.alias.upper(), descending)
        page_no = min(max(1, page or 1), max(1, -(-len(ordered) // page_size)))
        needed = {line.id for line in ordered[(page_no - 1) * page_size : page_no * page_size]}
    else:
        needed = set(lines)
    outdated = [r for r in stored if r.id in needed and stale(r)]
    if outdated:
        whole = len(outdated) == len(stored)
        ids = [r.id for r in outdated]
        patients = list((await session.exec(select(Patient).where(col(Patient.id).in_(ids)))).all())
        # The patients as a sub-select when all are recomputed: 2,000 bound ids cost more to send than the query.
        among = core.listed(select(col(Patient.id)), staff, scope) if whole else None
        computed = await _figures(session, patients, now, settings, among)
        await _store(session, computed, {r.id: r.generation for r in outdated}, key, now)
        for pid, figures in computed.items():
            lines[pid] = _line(figures)

    if paged:
        shown = [lines[line.id] for line in ordered[(page_no - 1) * page_size : page_no * page_size]]
        count = len(ordered)
    else:
        matching = [
            line
            for line in lines.values()
            if (not at_risk or line.risk_count) and (not open_alerts or line.open_alerts)
        ]
        result = _ordered(matching, SORTS[sort], lambda line: line.alias.upper(), descending)
        count = len(result)
        page_no = 1
        if page is not None:
            page_no = min(max(1, page), max(1, -(-len(result) // page_size)))
            result = result[(page_no - 1) * page_size : page_no * page_size]
        shown = result
    return Caseload(
        entries=[_entry(line, staff, names) for line in shown],
        total=len(lines),
        scope=scope,
        at_risk=at_risk,
        open_alerts=open_alerts,
        sort=sort,
        descending=descending,
        shown=count,
        page=page_no,
    )


def _entry(line: Line, staff: Staff, names: dict[int | None, str]) -> Entry:
    row = core.PatientRow(
        id=line.id,
        alias=line.alias,
        status=line.status,
        therapist_id=line.therapist_id,
        days_since_surgery=line.days_since_surgery,
        adherence_7d=line.adherence_7d,
        last_pain=line.last_pain,
        last_mood=line.last_mood,
        open_alerts=line.open_alerts,
        lesson_gaps=tuple(json.loads(line.lesson_gaps or "[]")),
    )
    return Entry(
        row=row,
        risk_reasons=_reasons_of(line.risk),
        therapist_name=names.get(line.therapist_id, "") if line.therapist_id is not None else "",
        mine=line.therapist_id == staff.id,
    )
