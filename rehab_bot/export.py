"""Exports for the clinic: CSV (one file per entity) and FHIR R4 (a collection Bundle).

Both are pseudonymous: a patient appears by alias only, never by Telegram id
or name. docs/EXPORTS.md documents every CSV column and the FHIR mapping.

FHIR R4 mapping (LOINC codes from docs/clinical-notes, "FHIR and LOINC"):

* Patient: identifier = the alias; nothing else that identifies a person.
* QuestionnaireResponse: one per check-in with at least one answer; items by
  the check-in content's item ids (linkId).
* Observation (category ``survey``), each ``derivedFrom`` its
  QuestionnaireResponse: one per completed, scored questionnaire whose total
  has a LOINC code (the content's ``score_loinc``, else SCORE_CODES: 72514-3
  pain NRS 0-10, 55758-7 PHQ-2 total, 44261-6 PHQ-9 total), and one per pain
  answer asked inside another questionnaire (72514-3).
* CarePlan: the programme, with one activity per phase (SNOMED 229065009
  "Exercise therapy"), its timing (sessions a day, times, the phase's dates)
  and its progress (sessions done of those planned).

References inside the Bundle are ``urn:uuid:`` fullUrls derived from the row
ids, so the same data always exports to the same ids.

Plain Python over SQLModel: no telegram imports. The FHIR resources are built
as plain JSON; the tests validate them against the ``fhir.resources`` models.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.content import Content
from rehab_bot.files import private_dir, write_private_text
from rehab_bot.models import Alert, Answer, CheckIn, ExerciseSession, Note, Patient, PatientStatus, Staff
from rehab_bot.staff import PAIN_ITEMS, local_today

FORMATS = ("csv", "fhir")
_NAMESPACE = uuid.UUID("6f1d7f2e-58a4-4d0b-9a52-3c8a1d1b7e55")
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ALIAS_SYSTEM = "urn:rehab-bot:patient-alias"
QUESTIONNAIRE_BASE = "urn:rehab-bot:questionnaire:"
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
    generated_at: datetime | None = None

    def alias(self, patient_id: int) -> str:
        return next((p.alias for p in self.patients if p.id == patient_id), "")


async def collect(session: AsyncSession, now: datetime, *, patient: Patient | None = None) -> ExportData:
    """Read the rows to export: one patient, or every patient."""
    if patient is not None:
        patients = [patient]
    else:
        patients = list((await session.exec(select(Patient).order_by(col(Patient.alias)))).all())
    ids = [p.id for p in patients]
    therapists = {s.id: s.name for s in (await session.exec(select(Staff))).all() if s.id is not None}

    async def rows(model: Any, *order: Any) -> list[Any]:
        query = select(model).where(col(model.patient_id).in_(ids)).order_by(*order)
        return list((await session.exec(query)).all())

    return ExportData(
        patients=patients,
        therapists=therapists,
        sessions=await rows(ExerciseSession, col(ExerciseSession.local_date), col(ExerciseSession.slot)),
        checkins=await rows(CheckIn, col(CheckIn.started_at), col(CheckIn.id)),
        answers=await rows(Answer, col(Answer.answered_at), col(Answer.id)),
        notes=await rows(Note, col(Note.created_at), col(Note.id)),
        alerts=await rows(Alert, col(Alert.created_at), col(Alert.id)),
        generated_at=now,
    )


# --- CSV ---------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
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
        ["patient", "checkin_id", "item_id", "value", "text", "answered_at"],
        lambda d: d.answers,
        lambda d, a: [d.alias(a.patient_id), a.checkin_id, a.item_id, a.value, a.text, a.answered_at],
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


def write_csv(data: ExportData, directory: Path) -> list[Path]:
    """Write the CSV files into a directory (created if missing); returns the paths."""
    if directory.exists() and not directory.is_dir():
        raise ExportError(f"{directory} exists and is not a folder; CSV exports are a folder of files")
    private_dir(directory)
    written = []
    for name, text in csv_files(data).items():
        path = directory / name
        write_private_text(path, text)
        written.append(path)
    return written


def csv_zip(data: ExportData) -> bytes:
    """The CSV files in one zip (what a therapist gets in chat)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in csv_files(data).items():
            archive.writestr(name, text)
    return buffer.getvalue()


# --- FHIR R4 -----------------------------------------------------------------------


def _urn(kind: str, row_id: object) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{kind}/{row_id}')}"


def _id(urn: str) -> str:
    return urn.removeprefix("urn:uuid:")


def _instant(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _patient_resource(patient: Patient) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": _id(_urn("Patient", patient.id)),
        "identifier": [{"system": ALIAS_SYSTEM, "value": patient.alias}],
        "active": patient.status not in (PatientStatus.DISCHARGED.value, PatientStatus.STOPPED.value),
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


def _observation(
    key: str, patient_urn: str, qr_urn: str, code: tuple[str, str], value: int, when: datetime
) -> dict[str, Any]:
    coding = {"system": LOINC, "code": code[0]}
    if code[1]:
        coding["display"] = code[1]
    return {
        "resourceType": "Observation",
        "id": _id(_urn("Observation", key)),
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": {"coding": [coding], "text": code[1] or f"LOINC {code[0]}"},
        "subject": {"reference": patient_urn},
        "effectiveDateTime": _instant(when),
        "valueInteger": value,
        "derivedFrom": [{"reference": qr_urn}],
    }


def _careplan_status(patient: Patient) -> str:
    return {
        PatientStatus.PAUSED.value: "on-hold",
        PatientStatus.DISCHARGED.value: "completed",
        PatientStatus.STOPPED.value: "revoked",
    }.get(patient.status, "active")


def _careplan(patient: Patient, data: ExportData, content: Content | None, now: datetime) -> dict[str, Any] | None:
    if content is None or patient.programme_id not in content.programmes:
        return None
    programme = content.programmes[patient.programme_id]
    patient_urn = _urn("Patient", patient.id)
    sessions = [s for s in data.sessions if s.patient_id == patient.id]
    planned = Counter(s.phase_id for s in sessions)
    done = Counter(s.phase_id for s in sessions if s.status in DONE_STATUSES)
    today = local_today(now, patient.timezone)
    own_times = [t for t in patient.session_times.split(",") if t]
    activities = []
    for phase in programme.phases:
        detail: dict[str, Any] = {
            "kind": "ServiceRequest",
            "code": {
                "coding": [{"system": SNOMED, "code": EXERCISE_THERAPY[0], "display": EXERCISE_THERAPY[1]}],
                "text": phase.title.get("en", phase.id),
            },
            "status": "not-started",
            "description": "Exercises: "
            + ", ".join(
                content.exercises[e].name.get("en", e) if e in content.exercises else e
                for plan in phase.sessions
                for e in plan.exercises
            ),
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
        "id": _id(_urn("CarePlan", patient.id)),
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


def fhir_bundle(data: ExportData, content: Content | None, now: datetime) -> dict[str, Any]:
    """A FHIR R4 Bundle of type collection with every patient's resources."""
    entries: list[dict[str, Any]] = []

    def add(resource: dict[str, Any]) -> None:
        entries.append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource})

    answers_by_checkin: dict[int, list[Answer]] = {}
    for answer in data.answers:
        answers_by_checkin.setdefault(answer.checkin_id, []).append(answer)
    for patient in data.patients:
        patient_urn = _urn("Patient", patient.id)
        add(_patient_resource(patient))
        for checkin in (c for c in data.checkins if c.patient_id == patient.id):
            answers = answers_by_checkin.get(checkin.id or -1, [])
            if not answers:
                continue
            qr_urn = _urn("QuestionnaireResponse", checkin.id)
            authored = checkin.completed_at or max(a.answered_at for a in answers)
            items = []
            for answer in answers:
                item: dict[str, Any] = {"linkId": answer.item_id}
                value = _answer_value(answer)
                if value is not None:
                    item["answer"] = [value]
                items.append(item)
            add(
                {
                    "resourceType": "QuestionnaireResponse",
                    "id": _id(qr_urn),
                    "questionnaire": QUESTIONNAIRE_BASE + checkin.questionnaire_id,
                    "status": _qr_status(checkin),
                    "subject": {"reference": patient_urn},
                    "authored": _instant(authored),
                    "item": items,
                }
            )
            code = score_code(content, checkin.questionnaire_id)
            if code is not None and checkin.score is not None and checkin.status == "complete":
                add(_observation(f"checkin/{checkin.id}", patient_urn, qr_urn, code, round(checkin.score), authored))
            if code is None or code[0] != PAIN_CODE[0]:
                # Pain asked inside another questionnaire: an Observation per answer.
                for answer in answers:
                    if answer.item_id in PAIN_ITEMS and answer.value is not None:
                        add(
                            _observation(
                                f"answer/{answer.id}", patient_urn, qr_urn, PAIN_CODE, answer.value, answer.answered_at
                            )
                        )
        plan = _careplan(patient, data, content, now)
        if plan is not None:
            add(plan)
    return {
        "resourceType": "Bundle",
        "id": _id(_urn("Bundle", f"{_instant(now)}:{','.join(p.alias for p in data.patients)}")),
        "type": "collection",
        "timestamp": _instant(now),
        "entry": entries,
    }


def fhir_json(bundle: dict[str, Any]) -> str:
    """The bundle as pretty JSON."""
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"


def write_fhir(bundle: dict[str, Any], path: Path) -> None:
    """Write the bundle as a JSON file (its folder is created if missing)."""
    if path.is_dir():
        raise ExportError(f"{path} is a folder; give a file name for the FHIR Bundle, e.g. {path / 'export.json'}")
    private_dir(path.parent)
    write_private_text(path, fhir_json(bundle))
