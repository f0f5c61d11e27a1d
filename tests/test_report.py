"""The progress chart and its text: a real PNG of the right size that shows the data."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from typing import Any

import numpy as np
from factories import make_patient
from PIL import Image

from rehab_bot import outcomes, report
from rehab_bot.clock import FakeClock
from rehab_bot.db import Database
from rehab_bot.models import CheckIn, ExerciseSession, Patient

TODAY = date(2026, 6, 10)
PAIN_RED = (0xC0, 0x39, 0x2B)
DONE_GREEN = (0x27, 0xAE, 0x60)


def _count_near(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 40) -> int:
    """Pixels whose every channel is within tolerance of colour's (numpy: 400,000 pixels a chart)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    near = (np.abs(pixels - np.array(colour, dtype=np.int16)) <= tolerance).all(axis=2)
    return int(near.sum())


def _image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png))


def test_a_year_of_data_gives_an_800_by_500_png_with_the_lines_and_bars() -> None:
    png = report.render_chart(report.synthetic(365, TODAY))
    assert report.png_size(png) == (800, 500)
    image = _image(png)
    assert image.format == "PNG" and image.size == (800, 500)
    assert _count_near(image, PAIN_RED) > 1500, "the pain line is drawn"
    assert _count_near(image, DONE_GREEN, tolerance=60) > 5000, "adherence bars are drawn"


def test_an_empty_history_still_gives_a_chart_that_says_so() -> None:
    empty = report.Progress(today=TODAY)
    png = report.render_chart(empty)
    assert report.png_size(png) == (800, 500)
    image = _image(png)
    assert _count_near(image, PAIN_RED, tolerance=10) < 1500, "no pain line without entries"
    assert "No entries yet" in report.summary_text(empty)


def test_a_chart_shows_only_its_own_patients_data_although_the_figure_is_reused() -> None:
    """The figure of a language is kept between renders: nothing of the previous patient may remain."""
    for lang in ("en", "de"):
        empty = report.Progress(today=TODAY, lang=lang)
        short = report.synthetic(20, TODAY, lang)
        short.mood.clear()
        alone = {name: report.render_chart(p) for name, p in (("empty", empty), ("short", short))}
        report.render_chart(report.synthetic(365, TODAY, lang))
        assert report.render_chart(empty) == alone["empty"]
        report.render_chart(report.synthetic(365, TODAY, lang))
        assert report.render_chart(short) == alone["short"]
        assert _count_near(_image(alone["empty"]), PAIN_RED, tolerance=10) < _count_near(
            _image(alone["short"]), PAIN_RED, tolerance=10
        )


def test_warm_up_builds_the_figures_so_a_render_after_it_is_the_same() -> None:
    year = report.synthetic(365, TODAY, "de")
    before = report.render_chart(year)
    report.warm_up()
    assert report.render_chart(year) == before


def test_summary_text_states_what_the_chart_shows_in_the_patients_language() -> None:
    progress = report.Progress(today=TODAY, lang="de")
    first = TODAY - timedelta(days=20)
    for n in range(21):
        day = first + timedelta(days=n)
        progress.pain[day] = 6.0 if n < 7 else 3.0
        progress.mood[day] = 4.0
        progress.sessions[day] = (1, 2)
    text = report.summary_text(progress)
    assert "Schmerzen: im Schnitt 3,0 in den letzten 7 Tagen; 6,0 in Ihrer ersten Woche." in text
    assert "7 von 14 geplanten Einheiten" in text and "50" in text
    assert "21 Tage" in text
    english = report.summary_text(progress, "en")
    assert "an average of 3.0 in the last 7 days; 6.0 in your first week" in english


async def test_progress_chart_reads_the_patients_entries(db: Database, clock: FakeClock) -> None:
    patient, _ = await make_patient(db, clock, times=())
    assert patient.id is not None
    today = clock.now().date()
    async with db.session() as session:
        for n in range(10):
            day = today - timedelta(days=9 - n)
            for questionnaire, value in (("pain", 8 - n * 0.5), ("mood", 2 + n * 0.2)):
                session.add(
                    CheckIn(
                        patient_id=patient.id,
                        questionnaire_id=questionnaire,
                        status="complete",
                        score=value,
                        local_date=day,
                        started_at=clock.now(),
                        completed_at=clock.now(),
                    )
                )
            session.add(ExerciseSession(patient_id=patient.id, local_date=day, slot="09:00", status="done"))
            session.add(ExerciseSession(patient_id=patient.id, local_date=day, slot="17:00", status="missed"))
        # Expired and open check-ins, and other questionnaires, are not plotted.
        session.add(CheckIn(patient_id=patient.id, questionnaire_id="pain", status="expired", local_date=today))
        session.add(
            CheckIn(patient_id=patient.id, questionnaire_id="phq2", status="complete", score=5, local_date=today)
        )
        await session.commit()
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        progress = await report.load_progress(session, p, clock.now())
        png = await report.progress_chart(session, p, clock.now())
        text = await report.progress_summary_text(session, p, clock.now())
    assert len(progress.pain) == 10 and progress.pain[today] == 3.5
    assert progress.adherence(today) == 0.5
    assert report.png_size(png) == (800, 500) and _count_near(_image(png), PAIN_RED) > 300
    assert "Last pain entry: 3.5 on Jun 10, 2026." in text and "7 of 14 planned sessions" in text
    assert "an average of 5.0 in the last 7 days; 6.5 in your first week" in text


def _drawn(monkeypatch: Any, progress: report.Progress, title: str | None = None) -> Any:
    """The matplotlib Figure render_chart has just drawn (each language's figure is kept and redrawn)."""
    png = report.render_chart(progress, title)
    assert report.png_size(png) == (800, 500)
    return report._chart(progress.lang).figure


def test_the_time_axis_counts_whole_days_from_the_first_day_never_hours(monkeypatch: Any) -> None:
    for days in (1, 2, 9, 120):
        progress = report.synthetic(days, TODAY)
        figure = _drawn(monkeypatch, progress)
        bottom = figure.axes[1]
        figure.canvas.draw()
        low, high = bottom.get_xlim()
        labels = [
            tick.get_text()
            for tick, at in zip(bottom.get_xticklabels(), bottom.get_xticks(), strict=True)
            if low <= at <= high
        ]
        assert labels and all(re.fullmatch(r"-?\d+", label) for label in labels), (days, labels)
        assert "0" in labels or days > 8, "the first day is day 0"
        assert all(0 <= int(label) <= days - 1 for label in labels), (days, labels)
        assert bottom.get_xlabel() == "Days since the first day"
        assert not any(":" in label for label in labels), "never hours"


def test_the_title_is_the_patients_own_or_the_alias_for_staff(monkeypatch: Any) -> None:
    progress = report.synthetic(3, TODAY, lang="de")
    assert _drawn(monkeypatch, progress).get_suptitle() == "Ihr Fortschritt"
    assert _drawn(monkeypatch, progress, "P-00042").get_suptitle() == "P-00042"


MARK_GREEN = (0x1E, 0x7B, 0x34)
PSFS = outcomes.MEASURES["psfs"]


def test_the_pain_mark_is_drawn_and_said_when_there_is_a_baseline() -> None:
    progress = report.synthetic(30, TODAY)
    plain = _image(report.render_chart(progress))
    first = min(progress.pain)
    surgery = first - timedelta(days=1)
    scores = [outcomes.Score((d - surgery).days, v) for d, v in progress.pain.items()]
    progress.pain_trend = outcomes.trend(outcomes.MEASURES["pain"], scores)
    assert progress.pain_trend.target is not None
    marked = _image(report.render_chart(progress))
    assert _count_near(marked, MARK_GREEN, 20) > _count_near(plain, MARK_GREEN, 20) + 100, "the dashed mark line"
    text = report.summary_text(progress, "en")
    base = progress.pain_trend.baseline
    assert base is not None
    assert f"Pain: Baseline {base.value:g} on day 1." in text and "(at least 2 points or 30 %; Farrar" in text
    german = report.summary_text(progress, "de")
    assert "Ausgangswert" in german and "bedeutsame Verbesserung" in german
    # Without a baseline (scores only from week 2 on) there is no mark and no sentence.
    progress.pain_trend = outcomes.trend(outcomes.MEASURES["pain"], [s for s in scores if s.day >= 7])
    assert "Baseline" not in report.summary_text(progress, "en")
    assert report.render_chart(progress) == report.render_chart(report.synthetic(30, TODAY))


def test_outcome_measures_chart_and_words() -> None:
    reached = outcomes.trend(PSFS, [outcomes.Score(1, 3.0), outcomes.Score(42, 5.5)])
    not_yet = outcomes.trend(PSFS, [outcomes.Score(1, 3.0), outcomes.Score(42, 4.0)])
    text = report.outcome_summary([("Patient-Specific Functional Scale", reached)], "en")
    assert text.splitlines() == [
        "Outcome measures",
        "Patient-Specific Functional Scale: Baseline 3 on day 1. Meaningful improvement: 5 or higher "
        "(at least 2 points; Stratford et al. 1995, Physiother Can). "
        "Latest score 5.5 on day 42: meaningful improvement reached.",
    ]
    german = report.outcome_summary([("PSFS", not_yet)], "de")
    assert "Letzter Wert 4 an Tag 42: bedeutsame Verbesserung nicht erreicht." in german
    png = report.render_outcome_chart([("PSFS", reached), ("PSFS", not_yet)], "en")
    width, height = report.png_size(png)
    assert width == 800 and height > 400
    assert _count_near(_image(png), MARK_GREEN, 20) > 200, "each panel draws its mark"
