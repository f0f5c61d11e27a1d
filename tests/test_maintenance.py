"""The maintenance phase: after a programme's last phase, a weekly session and check-in instead of a hard stop."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from factories import make_staff
from sqlmodel import col, select

from rehab_bot import caseload, checkin, plan, programme
from rehab_bot.clock import FakeClock
from rehab_bot.content import MAINTENANCE, Content, ContentError, Programme, load_content
from rehab_bot.db import Database
from rehab_bot.models import Kind, Patient, ReminderRule, Staff
from rehab_bot.motivation import Facts, select_message
from rehab_bot.programme import planned_rules
from rehab_bot.schedule import local_date

DATA = Path(__file__).parent / "data" / "maintenance"
SURGERY = date(2026, 5, 1)
END = SURGERY + timedelta(days=27)  # the last day of the last phase


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(DATA)


def patient() -> Patient:
    return Patient(alias="m", programme_id="four-weeks", surgery_date=SURGERY, session_times="08:30,18:00")


def test_the_maintenance_phase_follows_the_last_one(content: Content) -> None:
    four = content.programmes["four-weeks"]
    assert four.phase_for(27) is four.phases[-1]
    kept = four.phase_for(28)
    assert kept is not None and kept.id == MAINTENANCE and kept is four.phase_for(1000)
    assert kept.every_n_days == 7 and kept.sessions_per_day == 1 and kept.questionnaires == ("pain", "week")
    assert kept.exercises_for(0) == ["walking", "bridges"]
    assert content.programmes["lumbar-example"].maintenance is None, "the built-in example runs on"


def test_maintenance_content_is_checked(tmp_path: Path) -> None:
    text = (DATA / "programmes.toml").read_text(encoding="utf-8")
    (tmp_path / "programmes.toml").write_text(text.replace("to_day = 27\n", ""), encoding="utf-8")
    with pytest.raises(ContentError, match="has no to_day, so the programme never ends"):
        load_content(tmp_path)
    (tmp_path / "programmes.toml").write_text(text.replace('"pain", "week"', '"pain", "wek"'), encoding="utf-8")
    with pytest.raises(ContentError, match="unknown questionnaire 'wek'"):
        load_content(tmp_path)
    (tmp_path / "programmes.toml").write_text(text.replace('"walking", "bridges"', '"walkng"'), encoding="utf-8")
    with pytest.raises(ContentError, match="unknown exercise 'walkng'"):
        load_content(tmp_path)
    shutil.copy(DATA / "programmes.toml", tmp_path / "programmes.toml")
    assert load_content(tmp_path).programmes["four-weeks"].maintenance is not None


def test_session_rules_go_on_weekly_after_the_end(content: Content) -> None:
    four = content.programmes["four-weeks"]
    p = patient()
    _, during = planned_rules(four, p, SURGERY + timedelta(days=10))
    # The first session goes on past the end (its first reminder there moves the patient in); the second ends.
    assert [(r.local_time, r.end, r.every_n_days) for r in during] == [("08:30", None, None), ("18:00", END, None)]
    phase, after = planned_rules(four, p, END + timedelta(days=3))
    assert phase is not None and phase.id == MAINTENANCE
    assert [(r.index, r.local_time, r.start, r.end, r.every_n_days) for r in after] == [
        (0, "08:30", END + timedelta(days=1), None, 7)
    ]


def test_checkins_become_the_weekly_check_after_the_end(content: Content) -> None:
    p = patient()
    rules = checkin.plan(p, content, datetime(2026, 5, 2, 8, tzinfo=UTC))
    assert all(r.end_date is not None and r.end_date <= END for r in rules if r.every_n_days != 7)
    weekly = [r for r in rules if r.start_date == END + timedelta(days=1)]
    assert [(r.questionnaires, r.end_date, r.every_n_days, r.days) for r in weekly] == [(("pain", "week"), None, 7, "")]
    # Without a maintenance phase the cadences run on as before.
    p.programme_id = "lumbar-example"
    open_ended = checkin.plan(p, content, datetime(2026, 5, 2, tzinfo=UTC))
    assert any(r.end_date is None for r in open_ended)


def test_no_streak_messages_in_maintenance(content: Content) -> None:
    base = Facts(today=date(2026, 6, 10), days_enrolled=40, days_since_surgery=40, done_total=20, streak_days=7)
    first = select_message(base, content, [], "en")
    assert first is not None and first.message.trigger == "first_full_week"
    kept = select_message(dataclasses.replace(base, maintenance=True), content, [], "en")
    assert kept is None or kept.message.trigger not in ("first_full_week", "streak")


# --- a patient's own plan from the programme builder ----------------------------------------------


def own_plan(content: Content, to_day: int | None) -> Programme:
    """The four-week programme as a builder plan whose (one) phase ends on to_day (None: open-ended)."""
    raw = plan.from_programme(content.programmes["four-weeks"], content.exercises).model_dump()
    raw["phases"][0]["to_day"] = to_day
    return plan.to_programme(
        plan.check(raw, content.exercises),
        content.exercises,
        programme_id="four-weeks",
        name={},
        maintenance=plan.maintenance_for(content, patient()),
    )


def test_an_own_plan_goes_on_with_the_programmes_maintenance(content: Content) -> None:
    short = own_plan(content, 20)  # ends a week before the content programme would
    kept = short.phase_for(21)
    assert short.phase_for(20) is short.phases[-1]
    assert kept is not None and kept.id == MAINTENANCE and kept.from_day == 21 and kept.every_n_days == 7
    assert kept.exercises_for(0) == ["walking", "bridges"] and kept.default_times == ["09:00"]
    p = patient()
    phase, after = planned_rules(short, p, SURGERY + timedelta(days=24))
    assert phase is kept
    assert [(r.index, r.local_time, r.start, r.end, r.every_n_days) for r in after] == [
        (0, "08:30", SURGERY + timedelta(days=21), None, 7)
    ]
    # The weekly check starts with the plan's maintenance, not the content programme's.
    rules = checkin.plan(p, content, datetime(2026, 5, 2, 8, tzinfo=UTC), short)
    plan_end = SURGERY + timedelta(days=20)
    assert all(r.end_date is not None and r.end_date <= plan_end for r in rules if r.start_date <= plan_end)
    weekly = [r for r in rules if r.start_date > plan_end]
    assert [(r.questionnaires, r.start_date) for r in weekly] == [(("pain", "week"), SURGERY + timedelta(days=21))]


def test_an_open_ended_own_plan_or_a_programme_without_maintenance_just_goes_on(content: Content) -> None:
    assert own_plan(content, None).maintenance is None, "an open-ended plan never ends"
    other = patient()
    other.programme_id = "lumbar-example"
    assert plan.maintenance_for(content, other) is None
    assert plan.maintenance_for(content, patient()) is content.programmes["four-weeks"].maintenance


async def test_the_care_team_sees_an_own_plans_maintenance_and_the_weekly_check_follows_a_save(
    db: Database, clock: FakeClock, content: Content
) -> None:
    today = local_date(patient(), clock.now())
    doc = await make_staff(db)
    async with db.session() as s:
        p = patient()
        p.surgery_date, p.telegram_id, p.therapist_id, p.enrol_step = today - timedelta(days=24), 6101, doc.id, "done"
        s.add(p)
        await s.flush()
        await programme.on_enrolled(s, p, content, clock.now())
        await s.commit()
        staff = await s.get(Staff, doc.id)
        assert staff is not None
        before = await caseload.patient_detail(s, staff, p, clock.now(), content)
        assert not before.maintenance, "day 24 of the four-week programme"
        raw = plan.from_programme(content.programmes["four-weeks"], content.exercises).model_dump()
        raw["phases"][0]["to_day"] = 20
        await programme.save_own_plan(s, staff, p, raw, content, clock.now(), quiet=None)
        await s.commit()
        detail = await caseload.patient_detail(s, staff, p, clock.now(), content)
        assert detail.maintenance, "the own plan ended on day 20: the therapist sees the maintenance phase"
        assert [(r.local_time, r.every_n_days) for r in detail.reminders] == [("08:30", 7)]
        checks = (
            await s.exec(
                select(ReminderRule).where(
                    col(ReminderRule.patient_id) == p.id,
                    col(ReminderRule.kind) == Kind.CHECKIN.value,
                    col(ReminderRule.active).is_(True),
                    col(ReminderRule.every_n_days) == 7,
                )
            )
        ).all()
        assert [r.start_date for r in checks] == [p.surgery_date + timedelta(days=21)], "the weekly check moved"
