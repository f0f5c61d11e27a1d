"""`rehab-bot invite create`, `staff remove` and `check-config`: no patient without a responsible person."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import CompletedProcess

from cli_runner import rehab_bot
from factories import TEST_TOKEN
from test_audit import cli

BOT = ("--bot-username", "clinic_rehab_bot")


def _invite(tmp_path: Path, url: str, alias: str, *extra: str) -> tuple[int, str, str]:
    surgery = (datetime.now(UTC).date() - timedelta(days=2)).isoformat()
    result = cli(
        "invite", "create", "--alias", alias, "--surgery-date", surgery, "--programme", "lumbar-example",
        *BOT, *extra, cwd=tmp_path, db_url=url,
    )  # fmt: skip
    return result.returncode, result.stdout, result.stderr


def _add(tmp_path: Path, url: str, telegram_id: int, role: str, name: str) -> None:
    added = cli(
        "staff", "add", "--telegram-id", str(telegram_id), "--role", role, "--name", name, cwd=tmp_path, db_url=url
    )
    assert added.returncode == 0, added.stderr


def test_invite_create_needs_a_responsible_therapist(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    code, out, err = _invite(tmp_path, url, "P-0")
    assert code == 1 and "no staff member yet" in err and "rehab-bot staff add" in err and "Traceback" not in err
    _add(tmp_path, url, 101, "admin", "Admin Ada")
    _add(tmp_path, url, 102, "therapist", "Dr Ben")
    code, out, err = _invite(tmp_path, url, "P-1")
    assert code == 0, err
    assert "therapist Dr Ben (the only one, by default)." in out and "therapist -" not in out
    _add(tmp_path, url, 103, "therapist", "Dr Cleo")
    code, out, err = _invite(tmp_path, url, "P-2")
    assert code == 1 and "--therapist" in err and "Dr Ben" in err and "Dr Cleo" in err
    code, out, err = _invite(tmp_path, url, "P-2", "--therapist", "103")
    assert code == 0 and "therapist Dr Cleo." in out
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        rows = conn.execute(
            "SELECT p.alias, s.name FROM patient p JOIN staff s ON s.id = p.therapist_id ORDER BY p.alias"
        ).fetchall()
    assert rows == [("P-1", "Dr Ben"), ("P-2", "Dr Cleo")], "nothing made by the refused attempts"
    help_text = cli("invite", "create", "--help", cwd=tmp_path, db_url=url).stdout
    assert "Required when more than one therapist" in " ".join(help_text.split())


def test_staff_remove_reassigns_patients_and_tells_the_new_owner(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    _add(tmp_path, url, 201, "therapist", "Dr Leaving")
    assert _invite(tmp_path, url, "R-1")[0] == 0
    assert _invite(tmp_path, url, "R-2")[0] == 0
    refused = cli("staff", "remove", "--telegram-id", "201", cwd=tmp_path, db_url=url)
    assert refused.returncode == 1 and "no other admin" in refused.stderr and "--reassign-to" in refused.stderr
    _add(tmp_path, url, 202, "therapist", "Dr Next")
    _add(tmp_path, url, 203, "admin", "Admin Ada")
    moved = cli("staff", "remove", "--telegram-id", "201", "--reassign-to", "Dr Next", cwd=tmp_path, db_url=url)
    assert moved.returncode == 0, moved.stderr
    assert "deactivated therapist Dr Leaving" in moved.stdout
    assert "2 patient(s) moved to Dr Next (Telegram id 202), who is told in Telegram" in moved.stdout
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        owners = conn.execute("SELECT DISTINCT s.telegram_id FROM patient p JOIN staff s ON s.id = p.therapist_id")
        assert owners.fetchall() == [(202,)]
        [(chat, kind, body)] = conn.execute("SELECT chat_id, kind, body FROM delivery").fetchall()
    assert (chat, kind) == (202, "alert") and "Dr Leaving was removed" in body and "R-1, R-2" in body
    # Without --reassign-to an admin takes them; removing the last admin warns.
    to_admin = cli("staff", "remove", "--telegram-id", "202", cwd=tmp_path, db_url=url)
    assert to_admin.returncode == 0 and "moved to Admin Ada" in to_admin.stdout
    last = cli("staff", "remove", "--telegram-id", "203", "--reassign-to", "Dr Next", cwd=tmp_path, db_url=url)
    assert last.returncode == 1 and "no active staff member" in last.stderr, "Dr Next is gone"
    help_text = cli("staff", "remove", "--help", cwd=tmp_path, db_url=url).stdout
    assert "--reassign-to" in help_text and "the removal is refused" in " ".join(help_text.split())


def test_check_config_warns_when_no_admin_exists(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    env_token = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}

    def check() -> CompletedProcess[str]:
        return rehab_bot("check-config", cwd=tmp_path, env={**env_token, "REHAB_BOT_DATABASE_URL": url})

    fresh = check()
    assert fresh.returncode == 0 and "WARNING: there is no active admin" in fresh.stderr
    assert "WARNING" not in fresh.stdout, "results on stdout, warnings on stderr (README)"
    assert not (tmp_path / "bot.db").exists(), "check-config creates nothing"
    _add(tmp_path, url, 301, "therapist", "Dr T")
    therapist_only = check()
    assert "WARNING: there is no active admin" in therapist_only.stderr and "configuration OK" in therapist_only.stdout
    assert "WARNING" not in therapist_only.stdout
    _add(tmp_path, url, 302, "admin", "Admin A")
    ok = check()
    assert ok.returncode == 0 and "WARNING" not in ok.stdout + ok.stderr and "configuration OK" in ok.stdout


def test_invite_create_with_two_admins_and_no_therapist_says_so(tmp_path: Path) -> None:
    """With no therapist the candidates are the admins, but the refusal said '2 therapists work here'."""
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    _add(tmp_path, url, 101, "admin", "Admin Ada")
    _add(tmp_path, url, 102, "admin", "Admin Bo")
    code, out, err = _invite(tmp_path, url, "P-1")
    assert (code, out) == (1, "")
    assert err == (
        "rehab-bot: 2 admins and no therapist work here: name the responsible one with --therapist "
        "(Telegram id or name: Admin Ada, Admin Bo)\n"
    )
