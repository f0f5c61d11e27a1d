"""The patient's progress: a PNG chart and the same facts as text (core, no telegram).

``/progress`` sends both: :func:`progress_chart` (pain and mood over time,
with the share of planned sessions done each day) and
:func:`progress_summary_text`, which says in words what the chart shows, for
patients who use a screen reader or cannot read a chart.

The chart is drawn with matplotlib's object API on the Agg backend (no pyplot
global state, no display), in a worker thread so the event loop stays free.
Each language's figure is built once and redrawn for every patient, and the
bot builds them in a thread once it has started (:func:`warm_up`, after its
first dispatch), so the first /progress after a restart costs what the others
do (bench/chart_db.py measures it).
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import fmean
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal, format_percent
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import outcomes
from rehab_bot.content import Content, localize
from rehab_bot.i18n import SUPPORTED_LANGUAGES as LANGUAGES
from rehab_bot.i18n import t, tn
from rehab_bot.models import CheckIn, ExerciseSession, Patient
from rehab_bot.schedule import local_date

# 800 x 500 pixels: readable on a phone, small to upload.
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 5.0, 100
MAX_DAYS = 366
DONE = ("done", "partly")


@dataclass
class Progress:
    """Daily series for one patient, oldest first, in the patient's local dates."""

    today: date
    lang: str = "en"
    pain: dict[date, float] = field(default_factory=dict)  # daily mean NRS 0-10
    mood: dict[date, float] = field(default_factory=dict)  # daily mean 1-5
    sessions: dict[date, tuple[int, int]] = field(default_factory=dict)  # (done or partly, planned)
    # Pain against its MCID (rehab_bot.outcomes): the mark is drawn on the chart and said in words.
    pain_trend: outcomes.Trend | None = None

    @property
    def first_day(self) -> date | None:
        days = [*self.pain, *self.mood, *self.sessions]
        return min(days) if days else None

    def adherence(self, day: date) -> float | None:
        done, planned = self.sessions.get(day, (0, 0))
        return done / planned if planned else None

    def mean(self, series: dict[date, float], first: date, last: date) -> float | None:
        values = [v for d, v in series.items() if first <= d <= last]
        return fmean(values) if values else None


async def load_progress(session: AsyncSession, patient: Patient, now: datetime, days: int = MAX_DAYS) -> Progress:
    """Read the daily series of the last `days` days."""
    today = local_date(patient, now)
    since = today - timedelta(days=days - 1)
    progress = Progress(today=today, lang=patient.language)
    # Columns, not ORM objects: a year is about 730 check-ins and 730 sessions.
    checkins = (
        await session.exec(
            select(
                col(CheckIn.questionnaire_id),
                col(CheckIn.local_date),
                func.coalesce(col(CheckIn.completed_at), col(CheckIn.started_at)),
                col(CheckIn.score),
            ).where(
                CheckIn.patient_id == patient.id,
                col(CheckIn.questionnaire_id).in_(("pain", "mood")),
                CheckIn.status == "complete",
                col(CheckIn.score).is_not(None),
            )
        )
    ).all()
    by_day: dict[str, dict[date, list[float]]] = {"pain": {}, "mood": {}}
    for questionnaire, checkin_day, answered_at, score in checkins:
        assert score is not None
        day = checkin_day or local_date(patient, answered_at)
        if since <= day <= today:
            by_day[questionnaire].setdefault(day, []).append(score)
    progress.pain = {d: fmean(v) for d, v in sorted(by_day["pain"].items())}
    progress.mood = {d: fmean(v) for d, v in sorted(by_day["mood"].items())}
    rows = (
        await session.exec(
            select(col(ExerciseSession.local_date), col(ExerciseSession.status)).where(
                ExerciseSession.patient_id == patient.id,
                col(ExerciseSession.local_date) >= since,
                col(ExerciseSession.local_date) <= today,
            )
        )
    ).all()
    counts: dict[date, list[int]] = {}
    for session_day, status in rows:
        if session_day == today and status == "pending":
            continue  # today's later sessions are not missed yet
        pair = counts.setdefault(session_day, [0, 0])
        pair[1] += 1
        if status in DONE:
            pair[0] += 1
    progress.sessions = {d: (done, planned) for d, (done, planned) in sorted(counts.items())}
    # The pain scores for the MCID mark come from the same rows (outcomes.scores_of reads them so).
    if patient.surgery_date is not None:
        pain = [(day, score) for questionnaire, day, _, score in checkins if questionnaire == "pain"]
        pain_scores = outcomes.scores_from(patient.surgery_date, pain)
        if pain_scores:
            progress.pain_trend = outcomes.trend(outcomes.MEASURES["pain"], pain_scores)
    return progress


# --------------------------------------------------------------------------- the chart

# Building a matplotlib figure costs most of a render (each axis creates its
# tick artists anew), and the first render in a process pays the import and
# the font cache. So each language's figure is built once, kept, and redrawn
# with each patient's data under a lock; warm_up() builds them once the bot
# has started, in a thread, so the first /progress after a restart is as
# fast as the others (bench/chart_db.py measures it).
_charts: dict[str, _Chart] = {}
_charts_lock = threading.Lock()


class _Chart:
    """One language's figure, axes and artists, drawn again for every patient (under its lock)."""

    def __init__(self, lang: str) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        self.lock = threading.Lock()
        figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        self.canvas = FigureCanvasAgg(figure)
        grid = figure.add_gridspec(2, 1, height_ratios=(3, 1.3), hspace=0.08)
        top = figure.add_subplot(grid[0])
        bottom = figure.add_subplot(grid[1], sharex=top)
        figure.subplots_adjust(left=0.08, right=0.92, top=0.90, bottom=0.09)
        self.default_title = t(lang, "Your progress")
        self.title = figure.suptitle(self.default_title, fontsize=13)
        self.empty = top.text(0.5, 0.5, t(lang, "No entries yet."), ha="center", va="center", transform=top.transAxes)

        top.set_ylim(-0.3, 10.3)
        top.set_ylabel(t(lang, "Pain (0-10)"), color="#c0392b")
        top.tick_params(axis="y", colors="#c0392b")
        top.grid(True, axis="y", alpha=0.3)
        mood_axis: Any = top.twinx()
        mood_axis.set_ylim(0.8, 5.2)
        mood_axis.set_yticks([1, 2, 3, 4, 5])
        mood_axis.set_ylabel(t(lang, "Mood (1-5)"), color="#2471a3")
        mood_axis.tick_params(axis="y", colors="#2471a3")
        (self.pain,) = top.plot([], [], color="#c0392b", markersize=3, lw=1.6)
        self.pain.set_label(t(lang, "Pain"))
        (self.mood,) = mood_axis.plot([], [], color="#2471a3", markersize=3, lw=1.2, ls="--")
        # The pain MCID from the patient's baseline (rehab_bot.outcomes.target), when there is one.
        from matplotlib.transforms import blended_transform_factory

        self.mark = top.axhline(0, color="#1e7b34", lw=1.4, ls="--", visible=False)
        self.mark_label = top.text(
            0.995,
            0,
            "",
            color="#1e7b34",
            fontsize=8,
            ha="right",
            va="bottom",
            transform=blended_transform_factory(top.transAxes, top.transData),
            visible=False,
        )
        self.mark_text = t(lang, "Meaningful improvement")
        self.mood.set_label(t(lang, "Mood"))
        # One legend per combination of series shown, made when first needed.
        self.legends: dict[tuple[bool, bool], Any] = {}
        self.figure = figure

        # Adherence as one bar artist per day would be hundreds of patches; stairs is one.
        self.steps = bottom.stairs([0.0], [0.0, 1.0], fill=True, color="#27ae60", alpha=0.75)
        bottom.set_ylim(0, 105)
        bottom.set_yticks([0, 50, 100])
        bottom.set_ylabel(t(lang, "Done (%)"), fontsize=8)
        bottom.grid(True, axis="y", alpha=0.3)
        # Whole days from the first day: integer ticks only (never hours), labelled 0, 1, 2, ...
        self.origin = 0.0
        bottom.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True, min_n_ticks=1))
        bottom.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{round(x - self.origin):d}"))
        bottom.set_xlabel(t(lang, "Days since the first day"), fontsize=8)
        top.tick_params(labelbottom=False)
        self.bottom = bottom

    def _legend(self, pain: bool, mood: bool) -> Any:
        key = (pain, mood)
        if key not in self.legends:
            handles = [line for line, shown in ((self.pain, pain), (self.mood, mood)) if shown]
            self.legends[key] = self.figure.legend(
                handles=handles, loc="upper left", ncols=2, fontsize=9, frameon=False, bbox_to_anchor=(0.07, 0.99)
            )
        return self.legends[key]

    def render(self, progress: Progress, title: str | None = None) -> bytes:
        from matplotlib.dates import date2num
        from PIL import Image

        first = progress.first_day
        self.empty.set_visible(first is None)
        if first is None:
            first = progress.today - timedelta(days=6)
        # Markers show single entries on a short history; on a long one they are noise.
        marker = len(progress.pain) <= 60 and len(progress.mood) <= 60
        for line, series, symbol in ((self.pain, progress.pain, "o"), (self.mood, progress.mood, "s")):
            line.set_data(date2num(list(series)), list(series.values()))
            line.set_marker(symbol if marker else "None")
            line.set_visible(bool(series))
        trend = progress.pain_trend
        marked = bool(progress.pain) and trend is not None and trend.target is not None and trend.target >= 0
        self.mark.set_visible(marked)
        self.mark_label.set_visible(marked)
        if marked:
            assert trend is not None and trend.target is not None
            self.mark.set_ydata([trend.target, trend.target])
            self.mark_label.set_y(trend.target)
            self.mark_label.set_text(self.mark_text)
        shown = (bool(progress.pain), bool(progress.mood))
        for key in [*self.legends, shown] if any(shown) else self.legends:
            self._legend(*key).set_visible(key == shown)

        days = _days(first, progress.today)
        values = [100 * (progress.adherence(d) or 0.0) for d in days]
        edges = [*(date2num(days) - 0.5), date2num(progress.today) + 0.5]
        self.steps.set_data(values, edges)
        self.origin = float(date2num(first))
        self.bottom.set_xlim(self.origin - 0.5, date2num(progress.today) + 0.5)
        self.title.set_text(title if title is not None else self.default_title)

        self.canvas.draw()
        # Encoding is a good part of a render: RGB (the figure is opaque, so alpha carries
        # nothing) at zlib level 1 takes about a third of the time of savefig's RGBA at level 6,
        # for a PNG of about the same size.
        width, height = self.canvas.get_width_height()
        image = Image.frombuffer("RGBA", (width, height), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="png", compress_level=1)
        return buffer.getvalue()


def _chart(lang: str) -> _Chart:
    with _charts_lock:
        chart = _charts.get(lang)
        if chart is None:
            chart = _charts[lang] = _Chart(lang)
        return chart


def render_chart(progress: Progress, title: str | None = None) -> bytes:
    """The PNG: pain and mood lines above, adherence per day below. Empty data gives a note.

    title: "Your progress" for the patient; staff charts pass the patient's alias.
    The time axis counts days from the chart's first day (0), never hours.
    Thread-safe: renders of one language take turns on its figure.
    """
    chart = _chart(progress.lang)
    with chart.lock:
        return chart.render(progress, title)


def warm_up(languages: Iterable[str] = LANGUAGES, stop: threading.Event | None = None) -> None:
    """Import matplotlib, load its fonts and build each language's figure (blocking: run it in a thread).

    stop, once set, ends it before the next language: a bot that is stopping
    needs its CPU for that.
    """
    for lang in languages:
        if stop is not None and stop.is_set():
            return
        if lang not in _charts:  # built once per process (the tests start many bots in one)
            render_chart(synthetic(MAX_DAYS, date(2000, 1, 1), lang))


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# --------------------------------------------------------------------------- the words


def _num(lang: str, value: float) -> str:
    return format_decimal(round(value, 1), format="0.0", locale=lang)


def summary_text(progress: Progress, lang: str | None = None) -> str:
    """What the chart shows, in words (the accessible alternative)."""
    lang = lang or progress.lang
    today = progress.today
    week = today - timedelta(days=6)
    lines = [t(lang, "Your progress")]
    if progress.first_day is None:
        lines.append(t(lang, "No entries yet. Your check-ins and sessions will show here."))
        return "\n".join(lines)
    pain_now = progress.mean(progress.pain, week, today)
    if progress.pain:
        first = min(progress.pain)
        pain_first = progress.mean(progress.pain, first, first + timedelta(days=6))
        if pain_now is not None and pain_first is not None and first < week:
            lines.append(
                t(
                    lang,
                    "Pain: an average of {now} in the last 7 days; {before} in your first week.",
                    now=_num(lang, pain_now),
                    before=_num(lang, pain_first),
                )
            )
        elif pain_now is not None:
            lines.append(t(lang, "Pain: an average of {now} in the last 7 days.", now=_num(lang, pain_now)))
        last_day = max(progress.pain)
        lines.append(
            t(
                lang,
                "Last pain entry: {value} on {day}.",
                value=_num(lang, progress.pain[last_day]),
                day=format_date(last_day, "medium", locale=lang),
            )
        )
    pain_mcid = pain_mcid_text(progress.pain_trend, lang)
    if pain_mcid:
        lines.append(pain_mcid)
    mood_now = progress.mean(progress.mood, week, today)
    if mood_now is not None:
        lines.append(t(lang, "Mood: an average of {now} of 5 in the last 7 days.", now=_num(lang, mood_now)))
    done = sum(progress.sessions.get(d, (0, 0))[0] for d in _days(week, today))
    planned = sum(progress.sessions.get(d, (0, 0))[1] for d in _days(week, today))
    if planned:
        lines.append(
            tn(
                lang,
                "Sessions: {done} of {n} planned session done in the last 7 days ({share}).",
                "Sessions: {done} of {n} planned sessions done in the last 7 days ({share}).",
                planned,
                done=done,
                share=format_percent(done / planned, locale=lang),
            )
        )
    total_days = (today - progress.first_day).days + 1
    lines.append(tn(lang, "The chart covers {n} day.", "The chart covers {n} days.", total_days))
    return "\n".join(lines)


# --------------------------------------------------------------------------- for /progress


async def progress_chart(session: AsyncSession, patient: Patient, now: datetime, title: str | None = None) -> bytes:
    """The patient's progress chart as PNG bytes (pain, mood, sessions done per day); staff pass the alias as title."""
    progress = await load_progress(session, patient, now)
    return await asyncio.to_thread(render_chart, progress, title)


async def progress_summary_text(session: AsyncSession, patient: Patient, now: datetime, lang: str | None = None) -> str:
    """The chart's content as text, in the patient's language (or lang)."""
    return summary_text(await load_progress(session, patient, now), lang)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def synthetic(days: int, today: date, lang: str = "en", sessions_per_day: int = 2) -> Progress:
    """A plausible year of data (for the benchmark and tests): pain falling, mood rising."""
    import math

    first = today - timedelta(days=days - 1)
    progress = Progress(today=today, lang=lang)
    for n, day in enumerate(_days(first, today)):
        progress.pain[day] = round(max(0.0, min(10.0, 7 - 5 * n / days + 1.2 * math.sin(n / 2.3))))
        progress.mood[day] = round(max(1.0, min(5.0, 2.5 + 2 * n / days + 0.6 * math.cos(n / 3.1))))
        progress.sessions[day] = ((n * 7) % (sessions_per_day + 1), sessions_per_day)
    return progress


# --------------------------------------------------------------------------- outcome measures (/progress)


async def outcome_items(
    session: AsyncSession, patient: Patient, content: Content, lang: str, *, skip: Sequence[str] = ()
) -> list[tuple[str, outcomes.Trend]]:
    """The patient's outcome measures with scores (rehab_bot.outcomes.trends), each with its title in lang.

    skip: questionnaires left out (/progress draws pain's mark on its own chart: ON_PROGRESS_CHART).
    """
    asked = [q for q in content.questionnaires if q not in skip]
    found = await outcomes.trends(session, patient, asked)
    return [(localize(content.questionnaires[tr.measure.questionnaire].title, lang), tr) for tr in found]


ON_PROGRESS_CHART = ("pain",)  # measures whose MCID mark the progress chart itself draws


def _score(lang: str, value: float) -> str:
    return format_decimal(round(value, 1), format="0.#", locale=lang)


def pain_mcid_text(trend: outcomes.Trend | None, lang: str) -> str:
    """The pain MCID sentence of /progress (empty without a pain baseline)."""
    if trend is None or trend.baseline is None:
        return ""
    return t(lang, "Pain") + ": " + mcid_sentence(trend, lang)


def mcid_sentence(trend: outcomes.Trend, lang: str) -> str:
    """Baseline, the MCID mark with its rule and source, and whether the latest score reached it."""
    if trend.baseline is None or trend.target is None:
        return t(lang, "No baseline score (the first week after surgery), so no mark.")
    m = trend.measure
    rule = (
        t(
            lang,
            "at least {points} points or {percent} %",
            points=_score(lang, m.points),
            percent=_score(lang, m.percent),
        )
        if m.percent is not None
        else t(lang, "at least {points} points", points=_score(lang, m.points))
    )
    mark = _score(lang, trend.target)
    parts = [
        t(lang, "Baseline {value} on day {day}.", value=_score(lang, trend.baseline.value), day=trend.baseline.day),
        (
            t(lang, "Meaningful improvement: {mark} or lower", mark=mark)
            if m.lower_is_better
            else t(lang, "Meaningful improvement: {mark} or higher", mark=mark)
        )
        + f" ({rule}; {m.source}).",
    ]
    if trend.latest is None:
        parts.append(t(lang, "No follow-up score yet."))
    else:
        latest = {"value": _score(lang, trend.latest.value), "day": trend.latest.day}
        parts.append(
            t(lang, "Latest score {value} on day {day}: meaningful improvement reached.", **latest)
            if trend.reached
            else t(lang, "Latest score {value} on day {day}: meaningful improvement not reached.", **latest)
        )
    return " ".join(parts)


def outcome_summary(items: Sequence[tuple[str, outcomes.Trend]], lang: str) -> str:
    """Each outcome measure's baseline, its MCID mark and whether the latest score reached it, in words.

    items: (the questionnaire's title in lang, its trend from rehab_bot.outcomes.trends).
    """
    return "\n".join([t(lang, "Outcome measures"), *(f"{title}: {mcid_sentence(tr, lang)}" for title, tr in items)])


OUTCOME_SCALE = {"pain": 10.0, "psfs": 10.0, "odi": 100.0}


def render_outcome_chart(items: Sequence[tuple[str, outcomes.Trend]], lang: str) -> bytes:
    """A PNG with one panel per outcome measure: its scores by day after surgery and the MCID mark (dashed).

    Blocking (run it in a thread). Built anew each time: patients ask for it rarely, unlike the
    progress chart whose figure is kept.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = max(1, len(items))
    figure = Figure(figsize=(WIDTH_IN, 1.0 + 2.4 * panels), dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    axes = figure.subplots(panels, 1, squeeze=False)
    for (title, trend), (ax,) in zip(items, axes, strict=False):
        days = [s.day for s in trend.scores]
        values = [s.value for s in trend.scores]
        ax.plot(days, values, color="#0b5cad", marker="o" if len(days) <= 60 else "None", markersize=4, lw=1.6)
        top = OUTCOME_SCALE.get(trend.measure.questionnaire, 10.0)
        low, high = 0.0, top
        if trend.target is not None:
            ax.axhline(trend.target, color="#1e7b34", ls="--", lw=1.4, label=t(lang, "Meaningful improvement"))
            low, high = min(low, trend.target), max(high, trend.target)
            ax.legend(loc="upper right", fontsize=8, frameon=False)
        ax.set_ylim(low - top * 0.03, high + top * 0.03)
        ax.set_title(title, fontsize=11, loc="left")
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_xlabel(t(lang, "Day after surgery"), fontsize=8)
    figure.tight_layout()
    canvas.draw()
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    return buffer.getvalue()
