"""Deleting a clinic programme template: its author or an admin, audited; patients' own plans are untouched."""

from __future__ import annotations

import pytest
from sqlmodel import col, select
from web_seed import seed_clinic

from rehab_bot import audit, plan, programme
from rehab_bot.access import Forbidden
from rehab_bot.clock import FakeClock
from rehab_bot.db import Database
from rehab_bot.models import AuditLog, ProgrammePlan, Staff


async def test_the_author_or_an_admin_deletes_a_template_and_it_is_audited(db: Database, clock: FakeClock) -> None:
    clinic = await seed_clinic(db, clock.now(), patients=2, days=1)
    now = clock.now()
    async with db.session() as session:
        ben = await session.get(Staff, clinic.ben_id)
        cleo = await session.get(Staff, clinic.cleo_id)
        admin = await session.get(Staff, clinic.admin_id)
        assert ben is not None and cleo is not None and admin is not None
        rows = [ProgrammePlan(name=f"T{n}", body="{}", created_by=ben.id, created_at=now) for n in range(2)]
        own = ProgrammePlan(patient_id=1, body="{}", created_by=ben.id, created_at=now)
        session.add_all([*rows, own])
        await session.commit()
        first, second = (r.id for r in rows)
        assert first is not None and second is not None and own.id is not None

        with pytest.raises(Forbidden):
            await programme.delete_template(session, cleo, first, now)  # a colleague
        assert await programme.delete_template(session, ben, first, now, actor="web:1") == "T0"
        assert await programme.delete_template(session, admin, second, now) == "T1"
        with pytest.raises(plan.PlanError):
            await programme.delete_template(session, admin, second, now)  # gone
        with pytest.raises(plan.PlanError):
            await programme.delete_template(session, admin, own.id, now)  # a patient's own plan is no template
        await session.commit()
        assert await plan.templates(session) == []
        assert await session.get(ProgrammePlan, own.id) is not None
        logged = (
            await session.exec(
                select(AuditLog).where(col(AuditLog.action) == audit.TEMPLATE_DELETE).order_by(col(AuditLog.id))
            )
        ).all()
        assert [(r.staff_id, r.detail) for r in logged] == [
            (ben.id, f"template={first}"),
            (admin.id, f"template={second}"),
        ]


async def test_a_removed_author_may_not_delete(db: Database, clock: FakeClock) -> None:
    clinic = await seed_clinic(db, clock.now(), patients=1, days=1)
    async with db.session() as session:
        ben = await session.get(Staff, clinic.ben_id)
        assert ben is not None
        row = ProgrammePlan(name="Old", body="{}", created_by=ben.id, created_at=clock.now())
        session.add(row)
        ben.active = False
        session.add(ben)
        await session.commit()
        assert row.id is not None
        with pytest.raises(Forbidden):
            await programme.delete_template(session, ben, row.id, clock.now())


async def test_a_deleted_templates_id_is_never_given_to_a_newer_template(db: Database, clock: FakeClock) -> None:
    """A Delete button or builder choice still showing a deleted template must not reach a newer one.

    SQLite without AUTOINCREMENT gave the next template the deleted newest one's id; PostgreSQL's
    sequence never reuses one. Both backends run this.
    """
    clinic = await seed_clinic(db, clock.now(), patients=1, days=1)
    now = clock.now()
    async with db.session() as session:
        ben = await session.get(Staff, clinic.ben_id)
        assert ben is not None
        old = ProgrammePlan(name="Old", body="{}", created_by=ben.id, created_at=now)
        session.add(old)
        await session.commit()
        old_id = old.id
        assert old_id is not None
        await programme.delete_template(session, ben, old_id, now)
        await session.commit()
        new = ProgrammePlan(name="New", body="{}", created_by=ben.id, created_at=now)
        session.add(new)
        await session.commit()
        assert new.id is not None and new.id > old_id
        with pytest.raises(plan.PlanError):  # the stale page's second press
            await programme.delete_template(session, ben, old_id, now)
        assert [row.name for row in await plan.templates(session)] == ["New"]
