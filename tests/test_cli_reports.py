"""`rehab-bot experiment report ID` against a real SQLite file: arms, effect and interval, nobody named."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from pathlib import Path

from cli_runner import rehab_bot
from factories import make_patient

from rehab_bot.clock import FakeClock
from rehab_bot.db import Database
from rehab_bot.models import ExperimentDecision

EXPERIMENT = """
[[experiment]]
id = "nudge-or-not"
running = true
title.en = "Nudge or not"
title.de = "Nachfrage oder nicht"
decision = "nudge"
probability = 0.5
control = "skip"
outcome_hours = 3
"""


def env(tmp_path: Path) -> dict[str, str]:
    return {"REHAB_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db", "REHAB_BOT_CONTENT_DIR": str(tmp_path)}


async def seed(tmp_path: Path, patients: int) -> list[str]:
    """Decisions with outcomes: treated 70 %, control 30 % of the time, 20 per patient."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    clock = FakeClock(datetime(2026, 6, 10, 10, tzinfo=UTC))
    rng = random.Random(1)
    aliases = []
    try:
        for n in range(patients):
            patient, _ = await make_patient(db, clock, times=(), alias=f"Alias-{n:03d}")
            aliases.append(patient.alias)
            async with db.session() as s:
                for ref in range(20):
                    treated = rng.random() < 0.5
                    s.add(
                        ExperimentDecision(
                            experiment_id="nudge-or-not",
                            patient_id=patient.id,
                            ref=ref,
                            decided_at=clock.now(),
                            treated=treated,
                            probability=0.5,
                            local_hour=12,
                            outcome=int(rng.random() < (0.7 if treated else 0.3)),
                            outcome_at=clock.now(),
                        )
                    )
                await s.commit()
    finally:
        await db.dispose()
    return aliases


def test_experiment_report_prints_the_effect_with_its_interval(tmp_path: Path) -> None:
    (tmp_path / "experiments.toml").write_text(EXPERIMENT, encoding="utf-8")
    assert rehab_bot("db", "upgrade", cwd=tmp_path, env=env(tmp_path)).returncode == 0
    aliases = asyncio.run(seed(tmp_path, 12))
    result = rehab_bot("experiment", "report", "nudge-or-not", cwd=tmp_path, env=env(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Experiment nudge-or-not: Nudge or not\n")
    assert "Decision points: 240 (0 still inside their outcome window)" in out
    [effect] = [line for line in out.splitlines() if line.startswith("Effect on the outcome's probability: +")]
    low, high = (float(x) for x in effect.split("95 % CI ")[1].split(";")[0].split(" to "))
    assert low < 40 < high and low > 20, effect  # the true effect is 40 percentage points
    assert not any(alias in out for alias in aliases)


def test_experiment_report_refuses_an_unknown_id_and_suppresses_small_arms(tmp_path: Path) -> None:
    (tmp_path / "experiments.toml").write_text(EXPERIMENT, encoding="utf-8")
    unknown = rehab_bot("experiment", "report", "nope", cwd=tmp_path, env=env(tmp_path))
    assert unknown.returncode == 1 and "no experiment 'nope'" in unknown.stderr and "nudge-or-not" in unknown.stderr
    assert rehab_bot("db", "upgrade", cwd=tmp_path, env=env(tmp_path)).returncode == 0
    asyncio.run(seed(tmp_path, 3))
    small = rehab_bot("experiment", "report", "nudge-or-not", cwd=tmp_path, env=env(tmp_path))
    assert small.returncode == 0, small.stderr
    assert "treatment: fewer than 5 patients, suppressed" in small.stdout
    assert "Effect: not estimated" in small.stdout


def test_report_outcomes_writes_private_html_and_csv(tmp_path: Path) -> None:
    from outcome_seed import seed as seed_patients

    assert rehab_bot("db", "upgrade", cwd=tmp_path, env=env(tmp_path)).returncode == 0

    async def go() -> list[str]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
        try:
            return await seed_patients(db, 30)
        finally:
            await db.dispose()

    aliases = asyncio.run(go())
    bad = rehab_bot("report", "outcomes", "--from", "2026-13-01", "--to", "2026-06-30", cwd=tmp_path, env=env(tmp_path))
    assert bad.returncode == 1
    assert bad.stderr == "rehab-bot: --from: '2026-13-01' is not a date of the calendar (YYYY-MM-DD)\n"
    bad = rehab_bot("report", "outcomes", "--from", "2026-03-01", "--to", "30.06.2026", cwd=tmp_path, env=env(tmp_path))
    assert bad.returncode == 1 and bad.stderr.startswith("rehab-bot: --to: '30.06.2026' is not")
    out = tmp_path / "reports"
    args = ("report", "outcomes", "--from", "2026-03-01", "--to", "2026-06-30", "--out", str(out))
    result = rehab_bot(*args, cwd=tmp_path, env=env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "outcomes.html" in result.stdout and "outcomes.csv" in result.stdout
    html, table = (out / "outcomes.html").read_text(), (out / "outcomes.csv").read_text()
    assert (out / "outcomes.html").stat().st_mode & 0o777 == 0o600
    assert (out / "outcomes.csv").stat().st_mode & 0o777 == 0o600
    assert (
        table.startswith("section,measure,figure,value,n,anchor\n") and "Patients enrolled in the period,30," in table
    )
    assert "<caption>Retention</caption>" in html
    assert not any(alias in html or alias in table for alias in aliases)
    # An earlier report is kept unless --force, as export and db backup keep their files.
    (out / "outcomes.csv").write_text("the clinic's earlier report")
    again = rehab_bot(*args, cwd=tmp_path, env=env(tmp_path))
    assert again.returncode == 1 and "already exist" in again.stderr and "--force" in again.stderr
    assert (out / "outcomes.csv").read_text() == "the clinic's earlier report"
    forced = rehab_bot(*args, "--force", cwd=tmp_path, env=env(tmp_path))
    assert forced.returncode == 0, forced.stderr
    assert (out / "outcomes.csv").read_text() == table


def test_report_outcomes_refuses_a_file_as_its_folder(tmp_path: Path) -> None:
    """--out naming a file said 'cannot write exp.json: File exists', after building the whole report."""
    taken = tmp_path / "exp.json"
    taken.write_text("the clinic's FHIR export")
    for force in ((), ("--force",)):
        args = ("report", "outcomes", "--from", "2026-03-01", "--to", "2026-06-30", "--out", str(taken), *force)
        result = rehab_bot(*args, cwd=tmp_path, env=env(tmp_path))
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr == (
            f"rehab-bot: --out {taken} is a file; name a folder for outcomes.html and outcomes.csv\n"
        )
        assert taken.read_text() == "the clinic's FHIR export"


def test_report_outcomes_over_every_day_there_is(tmp_path: Path) -> None:
    """--to 9999-12-31 (the last date there is) died in 'OverflowError: date value out of range'."""
    from outcome_seed import seed as seed_patients

    assert rehab_bot("db", "upgrade", cwd=tmp_path, env=env(tmp_path)).returncode == 0

    async def go() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
        try:
            await seed_patients(db, 6)
        finally:
            await db.dispose()

    asyncio.run(go())
    args = ("report", "outcomes", "--from", "0001-01-01", "--to", "9999-12-31", "--out", str(tmp_path / "all"))
    result = rehab_bot(*args, cwd=tmp_path, env=env(tmp_path))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "Patients enrolled in the period,6," in (tmp_path / "all" / "outcomes.csv").read_text()
