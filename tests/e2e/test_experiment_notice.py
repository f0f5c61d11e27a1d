"""Experiments and consent, end to end on the fake Bot API.

- A patient who consented before the experiment started is told once, on the first nudge that
  would have been randomised: that nudge is sent as usual (not drawn), with the clinic's notice
  and a "Leave me out of tests" button. Their next nudge is drawn.
- A patient who presses the button is recorded as opted out and never drawn again.
- A patient who consented while the experiment ran was told by the consent text: drawn at once.
- Safety messages, crisis replies and alerts are never randomised: with every draw going to
  "no nudge", the nudges stay away but the crisis reply and the staff alert arrive.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram
from sqlmodel import col, select

from rehab_bot import enrolment, experiment
from rehab_bot import invite as invites
from rehab_bot import session as core
from rehab_bot.bot.experiments import OPT_OUT
from rehab_bot.models import Alert, ExerciseSession, ExperimentDecision, ExperimentNotice, Kind, Patient
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
NUDGE = "Just checking in: did you manage your 09:00 exercise session?"


def berlin(day: date, hhmm: str, seconds: int = 1) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, seconds, tzinfo=UTC) - timedelta(hours=2)


class Always:
    """A draw that always gives the same number (0.0: treatment, 0.99: control)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.fixture
async def bot(bot_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    (tmp_path / "experiments.toml").write_text(EXPERIMENT, encoding="utf-8")
    monkeypatch.setattr(experiment, "_rng", Always(0.0))  # every draw: treatment (the nudge is sent)
    return await bot_factory(delivery={"per_chat_interval": 0.02}, content={"dir": tmp_path})


async def patient_with_a_0900_session(bot: Any, telegram_id: int, **kw: Any) -> Patient:
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=telegram_id,
        programme_id="lumbar-example",
        surgery_date=WED - timedelta(days=5),
        phase_id="weeks-1-2",
        session_times="09:00",
        consent_at=bot.clock.now() - timedelta(days=6),
        **kw,
    )
    async with bot.db.session() as s:
        add_rule(s, patient, kind=Kind.SESSION, local_time="09:00", now=bot.clock.now(), payload=core.rule_payload(0))
        await s.commit()
    return patient


async def decisions(bot: Any) -> list[ExperimentDecision]:
    async with bot.db.session() as s:
        return list((await s.exec(select(ExperimentDecision).order_by(col(ExperimentDecision.id)))).all())


async def notices(bot: Any) -> dict[int, ExperimentNotice]:
    async with bot.db.session() as s:
        return {n.patient_id: n for n in (await s.exec(select(ExperimentNotice))).all()}


async def reminder_then_nudge(bot: Any, users: list[Any], day: date) -> None:
    bot.clock.set(berlin(day, "09:00"))
    await bot.tick()
    for user in users:
        await user.next_message(lambda m: m.text.startswith("Time for your exercise session"))
        user.mark_seen()
    bot.clock.set(berlin(day, "12:00", 5))
    await bot.tick()


async def test_told_once_before_the_first_draw_and_an_opt_out_is_kept(bot: Any, tg: FakeTelegram) -> None:
    bot.clock.set(berlin(WED, "07:00"))
    before = await patient_with_a_0900_session(bot, 8301)  # consented before the experiment started
    leaves = await patient_with_a_0900_session(bot, 8302)  # the same, and will opt out
    told = await patient_with_a_0900_session(bot, 8303)
    async with bot.db.session() as s:  # consented while the experiment ran: the consent text told them
        await experiment.record_consent(s, bot.services.content, told.id or 0, bot.clock.now())
        await s.commit()
    a, b, c = tg.user(8301), tg.user(8302), tg.user(8303)
    notice = bot.services.content.text("experiment_notice", "en")

    await reminder_then_nudge(bot, [a, b, c], WED)
    assert [d.patient_id for d in await decisions(bot)] == [told.id], "only the patient told at consent is drawn"
    nudges = {}
    for user in (a, b):
        nudge = nudges[user] = await user.next_message()
        assert nudge.text == f"{NUDGE}\n\n{notice}"
        assert OPT_OUT in nudge.callback_data and "🚫 Leave me out of tests" in nudge.button_labels
    drawn = await c.next_message()
    assert drawn.text == NUDGE and OPT_OUT not in drawn.callback_data  # no second notice
    rows = await notices(bot)
    assert {p: (n.via, n.opted_out_at) for p, n in rows.items()} == {
        before.id: ("notice", None),
        leaves.id: ("notice", None),
        told.id: ("consent", None),
    }

    # The second patient opts out: recorded, told so, only the button goes (the session's buttons stay).
    await b.press("🚫 Leave me out of tests")
    await b.wait_for_answer()
    [answer] = await b.wait_for(lambda m: m.text.startswith("✅ Understood"))
    assert answer.text == bot.services.content.text("experiment_opted_out", "en")
    edited = tg.message(8302, nudges[b].message_id)
    assert OPT_OUT not in edited.callback_data and edited.callback_data, "the nudge keeps Done / Partly / Skip"
    assert (await notices(bot))[leaves.id].opted_out_at == bot.clock.now()

    # Next day: the first patient is drawn now; the one who opted out never is, and gets the usual nudge.
    await reminder_then_nudge(bot, [a, b, c], WED + timedelta(days=1))
    drawn_ids = [d.patient_id for d in await decisions(bot)]
    assert drawn_ids[0] == told.id and sorted(drawn_ids[1:]) == sorted([before.id, told.id])
    assert leaves.id not in drawn_ids
    for user in (a, b, c):
        nudge = await user.next_message()
        assert nudge.text == NUDGE, "told once: no notice again"


async def test_the_consent_of_a_new_patient_counts_as_told_while_an_experiment_runs(bot: Any) -> None:
    patient, _ = await make_patient(bot.db, bot.clock, times=(), telegram_id=8310, enrol_step="consent")
    async with bot.db.session() as s:
        row = await s.get(Patient, patient.id)
        assert row is not None
        assert await enrolment.agree(s, row, "v1", bot.clock.now(), bot.services.content)
    rows = await notices(bot)
    assert rows[patient.id or 0].via == "consent" and rows[patient.id or 0].told_at == bot.clock.now()


async def test_safety_replies_and_alerts_are_never_randomised(
    bot: Any, tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(experiment, "_rng", Always(0.99))  # every draw: control, "no nudge"
    therapist = await make_staff(bot.db, telegram_id=8390)
    bot.clock.set(berlin(WED, "07:00"))
    patient = await patient_with_a_0900_session(bot, 8320, therapist_id=therapist.id)
    async with bot.db.session() as s:
        await experiment.record_consent(s, bot.services.content, patient.id or 0, bot.clock.now())
        await s.commit()
    user = tg.user(8320)
    await reminder_then_nudge(bot, [user], WED)
    [decision] = await decisions(bot)
    assert not decision.treated
    await user.expect_silence(0.3)  # the control arm: no nudge

    await user.send("I wish I wasn't here")
    [help_now] = await user.wait_for(timeout=5)
    assert "call 112 now" in help_now.text, "the crisis reply is never held back"
    await bot.tick()
    [to_therapist] = await tg.user(8390).wait_for(lambda m: "Possible crisis" in (m.text or ""), timeout=10)
    assert to_therapist.text
    async with bot.db.session() as s:
        [alert] = (await s.exec(select(Alert))).all()
        sessions = {es.id for es in (await s.exec(select(ExerciseSession))).all()}
    assert (alert.kind, alert.severity) == ("crisis", "emergency")
    assert [(d.experiment_id, d.ref in sessions) for d in await decisions(bot)] == [("nudge-or-not", True)]


async def test_a_new_patient_may_agree_but_without_tests(bot: Any, tg: FakeTelegram) -> None:
    async with bot.db.session() as session:
        made = await invites.create_patient_invite(
            session,
            bot.services.content,
            alias="P-700",
            surgery_date=WED,
            programme_id="lumbar-example",
            now=bot.clock.now(),
            valid_days=14,
            timezone="Europe/Berlin",
            language="en",
        )
        await session.commit()
    user = tg.user(8330, language_code="en")
    await user.send(f"/start {made.invite.code}")
    [consent] = await user.wait_for()
    assert bot.services.content.text("experiment_consent", "en") in consent.text
    assert consent.button_labels == ["Yes, I agree", "Yes, but leave me out of tests", "No, thank you", "🌐 Deutsch"]
    await user.press("Yes, but leave me out of tests")
    await user.wait_for(lambda m: m.text.startswith("Which time zone"), timeout=5)
    async with bot.db.session() as s:
        patient = (await s.exec(select(Patient).where(col(Patient.alias) == "P-700"))).one()
    assert tg.message(8330, consent.message_id).text.endswith("✓ You agreed, without tests.")
    assert patient.consent_at == bot.clock.now() and patient.enrol_step == "timezone"
    row = (await notices(bot))[patient.id or 0]
    assert (row.via, row.opted_out_at) == ("consent", bot.clock.now())


async def test_a_notice_that_never_went_out_is_carried_by_the_next_nudge(bot: Any, tg: FakeTelegram) -> None:
    bot.clock.set(berlin(WED, "07:00"))
    patient = await patient_with_a_0900_session(bot, 8340)
    async with bot.db.session() as s:  # an earlier nudge was to tell them, but was never sent
        s.add(ExperimentNotice(patient_id=patient.id or 0, told_at=bot.clock.now(), via="pending", ref=999_999))
        await s.commit()
    user = tg.user(8340)
    await reminder_then_nudge(bot, [user], WED)
    nudge = await user.next_message()
    assert nudge.text == f"{NUDGE}\n\n{bot.services.content.text('experiment_notice', 'en')}"
    assert await decisions(bot) == [], "not drawn before they were told"
    async with bot.db.session() as s:
        [es] = (await s.exec(select(ExerciseSession).where(col(ExerciseSession.patient_id) == patient.id))).all()
    row = (await notices(bot))[patient.id or 0]
    assert (row.via, row.ref, row.told_at) == ("notice", es.id, bot.clock.now())
