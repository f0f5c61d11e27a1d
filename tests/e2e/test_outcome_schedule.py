"""The outcome questionnaire (PSFS) arrives on its schedule by days after surgery, and its score is exported.

Surgery on 28 May: 11 June is day 14, the 2-week follow-up. The evening
before (day 13) brings no PSFS; day 14's evening check-in does. The patient
answers it with one tap per activity; the mean is the score, and the FHIR
export carries it as an Observation derived from its QuestionnaireResponse.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from rig.telegram_server import FakeTelegram
from sqlmodel import select
from test_checkins import enrolled
from test_export import validate_bundle

from rehab_bot import export
from rehab_bot.models import CheckIn

EVENING = datetime(2026, 6, 11, 17, 0, 2, tzinfo=UTC)  # 19:00 in Berlin, day 14 after surgery
SURGERY = date(2026, 5, 28)


def psfs(text: str | None) -> bool:
    return "Patient-Specific Functional Scale" in (text or "") or "Patientenspezifische Funktionsskala" in (text or "")


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_the_psfs_comes_on_day_14_not_before(bot: Any, tg: FakeTelegram, lang: str) -> None:
    patient = await enrolled(bot, 4801, surgery_date=SURGERY, language=lang)
    user = tg.user(4801, language_code=lang)

    bot.clock.set(EVENING - timedelta(days=1))
    await bot.tick()
    await user.wait_for(timeout=5)  # day 13's check-in (pain, mood)
    for _ in range(6):
        await bot.tick()
    await user.expect_silence(0.3)
    assert not any(psfs(m.text) for m in user.messages), "no outcome questionnaire on day 13"

    bot.clock.set(EVENING)
    await bot.tick()
    question = await user.next_message(lambda m: psfs(m.text), timeout=10)
    first = "Your first activity" if lang == "en" else "Ihre erste Tätigkeit"
    assert first in question.text and question.button_labels[:11] == [str(n) for n in range(11)]
    low, high = {
        "en": ("0 = unable to perform the activity", "10 = able to perform it at the level before the problem"),
        "de": ("0 = Ich kann die Tätigkeit nicht ausführen", "10 = Ich kann sie so gut ausführen wie vor dem Problem"),
    }[lang]
    for answer in ("3", "5", "7"):
        assert low in question.text and high in question.text, "each activity says what 0 and 10 mean"
        user.mark_seen()
        await user.press(answer, question)
        await user.wait_for_answer()
        [question] = await user.wait_for()
    async with bot.db.session() as s:
        [row] = (await s.exec(select(CheckIn).where(CheckIn.questionnaire_id == "psfs"))).all()
        assert (row.status, row.score, row.local_date) == ("complete", 5.0, date(2026, 6, 11))
        data = await export.collect(s, bot.clock.now(), patient=await s.get(type(patient), patient.id))
    bundle = export.fhir_bundle(data, bot.services.content, bot.clock.now())
    by_type = validate_bundle(bundle)
    [score] = [o for o in by_type["Observation"] if o["code"]["coding"][0]["code"] == "score-psfs"]
    [derived] = score["derivedFrom"]
    [response] = [r for r in by_type["QuestionnaireResponse"] if f"urn:uuid:{r['id']}" == derived["reference"]]
    assert [item["linkId"] for item in response["item"]] == ["activity1", "activity2", "activity3"]
    assert score.get("valueDecimal", score.get("valueInteger")) == 5
