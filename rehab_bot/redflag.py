"""Red flags: which answers alert the clinic, how urgently, and what the patient is told.

Every rule is content (``questionnaires.toml``, ``crisis.toml``); this module
implements the kinds. Severities, lowest first: ``low``, ``high``,
``critical``, ``emergency``. Every alert goes through
:func:`rehab_bot.alert.raise_alert`: deliveries of kind ``alert`` (priority
1, never deferred by quiet hours) to the patient's therapist and the clinic's
alert chat, or at once to every admin when the patient has no active
therapist (:func:`rehab_bot.alert.route`), sent by the dispatch job within one
``delivery.poll_interval``.

Severities and triage levels (``content.checkins.level_of``, the one
mapping): ``emergency`` is the emergency level (call the emergency number
now; escalates to the admins after ``[staff] escalation_minutes``);
``critical`` and ``high`` are the urgent level (contact the clinic today;
escalate after ``[staff] urgent_escalation_minutes`` of office time); ``low``
is routine (the therapist sees it; no escalation).
What the patient must do now is never queued: the handler replies at once
with :func:`reply_text`.

The rules
---------

* **Flagged answers** (``flag`` on an answer option, e.g. the symptom check's
  "Yes"): alert at once, kind ``red_flag``, with the option's severity; the
  patient is shown the option's ``reply`` text ("red_flag" = call 112 now for
  emergencies, "red_flag_urgent" = contact the clinic today otherwise). One
  alert per check-in and item.
* **Score rules** (``[[rule]]``), run when a check-in completes, kind
  ``checkin``. For a patient's completed check-ins of the rule's questionnaire,
  in order (``checkin.score``; for "pain" that is the NRS answer):

  - ``score_at_least``: score >= threshold (pain >= 7: critical; PHQ-2 >= 3:
    high; GAD-2 >= 3: low).
  - ``rise``: score >= min_score and score - previous entry >= rise (pain >= 5
    and +1: low; +2: high).
  - ``above_baseline``: score - baseline >= rise, where the **baseline** is the
    mean of the patient's entries on the first ``days`` calendar days counted
    from the day of their first entry (default 3), and only entries after that
    window are compared (pain 3 or more above baseline: high).
  - ``trend``: the daily mean rose on each of the last ``days`` days (all with
    entries), by ``rise`` or more in all (pain up 2+ over 3 days: high).

  When several rules match one entry, one alert goes out with the highest
  severity, naming every match; the patient sees the message of the most
  severe matching rule that has one. At most one such alert per patient,
  questionnaire, local day and severity: a second high pain entry the same
  day does not page the therapist again (the patient is still told what to do).
* **Pain during a session** (the 0-10 after Done or Partly, in the chat or the
  Mini App): held to the pain questionnaire's ``score_at_least`` rules (pain
  >= 7: critical), kind ``session_pain``, one alert per session
  (:func:`on_session_pain`); the patient reads the clinic's ``exercise_pain``
  text instead of praise.
* **Inactivity** (``inactive`` rules, kind ``inactive``): no answer of any
  kind (check-in answer, session logged, note) for ``hours`` since the last
  one, checked periodically by :func:`check_inactive` against the injected
  clock. 48 h: low; 14 days ("stalled"): high. One alert per silence.
* **Crisis phrases** (``crisis.toml``) in anything the patient types: the
  "crisis" text at once, the message kept as a crisis note, and an alert of
  kind ``crisis``, severity emergency.
* **The crisis question** ("Do you have thoughts of ending your life ...?"),
  asked when a message holds a word of danger too common to alert on by
  itself (``[[concern]]``): Yes is a crisis as above; Yes or No closes every
  open question of the patient's (:func:`crisis_question_answered`). One
  still open ``[staff] crisis_question_minutes`` after it was asked raises
  one critical alert of kind ``crisis_question`` with the message it asked
  about (:func:`check_unanswered_questions`, run periodically).

Medbridge's rule set, mapped: pain >= 5 with a rise of >= 1 is low, a rise
of >= 2 is high, >= 7 is critical, 49 h without activity is low and 14 days
is stalled. Our defaults meet each of these and beat the 49 h (48 h); the
flagged symptoms (cauda equina signs, chest pain) add an ``emergency`` level
Medbridge does not have.

Plain Python over SQLModel: no telegram imports. Logs carry ids only.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from statistics import fmean
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import crisis
from rehab_bot.alert import raise_alert, route, shorten
from rehab_bot.alert_detail import Value, fixed, join, message, plural_message
from rehab_bot.alert_detail import content as content_text
from rehab_bot.config import ClinicConfig
from rehab_bot.content import Content, localize
from rehab_bot.content.checkins import AlertRule, Item, Option, Questionnaire, level_of
from rehab_bot.i18n import N_, t
from rehab_bot.models import (
    Alert,
    Answer,
    CheckIn,
    CrisisQuestion,
    ExerciseSession,
    Note,
    Patient,
    PatientStatus,
    table_of,
)
from rehab_bot.schedule import local_date, zone

log = logging.getLogger(__name__)

SEVERITY_RANK = {"low": 0, "high": 1, "critical": 2, "emergency": 3}
# Alert kinds that make a day a "red-flag day" (no motivational message then).
RED_FLAG_KINDS = ("red_flag", "checkin", "crisis", "crisis_question", "session_pain")
DEFAULT_REPLY = {"emergency": "red_flag"}
DEFAULT_URGENT_REPLY = "red_flag_urgent"
CRISIS_REPLY = "crisis"  # the content text shown on a crisis phrase


def reply_id(option: Option) -> str:
    """The [[text]] id a flagged answer option shows the patient: its own reply, else its level's default."""
    return option.reply or DEFAULT_REPLY.get(option.flag or "high", DEFAULT_URGENT_REPLY)


@dataclass(frozen=True)
class Finding:
    """A red flag found in what the patient said, and what to tell them now."""

    severity: str
    text_ids: tuple[str, ...] = ()  # content [[text]] ids to show, in order
    message: dict[str, str] | None = None  # a rule's own message
    told_team: bool = False  # the care team gets (or already got) an alert
    alert_id: int | None = None


def clinic_contact(clinic: ClinicConfig, lang: str) -> str:
    """How to reach the clinic today: its phone number and hours, in the patient's language."""
    if clinic.phone.strip():
        line = t(lang, "Call {clinic}: {phone}", clinic=clinic.name, phone=clinic.phone.strip())
    else:
        line = t(lang, "Call {clinic} on the number in your discharge papers.", clinic=clinic.name)
    hours = clinic.text("phone_hours", lang).strip()
    if hours:
        line += "\n" + t(lang, "Phone hours: {hours}", hours=hours)
    return line


def reply_text(finding: Finding, content: Content, lang: str, clinic: ClinicConfig) -> str:
    """What the patient reads at once: what to do now, the clinic's own contact texts, who was told.

    The level decides the clinic's lines that always close the reply, whatever
    the content says: emergency (and crisis) = the clinic's emergency_text;
    urgent = the clinic's phone number and hours; routine = nothing more.
    """
    parts: list[str] = []
    if finding.message:
        parts.append(localize(finding.message, lang))
    for text_id in finding.text_ids:
        if text_id in content.texts:
            parts.append(content.text(text_id, lang, clinic=clinic.name, phone=clinic.phone).strip())
    level = level_of(finding.severity)
    if not parts and level != "routine":  # never leave a red flag without an instruction
        parts.append(content.text("emergency", lang, clinic=clinic.name, phone=clinic.phone).strip())
    if level == "emergency":
        parts.append(clinic.text("emergency_text", lang).strip())
    elif level == "urgent":
        parts.append(clinic_contact(clinic, lang))
    if finding.told_team:
        parts.append(t(lang, "Your care team has been told."))
    return "\n\n".join(p for p in parts if p)


def worst(findings: Sequence[Finding]) -> Finding | None:
    """The most severe finding."""
    return max(findings, key=lambda f: SEVERITY_RANK[f.severity], default=None)


async def has_recipients(session: AsyncSession, patient: Patient, clinic: ClinicConfig) -> bool:
    """True when an alert about this patient reaches somebody (see :func:`rehab_bot.alert.route`)."""
    return (await route(session, patient, clinic)).reaches_someone


def _first_line(text: str, limit: int = 120) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return shorten(line, limit)


# What the clinician's alert says of an answer that is no option's label (msgids).
SKIPPED = N_("skipped")
YES = N_("Yes")
NO = N_("No")


def _label(item: Item, value: int | None) -> Value:
    if value is None:
        return message(SKIPPED)
    if item.yes_no:
        return message(YES if value else NO)
    option = item.option(value)
    if option is None or option.label.get("en", "") == str(value):
        return str(value)
    return join("", content_text(option.label), f" ({value})")


def describe_answers(
    questionnaire: Questionnaire, answers: dict[str, Answer], flagged: str | None = None
) -> list[Value]:
    """The answers of one check-in for the clinician's alert: a line each (alert_detail parts), the
    questions and options in every language of the content. ⚠ marks the flagged answer and the answers
    that led to its question (its `when`): a fever's "Yes", not only the "No" about the wound after it."""
    marked = _led_to(questionnaire, answers, flagged)
    lines: list[Value] = []
    for item in questionnaire.items:
        answer = answers.get(item.id)
        if answer is None:
            continue
        mark = "⚠ " if item.id in marked else "- "
        question = content_text({lang: _first_line(text) for lang, text in item.text.items()})
        lines.append(join("", mark, question, " ", _label(item, answer.value)))
    return lines


def _led_to(questionnaire: Questionnaire, answers: dict[str, Answer], flagged: str | None) -> set[str]:
    """The flagged item and, back through each follow-up's `when`, the answers that had it asked."""
    items = {item.id: item for item in questionnaire.items}
    marked: set[str] = set()
    todo = [flagged] if flagged is not None else []
    while todo:
        item_id = todo.pop()
        if item_id in marked or item_id not in items:
            continue
        marked.add(item_id)
        for earlier, allowed in (items[item_id].when or {}).items():
            answer = answers.get(earlier)
            if answer is not None and answer.value in allowed:
                todo.append(earlier)
    return marked


async def _raise(
    session: AsyncSession,
    patient: Patient,
    clinic: ClinicConfig,
    *,
    kind: str,
    severity: str,
    detail: Sequence[Value],
    key: str,
    now: datetime,
) -> tuple[int | None, bool]:
    alert = await raise_alert(
        session, patient, kind=kind, severity=severity, detail=detail, now=now, clinic=clinic, key=key
    )
    # Nobody to tell is logged at ERROR by raise_alert, once per alert.
    told = await has_recipients(session, patient, clinic)
    return (alert.id if alert is not None else None), told


# --------------------------------------------------------------------------- flagged answers


async def on_flagged_answer(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    clinic: ClinicConfig,
    checkin: CheckIn,
    questionnaire: Questionnaire,
    item: Item,
    option: Option,
    answers: dict[str, Answer],
    now: datetime,
    *,
    note: str = "",
) -> Finding:
    """A red-flag answer: alert the clinic now, and say what the patient must do (``note``: a msgid, a line
    for the clinician after the answers)."""
    severity = option.flag or "high"
    text_id = reply_id(option)
    detail: list[Value] = [
        message(N_("{questionnaire}:"), questionnaire=content_text(questionnaire.title)),
        *describe_answers(questionnaire, answers, flagged=item.id),
    ]
    if note:
        detail.append(message(note))
    if level_of(severity) == "emergency":
        detail.append(message(N_("The patient was told to call the emergency number now.")))
    elif level_of(severity) == "urgent":
        detail.append(message(N_("The patient was told to contact the clinic today.")))
    alert_id, told = await _raise(
        session,
        patient,
        clinic,
        kind="red_flag",
        severity=severity,
        detail=detail,
        key=f"flag:{checkin.id}:{item.id}",
        now=now,
    )
    log.info("red flag (%s) on check-in %s item %s", severity, checkin.id, item.id)
    return Finding(severity, (text_id,), None, told, alert_id)


# --------------------------------------------------------------------------- score rules


@dataclass(frozen=True)
class Entry:
    """One scored check-in in a patient's history."""

    checkin_id: int
    local_date: date
    score: float


def _daily_means(entries: Sequence[Entry]) -> dict[date, float]:
    by_day: dict[date, list[float]] = {}
    for entry in entries:
        by_day.setdefault(entry.local_date, []).append(entry.score)
    return {day: fmean(scores) for day, scores in by_day.items()}


def baseline(entries: Sequence[Entry], days: int) -> tuple[float, date] | None:
    """(mean of the first `days` days' entries, first day after the window), or None."""
    if not entries:
        return None
    first = min(e.local_date for e in entries)
    end = first + timedelta(days=days)
    window = [e.score for e in entries if e.local_date < end]
    return (fmean(window), end) if window else None


def evaluate(rule: AlertRule, entries: Sequence[Entry]) -> Value | None:
    """Does the rule match the last entry? Returns the clinician's reason (an alert_detail value), or None."""
    if not entries:
        return None
    current = entries[-1]
    value = current.score
    if rule.kind == "score_at_least":
        assert rule.threshold is not None
        if value >= rule.threshold:
            return message(
                N_("{score} is at or above {threshold} [{rule}]"), score=value, threshold=rule.threshold, rule=rule.id
            )
    elif rule.kind == "rise":
        assert rule.rise is not None
        if len(entries) < 2 or value < (rule.min_score or 0):
            return None
        previous = entries[-2].score
        if value - previous >= rule.rise:
            return message(
                N_("up {rise} from the previous {previous} [{rule}]"),
                rise=value - previous,
                previous=previous,
                rule=rule.id,
            )
    elif rule.kind == "above_baseline":
        assert rule.rise is not None and rule.days is not None
        found = baseline(entries[:-1], rule.days)
        if found is None or current.local_date < found[1]:
            return None
        base = found[0]
        if value - base >= rule.rise:
            return message(
                N_("{rise} above the baseline {baseline} (first {days} days) [{rule}]"),
                rise=fixed(value - base),
                baseline=fixed(base),
                days=rule.days,
                rule=rule.id,
            )
    elif rule.kind == "trend":
        assert rule.rise is not None and rule.days is not None
        means = _daily_means(entries)
        days = [current.local_date - timedelta(days=n) for n in range(rule.days - 1, -1, -1)]
        if not all(d in means for d in days):
            return None
        series = [means[d] for d in days]
        rising = all(b > a for a, b in itertools.pairwise(series))
        if rising and series[-1] - series[0] >= rule.rise:
            return message(
                N_("rose every day for {days} days: {means} [{rule}]"),
                days=rule.days,
                means=join(" → ", *(fixed(s) for s in series)),
                rule=rule.id,
            )
    return None


async def history(session: AsyncSession, patient: Patient, questionnaire_id: str) -> list[Entry]:
    """The patient's scored, completed check-ins of a questionnaire, oldest first."""
    rows = await session.exec(
        select(CheckIn)
        .where(
            CheckIn.patient_id == patient.id,
            CheckIn.questionnaire_id == questionnaire_id,
            CheckIn.status == "complete",
            col(CheckIn.score).is_not(None),
        )
        .order_by(col(CheckIn.completed_at), col(CheckIn.id))
    )
    result = []
    for checkin in rows.all():
        assert checkin.id is not None and checkin.score is not None
        day = checkin.local_date or local_date(patient, checkin.completed_at or checkin.started_at)
        result.append(Entry(checkin.id, day, float(checkin.score)))
    return result


async def score_matches(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    checkin: CheckIn,
    questionnaire: Questionnaire,
    now: datetime,
) -> tuple[list[tuple[AlertRule, Value]], list[Entry]]:
    """The score rules a completed check-in matches (most severe first, each with its reason), and the entries read.

    The check-in is read as the newest of its questionnaire's entries. The one evaluation behind
    :func:`on_score`, which alerts, and the check-in result page (checkin.latest_findings), which shows
    the same finding again.
    """
    if checkin.score is None:
        return [], []
    rules = [r for r in content.alert_rules.values() if r.questionnaire == questionnaire.id]
    if not rules:
        return [], []
    entries = await history(session, patient, questionnaire.id)
    if not entries or entries[-1].checkin_id != checkin.id:
        entries = [e for e in entries if e.checkin_id != checkin.id]
        entries.append(Entry(checkin.id or 0, checkin.local_date or now.date(), checkin.score))
    return matching(rules, entries), entries


def matching(rules: Sequence[AlertRule], entries: Sequence[Entry]) -> list[tuple[AlertRule, Value]]:
    """The rules the entries match, each with its reason, most severe first (score_matches, on_session_pain)."""
    matched = [(rule, reason) for rule in rules if (reason := evaluate(rule, entries)) is not None]
    matched.sort(key=lambda m: SEVERITY_RANK[m[0].severity], reverse=True)
    return matched


def score_finding(matched: Sequence[tuple[AlertRule, Value]], told: bool, alert_id: int | None = None) -> Finding:
    """What the patient reads for matched score rules: the most severe level, the first rule that speaks."""
    severity = matched[0][0].severity
    speaking = next((r for r, _ in matched if r.message or r.patient_text), None)
    if speaking is None:
        return Finding(severity, (), None, told, alert_id)
    texts = (speaking.patient_text,) if speaking.patient_text else ()
    return Finding(severity, texts, speaking.message, told, alert_id)


async def on_score(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    clinic: ClinicConfig,
    checkin: CheckIn,
    questionnaire: Questionnaire,
    now: datetime,
) -> Finding | None:
    """Run the score rules for a just-completed check-in; alert once for all matches."""
    matched, entries = await score_matches(session, patient, content, checkin, questionnaire, now)
    if not matched:
        return None
    assert checkin.score is not None
    severity = matched[0][0].severity
    detail: list[Value] = [
        message(N_("{questionnaire}: {score}."), questionnaire=content_text(questionnaire.title), score=checkin.score),
        *(join("", "- ", reason) for _, reason in matched),
        message(N_("Recent entries (oldest first): {scores}"), scores=join(", ", *(e.score for e in entries[-6:]))),
    ]
    day = checkin.local_date or now.date()
    alert_id, told = await _raise(
        session,
        patient,
        clinic,
        kind="checkin",
        severity=severity,
        detail=detail,
        key=f"score:{patient.id}:{questionnaire.id}:{day.isoformat()}:{severity}",
        now=now,
    )
    log.info("score rules matched on check-in %s: %s", checkin.id, ",".join(r.id for r, _ in matched))
    return score_finding(matched, told, alert_id)


# --------------------------------------------------------------------------- pain during a session

SESSION_PAIN_TEXT = "exercise_pain"  # the clinic's advice on pain with the exercises (texts.toml)


def session_pain_rules(content: Content) -> list[AlertRule]:
    """The rules pain during a session is held to: the pain questionnaire's ``score_at_least`` rules."""
    return [r for r in content.alert_rules.values() if r.questionnaire == "pain" and r.kind == "score_at_least"]


async def on_session_pain(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    clinic: ClinicConfig,
    es: ExerciseSession,
    now: datetime,
) -> Finding | None:
    """Pain during a session's exercises (0-10), held to the pain questionnaire's ``score_at_least`` rules.

    The threshold and severity are the check-in pain's own (``pain-critical``: 7 or more is critical),
    read from the content, so the rule has one home; the rises and trends stay with the check-ins,
    which ask for pain at rest. A match raises one alert for the session (kind ``session_pain``) and
    the patient reads the clinic's exercise_pain text (do not push through it; when to call), the
    rule's message, the clinic's contact lines and whether the team was told; None below the threshold.
    """
    if es.pain is None or es.id is None:
        return None
    day = es.local_date or now.date()
    matched = matching(session_pain_rules(content), [Entry(0, day, es.pain)])
    if not matched:
        return None
    severity = matched[0][0].severity
    detail: list[Value] = [
        message(N_("Pain during the exercises of the {slot} session: {score}."), slot=es.slot, score=es.pain),
        *(join("", "- ", reason) for _, reason in matched),
    ]
    alert_id, told = await _raise(
        session,
        patient,
        clinic,
        kind="session_pain",
        severity=severity,
        detail=detail,
        key=f"session-pain:{es.id}",
        now=now,
    )
    log.info("pain rules matched on session %s: %s", es.id, ",".join(r.id for r, _ in matched))
    finding = score_finding(matched, told, alert_id)
    if SESSION_PAIN_TEXT in content.texts:
        finding = Finding(severity, (SESSION_PAIN_TEXT,), finding.message, told, alert_id)
    return finding


# --------------------------------------------------------------------------- crisis phrases


def crisis_phrases(content: Content) -> list[str]:
    """Every crisis pattern in every language, as written in crisis.toml."""
    return list(dict.fromkeys(p.source for p in crisis.crisis_patterns(content)))


def is_crisis(text: str, content: Content) -> bool:
    """True when the text matches a crisis pattern (any language; see rehab_bot.crisis)."""
    return crisis.is_crisis(text, content)


async def on_crisis(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    clinic: ClinicConfig,
    text: str,
    now: datetime,
    *,
    answered_yes: bool = False,
) -> Finding:
    """Keep the message as a crisis note, alert the clinic, and show the crisis text. answered_yes: the
    patient answered Yes to the crisis question about this message (the alert says so)."""
    assert patient.id is not None
    note = Note(patient_id=patient.id, text=text, crisis=True, created_at=now)
    session.add(note)
    patient.last_activity_at = now
    session.add(patient)
    await session.flush()
    why = (
        N_(
            "The patient answered Yes to the crisis question (thoughts of ending their life or of hurting "
            "themselves, or more of a medicine than they should have taken) about the message below. "
            "They were shown the crisis text (emergency numbers). Saved as a crisis note."
        )
        if answered_yes
        else N_(
            "The patient wrote a message with words from the crisis list. "
            "They were shown the crisis text (emergency numbers). Saved as a crisis note."
        )
    )
    detail: list[Value] = [
        message(why),
        # The patient's own words, as they wrote them, in every reader's language.
        message(N_("Message: «{message}»"), message=shorten(text, 600)),
    ]
    alert_id, told = await _raise(
        session, patient, clinic, kind="crisis", severity="emergency", detail=detail, key=f"crisis:{note.id}", now=now
    )
    log.info("crisis phrase in a message from patient %s (note %s)", patient.id, note.id)
    return Finding("emergency", (CRISIS_REPLY,), None, told, alert_id)


async def asked_crisis_question(session: AsyncSession, patient: Patient, said: str, now: datetime) -> None:
    """The crisis question is being asked about the patient's message (said): kept until it is answered."""
    assert patient.id is not None
    session.add(CrisisQuestion(patient_id=patient.id, said=said, asked_at=now))
    await session.flush()


async def crisis_question_answered(session: AsyncSession, patient: Patient, now: datetime) -> None:
    """Yes or No, tapped or typed, in the chat or the Mini App: every open question of the patient's is
    answered (a No says how they are now, whichever message was asked about; a Yes is a crisis alert)."""
    questions = table_of(CrisisQuestion)
    conn = await session.connection()
    await conn.execute(
        update(questions)
        .where(questions.c.patient_id == patient.id, questions.c.answered_at.is_(None))
        .values(answered_at=now)
    )


def _still_open() -> list[Any]:
    """The conditions of a crisis question still open: neither answered nor alerted on yet."""
    return [col(CrisisQuestion.answered_at).is_(None), col(CrisisQuestion.alerted_at).is_(None)]


async def unanswered_question_due(
    session: AsyncSession, after: timedelta, patient_id: int | None = None
) -> datetime | None:
    """When the next open crisis question (of this patient, or anyone's) is due for its alert: asked_at +
    ``after``; None when none is open. The demo's clock stops there, as the periodic check would."""
    query = select(func.min(CrisisQuestion.asked_at)).where(*_still_open())
    if patient_id is not None:
        query = query.where(col(CrisisQuestion.patient_id) == patient_id)
    first = (await session.exec(query)).one()
    if first is None:
        return None
    if isinstance(first, str):  # SQLite's min() of a stored datetime
        first = datetime.fromisoformat(first)
    return (first if first.tzinfo is not None else first.replace(tzinfo=UTC)) + after


async def check_unanswered_questions(
    session: AsyncSession, clinic: ClinicConfig, now: datetime, after: timedelta
) -> int:
    """One critical alert (kind crisis_question) for each crisis question unanswered ``after`` it was asked,
    naming the message it asked about; returns alerts raised. The question was asked because nothing in the
    message was clear enough to alert on: silence after it is (docs/SAFETY.md, hazard H12)."""
    rows = (
        await session.exec(
            select(CrisisQuestion, Patient)
            .join(Patient, col(Patient.id) == CrisisQuestion.patient_id)
            .where(*_still_open(), col(CrisisQuestion.asked_at) <= now - after)
            .order_by(col(CrisisQuestion.id))
        )
    ).all()
    raised = 0
    minutes = int(after.total_seconds() // 60)
    for question, patient in rows:
        detail: list[Value] = [
            plural_message(
                "Because of the message below, the bot asked the patient whether they have thoughts of ending "
                "their life or of hurting themselves. They have not answered within {n} minute. Please contact them.",
                "Because of the message below, the bot asked the patient whether they have thoughts of ending "
                "their life or of hurting themselves. They have not answered within {n} minutes. Please contact them.",
                minutes,
            ),
            message(N_("Message: «{message}»"), message=shorten(question.said, 600)),
        ]
        alert = await raise_alert(
            session,
            patient,
            kind="crisis_question",
            severity="critical",
            detail=detail,
            now=now,
            clinic=clinic,
            key=f"crisis_question:{question.id}",
        )
        question.alerted_at = now
        session.add(question)
        if alert is not None:
            raised += 1
            log.info("crisis question %s unanswered (patient %s)", question.id, patient.id)
    await session.flush()
    return raised


async def save_note(session: AsyncSession, patient: Patient, text: str, now: datetime) -> Note:
    """Keep free text for the therapist."""
    assert patient.id is not None
    note = Note(patient_id=patient.id, text=text, crisis=False, created_at=now)
    session.add(note)
    patient.last_activity_at = now
    session.add(patient)
    await session.flush()
    return note


# --------------------------------------------------------------------------- inactivity


async def last_responses(session: AsyncSession, patient_ids: Sequence[int]) -> dict[int, datetime]:
    """The latest answer, logged session or note per patient."""
    latest: dict[int, datetime] = {}
    sources: list[tuple[Any, Any]] = [
        (Answer.patient_id, Answer.answered_at),
        (ExerciseSession.patient_id, ExerciseSession.answered_at),
        (Note.patient_id, Note.created_at),
    ]
    for pid_col, at_col in sources:
        rows = await session.exec(
            select(pid_col, func.max(at_col)).where(col(pid_col).in_(patient_ids)).group_by(pid_col)
        )
        for pid, at in rows.all():
            if at is None:
                continue
            if isinstance(at, str):
                at = datetime.fromisoformat(at)
            at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
            if pid not in latest or at > latest[pid]:
                latest[pid] = at
    return latest


async def check_inactive(session: AsyncSession, content: Content, clinic: ClinicConfig, now: datetime) -> int:
    """Alert for active patients silent past an ``inactive`` rule; returns alerts raised."""
    rules = sorted(
        (r for r in content.alert_rules.values() if r.kind == "inactive" and r.hours is not None),
        key=lambda r: r.hours or 0,
        reverse=True,
    )
    if not rules:
        return 0
    patients = (
        await session.exec(
            select(Patient).where(Patient.status == PatientStatus.ACTIVE.value, col(Patient.telegram_id).is_not(None))
        )
    ).all()
    raised = 0
    patients = [p for p in patients if p.id is not None]
    for start in range(0, len(patients), 500):
        # By slices of the list: looking each patient up in every chunk was quadratic
        # (16,000 patients held a dispatch process's event loop for seconds, bench/ row h).
        chunk = patients[start : start + 500]
        latest = await last_responses(session, [p.id for p in chunk if p.id is not None])
        for patient in chunk:
            assert patient.id is not None
            candidates = [
                at
                for at in (latest.get(patient.id), patient.last_activity_at, patient.consent_at, patient.created_at)
                if at is not None
            ]
            last = max(candidates)
            silent = now - last
            for rule in rules:
                assert rule.hours is not None
                if silent < timedelta(hours=rule.hours):
                    continue
                if silent >= timedelta(days=3):
                    said = plural_message(
                        "No answer from the patient for {n} day (rule '{rule}': {hours} h).",
                        "No answer from the patient for {n} days (rule '{rule}': {hours} h).",
                        silent.days,
                        rule=rule.id,
                        hours=rule.hours,
                    )
                else:
                    said = plural_message(
                        "No answer from the patient for {n} hour (rule '{rule}': {hours} h).",
                        "No answer from the patient for {n} hours (rule '{rule}': {hours} h).",
                        int(silent.total_seconds() // 3600),
                        rule=rule.id,
                        hours=rule.hours,
                    )
                detail = [said]
                alert = await raise_alert(
                    session,
                    patient,
                    kind="inactive",
                    severity=rule.severity,
                    detail=detail,
                    now=now,
                    clinic=clinic,
                    key=f"inactive:{rule.id}:{patient.id}:{last:%Y%m%dT%H%M%S}",
                )
                if alert is not None:
                    raised += 1
                    log.info("patient %s inactive (%s)", patient.id, rule.id)
                break
    return raised


async def red_flag_on(session: AsyncSession, patient: Patient, day: date) -> bool:
    """True when a red flag (flagged answer, score rule, crisis) was raised on that local day."""
    tz = zone(patient.timezone)
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    end = start + timedelta(days=1)
    row = (
        await session.exec(
            select(Alert.id)
            .where(
                Alert.patient_id == patient.id,
                col(Alert.kind).in_(RED_FLAG_KINDS),
                col(Alert.created_at) >= start,
                col(Alert.created_at) < end,
            )
            .limit(1)
        )
    ).first()
    return row is not None
