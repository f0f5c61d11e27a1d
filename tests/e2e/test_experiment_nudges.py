"""A running experiment end to end: randomised nudges on the fake Bot API, each draw and its outcome recorded.

Ten patients with a 09:00 session; none answers, so at 12:00 each nudge is a
decision point of the running "nudge or not" experiment. The treated patients
get the nudge, the others nothing; every draw is stored with its probability
and context; one treated patient logs the session after the nudge, and once
the 3-hour window has passed the outcomes are recorded: 1 for that patient, 0
for the rest. The consent text of a new patient mentions the experiment.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import make_patient
from rig.telegram_server import FakeTelegram
from sqlmodel import col, select

from rehab_bot import experiment
from rehab_bot import session as core
from rehab_bot.bot import enrol as enrol_bot
from rehab_bot.bot import session as session_bot
from rehab_bot.content import load_content
from rehab_bot.models import ExperimentDecision, Kind, Patient
from rehab_bot.reminders import add_rule

WED = date(2026, 6, 10)
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


def berlin(day: date, hhmm: str, seconds: int = 1) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, seconds, tzinfo=UTC) - timedelta(hours=2)


@pytest.fixture
async def bot(bot_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    (tmp_path / "experiments.toml").write_text(EXPERIMENT, encoding="utf-8")
    monkeypatch.setattr(experiment, "_rng", random.Random(4))
    return await bot_factory(delivery={"per_chat_interval": 0.02}, content={"dir": tmp_path})


async def test_randomised_nudges_are_sent_by_the_draw_and_recorded(bot: Any, tg: FakeTelegram) -> None:
    bot.clock.set(berlin(WED, "07:00"))
    patients: list[Patient] = []
    for n in range(10):
        patient, _ = await make_patient(
            bot.db,
            bot.clock,
            times=(),
            telegram_id=8200 + n,
            programme_id="lumbar-example",
            surgery_date=WED - timedelta(days=5),
            phase_id="weeks-1-2",
            session_times="09:00",
        )
        async with bot.db.session() as s:
            add_rule(
                s, patient, kind=Kind.SESSION, local_time="09:00", now=bot.clock.now(), payload=core.rule_payload(0)
            )
            # Enrolled while the experiment ran: the consent text told them (else the first nudge would,
            # undrawn: tests/e2e/test_experiment_notice.py).
            await experiment.record_consent(s, bot.services.content, patient.id or 0, bot.clock.now())
            await s.commit()
        patients.append(patient)
    users = [tg.user(8200 + n) for n in range(10)]

    bot.clock.set(berlin(WED, "09:00"))
    await bot.tick()
    for user in users:
        await user.next_message(lambda m: m.text.startswith("Time for your exercise session"))
        user.mark_seen()
    bot.clock.set(berlin(WED, "12:00", 5))
    await bot.tick()

    async with bot.db.session() as s:
        rows = {r.patient_id: r for r in (await s.exec(select(ExperimentDecision))).all()}
    assert set(rows) == {p.id for p in patients}, "every open session's nudge was a decision point"
    treated = [p for p in patients if rows[p.id].treated]
    assert 0 < len(treated) < len(patients), "the seeded draw gives both arms"
    for p in patients:
        row = rows[p.id]
        assert (row.experiment_id, row.probability, row.local_hour, row.programme_day) == ("nudge-or-not", 0.5, 12, 5)
        assert row.adherence is None and row.outcome is None  # no resolved session in the week before
    for p, user in zip(patients, users, strict=True):
        if rows[p.id].treated:
            nudge = await user.next_message()
            assert nudge.text == "Just checking in: did you manage your 09:00 exercise session?"
        else:
            await user.expect_silence(0.1)

    # One treated patient logs the session from the nudge at 12:30.
    first, user = treated[0], users[patients.index(treated[0])]
    bot.clock.set(berlin(WED, "12:30"))
    await user.press("✅ Done")
    await user.wait_for_answer()

    # Within the 3-hour window nothing is recorded; after it, every outcome is.
    await session_bot.sweep(bot.app)
    async with bot.db.session() as s:
        assert all(r.outcome is None for r in (await s.exec(select(ExperimentDecision))).all())
    bot.clock.set(berlin(WED, "15:00", 6))
    await session_bot.sweep(bot.app)
    async with bot.db.session() as s:
        outcomes = {
            r.patient_id: r.outcome
            for r in (await s.exec(select(ExperimentDecision).order_by(col(ExperimentDecision.id)))).all()
        }
    assert outcomes == {p.id: int(p.id == first.id) for p in patients}

    # A new patient's consent text mentions the running experiment; without one it does not.
    content = bot.services.content
    text, _ = enrol_bot.consent_prompt("de", patients[0], content, "Klinik", "Willkommen")
    assert content.text("experiment_consent", "de") in text and text.endswith("Sind Sie einverstanden?")
    plain, _ = enrol_bot.consent_prompt("de", patients[0], load_content(None), "Klinik", "Willkommen")
    assert "Zufall" not in plain
