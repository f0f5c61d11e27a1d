"""The caseload at a glance: every patient a staff member may see, with the figures and risk flag.

What the web app's caseload page shows, filtered and sorted here so that no
rule lives in a front end. Visibility and the figures are the same as /patients
(rehab_bot.caseload.patient_page and patient_row: "mine" is the therapist's own
patients, "all" everyone in care or discharged); the risk flag is the weekly
digest's (rehab_bot.caseload.risk_for).

Plain Python over SQLModel: no telegram or web imports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import caseload as core
from rehab_bot import staff as members
from rehab_bot.config import StaffConfig
from rehab_bot.models import Patient, Staff

SCOPES = ("mine", "all")
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
MAX_PATIENTS = 100_000


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
) -> Caseload:
    """The patients staff may see in scope, filtered ("at risk", "open alerts") and sorted."""
    page = await core.patient_page(session, staff, now, scope=scope, page=0, page_size=MAX_PATIENTS)
    ids = [row.id for row in page.rows]
    patients = {p.id: p for p in (await session.exec(select(Patient).where(col(Patient.id).in_(ids)))).all()}
    names = {s.id: s.name for s in await members.staff_members(session, include_inactive=True)}
    entries = []
    for row in page.rows:
        risk = await core.risk_for(session, patients[row.id], now, settings)
        entries.append(
            Entry(
                row=row,
                risk_reasons=tuple(risk.reasons) if risk is not None else (),
                therapist_name=names.get(row.therapist_id, "") if row.therapist_id is not None else "",
                mine=row.therapist_id == staff.id,
            )
        )
    shown = [e for e in entries if (not at_risk or e.at_risk) and (not open_alerts or e.row.open_alerts)]
    sort = sort if sort in SORTS else "alias"
    key = SORTS[sort]
    known = sorted((e for e in shown if key(e) is not None), key=lambda e: (key(e), e.row.alias.upper()))
    if descending:
        known.reverse()
    unknown = sorted((e for e in shown if key(e) is None), key=lambda e: e.row.alias.upper())
    return Caseload(
        entries=known + unknown,
        total=page.total,
        scope=page.scope,
        at_risk=at_risk,
        open_alerts=open_alerts,
        sort=sort,
        descending=descending,
    )
