"""Red-flag rules: flagged answers, score rules, inactivity and crisis phrases, with their alerts."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from factories import make_patient, make_staff
from sqlmodel import select

from rehab_bot import alert_detail, redflag
from rehab_bot import checkin as core
from rehab_bot.clock import FakeClock
from rehab_bot.config import ClinicConfig
from rehab_bot.content import Content, load_content
from rehab_bot.content.checkins import AlertRule
from rehab_bot.db import Database
from rehab_bot.models import Alert, Answer, Delivery, ExerciseSession, Kind, Note, Patient, PatientStatus

ALERT_CHAT = -100_555
CLINIC = ClinicConfig(alert_chat_id=ALERT_CHAT)


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(None)


def rule(kind: str, severity: str = "high", **kw: Any) -> AlertRule:
    return AlertRule(id=f"r-{kind}", kind=kind, severity=severity, questionnaire="pain", **kw)


def entries(*scores: float, start: date = date(2026, 6, 1), per_day: int = 1) -> list[redflag.Entry]:
    return [redflag.Entry(n + 1, start + timedelta(days=n // per_day), score) for n, score in enumerate(scores)]


# --------------------------------------------------------------------------- the rule kinds (pure)


def test_score_at_least() -> None:
    r = rule("score_at_least", threshold=7)
    assert redflag.evaluate(r, entries(7)) is not None
    assert redflag.evaluate(r, entries(9, 6)) is None
    assert redflag.evaluate(r, []) is None


def test_rise_from_the_previous_entry_above_a_floor() -> None:
    low = rule("rise", "low", rise=1, min_score=5)
    high = rule("rise", "high", rise=2, min_score=5)
    assert redflag.evaluate(low, entries(4, 5)) is not None
    assert redflag.evaluate(high, entries(4, 5)) is None
    assert redflag.evaluate(high, entries(3, 5)) is not None
    assert redflag.evaluate(low, entries(2, 4)) is None, "below 5 a rise is not flagged"
    assert redflag.evaluate(low, entries(6)) is None, "no previous entry"
    assert redflag.evaluate(low, entries(6, 6)) is None


def test_above_baseline_uses_the_first_three_days_and_only_later_entries() -> None:
    r = rule("above_baseline", rise=3, days=3)
    # Days 1-3: 4, 5, 3 (and 4 again on day 3): baseline 4.0.
    history = [*entries(4, 5, 3), redflag.Entry(9, date(2026, 6, 3), 4)]
    assert redflag.baseline(history, 3) == (4.0, date(2026, 6, 4))
    assert redflag.evaluate(r, [*history, redflag.Entry(10, date(2026, 6, 5), 7)]) is not None
    assert redflag.evaluate(r, [*history, redflag.Entry(10, date(2026, 6, 5), 6)]) is None
    assert redflag.evaluate(r, [*history, redflag.Entry(10, date(2026, 6, 3), 9)]) is None, "inside the window"


def test_trend_needs_a_rise_every_day_for_three_days() -> None:
    r = rule("trend", rise=2, days=3)
    assert redflag.evaluate(r, entries(2, 3, 4)) is not None
    assert redflag.evaluate(r, entries(2, 3, 3.5)) is None, "rose by 1.5 in all"
    assert redflag.evaluate(r, entries(2, 4, 3, 5)) is None, "not every day"
    gap = [*entries(2, 3), redflag.Entry(3, date(2026, 6, 4), 6)]
    assert redflag.evaluate(r, gap) is None, "a day without entries breaks the trend"
    # Daily means: two entries on a day count as their mean.
    assert redflag.evaluate(r, entries(1, 3, 2, 4, 5, 5, per_day=2)) is not None


def test_crisis_phrases_match_whole_words_in_any_language(content: Content) -> None:
    assert redflag.is_crisis("Sometimes I think I want to die.", content)
    assert redflag.is_crisis("I WANT TO END MY LIFE!!!", content)
    assert redflag.is_crisis("Ich möchte nicht mehr leben", content)
    assert redflag.is_crisis("ich moechte nicht mehr leben", content)
    assert redflag.is_crisis("Ich denke an Selbstmord.", content)
    assert redflag.is_crisis("I don't want to live like this", content)
    assert not redflag.is_crisis("The exercises are killing my back, lol", content)
    assert not redflag.is_crisis("My wife wants to diet", content)
    assert not redflag.is_crisis("", content)


# --------------------------------------------------------------------------- with a database


async def _setup(db: Database, clock: FakeClock, **kw: Any) -> tuple[Patient, int]:
    therapist = await make_staff(db)
    kw.setdefault("created_at", clock.now())
    patient, _ = await make_patient(db, clock, times=(), therapist_id=therapist.id, **kw)
    return patient, therapist.telegram_id


async def _answer_all(
    db: Database, clock: FakeClock, content: Content, patient: Patient, qid: str, answers: list[int | None]
) -> core.AnswerResult:
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        [checkin] = await core.start(session, p, content, [qid], clock.now())
        assert checkin.id is not None
        result = core.AnswerResult("invalid")
        findings = []
        for value in answers:
            step = await core.next_step(session, content, [checkin], clock.now())
            assert step is not None
            result = await core.answer(session, p, content, CLINIC, checkin.id, step.index, value, clock.now())
            assert result.status == "recorded"
            findings.extend(result.findings)
        result.findings = findings
        await session.commit()
    return result


async def _alerts(db: Database) -> list[Alert]:
    async with db.session() as session:
        return list((await session.exec(select(Alert).order_by(Alert.id))).all())  # type: ignore[arg-type]


async def _alert_deliveries(db: Database) -> list[Delivery]:
    async with db.session() as session:
        rows = await session.exec(select(Delivery).where(Delivery.kind == Kind.ALERT.value))
        return list(rows.all())


async def test_an_emergency_answer_alerts_therapist_and_alert_chat_and_ends_the_check_in(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient, therapist_chat = await _setup(db, clock)
    result = await _answer_all(db, clock, content, patient, "symptoms", [1, 1])  # yes, then bladder: yes
    assert result.stopped and result.completed
    [finding] = result.findings
    assert finding.severity == "emergency" and finding.text_ids == ("red_flag",) and finding.told_team
    [alert] = await _alerts(db)
    assert (alert.kind, alert.severity) == ("red_flag", "emergency")
    assert (
        "bladder or bowel" in alert.detail and "⚠" in alert.detail and "call the emergency number now" in alert.detail
    )
    deliveries = await _alert_deliveries(db)
    assert {d.chat_id for d in deliveries} == {therapist_chat, ALERT_CHAT}
    assert all(d.priority == 1 and d.not_before == clock.now() for d in deliveries)
    assert all(patient.alias in d.body and "EMERGENCY" in d.body for d in deliveries)
    text = redflag.reply_text(finding, content, "de", CLINIC)
    assert "112" in text and "Behandlungsteam" in text


async def test_an_urgent_answer_alerts_and_the_check_in_goes_on(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient, _ = await _setup(db, clock)
    # yes; bladder, chest, legs, walking, calf no; fever YES, no stiff neck, wound not red; then the rest no
    # (the positional headache among them).
    result = await _answer_all(db, clock, content, patient, "symptoms", [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    assert result.completed and not result.stopped
    [finding] = result.findings
    assert finding.severity == "high" and finding.text_ids == ("red_flag_urgent",)
    [alert] = await _alerts(db)
    assert alert.severity == "high" and "38 °C" in alert.detail
    async with db.session() as session:
        checkin = (await session.exec(select(core.CheckIn))).one()
    assert checkin.score == 1.0, "one warning sign reported"


async def test_pain_of_seven_is_critical_and_alerts_once_a_day(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient, _ = await _setup(db, clock)
    first = await _answer_all(db, clock, content, patient, "pain", [7])
    [finding] = first.findings
    assert finding.severity == "critical" and finding.text_ids == ("red_flag_urgent",) and finding.message
    clock.advance(timedelta(hours=2))
    second = await _answer_all(db, clock, content, patient, "pain", [8])
    assert second.findings, "the patient is still told what to do"
    assert len(await _alerts(db)) == 1, "one critical pain alert per day"
    clock.advance(timedelta(days=1))
    await _answer_all(db, clock, content, patient, "pain", [7])
    assert len(await _alerts(db)) == 2


async def test_medbridge_rises_map_to_low_and_high_with_one_alert_per_entry(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient, _ = await _setup(db, clock)
    await _answer_all(db, clock, content, patient, "pain", [4])
    clock.advance(timedelta(days=1))
    low = await _answer_all(db, clock, content, patient, "pain", [5])
    [finding] = low.findings
    assert finding.severity == "low" and finding.message is None and finding.text_ids == ()
    clock.advance(timedelta(days=1))
    high = await _answer_all(db, clock, content, patient, "pain", [6])
    [finding] = high.findings  # +1 (low) and a 3-day trend 4 -> 5 -> 6 (high): one alert, high
    assert finding.severity == "high" and finding.message is not None
    alerts = await _alerts(db)
    assert [a.severity for a in alerts] == ["low", "high"]
    assert "r-" not in alerts[1].detail and "[pain-trend]" in alerts[1].detail and "[pain-rise-low]" in alerts[1].detail


async def test_three_points_above_baseline_is_high(db: Database, clock: FakeClock, content: Content) -> None:
    patient, _ = await _setup(db, clock)
    for value in (3, 3, 2):
        await _answer_all(db, clock, content, patient, "pain", [value])
        clock.advance(timedelta(days=1))
    clock.advance(timedelta(days=2))
    result = await _answer_all(db, clock, content, patient, "pain", [6])
    [finding] = result.findings
    assert finding.severity == "high"
    [alert] = await _alerts(db)
    assert "[pain-above-baseline]" in alert.detail and "baseline 2.7" in alert.detail


async def test_phq2_of_three_is_high_and_gad2_of_three_is_low(db: Database, clock: FakeClock, content: Content) -> None:
    patient, _ = await _setup(db, clock)
    negative = await _answer_all(db, clock, content, patient, "phq2", [1, 1])
    assert not negative.findings
    positive = await _answer_all(db, clock, content, patient, "phq2", [1, 2])
    [finding] = positive.findings
    assert finding.severity == "high" and finding.message is not None and "112" in finding.message["en"]
    anxious = await _answer_all(db, clock, content, patient, "gad2", [3, 0])
    assert anxious.findings[0].severity == "low"
    assert [(a.kind, a.severity) for a in await _alerts(db)] == [("checkin", "high"), ("checkin", "low")]


async def test_without_a_therapist_or_alert_chat_nobody_is_claimed_to_be_told(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient, _ = await make_patient(db, clock, times=())
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        [checkin] = await core.start(session, p, content, ["pain"], clock.now())
        assert checkin.id is not None
        result = await core.answer(session, p, content, ClinicConfig(), checkin.id, 0, 9, clock.now())
        await session.commit()
    [finding] = result.findings
    assert not finding.told_team
    text = redflag.reply_text(finding, content, "en", ClinicConfig())
    assert "care team has been told" not in text and "clinic today" in text


async def test_silence_for_48_hours_is_low_and_14_days_is_high_once_per_silence(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient, _ = await _setup(db, clock)
    paused, _ = await _setup(db, clock, status=PatientStatus.PAUSED)
    start = clock.now()

    async def check() -> int:
        async with db.session() as session:
            raised = await redflag.check_inactive(session, content, CLINIC, clock.now())
            await session.commit()
        return raised

    clock.set(start + timedelta(hours=47, minutes=59))
    assert await check() == 0
    clock.set(start + timedelta(hours=48))
    assert await check() == 1
    assert await check() == 0, "one alert per silence"
    clock.set(start + timedelta(days=14))
    assert await check() == 1
    alerts = await _alerts(db)
    assert [(a.kind, a.severity, a.patient_id) for a in alerts] == [
        ("inactive", "low", patient.id),
        ("inactive", "high", patient.id),
    ]
    assert "14 days" in alerts[1].detail
    # An answer ends the silence; the next one is counted from it.
    async with db.session() as session:
        session.add(
            ExerciseSession(
                patient_id=patient.id or 0,
                local_date=clock.now().date(),
                slot="09:00",
                status="done",
                answered_at=clock.now(),
            )
        )
        await session.commit()
    clock.advance(timedelta(hours=47))
    assert await check() == 0
    clock.advance(timedelta(hours=1))
    assert await check() == 1
    assert paused.id not in {a.patient_id for a in await _alerts(db)}


async def test_a_crisis_message_is_kept_and_raises_an_emergency_alert(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient, therapist_chat = await _setup(db, clock)
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        finding = await redflag.on_crisis(session, p, content, CLINIC, "I want to end my life", clock.now())
        await session.commit()
        [note] = (await session.exec(select(Note))).all()
    assert note.crisis and note.text == "I want to end my life"
    assert finding.severity == "emergency" and finding.text_ids == ("crisis",)
    [alert] = await _alerts(db)
    assert alert.kind == "crisis" and "end my life" in alert.detail
    assert {d.chat_id for d in await _alert_deliveries(db)} == {therapist_chat, ALERT_CHAT}
    text = redflag.reply_text(finding, content, "en", CLINIC)
    assert "0800 111 0 111" in text
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        assert await redflag.red_flag_on(session, p, clock.now().date())
        assert not await redflag.red_flag_on(session, p, clock.now().date() + timedelta(days=1))


def test_the_alert_marks_the_answers_that_led_to_the_flagged_one(content: Content) -> None:
    """An outside test's fever alert put its ⚠ only on "Is your wound also red …? No", not on the fever."""
    symptoms = content.questionnaires["symptoms"]
    values = {"fever": 1, "fever_neck": 0, "fever_wound": 0, "wound": 0}
    answers = {item: Answer(patient_id=1, item_id=item, value=value) for item, value in values.items()}
    lines = alert_detail.render(redflag.describe_answers(symptoms, answers, flagged="fever_wound"), "en").splitlines()
    marked = [line for line in lines if line.startswith("⚠ ")]
    assert [line.split(" ", 2)[1] for line in marked] == ["A", "Do", "Is"], lines  # fever, its neck, its wound
    assert any(line.startswith("⚠ A temperature of 38 °C or more, or chills? Yes") for line in lines)
    assert any(line.startswith("- Is your wound opening") for line in lines), "an answer that did not lead there"
