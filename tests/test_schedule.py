"""DST and cadence rules of rehab_bot.schedule, pinned case by case."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from rehab_bot.schedule import (
    QuietHours,
    Rule,
    ScheduleError,
    TimesError,
    in_quiet_hours,
    local_to_utc,
    next_after_date,
    next_from_now,
    parse_days,
    parse_hhmm,
    parse_times,
    zone,
)


def fires(rule: Rule, start: datetime, days: int) -> list[datetime]:
    """Every due instant from start over `days`, as the engine walks them."""
    out = []
    occurrence = next_from_now(rule, start)
    end = start + timedelta(days=days)
    while occurrence is not None and occurrence.due_at < end:
        out.append(occurrence.due_at)
        occurrence = next_after_date(rule, occurrence.local_date)
    return out


def local(instant: datetime, tz: str) -> str:
    return instant.astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M %Z")


# Spring forward: Berlin 2026-03-29 02:00 -> 03:00; New York 2026-03-08 02:00 -> 03:00.
# Fall back: Berlin 2026-10-25 03:00 -> 02:00; New York 2026-11-01 02:00 -> 01:00.


@pytest.mark.parametrize(
    ("tz", "day"),
    [("Europe/Berlin", date(2026, 3, 29)), ("America/New_York", date(2026, 3, 8))],
)
def test_spring_forward_skipped_time_fires_once_at_next_valid_time(tz: str, day: date) -> None:
    rule = Rule(local_time=time(2, 30), tz=tz, start_date=day - timedelta(days=3))
    start = datetime.combine(day - timedelta(days=2), time(12), tzinfo=UTC)
    seen = [local(f, tz) for f in fires(rule, start, 4)]
    on_the_day = [s for s in seen if s.startswith(day.isoformat())]
    assert len(on_the_day) == 1
    assert on_the_day[0].startswith(f"{day.isoformat()} 03:00")
    # the days around keep 02:30
    before = [s for s in seen if s.startswith((day - timedelta(days=1)).isoformat())]
    after = [s for s in seen if s.startswith((day + timedelta(days=1)).isoformat())]
    assert [s[11:16] for s in before + after] == ["02:30", "02:30"]


def test_fall_back_repeated_time_fires_once_berlin() -> None:
    # 02:30 happens twice in Berlin on 2026-10-25: first at +02:00 (00:30 UTC), then +01:00.
    rule = Rule(local_time=time(2, 30), tz="Europe/Berlin", start_date=date(2026, 10, 20))
    got = fires(rule, datetime(2026, 10, 23, 12, tzinfo=UTC), 4)
    on_the_day = [f for f in got if f.astimezone(zone("Europe/Berlin")).date() == date(2026, 10, 25)]
    assert on_the_day == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]


@pytest.mark.parametrize("slot", [time(1, 30), time(2, 30)])
def test_fall_back_new_york_fires_once(slot: time) -> None:
    # In New York 01:00-02:00 repeats on 2026-11-01; 02:30 exists once.
    rule = Rule(local_time=slot, tz="America/New_York", start_date=date(2026, 10, 28))
    got = fires(rule, datetime(2026, 10, 30, 12, tzinfo=UTC), 4)
    ny = zone("America/New_York")
    on_the_day = [f for f in got if f.astimezone(ny).date() == date(2026, 11, 1)]
    assert len(on_the_day) == 1
    assert on_the_day[0].astimezone(ny).strftime("%H:%M") == slot.strftime("%H:%M")
    if slot == time(1, 30):  # the first of the two 01:30s, still on daylight time
        assert on_the_day[0] == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "spring", "autumn"),
    [
        ("Europe/Berlin", date(2026, 3, 29), date(2026, 10, 25)),
        ("America/New_York", date(2026, 3, 8), date(2026, 11, 1)),
    ],
)
def test_nine_oclock_stays_nine_oclock_local(tz: str, spring: date, autumn: date) -> None:
    rule = Rule(local_time=time(9, 0), tz=tz, start_date=date(2026, 1, 1))
    for change in (spring, autumn):
        got = fires(rule, datetime.combine(change - timedelta(days=3), time(12), tzinfo=UTC), 6)
        assert len(got) == 6
        assert {f.astimezone(zone(tz)).strftime("%H:%M") for f in got} == {"09:00"}
        offsets = {f.astimezone(zone(tz)).utcoffset() for f in got}
        assert len(offsets) == 2, "the UTC instant must move with the change"


def test_local_to_utc_gap_and_fold() -> None:
    assert local_to_utc(date(2026, 3, 29), time(2, 30), "Europe/Berlin") == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert local_to_utc(date(2026, 3, 29), time(3, 0), "Europe/Berlin") == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert local_to_utc(date(2026, 10, 25), time(2, 30), "Europe/Berlin") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    # Lord Howe moves by 30 minutes: 02:00 -> 02:30; 02:15 is skipped.
    assert (
        local_to_utc(date(2026, 10, 4), time(2, 15), "Australia/Lord_Howe")
        .astimezone(zone("Australia/Lord_Howe"))
        .strftime("%H:%M")
        == "02:30"
    )


def test_patient_travelling_east_to_west_gets_no_second_slot_that_day() -> None:
    # 09:00 in Berlin fired at 07:00 UTC on 10 June; the patient flies to New York
    # the same day. 09:00 New York on 10 June (13:00 UTC) is the same local date
    # and slot: not sent again. Next is 11 June 09:00 New York.
    berlin = Rule(local_time=time(9), tz="Europe/Berlin", start_date=date(2026, 6, 1))
    first = next_from_now(berlin, datetime(2026, 6, 10, 6, tzinfo=UTC))
    assert first is not None and first.due_at == datetime(2026, 6, 10, 7, tzinfo=UTC)
    new_york = Rule(local_time=time(9), tz="America/New_York", start_date=date(2026, 6, 1))
    after_move = next_from_now(new_york, datetime(2026, 6, 10, 10, tzinfo=UTC), last_local_date=first.local_date)
    assert after_move is not None
    assert after_move.due_at == datetime(2026, 6, 11, 13, tzinfo=UTC)


def test_patient_travelling_west_to_east_gets_the_slot_they_have_not_had() -> None:
    # Last slot fired 9 June 09:00 New York; on 10 June 05:00 UTC they land in
    # Berlin, where 09:00 on 10 June is still ahead: it fires then.
    ny = Rule(local_time=time(9), tz="America/New_York", start_date=date(2026, 6, 1))
    berlin = Rule(local_time=time(9), tz="Europe/Berlin", start_date=date(2026, 6, 1))
    got = next_from_now(berlin, datetime(2026, 6, 10, 5, tzinfo=UTC), last_local_date=date(2026, 6, 9))
    assert ny.slot == berlin.slot
    assert got is not None and got.due_at == datetime(2026, 6, 10, 7, tzinfo=UTC)


def test_weekdays_every_n_days_and_end_date() -> None:
    mwf = Rule(local_time=time(18), tz="UTC", start_date=date(2026, 6, 1), days_of_week=frozenset({0, 2, 4}))
    got = fires(mwf, datetime(2026, 6, 1, tzinfo=UTC), 14)
    assert [f.weekday() for f in got] == [0, 2, 4, 0, 2, 4]
    every3 = Rule(local_time=time(8), tz="UTC", start_date=date(2026, 6, 2), every_n_days=3, end_date=date(2026, 6, 12))
    got = fires(every3, datetime(2026, 6, 1, tzinfo=UTC), 30)
    assert [f.day for f in got] == [2, 5, 8, 11]


def test_next_from_now_is_strictly_after_now() -> None:
    rule = Rule(local_time=time(9), tz="UTC", start_date=date(2026, 6, 1))
    exactly = datetime(2026, 6, 10, 9, tzinfo=UTC)
    got = next_from_now(rule, exactly)
    assert got is not None and got.due_at == exactly + timedelta(days=1)


def test_quiet_hours_wrap_midnight_and_end_in_local_time() -> None:
    tz = "Europe/Berlin"
    start, end = time(21, 30), time(7, 30)
    late_evening = datetime(2026, 6, 10, 20, 0, tzinfo=UTC)  # 22:00 Berlin
    assert in_quiet_hours(late_evening, tz, start, end) == datetime(2026, 6, 11, 5, 30, tzinfo=UTC)
    early = datetime(2026, 6, 11, 4, 0, tzinfo=UTC)  # 06:00 Berlin
    assert in_quiet_hours(early, tz, start, end) == datetime(2026, 6, 11, 5, 30, tzinfo=UTC)
    noon = datetime(2026, 6, 11, 10, 0, tzinfo=UTC)
    assert in_quiet_hours(noon, tz, start, end) is None
    assert in_quiet_hours(noon, tz, None, None) is None
    assert in_quiet_hours(noon, tz, time(13), time(15)) is None
    assert in_quiet_hours(noon, tz, time(12), time(15)) == datetime(2026, 6, 11, 13, 0, tzinfo=UTC)


def test_times_refused_for_quiet_hours_are_offered_twelve_hours_later_only_where_that_fits() -> None:
    night = QuietHours(time(22), time(7))
    assert night.meant_later(["01:30"]) == ["13:30"]  # "halb zwei", read as 01:30
    assert night.meant_later(["02:00", "06:00"], ["02:00", "06:00", "09:00"]) == ["14:00", "18:00"]
    assert night.meant_later(["00:30"]) is None  # 12:30 is no "half past twelve at night" slip
    assert night.meant_later(["10:30"]) is None  # 22:30 is quiet too
    assert night.meant_later(["01:00"], ["01:00", "13:00"]) is None  # on another session
    assert night.meant_later(["01:00", "01:00"]) is None  # twice the same later time
    assert night.meant_later(["05:00", "11:30"]) is None  # all or nothing: 23:30 is quiet
    assert night.meant_later([]) is None
    assert QuietHours(time(12), time(15)).meant_later(["01:30"]) is None  # 13:30 is quiet there


def test_bad_input_is_refused_with_a_reason() -> None:
    with pytest.raises(ScheduleError, match="HH:MM"):
        parse_hhmm("9h")
    with pytest.raises(ScheduleError, match="valid time"):
        parse_hhmm("25:00")
    with pytest.raises(ScheduleError, match="timezone"):
        zone("Mars/Olympus")
    with pytest.raises(ScheduleError):
        parse_days("78")
    with pytest.raises(ScheduleError):
        Rule(local_time=time(9), tz="UTC", start_date=date(2026, 6, 1), every_n_days=0)


@pytest.mark.parametrize(
    ("typed", "quoted"),
    [
        ("Mallorca", "Mallorca"),  # it read "mallorca": the patient's own word, lowered
        ("UTC+5:30", "UTC+5:30"),
        ("8:00, Mittag", "Mittag"),
        ("Halb Acht, Nachmittags", "Nachmittags"),
        ("08:00 -", "08:00 -"),
    ],
)
def test_a_part_that_is_no_time_is_quoted_as_typed(typed: str, quoted: str) -> None:
    with pytest.raises(TimesError) as refused:
        parse_times(typed)
    assert refused.value.part == quoted
