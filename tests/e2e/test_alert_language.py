"""A German-speaking therapist reads a patient's red flag in German: in Telegram and on the web pages.

The alert's detail (the questionnaire, the questions and answers, what the patient was told) was English
prose, made when the alert was raised, inside German alert messages and pages. It is now kept as parts
(rehab_bot.alert_detail) and rendered in each reader's language; the English patient's check-in and the
clinic's English alert chat stay English.
"""

from __future__ import annotations

from typing import Any

from factories import make_staff
from rig.telegram_server import FakeTelegram
from test_checkins import enrolled, rows
from web_seed import BEN
from webrig import WEB, client, init_data, sign_in_initdata, web_url

from rehab_bot import alert_detail
from rehab_bot.models import Alert

ALERT_CHAT = -100_778
THERAPIST = BEN  # German-speaking (Staff.language "de")


async def test_a_german_therapists_red_flag_alert_is_german_in_telegram_and_on_the_alert_pages(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    bot = await bot_factory(web=WEB, clinic={"alert_chat_id": ALERT_CHAT})
    await make_staff(bot.db, telegram_id=THERAPIST, name="Dr Ben", language="de")
    patient = await enrolled(bot, 5201, therapist=THERAPIST, schedule=False)  # an English-speaking patient
    group = tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5201)
    await user.send("/checkin")
    await user.wait_for()
    await user.press("Wound and symptom check")
    await user.wait_for()
    await user.press("Yes, at least one")
    [bladder] = await user.wait_for()
    assert "bladder or bowel" in (bladder.text or ""), "the patient's check-in stays in their language"
    await user.press("Yes")
    await user.wait_for(lambda m: "Call 112 now" in (m.text or ""))
    await bot.tick()

    content = bot.services.content
    symptoms = content.questionnaires["symptoms"]
    question = next(item for item in symptoms.items if item.id == "bladder").text
    [to_therapist] = await tg.user(THERAPIST).wait_for(lambda m: patient.alias in (m.text or ""))
    text = to_therapist.text or ""
    assert text.startswith(f"⚠️ Warnung NOTFALL für {patient.alias}\nWarnzeichen in einer Abfrage.\n")
    assert f"{symptoms.title['de']}:\n" in text
    assert f"⚠ {question['de'][:60]}" in text and "jetzt den Notruf zu wählen" in text
    assert "bladder" not in text and "Red flag" not in text and "Raised" not in text, text
    assert to_therapist.button_labels == ["✅ Bestätigen"]
    [to_chat] = await group.wait_for(lambda m: patient.alias in (m.text or ""))
    assert "Red flag in a check-in." in (to_chat.text or "") and "bladder or bowel" in (to_chat.text or "")

    [alert] = await rows(bot, Alert)
    assert "bladder or bowel" in alert.detail, "the English detail stays for exports and the audit"
    german = alert_detail.text(alert, "de")
    browser = client()
    async with browser:
        response = await sign_in_initdata(browser, web_url(bot), init_data(THERAPIST, bot.clock.now(), lang="de"))
        assert response.status == 200
        pages = []
        for path in ("/alerts", f"/patients/{patient.id}"):
            async with browser.get(f"{web_url(bot)}{path}") as page:
                assert page.status == 200
                pages.append(await page.text())
    for html in pages:
        assert "Warnzeichen in einer Abfrage" in html  # the page is German
        assert f"{symptoms.title['de']}:" in html and "jetzt den Notruf zu wählen" in html
        assert question["de"][:60] in html and question["en"][:40] not in html
        assert "call the emergency number" not in html
    assert german.splitlines()[0] == f"{symptoms.title['de']}:"
