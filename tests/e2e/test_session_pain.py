"""Pain during a session's exercises, held to the check-in pain's threshold (pain-critical: 7 or more).

An outside test pressed Done, Hard and pain 9 (10 in German) and read "Well done! 💪 Every session
counts.": no advice, no alert, while /pain 8 alerted. Now pain at the threshold gets the clinic's
exercise_pain text, the rule's message and the clinic's phone instead of praise, and one alert of
kind session_pain reaches the therapist; below it, the praise stays. In the chat and in the Mini App.
"""

from __future__ import annotations

from typing import Any

import pytest
from factories import make_staff
from rig.telegram_server import FakeTelegram
from sqlmodel import select
from test_sessions import WED, at, berlin, enrolled, press_and_wait
from webrig import client, csrf, init_data, miniapp_web, sign_in_initdata, web_url

from rehab_bot.i18n import t
from rehab_bot.models import Alert, ExerciseSession, Patient
from rehab_bot.redflag import SESSION_PAIN_TEXT

THERAPIST = 7790
PROMISE = 60.0


@pytest.fixture
async def bot(bot_factory: Any, backend: str) -> Any:
    return await bot_factory(backend, delivery={"per_chat_interval": 0.02, "poll_interval": 0.5}, web=miniapp_web())


async def _with_therapist(bot: Any, telegram_id: int, lang: str) -> Patient:
    patient = await enrolled(bot, telegram_id, lang=lang)
    staff = await make_staff(bot.db, telegram_id=THERAPIST)
    async with bot.db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        row.therapist_id = staff.id
        session.add(row)
        await session.commit()
    return patient


async def _alerts(bot: Any) -> list[Alert]:
    async with bot.db.session() as session:
        return list((await session.exec(select(Alert))).all())


@pytest.mark.parametrize(("lang", "pain"), [("en", "9"), ("de", "10"), ("en", "7")])
async def test_pain_at_the_threshold_in_the_chat_gets_advice_and_alerts_the_therapist(
    bot: Any, tg: FakeTelegram, lang: str, pain: str
) -> None:
    _ = lambda msgid, **kw: t(lang, msgid, **kw)  # noqa: E731
    patient = await _with_therapist(bot, 7701, lang)
    user, therapist = tg.user(7701, language_code=lang), tg.user(THERAPIST)
    await at(bot, berlin(WED, "09:00"))
    await user.wait_for()
    await press_and_wait(user, _("✅ Done"), 2)
    await press_and_wait(user, _("😓 Hard"), 1)
    [reply] = await press_and_wait(user, pain, 1)
    text = reply.text or ""
    assert text.startswith(_("Thank you for telling me.")) and _("Well done! 💪") not in text
    assert bot.services.content.text(SESSION_PAIN_TEXT, lang).strip() in text
    assert bot.config.clinic.phone in text and _("Your care team has been told.") in text
    assert not reply.has_inline_keyboard
    [alert] = await _alerts(bot)
    assert (alert.kind, alert.severity, alert.patient_id) == ("session_pain", "critical", patient.id)
    [notice] = await therapist.wait_for(lambda m: patient.alias in (m.text or ""), timeout=PROMISE)
    assert "Pain during the exercises needs attention." in (notice.text or "")
    assert f"Pain during the exercises of the 09:00 session: {pain}." in (notice.text or "")


async def test_pain_below_the_threshold_is_praised_and_alerts_nobody(bot: Any, tg: FakeTelegram) -> None:
    await _with_therapist(bot, 7702, "en")
    user = tg.user(7702)
    await at(bot, berlin(WED, "09:00"))
    await user.wait_for()
    await press_and_wait(user, "✅ Done", 2)
    await press_and_wait(user, "😓 Hard", 1)
    [reply] = await press_and_wait(user, "6", 1)
    assert reply.text == "Well done! 💪 Every session counts."
    assert await _alerts(bot) == []


async def test_pain_at_the_threshold_in_the_mini_app_shows_advice_and_alerts(bot: Any, tg: FakeTelegram) -> None:
    patient = await _with_therapist(bot, 7703, "de")
    user = tg.user(7703, language_code="de")
    await at(bot, berlin(WED, "09:00"))
    await user.wait_for()
    async with bot.db.session() as session:
        [es] = (await session.exec(select(ExerciseSession).where(ExerciseSession.patient_id == patient.id))).all()
    browser = client()
    async with browser:
        response = await sign_in_initdata(browser, web_url(bot), init_data(7703, bot.clock.now(), lang="de"))
        assert response.status == 200
        async with browser.get(f"{web_url(bot)}/app/session/{es.id}") as page:
            token = csrf(await page.text())
        data = {"csrf_token": token, "outcome": "done", "effort": "hard", "pain": "8"}
        async with browser.post(f"{web_url(bot)}/app/session/{es.id}", data=data) as page:
            assert page.status == 200
            html = await page.text()
    assert 'id="pain-advice"' in html and "Danke, dass Sie es mir sagen." in html
    assert "Sagen Sie Ihrer" in html and "Ihr Behandlungsteam wurde informiert." in html
    assert "Heute beginnt Ihre Serie" not in html, "no praise under the advice"
    [alert] = await _alerts(bot)
    assert (alert.kind, alert.severity) == ("session_pain", "critical")
