"""The exercise library and the programme builder in Chromium, down to the patient's chat on the fake Bot API.

- building a programme for a patient (a dose changed, an exercise added with htmx,
  previewed, saved) after which the patient's next reminder shows the new exercises and dose;
- uploading an exercise photo that then arrives with the reminder;
- a therapist refused a colleague's patient's edit;
- axe finding no serious violations on the library, the exercise form and the builder.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from factories import has_exif, make_patient, make_staff, photo
from rig.telegram_server import FakeTelegram, FakeUser, SentMessage
from sqlmodel import col, select
from webrig import WEB, browser_sign_in, web_url

from rehab_bot import programme
from rehab_bot.models import AuditLog, Patient, ProgrammePlan
from tests.browser.axe import serious

WED = date(2026, 6, 10)  # the clock starts at 07:00 on this Wednesday in Berlin
JPEG = photo("JPEG", gps=True)


def berlin(day: date, hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, 1, tzinfo=UTC) - timedelta(hours=2)


async def started(bot_factory: Any, tmp_path: Path) -> Any:
    return await bot_factory(web=WEB, delivery={"per_chat_interval": 0.02}, library={"media_dir": tmp_path / "media"})


async def enrolled(bot: Any, therapist_id: int | None, telegram_id: int = 7101) -> Patient:
    """A patient five days after lumbar surgery: three sessions a day at 09:00, 13:00, 18:00."""
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=telegram_id,
        alias="LWS-0101",
        programme_id="lumbar-example",
        surgery_date=WED - timedelta(days=5),
        therapist_id=therapist_id,
    )
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        await programme.on_enrolled(s, p, bot.services.content, bot.clock.now())
        await s.commit()
    return patient


async def reminder(user: FakeUser) -> list[SentMessage]:
    """The reminder as the patient sees it: up to the message with the buttons."""
    found = [await user.next_message()]
    while not found[-1].has_inline_keyboard:
        found.append(await user.next_message())
    return found


async def add_exercise(page: Any, session: str, exercise_label: str, **dose: int) -> None:
    """Add an exercise row to a session with htmx, choose the exercise and set its dose."""
    rows = page.locator(f"{session} .item")
    before = await rows.count()
    await page.locator(session).get_by_role("button", name="Add exercise").click()
    await page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length === n", arg=[f"{session} .item", before + 1]
    )
    row = page.locator(f"{session} .item").nth(before)
    await row.get_by_label("Exercise").select_option(label=exercise_label)
    labels = {"sets": "Sets", "reps": "Repetitions", "hold_seconds": "Hold (seconds)"}
    for key, value in dose.items():
        await row.get_by_label(labels[key]).fill(str(value))


async def test_a_programme_built_in_the_browser_reaches_the_patients_next_reminder(
    bot_factory: Any, tg: FakeTelegram, page: Any, tmp_path: Path
) -> None:
    bot = await started(bot_factory, tmp_path)
    doc = await make_staff(bot.db, telegram_id=7002, name="Dr Ben")
    patient = await enrolled(bot, doc.id)
    await browser_sign_in(page, bot, 7002)
    await page.goto(f"{web_url(bot)}/patients/{patient.id}/programme")
    assert await serious(page) == []

    first = "[data-phase='0'] [data-session='0']"
    thigh = page.locator(f"{first} .item").nth(2)  # walking, ankle pumps, thigh tightening, ...
    assert await thigh.get_by_label("Exercise").input_value() == "quad-sets"
    await thigh.get_by_label("Sets").fill("3")
    await thigh.get_by_label("Repetitions").fill("15")
    await thigh.get_by_label("Note for the patient (English)").fill("Slowly, and breathe.")
    await thigh.get_by_label("Note for the patient (German)").fill("Langsam, und atmen.")
    await add_exercise(page, first, "Bridging", sets=2, reps=5)
    assert await page.locator(f"{first} .item").count() == 7
    assert await thigh.get_by_label("Sets").input_value() == "3", "the rows keep what was typed"

    await page.get_by_role("button", name="Preview").click()
    preview = page.locator("#preview-text")
    await preview.wait_for()
    shown = await preview.inner_text()
    assert shown.startswith("Time for your exercise session (09:00).") and "7 exercises, about" in shown
    cards = await page.locator("#preview-cards pre").all_inner_texts()
    assert len(cards) == 7
    assert (
        cards[2].startswith("3/7 · Thigh tightening\n3 × 15 repetitions, hold 5 s")
        and "📝 Slowly, and breathe." in cards[2]
    )
    assert cards[6].startswith("7/7 · Bridging\n2 × 5 repetitions")
    assert await serious(page) == []

    await page.get_by_role("button", name="Save as the patient's plan").click()
    await page.wait_for_url("**/programme?saved=1")
    saved = await page.get_by_role("status").inner_text()
    assert "from the next session" in saved
    # programme.fit_times: the patient's own times are kept; defaults only fill sessions they have no time for
    assert "They keep their own session times" in saved and "no time for" in saved
    assert page.console_errors == []

    user = tg.user(7101)
    await bot.tick()
    [notice] = await user.wait_for()
    assert "New:\n• Bridging (2 × 5 repetitions)" in notice.text
    assert "New amount:\n• Thigh tightening (3 × 15 repetitions, hold 5 s)" in notice.text
    bot.clock.set(berlin(WED, "09:00"))
    await bot.tick()
    [sent] = await reminder(user)
    assert sent.text.startswith(shown + "\n\n"), "the preview is the reminder (then a line of encouragement)"
    # ▶ Start: the exercises with the new dose, as previewed.
    user.mark_seen()
    await user.press("▶ Start", sent)
    await user.wait_for_answer()
    await user.wait_for()  # the reminder loses its Start button
    user.mark_seen()
    await bot.tick()
    played = await user.wait_for(lambda m: "/7 · " in (m.text or ""), count=7, include_edits=False)
    assert [m.text for m in played] == cards
    async with bot.db.session() as s:
        rows = (
            await s.exec(select(AuditLog.action, AuditLog.actor).where(col(AuditLog.action) == "change.plan"))
        ).all()
    assert [tuple(r) for r in rows] == [("change.plan", "web:7002")]


async def test_an_uploaded_exercise_photo_arrives_with_the_reminder(
    bot_factory: Any, tg: FakeTelegram, page: Any, tmp_path: Path
) -> None:
    bot = await started(bot_factory, tmp_path)
    doc = await make_staff(bot.db, telegram_id=7002, name="Dr Ben")
    patient = await enrolled(bot, doc.id)
    await browser_sign_in(page, bot, 7002)
    await page.goto(f"{web_url(bot)}/exercises")
    assert await serious(page) == []
    await page.get_by_role("button", name="New exercise").click()
    await page.wait_for_url("**/exercises/new")
    assert await serious(page) == []
    await page.locator("#name-en").fill("Wall slides")
    await page.locator("#name-de").fill("Wandgleiten")
    await page.locator("#instructions-en").fill("Back to the wall, slide down a little.")
    await page.locator("#instructions-de").fill("Rücken an die Wand, etwas hinabgleiten.")
    await page.get_by_label("Repetitions").fill("8")
    await page.get_by_label("Photo, GIF or video (JPEG, PNG, GIF, MP4)").set_input_files(
        files=[{"name": "slides.jpg", "mimeType": "image/jpeg", "buffer": JPEG}]
    )
    await page.get_by_role("button", name="Save exercise").click()
    await page.wait_for_url("**/exercises/clinic-1?saved=1")
    assert "Now: Photo." in await page.locator("#media-now").inner_text()
    [stored] = list((tmp_path / "media").iterdir())
    assert stored.stat().st_mode & 0o777 == 0o600
    assert has_exif(JPEG) and not has_exif(stored.read_bytes()), "the photo's GPS position is not kept"

    # A file that only claims to be a photo is refused, and the photo stays.
    await page.get_by_label("Photo, GIF or video (JPEG, PNG, GIF, MP4)").set_input_files(
        files=[{"name": "fake.jpg", "mimeType": "image/jpeg", "buffer": b"<svg onload=alert(1)>"}]
    )
    await page.get_by_role("button", name="Save exercise").click()
    await page.get_by_role("alert").wait_for()
    assert "Only photos (JPEG, PNG), GIFs and MP4 videos" in await page.get_by_role("alert").inner_text()
    assert len(list((tmp_path / "media").iterdir())) == 1

    await page.goto(f"{web_url(bot)}/patients/{patient.id}/programme")
    await add_exercise(page, "[data-phase='0'] [data-session='0']", "Wall slides", sets=1, reps=8)
    await page.get_by_role("button", name="Save as the patient's plan").click()
    await page.wait_for_url("**/programme?saved=1")

    user = tg.user(7101)
    await bot.tick()
    await user.wait_for()  # the change message
    bot.clock.set(berlin(WED, "09:00"))
    await bot.tick()
    messages = await reminder(user)
    assert messages[0].photo is not None and messages[0].photo.data == stored.read_bytes()
    assert "7 exercises, about" in (messages[-1].text or "")
    [upload] = tg.calls("sendPhoto")
    assert "photo" in upload.files
    await user.press("✅ Done", messages[-1])
    await user.wait_for_answer()
    await user.wait_for(count=2)  # the reminder edited, and the question after Done
    user.mark_seen()
    bot.clock.set(berlin(WED + timedelta(days=1), "09:00"))
    await bot.tick()
    again = await reminder(user)
    resend = tg.calls("sendPhoto")[-1]
    assert resend.files == {} and resend.params["photo"] == messages[0].photo.file_id, "then by file_id"
    assert again[0].photo is not None


async def test_a_therapist_may_look_at_but_not_change_a_colleagues_patients_plan(
    bot_factory: Any, tg: FakeTelegram, page: Any, phone_page: Any, tmp_path: Path
) -> None:
    bot = await started(bot_factory, tmp_path)
    doc = await make_staff(bot.db, telegram_id=7002, name="Dr Ben")
    await make_staff(bot.db, telegram_id=7003, name="Dr Cleo")
    patient = await enrolled(bot, doc.id)
    await browser_sign_in(phone_page, bot, 7003)
    await phone_page.goto(f"{web_url(bot)}/patients/{patient.id}/programme")
    assert await phone_page.get_by_role("button", name="Save as the patient's plan").count() == 0
    assert "a colleague's patient" in await phone_page.locator("#builder").inner_text()
    assert await serious(phone_page) == []

    token = await phone_page.locator("meta[name=csrf-token]").get_attribute("content")
    form = {
        "csrf_token": token,
        "based_on": "lumbar-example",
        "phases-0-id": "all",
        "phases-0-from_day": "0",
        "phases-0-title-en": "All",
        "phases-0-title-de": "Alles",
        "phases-0-change_note-en": "x",
        "phases-0-change_note-de": "x",
        "phases-0-sessions_per_day": "1",
        "phases-0-default_times": "09:00",
        "phases-0-sessions-0-items-0-exercise": "walking",
    }
    response = await phone_page.request.post(f"{web_url(bot)}/patients/{patient.id}/programme/save", form=form)
    assert response.status == 403
    async with bot.db.session() as s:
        assert (await s.exec(select(ProgrammePlan))).all() == []
        assert (await s.exec(select(AuditLog).where(col(AuditLog.action) == "change.plan"))).all() == []
    # The same form from the patient's own therapist is saved.
    await browser_sign_in(page, bot, 7002)
    token = await page.locator("meta[name=csrf-token]").get_attribute("content")
    response = await page.request.post(
        f"{web_url(bot)}/patients/{patient.id}/programme/save", form={**form, "csrf_token": token}
    )
    assert response.status == 200 and response.url.endswith("?saved=1")


async def test_a_german_therapist_reads_where_the_plan_is_wrong_in_german(
    bot_factory: Any, page: Any, tmp_path: Path
) -> None:
    bot = await started(bot_factory, tmp_path)
    doc = await make_staff(bot.db, telegram_id=7004, name="Dr Dora", language="de")
    patient = await enrolled(bot, doc.id)
    await browser_sign_in(page, bot, 7004)
    await page.goto(f"{web_url(bot)}/patients/{patient.id}/programme")
    second = page.locator("[data-phase='1']")
    await second.get_by_label("Ab Tag nach der Operation").fill("20")  # days 14-19 in no phase
    await page.get_by_role("button", name="Als Plan des Patienten speichern").click()
    problems = page.locator("#problems")
    await problems.wait_for()
    assert await problems.locator("li").all_inner_texts() == [
        "Phase 2 „Woche 3-6: Übungen im Stehen“: Ab Tag nach der Operation: die Tage 14-19 liegen in keiner Phase"
        " (zwischen Phase 'weeks-1-2' und Phase 'weeks-3-6')"
    ]
    assert (await problems.inner_text()).startswith("Der Plan wurde nicht gespeichert:")
    assert await second.get_by_label("Ab Tag nach der Operation").input_value() == "20", "what was typed stays"
    assert await serious(page) == []
    # A phase whose end comes before its start: said at its To-day field, in German.
    await second.get_by_label("Ab Tag nach der Operation").fill("14")
    await second.get_by_label("Bis Tag (leer: ohne Ende)").fill("10")
    await page.get_by_role("button", name="Als Plan des Patienten speichern").click()
    await page.locator("#problems li", has_text="endet an Tag 10").wait_for()
    assert await page.locator("#problems li").all_inner_texts() == [
        "Phase 2 „Woche 3-6: Übungen im Stehen“: Bis Tag (leer: ohne Ende): endet an Tag 10, bevor sie beginnt (Tag 14)"
    ]
    async with bot.db.session() as s:
        assert (await s.exec(select(ProgrammePlan))).all() == [], "nothing is saved"


async def test_the_library_pages_at_phone_width_in_german(bot_factory: Any, phone_page: Any, tmp_path: Path) -> None:
    bot = await started(bot_factory, tmp_path)
    await make_staff(bot.db, telegram_id=7004, name="Dr Dora", language="de")
    await browser_sign_in(phone_page, bot, 7004)
    await phone_page.goto(f"{web_url(bot)}/exercises")
    assert await phone_page.locator("h1").inner_text() == "Übungsbibliothek"
    assert await phone_page.locator("tr[data-exercise='quad-sets'] td").first.inner_text() == "Oberschenkel anspannen"
    assert await serious(phone_page) == []
    await phone_page.goto(f"{web_url(bot)}/exercises/new")
    await phone_page.get_by_role("button", name="Übung speichern").click()  # the browser asks for the names first
    assert phone_page.url.endswith("/exercises/new")
    assert await serious(phone_page) == []
    assert phone_page.console_errors == []


async def test_start_asks_before_it_drops_unsaved_changes_and_leaving_warns_until_saved(
    bot_factory: Any, tg: FakeTelegram, page: Any, tmp_path: Path
) -> None:
    bot = await started(bot_factory, tmp_path)
    doc = await make_staff(bot.db, telegram_id=7002, name="Dr Ben")
    patient = await enrolled(bot, doc.id)
    await browser_sign_in(page, bot, 7002)
    builder = f"{web_url(bot)}/patients/{patient.id}/programme"
    dialogs: list[tuple[str, str]] = []
    answer = {"confirm": False}

    async def on_dialog(dialog: Any) -> None:
        dialogs.append((dialog.type, dialog.message))
        await (dialog.accept() if dialog.type == "beforeunload" or answer["confirm"] else dialog.dismiss())

    page.on("dialog", on_dialog)
    sets = page.locator("[data-phase='0'] [data-session='0'] .item").nth(2).get_by_label("Sets")

    # Nothing changed: Start goes straight to the chosen starting point, and leaving asks nothing.
    await page.goto(builder)
    await page.get_by_label("Start from").select_option(value="empty")
    await page.get_by_role("button", name="Start", exact=True).click()
    await page.wait_for_url("**/programme?start=empty")
    await page.goto(f"{web_url(bot)}/caseload")
    assert dialogs == []

    # A changed dose: Start asks, and Cancel keeps the page and what was typed.
    await page.goto(builder)
    await sets.click()
    await sets.fill("4")
    await page.get_by_label("Start from").select_option(value="empty")
    await page.get_by_role("button", name="Start", exact=True).click()
    await page.wait_for_function("() => true")
    assert dialogs == [
        ("confirm", "Start again from the chosen programme? Your changes below are not saved and will be lost.")
    ]
    assert page.url == builder and await sets.input_value() == "4"
    # OK starts afresh, asked once (not a second time by the browser's leave-page question).
    answer["confirm"] = True
    await page.get_by_role("button", name="Start", exact=True).click()
    await page.wait_for_url("**/programme?start=empty")
    assert [kind for kind, _ in dialogs] == ["confirm", "confirm"]

    # Leaving with unsaved changes: the browser asks (beforeunload); rows added with htmx count too.
    dialogs.clear()
    await page.goto(builder)
    await add_exercise(page, "[data-phase='0'] [data-session='0']", "Bridging", sets=2, reps=5)
    await page.get_by_role("link", name="Caseload").click()
    await page.wait_for_url("**/caseload")
    assert [kind for kind, _ in dialogs] == ["beforeunload"]

    # Saved: leaving asks nothing.
    dialogs.clear()
    await page.goto(builder)
    await sets.click()
    await sets.fill("4")
    await page.get_by_role("button", name="Save as the patient's plan").click()
    await page.wait_for_url("**/programme?saved=1")
    await page.get_by_role("link", name="Caseload").click()
    await page.wait_for_url("**/caseload")
    assert dialogs == []
    assert page.console_errors == []


async def test_a_draft_saved_after_the_session_ended_is_filled_in_again_after_signing_in(
    bot_factory: Any, tg: FakeTelegram, page: Any, tmp_path: Path
) -> None:
    bot = await bot_factory(
        web={**WEB, "idle_minutes": 30}, delivery={"per_chat_interval": 0.02}, library={"media_dir": tmp_path}
    )
    doc = await make_staff(bot.db, telegram_id=7002, name="Dr Ben")
    await make_staff(bot.db, telegram_id=7003, name="Dr Cleo", role="admin")
    patient = await enrolled(bot, doc.id)
    builder = f"{web_url(bot)}/patients/{patient.id}/programme"
    await browser_sign_in(page, bot, 7002)
    await page.goto(builder)
    page.on("dialog", lambda dialog: dialog.accept())
    thigh = page.locator("[data-phase='0'] [data-session='0'] .item").nth(2)
    await thigh.get_by_label("Sets").fill("4")
    await thigh.get_by_label("Note for the patient (English)").fill("Slowly, and breathe.")
    await thigh.get_by_label("Note for the patient (German)").fill("Langsam, und atmen.")

    bot.clock.advance(timedelta(minutes=31))  # a long phone call
    # A row added with htmx after that: not done, and said (htmx alone shows nothing for a 401).
    await page.locator("[data-phase='0'] [data-session='0']").get_by_role("button", name="Add exercise").click()
    await page.locator("#signed-out").wait_for()
    assert "Your changes are kept in this browser tab" in await page.locator("#signed-out").inner_text()
    await page.get_by_role("button", name="Save as the patient's plan").click()
    await page.wait_for_load_state()
    shown = await page.locator("main").inner_text()
    assert "you had been signed out. Your changes are kept in this browser tab." in shown
    async with bot.db.session() as s:
        assert (await s.exec(select(ProgrammePlan))).all() == []

    # A colleague signing in in this tab does not get Ben's draft.
    await browser_sign_in(page, bot, 7003)
    await page.goto(builder)
    assert await thigh.get_by_label("Sets").input_value() != "4"
    assert await page.locator("#draft-restored").is_hidden()
    await page.get_by_role("button", name="Sign out").click()

    # Ben signs in again in this tab and opens the builder: the draft is filled in, said, and not yet saved.
    await browser_sign_in(page, bot, 7002)
    await page.goto(builder)
    await page.locator("#draft-restored").wait_for()
    assert "They are not saved yet" in await page.locator("#draft-restored").inner_text()
    assert await thigh.get_by_label("Sets").input_value() == "4"
    assert await thigh.get_by_label("Note for the patient (English)").input_value() == "Slowly, and breathe."
    async with bot.db.session() as s:
        assert (await s.exec(select(ProgrammePlan))).all() == []
    # A fresh save (rights checked again) saves it; the builder then shows the saved plan, nothing filled in.
    await page.get_by_role("button", name="Save as the patient's plan").click()
    await page.wait_for_url("**/programme?saved=1")
    assert await thigh.get_by_label("Sets").input_value() == "4"
    await page.goto(builder)
    assert await page.locator("#draft-restored").is_hidden()
    async with bot.db.session() as s:
        [saved] = (await s.exec(select(ProgrammePlan))).all()
    assert '"sets": 4' in saved.body or '"sets":4' in saved.body
    assert [error for error in page.console_errors if "401" not in error] == []  # the 401 page, htmx's log of it


async def test_exercises_move_up_and_down_in_their_session_and_the_order_is_saved(
    bot_factory: Any, tg: FakeTelegram, page: Any, tmp_path: Path
) -> None:
    """A therapist asked to put an exercise earlier in a session: the rows had no way to move."""
    bot = await started(bot_factory, tmp_path)
    doc = await make_staff(bot.db, telegram_id=7002, name="Dr Ben")
    patient = await enrolled(bot, doc.id)
    await browser_sign_in(page, bot, 7002)
    await page.goto(f"{web_url(bot)}/patients/{patient.id}/programme")
    first = "[data-phase='0'] [data-session='0']"
    rows = page.locator(f"{first} .item")

    async def order() -> list[str]:
        return [await rows.nth(i).get_by_label("Exercise").input_value() for i in range(await rows.count())]

    before = await order()
    assert before[:3] == ["walking", "ankle-pumps", "quad-sets"]
    # The first row cannot move up, the last cannot move down.
    assert await rows.nth(0).get_by_role("button", name="Move up").count() == 0
    assert await rows.nth(len(before) - 1).get_by_role("button", name="Move down").count() == 0
    await rows.nth(2).get_by_label("Sets").fill("4")  # typed, not saved: it moves with its row
    # Each move button names its exercise for a screen reader, after the words it shows.
    assert await rows.nth(2).get_by_role("button", name="Move up: Thigh tightening", exact=True).count() == 1
    await rows.nth(2).get_by_role("button", name="Move up").click()
    await page.wait_for_function(
        "s => document.querySelector(s + ' .item select').value === 'walking' &&"
        " document.querySelectorAll(s + ' .item select')[1].value === 'quad-sets'",
        arg=first,
    )
    assert await order() == [before[0], before[2], before[1], *before[3:]]
    assert await rows.nth(1).get_by_label("Sets").input_value() == "4"
    # The focus follows the moved exercise (a keyboard user can move it again).
    assert await page.evaluate("document.activeElement.value") == "item-up:0:0:1"
    await rows.nth(0).get_by_role("button", name="Move down").click()
    await page.wait_for_function("s => document.querySelector(s + ' .item select').value === 'quad-sets'", arg=first)
    moved = [before[2], before[0], before[1], *before[3:]]
    assert await order() == moved
    assert await page.evaluate("document.activeElement.value") == "item-down:0:0:1"
    assert await serious(page) == []

    await page.get_by_role("button", name="Preview").click()
    await page.locator("#preview-text").wait_for()
    cards = await page.locator("#preview-cards pre").all_inner_texts()
    assert cards[0].startswith(f"1/{len(moved)} · Thigh tightening\n4 × ")
    await page.get_by_role("button", name="Save as the patient's plan").click()
    await page.wait_for_url("**/programme?saved=1")
    await page.goto(f"{web_url(bot)}/patients/{patient.id}/programme")
    assert await order() == moved, "the builder opens the saved plan in its new order"
    assert page.console_errors == []


ITEMS = "n => document.querySelectorAll(\"[data-phase='0'] [data-session='0'] .item\").length === n"
PHASES = "n => document.querySelectorAll('fieldset.phase').length === n"


async def test_after_adding_or_removing_a_row_session_or_phase_the_focus_stays_where_the_work_is(
    bot_factory: Any, page: Any, tmp_path: Path
) -> None:
    """An outside test pressed Add exercise, Remove exercise, Add a different session and Add phase with Enter:
    the focus fell back to the page, and the next Tab went to "Skip to content"."""
    bot = await started(bot_factory, tmp_path)
    doc = await make_staff(bot.db, telegram_id=7002, name="Dr Ben")
    patient = await enrolled(bot, doc.id)
    await browser_sign_in(page, bot, 7002)
    await page.goto(f"{web_url(bot)}/patients/{patient.id}/programme")
    first = page.locator("[data-phase='0'] [data-session='0']")
    count = await first.locator(".item").count()

    async def focused() -> str:
        return str(await page.evaluate("document.activeElement.id || document.activeElement.value || ''"))

    await first.get_by_role("button", name="Add exercise").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_function(ITEMS, arg=count + 1)
    new_select = await first.locator(".item select").nth(count).get_attribute("id")
    assert await focused() == new_select, "the new exercise's choice"
    await first.locator(".item").nth(count).get_by_role("button", name="Remove exercise").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_function(ITEMS, arg=count)
    assert await focused() == "add-item:0:0", "its session's Add exercise"
    phases = await page.locator("fieldset.phase").count()
    await page.get_by_role("button", name="Add phase").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_function(PHASES, arg=phases + 1)
    added = page.locator("fieldset.phase").nth(phases)
    assert await focused() == await added.locator("input").first.get_attribute("id")
    await added.get_by_role("button", name="Remove phase").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_function(PHASES, arg=phases)
    assert await focused() == "add-phase"
    assert page.console_errors == []
