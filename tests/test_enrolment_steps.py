"""Enrolment's steps and transitions (rehab_bot.enrolment), without Telegram, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

from factories import make_patient

from rehab_bot import enrolment
from rehab_bot.clock import FakeClock
from rehab_bot.db import Database
from rehab_bot.enrolment import EnrolStep
from rehab_bot.models import Patient, PatientStatus

NOW = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)


def test_a_redeemed_invitation_asks_for_consent_and_a_later_step_resumes() -> None:
    new = Patient(alias="a")
    enrolment.begin(new)
    assert enrolment.step_of(new) is EnrolStep.CONSENT
    further = Patient(alias="b", enrol_step="times")
    enrolment.begin(further)
    assert enrolment.step_of(further) is EnrolStep.TIMES
    assert enrolment.step_of(Patient(alias="c", enrol_step="bogus")) is EnrolStep.NEW
    assert EnrolStep.DONE not in enrolment.IN_PROGRESS and EnrolStep.DECLINED in enrolment.IN_PROGRESS


async def _stored(db: Database, patient_id: int) -> Patient:
    async with db.session() as s:
        found = await s.get(Patient, patient_id)
        assert found is not None
        return found


async def test_consent_timezone_and_back_each_fit_only_their_step(db: Database, clock: FakeClock) -> None:
    patient, _ = await make_patient(db, clock, status=PatientStatus.ENROLLING, enrol_step="consent")
    assert patient.id is not None
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        assert not await enrolment.set_timezone(s, p, "Asia/Tokyo"), "no zone before consent"
        assert not await enrolment.back_to_timezone(s, p)
        assert await enrolment.decline(s, p)
        assert (await _stored(db, patient.id)).enrol_step == "declined"
        assert await enrolment.agree(s, p, "v3", NOW), "who declined may still agree"
        stored = await _stored(db, patient.id)
        assert (stored.enrol_step, stored.consent_version) == ("timezone", "v3")
        assert stored.consent_at is not None and stored.consent_at.replace(tzinfo=UTC) == NOW
        assert not await enrolment.agree(s, p, "v4", NOW), "a stale consent button changes nothing"
        assert not await enrolment.decline(s, p)
        assert await enrolment.set_timezone(s, p, "Asia/Tokyo")
        stored = await _stored(db, patient.id)
        assert (stored.enrol_step, stored.timezone, stored.consent_version) == ("times", "Asia/Tokyo", "v3")
        assert await enrolment.back_to_timezone(s, p)
        assert (await _stored(db, patient.id)).enrol_step == "timezone"


async def test_withdraw_stops_setting_up_and_takes_the_agreement_back(db: Database, clock: FakeClock) -> None:
    patient, _ = await make_patient(db, clock, status=PatientStatus.ENROLLING, enrol_step="consent")
    assert patient.id is not None
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        assert await enrolment.agree(s, p, "v3", NOW)
        assert await enrolment.set_timezone(s, p, "Asia/Tokyo")
        assert await enrolment.withdraw(s, p), "at the times step"
        stored = await _stored(db, patient.id)
        assert (stored.enrol_step, stored.consent_at, stored.consent_version) == ("declined", None, "")
        assert not await enrolment.withdraw(s, p), "declined already: nothing to stop"
        assert await enrolment.agree(s, p, "v4", NOW), "who stopped may agree again"
        assert (await _stored(db, patient.id)).enrol_step == "timezone"
        p.enrol_step = EnrolStep.DONE.value
        assert not await enrolment.withdraw(s, p), "enrolled: /stop is the patient's stop, not this"
