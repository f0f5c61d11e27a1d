"""Rules that live in one place: today for a patient, quiet hours, typed times, insert-or-ignore, the lists,
the alias and surgery date of a new patient, pausing and resuming a patient, and starting a check-in on demand.

Each rule is tested here where it lives; the last test checks the tree has no second copy of it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from factories import make_patient, make_staff
from sqlalchemy import select

from rehab_bot import config, i18n, invite, models
from rehab_bot import patient as patient_core
from rehab_bot.access import Forbidden, StaffError
from rehab_bot.clock import FakeClock
from rehab_bot.content import load_content
from rehab_bot.db import Database, insert_ignore, upsert
from rehab_bot.models import AuditLog, Delivery, DeliveryStatus, GroupNotice, MediaCache, Patient, PatientStatus
from rehab_bot.schedule import (
    QuietHours,
    ScheduleError,
    TimesError,
    end_label,
    end_minutes,
    local_date,
    minutes_of_day,
    parse_hhmm,
    parse_span,
    parse_times,
    read_date,
)
from rehab_bot.typed import clock_text, number, plain

PACKAGE = Path(__file__).resolve().parent.parent / "rehab_bot"


@dataclass
class Someone:
    timezone: str = "Europe/Berlin"
    quiet_start: str | None = None
    quiet_end: str | None = None


# --- today for this patient ------------------------------------------------------------------


def test_today_is_the_date_on_the_patients_own_calendar() -> None:
    late_utc = datetime(2026, 6, 10, 22, 30, tzinfo=UTC)  # 00:30 on the 11th in Berlin
    assert local_date(Someone("Europe/Berlin"), late_utc) == date(2026, 6, 11)
    assert local_date(Someone("America/New_York"), late_utc) == date(2026, 6, 10)
    assert local_date(Someone("UTC"), late_utc) == date(2026, 6, 10)


# --- quiet hours -----------------------------------------------------------------------------


def test_quiet_hours_are_the_clinics_none_or_the_patients_own() -> None:
    clinic = (time(21, 30), time(7, 30))
    assert QuietHours.for_patient(Someone(), *clinic) == QuietHours(time(21, 30), time(7, 30))
    assert QuietHours.for_patient(Someone(quiet_start="", quiet_end=""), *clinic) is None
    assert QuietHours.for_patient(Someone(quiet_start="22:00", quiet_end="06:00"), *clinic) == QuietHours(
        time(22), time(6)
    )
    assert QuietHours.for_patient(Someone(), None, None) is None
    assert QuietHours.for_patient(Someone(), time(8), time(8)) is None  # equal ends mean none


def test_quiet_hours_contain_slots_across_midnight_and_end_in_local_time() -> None:
    night = QuietHours(time(21, 30), time(7, 30))
    assert [night.contains(s) for s in ("21:29", "21:30", "23:59", "00:00", "07:29", "07:30", "12:00")] == [
        False,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    noon = QuietHours(time(12), time(14))
    assert noon.contains("12:00") and noon.contains(time(13, 59)) and not noon.contains("14:00")
    late = datetime(2026, 6, 10, 21, 0, tzinfo=UTC)  # 23:00 in Berlin (CEST)
    assert night.ends_after(late, "Europe/Berlin") == datetime(2026, 6, 11, 5, 30, tzinfo=UTC)
    assert noon.ends_after(late, "Europe/Berlin") is None
    assert night.label() == "21:30–07:30"
    # An end at midnight (typed 24:00) is the end of the day, and shown as 24:00.
    evening = QuietHours(time(22), time(0))
    assert [evening.contains(s) for s in ("21:59", "22:00", "23:59", "00:00", "07:00")] == [
        False,
        True,
        True,
        False,
        False,
    ]
    assert evening.label() == "22:00–24:00" and (evening.start_text, evening.end_text) == ("22:00", "24:00")
    assert evening.ends_after(late, "Europe/Berlin") == datetime(2026, 6, 10, 22, 0, tzinfo=UTC)


def test_the_end_of_a_typed_range_at_midnight_is_the_end_of_the_day() -> None:
    assert [end_minutes(x) for x in ("00:00", time(0), "23:59", "07:30")] == [24 * 60, 24 * 60, 23 * 60 + 59, 450]
    assert [end_label(x) for x in ("00:00", time(0), "23:59", "07:30")] == ["24:00", "24:00", "23:59", "07:30"]
    for typed in ("08:00-24:00", "8 bis 24 Uhr", "08.00 - 24.00", "8-0"):
        start, end = parse_span(typed)
        assert (start, end_label(end), minutes_of_day(start) < end_minutes(end)) == ("08:00", "24:00", True), typed


# --- typed times -----------------------------------------------------------------------------


def test_parse_times_reads_what_people_type_in_order() -> None:
    assert parse_times("8:30, 13:00 and 6pm") == ["08:30", "13:00", "18:00"]
    assert parse_times("18.30 Uhr; 7 und 12h15") == ["18:30", "07:00", "12:15"]
    assert parse_times("08:00,13:00") == ["08:00", "13:00"]
    assert parse_times("9:00 9:00") == ["09:00", "09:00"]  # duplicates are the caller's rule
    assert parse_times("  ") == []
    assert minutes_of_day("07:30") == 450 and minutes_of_day(time(23, 59)) == 1439


@pytest.mark.parametrize(
    "text, part",
    [
        ("noon", "noon"),
        ("8:00 25:00", "25:00"),
        ("13pm", "13pm"),
        ("7:60", "7:60"),
        ("24:30", "24:30"),
        ("24pm", "24pm"),
    ],
)
def test_parse_times_names_the_first_part_it_cannot_read(text: str, part: str) -> None:
    with pytest.raises(TimesError) as caught:
        parse_times(text)
    assert caught.value.part == part


def test_typed_text_is_plain_before_it_is_read() -> None:
    # Invisible format characters go; full-width and other scripts' digits, dashes and spaces become ASCII.
    assert plain("\u200f09:00\u200b") == "09:00"
    assert plain("１０：３０") == "10:30"
    assert plain("١٠:٣٠") == "10:30"
    assert plain("22:00\u201407:00") == "22:00-07:00"
    assert plain("10\u00a0Uhr") == "10 Uhr"
    assert plain("Müller 🙂") == "Müller 🙂", "letters and emoji stay (a staff name may have one)"
    # Clock readers drop emoji: nobody means them as part of a time ("von 23 bis 6 Uhr 😴" was refused).
    assert clock_text("22:00 🌙") == "22:00 " and clock_text("22-7 ✌️") == "22-7 "


@pytest.mark.parametrize(
    ("text", "times"),
    [
        ("０９：００, 13h, 18:00h", ["09:00", "13:00", "18:00"]),
        ("١٠:٣٠ ١٣:٠٠", ["10:30", "13:00"]),
        ("09:00\u200b 13:00", ["09:00", "13:00"]),
        ("um 8, 13 und 18 Uhr", ["08:00", "13:00", "18:00"]),
        ("at 8 & 6pm", ["08:00", "18:00"]),
        ("18.30h", ["18:30"]),
        ("08:00 – 13:00 – 18:00", ["08:00", "13:00", "18:00"]),
        ("08:00—13:00—18:00", ["08:00", "13:00", "18:00"]),
        ("8 - 13, 18", ["08:00", "13:00", "18:00"]),
        ("08:00, 13:00 und 18:00", ["08:00", "13:00", "18:00"]),
        ("24:00", ["00:00"]),  # midnight, as on a clock
        ("24 Uhr", ["00:00"]),
    ],
)
def test_parse_times_reads_what_keyboards_send(text: str, times: list[str]) -> None:
    assert parse_times(text) == times


@pytest.mark.parametrize(
    ("text", "times"),
    [
        # German clock words: "halb acht" is half *to* eight, 7:30; like a bare "7:30" it is read on the
        # 24-hour clock (the morning), and the confirmation shows 07:30 for the patient to correct.
        ("halb acht", ["07:30"]),
        ("um halb 8", ["07:30"]),
        ("halb eins", ["00:30"]),
        ("halb acht abends", ["19:30"]),
        ("viertel nach acht", ["08:15"]),
        ("Viertel vor neun", ["08:45"]),
        ("viertel vor zwölf", ["11:45"]),
        ("viertel vor eins", ["00:45"]),
        ("dreiviertel acht", ["07:45"]),
        ("viertel acht", ["07:15"]),
        ("zehn nach acht", ["08:10"]),
        ("5 vor 9", ["08:55"]),
        ("fünf nach halb acht", ["07:35"]),
        ("fünf vor halb acht abends", ["19:25"]),
        ("19 Uhr 30", ["19:30"]),
        ("7 Uhr 5", ["07:05"]),
        ("19.30 Uhr", ["19:30"]),
        ("7 Uhr morgens", ["07:00"]),
        ("7 Uhr abends", ["19:00"]),
        ("sieben Uhr abends", ["19:00"]),
        ("acht Uhr", ["08:00"]),
        ("um acht", ["08:00"]),
        ("ein Uhr mittags", ["13:00"]),
        ("12 Uhr mittags", ["12:00"]),
        ("viertel vor eins mittags", ["12:45"]),
        ("3 Uhr nachmittags", ["15:00"]),
        ("19 Uhr abends", ["19:00"]),
        ("10 Uhr nachts", ["22:00"]),
        ("12 Uhr nachts", ["00:00"]),
        ("2 Uhr nachts", ["02:00"]),
        ("9 Uhr vormittags", ["09:00"]),
        ("6 Uhr früh", ["06:00"]),
        ("8 Uhr morgens, 13 Uhr und 7 Uhr abends", ["08:00", "13:00", "19:00"]),
        ("halb acht, viertel nach zwölf und sechs Uhr abends", ["07:30", "12:15", "18:00"]),
        ("8 Uhr 13 Uhr 18 Uhr", ["08:00", "13:00", "18:00"]),  # a list, not 8:13
        # English clock words keep working, and read the same way.
        ("half past seven", ["07:30"]),
        ("quarter past eight", ["08:15"]),
        ("quarter to nine", ["08:45"]),
        ("10 past 9", ["09:10"]),
        ("ten to nine", ["08:50"]),
        ("twenty-five to eight", ["07:35"]),
        ("twenty five past seven", ["07:25"]),
        ("five to twelve", ["11:55"]),
        ("ten to nine in the evening", ["20:50"]),
        ("ten to nine and quarter past six pm", ["08:50", "18:15"]),
        ("7 in the evening", ["19:00"]),
        ("seven in the morning", ["07:00"]),
        ("half past seven in the evening", ["19:30"]),
        ("7:30pm", ["19:30"]),
    ],
)
def test_parse_times_reads_clock_words_in_german_and_english(text: str, times: list[str]) -> None:
    assert parse_times(text) == times


@pytest.mark.parametrize(
    "text", ["19 Uhr morgens", "12 Uhr abends", "halb", "viertel nach", "halb dreizehn", "7 Uhr 75"]
)
def test_parse_times_refuses_clock_words_that_name_no_time(text: str) -> None:
    with pytest.raises(TimesError):
        parse_times(text)


def test_parse_span_reads_clock_words_at_both_ends() -> None:
    assert parse_span("von halb elf abends bis sieben Uhr morgens") == ("22:30", "07:00")
    assert parse_span("from quarter to eleven in the evening to quarter to seven") == ("22:45", "06:45")
    assert parse_span("22 Uhr 30 bis 6 Uhr 45") == ("22:30", "06:45")
    assert parse_span("10 to 7") == ("10:00", "07:00")  # a range: "to" between numbers is never "before"
    assert parse_span("ten to seven") == ("10:00", "07:00")  # nor between hour words in a range


def test_to_between_digits_is_no_single_time() -> None:
    with pytest.raises(TimesError):
        parse_times("8 to 9")  # "ten to nine" is 08:50; "8 to 9" names two times, not 08:52


def test_a_digit_int_cannot_read_is_no_time_and_no_crash() -> None:
    with pytest.raises(ScheduleError):
        parse_hhmm("①:00")  # str.isdigit() is True, int() raises ValueError


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("22:00-07:00", ("22:00", "07:00")),
        ("22 - 7", ("22:00", "07:00")),
        ("22 Uhr bis 6:30 Uhr", ("22:00", "06:30")),
        ("von 22 bis 7 Uhr", ("22:00", "07:00")),
        ("zwischen 8 und 20 Uhr", ("08:00", "20:00")),
        ("10pm to 7am", ("22:00", "07:00")),
        ("22h-7h", ("22:00", "07:00")),
        ("22:00h–07:00h", ("22:00", "07:00")),
        ("２２：００～０７：００", ("22:00", "07:00")),
        ("22:00-24:00", ("22:00", "00:00")),  # 24:00 ends a day: midnight
        ("von 22 bis 24 Uhr", ("22:00", "00:00")),
    ],
)
def test_parse_span_reads_a_range_of_two_typed_times(text: str, span: tuple[str, str]) -> None:
    assert parse_span(text) == span


@pytest.mark.parametrize("text", ["", "22", "22-", "late-early", "1-2-3", "22 23 - 7", "22:00-24:30"])
def test_parse_span_refuses_what_is_not_two_times(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_span(text)


def test_stored_times_skip_what_is_not_a_time() -> None:
    assert parse_times("08:00,,garbage,18:30", skip_bad=True) == ["08:00", "18:30"]


# --- insert-or-ignore and upsert, on both backends ------------------------------------------------


async def test_insert_ignore_keeps_the_first_row_and_upsert_replaces_it(db: Database) -> None:
    notices = GroupNotice.__table__  # type: ignore[attr-defined]
    first, later = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC)
    async with db.engine.begin() as conn:
        made = await conn.execute(insert_ignore(db.dialect, notices).values(chat_id=-5, noticed_at=first))
        again = await conn.execute(
            insert_ignore(db.dialect, notices, keys=["chat_id"]).values(chat_id=-5, noticed_at=later)
        )
        assert (made.rowcount, again.rowcount) == (1, 0)
        await conn.execute(
            insert_ignore(db.dialect, notices),
            [{"chat_id": -6, "noticed_at": later}, {"chat_id": -5, "noticed_at": later}],
        )
        rows = (await conn.execute(select(notices.c.chat_id, notices.c.noticed_at).order_by(notices.c.chat_id))).all()
    assert [
        (r.chat_id, r.noticed_at.replace(tzinfo=UTC) if r.noticed_at.tzinfo is None else r.noticed_at) for r in rows
    ] == [
        (-6, later),
        (-5, first),
    ]
    media = MediaCache.__table__  # type: ignore[attr-defined]
    async with db.engine.begin() as conn:
        for file_id in ("one", "two"):
            values = {"source": "a.jpg", "file_id": file_id, "updated_at": later}
            await conn.execute(upsert(db.dialect, media, values, keys=["source"], update=["file_id", "updated_at"]))
        stored = (await conn.execute(select(media.c.source, media.c.file_id))).all()
    assert [tuple(r) for r in stored] == [("a.jpg", "two")]


# --- a new patient's alias and surgery date ---------------------------------------------------------


def test_aliases_compare_by_one_key() -> None:
    assert invite.alias_key("  LWS-0412 ") == invite.alias_key("lws-0412") == "lws-0412"
    assert invite.validate_alias(" LWS-0412 ") == "LWS-0412"
    assert invite.validate_alias("LWS-0412\u200b") == invite.validate_alias("ＬＷＳ-0412") == "LWS-0412"
    assert invite.alias_key("\u200eLWS-0412\u200b") == "lws-0412"
    with pytest.raises(invite.InviteError) as caught:
        invite.validate_alias("Mueller")
    assert caught.value.code == "bad_alias" and isinstance(caught.value, StaffError)


async def test_stored_aliases_are_found_and_taken_whatever_the_case(db: Database, clock: FakeClock) -> None:
    # Aliases already in the database keep the case they were typed in (upper, lower or mixed).
    stored = [(await make_patient(db, clock, alias=alias))[0] for alias in ("LWS-0412", "hws-7", "Knie-3b")]
    async with db.session() as session:
        for patient, typed in zip(stored, ("lws-0412", " HWS-7 ", "KNIE-3B"), strict=True):
            found = await invite.patient_by_alias(session, typed)
            assert found is not None and found.id == patient.id, typed
            assert await invite.alias_taken(session, typed)
        assert await invite.patient_by_alias(session, "LWS-0413") is None


@pytest.mark.parametrize(
    ("text", "ahead", "day"),
    [
        ("2026-06-03", False, date(2026, 6, 3)),
        ("2026-6-3", False, date(2026, 6, 3)),
        ("3.6.26", False, date(2026, 6, 3)),
        ("03.06.2026", False, date(2026, 6, 3)),
        ("03/06/2026", False, date(2026, 6, 3)),  # day first: the 3rd of June, never March 6th
        ("3/6/26", False, date(2026, 6, 3)),
        ("3-6-2026", False, date(2026, 6, 3)),
        ("3. 6. 2026", False, date(2026, 6, 3)),
        ("03.06.2026.", False, date(2026, 6, 3)),
        ("０３.０６.２０２６\u200b", False, date(2026, 6, 3)),
        # Without a year: the next such day for a pause, the nearest for a surgery date.
        ("3.6.", True, date(2027, 6, 3)),
        ("3.6.", False, date(2026, 6, 3)),
        ("24/6", True, date(2026, 6, 24)),
        ("1.12.", False, date(2026, 12, 1)),
        ("1.1.", False, date(2026, 1, 1)),
        ("1.1.", True, date(2027, 1, 1)),
        # Month names, English and German, and the words around a date.
        ("24. Juni", True, date(2026, 6, 24)),
        ("24 Juni 2026", True, date(2026, 6, 24)),
        ("bis zum 24. Juni", True, date(2026, 6, 24)),
        ("am 3. März", True, date(2027, 3, 3)),
        ("3. Mrz.", False, date(2026, 3, 3)),
        ("bis einschließlich 1. Dez.", True, date(2026, 12, 1)),
        ("June 24th", True, date(2026, 6, 24)),
        ("until the 24th of June", True, date(2026, 6, 24)),
        ("24 June 2026", True, date(2026, 6, 24)),
        ("Jun 24, 2026", True, date(2026, 6, 24)),
        ("bis 24.6.", True, date(2026, 6, 24)),
        ("morgen", True, date(2026, 6, 11)),
        ("bis übermorgen", True, date(2026, 6, 12)),
        ("tomorrow", True, date(2026, 6, 11)),
    ],
)
def test_one_reading_of_typed_dates(text: str, ahead: bool, day: date) -> None:
    assert read_date(text, date(2026, 6, 10), ahead=ahead) == day


@pytest.mark.parametrize(
    "text",
    [
        "",
        "soon",
        "31.02.2026",
        "13/13/2026",
        "3.6.2026.5",
        "1-2-3",
        "3.6/26",
        "2026/06",
        "31. Juni",
        "Juni",
        "bis",
        "next week",
        "24. Juno",
    ],
)
def test_what_is_no_date_is_none(text: str) -> None:
    assert read_date(text, date(2026, 6, 10)) is None


def test_a_day_named_from_today_is_only_a_date_ahead() -> None:
    # A pause "bis morgen"; a surgery date (not ahead) is written out, "tomorrow" is refused there.
    assert read_date("morgen", date(2026, 6, 10), ahead=True) == date(2026, 6, 11)
    assert read_date("morgen", date(2026, 6, 10)) is None
    assert read_date("tomorrow", date(2026, 6, 10)) is None


def test_surgery_and_pause_dates_take_the_same_forms_each_with_its_own_range() -> None:
    today = date(2026, 6, 10)
    for text in ("3.7.26", "03.07.2026", "03/07/2026", "2026-07-03", "3.7."):
        assert invite.parse_surgery_date(text, today) == date(2026, 7, 3), text
        assert patient_core.parse_pause_date(text, today) == date(2026, 7, 3), text
    # A surgery date may be past, a pause date may not; a surgery a year and more ago is a typo.
    assert invite.parse_surgery_date("3.6.26", today) == date(2026, 6, 3)
    with pytest.raises(patient_core.InputError, match="date_past"):
        patient_core.parse_pause_date("3.6.26", today)
    with pytest.raises(invite.InviteError, match="more than a year ago"):
        invite.parse_surgery_date("3.6.25", today)
    with pytest.raises(invite.InviteError, match=re.escape("3.6.26")):
        invite.parse_surgery_date("31.6.26", today)  # the message names the forms it takes


def test_one_surgery_date_rule_for_chat_and_cli() -> None:
    today = date(2026, 6, 10)
    assert invite.parse_surgery_date("2026-06-03", today) == date(2026, 6, 3)
    assert invite.parse_surgery_date(" 03.06.2026 ", today) == date(2026, 6, 3)
    assert invite.parse_surgery_date("０３.０６.２０２６\u200b", today) == date(2026, 6, 3)
    with pytest.raises(invite.InviteError, match="YYYY-MM-DD"):
        invite.parse_surgery_date("03.06.2026", today, dotted=False)  # the CLI takes ISO dates only
    for text, code in [("2026-12-11", "surgery_date_ahead"), ("2025-06-08", "surgery_date_past"), ("x", "bad_")]:
        with pytest.raises(invite.InviteError) as caught:
            invite.parse_surgery_date(text, today)
        assert caught.value.code.startswith(code)
    assert invite.check_surgery_date(date(2026, 12, 10), today) == date(2026, 12, 10)  # 183 days: still fine
    with pytest.raises(invite.InviteError) as ahead:
        invite.check_surgery_date(date(2026, 12, 11), today)
    assert str(ahead.value) == "The surgery date 2026-12-11 is more than 6 months ahead; please check it."


# --- pausing and resuming a patient: one rule, whoever asks ----------------------------------------


async def test_a_pause_by_staff_or_patient_skips_what_is_queued(db: Database, clock: FakeClock) -> None:
    doc = await make_staff(db)
    colleague = await make_staff(db)
    now = clock.now()
    by_staff, _ = await make_patient(db, clock, therapist_id=doc.id)
    by_self, _ = await make_patient(db, clock, status=PatientStatus.UNREACHABLE)
    async with db.session() as session:
        for n, p in enumerate((by_staff, by_self)):
            session.add(
                Delivery(
                    key=f"q{n}", kind="session", priority=3, patient_id=p.id, chat_id=1, due_at=now, not_before=now
                )
            )
        await session.commit()
    until = patient_core.pause_until_for(3, date(2026, 6, 10))
    async with db.session() as session:
        staff_row, self_row = await session.get(Patient, by_staff.id), await session.get(Patient, by_self.id)
        assert staff_row is not None and self_row is not None
        with pytest.raises(Forbidden):
            await patient_core.pause(session, staff_row, until, now, staff=colleague)
        assert patient_core.pause_for(staff_row, 3, now) == until and patient_core.pause_for(staff_row, 0, now) is None
        assert await patient_core.pause(session, staff_row, None, now, staff=doc) == patient_core.PauseResult.PAUSED
        assert await patient_core.pause(session, self_row, until, now) == patient_core.PauseResult.PAUSED
        await session.commit()
    async with db.session() as session:
        rows = {p.id: p for p in (await session.exec(select(Patient))).scalars()}
        queued = (await session.exec(select(Delivery))).scalars().all()
        audited = [a.action for a in (await session.exec(select(AuditLog))).scalars()]
    assert (rows[by_staff.id].status, rows[by_staff.id].paused_until) == ("paused", None)
    assert (rows[by_self.id].status, rows[by_self.id].paused_until) == ("paused", until)
    assert [d.status for d in queued] == [DeliveryStatus.SKIPPED, DeliveryStatus.SKIPPED]
    assert audited == ["change.pause"]  # staff changes are audited, the patient's own are not


async def test_staff_may_only_end_a_pause_the_patient_may_end_a_stop(db: Database, clock: FakeClock) -> None:
    doc = await make_staff(db)
    content = load_content(None)
    stopped, _ = await make_patient(db, clock, therapist_id=doc.id, status=PatientStatus.STOPPED)
    discharged, _ = await make_patient(db, clock, therapist_id=doc.id, status=PatientStatus.DISCHARGED)
    now = clock.now()
    async with db.session() as session:
        row = await session.get(Patient, stopped.id)
        gone = await session.get(Patient, discharged.id)
        assert row is not None and gone is not None
        with pytest.raises(StaffError, match="not paused"):
            await patient_core.resume(session, row, content=content, now=now, staff=doc)
        with pytest.raises(StaffError, match="nothing to pause"):
            await patient_core.pause(session, gone, None, now, staff=doc)
        assert await patient_core.pause(session, gone, None, now) == patient_core.PauseResult.NOT_ACTIVE
        assert await patient_core.resume(session, row, content=content, now=now) == patient_core.ResumeResult.RESTARTED


# --- one list each, and no second copy anywhere ------------------------------------------------------


def test_one_list_of_languages_and_of_surgery_types() -> None:
    assert config.LANGUAGES is i18n.SUPPORTED_LANGUAGES
    assert invite.SURGERY_TYPES is models.SURGERY_TYPES


def _sources() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))}


# --- a check-in started on demand --------------------------------------------------------------


async def test_a_check_in_started_on_demand_asks_its_first_question(db: Database, clock: FakeClock) -> None:
    from rehab_bot import checkin

    content = load_content(None)
    patient, _ = await make_patient(db, clock, times=())
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        first = await checkin.begin(session, row, content, ["pain"], clock.now())
        assert [c.questionnaire_id for c in first.checkins] == ["pain"]
        assert first.step is not None and first.step.checkin is first.checkins[0] and first.step.item.id == "pain"
        # Started again, it supersedes the open one; an unknown questionnaire starts nothing.
        again = await checkin.begin(session, row, content, ["pain"], clock.now())
        assert first.checkins[0].status == checkin.EXPIRED and again.step is not None
        nothing = await checkin.begin(session, row, content, ["no-such-check"], clock.now())
        assert nothing.checkins == [] and nothing.step is None


# --- the Mini App's addresses and the public URL rule --------------------------------------------


def test_mini_app_addresses_come_from_one_place_and_name_no_health_topic() -> None:
    from rehab_bot import miniapp

    base = "https://rehab.example.org/"
    assert miniapp.session_url(base, 12) == "https://rehab.example.org/app/session/12"
    assert miniapp.checkin_url(base, 34) == "https://rehab.example.org/app/checkin/34"
    assert miniapp.result_url(base) == "https://rehab.example.org/app/result"
    assert miniapp.home_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/app"


def second_copies() -> list[str]:
    """Where a rule of this file is written again outside its home."""
    copies: list[str] = []
    for name, text in _sources().items():
        if "migrations" in name:
            continue
        if name != "db.py" and re.search(r"on_conflict_do_(nothing|update)|(postgresql|sqlite)\.insert\b", text):
            copies.append(f"{name}: insert-or-ignore")
        if name != "schedule.py" and re.search(r"astimezone\((zone|_tz|ZoneInfo)\(\w+\.timezone\)\)\.date\(\)", text):
            copies.append(f"{name}: today for a patient")
        if re.search(r"\bquiet_(start|end) is None and \w+\.quiet_(start|end) is None", text) and name != "schedule.py":
            copies.append(f"{name}: quiet hours")
        if name != "schedule.py" and re.search(r"%d[./]%m|\(\\d\{1,2\}\)\\?[./]", text):
            copies.append(f"{name}: reading a typed date (schedule.read_date)")
        if re.search(r"\(\s*\"lumbar\",\s*\"cervical\"", text) and name != "models.py":
            copies.append(f"{name}: surgery types")
        if re.search(r"\(\s*\"en\",\s*\"de\"\s*\)", text) and name != "i18n.py":
            copies.append(f"{name}: languages")
        if name not in ("caseload.py", "config.py") and re.search(
            r"no response for|[<>]=? *\w+\.digest_(low_adherence|pain_rise)", text
        ):
            copies.append(f"{name}: the risk rules (caseload.risk_reasons)")
        if re.search(r"/app/(session|checkin|result)\b", text) and name != "miniapp.py":
            copies.append(f"{name}: Mini App addresses")
        if re.search(r"\bLOOPBACK_HOSTS\s*=", text) and name != "config.py":
            copies.append(f"{name}: the public URL rule")
        if name != "invite.py" and re.search(r"func\.(lower|upper)\(col\(Patient\.alias\)\)\s*==", text):
            copies.append(f"{name}: the alias comparison (invite.alias_key)")
        if name != "invite.py" and re.search(
            r"MAX_DAYS_(AHEAD|AGO)|more than 6 months ahead|surgery-date.*is not a date", text
        ):
            copies.append(f"{name}: the surgery date range (invite.check_surgery_date)")
        if name != "models.py" and re.search(
            r"ACTIVE\.value, PatientStatus\.PAUSED\.value, PatientStatus\.UNREACHABLE", text
        ):
            copies.append(f"{name}: the statuses in care (models.IN_CARE)")
        if name != "patient.py" and re.search(r"\.paused_until\s*=[^=]|status\s*=\s*PatientStatus\.PAUSED", text):
            copies.append(f"{name}: pausing a patient (patient.pause)")
        if name != "schedule.py" and re.search(r"\bend(\.strftime\(|:%H:%M)|minutes_of_day\((\w+\.)?end\)", text):
            copies.append(f"{name}: the end of a range at midnight (schedule.end_minutes, end_label)")
        if name != "checkin.py" and re.search(r"\.start\([^\n]*\n[^\n]*\.next_step\(", text):
            copies.append(f"{name}: starting a check-in and taking its first step (checkin.begin)")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in {
                "local_today",
                "_in_quiet",
                "in_quiet",
                "_minutes",
                "normalise_alias",
                "parse_surgery_date" if name != "invite.py" else "",
            }:
                copies.append(f"{name}: def {node.name}")
            if isinstance(node, ast.Attribute) and node.attr == "_minutes":
                copies.append(f"{name}: private programmes._minutes")
    return copies


def test_no_second_copy_of_these_rules_remains() -> None:
    assert second_copies() == []


@pytest.mark.parametrize(
    ("text", "most", "read"),
    [("42", 18, 42), ("007", 3, 7), ("1234", 3, None), ("", 5, None), ("²", 5, None), ("١٢", 5, None), ("-1", 5, None),
     ("1 ", 5, None), ("１２", 5, None)],
)  # fmt: skip
def test_a_number_from_untrusted_text_is_ascii_digits_only(text: str, most: int, read: int | None) -> None:
    assert number(text, most) == read
