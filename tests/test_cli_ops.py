"""The command line as a clinic's IT person meets it: global options anywhere, quiet libraries,
results on stdout and diagnostics on stderr, invitation aliases, QR captions, audit formats,
no silent overwrites, progress only on a terminal. Real processes, real SQLite files."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import select
import sqlite3
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import qrcode
from babel.dates import format_date
from cli_runner import rehab_bot
from factories import TEST_TOKEN
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

from rehab_bot import __version__, audit
from rehab_bot import invite as invite_core
from rehab_bot.access import StaffError
from rehab_bot.config import ClinicConfig
from rehab_bot.schedule import zone

BIN = Path(sys.executable).parent / "rehab-bot"


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {"REHAB_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{cwd}/bot.db", **(env or {})}
    return rehab_bot(*args, cwd=cwd, env=env)


def run_on_a_terminal(*args: str, cwd: Path) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal; return the status and everything shown."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("REHAB_BOT_")}
    env = {**base, "REHAB_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{cwd}/bot.db"}
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [str(BIN), *args], cwd=cwd, env=env, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL
    )
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return process.wait(timeout=60), shown.decode(errors="replace")


def surgery_date() -> str:
    return (datetime.now(UTC).date() - timedelta(days=3)).isoformat()


def invite(alias: str, cwd: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if not (cwd / ".therapist").exists():
        # Every patient needs a responsible person: the clinic's only therapist is the default.
        added = run("staff", "add", "--telegram-id", "4242", "--role", "therapist", "--name", "Dr T", cwd=cwd, env=env)
        assert added.returncode == 0, added.stderr
        (cwd / ".therapist").touch()
    return run(
        "invite", "create", "--alias", alias, "--surgery-date", surgery_date(), "--programme", "lumbar-example",
        "--bot-username", "clinic_rehab_bot", *extra, cwd=cwd, env=env,
    )  # fmt: skip


# --- global options and logs -------------------------------------------------------


def test_config_is_accepted_before_and_after_the_subcommand(tmp_path: Path) -> None:
    (tmp_path / "clinic.toml").write_text('[clinic]\nname = "Praxis Nord"\n', encoding="utf-8")
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}
    for args in (
        ("--config", "clinic.toml", "check-config"),
        ("check-config", "--config", "clinic.toml"),
        ("check-config", "--verbose", "--config=clinic.toml"),
    ):
        result = run(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0, (args, result.stderr)
        assert "clinic: Praxis Nord" in result.stdout
    # After a nested subcommand too, and still checked: a missing file is named.
    missing = run("db", "upgrade", "--config", "nowhere.toml", cwd=tmp_path)
    assert missing.returncode == 2 and "--config names nowhere.toml" in missing.stderr
    assert "unrecognized arguments" not in missing.stderr


def test_library_logs_are_quiet_unless_verbose(tmp_path: Path) -> None:
    quiet = run("db", "upgrade", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "", "a fresh database is migrated without a word"
    assert quiet.stdout.startswith("database at revision")
    listed = run("staff", "list", cwd=tmp_path)
    assert (listed.stderr, listed.stdout.startswith("no staff yet")) == ("", True)
    verbose = run(
        "db", "upgrade", "--verbose", cwd=tmp_path, env={"REHAB_BOT_DATABASE_URL": "sqlite+aiosqlite:///v.db"}
    )
    assert verbose.returncode == 0 and "alembic" in verbose.stderr and "Running upgrade" in verbose.stderr
    assert "alembic" not in verbose.stdout
    assert "--verbose" in run("--help", cwd=tmp_path).stdout


@pytest.mark.parametrize("name", ["", "Our clinic", "Example Spine Clinic"])
def test_check_config_warns_about_a_placeholder_clinic_name(tmp_path: Path, name: str) -> None:
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN, "REHAB_BOT_CLINIC_NAME": name}
    result = run("check-config", cwd=tmp_path, env=env)
    assert result.returncode == 0 and "configuration OK" in result.stdout
    assert "warning: clinic.name" in result.stderr and "REHAB_BOT_CLINIC_NAME" in result.stderr
    own = run("check-config", cwd=tmp_path, env={**env, "REHAB_BOT_CLINIC_NAME": "Praxis Nord"})
    assert own.returncode == 0 and "clinic.name" not in own.stderr
    # The other warning here (no admin in a database not yet made) is on stderr too, never among the results.
    assert own.stderr.startswith("WARNING: there is no active admin") and "WARNING" not in own.stdout


# --- invitations -------------------------------------------------------------------


def test_invite_create_applies_the_chat_alias_rule_and_warns_about_names(tmp_path: Path) -> None:
    for alias in ("Anna Muster", "Anna", "P1", "x" * 25 + "1"):
        result = invite(alias, tmp_path)
        assert result.returncode == 1, (alias, result.stdout)
        with pytest.raises(StaffError) as rule:
            invite_core.validate_alias(alias)  # the one rule, also behind the chat's /invite
        assert str(rule.value) in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "bot.db").exists() or "Anna" not in run("audit", cwd=tmp_path).stdout
    named = invite("Anna-Muster1", tmp_path)
    assert named.returncode == 0, named.stderr
    assert "looks like a real name" in named.stderr and "looks like" not in named.stdout
    assert "https://t.me/clinic_rehab_bot?start=" in named.stdout
    plain = invite("LWS-0412", tmp_path)
    assert plain.returncode == 0 and "real name" not in plain.stderr


def qr_matrix(image: Image.Image) -> list[list[bool]]:
    grey = image.convert("L")
    size = grey.size[0] // 10
    return [[grey.getpixel((x * 10 + 5, y * 10 + 5)) < 128 for x in range(size)] for y in range(size)]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("language", "valid", "scan"),
    [("en", "Valid until ", "Scan with your phone's camera."), ("de", "Gültig bis ", "Mit der Kamera Ihres Telefons")],
)
def test_the_qr_png_carries_alias_clinic_expiry_and_how_to_scan(
    tmp_path: Path, language: str, valid: str, scan: str
) -> None:
    env = {"REHAB_BOT_CLINIC_NAME": "Praxis Nord", "REHAB_BOT_CLINIC_LANGUAGE": language}
    before = datetime.now(UTC)
    result = invite("P-0042", tmp_path, "--qr", "card.png", env=env)
    after = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    [link] = [line for line in result.stdout.splitlines() if line.startswith("https://t.me/")]
    image = Image.open(tmp_path / "card.png")
    width, height = image.size
    assert image.format == "PNG" and height > width + 80, image.size
    # The code itself is unchanged at the top ...
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=4)
    qr.add_data(link)
    qr.make(fit=True)
    assert qr_matrix(image) == qr.get_matrix()
    # ... and the caption is printed under it (dark pixels below the code's quiet zone) and stored as text.
    pixels = image.convert("L").tobytes()
    caption_rows = [y for y in range(width, height) if min(pixels[y * width : (y + 1) * width]) < 100]
    assert len(caption_rows) > 40
    lines = image.info["Description"].splitlines()  # type: ignore[attr-defined]
    # The last valid day in the clinic's time zone (Europe/Berlin by default), not this machine's: from
    # 23:00 UTC the two differ. Bracketed by the clock before and after, so a midnight in between is fine.
    clinic = zone(ClinicConfig().timezone)
    days = {(at + timedelta(days=14)).astimezone(clinic).date() for at in (before, after)}
    assert lines[0] == "P-0042" and lines[1] == "Praxis Nord"
    assert lines[2] in {valid + format_date(day, "long", locale=language) for day in days}, (lines[2], days)
    assert lines[3].startswith(scan)


# --- audit ---------------------------------------------------------------------------


def test_audit_prints_a_header_in_every_format_and_names_the_os_user(tmp_path: Path) -> None:
    added = run("staff", "add", "--telegram-id", "111", "--role", "admin", "--name", "Ada", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    operator = audit.os_operator()
    assert operator.startswith("cli:") and "@" in operator
    tsv = run("audit", cwd=tmp_path).stdout.splitlines()
    assert tsv[0].split("\t") == ["time", "who", "action", "patient", "detail"]
    assert tsv[1].split("\t")[1:3] == [operator, "staff.add"]
    rows = list(csv.reader(io.StringIO(run("audit", "--format", "csv", cwd=tmp_path).stdout)))
    assert rows[0] == ["time", "who", "action", "patient", "detail"] and rows[1][1:3] == [operator, "staff.add"]
    (tmp_path / ".therapist").touch()  # Ada, the only staff member, is responsible by default
    assert invite("P-0042", tmp_path).returncode == 0
    records = json.loads(run("audit", "--format=json", cwd=tmp_path).stdout)
    assert [(r["who"], r["action"], r["patient"]) for r in records] == [
        (operator, "staff.add", "-"),
        (operator, "invite.create", "P-0042"),
    ]
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        assert conn.execute("SELECT DISTINCT actor FROM audit_log").fetchall() == [(operator,)]
    empty = run("audit", "--since", "2999-01-01", "--format", "json", cwd=tmp_path)
    assert json.loads(empty.stdout) == [] and "no audit records" in empty.stderr


# --- export and backup ---------------------------------------------------------------


def test_export_and_backup_refuse_to_overwrite_without_force(tmp_path: Path) -> None:
    assert invite("LWS-0412", tmp_path).returncode == 0
    bundle = tmp_path / "bundle.json"
    bundle.write_text("keep me", encoding="utf-8")
    refused = run("export", "--format", "fhir", "--out", str(bundle), cwd=tmp_path)
    assert refused.returncode == 1 and "bundle.json already exists; pass --force" in refused.stderr
    assert bundle.read_text(encoding="utf-8") == "keep me"
    forced = run("export", "--format", "fhir", "--out", str(bundle), "--force", cwd=tmp_path)
    assert forced.returncode == 0 and json.loads(bundle.read_text(encoding="utf-8"))["resourceType"] == "Bundle"

    folder = tmp_path / "csv"
    assert run("export", "--format", "csv", "--out", str(folder), cwd=tmp_path).returncode == 0
    again = run("export", "--format", "csv", "--out", str(folder), cwd=tmp_path)
    assert again.returncode == 1 and "csv already holds the files of an export; pass --force" in again.stderr
    assert run("export", "--format", "csv", "--out", str(folder), "--force", cwd=tmp_path).returncode == 0
    # Exports refused are not recorded as exports.
    log = run("audit", cwd=tmp_path).stdout.splitlines()[1:]
    assert [line.split("\t")[2] for line in log].count("export") == 3

    copy = tmp_path / "copy.db"
    copy.write_text("keep me", encoding="utf-8")
    refused = run("db", "backup", str(copy), cwd=tmp_path)
    assert refused.returncode == 1 and "already exists" in refused.stderr and "--force" in refused.stderr
    assert copy.read_text(encoding="utf-8") == "keep me"
    forced = run("db", "backup", "--force", str(copy), cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT alias FROM patient").fetchall() == [("LWS-0412",)]


@pytest.mark.slow
def test_progress_bars_show_on_a_terminal_only(tmp_path: Path) -> None:
    assert invite("LWS-0412", tmp_path).returncode == 0
    status, shown = run_on_a_terminal("export", "--format", "fhir", "--out", "b.json", cwd=tmp_path)
    assert status == 0, shown
    assert "export fhir:" in shown and "%|" in shown, shown
    status, shown = run_on_a_terminal("db", "backup", "copy.db", cwd=tmp_path)
    assert status == 0, shown
    assert "backup:" in shown and "page" in shown, shown
    piped = run("export", "--format", "fhir", "--out", "c.json", cwd=tmp_path)
    assert piped.returncode == 0 and piped.stderr == ""
    piped = run("db", "backup", "copy2.db", cwd=tmp_path)
    assert piped.returncode == 0 and piped.stderr == ""


def test_a_database_a_newer_version_upgraded_is_refused_in_one_line(tmp_path: Path) -> None:
    """After going back to an older rehab-bot, every command died in Alembic's traceback
    ("Can't locate revision identified by ..."); the database is left as it was."""
    assert run("staff", "add", "--telegram-id", "1", "--role", "admin", "--name", "A", cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    expected = (
        f"rehab-bot: the database at sqlite+aiosqlite:///{tmp_path}/bot.db is at revision '0099_from_the_future', "
        f"which this rehab-bot ({__version__}) does not know: a newer rehab-bot has upgraded it. "
        "Run that version again, or restore a backup made before the upgrade\n"
    )
    for args in (("db", "upgrade"), ("staff", "list"), ("audit",)):
        result = run(*args, cwd=tmp_path)
        assert (result.returncode, result.stdout, result.stderr) == (1, "", expected), args
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0099_from_the_future",)]
        assert conn.execute("SELECT telegram_id, role FROM staff").fetchall() == [(1, "admin")]


def test_an_output_path_under_a_file_says_the_file_is_in_the_way(tmp_path: Path) -> None:
    """A file where a folder is wanted said 'cannot write exp.json: File exists' (for a FHIR export or a
    backup) or 'Not a directory' about the whole path: not what to fix."""
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    taken = tmp_path / "exp.json"
    taken.write_text("an earlier export")
    for args, line in [
        (("export", "--format", "fhir", "--out", f"{taken}/x.json"), f"cannot write {taken}:"),
        (("export", "--format", "csv", "--out", f"{taken}/sub"), f"cannot write {taken}/sub:"),
        (("db", "backup", f"{taken}/x.db"), f"cannot write the backup to {taken}/x.db:"),
    ]:
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 1 and result.stdout == "", args
        assert result.stderr == f"rehab-bot: {line} {taken} is a file, not a folder\n", args
    assert taken.read_text() == "an earlier export"


def test_a_command_that_reads_refuses_a_database_that_does_not_exist_and_makes_none(tmp_path: Path) -> None:
    """An outside test mistyped the database path: `staff list` answered "no staff yet" (exit 0) from a new,
    migrated, empty database it had just made there, folders included."""
    missing = tmp_path / "typo-dir" / "bot.db"
    env = {"REHAB_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{missing}"}
    expected = (
        f"rehab-bot: no database at {missing}: check [database] url in the config (REHAB_BOT_DATABASE_URL); "
        "to start a new one there, run: rehab-bot db upgrade\n"
    )
    out = tmp_path / "out"
    reads = [
        ("staff", "list"),
        ("audit",),
        ("export", "--format", "fhir", "--out", str(out / "x.json")),
        ("report", "outcomes", "--from", "2026-01-01", "--to", "2026-02-01", "--out", str(out)),
        ("staff", "remove", "--telegram-id", "5"),
    ]
    for args in reads:
        result = rehab_bot(*args, cwd=tmp_path, env=env)
        assert (result.returncode, result.stdout, result.stderr) == (1, "", expected), args
    assert not missing.parent.exists(), "nothing is made at a mistyped path"
    # Adding the first admin, as the README's setup does, still starts a new database.
    added = rehab_bot("staff", "add", "--telegram-id", "1", "--role", "admin", "--name", "A", cwd=tmp_path, env=env)
    assert added.returncode == 0, added.stderr
    assert missing.exists() and rehab_bot("staff", "list", cwd=tmp_path, env=env).returncode == 0


def test_one_off_commands_keep_their_own_info_lines_for_verbose_and_name_a_missing_folder(tmp_path: Path) -> None:
    """`staff remove` printed "... INFO rehab_bot.staff: staff 2 removed; ..." without -v; `content check` of a
    folder that does not exist said it "is not a folder"."""
    for flags in ((), ("-v",)):
        folder = tmp_path / ("verbose" if flags else "quiet")
        folder.mkdir()
        assert invite("LWS-0501", folder).returncode == 0  # therapist 4242, the patient's
        added = run("staff", "add", "--telegram-id", "5", "--role", "therapist", "--name", "B", cwd=folder)
        assert added.returncode == 0
        removed = run("staff", "remove", "--telegram-id", "4242", "--reassign-to", "B", *flags, cwd=folder)
        assert removed.returncode == 0, removed.stderr
        logged = "INFO    rehab_bot.staff: staff" in removed.stderr
        assert logged == bool(flags), removed.stderr
    missing = run("content", "check", str(tmp_path / "nope"), cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (1, f"rehab-bot: {tmp_path / 'nope'} does not exist\n")
