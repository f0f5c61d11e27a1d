"""The web caseload's grouped figures equal /patients' and the digest's, patient by patient."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, text, update
from sqlmodel import col, select
from web_seed import seed_clinic

from rehab_bot import caseload as core
from rehab_bot import caseload_overview as overview
from rehab_bot import patient as patient_core
from rehab_bot.clock import FakeClock
from rehab_bot.config import StaffConfig
from rehab_bot.db import Database
from rehab_bot.models import Alert, Answer, CheckIn, ExerciseSession, LessonProgress, Note, Patient, Staff
from rehab_bot.schedule import local_date


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
            assert [r.text() for r in entry.risk_reasons] == (risk.reasons if risk is not None else [])
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


# --- the stored figures (caseload_figures) ----------------------------------------------


async def _assert_as_computed(session: Any, staff: Staff, now: datetime, settings: StaffConfig) -> dict[int, Any]:
    """Every entry of the whole caseload (stored figures, recomputed where stale) equals the rules' own answer."""
    result = await overview.caseload(session, staff, now, settings, scope="all")
    patients = {p.id: p for p in (await session.exec(select(Patient))).all()}
    for entry in result.entries:
        patient = patients[entry.row.id]
        assert entry.row == await core.patient_row(session, patient, now), entry.row.alias
        risk = await core.risk_for(session, patient, now, settings)
        assert [r.text() for r in entry.risk_reasons] == (risk.reasons if risk is not None else []), entry.row.alias
    await session.commit()
    return {e.row.id: e for e in result.entries}


async def test_stored_figures_equal_the_computed_ones_after_each_kind_of_change(db: Database, clock: FakeClock) -> None:
    clinic = await seed_clinic(db, clock.now(), patients=8, days=20)
    settings = StaffConfig()
    now = clock.now()
    async with db.session() as session:
        admin = await session.get(Staff, clinic.admin_id)
        assert admin is not None
        before = await _assert_as_computed(session, admin, now, settings)
        ids = sorted(before)

        async def changed(pid: int, change: Any) -> None:
            nonlocal before
            await change(pid)
            await session.commit()
            after = await _assert_as_computed(session, admin, now, settings)
            assert after[pid] != before[pid], f"the change to {pid} shows"  # so the stored row was not reused
            before = after

        async def pain_answer(pid: int) -> None:
            top = (await session.exec(select(func.max(CheckIn.id)))).one() or 0  # the seed sets ids itself
            checkin = CheckIn(id=top + 1, patient_id=pid, questionnaire_id="pain", status="complete", started_at=now)
            session.add(checkin)
            await session.flush()
            assert checkin.id is not None
            session.add(Answer(checkin_id=checkin.id, patient_id=pid, item_id="pain", value=10, answered_at=now))

        async def session_missed(pid: int) -> None:  # a Core UPDATE, as the end-of-day sweep writes
            today = (await session.exec(select(ExerciseSession).where(ExerciseSession.patient_id == pid))).all()
            done = [s.id for s in today if s.status in ("done", "partly")]
            await session.exec(update(ExerciseSession).where(col(ExerciseSession.id).in_(done)).values(status="missed"))

        async def alert_raised(pid: int) -> None:
            session.add(Alert(patient_id=pid, severity="high", kind="red_flag", created_at=now))

        async def alerts_acknowledged(pid: int) -> None:
            await session.exec(update(Alert).where(col(Alert.patient_id) == pid).values(acknowledged_at=now))

        async def safety_lesson_out(pid: int) -> None:
            session.add(LessonProgress(patient_id=pid, lesson_id="lifting", safety=True, delivered_at=now))

        async def paused(pid: int) -> None:
            patient = await session.get(Patient, pid)
            assert patient is not None
            until = patient_core.pause_until_for(3, local_date(patient, now))
            await patient_core.pause(session, patient, until, now, staff=admin)

        async def silent_since_long(pid: int) -> None:  # the patient's own row: no answers, notes, sessions left
            await session.exec(delete(Answer).where(col(Answer.patient_id) == pid))
            await session.exec(delete(Note).where(col(Note.patient_id) == pid))
            await session.exec(delete(ExerciseSession).where(col(ExerciseSession.patient_id) == pid))
            patient = await session.get(Patient, pid)
            assert patient is not None
            patient.last_activity_at = None
            session.add(patient)

        await changed(ids[0], pain_answer)
        await changed(ids[1], session_missed)
        await changed(ids[2], alert_raised)
        await changed(ids[2], alerts_acknowledged)
        await changed(ids[3], safety_lesson_out)
        await changed(ids[4], paused)
        await changed(ids[5], silent_since_long)
        # Time alone: the next local day (adherence window, day after surgery), a week on (pain, silence).
        for later in (timedelta(hours=1), timedelta(days=1), timedelta(days=8)):
            await _assert_as_computed(session, admin, now + later, settings)
        # Other settings: the rows computed under the old ones are not used.
        await _assert_as_computed(session, admin, now + timedelta(days=8), StaffConfig(digest_low_adherence=0.99))


async def test_figures_are_recomputed_only_for_patients_whose_data_changed(
    db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clinic = await seed_clinic(db, clock.now(), patients=6, days=5)
    settings, now = StaffConfig(), clock.now()
    recomputed: list[list[int]] = []
    real = overview._figures

    async def counting(session: Any, patients: list[Patient], *args: Any, **kwargs: Any) -> Any:
        recomputed.append(sorted(p.id for p in patients if p.id is not None))
        return await real(session, patients, *args, **kwargs)

    monkeypatch.setattr(overview, "_figures", counting)
    async with db.session() as session:
        admin = await session.get(Staff, clinic.admin_id)
        assert admin is not None
        first = await overview.caseload(session, admin, now, settings, scope="all", at_risk=True)
        await session.commit()
        assert len(recomputed) == 1 and len(recomputed[0]) == 6
        again = await overview.caseload(session, admin, now, settings, scope="all", at_risk=True)
        await session.commit()
        assert len(recomputed) == 1 and again.entries == first.entries  # read back, nothing recomputed
        pid = recomputed[0][2]
        session.add(Note(patient_id=pid, text="better today", created_at=now))
        await session.commit()
        await overview.caseload(session, admin, now, settings, scope="all", sort="pain")
        assert recomputed[1:] == [[pid]]


async def test_a_change_committed_while_figures_are_computed_leaves_the_row_stale(
    db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The triggers bump the generation: figures read before a concurrent change are not stored as current."""
    clinic = await seed_clinic(db, clock.now(), patients=3, days=5)
    settings, now = StaffConfig(), clock.now()
    real = overview._figures
    raced: list[int] = []

    async def racing(session: Any, patients: list[Patient], *args: Any, **kwargs: Any) -> Any:
        result = await real(session, patients, *args, **kwargs)
        if not raced:  # another connection alerts on the first patient after its figures were read
            raced.append(patients[0].id or 0)
            async with db.session() as other:
                other.add(Alert(patient_id=raced[0], severity="high", kind="red_flag", created_at=now))
                await other.commit()
        return result

    monkeypatch.setattr(overview, "_figures", racing)
    async with db.session() as session:
        admin = await session.get(Staff, clinic.admin_id)
        assert admin is not None
        first = await overview.caseload(session, admin, now, settings, scope="all")
        await session.commit()
        shown = {e.row.id: e.row.open_alerts for e in first.entries}
        fresh = await overview.caseload(session, admin, now, settings, scope="all")
        assert {e.row.id: e.row.open_alerts for e in fresh.entries}[raced[0]] == shown[raced[0]] + 1
        await _assert_as_computed(session, admin, now, settings)


async def test_the_triggers_are_there(db: Database) -> None:
    """A table rebuilt by a later SQLite batch migration loses its triggers: this says so."""
    async with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            query = "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'cf_%' AND NOT tgisinternal"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'cf_%'"
        names = set((await conn.execute(text(query))).scalars())
    tables = ("exercise_session", "answer", "alert", "note", "lesson_progress")
    if db.dialect == "postgresql":
        assert names == {f"cf_{t}" for t in (*tables, "patient")} | {"cf_exercise_session_ins"}
    else:
        assert names == {f"cf_{t}_{e}" for t in tables for e in ("ins", "del", "upd")} | {
            "cf_patient_ins",
            "cf_patient_upd",
        }


def test_risk_reasons_are_written_in_the_reader_s_language() -> None:
    from rehab_bot.i18n import translator

    reason = core.RiskReason("pain", (("before", "3.0"), ("recent", "5.5")))
    assert reason.text() == "pain rising: mean 3.0 → 5.5"
    assert reason.text(translator("de")) == "Schmerz steigt: Mittel 3.0 → 5.5"
    assert (
        core.RiskReason("unreachable").text(translator("de"))
        == "nicht erreichbar: Telegram weist unsere Nachrichten ab"
    )


async def test_stale_figures_are_refreshed_ahead_of_the_page(
    db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the web app does in the background: after it, a filtered page recomputes nobody."""
    clinic = await seed_clinic(db, clock.now(), patients=5, days=3)
    settings, now = StaffConfig(), clock.now()
    async with db.session() as session:
        assert await overview.refresh_stale(session, now, settings, limit=3) == 3
        await session.commit()
        assert await overview.refresh_stale(session, now, settings, limit=3) == 2
        await session.commit()
        assert await overview.refresh_stale(session, now, settings) == 0
        recomputed: list[int] = []
        real = overview._figures

        async def counting(session: Any, patients: list[Patient], *args: Any, **kwargs: Any) -> Any:
            recomputed.extend(p.id or 0 for p in patients)
            return await real(session, patients, *args, **kwargs)

        monkeypatch.setattr(overview, "_figures", counting)
        admin = await session.get(Staff, clinic.admin_id)
        assert admin is not None
        await overview.caseload(session, admin, now, settings, scope="all", at_risk=True)
        assert recomputed == []
        await session.rollback()
        # The next local day: every row lapses and is refreshed again.
        assert await overview.refresh_stale(session, now + timedelta(days=1), settings) == 5
        await session.commit()
    await _assert_as_computed_in(db, clinic.admin_id, now + timedelta(days=1), settings)


async def _assert_as_computed_in(db: Database, staff_id: int, now: datetime, settings: StaffConfig) -> None:
    async with db.session() as session:
        staff = await session.get(Staff, staff_id)
        assert staff is not None
        await _assert_as_computed(session, staff, now, settings)


async def test_a_pending_session_opened_by_the_engine_leaves_the_figures_current(
    db: Database, clock: FakeClock
) -> None:
    """The reminder engine's hot path (a pending, unanswered session per reminder) fires no trigger work."""
    clinic = await seed_clinic(db, clock.now(), patients=2, days=2)
    settings, now = StaffConfig(), clock.now()
    async with db.session() as session:
        admin = await session.get(Staff, clinic.admin_id)
        assert admin is not None
        await overview.caseload(session, admin, now, settings, scope="all")
        await session.commit()
        f = overview.FIGURES.c
        before = dict((await session.exec(select(f.patient_id, f.generation))).all())  # type: ignore[call-overload]
        tomorrow = (now + timedelta(days=1)).date()
        session.add(ExerciseSession(patient_id=1, local_date=tomorrow, slot="23:59", status="pending"))
        await session.commit()
        assert dict((await session.exec(select(f.patient_id, f.generation))).all()) == before  # type: ignore[call-overload]
        session.add(ExerciseSession(patient_id=1, local_date=tomorrow, slot="23:58", status="done", answered_at=now))
        await session.commit()
        after = dict((await session.exec(select(f.patient_id, f.generation))).all())  # type: ignore[call-overload]
        assert after[1] == before[1] + 1 and after[2] == before[2]
