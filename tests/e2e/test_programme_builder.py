"""The programme builder's core end to end: a plan saved for a patient reaches their chat.

The real bot on the fake Bot API: a therapist adds an exercise with a photo to
the clinic's library and saves a plan for a patient through the core (as the
web pages do); the patient gets one message saying what changed, then the next
reminder is exactly the preview, with the new exercises and dose and the
photo, uploaded the first time and sent by file_id the next day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from factories import make_patient, make_staff, photo
from rig.telegram_server import FakeTelegram, FakeUser, SentMessage
from sqlmodel import col, select

from rehab_bot import library, plan, programme
from rehab_bot.models import MediaCache, Patient

WED = date(2026, 6, 10)  # the clock starts at 07:00 on this Wednesday in Berlin
JPEG = photo("JPEG")


def berlin(day: date, hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, 1, tzinfo=UTC) - timedelta(hours=2)


async def reminder_messages(user: FakeUser) -> list[SentMessage]:
    """The reminder as the patient sees it: a photo with the text as caption, or the photo then the text."""
    found = [await user.next_message()]
    while not found[-1].has_inline_keyboard:
        found.append(await user.next_message())
    return found


async def test_a_saved_plan_reaches_the_patient_with_its_exercises_dose_and_photo(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path
) -> None:
    bot = await bot_factory(delivery={"per_chat_interval": 0.02})
    content, now = bot.services.content, bot.clock.now()
    doc = await make_staff(bot.db)
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=7301,
        language="en",
        programme_id="lumbar-example",
        surgery_date=WED - timedelta(days=5),
        therapist_id=doc.id,
        session_times="09:00,13:00,18:00",
    )
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        await programme.on_enrolled(s, p, content, now)
        row = await library.create(
            s,
            doc,
            {
                "name": {"en": "Wall slides", "de": "Wandgleiten"},
                "instructions": {
                    "en": "Back to the wall, slide down a little.",
                    "de": "Rücken an die Wand, etwas hinab.",
                },
            },
            now,
        )
        await s.flush()
        slides = library.clinic_id(row)
        await library.attach_media(s, doc, slides, JPEG, "slides.jpg", tmp_path / "media", now)
        await s.commit()

    raw = plan.from_programme(content.programmes["lumbar-example"], content.exercises).model_dump()
    first = raw["phases"][0]
    first["sessions"] = [
        {
            "items": [
                {
                    "exercise": slides,
                    "sets": 2,
                    "reps": 12,
                    "hold_seconds": 4,
                    "note": {"en": "Only as far as is comfortable.", "de": "Nur so weit, wie es angenehm ist."},
                },
                {"exercise": "quad-sets", "sets": 3, "reps": 15, "hold_seconds": 5},
            ]
        }
    ]
    delivery = bot.config.delivery
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        preview = await programme.preview(s, content, p, now, raw)
        await programme.save_own_plan(
            s, doc, p, raw, content, now, quiet=(delivery.quiet_hours_start, delivery.quiet_hours_end)
        )
        await s.commit()
    assert preview is not None and (preview.local_date, preview.slot) == (WED, "09:00")

    user = tg.user(7301)
    await bot.tick()
    [notice] = await user.wait_for()
    assert notice.text.startswith("🆕 Your care team has updated your exercise programme.")
    assert "New:\n• Wall slides (2 × 12 repetitions, hold 4 s)" in notice.text
    assert "New amount:\n• Thigh tightening (3 × 15 repetitions, hold 5 s)" in notice.text
    assert "No longer in your programme:\n• Walking" in notice.text
    await user.expect_silence(0.2)  # one message, nothing else

    bot.clock.set(berlin(WED, "09:00"))
    await bot.tick()
    messages = await reminder_messages(user)
    photo = messages[0].photo
    sent = row_media(tmp_path).read_bytes()  # the upload as stored: its pixels only
    assert photo is not None and photo.data == sent, "the session's first exercise with media comes with the reminder"
    text = messages[-1].text or ""
    assert text.startswith(preview.text + "\n\n"), "the preview is the reminder, then a line of encouragement"
    assert "2 exercises, about" in text
    [upload] = tg.calls("sendPhoto")
    assert "photo" in upload.files, "uploaded the first time"
    async with bot.db.session() as s:
        cached = (await s.exec(select(MediaCache).where(col(MediaCache.source) == str(row_media(tmp_path))))).one()
    assert cached.file_id == photo.file_id

    # ▶ Start: the exercises one by one, with the plan's dose and note, exactly as the preview showed them.
    user.mark_seen()
    await user.press("▶ Start", messages[-1])
    await user.wait_for_answer()
    await user.wait_for()  # the reminder loses its Start button
    user.mark_seen()
    await bot.tick()
    slides, thigh, last = await user.wait_for(count=3, include_edits=False)
    assert [slides.text, thigh.text] == preview.cards
    assert slides.text.startswith("1/2 · Wall slides\n2 × 12 repetitions, hold 4 s")
    assert "📝 Only as far as is comfortable." in (slides.text or "")
    assert thigh.text.startswith("2/2 · Thigh tightening\n3 × 15 repetitions, hold 5 s")
    assert last.text == "That was your session. How did it go?"
    resend = tg.calls("sendPhoto")[-1]
    assert resend.files == {} and resend.params["photo"] == cached.file_id, "then sent by file_id"
    assert slides.photo is not None and slides.photo.file_id == cached.file_id


def row_media(tmp_path: Path) -> Path:
    """The stored upload (one file in the media folder, under a random name)."""
    [stored] = list((tmp_path / "media").iterdir())
    return stored.resolve()
