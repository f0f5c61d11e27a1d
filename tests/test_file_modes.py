"""Health data at rest is private: files 0600, folders 0700, whatever the umask the bot was started with."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_runner import in_process
from sqlalchemy import text

from rehab_bot.cli import main
from rehab_bot.db import Database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cli(*args: str, cwd: Path, db_url: str) -> subprocess.CompletedProcess[str]:
    """Run rehab-bot as a process started with the usual, permissive umask 022 (a shell's default).

    In this process (tests/cli_runner.py): the umask is 022 when main() starts, as
    it would be in a new process, and is put back afterwards.
    """
    old = os.umask(0o022)
    try:
        return in_process(list(args), cwd=cwd, env={"REHAB_BOT_DATABASE_URL": db_url})
    finally:
        os.umask(old)


@pytest.fixture
def wide_umask() -> object:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_main_sets_umask_077(wide_umask: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["content", "list"]) == 0
    assert os.umask(0o022) == 0o077


async def test_database_folder_file_wal_and_shm_are_private(wide_umask: object, tmp_path: Path) -> None:
    path = tmp_path / "data" / "deeper" / "bot.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await db.upgrade()
        async with db.engine.connect() as conn:  # a connection holds the WAL open
            await conn.execute(text("SELECT count(*) FROM patient"))
            wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
            assert wal.exists() and shm.exists()
            assert (mode(path), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
    finally:
        await db.dispose()
    assert mode(tmp_path / "data") == 0o700 and mode(path.parent) == 0o700


async def test_an_existing_world_readable_database_is_narrowed(wide_umask: object, tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.upgrade()
    await db.dispose()
    os.chmod(path, 0o644)
    Path(f"{path}-wal").write_bytes(b"")
    os.chmod(f"{path}-wal", 0o644)
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        assert mode(path) == 0o600 and mode(Path(f"{path}-wal")) == 0o600
    finally:
        await db.dispose()


@pytest.mark.slow
def test_cli_database_backup_exports_and_qr_are_private(tmp_path: Path) -> None:
    db_url = "sqlite+aiosqlite:///data/rehab-bot.db"
    surgery = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()
    (tmp_path / "qr").mkdir()
    staff = cli(
        "staff", "add", "--telegram-id", "4242", "--role", "therapist", "--name", "Dr T", cwd=tmp_path, db_url=db_url
    )
    assert staff.returncode == 0, staff.stderr
    made = cli(
        "invite", "create", "--alias", "P-0043", "--surgery-date", surgery, "--programme", "lumbar-example",
        "--bot-username", "clinic_rehab_bot", "--qr", "qr/invite.png", cwd=tmp_path, db_url=db_url,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert mode(tmp_path / "qr" / "invite.png") == 0o600
    assert mode(tmp_path / "data") == 0o700 and mode(tmp_path / "data" / "rehab-bot.db") == 0o600

    backup = cli("db", "backup", "backups/copy.db", cwd=tmp_path, db_url=db_url)
    assert backup.returncode == 0, backup.stderr
    assert mode(tmp_path / "backups") == 0o700 and mode(tmp_path / "backups" / "copy.db") == 0o600

    csv = cli("export", "--format", "csv", "--out", "exports/csv", cwd=tmp_path, db_url=db_url)
    assert csv.returncode == 0, csv.stderr
    files = list((tmp_path / "exports" / "csv").iterdir())
    assert files and {mode(f) for f in files} == {0o600}
    assert mode(tmp_path / "exports") == 0o700 and mode(tmp_path / "exports" / "csv") == 0o700

    fhir = cli("export", "--format", "fhir", "--out", "fhir/bundle.json", cwd=tmp_path, db_url=db_url)
    assert fhir.returncode == 0, fhir.stderr
    assert mode(tmp_path / "fhir") == 0o700 and mode(tmp_path / "fhir" / "bundle.json") == 0o600


def test_export_functions_write_private_files_without_the_cli_umask(wide_umask: object, tmp_path: Path) -> None:
    from rehab_bot import export

    data = export.ExportData(patients=[], therapists={}, namespace=uuid.uuid4())
    written = export.write_csv(data, tmp_path / "a" / "csv")
    assert {mode(p) for p in written} == {0o600} and mode(tmp_path / "a") == 0o700
    bundle = export.fhir_bundle(data, None, datetime(2026, 6, 10, tzinfo=UTC))
    export.write_fhir(bundle, tmp_path / "b" / "bundle.json")
    assert mode(tmp_path / "b" / "bundle.json") == 0o600 and mode(tmp_path / "b") == 0o700
