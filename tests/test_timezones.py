"""Finding a timezone offline from a typed city, an offset or a shared location."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rehab_bot.timezones import (
    COMMON_ZONES,
    cities,
    is_zone,
    local_time,
    zone_from_location,
    zone_from_offset,
    zone_from_text,
    zone_label,
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
        ("MEZ", "CET", "abbreviation"),
        ("CEST", "CET", "abbreviation"),
        ("MST", "America/Phoenix", "abbreviation"),
    ],
)
def test_typed_zones(text: str, zone: str, how: str) -> None:
    match = zone_from_text(text)
    assert match is not None and (match.zone, match.how) == (zone, how)


@pytest.mark.parametrize("text", ["", "xyzzy", "08:00", "2", "-13", "UTC+15", "+5:15", "Atlantis", "x" * 100])
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
