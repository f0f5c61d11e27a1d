"""Micro-randomised experiments: draw at each decision point, record the outcome, estimate the effect.

An experiment is content (``experiments.toml``, rehab_bot.content.experiments),
off until the clinic sets ``running = true``. The only decision point is the
nudge after an unanswered session reminder: safety messages, red-flag and
crisis replies, alerts and check-ins never come here, so they are never
randomised.

* **Telling the patient.** The consent text mentions experiments while one
  runs (:func:`consent_text`); a patient who consents then counts as told
  (:func:`record_consent`). A patient who consented before any experiment ran
  is told once, before their first draw: the first nudge that would have been
  a decision point is sent as usual, not randomised, with the clinic's notice
  (text ``experiment_notice``) and a button to opt out (:func:`notice_due`,
  :func:`opt_out`). They count as told once that nudge was sent
  (:func:`mark_told`, from the sender's settle step): a notice that never went
  out is carried by their next nudge instead, and until then nothing is drawn.
  An opted-out patient is never randomised again; the ``ExperimentNotice`` row
  records who was told, how, and who opted out.
* **Decision.** When a nudge is due and its session is still open, the bot
  draws the treatment arm with the experiment's probability and stores the
  draw, the probability and the context (the patient's local hour, the day
  after surgery, the share of resolved sessions done in the 7 days before)
  in ``ExperimentDecision``, once per session (a retried render reads the
  same row, never draws again).
* **Proximal outcome.** Once ``outcome_hours`` have passed since the
  decision, ``outcome`` is 1 if the session was logged done or partly done
  within them, else 0 (:func:`record_outcomes`).
* **Estimate.** The weighted and centred least-squares estimator for
  micro-randomised trials (Boruvka, Almirall, Witkiewitz and Murphy, JASA
  2018): regress the outcome on an intercept and ``A - p~`` with weights
  ``p~^A (1-p~)^(1-A) / (p^A (1-p)^(1-A))``, where ``p`` is the stored
  probability of each draw and ``p~`` their mean; the coefficient of
  ``A - p~`` is the marginal effect of the treatment on the outcome's
  probability. Its variance is the sandwich estimate clustered by patient
  (decisions of one patient are not independent), with a G/(G-1) small-sample
  factor for G patients; the 95 % interval is the estimate +/- 1.96 standard
  errors. Correct whatever the (known) probabilities were, also when they
  differ between decision points.

Plain Python over SQLModel: no telegram imports.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, func, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import session as session_core
from rehab_bot import tapering
from rehab_bot.alert_detail import Value, join, message, render_value
from rehab_bot.alert_detail import content as content_text
from rehab_bot.content import Content
from rehab_bot.content.experiments import Experiment
from rehab_bot.db import insert_ignore
from rehab_bot.i18n import N_
from rehab_bot.models import (
    ExerciseSession,
    ExperimentDecision,
    ExperimentNotice,
    Kind,
    Patient,
    PatientStatus,
    table_of,
)
from rehab_bot.reminders import DueMessage
from rehab_bot.schedule import local_date, zone

DECISIONS = table_of(ExperimentDecision)
SESSIONS = table_of(ExerciseSession)
NOTICES = table_of(ExperimentNotice)
TOLD_AT_CONSENT, TOLD_BY_NOTICE, OPTED_OUT_FIRST = "consent", "notice", "opt-out"
NOTICE_PENDING = "pending"  # a nudge will carry the notice (ref); "notice" once it was sent
DONE = ("done", "partly")
RESOLVED = ("done", "partly", "skipped", "missed")
Z95 = 1.959964
_rng = random.SystemRandom()  # the draws (tests replace it with a seeded random.Random)
MIN_PATIENTS = 5  # fewer patients: no estimate is printed (and groups this small are suppressed)


def running(content: Content, decision: str) -> Experiment | None:
    """The experiment running at a decision point, if any (content allows one at most)."""
    return next((e for e in content.experiments.values() if e.running and e.decision == decision), None)


def any_running(content: Content) -> bool:
    """True while any experiment runs (the consent text then mentions experiments)."""
    return any(e.running for e in content.experiments.values())


def consent_text(content: Content, lang: str, **kwargs: object) -> str:
    """The clinic's consent text; while an experiment runs, with its experiment paragraph before the question."""
    text = content.text("consent", lang, **kwargs)
    if not any_running(content) or "experiment_consent" not in content.texts:
        return text
    notice = content.text("experiment_consent", lang, **kwargs)
    head, sep, question = text.rpartition("\n\n")
    return f"{head}\n{notice}{sep}{question}" if sep else f"{text}\n\n{notice}"


# --- telling the patient, and opting out ------------------------------------------------------------


async def notice_of(session: AsyncSession, patient_id: int) -> Row[datetime, str, int | None, datetime | None] | None:
    """The patient's ExperimentNotice row (told_at, via, ref, opted_out_at), or None if never told."""
    conn = await session.connection()
    n = NOTICES.c
    return (
        await conn.execute(select(n.told_at, n.via, n.ref, n.opted_out_at).where(n.patient_id == patient_id))
    ).first()


async def _tell(session: AsyncSession, patient_id: int, now: datetime, via: str, ref: int | None = None) -> None:
    conn = await session.connection()
    row = {"patient_id": patient_id, "told_at": now, "via": via, "ref": ref, "opted_out_at": None}
    await conn.execute(insert_ignore(conn.dialect.name, NOTICES, keys=["patient_id"]), [row])


async def record_consent(session: AsyncSession, content: Content, patient_id: int, now: datetime) -> None:
    """At consent: while an experiment runs the consent text mentioned it, so the patient counts as told.

    The caller commits (with the consent).
    """
    if any_running(content):
        await _tell(session, patient_id, now, TOLD_AT_CONSENT)


async def opted_out(session: AsyncSession, patient_id: int) -> bool:
    found = await notice_of(session, patient_id)
    return found is not None and found.opted_out_at is not None


async def opt_out(session: AsyncSession, patient_id: int, now: datetime) -> bool:
    """The patient wants no part in experiments: never randomised again. False if they had opted out already.

    Their earlier decisions stay in the estimate (they were randomised with their knowledge); the caller commits.
    """
    found = await notice_of(session, patient_id)
    if found is not None and found.opted_out_at is not None:
        return False
    conn = await session.connection()
    if found is None:
        await _tell(session, patient_id, now, OPTED_OUT_FIRST)
    await conn.execute(update(NOTICES).where(NOTICES.c.patient_id == patient_id).values(opted_out_at=now))
    return True


async def notice_due(session: AsyncSession, content: Content, patient_id: int, session_id: int) -> bool:
    """For the renderer: this session's nudge carries the one-time notice (read only)."""
    if running(content, "nudge") is None:
        return False
    found = await notice_of(session, patient_id)
    return (
        found is not None
        and found.via in (NOTICE_PENDING, TOLD_BY_NOTICE)
        and found.ref == session_id
        and found.opted_out_at is None
    )


async def mark_told(session: AsyncSession, session_ids: Sequence[int], now: datetime) -> None:
    """After nudges were sent: a notice they carried has now been told (the caller commits)."""
    n = NOTICES.c
    await (await session.connection()).execute(
        update(NOTICES)
        .where(n.via == NOTICE_PENDING, n.ref.in_(list(session_ids)))
        .values(via=TOLD_BY_NOTICE, told_at=now)
    )


async def opt_out_count(session: AsyncSession) -> int:
    """How many patients opted out of experiments (the report prints it)."""
    conn = await session.connection()
    found = await conn.execute(select(func.count()).select_from(NOTICES).where(NOTICES.c.opted_out_at.is_not(None)))
    return int(found.scalar_one())


# --- the decision point ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """What a decision point became: send the nudge or not, and with which text (None: the bot's own)."""

    experiment: Experiment
    treated: bool

    @property
    def send(self) -> bool:
        return self.treated or self.experiment.control == "send"

    def text(self, lang: str) -> str | None:
        texts = self.experiment.treatment_text if self.treated else self.experiment.control_text
        if texts is None:
            return None
        return texts.get(lang) or texts["en"]


async def _adherence(session: AsyncSession, patient: Patient, now: datetime) -> float | None:
    today = local_date(patient, now)
    s = SESSIONS.c
    conn = await session.connection()
    rows = (
        await conn.execute(
            select(s.status, func.count())
            .where(
                s.patient_id == patient.id,
                s.local_date >= today - timedelta(days=7),
                s.local_date < today,
                s.status.in_(RESOLVED),
            )
            .group_by(s.status)
        )
    ).all()
    total = sum(n for _, n in rows)
    return None if total == 0 else sum(n for status, n in rows if status in DONE) / total


async def decide_nudge(
    session: AsyncSession,
    content: Content,
    patient: Patient,
    es: ExerciseSession,
    now: datetime,
    draw: Callable[[], float] | None = None,
) -> Assignment | None:
    """At a due nudge for an open session: the running experiment's arm, drawn once; None without one."""
    experiment = running(content, "nudge")
    if experiment is None:
        return None
    assert patient.id is not None and es.id is not None
    if await opted_out(session, patient.id):
        return None  # never randomised after opting out
    conn = await session.connection()
    key = (
        col(ExperimentDecision.experiment_id) == experiment.id,
        col(ExperimentDecision.patient_id) == patient.id,
        col(ExperimentDecision.ref) == es.id,
    )
    found = (await conn.execute(select(DECISIONS.c.treated).where(*key))).first()
    if found is None:
        local = now.astimezone(zone(patient.timezone))
        row = {
            "experiment_id": experiment.id,
            "patient_id": patient.id,
            "ref": es.id,
            "decided_at": now,
            "treated": (draw or _rng.random)() < experiment.probability,
            "probability": experiment.probability,
            "local_hour": local.hour,
            "programme_day": (local.date() - patient.surgery_date).days if patient.surgery_date else None,
            "adherence": await _adherence(session, patient, now),
        }
        await conn.execute(
            insert_ignore(conn.dialect.name, DECISIONS, keys=["experiment_id", "patient_id", "ref"]), [row]
        )
        found = (await conn.execute(select(DECISIONS.c.treated).where(*key))).first()
        assert found is not None
    return Assignment(experiment, bool(found.treated))


async def draw_for_nudge(
    session: AsyncSession,
    content: Content,
    message: DueMessage,
    now: datetime,
    *,
    taper_weeks: int = 0,
    taper_adherence: float = 1.0,
) -> None:
    """Before a nudge is rendered: the running experiment's draw for its session, once; commits.

    Only a nudge whose session still waits for an answer is a decision point
    (the renderer drops the others anyway), and none once the patient's
    nudges have tapered off (rehab_bot.tapering, with the ``[delivery]`` settings). The renderer
    then only reads the draw (:func:`assignment_of`).
    """
    if running(content, "nudge") is None or message.kind != Kind.NUDGE.value or message.patient_id is None:
        return
    ref = session_core.parse_payload(message.payload)
    patient = await session.get(Patient, message.patient_id)
    if ref.session_id is None or patient is None or patient.id is None or patient.status != PatientStatus.ACTIVE:
        return
    es = await session_core.nudge_target(session, patient.id, ref.session_id, now)
    if es is None or es.local_date < local_date(patient, now):
        return
    if await tapering.nudges_stopped(session, patient, now, taper_weeks, taper_adherence):
        return
    told = await notice_of(session, patient.id)
    if told is None or (told.via == NOTICE_PENDING and told.ref != es.id and told.opted_out_at is None):
        # Not told yet (consented before any experiment ran, or the nudge meant to tell them never went
        # out): this nudge tells them (the renderer adds the notice and the opt-out button) and is sent
        # as usual, not randomised; they count as told once it was sent (mark_told).
        if told is None:
            await _tell(session, patient.id, now, NOTICE_PENDING, es.id)
        else:
            n = NOTICES.c
            await (await session.connection()).execute(
                update(NOTICES).where(n.patient_id == patient.id).values(ref=es.id, told_at=now)
            )
        await session.commit()
        return
    if (
        told.opted_out_at is not None
        or told.via == NOTICE_PENDING
        or (told.via == TOLD_BY_NOTICE and told.ref == es.id)
    ):
        return
    await decide_nudge(session, content, patient, es, now)
    await session.commit()


async def assignment_of(session: AsyncSession, content: Content, patient_id: int, session_id: int) -> Assignment | None:
    """The running nudge experiment's draw for this session, if one was made (read only)."""
    experiment = running(content, "nudge")
    if experiment is None:
        return None
    conn = await session.connection()
    d = DECISIONS.c
    found = (
        await conn.execute(
            select(d.treated).where(d.experiment_id == experiment.id, d.patient_id == patient_id, d.ref == session_id)
        )
    ).first()
    return None if found is None else Assignment(experiment, bool(found.treated))


async def record_outcomes(session: AsyncSession, content: Content, now: datetime) -> int:
    """Fill the proximal outcome of every decision whose window has passed; return how many. The caller commits."""
    d, s = DECISIONS.c, SESSIONS.c
    conn = await session.connection()
    pending = (
        await conn.execute(
            select(d.id, d.experiment_id, d.decided_at, s.status, s.answered_at)
            .join(SESSIONS, s.id == d.ref, isouter=True)
            .where(d.outcome.is_(None))
        )
    ).all()
    filled = 0
    for row in pending:
        experiment = content.experiments.get(row.experiment_id)
        hours = experiment.outcome_hours if experiment is not None else 3
        decided = row.decided_at if row.decided_at.tzinfo else row.decided_at.replace(tzinfo=now.tzinfo)
        end = decided + timedelta(hours=hours)
        if end > now:
            continue
        answered = row.answered_at
        if answered is not None and answered.tzinfo is None:
            answered = answered.replace(tzinfo=now.tzinfo)
        outcome = int(row.status in DONE and answered is not None and answered <= end)
        await conn.execute(update(DECISIONS).where(d.id == row.id).values(outcome=outcome, outcome_at=now))
        filled += 1
    return filled


# --- the estimate ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    patient: int
    treated: bool
    probability: float
    outcome: int


@dataclass(frozen=True)
class Estimate:
    """The marginal effect of treatment on the proximal outcome's probability, with its 95 % interval."""

    effect: float
    se: float
    low: float
    high: float
    decisions: int
    patients: int


def estimate(observations: Sequence[Observation]) -> Estimate | None:
    """Weighted and centred least squares (see the module docstring); None with fewer than 2 patients or one arm."""
    obs = list(observations)
    patients = {o.patient for o in obs}
    if len(patients) < 2 or len({o.treated for o in obs}) < 2:
        return None
    p_tilde = sum(o.probability for o in obs) / len(obs)
    rows = []
    for o in obs:
        a = 1.0 if o.treated else 0.0
        w = (p_tilde / o.probability) if o.treated else ((1 - p_tilde) / (1 - o.probability))
        rows.append((o.patient, w, a - p_tilde, float(o.outcome)))
    # Bread: sum w x x' with x = (1, c).
    b11 = sum(w for _, w, _, _ in rows)
    b12 = sum(w * c for _, w, c, _ in rows)
    b22 = sum(w * c * c for _, w, c, _ in rows)
    r1 = sum(w * y for _, w, _, y in rows)
    r2 = sum(w * c * y for _, w, c, y in rows)
    det = b11 * b22 - b12 * b12
    if det <= 0:
        return None
    alpha = (b22 * r1 - b12 * r2) / det
    beta = (b11 * r2 - b12 * r1) / det
    # Meat: per patient, u = sum w e x.
    per: dict[int, list[float]] = {}
    for patient, w, c, y in rows:
        e = y - alpha - beta * c
        u = per.setdefault(patient, [0.0, 0.0])
        u[0] += w * e
        u[1] += w * e * c
    m11 = sum(u[0] * u[0] for u in per.values())
    m12 = sum(u[0] * u[1] for u in per.values())
    m22 = sum(u[1] * u[1] for u in per.values())
    # Var(beta) = [B^-1 M B^-1]_22, with B^-1 = [[b22, -b12], [-b12, b11]] / det.
    i21, i22 = -b12 / det, b11 / det
    var = i21 * i21 * m11 + 2 * i21 * i22 * m12 + i22 * i22 * m22
    g = len(per)
    var *= g / (g - 1)
    se = math.sqrt(max(var, 0.0))
    return Estimate(beta, se, beta - Z95 * se, beta + Z95 * se, len(obs), g)


# --- the report ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    decisions: int
    patients: int
    outcomes: int  # decisions followed by the outcome

    @property
    def rate(self) -> float | None:
        return self.outcomes / self.decisions if self.decisions else None


@dataclass(frozen=True)
class ExperimentReport:
    experiment: Experiment
    decided: int  # every decision point so far
    waiting: int  # decisions whose outcome window has not passed
    treatment: Arm
    control: Arm
    estimate: Estimate | None  # None while an arm has fewer than MIN_PATIENTS patients
    opted_out: int = 0  # patients who opted out of experiments (all experiments)


def _of_patients(query: Select[Any], patients: Collection[int] | None) -> Select[Any]:
    """The query over decisions kept to these patients' (None: everyone's)."""
    return query if patients is None else query.where(DECISIONS.c.patient_id.in_(list(patients)))


async def observations(
    session: AsyncSession, experiment_id: str, patients: Collection[int] | None = None
) -> list[Observation]:
    """The decisions with a recorded outcome; only those of ``patients`` when given."""
    d = DECISIONS.c
    conn = await session.connection()
    query = select(d.patient_id, d.treated, d.probability, d.outcome).where(
        d.experiment_id == experiment_id, d.outcome.is_not(None)
    )
    rows = await conn.execute(_of_patients(query, patients))
    return [Observation(r.patient_id, bool(r.treated), float(r.probability), int(r.outcome)) for r in rows]


def _arm(obs: Sequence[Observation]) -> Arm:
    return Arm(len(obs), len({o.patient for o in obs}), sum(o.outcome for o in obs))


async def report(
    session: AsyncSession,
    content: Content,
    experiment_id: str,
    now: datetime,
    patients: Collection[int] | None = None,
) -> ExperimentReport:
    """The experiment's arms and estimate; outcomes due by now are recorded first (the caller commits).

    ``patients``: count only these patients' decisions (the outcomes report: those enrolled in its
    period); None counts every patient.
    """
    experiment = content.experiments[experiment_id]
    await record_outcomes(session, content, now)
    obs = await observations(session, experiment_id, patients)
    conn = await session.connection()
    counted = select(func.count()).select_from(DECISIONS).where(DECISIONS.c.experiment_id == experiment_id)
    decided = (await conn.execute(_of_patients(counted, patients))).scalar_one()
    treatment, control = _arm([o for o in obs if o.treated]), _arm([o for o in obs if not o.treated])
    small = min(treatment.patients, control.patients) < MIN_PATIENTS
    return ExperimentReport(
        experiment,
        int(decided),
        int(decided) - len(obs),
        treatment,
        control,
        None if small else estimate(obs),
        await opt_out_count(session),
    )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def report_lines(r: ExperimentReport, lang: str = "en") -> list[str]:
    """The report as plain text lines in lang (the CLI prints them in English; the admin page shows them in
    the reader's language); arms with fewer than MIN_PATIENTS patients suppressed."""
    return [render_value(part, lang) for part in report_parts(r)]


def report_parts(r: ExperimentReport) -> list[Value]:
    """report_lines as language-neutral parts (rehab_bot.alert_detail's values)."""
    e = r.experiment
    treatment = message(N_("nudge (treatment text)")) if e.treatment_text else message(N_("nudge"))
    control = message(N_("no nudge")) if e.control == "skip" else message(N_("nudge (control text)"))
    lines: list[Value] = [
        message(N_("Experiment {id}: {title}"), id=e.id, title=content_text(e.title)),
        message(
            N_(
                "Status: {status}; decision point: {decision}; P(treatment) = {probability}; treatment: {treatment}; "
                "control: {control}"
            ),
            status=message(N_("running") if e.running else N_("not running")),
            decision=e.decision,
            probability=f"{e.probability:g}",
            treatment=treatment,
            control=control,
        ),
        message(
            N_("Proximal outcome: session logged done or partly within {hours} h of the decision point"),
            hours=str(e.outcome_hours),
        ),
        message(
            N_("Decision points: {decided} ({waiting} still inside their outcome window)"),
            decided=str(r.decided),
            waiting=str(r.waiting),
        ),
    ]
    for name, arm in ((N_("treatment"), r.treatment), (N_("control"), r.control)):
        if arm.patients < MIN_PATIENTS:
            said = message(N_("{arm}: fewer than {n} patients, suppressed"), arm=message(name), n=str(MIN_PATIENTS))
        else:
            said = message(
                N_("{arm}: {decisions} decisions, {patients} patients, outcome {rate} (unweighted)"),
                arm=message(name),
                decisions=str(arm.decisions),
                patients=str(arm.patients),
                rate=_pct(arm.rate),
            )
        lines.append(join("", "  ", said))
    lines.append(
        message(N_("Patients who opted out of experiments: {n}"), n=str(r.opted_out))
        if r.opted_out == 0 or r.opted_out >= MIN_PATIENTS
        else message(N_("Patients who opted out of experiments: fewer than {n}"), n=str(MIN_PATIENTS))
    )
    if r.estimate is None:
        lines.append(
            message(N_("Effect: not estimated (needs at least {n} patients in each arm)"), n=str(MIN_PATIENTS))
        )
    else:
        est = r.estimate
        lines.append(
            message(
                N_(
                    "Effect on the outcome's probability: {effect} percentage points (95 % CI {low} to {high}; "
                    "{decisions} decisions, {patients} patients)"
                ),
                effect=f"{est.effect * 100:+.1f}",
                low=f"{est.low * 100:+.1f}",
                high=f"{est.high * 100:+.1f}",
                decisions=str(est.decisions),
                patients=str(est.patients),
            )
        )
        lines.append(
            message(
                N_("Method: weighted and centred least squares (Boruvka et al. 2018), sandwich SE clustered by patient")
            )
        )
    return lines
