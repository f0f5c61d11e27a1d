"""The check-in engine: scoring, one-item-at-a-time answering, expiry and cadence, on real databases."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import make_patient
from sqlmodel import select

from rehab_bot import checkin as core
from rehab_bot import redflag
from rehab_bot.clock import FakeClock
from rehab_bot.config import ClinicConfig
from rehab_bot.content import Content, load_content
from rehab_bot.db import Database
from rehab_bot.models import Alert, Answer, CheckIn, Delivery, Kind, Patient, ReminderRule

CLINIC = ClinicConfig()

ODI_ITEM = """
[[questionnaire.item]]
id = "s{n}"
optional = true
text.en = "Section {n}"
text.de = "Abschnitt {n}"
options = [
    {{ value = 0, label.en = "a", label.de = "a" }},
    {{ value = 1, label.en = "b", label.de = "b" }},
    {{ value = 2, label.en = "c", label.de = "c" }},
    {{ value = 3, label.en = "d", label.de = "d" }},
    {{ value = 4, label.en = "e", label.de = "e" }},
    {{ value = 5, label.en = "f", label.de = "f" }},
]
"""

# The shape of the Oswestry Disability Index (licensed: a clinic adds the real
# wording). Ten sections scored 0-5, a percentage, skipped sections left out.
ODI = """
[[questionnaire]]
id = "odi"
title.en = "Back pain and daily life (ODI)"
title.de = "Rückenschmerzen im Alltag (ODI)"
scoring = "percent"
min_answered = 8
loinc = "97908-8"
score_loinc = "97909-6"
expires_hours = 72
cadence = [{ from_day = 42, to_day = 42, every_n_days = 1 }]
""" + "".join(ODI_ITEM.format(n=n) for n in range(1, 11))


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(None)


@pytest.fixture(scope="module")
def odi_content(tmp_path_factory: pytest.TempPathFactory) -> Content:
    directory = tmp_path_factory.mktemp("clinic")
    (directory / "questionnaires.toml").write_text(textwrap.dedent(ODI), encoding="utf-8")
    return load_content(directory)


def values(**kw: int | None) -> dict[str, int | None]:
    return dict(kw)


# --------------------------------------------------------------------------- scoring (pure)


def test_phq2_is_the_sum_of_both_items_and_needs_both(content: Content) -> None:
    phq2 = content.questionnaires["phq2"]
    assert phq2.loinc == "55757-9" and phq2.score_loinc == "55758-7"
    assert [i.loinc for i in phq2.items] == ["44250-9", "44255-8"]
    assert core.score(phq2, values(interest=0, down=0)) == 0
    assert core.score(phq2, values(interest=1, down=2)) == 3
    assert core.score(phq2, values(interest=3, down=3)) == 6
    assert core.score(phq2, values(interest=2)) is None, "half a PHQ-2 has no score"


def test_pain_and_mood_score_is_the_answer(content: Content) -> None:
    pain = content.questionnaires["pain"]
    assert pain.loinc == "72514-3" and pain.items[0].loinc == "72514-3"
    assert [o.loinc for o in pain.items[0].options][:2] == ["LA6111-4", "LA6112-2"]
    assert pain.items[0].options[-1].loinc == "LA13942-0"
    assert core.score(pain, values(pain=7)) == 7
    assert core.score(pain, values()) is None
    assert core.score(content.questionnaires["mood"], values(mood=4)) == 4


def test_odi_shape_percent_with_skipped_sections(odi_content: Content) -> None:
    odi = odi_content.questionnaires["odi"]
    assert len(odi.items) == 10 and all(i.max_value == 5 for i in odi.items)
    assert odi.loinc == "97908-8" and odi.score_loinc == "97909-6"
    all_ten = {f"s{n}": v for n, v in zip(range(1, 11), [1, 2, 3, 0, 5, 4, 2, 1, 0, 2], strict=True)}
    assert core.score(odi, all_ten) == 40.0  # 20 / 50
    one_skipped = {**all_ten, "s5": None}
    assert core.score(odi, one_skipped) == pytest.approx(15 / 45 * 100, abs=0.05)  # 15 / (5 x 9)
    assert core.score(odi, {f"s{n}": 5 for n in range(1, 11)}) == 100.0
    two_skipped = {**all_ten, "s1": None, "s2": None}
    assert core.score(odi, two_skipped) == pytest.approx(17 / 40 * 100, abs=0.05)
    three_skipped = {**two_skipped, "s3": None}
    assert core.score(odi, three_skipped) is None, "below min_answered: not scored"


def test_symptom_check_counts_warning_signs_and_none_of_these_is_zero(content: Content) -> None:
    symptoms = content.questionnaires["symptoms"]
    assert core.score(symptoms, values(any=0)) == 0
    assert core.score(symptoms, values(any=1, bladder=0, chest=0, legs=1, calf=0)) == 1
    assert core.score(symptoms, values(any=1)) is None


def test_next_item_walks_in_order_and_a_gate_ends_it(content: Content) -> None:
    symptoms = content.questionnaires["symptoms"]
    assert core.next_item(symptoms, {}) is symptoms.items[0]
    no = {"any": Answer(checkin_id=1, patient_id=1, item_id="any", value=0)}
    assert core.next_item(symptoms, no) is None
    yes = {"any": Answer(checkin_id=1, patient_id=1, item_id="any", value=1)}
    assert core.next_item(symptoms, yes) is symptoms.items[1]


# --------------------------------------------------------------------------- answering (database)


async def _patient(db: Database, clock: FakeClock, **kw: Any) -> Patient:
    patient, _ = await make_patient(db, clock, times=(), **kw)
    return patient


async def test_answers_are_saved_one_by_one_and_the_set_moves_on(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient = await _patient(db, clock)
    now = clock.now()
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        checkins = await core.start(session, p, content, ["pain", "mood", "phq2"], now, delivery_id=None)
        ids = [c.id for c in checkins]
        step = await core.next_step(session, content, checkins, now)
        assert step is not None and step.questionnaire.id == "pain" and step.set_size == 3
        result = await core.answer(session, p, content, CLINIC, ids[0], 0, 3, now)
        assert result.status == "recorded" and result.completed and not result.findings
        await session.commit()
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None and p.last_activity_at == now
        rows = (await session.exec(select(CheckIn).order_by(CheckIn.id))).all()  # type: ignore[arg-type]
        assert [(r.questionnaire_id, r.status, r.score) for r in rows] == [
            ("pain", "complete", 3.0),
            ("mood", "open", None),
            ("phq2", "open", None),
        ]
        # A partial PHQ-2 keeps its first answer.
        result = await core.answer(session, p, content, CLINIC, ids[2], 0, 1, now)
        assert result.status == "recorded" and not result.completed
        await session.commit()
        answers = (await session.exec(select(Answer).where(Answer.checkin_id == ids[2]))).all()
        assert [(a.item_id, a.value) for a in answers] == [("interest", 1)]


async def test_repeated_stale_forged_and_invalid_presses_change_nothing(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient = await _patient(db, clock)
    other = await _patient(db, clock)
    now = clock.now()
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        o = await session.get(Patient, other.id)
        assert p is not None and o is not None
        [phq] = await core.start(session, p, content, ["phq2"], now)
        assert phq.id is not None
        assert (await core.answer(session, o, content, CLINIC, phq.id, 0, 1, now)).status == "invalid"
        assert (await core.answer(session, p, content, CLINIC, phq.id, 0, 9, now)).status == "invalid"
        assert (await core.answer(session, p, content, CLINIC, phq.id, 7, 1, now)).status == "invalid"
        assert (await core.answer(session, p, content, CLINIC, phq.id, 0, None, now)).status == "invalid"
        assert (await core.answer(session, p, content, CLINIC, phq.id, 1, 1, now)).status == "stale"
        assert (await core.answer(session, p, content, CLINIC, phq.id, 0, 2, now)).status == "recorded"
        assert (await core.answer(session, p, content, CLINIC, phq.id, 0, 3, now)).status == "duplicate"
        await session.commit()
        answers = (await session.exec(select(Answer))).all()
    assert [(a.item_id, a.value) for a in answers] == [("interest", 2)]


async def test_a_red_flag_sent_after_another_answer_was_kept_still_alerts_once(
    db: Database, clock: FakeClock, content: Content
) -> None:
    """The symptom check's bladder item answered "No" (kept), then "Yes" from a second window: the first
    answer stays, but the red flag the patient reported raises its alert and its reply, once; an answer
    sent again that is the kept one, or not flagged, raises nothing."""
    patient = await _patient(db, clock)
    now = clock.now()
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        [check] = await core.start(session, p, content, ["symptoms"], now)
        assert check.id is not None
        assert (await core.answer(session, p, content, CLINIC, check.id, 0, 1, now)).status == "recorded"
        assert (await core.answer(session, p, content, CLINIC, check.id, 1, 0, now)).status == "recorded"
        kept_again = await core.answer(session, p, content, CLINIC, check.id, 1, 0, now)
        assert kept_again.status == "duplicate" and not kept_again.findings
        results = [await core.answer(session, p, content, CLINIC, check.id, 1, 1, now) for _ in range(2)]
        assert [r.status for r in results] == ["duplicate", "duplicate"]
        assert [f.severity for r in results for f in r.findings] == ["emergency", "emergency"]
        await session.commit()
        answers = (await session.exec(select(Answer).where(Answer.checkin_id == check.id))).all()
        alerts = (await session.exec(select(Alert))).all()
    assert {a.item_id: a.value for a in answers} == {"any": 1, "bladder": 0}
    [alert] = alerts
    assert alert.severity == "emergency" and core.ANSWERED_AGAIN_NOTE in alert.detail
    assert "⚠ " in alert.detail and "Yes" in alert.detail.split("⚠ ", 1)[1].splitlines()[0]


async def test_a_check_in_expires_and_keeps_its_partial_answers(
    db: Database, clock: FakeClock, odi_content: Content
) -> None:
    patient = await _patient(db, clock)
    now = clock.now()
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        [odi] = await core.start(session, p, odi_content, ["odi"], now)
        assert odi.id is not None and odi.expires_at == now + timedelta(hours=72)
        for index in range(8):
            value = None if index == 3 else 2
            assert (await core.answer(session, p, odi_content, CLINIC, odi.id, index, value, now)).status == "recorded"
        await session.commit()
    later = now + timedelta(hours=72)
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        result = await core.answer(session, p, odi_content, CLINIC, odi.id, 8, 1, later)
        assert result.status == "expired"
        await session.commit()
        row = await session.get(CheckIn, odi.id)
        assert row is not None and row.status == "expired"
        assert row.score is None, "7 answered, 1 skipped: below min_answered 8"
        skipped = (await session.exec(select(Answer).where(Answer.item_id == "s4"))).one()
        assert skipped.value is None and skipped.text == "skipped"


async def test_expire_due_closes_old_check_ins_and_scores_what_they_have(
    db: Database, clock: FakeClock, odi_content: Content
) -> None:
    patient = await _patient(db, clock)
    now = clock.now()
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        [odi] = await core.start(session, p, odi_content, ["odi"], now)
        assert odi.id is not None
        for index in range(9):
            await core.answer(session, p, odi_content, CLINIC, odi.id, index, 5, now)
        await session.commit()
        assert await core.expire_due(session, odi_content, now + timedelta(hours=71)) == 0
        assert await core.expire_due(session, odi_content, now + timedelta(hours=72)) == 1
        await session.commit()
        row = await session.get(CheckIn, odi.id)
    assert row is not None and row.status == "expired" and row.score == 100.0


async def test_one_delivery_opens_its_check_ins_once_and_supersedes_older_ones(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient = await _patient(db, clock)
    now = clock.now()
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None and p.telegram_id is not None
        delivery = Delivery(key="test", kind="checkin", priority=2, chat_id=p.telegram_id, due_at=now, not_before=now)
        session.add(delivery)
        await session.flush()
        assert delivery.id is not None
        old = await core.start(session, p, content, ["pain"], now)
        first = await core.start(session, p, content, ["pain", "mood"], now, delivery_id=delivery.id)
        again = await core.start(session, p, content, ["pain", "mood"], now, delivery_id=delivery.id)
        await session.commit()
        assert [c.id for c in again] == [c.id for c in first], "a re-render reuses the delivery's check-ins"
        assert old[0].status == "expired", "a new pain check-in supersedes the open one"
        open_set = await core.open_checkins(session, p, content, now)
        assert [c.questionnaire_id for c in open_set] == ["pain", "mood"]
        assert len((await session.exec(select(CheckIn))).all()) == 3


# --------------------------------------------------------------------------- cadence


def test_default_plan_follows_days_after_surgery(content: Content, clock: FakeClock) -> None:
    today = clock.now().date()
    patient = Patient(id=1, alias="P", surgery_date=today - timedelta(days=2), timezone="Europe/Berlin")
    plan = core.plan(patient, content, clock.now())
    by_set = {p.questionnaires: p for p in plan}
    surgery = patient.surgery_date
    assert surgery is not None
    daily = by_set[("pain", "mood", "symptoms")]
    assert (daily.start_date, daily.end_date, daily.days, daily.every_n_days) == (
        surgery,
        surgery + timedelta(days=13),
        "",
        None,
    )
    later = by_set[("pain", "mood")]
    assert later.start_date == surgery + timedelta(days=14) and later.end_date is None and later.days == "024"
    weekly = by_set[("phq2", "gad2")]
    assert weekly.start_date == surgery + timedelta(days=7) and weekly.every_n_days == 7
    outcome = [p for p in plan if p.questionnaires == ("psfs",)]  # day 0 has passed: 2, 6 and 12 weeks remain
    assert [(p.start_date, p.end_date) for p in outcome] == [(surgery + timedelta(days=d),) * 2 for d in (14, 42, 84)]
    assert len(plan) == 3 + len(outcome)


def test_plan_drops_steps_that_ended_and_uses_enrolment_without_a_surgery_date(
    content: Content, clock: FakeClock
) -> None:
    today = clock.now().date()
    late = Patient(id=1, alias="P", surgery_date=today - timedelta(days=20), timezone="Europe/Berlin")
    assert {p.questionnaires for p in core.plan(late, content, clock.now())} == {
        ("pain", "mood"),
        ("phq2", "gad2"),
        ("psfs",),  # the outcome measure at 6 and 12 weeks
    }
    unknown = Patient(id=2, alias="Q", timezone="Europe/Berlin")
    daily = next(p for p in core.plan(unknown, content, clock.now()) if "symptoms" in p.questionnaires)
    assert daily.start_date == today


def test_a_programme_can_have_its_own_cadence(tmp_path: Path, clock: FakeClock) -> None:
    (tmp_path / "questionnaires.toml").write_text(
        textwrap.dedent(
            """
            [[cadence]]
            programme = "lumbar-example"
            questionnaire = "symptoms"
            steps = [ { to_day = 27, every_n_days = 1 } ]

            [[cadence]]
            programme = "lumbar-example"
            questionnaire = "gad2"
            steps = []
            """
        ),
        encoding="utf-8",
    )
    content = load_content(tmp_path)
    today = clock.now().date()
    patient = Patient(id=1, alias="P", surgery_date=today, programme_id="lumbar-example", timezone="Europe/Berlin")
    plan = {p.questionnaires: p for p in core.plan(patient, content, clock.now())}
    assert plan[("symptoms",)].end_date == today + timedelta(days=27)
    assert ("phq2",) in plan and not any("gad2" in q for q in plan)
    other = Patient(id=2, alias="Q", surgery_date=today, programme_id="", timezone="Europe/Berlin")
    assert ("pain", "mood", "symptoms") in {p.questionnaires for p in core.plan(other, content, clock.now())}


def test_checkin_time_is_after_the_last_session_within_the_evening(content: Content) -> None:
    patient = Patient(id=1, alias="P", session_times="09:00,13:00,18:00")
    assert core.checkin_time(patient, content) == time(19, 0)
    assert core.motivation_time(patient, content) == time(19, 30)
    patient.session_times = "08:00,12:00"
    assert core.checkin_time(patient, content) == time(17, 0), "not before 17:00"
    patient.session_times = "20:00"
    assert core.checkin_time(patient, content) == time(20, 30), "not after 20:30"
    patient.session_times = ""
    assert core.checkin_time(patient, content) == time(19, 0), "the clinic default"
    patient.programme_id = "lumbar-example"
    assert core.checkin_time(patient, content, 20) == time(18, 0), "the phase's default times: 09:00, 17:00"


async def test_schedule_for_creates_checkin_and_motivation_rules_and_replaces_them(
    db: Database, clock: FakeClock, content: Content
) -> None:
    today = clock.now().date()
    patient = await _patient(db, clock, surgery_date=today - timedelta(days=1), session_times="09:00,13:00,18:00")
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        await core.schedule_for(session, p, content, clock.now())
        await session.commit()
        await core.schedule_for(session, p, content, clock.now())
        await session.commit()
        rules = (await session.exec(select(ReminderRule).where(ReminderRule.active == True))).all()  # noqa: E712
    checkins = [r for r in rules if r.kind == Kind.CHECKIN]
    assert len(checkins) == 6 and all(r.local_time == "19:00" for r in checkins)
    payloads = sorted(json.loads(r.payload)["questionnaires"] for r in checkins)
    # The outcome measure (PSFS) at 2, 6 and 12 weeks; day 0 has passed.
    assert payloads == [["pain", "mood"], ["pain", "mood", "symptoms"], ["phq2", "gad2"], ["psfs"], ["psfs"], ["psfs"]]
    [motivation] = [r for r in rules if r.kind == Kind.MOTIVATION]
    assert motivation.local_time == "19:30"
    daily = next(r for r in checkins if "symptoms" in r.payload)
    assert daily.next_local_date == today
    assert daily.next_due_at == datetime(2026, 6, 10, 17, 0, tzinfo=UTC), "19:00 in Berlin today"


def test_payload_questionnaires_is_forgiving() -> None:
    assert core.payload_questionnaires('{"questionnaires": ["pain", 3]}') == ["pain"]
    assert core.payload_questionnaires("not json") == []
    assert core.payload_questionnaires("") == []


def test_required_questionnaires_keep_their_scale(tmp_path: Path) -> None:
    from rehab_bot.content import ContentError

    (tmp_path / "questionnaires.toml").write_text('[[questionnaire]]\nid = "pain"\nenabled = false\n', encoding="utf-8")
    with pytest.raises(ContentError, match="required and cannot be disabled"):
        load_content(tmp_path)


async def test_the_result_shows_what_a_score_rule_told_the_patient_and_alerts_no_one_again(
    db: Database, clock: FakeClock, content: Content
) -> None:
    """Pain 7 matches the score rule pain-critical: the result page showed "Nothing ... needs action now"."""
    patient = await _patient(db, clock)
    now = clock.now()
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        [low] = await core.start(session, p, content, ["pain"], now)
        assert low.id is not None
        await core.answer(session, p, content, CLINIC, low.id, 0, 3, now)
        assert await core.latest_findings(session, p, content, CLINIC, now) == []
        later = now + timedelta(minutes=5)
        [high] = await core.start(session, p, content, ["pain"], later)
        assert high.id is not None
        result = await core.answer(session, p, content, CLINIC, high.id, 0, 7, later)
        await session.commit()
        [raised] = result.findings
        alerts_before = len((await session.exec(select(Alert))).all())
        findings = await core.latest_findings(session, p, content, CLINIC, later)
        assert [(f.severity, f.text_ids, f.message) for f in findings] == [
            (raised.severity, raised.text_ids, raised.message)
        ]
        assert findings[0].severity == "critical" and findings[0].text_ids == ("red_flag_urgent",)
        shown = redflag.reply_text(findings[0], content, "de", CLINIC)
        assert shown == redflag.reply_text(raised, content, "de", CLINIC)
        assert "Ihre Schmerzen sind stark" in shown
        assert len((await session.exec(select(Alert))).all()) == alerts_before, "the page raised no alert"


async def test_the_mini_app_form_is_the_patients_own_and_the_result_shows_its_red_flags(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient = await _patient(db, clock)
    other = await _patient(db, clock)
    now = clock.now()
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        o = await session.get(Patient, other.id)
        assert p is not None and o is not None
        pain, symptoms = await core.start(session, p, content, ["pain", "symptoms"], now)
        assert pain.id is not None and symptoms.id is not None
        assert await core.for_form(session, o, content, pain.id, now) is None, "another patient's check-in"
        form = await core.for_form(session, p, content, pain.id, now)
        assert form is not None and form.step is not None and form.step.questionnaire.id == "pain"
        assert await core.latest_findings(session, p, content, CLINIC, now) == []
        await core.answer(session, p, content, CLINIC, pain.id, 0, 2, now)
        await core.answer(session, p, content, CLINIC, symptoms.id, 0, 1, now)  # "any of these": yes
        later = now + timedelta(minutes=1)
        await core.answer(session, p, content, CLINIC, symptoms.id, 1, 1, later)  # bladder: emergency
        await session.commit()
        findings = await core.latest_findings(session, p, content, CLINIC, later)
        assert [(f.severity, f.text_ids) for f in findings] == [("emergency", ("red_flag",))]
        assert await core.latest_findings(session, o, content, CLINIC, later) == []
        assert await core.latest_findings(session, p, content, CLINIC, later + timedelta(hours=25)) == []
        done = await core.for_form(session, p, content, pain.id, later)
        assert done is not None and done.step is None, "the set is answered (the emergency ended the check)"
