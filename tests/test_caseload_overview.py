"""The web caseload's grouped figures equal /patients' and the digest's, patient by patient."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select
from web_seed import seed_clinic

from rehab_bot import caseload as core
from rehab_bot import caseload_overview as overview
from rehab_bot.clock import FakeClock
from rehab_bot.config import StaffConfig
from rehab_bot.db import Database
from rehab_bot.models import Patient, Staff


async def test_grouped_figures_equal_patient_row_and_risk_for(db: Database, clock: FakeClock) -> None:
    clinic = await seed_clinic(db, clock.now(), patients=30, days=20)
    settings = StaffConfig()
    async with db.session() as session:
        admin = await session.get(Staff, clinic.admin_id)
        assert admin is not None
        result = await overview.caseload(session, admin, clock.now(), settings, scope="all")
        assert result.total == 30 and len(result.entries) == 30
        patients = {p.id: p for p in (await session.exec(select(Patient))).all()}
        at_risk = 0
        for entry in result.entries:
            patient = patients[entry.row.id]
            assert entry.row == await core.patient_row(session, patient, clock.now())
            risk = await core.risk_for(session, patient, clock.now(), settings)
            assert list(entry.risk_reasons) == (risk.reasons if risk is not None else [])
            at_risk += entry.at_risk
        assert 0 < at_risk < 30  # the data has both


async def test_filters_scope_and_sort(db: Database, clock: FakeClock) -> None:
    clinic = await seed_clinic(db, clock.now(), patients=20, days=10)
    async with db.session() as session:
        ben = await session.get(Staff, clinic.ben_id)
        assert ben is not None
        now, settings = clock.now() + timedelta(hours=1), StaffConfig()
        mine = await overview.caseload(session, ben, now, settings)
        assert mine.scope == "mine" and {e.mine for e in mine.entries} == {True} and mine.total == 10
        everyone = await overview.caseload(session, ben, now, settings, scope="all")
        assert everyone.total == 20
        alerts = await overview.caseload(session, ben, now, settings, scope="all", open_alerts=True)
        assert alerts.entries and all(e.row.open_alerts for e in alerts.entries)
        risky = await overview.caseload(session, ben, now, settings, scope="all", at_risk=True)
        assert risky.entries and all(e.at_risk for e in risky.entries)
        by_pain = await overview.caseload(session, ben, now, settings, scope="all", sort="pain", descending=True)
        pains = [e.row.last_pain for e in by_pain.entries if e.row.last_pain is not None]
        assert pains == sorted(pains, reverse=True)
        odd = await overview.caseload(session, ben, now, settings, scope="nonsense", sort="nonsense")
        assert odd.scope == "mine" and odd.sort == "alias"


async def test_a_page_equals_the_same_slice_of_the_whole_list(db: Database, clock: FakeClock) -> None:
    """Paged (figures of the page's patients only, or of all when a filter or figure sorts) = sliced."""
    clinic = await seed_clinic(db, clock.now(), patients=23, days=10)
    async with db.session() as session:
        admin = await session.get(Staff, clinic.admin_id)
        assert admin is not None
        now, settings = clock.now(), StaffConfig()
        for sort in ("alias", "status", "day", "pain", "risk"):
            for options in ({}, {"descending": True}, {"at_risk": True}, {"open_alerts": True}):
                whole = await overview.caseload(session, admin, now, settings, scope="all", sort=sort, **options)
                for page in (1, 3, 99):
                    part = await overview.caseload(
                        session, admin, now, settings, scope="all", sort=sort, page=page, page_size=10, **options
                    )
                    last = max(1, -(-len(whole.entries) // 10))
                    assert part.page == min(page, last)
                    assert part.entries == whole.entries[(part.page - 1) * 10 : part.page * 10], (sort, options, page)
                    assert (part.shown, part.total) == (len(whole.entries), whole.total)
