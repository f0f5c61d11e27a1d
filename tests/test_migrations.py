"""Migrations and models agree, on SQLite and PostgreSQL, and the SQLite pragmas are on."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from factories import make_patient, make_staff
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, select

import rehab_bot.models  # noqa: F401
from rehab_bot import alert_detail
from rehab_bot.clock import FakeClock
from rehab_bot.db import Database, alembic_config, current_revision
from rehab_bot.models import Alert, Answer, Caregiver, CheckIn, Patient, ProgrammePlan, ReminderRule, Staff

BASE = "0001_squashed"


@pytest.fixture
async def db(backend: str, database_factory: Any) -> Database:
    """Migrations tests run every migration on an empty database, never the template copy."""
    database: Database = await database_factory(backend, template=False)
    return database


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_models_match_the_migrations(db: Database) -> None:
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == [], "models.py and the migrations differ; write a migration"


def test_the_history_starts_at_one_initial_revision() -> None:
    """No release has shipped: the history before it is squashed into one revision (issue 13, point 8).

    Later revisions go on top of it, in one line: one base, one head.
    """
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_bases() == [BASE]
    assert len(scripts.get_heads()) == 1


async def test_the_claim_indexes_are_partial(db: Database) -> None:
    """compare_metadata does not compare an index's WHERE; the claim needs it (tests/test_claim_index.py)."""
    if db.dialect == "postgresql":
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'delivery'"
    else:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'delivery'"
    async with db.engine.connect() as conn:
        indexes = {name: sql or "" for name, sql in (await conn.execute(text(query))).all()}
    for name, status in [
        ("ix_delivery_claim", "queued"),
        ("ix_delivery_queued_not_before", "queued"),
        ("ix_delivery_sending", "sending"),
    ]:
        assert re.search(rf"WHERE \(?\(?status\)?(::text)? = '{status}'", indexes[name]), indexes[name]


async def test_downgrade_to_base_and_back(db: Database) -> None:
    head = await current_revision(db.engine)
    assert head is not None

    def down(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "base")

    def tables(connection: Connection) -> list[str]:
        return inspect(connection).get_table_names()

    async with db.engine.begin() as conn:
        await conn.run_sync(down)
    assert await current_revision(db.engine) is None
    async with db.engine.connect() as conn:
        assert await conn.run_sync(tables) == ["alembic_version"]
    await db.upgrade()
    assert await current_revision(db.engine) == head


async def test_upgrade_twice_is_a_no_op(db: Database) -> None:
    def tables(connection: Connection) -> dict[str, list[str]]:
        inspector = inspect(connection)
        return {name: sorted(c["name"] for c in inspector.get_columns(name)) for name in inspector.get_table_names()}

    head = await current_revision(db.engine)
    async with db.engine.begin() as conn:
        await conn.execute(text("INSERT INTO group_notice (chat_id, noticed_at) VALUES (-42, CURRENT_TIMESTAMP)"))
        before = await conn.run_sync(tables)
    await db.upgrade()
    await db.upgrade()
    assert await current_revision(db.engine) == head
    async with db.engine.connect() as conn:
        assert await conn.run_sync(tables) == before, "a second upgrade changed the schema"
        kept = (await conn.execute(text("SELECT chat_id FROM group_notice"))).scalars().all()
    assert kept == [-42], "a second upgrade lost data"


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(database_factory: Any) -> None:
    db: Database = await database_factory("sqlite", template=False)
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1


async def test_the_first_upgrade_writes_the_installation_namespace(backend: str, database_factory: Any) -> None:
    # A real upgrade from an empty database, not a copy of the template.
    db: Database = await database_factory(backend, template=False)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, namespace FROM installation"))).all()
    assert len(rows) == 1 and rows[0][0] == 1
    assert uuid.UUID(rows[0][1]).version == 4


def test_new_revisions_are_named_by_date_id_and_slug() -> None:
    assert alembic_config().get_main_option("file_template") == "%(year)d%(month).2d%(day).2d_%(rev)s_%(slug)s"


async def test_upgrading_keeps_templates_caregivers_and_proxy_answers_and_their_ids_only_rise(
    backend: str, database_factory: Any, clock: FakeClock
) -> None:
    """0004 rebuilds programme_plan and caregiver on SQLite with AUTOINCREMENT: rows and ids stay, the
    proxy answers keep their caregiver (dropping the old table cleared it: ON DELETE SET NULL), and
    a deleted row's id is never given again."""
    db: Database = await database_factory(backend, template=False)

    def down(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "0003_chat_move")

    async with db.engine.begin() as conn:
        await conn.run_sync(down)
    patient, _ = await make_patient(db, clock, times=())
    now = clock.now()
    async with db.session() as session:
        plans = [ProgrammePlan(name=name, body="{}", created_at=now) for name in ("Lumbar", "Cervical")]
        carers = [Caregiver(patient_id=patient.id, code=code, expires_at=now) for code in ("c1", "c2")]
        session.add_all([*plans, *carers])
        await session.flush()
        checkin = CheckIn(patient_id=patient.id, questionnaire_id="daily", started_at=now)
        session.add(checkin)
        await session.flush()
        assert checkin.id is not None and patient.id is not None
        answer = Answer(checkin_id=checkin.id, patient_id=patient.id, item_id="pain", value=3, proxy=True)
        answer.caregiver_id, answer.answered_at = carers[1].id, now
        session.add(answer)
        await session.commit()
        before = {
            table: [(row.id, row.code if isinstance(row, Caregiver) else row.name) for row in rows]
            for table, rows in (("programme_plan", plans), ("caregiver", carers))
        }
    await db.upgrade()
    async with db.engine.begin() as conn:
        for table, rows in before.items():
            label = "code" if table == "caregiver" else "name"
            kept = (await conn.execute(text(f"SELECT id, {label} FROM {table} ORDER BY id"))).all()
            assert [tuple(row) for row in kept] == rows, table
        proxy = (await conn.execute(text("SELECT caregiver_id FROM answer"))).scalar_one()
        assert proxy == before["caregiver"][1][0]
    async with db.session() as session:
        top_plan, top_carer = await session.get(ProgrammePlan, plans[1].id), await session.get(Caregiver, carers[1].id)
        assert top_plan is not None and top_carer is not None
        await session.delete(top_plan)
        await session.delete(top_carer)
        await session.commit()
        new_plan = ProgrammePlan(name="New", body="{}", created_at=now)
        new_carer = Caregiver(patient_id=patient.id, code="c3", expires_at=now)
        session.add_all([new_plan, new_carer])
        await session.commit()
        assert new_plan.id is not None and new_plan.id > before["programme_plan"][1][0]
        assert new_carer.id is not None and new_carer.id > before["caregiver"][1][0]


@pytest.mark.parametrize("backend", ["postgres"])  # pg_schema is PostgreSQL's: no SQLite case to skip
async def test_a_pg_schema_that_does_not_exist_is_named_not_a_traceback(db: Database, backend: str) -> None:
    """[database] pg_schema naming no schema: Alembic's first CREATE TABLE failed with 'no schema has been
    selected to create in' and a traceback in every command."""
    from rehab_bot.config import ConfigError

    other = Database(db.url, pg_schema="clinic_typo")
    try:
        with pytest.raises(ConfigError) as info:
            await other.upgrade()
    finally:
        await other.dispose()
    assert str(info.value) == (
        "database.pg_schema is clinic_typo, which does not exist in that database: "
        'create it first (CREATE SCHEMA clinic_typo;) or leave pg_schema "" for the public schema'
    )
    async with db.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM pg_namespace WHERE nspname = 'clinic_typo'")) == 0


async def test_alerts_raised_before_detail_parts_keep_their_detail_and_alert_keeps_its_triggers(
    backend: str, database_factory: Any, clock: FakeClock
) -> None:
    """0005 adds alert.detail_parts: an alert raised before has none and reads its stored (English) detail.
    Its downgrade drops the column in place: a batch-mode copy of alert would lose the caseload figures'
    triggers on it (cf_alert_*), and the first downgrade to base failed on them."""
    db: Database = await database_factory(backend, template=False)
    if backend == "sqlite":
        triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'alert' ORDER BY name"
    else:
        triggers = (
            "SELECT DISTINCT tgname FROM pg_trigger WHERE tgrelid = 'alert'::regclass AND NOT tgisinternal ORDER BY 1"
        )
    async with db.engine.connect() as conn:
        at_head = (await conn.execute(text(triggers))).scalars().all()
    assert at_head, "the caseload figures watch alert"

    def down(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "0004_ids_rise")

    async with db.engine.begin() as conn:
        await conn.run_sync(down)
        assert (await conn.execute(text(triggers))).scalars().all() == at_head
    patient, _ = await make_patient(db, clock, times=())
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO alert (patient_id, severity, kind, detail, created_at) "
                "VALUES (:patient, 'high', 'red_flag', 'Pain:\n⚠ Chest pain? Yes', CURRENT_TIMESTAMP)"
            ),
            {"patient": patient.id},
        )
    await db.upgrade()
    async with db.session() as session:
        [old] = (await session.exec(select(Alert))).all()
    assert old.detail_parts is None
    assert alert_detail.text(old, "de") == "Pain:\n⚠ Chest pain? Yes", "shown as stored"
    async with db.engine.connect() as conn:
        assert (await conn.execute(text(triggers))).scalars().all() == at_head


async def test_legacy_zones_of_a_shared_clock_become_a_places_zone_and_no_reminder_moves(
    backend: str, database_factory: Any, clock: FakeClock
) -> None:
    """0006: patients stored with "CET" (a "MEZ" answered before 2026-12-02) show a place's zone; the clock
    is the same, so the next reminder's due time stays; other zones are left as they are."""
    db: Database = await database_factory(backend, template=False)

    def down(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "0005_alert_detail_parts")

    async with db.engine.begin() as conn:
        await conn.run_sync(down)
    zones = ("CET", "MET", "WET", "EET", "Europe/Vienna", "UTC")
    made = [await make_patient(db, clock, tz=zone) for zone in zones]
    staff = await make_staff(db, timezone="EET")
    async with db.session() as session:
        due_before = {r.id: r.next_due_at for r in (await session.exec(select(ReminderRule))).all()}
    assert len(due_before) == len(zones) and None not in due_before.values()
    await db.upgrade()
    async with db.session() as session:
        after = {p.id: p.timezone for p in (await session.exec(select(Patient))).all()}
        assert [after[p.id] for p, _ in made] == [
            "Europe/Berlin",
            "Europe/Berlin",
            "Europe/Lisbon",
            "Europe/Athens",
            "Europe/Vienna",
            "UTC",
        ]
        assert (await session.get(Staff, staff.id)).timezone == "Europe/Athens"  # type: ignore[union-attr]
        rules = (await session.exec(select(ReminderRule))).all()
        assert {r.id: r.next_due_at for r in rules} == due_before
