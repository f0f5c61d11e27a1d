"""Staff texts made in the core and the staff handlers' helpers read in the staff member's language.

The weekly digest, the handover message, the staff command menu and the programme choices were
English for a German staff member (Staff.language "de"); English readers read them as before.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from factories import make_patient, make_staff
from sqlmodel import col, select

from rehab_bot import alert as alert_core
from rehab_bot import digest as digest_core
from rehab_bot import message as message_core
from rehab_bot import staff as staff_core
from rehab_bot.bot.staff import staff_commands
from rehab_bot.bot.staff.invites import programme_choices
from rehab_bot.bot.staff.press import clip
from rehab_bot.caseload import Risk, risk_for
from rehab_bot.clock import FakeClock
from rehab_bot.config import ClinicConfig, StaffConfig
from rehab_bot.content import load_content
from rehab_bot.db import Database
from rehab_bot.models import Delivery, Patient, Staff
from rehab_bot.transport import utf16_len

WEEK = date(2026, 3, 23)


def test_the_digest_is_in_its_readers_language() -> None:
    settings = StaffConfig()
    risks = [Risk(1, "SIL-1", 12, ["no response for 4 days"]), Risk(2, "P-2", None, ["x"])]
    english = digest_core.digest_text(Staff(telegram_id=1, name="A"), WEEK, risks, 5, settings)
    assert english.splitlines() == [
        "📋 Weekly digest for the week of 2026-03-23: 2 of the 5 patients in your care at risk.",
        "• SIL-1 (day 12): no response for 4 days",
        "• P-2: x",
        "Open /patients or /patient ALIAS for details.",
    ]
    german = digest_core.digest_text(Staff(telegram_id=1, name="B", language="de"), WEEK, risks, 5, settings)
    assert german.splitlines()[0] == (
        "📋 Wochenübersicht für die Woche vom 2026-03-23: 2 von 5 Patient/innen in Ihrer Betreuung mit Risiko."
    )
    assert "• SIL-1 (Tag 12): " in german and german.endswith("Details mit /patients oder /patient ALIAS.")
    assert "Weekly digest" not in german and "day 12" not in german
    calm = digest_core.digest_text(Staff(telegram_id=1, name="B", language="de"), WEEK, [], 3, settings)
    assert calm == (
        "📋 Wochenübersicht für die Woche vom 2026-03-23: keine Patient/innen mit Risiko (3 in Ihrer Betreuung: "
        "Therapietreue mindestens 50\u00a0%, kein Schmerzanstieg um 2 Punkte oder mehr, alle antworten)."
    )
    assert digest_core.digest_text(Staff(telegram_id=1, name="A"), WEEK, [], 3, settings) == (
        "📋 Weekly digest for the week of 2026-03-23: no patients at risk (3 in your care: adherence at least "
        "50%, no rise in pain of 2 points or more, everyone answering)."
    )


async def test_a_german_readers_risk_reasons_are_german(db: Database) -> None:
    clock = FakeClock(datetime(2026, 3, 23, 7, 0, tzinfo=UTC))
    patient, _ = await make_patient(db, clock, alias="SIL-2", last_activity_at=datetime(2026, 3, 19, 6, 0, tzinfo=UTC))
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        english = await risk_for(session, row, clock.now(), StaffConfig())
        german = await risk_for(session, row, clock.now(), StaffConfig(), "de")
    assert english is not None and german is not None
    assert "no response for 4 days" in english.reasons
    assert "seit 4 Tagen keine Antwort" in german.reasons


async def test_the_handover_message_is_in_the_new_owners_language(db: Database) -> None:
    clock = FakeClock(datetime(2026, 3, 23, 7, 0, tzinfo=UTC))
    removed = Staff(telegram_id=5, name="Dr Gone")
    patients = [Patient(alias=f"P-{n}", telegram_id=n) for n in range(1, 3)]
    assert staff_core.handover_text(removed, patients[:1]).startswith(
        "👥 Dr Gone was removed from the staff. You are now responsible for their 1 patient: P-1.\n"
    )
    assert "their 2 patients: P-1, P-2." in staff_core.handover_text(removed, patients)
    german = staff_core.handover_text(removed, patients, "de")
    assert german.startswith("👥 Dr Gone wurde aus dem Team entfernt. Sie sind jetzt für 2 Patient/innen zuständig:")
    assert "P-1, P-2." in german and "/alerts" in german and "removed" not in german
    # Through remove_staff: the German colleague who takes the patients over reads it in German.
    doc = await make_staff(db, telegram_id=8101, name="Dr Gone")
    heir = await make_staff(db, role="admin", telegram_id=8102, name="Dr Heir", language="de")
    await make_patient(db, clock, alias="HO-1", therapist_id=doc.id)
    async with db.session() as session:
        await staff_core.remove_staff(session, telegram_id=8101, now=clock.now(), reassign_to="8102")
        await session.commit()
    async with db.session() as session:
        [message] = (await session.exec(select(Delivery).where(col(Delivery.chat_id) == heir.telegram_id))).all()
    assert message.body.startswith("👥 Dr Gone wurde aus dem Team entfernt. Sie sind jetzt für 1 Patient/in zuständig:")


def test_the_staff_menu_and_the_programme_choices_are_in_the_staff_members_language() -> None:
    german = {c.command: c.description for c in staff_commands(Staff(telegram_id=1, name="B", language="de"))}
    english = {c.command: c.description for c in staff_commands(Staff(telegram_id=1, name="A", role="admin"))}
    assert english["alerts"] == "Open alerts to acknowledge" and "staffinvite" in english
    assert german["alerts"] == "Offene Warnungen bestätigen" and "staffinvite" not in german
    assert german["patients"] == "Ihre Patient/innen: Therapietreue, Schmerz, Stimmung, Warnungen"
    content = load_content(None)
    english_names = dict(programme_choices(content, "lumbar"))
    german_names = dict(programme_choices(content, "lumbar", "de"))
    assert english_names.keys() == german_names.keys()
    programme = content.programmes["lumbar-example"]
    assert english_names["lumbar-example"] == programme.name["en"] + " (example)"
    assert german_names["lumbar-example"] == programme.name["de"] + " (Beispiel)"


async def test_each_care_message_notice_is_worded_in_its_readers_language(db: Database, clock: FakeClock) -> None:
    """A patient without a therapist: their message goes to both admins, each in their own language, and each
    delivery's payload carries that language for the notice's buttons; older payloads read as English."""
    await make_staff(db, role="admin", telegram_id=51, language="de")
    await make_staff(db, role="admin", telegram_id=52)
    patient, _ = await make_patient(db, clock, alias="MSG-1", therapist_id=None)
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        await message_core.send(session, row, ClinicConfig(), text="Knie steif", now=clock.now())
        await session.commit()
        rows = (await session.exec(select(Delivery).order_by(col(Delivery.id)))).all()
    assert {r.chat_id: r.body for r in rows} == {
        51: "💬 Nachricht von MSG-1:\n\nKnie steif",
        52: "💬 Message from MSG-1:\n\nKnie steif",
    }
    assert {r.chat_id: staff_core.payload_language(r.payload) for r in rows} == {51: "de", 52: "en"}
    assert all(message_core.parse_payload(r.payload)[0] is not None for r in rows)
    assert staff_core.payload_language('{"cm": 5}') == "en", "a payload from before: English, as it was"
    assert staff_core.payload_language('{"cm": 5, "lang": "xx"}') == "en"
    assert staff_core.payload_language("junk") == "en" and staff_core.payload_language("[1]") == "en"


def test_an_unknown_earlier_staff_member_is_someone_in_the_readers_language() -> None:
    assert alert_core.who("Dr Berta", "de") == "Dr Berta"
    assert alert_core.who("", "en") == "someone" and alert_core.who("", "de") == "jemandem"


def test_every_line_of_an_alerts_detail_is_indented_under_its_number_in_the_alerts_list() -> None:
    """A score's reasons are lines of their own: only the first was indented under "1. ⚠️ …", the rest
    ("- 8 is at or above 7", "Recent entries …") stood at the margin, as if they were not that alert's."""
    from rehab_bot.bot.staff.alerts import alerts_view
    from rehab_bot.models import Alert

    staff = Staff(id=1, telegram_id=1, name="Dr Ada", role="therapist", language="en", timezone="Europe/Berlin")
    patient = Patient(id=1, telegram_id=2, alias="LWS-0001")
    detail = "Pain: 8.\n- 8 is at or above 7 [pain-critical]\nRecent entries (oldest first): 6, 7, 8"
    alert = Alert(
        id=1,
        patient_id=1,
        severity="critical",
        kind="checkin",
        detail=detail,
        created_at=datetime(2026, 6, 1, tzinfo=UTC),
    )
    text, _ = alerts_view(staff, [(alert, patient), (alert, patient)])
    lines = text.splitlines()
    assert lines[1].startswith("1. ⚠️ CRITICAL · LWS-0001 · ")
    assert lines[2:5] == [
        "   Pain: 8.",
        "   - 8 is at or above 7 [pain-critical]",
        "   Recent entries (oldest first): 6, 7, 8",
    ]
    assert lines[5].startswith("2. ⚠️ CRITICAL · LWS-0001 · ")


def test_clip_counts_what_telegram_counts_utf16_units() -> None:
    """An emoji outside the Basic Multilingual Plane (🩺) is two UTF-16 units: a 4,096-character text with
    one was refused by Telegram ("Message is too long") and /patient failed."""
    assert clip("short 🩺") == "short 🩺"
    for text in ("🩺" * 5000, "a " * 3000 + "🩺" * 1000, "x" * 5000, "🩺 word " * 900, "a" * 4095 + " 🩺"):
        cut = clip(text)
        assert 3000 < utf16_len(cut) <= 4096 and cut.endswith("…"), (len(cut), utf16_len(cut))
