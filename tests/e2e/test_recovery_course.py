"""Recovery education end to end: a fortnight of lessons through the engine, teach-back, /learn, the caseload.

Two patients (English and German, lumbar surgery on Wednesday 10 June, day 0)
get the built-in course from the reminder engine with their first session
(08:00; the lesson comes a minute after its reminder). The clock moves a day at a time for 15 days; both pause on day 4
until day 6. Proven, in both languages: the right lesson on the right day and
at most one a day, nothing while paused, and on day 7 the lessons missed
during the pause offered with one button (not sent one by one) and opened
from it. The English patient answers the infection lesson wrongly twice (the
explanation each time, "Try again" in between), and the therapist then sees
the gap in understanding in /patients and /patient; the German patient
answers right. /learn lists the lessons so far and the next one. Every
delivery row of kind ``lesson`` is checked. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram, SentMessage
from sqlmodel import col, select

from rehab_bot import patient as patient_core
from rehab_bot.content import load_content, localize
from rehab_bot.education import schedule_for
from rehab_bot.i18n import t
from rehab_bot.models import Delivery, Kind, LessonProgress, Patient

# A long scenario: `pytest -m "not slow"` leaves it out; .ci/run runs it.
pytestmark = pytest.mark.slow

BERLIN = ZoneInfo("Europe/Berlin")
SURGERY = date(2026, 6, 10)  # day 0; the clock starts at 07:00 on this day (tests/factories.py T0)
CONTENT = load_content(None)
EN_TG, DE_TG, THERAPIST_TG = 8101, 8102, 8201
# Lesson ids on the days they arrive (days 4-6 are paused; days without a lesson send nothing).
EXPECTED = {
    1: "walking",
    2: "wound-care",
    3: "infection-signs",
    7: "when-to-call",
    10: "walking-more",
    14: "limits-weeks-3-6",
}
MISSED = ["limits-weeks-1-2", "pain-medicines", "sleep"]  # due on days 4, 5 and 6


def berlin(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=BERLIN).astimezone(UTC)


def lesson(lesson_id: str) -> Any:
    assert CONTENT.course is not None
    return next(x for x in CONTENT.course.lessons if x.id == lesson_id)


def title_line(lesson_id: str, lang: str) -> str:
    found = lesson(lesson_id)
    mark = "🚨" if found.triage in ("emergency", "critical") else "⚠️" if found.safety else "📖"
    return f"{mark} {localize(found.title, lang)}"


@pytest.fixture
async def bot(bot_factory: Any, backend: str) -> Any:
    return await bot_factory(backend, delivery={"per_chat_interval": 0.02})


async def enrolled(bot: Any, telegram_id: int, lang: str, therapist_id: int | None, alias: str) -> Patient:
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=telegram_id,
        alias=alias,
        language=lang,
        surgery_date=SURGERY,
        programme_id="lumbar-example",
        session_times="08:00",
        therapist_id=therapist_id,
        consent_at=bot.clock.now(),
    )
    async with bot.db.session() as s:
        row = await s.get(Patient, patient.id)
        assert row is not None
        rule = await schedule_for(s, row, bot.services.content, bot.clock.now())
        await s.commit()
    assert rule is not None and rule.local_time == "08:01", "lessons come with the first session, just after it"
    return patient


async def pause_both(bot: Any, ids: list[int], until: date) -> None:
    async with bot.db.session() as s:
        for pid in ids:
            row = await s.get(Patient, pid)
            assert row is not None
            await patient_core.pause(s, row, until, bot.clock.now())
        await s.commit()


async def press(user: Any, label: str, message: SentMessage, *, events: int = 1) -> list[SentMessage]:
    user.mark_seen()
    await user.press(label, message)
    await user.wait_for_answer()
    return await user.wait_for(count=events) if events else []


async def test_a_fortnight_of_lessons_with_a_pause_teach_back_learn_and_the_gap(
    bot: Any, tg: FakeTelegram, backend: str
) -> None:
    therapist = await make_staff(bot.db, telegram_id=THERAPIST_TG, name="Dr Lehr")
    en_patient = await enrolled(bot, EN_TG, "en", therapist.id, "EDU-EN")
    de_patient = await enrolled(bot, DE_TG, "de", therapist.id, "EDU-DE")
    assert en_patient.id is not None and de_patient.id is not None
    en, de = tg.user(EN_TG, language_code="en"), tg.user(DE_TG, language_code="de")
    doc = tg.user(THERAPIST_TG)
    users = {"en": en, "de": de}
    received: dict[str, dict[int, list[SentMessage]]] = {"en": {}, "de": {}}
    taken = {"en": 0, "de": 0}

    for day in range(15):
        local = SURGERY + timedelta(days=day)
        if day == 4:
            bot.clock.set(berlin(local, "07:30"))
            await pause_both(bot, [en_patient.id, de_patient.id], SURGERY + timedelta(days=6))
        bot.clock.set(berlin(local, "08:01") + timedelta(seconds=1))
        await bot.tick()
        for lang, user in users.items():
            fresh = user.messages[taken[lang] :]
            taken[lang] = len(user.messages)
            received[lang][day] = fresh
            wanted = EXPECTED.get(day)
            if wanted is None:
                assert fresh == [], (day, lang, [m.text for m in fresh])
                continue
            [message] = fresh  # at most one lesson a day
            text = message.text or ""
            assert text.startswith(title_line(wanted, lang) + "\n\n" + localize(lesson(wanted).text, lang)), (day, lang)
            question = lesson(wanted).question
            if question is not None:
                assert "❓ " + localize(question.text, lang) in text
                labels = [localize(a.text, lang) for a in question.answers]
                assert message.button_labels[: len(labels)] == labels
            if lesson(wanted).triage is not None:
                assert bot.config.clinic.text("emergency_text", lang) in text, (
                    "red-flag lessons: the clinic's text, in their language"
                )
            offer = t(lang, "📚 Earlier lessons")
            if day == 7:
                assert (
                    t(
                        lang,
                        "📚 Earlier lessons you have not seen yet: {n}. You can read them now or any time with /learn.",
                        n=3,
                    )
                    in text
                )
                assert message.button_labels[-1] == offer
            else:
                assert offer not in message.button_labels
            assert all(len(d.encode()) <= 64 for d in message.callback_data)

        # Day 3: teach-back. English: wrong, the explanation, try again, wrong again. German: right.
        if day == 3:
            infection = lesson("infection-signs")
            message = received["en"][3][0]
            [edited] = await press(en, "Mild soreness around the wound", message)
            assert edited.message_id == message.message_id
            assert "Your answer: Mild soreness around the wound" in (edited.text or "")
            assert "❌ Not quite. " + infection.question.explanation["en"] in (edited.text or "")
            assert edited.button_labels == ["Try again"]
            assert en.callback_answers[-1].text == "❌ Not quite."
            [again] = await press(en, "Try again", edited)
            assert again.button_labels == [a.text["en"] for a in infection.question.answers]
            [edited] = await press(en, "Slight bruising near the wound", again)
            assert "❌ Not quite." in (edited.text or "") and edited.button_labels == ["Try again"]
            # A forged answer naming another lesson, or not on the message, changes nothing.
            await en.press_data("le:a:walking:0", edited.message_id)
            assert (await en.wait_for_answer()).text == "This button is no longer active."

            message = received["de"][3][0]
            [edited] = await press(de, "Fieber über 38 °C oder Schüttelfrost", message)
            assert "✅ Richtig. " + infection.question.explanation["de"] in (edited.text or "")
            assert not edited.has_inline_keyboard
            taken["en"], taken["de"] = len(en.messages), len(de.messages)

            # The therapist sees the gap in the caseload.
            doc.mark_seen()
            await doc.send("/patients")
            [listing] = await doc.wait_for(lambda m: "EDU-EN" in (m.text or ""))
            assert "gap in understanding: infection-signs" in (listing.text or "")
            en_line = (listing.text or "").split("EDU-EN", 1)[1]
            assert "gap in understanding" not in (listing.text or "").split("EDU-EN", 1)[0], "not for EDU-DE"
            assert "infection-signs" in en_line
            await doc.send("/patient EDU-EN")
            [detail] = await doc.wait_for(lambda m: m.photo is None and (m.text or "").startswith("EDU-EN —"))
            text = detail.text or ""
            assert "Lessons: 3 delivered, 0 offered as missed, 1 read, 0 of 3 questions understood" in text
            assert "Gap in understanding (2+ wrong answers on safety lessons): infection-signs" in text
            assert "infection-signs: delivered, read, not understood (2 wrong)" in text

        # Day 7: the lessons missed during the pause, offered with one button, opened one by one.
        if day == 7:
            for lang, user in users.items():
                message = received[lang][7][0]
                [listing] = await press(user, t(lang, "📚 Earlier lessons"), message)
                assert listing.text == t(lang, "📚 Earlier lessons: tap one to read it.")
                assert listing.button_labels == [localize(lesson(x).title, lang) for x in MISSED]
                [opened] = await press(user, localize(lesson("sleep").title, lang), listing)
                assert opened.text == title_line("sleep", lang) + "\n\n" + localize(lesson("sleep").text, lang)
                taken[lang] = len(user.messages)

    # /learn on day 14: the lessons so far (the missed ones too), rereadable, and what comes next.
    for lang, user in users.items():
        user.mark_seen()
        await user.send("/learn")
        [learn] = await user.wait_for()
        lines = (learn.text or "").split("\n")
        so_far = [
            "walking",
            "wound-care",
            "infection-signs",
            *MISSED,
            "when-to-call",
            "walking-more",
            "limits-weeks-3-6",
        ]
        assert lines[0] == t(lang, "📚 Your recovery lessons")
        assert [line[2:] for line in lines[1 : 1 + len(so_far)]] == [localize(lesson(x).title, lang) for x in so_far]
        assert learn.button_labels == [localize(lesson(x).title, lang) for x in so_far]
        driving = t(lang, "Next: {title} ({day})", title=localize(lesson("driving").title, lang), day="")
        assert driving.split("(")[0] in learn.text
        marks = dict(zip(so_far, (line[0] for line in lines[1:]), strict=False))
        assert marks["sleep"] == "✓" and marks["pain-medicines"] == "•", "opened vs only offered"
        assert marks["infection-signs"] == ("✅" if lang == "de" else "✓")
        [reread] = await press(user, localize(lesson("wound-care").title, lang), learn)
        assert reread.text.startswith(title_line("wound-care", lang))
        assert reread.button_labels == [localize(a.text, lang) for a in lesson("wound-care").question.answers]

    # The engine's record: one lesson delivery a day; skipped while paused; nothing to send on other days.
    async with bot.db.session() as s:
        rows = (
            await s.exec(
                select(Delivery)
                .where(col(Delivery.kind) == Kind.LESSON.value, col(Delivery.patient_id) == en_patient.id)
                .order_by(col(Delivery.local_date))
            )
        ).all()
        progress = (
            await s.exec(
                select(LessonProgress)
                .where(col(LessonProgress.patient_id) == de_patient.id)
                .order_by(col(LessonProgress.id))
            )
        ).all()
    statuses = {(r.local_date - SURGERY).days: r.status for r in rows}
    assert statuses == {d: "skipped" if d in (4, 5, 6) else "sent" if d in EXPECTED else "failed" for d in range(15)}
    assert {p.lesson_id: (p.delivered_at is not None, p.offered_at is not None) for p in progress} == {
        **{x: (True, False) for x in EXPECTED.values()},
        **{x: (False, True) for x in MISSED},
    }
    assert [p.lesson_id for p in progress if p.understood] == ["infection-signs"]
