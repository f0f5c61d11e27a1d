"""The rehab-bot command as an administrator meets it: real processes, exit codes, --help."""

from __future__ import annotations

import re
import sqlite3
import sys
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from cli_runner import rehab_bot
from factories import TEST_TOKEN

from rehab_bot import __version__
from rehab_bot.content import load_content

BIN = Path(sys.executable).parent / "rehab-bot"

# A clinic content folder with exactly one mistake (tests/data/one_problem).
ONE_PROBLEM = Path(__file__).resolve().parent / "data" / "one_problem"


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, subprocess: bool = False) -> CompletedProcess[str]:
    """In this process unless subprocess=True (and `run` always in a real one): see tests/cli_runner.py."""
    return rehab_bot(*args, cwd=cwd, env=env, subprocess=subprocess)


def test_version(tmp_path: Path) -> None:
    # A real process: the installed console script works.
    result = run("--version", cwd=tmp_path, subprocess=True)
    assert result.returncode == 0 and result.stdout.strip() == f"rehab-bot {__version__}"


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        ((), "check-config"),
        (("run",), "--no-updates"),
        (("db",), "upgrade"),
        (("db", "upgrade"), "migrations"),
        (("db", "backup"), "online backup"),
        (("check-config",), "validate"),
        (("content", "check"), "file:line"),
        (("content", "list"), "built-in"),
    ],
)
def test_every_command_has_a_useful_help(tmp_path: Path, args: tuple[str, ...], phrase: str) -> None:
    result = run(*args, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert phrase in result.stdout


def test_run_without_token_exits_2_naming_the_key(tmp_path: Path) -> None:
    result = run("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "telegram.token is missing" in result.stderr
    assert "@BotFather" in result.stderr and "REHAB_BOT_TELEGRAM_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_dispatch_only_refuses_sqlite(tmp_path: Path) -> None:
    result = run("run", "--no-updates", cwd=tmp_path, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    assert result.returncode == 2 and "PostgreSQL" in result.stderr


def test_db_upgrade_and_backup_copy_every_row(tmp_path: Path) -> None:
    env = {"REHAB_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/live.db"}
    upgraded = run("db", "upgrade", cwd=tmp_path, env=env)
    assert upgraded.returncode == 0 and "database at revision" in upgraded.stdout, upgraded.stderr
    with sqlite3.connect(tmp_path / "live.db") as conn:
        conn.execute(
            "INSERT INTO staff (telegram_id, name, role, language, timezone, active, created_at) "
            "VALUES (1, 'Dr A', 'admin', 'en', 'UTC', 1, '2026-01-01 00:00:00')"
        )
    backup = run("db", "backup", str(tmp_path / "copy.db"), cwd=tmp_path, env=env)
    assert backup.returncode == 0, backup.stderr
    with sqlite3.connect(tmp_path / "copy.db") as conn:
        assert conn.execute("SELECT name FROM staff").fetchall() == [("Dr A",)]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_backup_of_postgres_points_to_pg_dump(tmp_path: Path) -> None:
    result = run("db", "backup", "x.db", cwd=tmp_path, env={"REHAB_BOT_DATABASE_URL": "postgresql+asyncpg://u@h/db"})
    assert result.returncode == 2 and "pg_dump" in result.stderr


def test_check_config_masks_the_token(tmp_path: Path) -> None:
    result = run("check-config", cwd=tmp_path, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    assert result.returncode == 0 and "configuration OK" in result.stdout
    assert TEST_TOKEN.split(":")[1] not in result.stdout


def test_content_check_reports_file_and_line(tmp_path: Path) -> None:
    ok = run("content", "check", cwd=tmp_path)
    assert ok.returncode == 0 and "content OK" in ok.stdout
    assert ", 1 programme, " in ok.stdout, "the built-in content's one programme, in the singular (was '1 programmes')"
    # The same counts as the admin's content page (Content.counted): questionnaires too.
    assert ok.stdout.strip() == "content OK: " + load_content(None).counted("en")
    assert " questionnaires" in ok.stdout
    clinic = tmp_path / "clinic"
    clinic.mkdir()
    (clinic / "exercises.toml").write_text('[[exercise]]\nid = "walk"\nsets = "three"\n', encoding="utf-8")
    bad = run("content", "check", str(clinic), cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "4 problems found"
    one = run("content", "check", str(ONE_PROBLEM), cwd=tmp_path)
    assert one.returncode == 1 and one.stderr.strip() == "1 problem found", one.stderr  # was "1 problem(s) found"
    assert f"{clinic / 'exercises.toml'}:3:" in bad.stdout or "exercises.toml:3:" in bad.stdout
    listing = run("content", "list", cwd=tmp_path)
    assert listing.returncode == 0 and "lumbar-example" in listing.stdout and "built-in" in listing.stdout
    lessons = [line for line in listing.stdout.splitlines() if line.startswith("lesson ")]
    course = load_content(None).course
    assert course is not None and len(lessons) == len(course.lessons) > 0, "the recovery course is listed too"
    assert all("day " in line and "(example)" in line for line in lessons)
    broken = run("content", "list", cwd=tmp_path, env={"REHAB_BOT_CONTENT_DIR": str(clinic)})
    assert broken.returncode == 1 and broken.stdout == "", "its problems are no listing: they went to stdout"
    assert "exercises.toml:3:" in broken.stderr
    assert broken.stderr.splitlines()[-1] == "rehab-bot: 4 problems in the content files; nothing listed"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"REHAB_BOT_CLINIC_TIMZONE": "Europe/Berlin"}, "did you mean REHAB_BOT_CLINIC_TIMEZONE?"),
        ({"REHAB_BOT_DELIVERY_GRACE_PERIOD_MINUTES": "10000000000000"}, "delivery.grace_period_minutes"),
        ({"REHAB_BOT_HTTP_LISTEN": "999.1.1.1:99999"}, "http.listen"),
        ({"REHAB_BOT_TELEGRAM_BASE_URL": "ftp://api.telegram.org/bot"}, "telegram.base_url is 'ftp://"),
        ({"REHAB_BOT_TELEGRAM_BASE_FILE_URL": "api.telegram.org/file/bot"}, "telegram.base_file_url is"),
    ],
)
def test_check_config_refuses_what_would_fail_later(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    result = run("check-config", cwd=tmp_path, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN, **env})
    assert result.returncode == 2, result.stdout
    assert expected in result.stderr and "configuration OK" not in result.stdout
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_check_config_says_a_missing_sqlite_folder_will_be_created_private(tmp_path: Path) -> None:
    result = run("check-config", cwd=tmp_path, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    assert result.returncode == 0, result.stderr
    assert "database folder data does not exist yet; the bot creates it (mode 0700) at start" in result.stdout
    assert not (tmp_path / "data").exists(), "check-config creates nothing"
    blocked = tmp_path / "blocker"
    blocked.write_text("x", encoding="utf-8")
    bad = run(
        "check-config",
        cwd=tmp_path,
        env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN, "REHAB_BOT_DATABASE_URL": "sqlite+aiosqlite:///blocker/db/x.db"},
    )
    assert bad.returncode == 2 and "database.url" in bad.stderr and "configuration OK" not in bad.stdout


def test_check_config_exits_2_when_a_language_lacks_the_clinics_emergency_text(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[clinic.emergency_text]\nen = "Call 112."\n', encoding="utf-8")
    result = run("check-config", cwd=tmp_path, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    assert result.returncode == 2 and "clinic.emergency_text.de is missing" in result.stderr


def test_the_exit_statuses_are_what_the_help_says(tmp_path: Path) -> None:
    """rehab-bot --help: 1 for input a command refuses, 2 for a command line it cannot read."""
    help_text = " ".join(run("--help", cwd=tmp_path).stdout.split())
    assert "1 input the command refused" in help_text and "2 a command line it cannot read" in help_text
    unreadable = run("staff", "add", "--telegram-id", "abc", "--role", "admin", "--name", "A", cwd=tmp_path)
    assert unreadable.returncode == 2 and "invalid int value" in unreadable.stderr
    refused = run(
        "invite", "create", "--alias", "P-1", "--surgery-date", "2026-13-01", "--programme", "x",
        "--bot-username", "b", cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode == 1 and "is not a date" in refused.stderr


def test_export_help_names_every_csv_file_the_export_writes(tmp_path: Path) -> None:
    """It named six of the files (patients ... alerts), not lessons, messages and caregivers."""
    from rehab_bot.export import TABLES

    text = " ".join(run("export", "--help", cwd=tmp_path).stdout.split())
    listed = re.search(r"csv: a folder with one file per entity \(([^)]+)\)", text)
    assert listed, text
    assert listed.group(1).split(", ") == [name.removesuffix(".csv") for name in TABLES]


def test_staff_add_help_says_an_existing_member_keeps_their_timezone(tmp_path: Path) -> None:
    """--timezone's help said its default is the clinic's; an update without it keeps the member's own."""
    env = {"REHAB_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db", "REHAB_BOT_CLINIC_TIMEZONE": "UTC"}
    text = " ".join(run("staff", "add", "--help", cwd=tmp_path).stdout.split())
    assert "default: the [clinic] timezone for a new member; an existing member keeps theirs" in text
    assert "weekly digest" in text and "times the bot and the dashboard show them" in text
    add = ("staff", "add", "--telegram-id", "42", "--role", "admin", "--name", "Dr A")
    first = run(*add, "--timezone", "America/New_York", cwd=tmp_path, env=env)
    assert first.returncode == 0 and "timezone America/New_York" in first.stdout, first.stderr
    again = run(*add[:-1], "Dr B", cwd=tmp_path, env=env)
    assert again.returncode == 0 and "updated admin Dr B" in again.stdout
    assert "timezone America/New_York" in again.stdout, "kept, not the clinic's UTC"
    new = run("staff", "add", "--telegram-id", "43", "--role", "therapist", "--name", "T", cwd=tmp_path, env=env)
    assert "timezone UTC" in new.stdout, "a new member gets the clinic's"


def test_audit_help_names_where_each_actor_acts(tmp_path: Path) -> None:
    """It named Telegram (telegram:<id>) and the command line, not the web app (web:<id>), where most views are."""
    from rehab_bot import audit

    text = " ".join(run("audit", "--help", cwd=tmp_path).stdout.split())
    for actor in (audit.telegram_actor(1), audit.web_actor(1)):
        prefix = actor.removesuffix("1")
        assert f"({prefix}<id>)" in text, (prefix, text)
    assert "(cli:<user>@<host>" in text
