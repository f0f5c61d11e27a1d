"""The command line under an operator's mistakes: the database named as its own backup,
unwritable targets, a database that cannot be reached, a config file that is not text.
Each gets one line on stderr and a non-zero status, never a traceback, and nothing is lost."""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cli_runner import rehab_bot
from factories import TEST_TOKEN


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {"REHAB_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{cwd}/bot.db", **(env or {})}
    return rehab_bot(*args, cwd=cwd, env=env)


def one_friendly_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rehab-bot: "), result.stderr
    return lines[0]


def staff_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from staff").fetchone()[0])


@pytest.mark.parametrize("name", ["bot.db", "./bot.db", "link.db", "hard.db", "bot.db-wal"])
def test_db_backup_never_overwrites_the_database_itself(tmp_path: Path, name: str) -> None:
    assert run("staff", "add", "--telegram-id", "1", "--role", "admin", "--name", "A", cwd=tmp_path).returncode == 0
    db = tmp_path / "bot.db"
    (tmp_path / "link.db").symlink_to(db)
    os.link(db, tmp_path / "hard.db")
    size = db.stat().st_size

    # A real process with a timeout: before the fix this deleted the database and then hung.
    env = {"REHAB_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    result = rehab_bot("db", "backup", name, "--force", cwd=tmp_path, env=env, subprocess=True, timeout=60)

    assert "is the database itself" in one_friendly_line(result)
    assert result.returncode == 1
    assert db.stat().st_size == size
    assert staff_count(db) == 1


def test_db_backup_into_an_unwritable_place_is_one_line_and_keeps_the_old_backup(tmp_path: Path) -> None:
    assert run("staff", "add", "--telegram-id", "1", "--role", "admin", "--name", "A", cwd=tmp_path).returncode == 0
    assert run("db", "backup", "old.db", cwd=tmp_path).returncode == 0
    (tmp_path / "blocker").write_text("a file, not a folder")

    result = run("db", "backup", "blocker/new.db", cwd=tmp_path)
    assert "cannot write the backup to blocker/new.db" in one_friendly_line(result)

    # --force over an earlier backup: a backup that fails leaves the earlier one whole.
    os.chmod(tmp_path / "bot.db", 0)
    if os.access(tmp_path / "bot.db", os.R_OK):  # root reads anything: make the source unreadable another way
        (tmp_path / "bot.db").unlink()
        (tmp_path / "bot.db").mkdir()
    result = run("db", "backup", "old.db", "--force", cwd=tmp_path)
    one_friendly_line(result)
    assert staff_count(tmp_path / "old.db") == 1
    assert not [p.name for p in tmp_path.iterdir() if "partial" in p.name]


UNREACHABLE = "postgresql+asyncpg://rehab:s3cret-pw@127.0.0.1:1/rehab"

COMMANDS_THAT_OPEN_THE_DATABASE = [
    ("db", "upgrade"),
    ("staff", "list"),
    ("staff", "add", "--telegram-id", "1", "--role", "admin", "--name", "A"),
    ("audit",),
    ("export", "--format", "csv", "--out", "ex"),
    ("export", "--format", "fhir", "--out", "ex.json"),
    ("report", "outcomes", "--from", "2026-01-01", "--to", "2026-02-01"),
    ("experiment", "report", "nudge-or-not"),
    (
        "invite",
        "create",
        "--alias",
        "P-0001",
        "--surgery-date",
        "2026-01-01",
        "--programme",
        "lumbar-example",
        "--bot-username",
        "rehab_test_bot",
    ),
]


@pytest.mark.parametrize("args", COMMANDS_THAT_OPEN_THE_DATABASE, ids=lambda a: " ".join(a[:2]))
def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = rehab_bot(*args, cwd=tmp_path, env={"REHAB_BOT_DATABASE_URL": UNREACHABLE})

    line = one_friendly_line(result)
    assert result.returncode == 1
    assert "cannot open the database at postgresql+asyncpg://rehab:***@127.0.0.1:1/rehab" in line
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert not (tmp_path / "ex").exists() and not (tmp_path / "ex.json").exists()


def test_a_password_in_the_database_urls_query_is_masked_too(tmp_path: Path) -> None:
    """asyncpg takes ?password=... as well; `staff list` printed it in 'cannot open the database at ...'
    and check-config in its summary."""
    url = "postgresql+asyncpg://rehab@127.0.0.1:1/rehab?password=s3cret-pw&ssl=disable"
    failed = rehab_bot("staff", "list", cwd=tmp_path, env={"REHAB_BOT_DATABASE_URL": url})
    line = one_friendly_line(failed)
    assert failed.returncode == 1
    assert "cannot open the database at postgresql+asyncpg://rehab@127.0.0.1:1/rehab?password=***&ssl=disable" in line
    summary = rehab_bot(
        "check-config", cwd=tmp_path, env={"REHAB_BOT_DATABASE_URL": url, "REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}
    )
    assert "database: postgresql+asyncpg://rehab@127.0.0.1:1/rehab?password=***&ssl=disable" in summary.stdout
    assert "s3cret-pw" not in failed.stderr + failed.stdout + summary.stderr + summary.stdout


def test_run_with_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = {
        "REHAB_BOT_DATABASE_URL": UNREACHABLE,
        "REHAB_BOT_TELEGRAM_TOKEN": "123456789:AAE-test-token-for-the-cli-tests-xx",
        "REHAB_BOT_TELEGRAM_BASE_URL": "http://127.0.0.1:1/bot",
        "REHAB_BOT_CLINIC_NAME": "Test Clinic",
    }
    result = rehab_bot("run", cwd=tmp_path, env=env, timeout=60)

    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    assert "rehab-bot: cannot open the database at postgresql+asyncpg://rehab:***@127.0.0.1:1/rehab" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_check_config_with_an_unreachable_database_says_what_was_not_checked(tmp_path: Path) -> None:
    env = {
        "REHAB_BOT_DATABASE_URL": UNREACHABLE,
        "REHAB_BOT_TELEGRAM_TOKEN": "123456789:AAE-test-token-for-the-cli-tests-xx",
    }
    result = rehab_bot("check-config", cwd=tmp_path, env=env)

    assert "Traceback" not in result.stderr, result.stderr
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert warning.startswith("WARNING: could not read the staff from the database (")
    assert "whether an active admin receives alerts was not checked" in warning
    assert "WARNING" not in result.stdout, "warnings go to stderr"
    assert "there is no active admin" not in result.stderr, "it does not know that"
    assert "s3cret-pw" not in result.stderr + result.stdout


@pytest.mark.parametrize("kind", ["not-utf8", "folder"])
def test_a_config_file_that_is_no_text_file_is_a_configuration_error(tmp_path: Path, kind: str) -> None:
    config = tmp_path / "config.toml"
    if kind == "folder":
        config.mkdir()
    else:
        config.write_bytes(b'[clinic]\nname = "Klinik M\xfcnchen"\n')  # Latin-1, not UTF-8

    for args in (("--config", str(config), "staff", "list"), ("staff", "list")):  # explicit and ./config.toml
        result = run(*args, cwd=tmp_path)
        line = one_friendly_line(result)
        assert result.returncode == 2
        assert line.startswith(f"rehab-bot: configuration error: {config if '--config' in args else 'config.toml'} ")


def test_a_secret_file_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "token").write_bytes(b"\xff\xfe123456789:AAE\n")

    result = run("check-config", cwd=tmp_path, env={"REHAB_BOT_TELEGRAM_TOKEN_FILE": str(tmp_path / "token")})

    line = one_friendly_line(result)
    assert result.returncode == 2
    assert "telegram.token cannot be read from REHAB_BOT_TELEGRAM_TOKEN_FILE" in line
    assert "not UTF-8" in line


def test_experiment_report_help_says_95_percent_once(tmp_path: Path) -> None:
    # The sub-command's line in `experiment --help` is %-formatted by argparse, its description is not.
    summary = rehab_bot("experiment", "--help", cwd=tmp_path)
    description = rehab_bot("experiment", "report", "--help", cwd=tmp_path)

    assert "95% confidence" in summary.stdout and "%%" not in summary.stdout
    assert "95% confidence" in " ".join(description.stdout.split()) and "%%" not in description.stdout


def test_invite_create_keeps_an_existing_qr_code_unless_forced(tmp_path: Path) -> None:
    assert run("staff", "add", "--telegram-id", "1", "--role", "admin", "--name", "A", cwd=tmp_path).returncode == 0
    invite = ("invite", "create", "--surgery-date", "2026-01-01", "--programme", "lumbar-example")
    offline = ("--bot-username", "rehab_test_bot")
    first = run(*invite, "--alias", "P-0001", *offline, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    printed = (tmp_path / "invite-P-0001.png").read_bytes()

    second = run(*invite, "--alias", "P-0002", "--qr", "invite-P-0001.png", *offline, cwd=tmp_path)

    assert "invite-P-0001.png already exists; pass --force" in one_friendly_line(second)
    assert second.returncode == 1
    assert (tmp_path / "invite-P-0001.png").read_bytes() == printed
    with sqlite3.connect(tmp_path / "bot.db") as conn:  # no patient was created for the refused invitation
        assert conn.execute("select alias from patient").fetchall() == [("P-0001",)]
    forced = run(*invite, "--alias", "P-0002", "--qr", "invite-P-0001.png", "--force", *offline, cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "invite-P-0001.png").read_bytes() != printed
    assert oct((tmp_path / "invite-P-0001.png").stat().st_mode & 0o777) == "0o600"


def test_invite_create_makes_the_qr_codes_folder_and_refuses_a_symbolic_link(tmp_path: Path) -> None:
    """--qr in a missing folder failed ('No such file or directory') where export makes its folder; a
    symbolic link, even to a missing file, was written through."""
    assert run("staff", "add", "--telegram-id", "1", "--role", "admin", "--name", "A", cwd=tmp_path).returncode == 0
    invite = ("invite", "create", "--surgery-date", "2026-01-01", "--programme", "lumbar-example")
    offline = ("--bot-username", "rehab_test_bot")

    made = run(*invite, "--alias", "P-0001", "--qr", "cards/2026/P-0001.png", *offline, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "cards" / "2026" / "P-0001.png").read_bytes().startswith(b"\x89PNG")
    for folder in (tmp_path / "cards", tmp_path / "cards" / "2026"):
        assert oct(folder.stat().st_mode & 0o777) == "0o700"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "link.png").symlink_to(elsewhere / "missing.png")
    for force in ((), ("--force",)):
        linked = run(*invite, "--alias", "P-0002", "--qr", "link.png", *force, *offline, cwd=tmp_path)
        assert one_friendly_line(linked) == "rehab-bot: --qr link.png is a symbolic link; name the file itself"
        assert linked.returncode == 1
    assert list(elsewhere.iterdir()) == []
    with sqlite3.connect(tmp_path / "bot.db") as conn:  # no patient was created for the refused invitation
        assert conn.execute("select alias from patient").fetchall() == [("P-0001",)]


def test_invite_create_leaves_no_qr_code_when_the_invitation_is_not_committed(tmp_path: Path) -> None:
    """The QR code was written before the commit: when the commit failed (here a trigger refuses the
    invitation's audit row, which is written at the commit), a QR code for an invitation that does not
    exist was left on disk, ready to be printed and handed to a patient."""
    assert run("staff", "add", "--telegram-id", "1", "--role", "admin", "--name", "A", cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        conn.execute(
            "CREATE TRIGGER no_invites BEFORE INSERT ON audit_log WHEN NEW.action = 'invite.create' "
            "BEGIN SELECT RAISE(ABORT, 'no write access'); END"
        )
    invite = ("invite", "create", "--surgery-date", "2026-01-01", "--programme", "lumbar-example")
    offline = ("--bot-username", "rehab_test_bot")

    refused = run(*invite, "--alias", "P-0001", "--qr", "cards/P-0001.png", *offline, cwd=tmp_path)

    assert one_friendly_line(refused) == "rehab-bot: the database refused the command: no write access"
    assert refused.returncode == 1 and "QR code" not in refused.stdout
    assert not (tmp_path / "cards").exists(), list((tmp_path / "cards").iterdir())  # nor a hidden part-file
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        assert conn.execute("select count(*) from patient").fetchone()[0] == 0
        assert conn.execute("select count(*) from invite").fetchone()[0] == 0
        conn.execute("DROP TRIGGER no_invites")
    made = run(*invite, "--alias", "P-0001", "--qr", "cards/P-0001.png", *offline, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "QR code for printing: cards/P-0001.png" in made.stdout
    assert [p.name for p in (tmp_path / "cards").iterdir()] == ["P-0001.png"]
    assert oct((tmp_path / "cards" / "P-0001.png").stat().st_mode & 0o777) == "0o600"


def test_the_readme_command_table_lists_every_command() -> None:
    from rehab_bot.cli import build_parser

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("Commands (each has `--help`):")[1].split("\n\n")[1]
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in sub.choices.items():
        actions = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        for full in [f"{name} {action}" for a in actions for action in a.choices] or [name]:
            assert f"`rehab-bot {full}" in table or f"`{full}" in table, f"rehab-bot {full} is not in the table"


def test_a_statement_the_database_refuses_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    """A database user without the privilege to write ('permission denied for table staff' on PostgreSQL),
    a read-only or full disk: `staff add` died in SQLAlchemy's traceback. Here a trigger refuses."""
    assert run("staff", "add", "--telegram-id", "1", "--role", "admin", "--name", "A", cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        conn.execute(
            "CREATE TRIGGER no_writes BEFORE INSERT ON staff BEGIN SELECT RAISE(ABORT, 'no write access'); END"
        )
    result = run("staff", "add", "--telegram-id", "2", "--role", "therapist", "--name", "B", cwd=tmp_path)
    assert one_friendly_line(result) == "rehab-bot: the database refused the command: no write access"
    assert result.returncode == 1 and result.stdout == ""
    assert staff_count(tmp_path / "bot.db") == 1
