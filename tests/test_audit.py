"""The audit log: rows with who, what, which patient and when; `rehab-bot audit` and `rehab-bot staff`."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

from cli_runner import rehab_bot
from factories import make_patient, make_staff

from rehab_bot import audit
from rehab_bot.clock import FakeClock
from rehab_bot.db import Database


async def test_records_join_names_and_filter_by_time_and_patient(db: Database, clock: FakeClock) -> None:
    doc = await make_staff(db, name="Dr Audit", telegram_id=8101)
    patient, _ = await make_patient(db, clock, alias="AUD-1")
    other, _ = await make_patient(db, clock, alias="AUD-2")
    t0 = clock.now()
    async with db.session() as session:
        audit.record(session, action=audit.VIEW_PATIENT, now=t0, staff=doc, patient_id=patient.id)
        audit.record(session, action=audit.EXPORT, now=t0 + timedelta(hours=1), patient_id=other.id, detail="csv")
        audit.record(session, action=audit.VIEW_PATIENTS, now=t0 + timedelta(hours=2), staff=doc, detail="page=1")
        await session.commit()
    async with db.session() as session:
        every = await audit.entries(session)
        later = await audit.entries(session, since=t0 + timedelta(minutes=30))
        about = await audit.entries(session, patient_id=patient.id)
    assert [(e.actor, e.staff_name, e.action, e.patient_alias) for e in every] == [
        ("telegram:8101", "Dr Audit", "view.patient", "AUD-1"),
        ("cli", "", "export", "AUD-2"),
        ("telegram:8101", "Dr Audit", "view.patients", ""),
    ]
    assert [e.action for e in later] == ["export", "view.patients"]
    assert [e.action for e in about] == ["view.patient"]
    line = audit.format_entry(every[0])
    assert line.split("\t") == ["2026-06-10 05:00:00 UTC", "telegram:8101 (Dr Audit)", "view.patient", "AUD-1", "-"]


def cli(*args: str, cwd: Path, db_url: str) -> CompletedProcess[str]:
    env = {"REHAB_BOT_DATABASE_URL": db_url, "REHAB_BOT_CLINIC_TIMEZONE": "Europe/Vienna"}
    return rehab_bot(*args, cwd=cwd, env=env)


def test_staff_add_list_remove_and_audit_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    added = cli("staff", "add", "--telegram-id", "111", "--role", "admin", "--name", "Dr Ada", cwd=tmp_path, db_url=url)
    assert added.returncode == 0, added.stderr
    assert "added admin Dr Ada (Telegram id 111, timezone Europe/Vienna)" in added.stdout
    again = cli(
        "staff",
        "add",
        "--telegram-id",
        "111",
        "--role",
        "therapist",
        "--name",
        "Ada",
        "--timezone",
        "Asia/Tokyo",
        cwd=tmp_path,
        db_url=url,
    )
    assert again.returncode == 0 and "updated therapist Ada" in again.stdout and "Asia/Tokyo" in again.stdout
    bad_zone = cli(
        "staff",
        "add",
        "--telegram-id",
        "112",
        "--role",
        "admin",
        "--name",
        "X",
        "--timezone",
        "Berlin",
        cwd=tmp_path,
        db_url=url,
    )
    assert bad_zone.returncode == 1 and "unknown timezone 'Berlin'" in bad_zone.stderr
    assert "Traceback" not in bad_zone.stderr
    bad_role = cli("staff", "add", "--telegram-id", "112", "--role", "boss", "--name", "X", cwd=tmp_path, db_url=url)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr
    listing = cli("staff", "list", cwd=tmp_path, db_url=url)
    assert listing.stdout.splitlines() == ["111\ttherapist\tAda\tAsia/Tokyo\tactive"]
    removed = cli("staff", "remove", "--telegram-id", "111", cwd=tmp_path, db_url=url)
    assert removed.returncode == 0 and "deactivated therapist Ada" in removed.stdout
    # Again: it said "deactivated therapist Ada" a second time and wrote a second staff.remove.
    again = cli("staff", "remove", "--telegram-id", "111", cwd=tmp_path, db_url=url)
    assert (again.returncode, again.stdout, again.stderr) == (
        1,
        "",
        "rehab-bot: Ada was already removed; nothing changed.\n",
    )
    unknown = cli("staff", "remove", "--telegram-id", "999", cwd=tmp_path, db_url=url)
    assert unknown.returncode == 1 and "No staff member has the Telegram id 999" in unknown.stderr
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        assert conn.execute("SELECT active FROM staff WHERE telegram_id = 111").fetchone() == (0,)
        conn.execute("UPDATE audit_log SET created_at = '2020-01-01 00:00:00' WHERE id = 1")
    log = cli("audit", cwd=tmp_path, db_url=url)
    assert log.returncode == 0
    actions = [line.split("\t")[2] for line in log.stdout.splitlines()[1:]]
    assert actions == ["staff.add", "staff.add", "staff.remove"]
    recent = cli("audit", "--since", "2024-01-01", cwd=tmp_path, db_url=url)
    assert [line.split("\t")[2] for line in recent.stdout.splitlines()[1:]] == ["staff.add", "staff.remove"]
    assert recent.stdout.splitlines()[1].split("\t")[1] == audit.os_operator()
    future = cli("audit", "--since", "2999-01-01T10:00", cwd=tmp_path, db_url=url)
    assert future.returncode == 0 and future.stdout == "time\twho\taction\tpatient\tdetail\n"
    assert future.stderr.startswith("no audit records since 2999-01-01T10:00:00+00:00")
    bad = cli("audit", "--since", "last week", cwd=tmp_path, db_url=url)
    assert bad.returncode == 1 and "YYYY-MM-DD" in bad.stderr
    # Before the first or after the last instant in UTC: an OverflowError traceback from the query.
    for outside in ("0001-01-01T00:00+14:00", "9999-12-31T23:59-14:00"):
        bad = cli("audit", "--since", outside, cwd=tmp_path, db_url=url)
        assert (
            bad.returncode == 1
            and bad.stderr == f"rehab-bot: --since {outside!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM\n"
        )
    earlier = cli("audit", "--since", "2024-01-01T05:00+05:00", cwd=tmp_path, db_url=url)
    assert [line.split("\t")[2] for line in earlier.stdout.splitlines()[1:]] == ["staff.add", "staff.remove"]


def test_staff_commands_refuse_a_telegram_id_too_large_for_the_database(tmp_path: Path) -> None:
    """23 digits overflowed the BigInteger column: a traceback (OverflowError on SQLite, DataError on
    PostgreSQL) instead of the one-line answer a mistyped id gets."""
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    huge = "9" * 23
    added = cli("staff", "add", "--telegram-id", huge, "--role", "admin", "--name", "X", cwd=tmp_path, db_url=url)
    assert added.returncode == 1 and "Traceback" not in added.stderr, added.stderr
    assert added.stderr.strip() == (
        "rehab-bot: A Telegram user id is a positive number of at most 18 digits "
        "(the person can see theirs via @userinfobot)."
    )
    removed = cli("staff", "remove", "--telegram-id", huge, cwd=tmp_path, db_url=url)
    assert removed.returncode == 1 and "Traceback" not in removed.stderr, removed.stderr
    assert removed.stderr.strip() == f"rehab-bot: No staff member has the Telegram id {huge}."
    assert cli("staff", "list", cwd=tmp_path, db_url=url).stdout.startswith("no staff yet")


def test_staff_commands_warn_on_stderr_when_no_active_admin_is_left(tmp_path: Path) -> None:
    """Making the only admin a therapist with `staff add` said nothing (only `remove` warned), and
    `remove` printed its warning among the results on stdout."""
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    warning = "WARNING: there is no active admin."
    admin = cli("staff", "add", "--telegram-id", "111", "--role", "admin", "--name", "Dr Ada", cwd=tmp_path, db_url=url)
    assert admin.returncode == 0 and admin.stderr == "", admin.stderr
    demoted = cli(
        "staff", "add", "--telegram-id", "111", "--role", "therapist", "--name", "Dr Ada", cwd=tmp_path, db_url=url
    )
    assert demoted.returncode == 0
    assert demoted.stdout.splitlines() == ["updated therapist Dr Ada (Telegram id 111, timezone Europe/Vienna)"]
    assert demoted.stderr.startswith(warning) and "rehab-bot staff add --telegram-id N --role admin" in demoted.stderr
    promoted = cli(
        "staff", "add", "--telegram-id", "112", "--role", "admin", "--name", "Dr Bo", cwd=tmp_path, db_url=url
    )
    assert promoted.returncode == 0 and promoted.stderr == "", promoted.stderr
    removed = cli("staff", "remove", "--telegram-id", "112", cwd=tmp_path, db_url=url)
    assert removed.returncode == 0
    assert removed.stdout.splitlines() == ["deactivated admin Dr Bo (Telegram id 112)"]
    assert removed.stderr.startswith(warning)


def test_clinic_commands_have_a_useful_help(tmp_path: Path) -> None:
    for args, phrase in [
        (("staff",), "admins and therapists"),
        (("staff", "add"), "bootstrap the first admin"),
        (("staff", "list"), "Telegram id"),
        (("staff", "remove"), "Deactivate"),
        (("export",), "FHIR R4 Bundle"),
        (("audit",), "Every staff view, export and change"),
    ]:
        result = cli(*args, "--help", cwd=tmp_path, db_url="sqlite+aiosqlite:///unused.db")
        assert result.returncode == 0, result.stderr
        assert phrase in " ".join(result.stdout.split()), (args, result.stdout)


async def test_every_record_has_actor_and_time(db: Database, clock: Any) -> None:
    async with db.session() as session:
        row = audit.record(session, action=audit.STAFF_ADD, now=datetime(2026, 1, 1, tzinfo=UTC))
        await session.commit()
    assert row.actor == "cli" and row.staff_id is None and row.created_at == datetime(2026, 1, 1, tzinfo=UTC)
