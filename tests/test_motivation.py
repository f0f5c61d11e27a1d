"""Motivational messages: which rule picks what, the daily cap, no repeats, red-flag days."""

from __future__ import annotations

import dataclasses
import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from factories import make_patient
from sqlmodel import select

from rehab_bot import motivation
from rehab_bot.clock import FakeClock
from rehab_bot.content import Content, load_content
from rehab_bot.db import Database
from rehab_bot.models import Alert, CheckIn, ExerciseSession, MotivationLog, Patient
from rehab_bot.motivation import Facts, Sent, select_message
from rehab_bot.session import SessionStats

TODAY = date(2026, 6, 10)


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(None)


def facts(**kw: object) -> Facts:
    base = Facts(today=TODAY, days_enrolled=30, days_since_surgery=40, done_total=20)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def pick(content: Content, f: Facts, history: list[Sent] | None = None, lang: str = "en") -> str | None:
    choice = select_message(f, content, history or [], lang)
    return None if choice is None else choice.message.id


def ago(message_id: str, days: int) -> Sent:
    return Sent(message_id, TODAY - timedelta(days=days))


FIRST = [ago("first-session", 25), ago("welcome", 29)]


def test_welcome_first_and_only_in_the_first_week(content: Content) -> None:
    assert pick(content, facts(days_enrolled=0, done_total=0)) == "welcome"
    assert pick(content, facts(days_enrolled=8, done_total=0)) is None
    assert pick(content, facts(days_enrolled=1, done_total=0), [ago("welcome", 1)]) is None


def test_first_session_once(content: Content) -> None:
    first = facts(done_total=1, days_enrolled=2, days_since_first_done=0)
    assert pick(content, first, [ago("welcome", 2)]) == "first-session"
    assert pick(content, dataclasses.replace(first, days_since_first_done=3), [ago("welcome", 3)]) is None
    assert pick(content, first, [ago("welcome", 3), ago("first-session", 1)]) is None


def test_streaks_pick_the_longest_reached_once_per_streak(content: Content) -> None:
    assert pick(content, facts(streak_days=3), FIRST) == "streak-3"
    assert pick(content, facts(streak_days=2), FIRST) is None
    seven = facts(streak_days=7)
    # The very first 7-day run is the first-full-week milestone; later runs get the streak message.
    assert pick(content, seven, FIRST) == "first-full-week"
    assert pick(content, facts(streak_days=8), [*FIRST, ago("first-full-week", 1)]) is None
    earlier = [*FIRST, ago("first-full-week", 20)]
    assert pick(content, seven, earlier) == "streak-7"
    assert pick(content, facts(streak_days=8), [*earlier, ago("streak-7", 1)]) is None
    assert pick(content, facts(streak_days=30), [*FIRST, ago("first-full-week", 40)]) == "streak-30"
    # A new streak after a break earns its messages again (outside the 14-day no-repeat window).
    assert pick(content, facts(streak_days=3), [*FIRST, ago("streak-3", 20)]) == "streak-3"
    choice = select_message(facts(streak_days=14), content, earlier, "de")
    assert choice is not None and choice.render("de").startswith("14 Tage in Folge")


def test_comeback_after_two_missed_days_names_them(content: Content) -> None:
    back = facts(done_today=True, missed_before_today=3)
    choice = select_message(back, content, FIRST, "en")
    assert choice is not None and choice.message.trigger == "comeback"
    assert pick(content, facts(done_today=True, missed_before_today=1), FIRST) is None
    assert pick(content, facts(done_today=False, missed_before_today=5), FIRST) is None
    # The variants take turns: the least recently sent one wins.
    history = [*FIRST, ago("comeback-1", 40), ago("comeback-2", 30), ago("comeback-3", 50)]
    assert pick(content, back, history) == "comeback-3"
    assert select_message(back, content, [*FIRST, ago("comeback-1", 40)], "en").render("en").startswith("After 3 days")  # type: ignore[union-attr]


def test_pain_improvement_states_the_real_numbers(content: Content) -> None:
    better = facts(first_week_pain=6.1, recent_pain=3.4, pain_days_known=20)
    choice = select_message(better, content, FIRST, "en")
    assert choice is not None and choice.message.id == "pain-improved-1"
    assert "from 6.1 in your first week to 3.4" in choice.render("en")
    german = select_message(better, content, FIRST, "de")
    assert german is not None and "von 6,1" in german.render("de") and "auf 3,4" in german.render("de")
    assert pick(content, dataclasses.replace(better, recent_pain=5.5), FIRST) is None, "less than a point"
    assert pick(content, dataclasses.replace(better, pain_days_known=10), FIRST) is None, "too early"
    assert pick(content, better, [*FIRST, ago("pain-improved-1", 10)]) is None, "once in 14 days"


def test_milestones_in_the_week_after_each_and_once(content: Content) -> None:
    assert pick(content, facts(days_since_surgery=14), FIRST) == "milestone-2w"
    assert pick(content, facts(days_since_surgery=20), FIRST) == "milestone-2w"
    assert pick(content, facts(days_since_surgery=21), FIRST) is None
    assert pick(content, facts(days_since_surgery=84), FIRST) == "milestone-12w"
    assert pick(content, facts(days_since_surgery=15), [*FIRST, ago("milestone-2w", 1)]) is None
    assert pick(content, facts(days_since_surgery=None), FIRST) is None


def test_weekly_summary_every_seven_days_without_empty_numbers(content: Content) -> None:
    week = facts(week_done=12, week_planned=14, week_pain=3.25, week_mood=4.0)
    choice = select_message(week, content, FIRST, "en")
    assert choice is not None and choice.message.id == "weekly-1"
    assert choice.render("en") == "Your week: 12 of 14 sessions done (86%). Average pain 3.2, mood 4.0 of 5."
    assert pick(content, week, [*FIRST, ago("weekly-1", 6)]) is None
    assert pick(content, week, [*FIRST, ago("weekly-1", 7)]) == "weekly-2"
    no_pain = dataclasses.replace(week, week_pain=None, week_mood=None)
    assert pick(content, no_pain, FIRST) == "weekly-3", "messages with {pain} need pain entries"
    assert pick(content, dataclasses.replace(week, week_planned=0), FIRST) is None


def test_limits_one_a_day_no_repeat_in_14_days_and_none_on_a_red_flag_day(content: Content) -> None:
    f = facts(streak_days=7)
    assert pick(content, f, [*FIRST, ago("weekly-1", 0)]) is None, "one a day"
    assert pick(content, dataclasses.replace(f, red_flag_today=True), FIRST) is None
    # Every weekly message sent within 14 days: nothing is repeated.
    week = facts(week_done=3, week_planned=7, week_pain=4.0, week_mood=3.0)
    recent = [*FIRST, ago("weekly-1", 13), ago("weekly-2", 8), ago("weekly-3", 7)]
    assert pick(content, week, recent) is None
    assert pick(content, week, [*FIRST, ago("weekly-1", 14), ago("weekly-2", 8), ago("weekly-3", 7)]) == "weekly-1"


def test_precedence_when_several_apply(content: Content) -> None:
    everything = facts(
        done_today=True,
        missed_before_today=2,
        streak_days=3,
        days_since_surgery=14,
        week_done=1,
        week_planned=2,
    )
    assert pick(content, everything, FIRST) == "comeback-1"
    assert pick(content, dataclasses.replace(everything, done_today=False), FIRST) == "streak-3"


def test_a_clinic_can_disable_and_add_messages(tmp_path: Path) -> None:
    (tmp_path / "messages.toml").write_text(
        textwrap.dedent(
            """
            [[message]]
            id = "streak-3"
            enabled = false

            [[message]]
            id = "our-streak-5"
            trigger = "streak"
            days = 5
            en = "Five days, {days} in a row!"
            de = "Fünf Tage, {days} in Folge!"
            """
        ),
        encoding="utf-8",
    )
    content = load_content(tmp_path)
    assert pick(content, facts(streak_days=3), FIRST) is None
    assert pick(content, facts(streak_days=6), FIRST) == "our-streak-5"


def test_a_grace_day_does_not_start_a_new_streak_run(tmp_path: Path) -> None:
    # Only a 3-day and a 30-day message: a run stays on "3 reached" for weeks, across grace days.
    (tmp_path / "messages.toml").write_text(
        textwrap.dedent(
            """
            [[message]]
            id = "streak-7"
            enabled = false

            [[message]]
            id = "streak-14"
            enabled = false
            """
        ),
        encoding="utf-8",
    )
    content = load_content(tmp_path)
    # The run began 30 days ago; streak-3 went out on its third day; four grace days since
    # (one a week) leave the streak at 27: today minus 26 days would be after the message.
    run = facts(streak_days=27, streak_since=TODAY - timedelta(days=30))
    history = [*FIRST, ago("first-full-week", 24), ago("streak-3", 28)]
    assert pick(content, run, history) is None, "the same run: streak-3 is not sent again"
    # A new run (its first day after the message) earns it again.
    assert pick(content, facts(streak_days=3, streak_since=TODAY - timedelta(days=2)), history) == "streak-3"


# --------------------------------------------------------------------------- from the database


async def test_choose_reads_the_facts_records_the_log_and_keeps_the_daily_cap(
    db: Database, clock: FakeClock, content: Content
) -> None:
    clock.set(datetime(2026, 6, 10, 17, 30, tzinfo=clock.now().tzinfo))  # 19:30 in Berlin
    today = TODAY
    patient, _ = await make_patient(
        db, clock, times=(), consent_at=clock.now() - timedelta(days=30), surgery_date=today - timedelta(days=37)
    )
    assert patient.id is not None
    async with db.session() as session:
        # Sessions: done 4 days ago, then today (a comeback after 3 missed days).
        for day, status in ((today - timedelta(days=4), "done"), (today, "done")):
            session.add(ExerciseSession(patient_id=patient.id, local_date=day, slot="09:00", status=status))
        # Pain: 6-7 in the first week, 3-4 in the last week.
        first = today - timedelta(days=25)
        for n, value in enumerate([7, 6, 6, 6]):
            session.add(_pain(patient.id, first + timedelta(days=n), value, clock))
        for n, value in enumerate([4, 3, 3]):
            session.add(_pain(patient.id, today - timedelta(days=n), value, clock))
        session.add(MotivationLog(patient_id=patient.id, message_key="welcome", local_date=today - timedelta(days=29)))
        await session.commit()
    stats = SessionStats(streak_days=1, done_total=2)
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        facts_now = await motivation.gather_facts(session, p, clock.now(), stats=stats)
        assert facts_now.done_today and facts_now.missed_before_today == 3 and facts_now.days_since_surgery == 37
        assert facts_now.first_week_pain == 6.25 and facts_now.recent_pain == pytest.approx(3.33, abs=0.01)
        choice = await motivation.choose(session, p, content, clock.now(), stats=stats)
        await session.commit()
        assert choice is not None and choice.message.trigger == "comeback"
        assert await motivation.choose(session, p, content, clock.now(), stats=stats) is None, "one a day"
        again = await motivation.choose(session, p, content, clock.now(), stats=stats, retry_of=clock.now())
        assert again is not None and again.message.id == choice.message.id, "a retried delivery resends its message"
        logs = (await session.exec(select(MotivationLog).where(MotivationLog.local_date == today))).all()
    assert [row.message_key for row in logs] == [choice.message.id]

    # The next day the pain improvement is told, with its numbers; a red flag that day stops it.
    clock.advance(timedelta(days=1))
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        session.add(Alert(patient_id=patient.id, severity="critical", kind="checkin", created_at=clock.now()))
        await session.commit()
        assert await motivation.choose(session, p, content, clock.now(), stats=stats) is None
    clock.advance(timedelta(days=1))
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        choice = await motivation.choose(session, p, content, clock.now(), stats=stats)
    assert choice is not None and choice.message.trigger == "pain_improved"
    assert "6.2" in choice.render("en") or "6.3" in choice.render("en")


def _pain(patient_id: int, day: date, value: int, clock: FakeClock) -> CheckIn:
    return CheckIn(
        patient_id=patient_id,
        questionnaire_id="pain",
        status="complete",
        score=float(value),
        local_date=day,
        started_at=clock.now(),
        completed_at=clock.now(),
    )


# --- milestones ---------------------------------------------------------------------------------


def test_milestones_come_with_an_effect_once_and_never_on_a_red_flag_day(content: Content) -> None:
    first_week = select_message(facts(streak_days=7), content, FIRST, "en")
    assert first_week is not None and first_week.message.id == "first-full-week" and first_week.milestone
    assert pick(content, facts(streak_days=7, red_flag_today=True), FIRST) is None
    # A phase change, in the phase's first two days, once per phase; never in the programme's first phase.
    new_phase = facts(phase_title="Weeks 3-6: standing exercises", days_in_phase=0)
    choice = select_message(new_phase, content, FIRST, "en")
    assert choice is not None and choice.milestone
    assert (
        choice.render("en")
        == "New stage reached: Weeks 3-6: standing exercises. Your programme grows with your recovery."
    )
    assert pick(content, dataclasses.replace(new_phase, days_in_phase=1), [*FIRST, ago("phase-change", 1)]) is None
    assert pick(content, dataclasses.replace(new_phase, days_in_phase=2), FIRST) is None
    assert pick(content, facts(phase_title="Weeks 1-2", days_in_phase=None), FIRST) is None
    assert pick(content, dataclasses.replace(new_phase, red_flag_today=True), FIRST) is None
    # Pain halved from a first week of 2 or more, once.
    halved = facts(first_week_pain=6.0, recent_pain=3.0, pain_days_known=20)
    choice = select_message(halved, content, FIRST, "de")
    assert choice is not None and choice.message.id == "pain-halved" and choice.milestone
    assert "6,0" in choice.render("de") and "3,0" in choice.render("de")
    assert pick(content, dataclasses.replace(halved, recent_pain=3.5), FIRST) == "pain-improved-1"
    assert pick(content, facts(first_week_pain=1.5, recent_pain=0.5, pain_days_known=20), FIRST) != "pain-halved"
    assert pick(content, halved, [*FIRST, ago("pain-halved", 30)]) != "pain-halved"
    assert pick(content, dataclasses.replace(halved, red_flag_today=True), FIRST) is None
    # Streak and weekly messages are not milestones.
    streak = select_message(facts(streak_days=3), content, FIRST, "en")
    assert streak is not None and not streak.milestone


def test_without_health_data_in_the_chat_no_message_states_pain_or_mood(content: Content) -> None:
    halved = facts(first_week_pain=6.0, recent_pain=3.0, pain_days_known=20)
    assert select_message(halved, content, FIRST, "en", health_data=False) is None
    new_phase = facts(phase_title="Weeks 3-6: standing exercises", days_in_phase=0)
    assert select_message(new_phase, content, FIRST, "en", health_data=False) is None, "the phase is treatment data"
    first_week = select_message(facts(streak_days=7), content, FIRST, "en", health_data=False)
    assert first_week is not None and first_week.milestone
    weekly = facts(week_done=10, week_planned=14, week_pain=3.0, week_mood=4.0)
    choice = select_message(weekly, content, FIRST, "en", health_data=False)
    assert choice is not None and choice.message.id == "weekly-3"
    assert select_message(weekly, content, FIRST, "en").message.id == "weekly-1"  # type: ignore[union-attr]


def test_reminder_encouragement_takes_turns(content: Content) -> None:
    lines = {motivation.encouragement(content, "en", n) for n in range(6)}
    assert len(lines) == 3 and all(lines)
    assert motivation.encouragement(content, "de", 0) != motivation.encouragement(content, "en", 0)
