"""Tapered reminders end to end: with [delivery] taper_after_weeks = 2, a patient who kept up for two weeks
gets fewer reminders, as the programme allows, with one message saying so; a short week brings them back.

The built-in example's "weeks-7-12" phase has two sessions a day and
``tapered_sessions_per_day = 1``. The patient (session times 09:00 and 17:00)
kept up for two weeks: the 09:00 reminder goes out, followed by one message
from content (texts ``reminders_tapered``), and the 17:00 reminder does not
(re-planned from the next slot). The next morning brings the 09:00 reminder
only. The therapist's patient page shows the reminders as planned and
since when they are fewer. After a short week the reminders are back at
twice a day, with one message (``reminders_full``).

When the clinic switches tapering off later (``taper_after_weeks = 0``), a
patient still tapered gets the full reminders back before their next
reminder, with one neutral message (``reminders_plan_changed``: no word of
missed sessions), and the care team sees them as not tapered.

A tapered patient who moves into a phase that declares no tapering gets that
phase's full schedule from its first reminder, which announces the phase,
followed by one message saying the reminders follow the new phase's full
schedule (text ``reminders_phase_full``), in their language, once. Moving
into a phase that tapers too, they stay tapered and hear of the phase only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram
from sqlmodel import select
from webrig import WEB, client, dashboard_link, sign_in_link, web_url

from rehab_bot import programme
from rehab_bot.content import load_content
from rehab_bot.i18n import t
from rehab_bot.models import ExerciseSession, Patient

WED = date(2026, 6, 10)
CONTENT = load_content(None)


def berlin(day: date, hhmm: str, seconds: int = 1) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, seconds, tzinfo=UTC) - timedelta(hours=2)


@pytest.fixture
async def bot(bot_factory: Any) -> Any:
    return await bot_factory(
        delivery={"per_chat_interval": 0.02, "taper_after_weeks": 2, "taper_adherence": 0.8}, web=WEB
    )


@pytest.fixture
async def bot_off(bot_factory: Any) -> Any:
    """The clinic has switched tapering off since (the default, 0)."""
    return await bot_factory(delivery={"per_chat_interval": 0.02, "taper_after_weeks": 0}, web=WEB)


async def patient_page(bot: Any, patient_id: int) -> str:
    """The patient's page in the web app, as their therapist (staff 7711) sees it."""
    return await patient_page_of(bot, 7711, patient_id)


async def patient_page_of(bot: Any, staff_telegram_id: int, patient_id: int) -> str:
    """The patient's page in the web app, as the staff member sees it."""
    link = await dashboard_link(bot, staff_telegram_id)
    async with client() as browser:
        await sign_in_link(browser, link)
        async with browser.get(f"{web_url(bot)}/patients/{patient_id}") as page:
            assert page.status == 200
            return await page.text()


async def kept_up_two_weeks(bot: Any, staff_id: int, chat_id: int, *, tapered_since: datetime | None = None) -> Patient:
    """A patient of a therapist in week 8 (phase weeks-7-12, sessions at 09:00 and 17:00), every session of the
    last two weeks done, on Wednesday 07:00; recorded as tapered since `tapered_since` when given."""
    bot.clock.set(berlin(WED, "07:00"))
    doc = await make_staff(bot.db, telegram_id=staff_id, name="Dr Taper")
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=chat_id,
        programme_id="lumbar-example",
        surgery_date=WED - timedelta(days=50),
        phase_id="weeks-7-12",
        session_times="09:00,17:00",
        therapist_id=doc.id,
    )
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        p.tapered_since = tapered_since
        await programme.schedule_sessions(s, p, CONTENT, bot.clock.now())
        for back in range(1, 15):
            for slot in ("09:00", "17:00"):
                s.add(ExerciseSession(patient_id=p.id, local_date=WED - timedelta(days=back), slot=slot, status="done"))
        await s.commit()
    return patient


async def test_reminders_thin_out_after_weeks_kept_up_and_come_back(bot: Any, tg: FakeTelegram) -> None:
    patient = await kept_up_two_weeks(bot, 7711, 8711)
    user = tg.user(8711)
    page = await patient_page(bot, patient.id)
    assert "Session reminders: 09:00; 17:00</p>" in page and 'id="tapered"' not in page
    tapered = CONTENT.text("reminders_tapered", "en", weeks=2)
    bot.clock.set(berlin(WED, "09:00"))
    await bot.tick()
    got = await user.wait_for(count=2)
    assert got[0].text.startswith("Time for your exercise session (09:00).")
    assert got[1].text == tapered
    user.mark_seen()
    before = len(user.messages)
    bot.clock.set(berlin(WED, "17:00", 5))
    await bot.tick()
    await user.expect_silence(0.3)
    assert len(user.messages) == before, "the second session of the day is no longer reminded"
    page = await patient_page(bot, patient.id)
    assert "Session reminders: 09:00</p>" in page
    assert "Fewer reminders since 10 Jun 2026: kept up for weeks" in page
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None and p.tapered_since == berlin(WED, "09:00")
        assert p.session_times == "09:00,17:00"
        # Today's session was done, and the week before that falls short: three days missed.
        rows = (await s.exec(select(ExerciseSession).where(ExerciseSession.patient_id == p.id))).all()
        for row in rows:
            if row.local_date == WED:
                row.status = "done"
            elif row.local_date >= WED - timedelta(days=3):
                row.status = "missed"
            s.add(row)
        await s.commit()
    thu = WED + timedelta(days=1)
    bot.clock.set(berlin(thu, "09:00"))
    await bot.tick()
    got = await user.wait_for(count=2)
    assert got[0].text.startswith("Time for your exercise session (09:00).")
    assert got[1].text == CONTENT.text("reminders_full", "en", weeks=2)
    user.mark_seen()
    bot.clock.set(berlin(thu, "17:00", 5))
    await bot.tick()
    evening = await user.next_message()
    assert evening.text.startswith("Time for your exercise session (17:00).")
    await user.expect_silence(0.3)
    assert user.messages[-1] is evening, "one reminder, and no second message about the frequency"


async def test_tapering_switched_off_brings_the_full_reminders_back_once(bot_off: Any, tg: FakeTelegram) -> None:
    bot = bot_off
    # Tapered a week ago, while the clinic had taper_after_weeks = 2, and kept up since.
    patient = await kept_up_two_weeks(bot, 7712, 8712, tapered_since=berlin(WED - timedelta(days=7), "09:00"))
    user = tg.user(8712)
    page = await patient_page_of(bot, 7712, patient.id)
    assert "Session reminders: 09:00</p>" in page and 'id="tapered"' in page
    changed = CONTENT.text("reminders_plan_changed", "en")
    assert "missed" not in changed
    # Three days at 09:00 and 17:00: every session reminded again, the message about it once.
    for day in range(3):
        for hhmm in ("09:00", "17:00"):
            bot.clock.set(berlin(WED + timedelta(days=day), hhmm, 5))
            await bot.tick()
            await user.wait_for(count=1)
            await user.expect_silence(0.3)
            user.mark_seen()
    texts = [m.text or "" for m in user.messages]
    reminders = [t for t in texts if t.startswith("Time for your exercise session (")]
    assert [t[len("Time for your exercise session (") :][:5] for t in reminders] == ["09:00", "17:00"] * 3
    assert texts.count(changed) == 1
    assert texts.index(changed) == texts.index(reminders[0]) + 1, "beside the first reminder, before the 17:00"
    assert not any("missed" in t for t in texts if t != reminders[0])
    page = await patient_page_of(bot, 7712, patient.id)
    assert "Session reminders: 09:00; 17:00</p>" in page and 'id="tapered"' not in page
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None and p.tapered_since is None


# --- a tapered patient moves into the next phase ---------------------------------------------------

NEXT_WED = WED + timedelta(days=7)  # the clock starts on WED: the evening before this one lies ahead

# A programme whose first phase tapers (two a day, one when kept up) and whose second does not.
TAPER_THEN_FULL = """
[[programme]]
id = "taper-then-full"
surgery_types = ["lumbar"]
name.en = "Taper, then a full phase"
name.de = "Erst weniger, dann voll"

[[programme.phase]]
id = "steady"
from_day = 0
to_day = 49
title.en = "Steady"
title.de = "Gleichmäßig"
change_note.en = "Twice a day."
change_note.de = "Zweimal am Tag."
sessions_per_day = 2
default_times = ["09:00", "17:00"]
tapered_sessions_per_day = 1
[[programme.phase.session]]
exercises = ["walking", "heel-raises"]

[[programme.phase]]
id = "build-up"
from_day = 50
title.en = "Building up"
title.de = "Aufbau"
change_note.en = "New phase: bridges join your sessions."
change_note.de = "Neue Phase: Die Brücke kommt dazu."
sessions_per_day = 2
default_times = ["09:00", "17:00"]
[[programme.phase.session]]
exercises = ["walking", "heel-raises", "bridges"]
"""


async def tapered_before_a_new_phase(
    bot: Any, chat_id: int, programme_id: str, days_after_surgery: int, lang: str
) -> Patient:
    """A patient (sessions at 09:00 and 17:00) tapered a week ago, every session of the last two weeks
    done, whose next phase starts on Wednesday (day days_after_surgery); planned on Tuesday evening."""
    bot.clock.set(berlin(NEXT_WED - timedelta(days=1), "20:00"))
    surgery = NEXT_WED - timedelta(days=days_after_surgery)
    content = bot.services.content
    followed = content.programmes[programme_id]
    before = followed.phase_for(days_after_surgery - 1)
    assert before is not None and before.tapers
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=chat_id,
        programme_id=programme_id,
        surgery_date=surgery,
        phase_id=before.id,
        session_times="09:00,17:00",
        language=lang,
    )
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        p.tapered_since = berlin(NEXT_WED - timedelta(days=7), "09:00")
        rules = await programme.schedule_sessions(s, p, content, bot.clock.now())
        assert [r.local_time for r in rules] == ["09:00"], "tapered to one reminder a day"
        for back in range(1, 15):
            for slot in ("09:00", "17:00"):
                s.add(
                    ExerciseSession(
                        patient_id=p.id, local_date=NEXT_WED - timedelta(days=back), slot=slot, status="done"
                    )
                )
        await s.commit()
    return patient


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_a_new_phase_without_tapering_brings_the_full_reminders_back_with_one_message(
    bot_factory: Any, tg: FakeTelegram, backend: str, lang: str, tmp_path: Path
) -> None:
    (tmp_path / "programmes.toml").write_text(TAPER_THEN_FULL, encoding="utf-8")
    bot = await bot_factory(
        backend,
        content={"dir": tmp_path},
        delivery={"per_chat_interval": 0.02, "taper_after_weeks": 2, "taper_adherence": 0.8},
    )
    content = bot.services.content
    patient = await tapered_before_a_new_phase(bot, 8713, "taper-then-full", 50, lang)
    user = tg.user(8713)
    header = lambda slot: t(lang, "Time for your exercise session ({slot}).", slot=slot)  # noqa: E731
    back = content.text("reminders_phase_full", lang)
    # Wednesday, the first day of "build-up": its first reminder announces the phase, and one message
    # says the reminders follow its full schedule again.
    bot.clock.set(berlin(NEXT_WED, "09:00"))
    await bot.tick()
    got = await user.wait_for(count=2)
    assert got[0].text is not None and got[0].text.startswith(header("09:00"))
    assert "🆕 " + ("Aufbau" if lang == "de" else "Building up") in got[0].text
    assert got[1].text == back
    await user.expect_silence(0.3)
    user.mark_seen()
    # The 17:00 session is reminded again that day, and the day after both, with nothing more said.
    for day, hhmm in (
        (NEXT_WED, "17:00"),
        (NEXT_WED + timedelta(days=1), "09:00"),
        (NEXT_WED + timedelta(days=1), "17:00"),
    ):
        bot.clock.set(berlin(day, hhmm, 5))
        await bot.tick()
        reminder = await user.next_message()
        assert reminder.text is not None and reminder.text.startswith(header(hhmm))
        await user.expect_silence(0.3)
        user.mark_seen()
    texts = user.texts()
    assert len(texts) == 5 and texts.count(back) == 1
    others = [content.text(x, lang, weeks=2) for x in ("reminders_plan_changed", "reminders_full", "reminders_tapered")]
    assert not set(others) & set(texts), "one message about the reminders, and it is the new phase's"
    assert "missed" not in back and "ausgefallen" not in back and "verpasst" not in back
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None and p.tapered_since is None and p.phase_id == "build-up"
        assert [r.local_time for r in await programme.session_rules(s, p)] == ["09:00", "17:00"]


async def test_a_new_phase_that_tapers_too_keeps_the_patient_tapered_without_a_message(
    bot: Any, tg: FakeTelegram
) -> None:
    # The built-in example: "weeks-7-12" (one of two a day) is followed on day 84 by "after-week-12",
    # which tapers to Monday, Wednesday and Friday.
    patient = await tapered_before_a_new_phase(bot, 8714, "lumbar-example", 84, "en")
    user = tg.user(8714)
    bot.clock.set(berlin(NEXT_WED, "09:00"))
    await bot.tick()
    got = await user.next_message()
    assert got.text is not None and got.text.startswith("Time for your exercise session (09:00).")
    assert "🆕 After week 12: keep it up" in got.text
    await user.expect_silence(0.3)
    # Not on Wednesday at 17:00, nor on Thursday: on Friday at 09:00 again.
    for day, hhmm in (
        (NEXT_WED, "17:00"),
        (NEXT_WED + timedelta(days=1), "09:00"),
        (NEXT_WED + timedelta(days=1), "17:00"),
    ):
        bot.clock.set(berlin(day, hhmm, 5))
        await bot.tick()
        await user.expect_silence(0.3)
    bot.clock.set(berlin(NEXT_WED + timedelta(days=2), "09:00", 5))
    await bot.tick()
    friday = await user.next_message()
    assert friday.text is not None and friday.text.startswith("Time for your exercise session (09:00).")
    await user.expect_silence(0.3)
    assert len(user.texts()) == 2
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None and p.phase_id == "after-week-12"
        assert p.tapered_since == berlin(NEXT_WED - timedelta(days=7), "09:00"), "still tapered, since then"
        assert [(r.local_time, r.days) for r in await programme.session_rules(s, p)] == [("09:00", "024")]
