"""Finding a timezone offline from a typed city, an offset or a shared location."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from rehab_bot import patient as patients
from rehab_bot import timezones
from rehab_bot.schedule import Rule, first_on_or_after
from rehab_bot.timezones import (
    COMMON_ZONES,
    ZoneMatch,
    cities,
    country_clocks,
    is_zone,
    local_time,
    place,
    zone_from_location,
    zone_from_offset,
    zone_from_text,
    zone_label,
    zones_to_choose,
)


@pytest.mark.parametrize(
    ("text", "zone", "how"),
    [
        ("Berlin", "Europe/Berlin", "city"),
        ("  new york ", "America/New_York", "city"),
        ("München", "Europe/Berlin", "city"),
        ("Muenchen", "Europe/Berlin", "city"),
        ("Köln", "Europe/Berlin", "city"),
        ("Wien", "Europe/Vienna", "city"),
        ("Zürich", "Europe/Zurich", "city"),
        ("São Paulo", "America/Sao_Paulo", "city"),
        ("Frankfurt am Main", "Europe/Berlin", "city"),
        ("Berlin, Germany", "Europe/Berlin", "city"),
        ("Chicago", "America/Chicago", "city"),  # the city part of an IANA name
        ("Buenos Aires", "America/Argentina/Buenos_Aires", "city"),
        ("Europe/Vienna", "Europe/Vienna", "iana"),
        ("america/new_york", "America/New_York", "iana"),
        ("+2", "Etc/GMT-2", "offset"),
        ("UTC-5", "Etc/GMT+5", "offset"),
        ("GMT +1", "Etc/GMT-1", "offset"),
        ("UTC+05:30", "Asia/Kolkata", "offset"),
        ("+14", "Etc/GMT-14", "offset"),
        ("utc+0", "Etc/UTC", "offset"),
        # Marks keyboards add unseen, and full-width or other digits (rehab_bot.typed).
        ("\u200fBerlin\u200b", "Europe/Berlin", "city"),
        ("\u202bWien\u202c", "Europe/Vienna", "city"),
        ("Europe/Vienna\u200e", "Europe/Vienna", "iana"),
        ("UTC\u22125", "Etc/GMT+5", "offset"),
        ("UTC+２", "Etc/GMT-2", "offset"),
        ("GMT+٥:٣٠", "Asia/Kolkata", "offset"),
        # Abbreviations: the region's zone, with its summer time (the legacy "EST" zone has none).
        ("EST", "America/New_York", "abbreviation"),
        ("pst", "America/Los_Angeles", "abbreviation"),
        # A clock many zones share: a proper zone with the region's summer time, never the legacy "CET".
        ("MEZ", "Europe/Berlin", "abbreviation"),
        ("MESZ", "Europe/Berlin", "abbreviation"),
        ("CET", "Europe/Berlin", "abbreviation"),
        ("CEST", "Europe/Berlin", "abbreviation"),
        ("cest", "Europe/Berlin", "abbreviation"),
        ("WEZ", "Europe/Lisbon", "abbreviation"),
        ("WET", "Europe/Lisbon", "abbreviation"),
        ("EET", "Europe/Athens", "abbreviation"),
        ("OESZ", "Europe/Athens", "abbreviation"),
        ("MST", "America/Phoenix", "abbreviation"),
    ],
)
def test_typed_zones(text: str, zone: str, how: str) -> None:
    match = zone_from_text(text)
    assert match is not None and (match.zone, match.how) == (zone, how)


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("Germany", "Europe/Berlin"),
        ("Deutschland", "Europe/Berlin"),
        ("Austria", "Europe/Vienna"),
        ("Österreich", "Europe/Vienna"),
        ("Oesterreich", "Europe/Vienna"),
        ("Switzerland", "Europe/Zurich"),
        ("Schweiz", "Europe/Zurich"),
        ("France", "Europe/Paris"),
        ("Frankreich", "Europe/Paris"),
        ("Italy", "Europe/Rome"),
        ("Italien", "Europe/Rome"),
        ("Poland", "Europe/Warsaw"),
        ("Polen", "Europe/Warsaw"),
        ("Greece", "Europe/Athens"),
        ("Griechenland", "Europe/Athens"),
        ("Turkey", "Europe/Istanbul"),  # not the old alias zone "Turkey"
        ("Türkei", "Europe/Istanbul"),
        ("Japan", "Asia/Tokyo"),
        ("India", "Asia/Kolkata"),
        ("Indien", "Asia/Kolkata"),
        ("United Kingdom", "Europe/London"),
        ("Vereinigtes Königreich", "Europe/London"),
        ("UK", "Europe/London"),
        ("Großbritannien", "Europe/London"),
        ("the Netherlands", "Europe/Amsterdam"),
        ("Niederlande", "Europe/Amsterdam"),
        ("Argentinien", "America/Argentina/Buenos_Aires"),
        ("Bonn, Deutschland", "Europe/Berlin"),  # a town not in the table, in its country
    ],
)
def test_a_country_with_one_clock_is_that_zone(text: str, zone: str) -> None:
    assert zone_from_text(text) == ZoneMatch(zone, "country")
    assert zones_to_choose(text) == ()


@pytest.mark.parametrize(
    ("text", "zone", "how"),
    [
        ("I'm in Berlin", "Europe/Berlin", "city"),
        ("I’m in Berlin", "Europe/Berlin", "city"),
        ("I am currently in Vienna", "Europe/Vienna", "city"),
        ("I live in Germany", "Europe/Berlin", "country"),
        ("We live in the Netherlands.", "Europe/Amsterdam", "country"),
        ("Ich bin in Berlin", "Europe/Berlin", "city"),
        ("ich wohne in Österreich", "Europe/Vienna", "country"),
        ("Ich bin gerade in der Schweiz", "Europe/Zurich", "country"),
        ("Wir wohnen in den Niederlanden", "Europe/Amsterdam", "country"),
        ("in der Türkei", "Europe/Istanbul", "country"),
        ("auf Mallorca", "Europe/Madrid", "city"),
        ("I'm in UTC+2", "Etc/GMT-2", "offset"),
    ],
)
def test_words_around_the_place_are_no_part_of_it(text: str, zone: str, how: str) -> None:
    match = zone_from_text(text)
    assert match is not None and (match.zone, match.how) == (zone, how)


@pytest.mark.parametrize(
    ("text", "some"),
    [
        ("USA", {"America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Pacific/Honolulu"}),
        ("Vereinigte Staaten", {"America/New_York", "America/Los_Angeles"}),
        ("I live in the US", {"America/New_York", "America/Chicago"}),
        ("Texas, USA", {"America/Chicago"}),
        ("Spain", {"Europe/Madrid", "Atlantic/Canary"}),
        ("Ich bin in Spanien", {"Europe/Madrid", "Atlantic/Canary"}),
        ("Russland", {"Europe/Moscow", "Asia/Vladivostok"}),
        ("Australia", {"Australia/Brisbane", "Australia/Perth"}),
        ("Kanada", {"America/Toronto", "America/Vancouver"}),
    ],
)
def test_a_country_with_several_clocks_is_asked_about(text: str, some: set[str]) -> None:
    assert zone_from_text(text) is None
    choices = zones_to_choose(text)
    assert some <= set(choices)
    at = [datetime(2026, month, 15, 12, tzinfo=UTC) for month in (1, 7)]
    clocks = [tuple(local_time(zone, when) for when in at) for zone in choices]
    assert len(set(clocks)) == len(clocks), "one zone per clock"
    assert patients.looks_like_answer("tz", text, date(2026, 6, 10)), "an answer, though not yet a zone"


def test_a_country_keeps_one_zone_per_clock_from_the_city_table() -> None:
    assert country_clocks("DE") == ("Europe/Berlin",)  # not also Europe/Busingen: the same clock
    assert country_clocks("ES") == ("Atlantic/Canary", "Europe/Madrid")  # west to east; Ceuta is Madrid's clock
    assert "Australia/Sydney" in country_clocks("AU") or "Australia/Melbourne" in country_clocks("AU")
    assert "Antarctica/Macquarie" not in country_clocks("AU"), "a known city names the clock"
    assert country_clocks("XX") == ()


@pytest.mark.parametrize(
    "text",
    ["", "xyzzy", "08:00", "2", "-13", "UTC+15", "+5:15", "Atlantis", "x" * 100, "I'm in Atlantis", "in", "I'm in"],
)
def test_unrecognised_text(text: str) -> None:
    assert zone_from_text(text) is None


def test_offsets_keep_the_posix_sign_straight() -> None:
    # Etc/GMT-2 is two hours ahead of UTC: 10:00 UTC is 12:00 there.
    at = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
    assert local_time(zone_from_offset("+2") or "", at) == "12:00"
    assert local_time(zone_from_offset("UTC-5") or "", at) == "05:00"


@pytest.mark.parametrize(
    ("lat", "lon", "zone"),
    [
        (52.40, 13.06, "Europe/Berlin"),  # Potsdam
        (48.30, 16.40, "Europe/Vienna"),
        (40.73, -73.94, "America/New_York"),  # Brooklyn
        (34.00, -118.50, "America/Los_Angeles"),
        (-33.80, 151.00, "Australia/Sydney"),
        (0.0, -30.0, "Etc/GMT+2"),  # mid-Atlantic: far from every city, by longitude
        (-60.0, 0.0, "Etc/UTC"),
    ],
)
def test_location_to_zone(lat: float, lon: float, zone: str) -> None:
    assert zone_from_location(lat, lon) == zone


def test_every_bundled_zone_exists() -> None:
    assert all(is_zone(city.zone) for city in cities())
    assert all(is_zone(zone) for zone in COMMON_ZONES)


def test_labels() -> None:
    assert zone_label("Europe/Vienna", "de") == "Wien"
    assert zone_label("Europe/Vienna", "en") == "Vienna"
    assert zone_label("America/New_York", "de") == "New York"
    assert zone_label("Etc/GMT-2", "en") == "UTC+2"
    assert zone_label("Etc/GMT+5", "en") == "UTC-5"
    assert zone_label("Etc/UTC", "en") == "UTC"


@pytest.mark.parametrize(
    ("text", "home", "zone"),
    [
        ("MEZ", "Europe/Vienna", "Europe/Vienna"),  # the clinic's own zone keeps that clock
        ("CEST", "Europe/Zurich", "Europe/Zurich"),
        ("mesz", "Europe/Paris", "Europe/Paris"),
        ("MEZ", "Europe/Berlin", "Europe/Berlin"),
        ("MEZ", "Europe/London", "Europe/Berlin"),  # another clock: the region's best-known zone
        ("CET", "America/New_York", "Europe/Berlin"),
        ("MEZ", "Europe/Moscow", "Europe/Berlin"),
        ("WEZ", "Europe/London", "Europe/London"),  # the same clock as Lisbon all year
        ("EET", "Europe/Helsinki", "Europe/Helsinki"),
        ("EET", "Europe/Berlin", "Europe/Athens"),
        ("EST", "Europe/Vienna", "America/New_York"),  # one region's own abbreviation: the clinic is no matter
    ],
)
def test_a_shared_clock_is_the_clinics_zone_when_it_keeps_that_clock(text: str, home: str, zone: str) -> None:
    assert place(text, home=home) == ZoneMatch(zone, "abbreviation")


@pytest.mark.parametrize("text", ["MEZ", "MESZ", "CET", "CEST"])
def test_a_zone_typed_as_mez_follows_summer_time(text: str) -> None:
    match = zone_from_text(text)
    assert match is not None and match.zone == "Europe/Berlin"
    # A 09:00 reminder stays at 09:00 local on both sides of the end of summer time (25 October 2026).
    rule = Rule(local_time=time(9, 0), tz=match.zone, start_date=date(2026, 10, 1))
    before, after = first_on_or_after(rule, date(2026, 10, 24)), first_on_or_after(rule, date(2026, 10, 26))
    assert before is not None and before.due_at == datetime(2026, 10, 24, 7, 0, tzinfo=UTC)
    assert after is not None and after.due_at == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
    assert zone_label(match.zone, "de") == "Berlin"
    assert [datetime(2026, m, 1, 12, tzinfo=ZoneInfo(match.zone)).tzname() for m in (1, 7)] == ["CET", "CEST"]


@pytest.mark.parametrize(("text", "outside"), [
    ("+15", True), ("UTC+15", True), ("utc-13", True), ("+5:15", True),
    ("+14", False), ("-12", False), ("+5:30", False), ("Berlin", False), ("15", False), ("", False),
])  # fmt: skip
def test_an_offset_no_clock_keeps_is_told_as_out_of_range(text: str, outside: bool) -> None:
    assert timezones.offset_out_of_range(text) is outside
    if outside:
        assert timezones.place(text) is None


def test_a_place_with_one_slip_of_the_keyboard_is_found_when_it_keeps_one_zone() -> None:
    """An outside test's "Berlni" was "not a place I know"; the patient confirms the zone, as for any place."""
    for typed, zone in (("Berlni", "Europe/Berlin"), ("Hambrug", "Europe/Berlin"), ("Lodnon", "Europe/London")):
        found = timezones.place(typed)
        assert isinstance(found, timezones.ZoneMatch) and found.zone == zone, (typed, found)
    for typed in ("xyzzy", "Berlinnnn city of nowhere", "Bxrlin"):  # no place; a changed letter is no slip
        assert timezones.place(typed) is None, typed
