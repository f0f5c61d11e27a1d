"""/progress with outcome scores, end to end on the fake Bot API: the pain mark on the chart, the PSFS chart.

A patient 45 days after surgery with pain and PSFS scores at baseline (day 1) and 6 weeks (day 42):
/progress sends the progress chart, whose words now say the pain baseline, the mark of a
meaningful improvement (2 points or 30 %, Farrar et al. 2001) and that the latest score reached
it; then a second chart of the outcome questionnaires with the PSFS mark (2 points, Stratford et
al. 1995) and the same in words.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from factories import make_patient
from rig.telegram_server import FakeTelegram

from rehab_bot.models import CheckIn
from rehab_bot.report import png_size


async def test_progress_marks_the_mcid_of_pain_and_the_psfs(bot: Any, tg: FakeTelegram) -> None:
    now = bot.clock.now()
    surgery = now.astimezone(ZoneInfo("Europe/Berlin")).date() - timedelta(days=45)
    patient, _ = await make_patient(
        bot.db, bot.clock, times=(), telegram_id=4711, surgery_date=surgery, consent_at=now - timedelta(days=46)
    )
    async with bot.db.session() as session:
        for questionnaire, day, score in (("pain", 1, 7.0), ("pain", 42, 4.0), ("psfs", 1, 3.0), ("psfs", 42, 5.5)):
            session.add(
                CheckIn(
                    patient_id=patient.id or 0,
                    questionnaire_id=questionnaire,
                    status="complete",
                    score=score,
                    local_date=surgery + timedelta(days=day),
                    started_at=now - timedelta(days=45 - day),
                    completed_at=now - timedelta(days=45 - day),
                )
            )
        await session.commit()
    user = tg.user(4711)
    await user.send("/progress")
    progress, measures = await user.wait_for(lambda m: m.photo is not None, count=2, timeout=30)
    assert progress.caption is not None and measures.caption is not None
    assert (
        "Pain: Baseline 7 on day 1. Meaningful improvement: 5 or lower (at least 2 points or 30 %; "
        "Farrar et al. 2001, Pain 94:149). Latest score 4 on day 42: meaningful improvement reached."
    ) in progress.caption
    assert measures.caption.splitlines() == [
        "Outcome measures",
        "Patient-Specific Functional Scale: Baseline 3 on day 1. Meaningful improvement: 5 or higher "
        "(at least 2 points; Stratford et al. 1995, Physiother Can). "
        "Latest score 5.5 on day 42: meaningful improvement reached.",
    ]
    assert measures.photo is not None and measures.photo.data is not None
    assert png_size(measures.photo.data)[0] == 800
