"""Dates, times and shares on the staff pages as the reader's language writes them (rehab_bot.formats)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import aiohttp_jinja2

from rehab_bot import formats
from rehab_bot.caseload import RiskReason
from rehab_bot.clock import FakeClock
from rehab_bot.config import Config
from rehab_bot.i18n import translator
from rehab_bot.web.app import build_app
from rehab_bot.web.context import WebContext

EVENING = datetime(2026, 12, 1, 18, 12, 30, tzinfo=UTC)  # 19:12 in Berlin


def test_german_readers_get_day_month_year_with_dots_and_english_readers_the_month_as_a_word() -> None:
    assert formats.day(date(2026, 9, 14), "de") == "14.09.2026"
    assert formats.day(date(2026, 9, 14), "en") == "14 Sep 2026"
    assert formats.when(EVENING, "Europe/Berlin", "de") == "01.12.2026 19:12"
    assert formats.when(EVENING, "Europe/Berlin", "en") == "1 Dec 2026, 19:12"
    assert formats.when(EVENING, "UTC", "de", seconds=True) == "01.12.2026 18:12:30"
    assert formats.when(EVENING, "America/New_York", "en") == "1 Dec 2026, 13:12"  # the zone given, 24-hour clock


def test_a_moment_of_the_coming_days_puts_a_full_stop_after_the_day_in_german() -> None:
    monday = datetime(2026, 6, 15, 6, 0, tzinfo=UTC)  # 08:00 in Berlin
    assert formats.soon(monday, "Europe/Berlin", "de", weekday=True) == "Montag, 15. Juni, 08:00"
    assert formats.soon(monday, "Europe/Berlin", "de") == "15. Juni, 08:00"
    assert formats.soon(monday, "Europe/Berlin", "en", weekday=True) == "Monday, 15 June, 08:00"
    assert formats.soon(monday, "America/New_York", "en") == "15 June, 02:00"


def test_percentages_and_scores_as_the_language_writes_them() -> None:
    assert formats.percent(0.44, "de") == "44\u00a0%"  # a non-breaking space: "44 %" never splits
    assert formats.percent(0.44, "en") == "44%"
    assert formats.number(2.5, "de") == "2,5" and formats.number(2.5, "en") == "2.5"
    assert formats.number(3, "de") == "3" and formats.number(3, "de", fixed=True) == "3,0"


def test_a_risk_reason_writes_its_stored_figures_in_the_readers_language() -> None:
    share = RiskReason("adherence", (("share", "44%"),))
    assert share.text() == "adherence 44% over 7 days"  # the digest, English
    assert share.text(translator("de"), "de") == "Therapietreue 44\u00a0% über 7 Tage"
    pain = RiskReason("pain", (("before", "3.5"), ("recent", "5.0")))
    assert pain.text(translator("de"), "de").endswith("3,5 → 5,0")
    assert pain.text(translator("en"), "en") == pain.text() == "pain rising: mean 3.5 → 5.0"


def test_the_builder_preview_names_its_day_as_the_page_language_does() -> None:
    env = aiohttp_jinja2.get_env(build_app(WebContext(config=Config(), db=None, clock=FakeClock(EVENING))))  # type: ignore[arg-type]
    preview = SimpleNamespace(local_date=date(2026, 12, 2), slot="09:00", lang="de", text="…", cards=[])
    html = env.get_template("_preview.html").render(_=translator("de"), lang="de", preview=preview, problems=[])
    assert "02.12.2026 um 09:00" in html and "2026-12-02" not in html
