"""Outcome scores as charts with the MCID marked: the staff patient page and the patient's Mini App progress.

Thin: rehab_bot.outcomes.trends (through report.outcome_items) reads the scores and sets the mark
(the MCID from the baseline, one home: outcomes.target and outcomes.classify); this module only
shapes them for
``_outcome_charts.html`` and ``static/outcome_charts.js`` (uPlot: the scores by day after surgery
and the mark as a dashed line).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import outcomes, report
from rehab_bot.content import Content
from rehab_bot.formats import number
from rehab_bot.models import Patient

SCALE_MAX = {"pain": 10, "psfs": 10, "odi": 100}


@dataclass(frozen=True)
class OutcomeChart:
    key: str
    title: str
    trend: outcomes.Trend

    @property
    def data(self) -> dict[str, Any]:
        t = self.trend
        return {
            "x": [s.day for s in t.scores],
            "y": [s.value for s in t.scores],
            "target": t.target,
            "lower": t.measure.lower_is_better,
            "max": SCALE_MAX.get(self.key, 10),
        }


async def charts(session: AsyncSession, patient: Patient, content: Content, lang: str) -> list[OutcomeChart]:
    """One chart per outcome measure the patient has scores on, titled in lang."""
    items = await report.outcome_items(session, patient, content, lang)
    return [OutcomeChart(t.measure.questionnaire, title, t) for title, t in items]


async def template_values(session: AsyncSession, patient: Patient, content: Content, lang: str) -> dict[str, Any]:
    """What ``_outcome_charts.html`` needs: the charts, their data (for Jinja's tojson) and the number format."""
    found = await charts(session, patient, content, lang)
    return {
        "outcome_charts": found,
        "outcome_data": {c.key: c.data for c in found},
        "number": functools.partial(number, lang=lang),
    }
