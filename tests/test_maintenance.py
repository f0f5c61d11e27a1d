"""The maintenance phase: after a programme's last phase, a weekly session and check-in instead of a hard stop."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from rehab_bot import checkin
from rehab_bot.content import MAINTENANCE, Content, ContentError, load_content
from rehab_bot.models import Patient
from rehab_bot.motivation import Facts, select_message
from rehab_bot.programme import planned_rules

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
