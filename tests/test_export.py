"""Exports: CSV files per entity with the documented columns, and a FHIR R4 Bundle that validates."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import make_patient, make_staff
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from rehab_bot import audit, export
from rehab_bot.clock import FakeClock
from rehab_bot.content import load_content
from rehab_bot.db import Database
from rehab_bot.models import Alert, Answer, CheckIn, ExerciseSession, Note, Patient

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
    )
    other, _ = await make_patient(db, clock, alias="CRV-0001", therapist_id=doc.id)
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
        session.add(Alert(patient_id=patient.id, severity="high", kind="red_flag", detail="fever", created_at=t0))
        await session.commit()
    return patient, other


async def test_csv_has_one_file_per_entity_with_the_documented_columns(db: Database, clock: FakeClock) -> None:
    patient, _ = await seed(db, clock)
    async with db.session() as session:
        data = await export.collect(session, clock.now(), patient=patient)
    files = export.csv_files(data)
    assert list(files) == ["patients.csv", "sessions.csv", "checkins.csv", "answers.csv", "notes.csv", "alerts.csv"]
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
    assert tables["alerts.csv"][0]["detail"] == "fever"
    everything = "".join(files.values())
    assert str(TELEGRAM_ID) not in everything and "CRV-0001" not in everything
    zipped = zipfile.ZipFile(io.BytesIO(export.csv_zip(data)))
    assert sorted(zipped.namelist()) == sorted(files)


async def test_fhir_bundle_validates_and_maps_scores_to_loinc(db: Database, clock: FakeClock) -> None:
    await seed(db, clock)
    async with db.session() as session:
        data = await export.collect(session, clock.now())
    bundle = export.fhir_bundle(data, CONTENT, clock.now())
    parsed = Bundle.model_validate(json.loads(export.fhir_json(bundle)))
    assert parsed.type == "collection"
    by_type: dict[str, list[dict[str, Any]]] = {}
    urls = set()
    for entry in bundle["entry"]:
        resource = entry["resource"]
        by_type.setdefault(resource["resourceType"], []).append(resource)
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        urls.add(entry["fullUrl"])
        model = {
            "Patient": FhirPatient,
            "QuestionnaireResponse": QuestionnaireResponse,
            "Observation": Observation,
            "CarePlan": CarePlan,
        }[resource["resourceType"]]
        model.model_validate(resource)
    patients = by_type["Patient"]
    assert sorted(p["identifier"][0]["value"] for p in patients) == ["CRV-0001", "LWS-0412"]
    assert all(set(p) == {"resourceType", "id", "identifier", "active"} for p in patients), "pseudonymous"
    assert str(TELEGRAM_ID) not in json.dumps(bundle)
    responses = by_type["QuestionnaireResponse"]
    assert sorted(r["questionnaire"].rsplit(":", 1)[1] for r in responses) == ["mood", "odi", "pain", "phq2"]
    assert {r["status"] for r in responses} == {"completed", "stopped"}
    observations = by_type["Observation"]
    codes = sorted(o["code"]["coding"][0]["code"] for o in observations)
    assert codes == ["55758-7", "72514-3"], "pain NRS and the PHQ-2 total; mood has no LOINC score"
    for o in observations:
        assert o["category"][0]["coding"][0] == {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
            "display": "Survey",
        }
        assert o["code"]["coding"][0]["system"] == "http://loinc.org"
        [source] = o["derivedFrom"]
        assert source["reference"] in urls
        assert o["subject"]["reference"] in urls
    values = {o["code"]["coding"][0]["code"]: o["valueInteger"] for o in observations}
    assert values == {"72514-3": 6, "55758-7": 3}
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


async def test_fhir_for_one_patient_is_deterministic(db: Database, clock: FakeClock) -> None:
    patient, _ = await seed(db, clock)
    async with db.session() as session:
        data = await export.collect(session, clock.now(), patient=patient)
    first = export.fhir_bundle(data, CONTENT, clock.now())
    second = export.fhir_bundle(data, CONTENT, clock.now())
    assert first == second
    assert {e["resource"]["resourceType"] for e in first["entry"]} == {
        "Patient",
        "QuestionnaireResponse",
        "Observation",
        "CarePlan",
    }


def test_writing_files_and_refusing_a_bad_target(tmp_path: Path) -> None:
    data = export.ExportData(patients=[], therapists={})
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


def cli(*args: str, cwd: Path, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REHAB_BOT_")}
    env["REHAB_BOT_DATABASE_URL"] = db_url
    return subprocess.run(
        [str(Path(sys.executable).parent / "rehab-bot"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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
    result = cli("export", "--format", "fhir", "--out", str(fhir), cwd=tmp_path, db_url=db.url)
    assert result.returncode == 0, result.stderr
    Bundle.model_validate_json(fhir.read_text(encoding="utf-8"))
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
