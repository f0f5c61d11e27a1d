"""Exports for the clinic: CSV (one file per entity) and FHIR R4 (a collection Bundle).

Both are pseudonymous: a patient appears by alias only, never by Telegram id
or name. docs/EXPORTS.md documents every CSV column and the FHIR mapping.

FHIR R4 mapping (LOINC codes from docs/clinical-notes, "FHIR and LOINC"):

* Patient: identifier = the alias (system: ``[export] identifier_system``, by
  default this installation's ``urn:uuid:``); ``active`` from the status
  (patient_active); nothing else that identifies a person.
* Questionnaire: one per questionnaire that a QuestionnaireResponse answers,
  from the content; its ``url`` is its fullUrl, so the canonical resolves.
* QuestionnaireResponse: one per check-in with at least one answer; items by
  the check-in content's item ids (linkId).
* Observation (category ``survey``), each ``derivedFrom`` its
  QuestionnaireResponse: one per completed, scored questionnaire, coded in
  LOINC where the total has a code (the content's ``score_loinc``, else
  SCORE_CODES: 72514-3 pain NRS 0-10, 55758-7 PHQ-2 total, 44261-6 PHQ-9
  total), otherwise ``score-<questionnaire id>`` in CODE_SYSTEM (mood); and
  one per pain answer asked inside another questionnaire (72514-3).
* Observation per exercise session with a pain rating (72514-3, and
  ``exercise-session-pain`` in CODE_SYSTEM), and per patient and week with
  resolved sessions, the weekly adherence (``weekly-adherence``, category
  ``activity``, a percentage, the same rule as /progress).
* Flag: one per alert, ``active`` until acknowledged.
* Communication: one per care-team message, from the patient (sender the
  Patient) or a staff reply (recipient the Patient, inResponseTo the message
  it answers); text as contentString, a photo as an attachment without data.
* RelatedPerson: one per caregiver link (no name; active while linked). A
  QuestionnaireResponse answered by a caregiver on the patient's behalf has
  that RelatedPerson as its ``source``.
* CarePlan: the programme, with one activity per phase (SNOMED 229065009
  "Exercise therapy"), its timing (sessions a day, times, the phase's dates)
  and its progress (sessions done of those planned).

References inside the Bundle are ``urn:uuid:`` fullUrls: uuid5 of the row id
in this installation's namespace (rehab_bot/installation.py), so the same
data always exports to the same ids here, and never to another
installation's ids.

Plain Python over SQLModel: no telegram imports. The FHIR resources are built
as plain JSON; the tests validate them against the ``fhir.resources`` models
and the official FHIR R4 JSON schema (tests/data/fhir/).
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Mapped
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import installation
from rehab_bot import plan as plan_core
from rehab_bot.caseload import PAIN_ITEMS
from rehab_bot.content import Content, Programme
from rehab_bot.files import Staged, stage
from rehab_bot.models import (
    Alert,
    Answer,
    Caregiver,
    CareMessage,
    CheckIn,
    ExerciseSession,
    LessonProgress,
    Note,
    Patient,
    PatientStatus,
    Staff,
    table_of,
)
from rehab_bot.schedule import local_date
from rehab_bot.session import RESOLVED_STATUSES

FORMATS = ("csv", "fhir")
# rehab_bot.caregiver.PERMISSIONS, in the same order (export imports no feature module).
CAREGIVER_PERMISSIONS = ("reminders", "missed", "emergencies", "weekly")
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
FLAG_PRIORITY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/flag-priority"
FLAG_PRIORITY = "http://hl7.org/fhir/flag-priority-code"
# rehab-bot's own codes, for what LOINC has no code for; docs/EXPORTS.md lists
# them so a clinic can map them (a ConceptMap) to its own terminology.
CODE_SYSTEM = "urn:rehab-bot:fhir:CodeSystem:rehab-bot"
# CheckIn.questionnaire_id -> the LOINC code of its total score, where the
# content does not name one (its score_loinc wins).
SCORE_CODES: dict[str, str] = {"pain": "72514-3", "phq2": "55758-7", "phq9": "44261-6"}
# LOINC long names of the score codes we know.
LOINC_NAMES: dict[str, str] = {
    "72514-3": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
    "55758-7": "Patient Health Questionnaire 2 item (PHQ-2) total score [Reported]",
    "44261-6": "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
    "70274-6": "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]",
    "97909-6": "Oswestry Disability Index score",
    "82237-9": "Neck Disability Index score",
}
EXERCISE_THERAPY = ("229065009", "Exercise therapy")
PAIN_CODE = ("72514-3", LOINC_NAMES["72514-3"])
DONE_STATUSES = ("done", "partly")

M = TypeVar("M", bound=SQLModel)


class ExportError(ValueError):
    """Nothing to export, or an unusable target; the message says which."""


@dataclass
class ExportData:
    """Everything an export holds, already filtered to the patients in scope."""

    patients: list[Patient]
    therapists: dict[int, str]
    sessions: list[ExerciseSession] = field(default_factory=list)
    checkins: list[CheckIn] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    lessons: list[LessonProgress] = field(default_factory=list)
    messages: list[CareMessage] = field(default_factory=list)
    caregivers: list[Caregiver] = field(default_factory=list)
    generated_at: datetime | None = None
    # This installation's id namespace (rehab_bot/installation.py): FHIR needs it.
    namespace: uuid.UUID | None = None
    # [export] identifier_system; "" = urn:uuid:<namespace>.
    identifier_system: str = ""
    # Patients' own plans from the programme builder (rehab_bot/plan.py), by patient id.
    plans: dict[int, Programme] = field(default_factory=dict)

    def alias(self, patient_id: int) -> str:
        return next((p.alias for p in self.patients if p.id == patient_id), "")


async def collect(
    session: AsyncSession,
    now: datetime,
    *,
    patient: Patient | None = None,
    identifier_system: str = "",
    content: Content | None = None,
) -> ExportData:
    """Read the rows to export: one patient, or every patient.

    identifier_system is the config's ``[export] identifier_system`` ("" = the
    installation's own urn:uuid:). With content, the patients' own plans are
    read too, so the FHIR CarePlan describes the programme they follow.
    """
    if patient is not None:
        patients = [patient]
    else:
        patients = list((await session.exec(select(Patient).order_by(col(Patient.alias)))).all())
    ids = [p.id for p in patients]
    therapists = {s.id: s.name for s in (await session.exec(select(Staff))).all() if s.id is not None}

    async def rows(model: type[M], *order: Mapped[Any]) -> list[M]:
        query = select(model).where(table_of(model).c.patient_id.in_(ids)).order_by(*order)
        return list((await session.exec(query)).all())

    return ExportData(
        patients=patients,
        therapists=therapists,
        sessions=await rows(ExerciseSession, col(ExerciseSession.local_date), col(ExerciseSession.slot)),
        checkins=await rows(CheckIn, col(CheckIn.started_at), col(CheckIn.id)),
        answers=await rows(Answer, col(Answer.answered_at), col(Answer.id)),
        notes=await rows(Note, col(Note.created_at), col(Note.id)),
        alerts=await rows(Alert, col(Alert.created_at), col(Alert.id)),
        lessons=await rows(LessonProgress, col(LessonProgress.patient_id), col(LessonProgress.id)),
        messages=await rows(CareMessage, col(CareMessage.created_at), col(CareMessage.id)),
        caregivers=await rows(Caregiver, col(Caregiver.id)),
        generated_at=now,
        namespace=await installation.namespace(session, now),
        identifier_system=identifier_system,
        plans=await plan_core.own_programmes(session, content, patients) if content is not None else {},
    )


# --- CSV ---------------------------------------------------------------------------


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection):
# a patient's note "=HYPERLINK(...)" must open as the text it is.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return str(value)


# file name -> (columns, how to get the rows, how to get a row's values)
Table = tuple[list[str], Callable[[ExportData], Sequence[Any]], Callable[[ExportData, Any], list[Any]]]

TABLES: dict[str, Table] = {
    "patients.csv": (
        [
            "alias",
            "status",
            "surgery_date",
            "surgery_type",
            "programme_id",
            "phase_id",
            "session_times",
            "therapist",
            "language",
            "timezone",
            "paused_until",
            "consent_at",
            "consent_version",
            "created_at",
            "discharged_at",
        ],
        lambda d: d.patients,
        lambda d, p: [
            p.alias,
            p.status,
            p.surgery_date,
            p.surgery_type,
            p.programme_id,
            p.phase_id,
            p.session_times.replace(",", " "),
            d.therapists.get(p.therapist_id, "") if p.therapist_id else "",
            p.language,
            p.timezone,
            p.paused_until,
            p.consent_at,
            p.consent_version,
            p.created_at,
            p.discharged_at,
        ],
    ),
    "sessions.csv": (
        [
            "patient",
            "session_id",
            "local_date",
            "slot",
            "phase_id",
            "status",
            "effort",
            "pain",
            "skip_reason",
            "answered_at",
        ],
        lambda d: d.sessions,
        lambda d, s: [
            d.alias(s.patient_id),
            s.id,
            s.local_date,
            s.slot,
            s.phase_id,
            s.status,
            s.effort,
            s.pain,
            s.skip_reason,
            s.answered_at,
        ],
    ),
    "checkins.csv": (
        ["patient", "checkin_id", "questionnaire_id", "status", "local_date", "started_at", "completed_at", "score"],
        lambda d: d.checkins,
        lambda d, c: [
            d.alias(c.patient_id),
            c.id,
            c.questionnaire_id,
            c.status,
            c.local_date,
            c.started_at,
            c.completed_at,
            c.score,
        ],
    ),
    "answers.csv": (
        ["patient", "checkin_id", "item_id", "value", "text", "answered_at", "proxy", "caregiver_id"],
        lambda d: d.answers,
        lambda d, a: [
            d.alias(a.patient_id),
            a.checkin_id,
            a.item_id,
            a.value,
            a.text,
            a.answered_at,
            a.proxy,
            a.caregiver_id,
        ],
    ),
    "notes.csv": (
        ["patient", "note_id", "created_at", "crisis", "text"],
        lambda d: d.notes,
        lambda d, n: [d.alias(n.patient_id), n.id, n.created_at, n.crisis, n.text],
    ),
    "alerts.csv": (
        [
            "patient",
            "alert_id",
            "severity",
            "kind",
            "detail",
            "created_at",
            "acknowledged_at",
            "acknowledged_by",
            "escalated_at",
        ],
        lambda d: d.alerts,
        lambda d, a: [
            d.alias(a.patient_id),
            a.id,
            a.severity,
            a.kind,
            a.detail,
            a.created_at,
            a.acknowledged_at,
            d.therapists.get(a.acknowledged_by, "") if a.acknowledged_by else "",
            a.escalated_at,
        ],
    ),
    "lessons.csv": (
        [
            "patient",
            "lesson_id",
            "safety",
            "local_date",
            "delivered_at",
            "offered_at",
            "opened_at",
            "first_answer",
            "last_answer",
            "wrong_answers",
            "understood",
            "answered_at",
        ],
        lambda d: d.lessons,
        lambda d, x: [
            d.alias(x.patient_id),
            x.lesson_id,
            x.safety,
            x.local_date,
            x.delivered_at,
            x.offered_at,
            x.opened_at,
            x.first_answer,
            x.last_answer,
            x.wrong_answers,
            x.understood,
            x.answered_at,
        ],
    ),
    "messages.csv": (
        [
            "patient",
            "message_id",
            "direction",
            "in_reply_to",
            "staff",
            "created_at",
            "text",
            "photo",
            "photo_bytes",
            "read_at",
            "read_by",
            "answered_at",
            "escalated_at",
        ],
        lambda d: d.messages,
        lambda d, m: [
            d.alias(m.patient_id),
            m.id,
            m.direction,
            m.parent_id,
            d.therapists.get(m.staff_id, "") if m.staff_id else "",
            m.created_at,
            m.text,
            bool(m.photo_path or m.photo_file_id),
            m.photo_bytes or None,
            m.read_at,
            d.therapists.get(m.read_by, "") if m.read_by else "",
            m.answered_at,
            m.escalated_at,
        ],
    ),
    "caregivers.csv": (
        ["patient", "caregiver_id", "created_at", "consent_at", "removed_at", *CAREGIVER_PERMISSIONS],
        lambda d: d.caregivers,
        lambda d, c: [
            d.alias(c.patient_id),
            c.id,
            c.created_at,
            c.consent_at,
            c.removed_at,
            *(getattr(c, p) for p in CAREGIVER_PERMISSIONS),
        ],
    ),
}


def csv_files(data: ExportData) -> dict[str, str]:
    """File name -> CSV text (UTF-8, comma-separated, a header row), one per entity."""
    files = {}
    for name, (columns, get_rows, values) in TABLES.items():
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in get_rows(data):
            writer.writerow([_cell(v) for v in values(data, row)])
        files[name] = out.getvalue()
    return files


def stage_csv(data: ExportData, directory: Path) -> Staged:
    """The CSV files staged in a directory (created if missing); see Staged."""
    if directory.exists() and not directory.is_dir():
        raise ExportError(f"{directory} exists and is not a folder; CSV exports are a folder of files")
    return stage(directory, {name: text.encode("utf-8") for name, text in csv_files(data).items()})


def write_csv(data: ExportData, directory: Path) -> list[Path]:
    """Write the CSV files into a directory (created if missing); returns the paths."""
    return stage_csv(data, directory).publish()


def csv_zip(data: ExportData) -> bytes:
    """The CSV files in one zip (what a therapist gets in chat)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in csv_files(data).items():
            archive.writestr(name, text)
    return buffer.getvalue()


# --- FHIR R4 -----------------------------------------------------------------------


class _Ids:
    """Resource ids: uuid5 of "<kind>/<key>" in this installation's namespace."""

    def __init__(self, namespace: uuid.UUID) -> None:
        self.namespace = namespace

    def urn(self, kind: str, key: object) -> str:
        return f"urn:uuid:{uuid.uuid5(self.namespace, f'{kind}/{key}')}"


def _id(urn: str) -> str:
    return urn.removeprefix("urn:uuid:")


def _instant(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def alias_system(data: ExportData) -> str:
    """Patient.identifier.system: the configured URI, else this installation's urn:uuid:."""
    assert data.namespace is not None, "collect() reads the installation's namespace"
    return data.identifier_system or f"urn:uuid:{data.namespace}"


def patient_active(patient: Patient) -> bool:
    """Patient.active: the clinic still cares for this patient through the bot.

    False for a patient who never consented (an invitation not yet accepted,
    consent declined, or the tombstone left by /delete) and for one who
    stopped or was discharged; true while enrolled, paused or unreachable
    (unreachable is the clinic's to act on, not the end of care).
    """
    if patient.consent_at is None:
        return False
    return patient.status not in (PatientStatus.DISCHARGED.value, PatientStatus.STOPPED.value)


def _patient_resource(patient: Patient, ids: _Ids, system: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": _id(ids.urn("Patient", patient.id)),
        "identifier": [{"system": system, "value": patient.alias}],
        "active": patient_active(patient),
    }


def _qr_status(checkin: CheckIn) -> str:
    if checkin.status == "complete":
        return "completed"
    if checkin.status == "open":
        return "in-progress"
    return "stopped"  # expired with some answers


def _answer_value(answer: Answer) -> dict[str, Any] | None:
    if answer.value is not None:
        return {"valueInteger": answer.value}
    if answer.text:
        return {"valueString": answer.text}
    return None


def score_code(content: Content | None, questionnaire_id: str) -> tuple[str, str] | None:
    """(LOINC code, display) of a questionnaire's total score, or None if it has none."""
    questionnaires: dict[str, Any] = getattr(content, "questionnaires", None) or {}
    questionnaire = questionnaires.get(questionnaire_id)
    code = getattr(questionnaire, "score_loinc", None) or SCORE_CODES.get(questionnaire_id)
    if not code:
        return None
    return code, LOINC_NAMES.get(code, "")


def _title(content: Content | None, questionnaire_id: str) -> str:
    questionnaire = (getattr(content, "questionnaires", None) or {}).get(questionnaire_id)
    return questionnaire.title.get("en", questionnaire_id) if questionnaire is not None else questionnaire_id


def _score_coding(content: Content | None, questionnaire_id: str) -> tuple[dict[str, Any], str]:
    """The coding and text of a questionnaire's score: LOINC where it has a code, else CODE_SYSTEM."""
    loinc = score_code(content, questionnaire_id)
    if loinc is not None:
        coding = {"system": LOINC, "code": loinc[0]}
        if loinc[1]:
            coding["display"] = loinc[1]
        return coding, loinc[1] or f"LOINC {loinc[0]}"
    display = f"{_title(content, questionnaire_id)} score"
    return {"system": CODE_SYSTEM, "code": f"score-{questionnaire_id}", "display": display}, display


def _score_value(content: Content | None, questionnaire_id: str, score: float) -> dict[str, Any]:
    """A score as its Observation's value: a whole score as valueInteger, else exactly as a UCUM quantity.

    A PSFS mean (4.7) or an ODI percentage (42.2) is not rounded away: ``%`` for ``percent`` scoring,
    else the dimensionless ``{score}``.
    """
    if float(score).is_integer():
        return {"valueInteger": int(score)}
    questionnaire = (getattr(content, "questionnaires", None) or {}).get(questionnaire_id)
    unit = "%" if getattr(questionnaire, "scoring", None) == "percent" else "{score}"
    return {"valueQuantity": {"value": score, "unit": unit, "system": UCUM, "code": unit}}


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"system": system, "code": code, "display": display}


SURVEY = {"coding": [_coding(OBSERVATION_CATEGORY, "survey", "Survey")]}
ACTIVITY = {"coding": [_coding(OBSERVATION_CATEGORY, "activity", "Activity")]}


def _observation(
    urn: str,
    patient_urn: str,
    code: dict[str, Any],
    value: dict[str, Any],
    *,
    category: dict[str, Any] = SURVEY,
    effective: dict[str, Any],
    derived_from: str | None = None,
    status: str = "final",
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _id(urn),
        "status": status,
        "category": [category],
        "code": code,
        "subject": {"reference": patient_urn},
        **effective,
        **value,
    }
    if derived_from is not None:
        resource["derivedFrom"] = [{"reference": derived_from}]
    return resource


def _pain_code(text: str, *extra: dict[str, Any]) -> dict[str, Any]:
    return {"coding": [_coding(LOINC, PAIN_CODE[0], PAIN_CODE[1]), *extra], "text": text}


def _session_pain(session: ExerciseSession, ids: _Ids, patient_urn: str) -> dict[str, Any] | None:
    if session.pain is None:
        return None
    when = session.answered_at or session.created_at
    return _observation(
        ids.urn("Observation", f"session-pain/{session.id}"),
        patient_urn,
        _pain_code(
            "Pain during the exercise session (0-10)",
            _coding(CODE_SYSTEM, "exercise-session-pain", "Pain during an exercise session, 0-10"),
        ),
        {"valueInteger": session.pain},
        effective={"effectiveDateTime": _instant(when)},
    )


def _weekly_adherence(
    patient: Patient, sessions: Sequence[ExerciseSession], ids: _Ids, patient_urn: str, today: date
) -> list[dict[str, Any]]:
    """One Observation per local week (Monday to Sunday) with resolved sessions.

    The share of resolved sessions (done, partly, skipped, missed) that were
    done or partly: the rule of /progress (rehab_bot/session.py); a session
    still open neither helps nor hurts.
    """
    weeks: dict[date, list[str]] = {}
    for s in sessions:
        if s.status in RESOLVED_STATUSES:
            weeks.setdefault(s.local_date - timedelta(days=s.local_date.weekday()), []).append(s.status)
    result = []
    for monday, statuses in sorted(weeks.items()):
        sunday = monday + timedelta(days=6)
        done = sum(1 for status in statuses if status in DONE_STATUSES)
        result.append(
            _observation(
                ids.urn("Observation", f"weekly-adherence/{patient.id}/{monday.isoformat()}"),
                patient_urn,
                {
                    "coding": [_coding(CODE_SYSTEM, "weekly-adherence", "Exercise sessions done in a week, percent")],
                    "text": "Weekly exercise adherence",
                },
                {
                    "valueQuantity": {
                        "value": round(100 * done / len(statuses), 1),
                        "unit": "%",
                        "system": UCUM,
                        "code": "%",
                    },
                    "component": [
                        {
                            "code": {"coding": [_coding(CODE_SYSTEM, "sessions-done", "Sessions done or partly done")]},
                            "valueInteger": done,
                        },
                        {
                            "code": {"coding": [_coding(CODE_SYSTEM, "sessions-resolved", "Sessions due and over")]},
                            "valueInteger": len(statuses),
                        },
                    ],
                },
                category=ACTIVITY,
                effective={"effectivePeriod": {"start": monday.isoformat(), "end": sunday.isoformat()}},
                status="final" if sunday < today else "preliminary",
            )
        )
    return result


# Alert.kind -> (flag category code, display)
FLAG_CATEGORIES: dict[str, tuple[str, str]] = {
    "inactive": ("patient-contact", "Subject Contact"),
    "unreachable": ("patient-contact", "Subject Contact"),
    "data_deleted": ("admin", "Administrative"),
    "stopped": ("patient-contact", "Subject Contact"),
}
CLINICAL_FLAG = ("clinical", "Clinical")
# Alert.severity -> (flag-priority code, display)
FLAG_PRIORITIES: dict[str, tuple[str, str]] = {
    "low": ("PL", "Low priority"),
    "high": ("PM", "Medium priority"),
    "critical": ("PH", "High priority"),
    "emergency": ("PH", "High priority"),
}
ALERT_KINDS: dict[str, str] = {
    "red_flag": "Red-flag answer",
    "checkin": "Check-in score rule",
    "session_pain": "Pain during exercises at the pain rule's threshold",
    "crisis": "Crisis words in a message",
    "crisis_question": "The crisis question asked about a message went unanswered",
    "inactive": "No answer for a long time",
    "unreachable": "Telegram refuses messages",
    "data_deleted": "The patient deleted their data",
    "stopped": "The patient stopped all messages",
}


def _flag(alert: Alert, ids: _Ids, patient_urn: str) -> dict[str, Any]:
    category = FLAG_CATEGORIES.get(alert.kind, CLINICAL_FLAG)
    what = ALERT_KINDS.get(alert.kind, alert.kind.replace("_", " ").capitalize())
    text = f"{what} ({alert.severity})" + (f": {alert.detail}" if alert.detail else "")
    period = {"start": _instant(alert.created_at)}
    if alert.acknowledged_at is not None:
        period["end"] = _instant(alert.acknowledged_at)
    flag: dict[str, Any] = {
        "resourceType": "Flag",
        "id": _id(ids.urn("Flag", alert.id)),
        "status": "inactive" if alert.acknowledged_at is not None else "active",
        "category": [{"coding": [_coding(FLAG_CATEGORY, *category)]}],
        "code": {"coding": [_coding(CODE_SYSTEM, f"alert-{alert.kind}", what)], "text": text},
        "subject": {"reference": patient_urn},
        "period": period,
    }
    if alert.severity in FLAG_PRIORITIES:
        flag["extension"] = [
            {
                "url": FLAG_PRIORITY_EXTENSION,
                "valueCodeableConcept": {"coding": [_coding(FLAG_PRIORITY, *FLAG_PRIORITIES[alert.severity])]},
            }
        ]
    return flag


def _related_person(link: Caregiver, ids: _Ids, patient_urn: str) -> dict[str, Any]:
    """A caregiver: no name (exports are pseudonymous), active while linked, the period of the link."""
    period: dict[str, str] = {"start": _instant(link.consent_at or link.created_at)}
    if link.removed_at is not None:
        period["end"] = _instant(link.removed_at)
    return {
        "resourceType": "RelatedPerson",
        "id": _id(ids.urn("RelatedPerson", link.id)),
        "active": link.consent_at is not None and link.removed_at is None,
        "patient": {"reference": patient_urn},
        "relationship": [{"coding": [_coding(CODE_SYSTEM, "caregiver", "Caregiver invited by the patient")]}],
        "period": period,
    }


def _communication(
    message: CareMessage, data: ExportData, ids: _Ids, patient_urn: str, known: set[int]
) -> dict[str, Any]:
    """A care-team message: from the patient to the care team, or a staff reply to the patient."""
    payload: list[dict[str, Any]] = []
    if message.text:
        payload.append({"contentString": message.text})
    if message.photo_path or message.photo_file_id:
        attachment: dict[str, Any] = {"contentType": "image/jpeg", "title": "Photo sent by the patient"}
        if message.photo_bytes:
            attachment["size"] = message.photo_bytes
        payload.append({"contentAttachment": attachment})
    team = {"display": "care team"}
    staff = {"display": data.therapists.get(message.staff_id, "staff")} if message.staff_id else team
    incoming = message.direction == "in"
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "id": _id(ids.urn("Communication", message.id)),
        "status": "completed",
        "category": [
            {
                "coding": [
                    _coding(
                        CODE_SYSTEM,
                        "message-from-patient" if incoming else "message-from-staff",
                        "Message from the patient" if incoming else "Reply from the care team",
                    )
                ]
            }
        ],
        "subject": {"reference": patient_urn},
        "sent": _instant(message.created_at),
        "sender": {"reference": patient_urn} if incoming else staff,
        "recipient": [team if incoming else {"reference": patient_urn}],
    }
    if message.parent_id is not None and message.parent_id in known:
        resource["inResponseTo"] = [{"reference": ids.urn("Communication", message.parent_id)}]
    if incoming and message.read_at is not None:
        resource["received"] = _instant(message.read_at)
    if payload:
        resource["payload"] = payload
    return resource


def _questionnaire(content: Content | None, questionnaire_id: str, url: str) -> dict[str, Any]:
    """The Questionnaire a QuestionnaireResponse answers, from the content (a stub if it is gone)."""
    # A computable name (FHIR's que-0 asks for [A-Z][A-Za-z0-9_]*) that keeps the content id.
    name = "RehabBot_" + re.sub(r"[^A-Za-z0-9_]", "_", questionnaire_id)
    resource: dict[str, Any] = {"resourceType": "Questionnaire", "id": _id(url), "url": url, "name": name}
    questionnaire = (getattr(content, "questionnaires", None) or {}).get(questionnaire_id)
    if questionnaire is None:
        # Removed from the content since it was asked: only its id is known.
        resource.update({"status": "unknown", "subjectType": ["Patient"]})
        return resource
    resource.update(
        {
            "title": questionnaire.title.get("en", questionnaire_id),
            "status": "active",
            "subjectType": ["Patient"],
        }
    )
    if questionnaire.loinc:
        resource["code"] = [{"system": LOINC, "code": questionnaire.loinc}]
    items = []
    for item in questionnaire.items:
        entry: dict[str, Any] = {"linkId": item.id, "text": item.text.get("en", item.id)}
        if item.loinc:
            entry["code"] = [{"system": LOINC, "code": item.loinc}]
        if item.options:
            entry["type"] = "integer"
            entry["answerOption"] = [{"valueInteger": option.value} for option in item.options]
        else:
            entry["type"] = "string"
        items.append(entry)
    if items:
        resource["item"] = items
    return resource


def _careplan(
    patient: Patient, data: ExportData, content: Content | None, now: datetime, ids: _Ids
) -> dict[str, Any] | None:
    if content is None:
        return None
    assert patient.id is not None
    programme = data.plans.get(patient.id) or content.programmes.get(patient.programme_id)
    if programme is None:
        return None
    patient_urn = ids.urn("Patient", patient.id)
    sessions = [s for s in data.sessions if s.patient_id == patient.id]
    planned = Counter(s.phase_id for s in sessions)
    done = Counter(s.phase_id for s in sessions if s.status in DONE_STATUSES)
    today = local_date(patient, now)
    own_times = [t for t in patient.session_times.split(",") if t]
    activities = []
    for phase in programme.phases:
        # Each exercise once, in the order of first use (sessions may share a plan).
        exercises = {ex.id: ex for i in range(len(phase.sessions)) for ex in phase.exercises_in(i, content.exercises)}
        detail: dict[str, Any] = {
            "kind": "ServiceRequest",
            "code": {
                "coding": [{"system": SNOMED, "code": EXERCISE_THERAPY[0], "display": EXERCISE_THERAPY[1]}],
                "text": phase.title.get("en", phase.id),
            },
            "status": "not-started",
            "description": "Exercises: " + ", ".join(ex.name.get("en", ex.id) for ex in exercises.values()),
        }
        times = own_times if len(own_times) == phase.sessions_per_day else phase.default_times
        repeat: dict[str, Any] = {
            "frequency": phase.sessions_per_day,
            "period": 1,
            "periodUnit": "d",
            "timeOfDay": [f"{t}:00" for t in times],
        }
        if patient.surgery_date is not None:
            start = patient.surgery_date + timedelta(days=phase.from_day)
            bounds = {"start": start.isoformat()}
            end = patient.surgery_date + timedelta(days=phase.to_day) if phase.to_day is not None else None
            if end is not None:
                bounds["end"] = end.isoformat()
            repeat["boundsPeriod"] = bounds
            if end is not None and end < today:
                detail["status"] = "completed"
            elif start <= today:
                detail["status"] = "in-progress"
            if patient.status == PatientStatus.DISCHARGED.value and detail["status"] != "completed":
                detail["status"] = "stopped" if detail["status"] == "in-progress" else "cancelled"
            elif patient.status == PatientStatus.PAUSED.value and detail["status"] == "in-progress":
                detail["status"] = "on-hold"
        detail["scheduledTiming"] = {"repeat": repeat}
        activity: dict[str, Any] = {"detail": detail}
        if planned[phase.id]:
            activity["progress"] = [{"text": f"{done[phase.id]} of {planned[phase.id]} planned sessions done"}]
        activities.append(activity)
    plan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": _id(ids.urn("CarePlan", patient.id)),
        "status": _careplan_status(patient),
        "intent": "plan",
        "title": programme.name.get("en", programme.id),
        "subject": {"reference": patient_urn},
        "activity": activities,
    }
    if patient.surgery_date is not None:
        plan["period"] = {"start": patient.surgery_date.isoformat()}
        if patient.discharged_at is not None:
            plan["period"]["end"] = _instant(patient.discharged_at)
    return plan


def _careplan_status(patient: Patient) -> str:
    return {
        PatientStatus.PAUSED.value: "on-hold",
        PatientStatus.DISCHARGED.value: "completed",
        PatientStatus.STOPPED.value: "revoked",
    }.get(patient.status, "active")


def fhir_bundle(data: ExportData, content: Content | None, now: datetime) -> dict[str, Any]:
    """A FHIR R4 Bundle of type collection with every patient's resources.

    Every Reference is the fullUrl of an entry, and every QuestionnaireResponse's
    questionnaire is the url of a Questionnaire entry.
    """
    if data.namespace is None:
        raise ExportError("no installation namespace: read the data with export.collect()")
    ids = _Ids(data.namespace)
    system = alias_system(data)
    entries: list[dict[str, Any]] = []
    questionnaires: dict[str, str] = {}  # questionnaire id -> canonical url, in order of first use

    def add(resource: dict[str, Any]) -> None:
        entries.append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource})

    def questionnaire_url(questionnaire_id: str) -> str:
        return questionnaires.setdefault(questionnaire_id, ids.urn("Questionnaire", questionnaire_id))

    answers_by_checkin: dict[int, list[Answer]] = {}
    for answer in data.answers:
        answers_by_checkin.setdefault(answer.checkin_id, []).append(answer)
    caregivers = {c.id for c in data.caregivers}
    messages = {m.id for m in data.messages if m.id is not None}
    for patient in data.patients:
        patient_urn = ids.urn("Patient", patient.id)
        add(_patient_resource(patient, ids, system))
        for link in (c for c in data.caregivers if c.patient_id == patient.id):
            add(_related_person(link, ids, patient_urn))
        for checkin in (c for c in data.checkins if c.patient_id == patient.id):
            answers = answers_by_checkin.get(checkin.id or -1, [])
            if not answers:
                continue
            qr_urn = ids.urn("QuestionnaireResponse", checkin.id)
            authored = checkin.completed_at or max(a.answered_at for a in answers)
            items = []
            for answer in answers:
                item: dict[str, Any] = {"linkId": answer.item_id}
                value = _answer_value(answer)
                if value is not None:
                    item["answer"] = [value]
                items.append(item)
            response: dict[str, Any] = {
                "resourceType": "QuestionnaireResponse",
                "id": _id(qr_urn),
                "questionnaire": questionnaire_url(checkin.questionnaire_id),
                "status": _qr_status(checkin),
                "subject": {"reference": patient_urn},
                "authored": _instant(authored),
                "item": items,
            }
            proxies = {a.caregiver_id for a in answers if a.proxy}
            if proxies:
                # Who answered: the caregiver (a proxy answer), by reference while the link is in the export.
                proxy = next(iter(proxies)) if len(proxies) == 1 else None
                response["source"] = (
                    {"reference": ids.urn("RelatedPerson", proxy)}
                    if proxy is not None and proxy in caregivers and all(a.proxy for a in answers)
                    else {"display": "the patient's caregiver answered some items on the patient's behalf"}
                )
            add(response)
            code = score_code(content, checkin.questionnaire_id)
            if checkin.score is not None and checkin.status == "complete":
                coding, text = _score_coding(content, checkin.questionnaire_id)
                add(
                    _observation(
                        ids.urn("Observation", f"checkin/{checkin.id}"),
                        patient_urn,
                        {"coding": [coding], "text": text},
                        _score_value(content, checkin.questionnaire_id, checkin.score),
                        effective={"effectiveDateTime": _instant(authored)},
                        derived_from=qr_urn,
                    )
                )
            if code is None or code[0] != PAIN_CODE[0]:
                # Pain asked inside another questionnaire: an Observation per answer.
                for answer in answers:
                    if answer.item_id in PAIN_ITEMS and answer.value is not None:
                        add(
                            _observation(
                                ids.urn("Observation", f"answer/{answer.id}"),
                                patient_urn,
                                _pain_code(PAIN_CODE[1]),
                                {"valueInteger": answer.value},
                                effective={"effectiveDateTime": _instant(answer.answered_at)},
                                derived_from=qr_urn,
                            )
                        )
        sessions = [s for s in data.sessions if s.patient_id == patient.id]
        for exercise_session in sessions:
            pain = _session_pain(exercise_session, ids, patient_urn)
            if pain is not None:
                add(pain)
        for observation in _weekly_adherence(patient, sessions, ids, patient_urn, local_date(patient, now)):
            add(observation)
        for alert in (a for a in data.alerts if a.patient_id == patient.id):
            add(_flag(alert, ids, patient_urn))
        for message in (m for m in data.messages if m.patient_id == patient.id):
            add(_communication(message, data, ids, patient_urn, messages))
        plan = _careplan(patient, data, content, now, ids)
        if plan is not None:
            add(plan)
    for questionnaire_id, url in questionnaires.items():
        add(_questionnaire(content, questionnaire_id, url))
    return {
        "resourceType": "Bundle",
        "id": _id(ids.urn("Bundle", f"{_instant(now)}:{','.join(p.alias for p in data.patients)}")),
        "type": "collection",
        "timestamp": _instant(now),
        "entry": entries,
    }


def fhir_json(bundle: dict[str, Any]) -> str:
    """The bundle as pretty JSON."""
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"


def stage_fhir(bundle: dict[str, Any], path: Path) -> Staged:
    """The bundle staged as a JSON file (its folder is created if missing); see Staged."""
    if path.is_dir():
        raise ExportError(f"{path} is a folder; give a file name for the FHIR Bundle, e.g. {path / 'export.json'}")
    return stage(path.parent, {path.name: fhir_json(bundle).encode("utf-8")})


def write_fhir(bundle: dict[str, Any], path: Path) -> None:
    """Write the bundle as a JSON file (its folder is created if missing)."""
    stage_fhir(bundle, path).publish()


async def for_staff(
    session: AsyncSession,
    staff: Staff,
    patient: Patient,
    fmt: str,
    content: Content | None,
    now: datetime,
    *,
    identifier_system: str = "",
    actor: str | None = None,
) -> tuple[bytes, str]:
    """One patient's export for a staff member who may change them: (payload, file name), audited.

    CSV files in a zip, or a FHIR R4 Bundle as JSON. The chat's export buttons and the web app's
    downloads both come here; the caller commits.
    """
    from rehab_bot import audit
    from rehab_bot.access import Access, require

    if fmt not in FORMATS:
        raise ExportError(f"Unknown format {fmt!r}: use csv or fhir.")
    require(staff, patient, Access.WRITE)
    data = await collect(session, now, patient=patient, identifier_system=identifier_system, content=content)
    stamp = now.strftime("%Y%m%d")
    if fmt == "csv":
        payload, filename = csv_zip(data), f"{patient.alias}-{stamp}-csv.zip"
    else:
        payload, filename = fhir_json(fhir_bundle(data, content, now)).encode(), f"{patient.alias}-{stamp}-fhir.json"
    audit.record(session, action=audit.EXPORT, now=now, staff=staff, actor=actor, patient_id=patient.id, detail=fmt)
    return payload, filename
