"""The core of "no alert goes nowhere": routing, reassignment, the responsible therapist, office hours, escalation."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from factories import TEST_TOKEN, make_config, make_patient, make_staff
from sqlmodel import col, select

from rehab_bot import access as access_core
from rehab_bot import alert as alerts
from rehab_bot import caseload, invite
from rehab_bot import staff as staff_core
from rehab_bot.clock import FakeClock
from rehab_bot.config import ClinicConfig, ConfigError, load_config
from rehab_bot.content import load_content
from rehab_bot.db import Database
from rehab_bot.i18n import t
from rehab_bot.models import Alert, AuditLog, Delivery, Patient, PatientStatus, Staff
from rehab_bot.office_hours import OfficeHours, parse_office_hours

CHAT = -100_42
CONTENT = load_content(None)


# --- routing ------------------------------------------------------------------------------


async def _route(db: Database, patient: Patient, clinic: ClinicConfig) -> alerts.Route:
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        return await alerts.route(session, row, clinic)


async def test_the_responsible_therapist_and_the_alert_chat_get_it(db: Database, clock: FakeClock) -> None:
    doc = await make_staff(db, telegram_id=11)
    await make_staff(db, role="admin", telegram_id=12)
    patient, _ = await make_patient(db, clock, therapist_id=doc.id)
    routed = await _route(db, patient, ClinicConfig(alert_chat_id=CHAT))
    assert [r.chat_id for r in routed.recipients] == [11, CHAT] and routed.reason == ""


async def test_without_a_therapist_every_active_admin_gets_it_and_is_told_why(db: Database, clock: FakeClock) -> None:
    await make_staff(db, telegram_id=21)
    await make_staff(db, role="admin", telegram_id=22, timezone="Asia/Tokyo")
    await make_staff(db, role="admin", telegram_id=23)
    await make_staff(db, role="admin", telegram_id=24, active=False)
    orphan, _ = await make_patient(db, clock)
    routed = await _route(db, orphan, ClinicConfig())
    assert [(r.chat_id, r.timezone) for r in routed.recipients] == [(22, "Asia/Tokyo"), (23, "Europe/Berlin")]
    assert routed.reason == "no responsible therapist"
    with_chat = await _route(db, orphan, ClinicConfig(alert_chat_id=CHAT))
    assert [r.chat_id for r in with_chat.recipients] == [22, 23, CHAT], "the alert chat alone is not a person"

    gone = await make_staff(db, telegram_id=25, active=False)
    abandoned, _ = await make_patient(db, clock, therapist_id=gone.id)
    routed = await _route(db, abandoned, ClinicConfig(alert_chat_id=CHAT))
    assert [r.chat_id for r in routed.recipients] == [22, 23, CHAT]
    assert routed.reason == "no responsible therapist (theirs was removed)"


async def test_without_an_admin_every_staff_member_gets_it_and_without_staff_nobody(
    db: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    orphan, _ = await make_patient(db, clock)
    caplog.set_level(logging.ERROR)
    async with db.session() as session:
        row = await session.get(Patient, orphan.id)
        assert row is not None
        assert not (await alerts.route(session, row, ClinicConfig())).reaches_someone
        raised = await alerts.raise_alert(
            session, row, kind="crisis", severity="emergency", detail="x", now=clock.now(), clinic=ClinicConfig()
        )
        await session.commit()
    assert raised is not None
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "reaches nobody" in error.getMessage() and f"patient {orphan.id}" in error.getMessage()
    await make_staff(db, telegram_id=31)
    await make_staff(db, telegram_id=32)
    routed = await _route(db, orphan, ClinicConfig())
    assert [r.chat_id for r in routed.recipients] == [31, 32]
    assert "no admin either" in routed.reason


async def test_without_an_admin_a_colleague_lists_and_may_acknowledge_what_reached_them_in_an_admins_place(
    db: Database, clock: FakeClock
) -> None:
    """open_alerts and stands_in agree (one rule): no therapist, a removed therapist, or escalated."""
    colleague = await make_staff(db, telegram_id=51)
    doc = await make_staff(db, telegram_id=52)
    gone = await make_staff(db, telegram_id=53, active=False)
    orphan, _ = await make_patient(db, clock, alias="NONE")
    abandoned, _ = await make_patient(db, clock, alias="GONE", therapist_id=gone.id)
    cared, _ = await make_patient(db, clock, alias="DOC", therapist_id=doc.id)
    escalated, _ = await make_patient(db, clock, alias="ESC", therapist_id=doc.id)
    async with db.session() as session:
        raised = {}
        for patient in (orphan, abandoned, cared, escalated):
            row = await session.get(Patient, patient.id)
            assert row is not None
            alert = await alerts.raise_alert(
                session, row, kind="crisis", severity="urgent", detail="x", now=clock.now(), clinic=ClinicConfig()
            )
            assert alert is not None
            raised[row.alias] = alert
        raised["ESC"].escalated_at = clock.now()
        await session.commit()

        me = await session.get(Staff, colleague.id)
        assert me is not None
        listed = [p.alias for _, p in await alerts.open_alerts(session, me)]
        assert sorted(listed) == ["ESC", "GONE", "NONE"]
        for alias, alert in raised.items():
            patient_row = await session.get(Patient, alert.patient_id)
            assert patient_row is not None
            assert await alerts.stands_in(session, alert, patient_row) is (alias != "DOC"), alias

        await make_staff(db, role="admin", telegram_id=54)  # with an admin, only one's own patients
        assert await alerts.open_alerts(session, me) == []
        for alert in raised.values():
            patient_row = await session.get(Patient, alert.patient_id)
            assert patient_row is not None
            assert not await alerts.stands_in(session, alert, patient_row)


async def test_each_alert_message_is_in_its_readers_zone_with_a_button(db: Database, clock: FakeClock) -> None:
    await make_staff(db, role="admin", telegram_id=41, timezone="America/New_York")
    orphan, _ = await make_patient(db, clock, alias="TZ-1")
    clinic = ClinicConfig(alert_chat_id=CHAT, timezone="Europe/London")
    async with db.session() as session:
        row = await session.get(Patient, orphan.id)
        assert row is not None
        raised = await alerts.raise_alert(
            session, row, kind="red_flag", severity="emergency", detail="bladder", now=clock.now(), clinic=clinic
        )
        await session.commit()
        rows = (await session.exec(select(Delivery).order_by(col(Delivery.id)))).all()
    assert raised is not None
    assert [(r.chat_id, r.kind) for r in rows] == [(41, "alert"), (CHAT, "alert")]
    assert "Raised 2026-06-10 01:00 EDT." in rows[0].body and "Raised 2026-06-10 06:00 BST." in rows[1].body
    assert all("Why you get this: no responsible therapist." in r.body for r in rows)
    assert all(alerts.ack_alert_id(r.payload) == raised.id for r in rows)
    assert alerts.ack_alert_id('{"ack": true}') is None and alerts.ack_alert_id("junk") is None


def test_the_privacy_mode_neutral_alert_is_in_its_readers_language() -> None:
    assert alerts.neutral_text("high", "LWS-1") == "⚠️ HIGH alert for LWS-1. Open the dashboard to see it."
    assert alerts.neutral_text("emergency", "LWS-1", "en") == (
        "⚠️ EMERGENCY alert for LWS-1. Open the dashboard to see it."
    )
    assert alerts.neutral_text("emergency", "LWS-1", "de") == (
        "⚠️ Warnung NOTFALL für LWS-1. Öffnen Sie das Dashboard, um sie zu sehen."
    )
    assert alerts.neutral_text("high", "LWS-1", "de") == (
        "⚠️ Warnung HOCH für LWS-1. Öffnen Sie das Dashboard, um sie zu sehen."
    )
    assert alerts.neutral_text("odd", "LWS-1", "de").startswith("⚠️ Warnung ODD für LWS-1.")
    assert t("en", alerts.NEUTRAL_STAFF_MESSAGE) == "There is a new message for you on the dashboard."
    assert t("de", alerts.NEUTRAL_STAFF_MESSAGE) == "Im Dashboard liegt eine neue Nachricht für Sie."


async def test_each_alert_message_remembers_its_readers_language_for_its_button(db: Database, clock: FakeClock) -> None:
    german = await make_staff(db, telegram_id=42, language="de")
    await make_staff(db, role="admin", telegram_id=43)
    orphan, _ = await make_patient(db, clock, alias="LANG-1", therapist_id=german.id)
    clinic = ClinicConfig(alert_chat_id=CHAT)
    async with db.session() as session:
        row = await session.get(Patient, orphan.id)
        assert row is not None
        raised = await alerts.raise_alert(
            session, row, kind="red_flag", severity="emergency", detail="bladder", now=clock.now(), clinic=clinic
        )
        await session.commit()
        rows = (await session.exec(select(Delivery).order_by(col(Delivery.id)))).all()
    assert raised is not None
    assert {r.chat_id: staff_core.payload_language(r.payload) for r in rows} == {42: "de", CHAT: "en"}
    assert all(alerts.ack_alert_id(r.payload) == raised.id for r in rows)
    assert staff_core.payload_language('{"ack": 5}') == "en", "a payload from before: English, as it was"
    assert staff_core.payload_language('{"ack": 5, "lang": "xx"}') == "en"
    assert staff_core.payload_language("junk") == "en"


def test_shorten_never_cuts_a_word() -> None:
    text = "Do you have pain that your pain medicine does not control at all today?"
    short = alerts.shorten(text, 30)
    assert len(short) <= 30 and short.endswith("…") and text.startswith(short[:-1])
    assert short == "Do you have pain that your…"
    assert alerts.shorten("short", 30) == "short"


def test_answers_read_as_the_questions_and_options_of_the_content() -> None:
    at = datetime(2026, 6, 10, tzinfo=UTC)
    meds = caseload.AnswerLine(at, "symptoms", "pain_meds", 0, "")
    assert caseload.answer_text(CONTENT, meds) == "Do you have pain that your pain medicine does not control? No"
    pain = caseload.answer_text(CONTENT, caseload.AnswerLine(at, "pain", "pain", 4, ""))
    assert "pain" in pain.lower() and pain.endswith(" 4") and "pain/pain" not in pain
    assert caseload.answer_text(CONTENT, caseload.AnswerLine(at, "gone", "x", 2, "")) == "gone/x: 2"
    # A label that shows its number already ("🙁 2") is not followed by the number again.
    mood = caseload.AnswerLine(at, "mood", "mood", 2, "")
    assert caseload.answer_text(CONTENT, mood, "de") == "Wie ist Ihre Stimmung heute? 🙁 2"


# --- no patient without a responsible person ------------------------------------------------


async def test_the_responsible_therapist_of_an_invitation(db: Database) -> None:
    async with db.session() as session:
        with pytest.raises(invite.InviteError, match="no staff member yet"):
            await invite.responsible_staff(session, None)
    admin = await make_staff(db, role="admin", telegram_id=51, name="Admin")
    async with db.session() as session:
        assert await invite.responsible_staff(session, None) == (admin, True)
    doc = await make_staff(db, telegram_id=52, name="Dr Only")
    async with db.session() as session:
        chosen, by_default = await invite.responsible_staff(session, None)
        assert (chosen.id, by_default) == (doc.id, True), "the only therapist, not the admin"
    await make_staff(db, telegram_id=53, name="Dr Second")
    async with db.session() as session:
        with pytest.raises(invite.InviteError, match="name the responsible one with --therapist") as refused:
            await invite.responsible_staff(session, None)
        assert refused.value.code == "therapist_required"
        chosen, by_default = await invite.responsible_staff(session, "dr second")
        assert chosen.name == "Dr Second" and not by_default


async def test_removing_a_therapist_hands_their_patients_to_an_admin(db: Database, clock: FakeClock) -> None:
    admin = await make_staff(db, role="admin", telegram_id=61, name="Admin")
    leaving = await make_staff(db, telegram_id=62, name="Dr Leaving")
    mine = [(await make_patient(db, clock, alias=f"L-{n}", therapist_id=leaving.id, times=()))[0] for n in (2, 1)]
    erased, _ = await make_patient(db, clock, therapist_id=leaving.id, status=PatientStatus.STOPPED, times=())
    async with db.session() as session:
        removal = await staff_core.remove_staff(session, telegram_id=62, now=clock.now())
        await session.commit()
    assert removal.new_owner is not None and removal.new_owner.id == admin.id
    assert [p.alias for p in removal.patients] == ["L-1", "L-2"]
    async with db.session() as session:
        owners = {p.id: p.therapist_id for p in (await session.exec(select(Patient))).all()}
        [told] = (await session.exec(select(Delivery))).all()
        [audited] = (await session.exec(select(AuditLog))).all()
    assert all(owners[p.id] == admin.id for p in mine) and owners[erased.id] == leaving.id
    assert told.chat_id == 61 and told.kind == "alert" and "Dr Leaving was removed" in told.body
    assert "2 patients: L-1, L-2" in told.body
    assert audited.action == "staff.remove" and f"to_staff={admin.id}" in audited.detail


async def test_removal_to_a_named_colleague_and_never_to_nobody(db: Database, clock: FakeClock) -> None:
    lone = await make_staff(db, telegram_id=71, name="Dr Lone")
    patient, _ = await make_patient(db, clock, therapist_id=lone.id, times=())
    async with db.session() as session:
        with pytest.raises(access_core.StaffError, match="no other admin to take them over"):
            await staff_core.remove_staff(session, telegram_id=71, now=clock.now())
        with pytest.raises(access_core.StaffError, match="cannot take over their own"):
            await staff_core.remove_staff(session, telegram_id=71, now=clock.now(), reassign_to="71")
        with pytest.raises(access_core.StaffError, match="no active staff member"):
            await staff_core.remove_staff(session, telegram_id=71, now=clock.now(), reassign_to="Dr Nobody")
    async with db.session() as session:
        row = await session.get(type(lone), lone.id)
        assert row is not None and row.active, "a refused removal changes nothing"
    colleague = await make_staff(db, telegram_id=72, name="Dr Next")
    async with db.session() as session:
        removal = await staff_core.remove_staff(session, telegram_id=71, now=clock.now(), reassign_to="Dr Next")
        await session.commit()
        moved = await session.get(Patient, patient.id)
    assert removal.new_owner is not None and removal.new_owner.id == colleague.id
    assert moved is not None and moved.therapist_id == colleague.id
    empty = await make_staff(db, telegram_id=73)
    async with db.session() as session:
        assert (await staff_core.remove_staff(session, telegram_id=73, now=clock.now())).new_owner is None
        await session.commit()
    assert empty.id is not None


# --- office hours --------------------------------------------------------------------------


def test_office_hours_parse_from_toml_and_environment() -> None:
    hours = parse_office_hours({"mon-fri": "08:00-12:00, 13:00-17:00", "sat": "09:00-24:00"})
    assert hours.lines()[0] == "mon 08:00-12:00, 13:00-17:00" and hours.lines()[-1] == "sat 09:00-24:00"
    assert hours.ranges(6) == () and hours.configured
    assert parse_office_hours("mon-fri=08:00-12:00,13:00-17:00; sat=09:00-24:00") == hours
    assert not parse_office_hours({}).configured and not parse_office_hours("").configured
    for bad, phrase in (
        ({"mo": "08:00-17:00"}, "weekday"),
        ({"fri-mon": "08:00-17:00"}, "weekday"),
        ({"mon": "17:00-08:00"}, "ends before it starts"),
        ({"mon": "08:00"}, "HH:MM-HH:MM"),
        ({"mon": "08:00-12:00, 11:00-13:00"}, "overlap"),
        ({"mon-fri": "08:00-17:00", "fri": "09:00-10:00"}, "twice"),
        ({"mon": "8-17"}, "HH:MM"),
        ("mon 08:00-17:00", "DAY=HH:MM-HH:MM"),
    ):
        with pytest.raises(ValueError, match=phrase):
            parse_office_hours(bad)  # type: ignore[arg-type]


def test_office_time_skips_nights_weekends_and_follows_dst() -> None:
    hours = parse_office_hours({"mon-fri": "08:00-17:00"})
    tz = "Europe/Berlin"
    friday_16 = datetime(2026, 6, 12, 14, 0, tzinfo=UTC)
    assert hours.add_open_time(friday_16, timedelta(minutes=240), tz) == datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
    saturday = datetime(2026, 6, 13, 10, 0, tzinfo=UTC)
    assert not hours.is_open(saturday, tz) and hours.is_open(friday_16, tz)
    assert hours.add_open_time(saturday, timedelta(minutes=60), tz) == datetime(2026, 6, 15, 7, 0, tzinfo=UTC)
    # Berlin leaves summer time on Sunday 25 October: Monday 08:00 is 07:00 UTC, not 06:00.
    friday = datetime(2026, 10, 23, 14, 30, tzinfo=UTC)  # 16:30 CEST
    assert hours.add_open_time(friday, timedelta(minutes=60), tz) == datetime(2026, 10, 26, 7, 30, tzinfo=UTC)
    assert OfficeHours().add_open_time(saturday, timedelta(minutes=60), tz) == saturday + timedelta(hours=1)
    late = parse_office_hours({"sat": "22:00-24:00"})
    assert late.windows(date(2026, 6, 13), tz) == [
        (datetime(2026, 6, 13, 20, 0, tzinfo=UTC), datetime(2026, 6, 13, 22, 0, tzinfo=UTC))
    ]
    assert late.ranges(5)[0][0] == time(22, 0)


def test_office_hours_and_urgent_escalation_in_the_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[clinic]\noffice_hours = { mon-fri = "08:00-17:00" }\n[staff]\nurgent_escalation_minutes = 90\n',
        encoding="utf-8",
    )
    config = load_config(path, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    assert config.clinic.office_hours == parse_office_hours({"mon-fri": "08:00-17:00"})
    assert config.staff.urgent_escalation_minutes == 90
    assert load_config(None, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}).staff.urgent_escalation_minutes == 240
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN, "REHAB_BOT_CLINIC_OFFICE_HOURS": "sat=09:00-12:00"}
    assert load_config(path, env=env).clinic.office_hours.lines() == ["sat 09:00-12:00"]
    path.write_text('[clinic]\noffice_hours = { mon = "17:00-08:00" }\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"clinic.office_hours is not valid .*ends before it starts"):
        load_config(path, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    path.write_text("[staff]\nurgent_escalation_minutes = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"staff\.urgent_escalation_minutes must be at least 1"):
        load_config(path, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})


# --- escalation ---------------------------------------------------------------------------


async def test_urgent_alerts_escalate_after_their_own_minutes_of_office_time(db: Database) -> None:
    clock = FakeClock(datetime(2026, 6, 12, 14, 0, tzinfo=UTC))  # Friday 16:00 in Berlin
    config = make_config(
        staff={"escalation_minutes": 30, "urgent_escalation_minutes": 240},
        clinic={"office_hours": parse_office_hours({"mon-fri": "08:00-17:00"})},
    )
    admin = await make_staff(db, role="admin", telegram_id=810_000_081, timezone="Europe/London")
    patient, _ = await make_patient(db, clock, times=())
    async with db.session() as session:
        for severity in ("emergency", "critical", "high", "low"):
            session.add(Alert(patient_id=patient.id or 0, severity=severity, kind="red_flag", created_at=clock.now()))
        # Operational alerts are for the caseload: a blocked bot or a silent patient never escalates.
        for kind in ("unreachable", "inactive"):
            session.add(Alert(patient_id=patient.id or 0, severity="high", kind=kind, created_at=clock.now()))
        await session.commit()

    async def tick(at: datetime) -> list[str]:
        clock.set(at)
        async with db.session() as session:
            escalated = await alerts.escalate_overdue(session, clock.now(), config)
            await session.commit()
            return [a.severity for a in (await session.exec(select(Alert))).all() if a.id in escalated]

    assert await tick(clock.now() + timedelta(minutes=29)) == []
    assert await tick(clock.now() + timedelta(minutes=1)) == ["emergency"]
    assert await tick(datetime(2026, 6, 15, 8, 59, tzinfo=UTC)) == [], "Monday 10:59: 239 office minutes"
    # high and critical are both the urgent level (content.checkins.level_of): "contact the clinic today"
    assert sorted(await tick(datetime(2026, 6, 15, 9, 0, tzinfo=UTC))) == ["critical", "high"]
    assert await tick(datetime(2026, 6, 30, tzinfo=UTC)) == [], "once only; low (routine) never"
    async with db.session() as session:
        bodies = [d.body for d in (await session.exec(select(Delivery).order_by(col(Delivery.id)))).all()]
    assert len(bodies) == 3 and all(str(admin.telegram_id) not in b for b in bodies)
    assert all("acknowledged for 240 minutes of office hours" in b for b in bodies[1:])
    assert all("Raised 2026-06-12 15:00 BST" in b for b in bodies), "in the admin's own zone"
    assert alerts.ESCALATING_SEVERITIES == {"emergency", "critical", "high"}
    assert alerts.ESCALATING_KINDS == ("red_flag", "checkin", "crisis", "crisis_question", "session_pain")


async def test_the_open_alerts_list_shows_the_most_severe_first_and_the_limit_never_hides_an_emergency(
    db: Database, clock: FakeClock
) -> None:
    """An outside test saw /alerts list EMERGENCY after CRITICAL and HIGH (by time); with more alerts than the
    list holds, a new emergency behind older low ones was not listed at all."""
    admin = await make_staff(db, role="admin", telegram_id=61)
    patient, _ = await make_patient(db, clock, alias="MANY")
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        order = ["low"] * 25 + ["high", "critical", "emergency", "low"]
        for n, severity in enumerate(order):
            await alerts.raise_alert(
                session,
                row,
                kind="checkin",
                severity=severity,
                detail=f"x{n}",
                now=clock.now() + timedelta(minutes=n),
                clinic=ClinicConfig(),
                key=f"many:{n}",
            )
        await session.commit()
        me = await session.get(Staff, admin.id)
        assert me is not None
        listed = await alerts.open_alerts(session, me, limit=20)
    assert [a.severity for a, _ in listed[:4]] == ["emergency", "critical", "high", "low"]
    lows = [a.created_at for a, _ in listed[3:]]
    assert lows == sorted(lows) and len(listed) == 20, "the longest waiting first within a severity"
