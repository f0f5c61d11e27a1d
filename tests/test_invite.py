"""Invites against real databases: single use, expiry, bad codes, staff invites, refusals change nothing."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import pytest
from factories import make_patient, make_staff
from PIL import Image
from sqlmodel import select

from rehab_bot.clock import FakeClock
from rehab_bot.content import Content, load_content
from rehab_bot.db import Database
from rehab_bot.invite import (
    CODE_RE,
    InviteError,
    Outcome,
    create_patient_invite,
    create_staff_invite,
    deep_link,
    find_staff,
    pasted_link_code,
    qr_png,
    redeem,
    renew_patient_invite,
)
from rehab_bot.models import AuditLog, Invite, Patient, PatientStatus, Staff
from rehab_bot.staff import active_staff

SURGERY = date(2026, 6, 1)


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(None)


async def invite_for(db: Database, clock: FakeClock, content: Content, alias: str = "P-1", **kw: Any) -> Invite:
    async with db.session() as session:
        made = await create_patient_invite(
            session,
            content,
            alias=alias,
            surgery_date=kw.pop("surgery_date", SURGERY),
            programme_id=kw.pop("programme_id", "lumbar-example"),
            now=clock.now(),
            valid_days=14,
            timezone="Europe/Berlin",
            language="en",
            **kw,
        )
        await session.commit()
        return made.invite


async def tap(db: Database, clock: FakeClock, code: str, telegram_id: int, language: str = "en") -> Any:
    async with db.session() as session:
        result = await redeem(
            session, code, telegram_id=telegram_id, language=language, timezone="Europe/Berlin", now=clock.now()
        )
        await session.commit()
        return result


async def snapshot(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with db.session() as session:
        patients = [
            (p.id, p.telegram_id, p.enrol_step, p.language, p.status)
            for p in (await session.exec(select(Patient).order_by(Patient.id))).all()  # type: ignore[arg-type]
        ]
        invites = [
            (i.id, i.used_at, i.used_by)
            for i in (await session.exec(select(Invite).order_by(Invite.id))).all()  # type: ignore[arg-type]
        ]
        staff = [(s.id, s.telegram_id) for s in (await session.exec(select(Staff))).all()]
    return patients, invites, staff


def test_codes_links_and_qr() -> None:
    from rehab_bot.invite import new_code

    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(CODE_RE.match(c) and len(c) == 16 for c in codes)
    link = deep_link("@rehab_test_bot", "abc_DEF-123")
    assert link == "https://t.me/rehab_test_bot?start=abc_DEF-123"
    with pytest.raises(InviteError):
        deep_link("no spaces allowed", "x")
    image = Image.open(io.BytesIO(qr_png(link)))
    assert image.format == "PNG" and image.size[0] == image.size[1] >= 200


async def test_invite_creates_an_enrolling_patient_and_an_audited_expiring_code(
    db: Database, clock: FakeClock, content: Content
) -> None:
    doc = await make_staff(db, name="Dr Weber")
    invite = await invite_for(db, clock, content, therapist_id=doc.id, created_by=doc.id, actor="telegram:1")
    assert CODE_RE.match(invite.code) and invite.kind == "patient"
    assert invite.expires_at == clock.now() + timedelta(days=14)
    assert invite.used_at is None
    async with db.session() as session:
        patient = await session.get(Patient, invite.patient_id)
        audit = (await session.exec(select(AuditLog))).all()
    assert patient is not None
    assert patient.status == PatientStatus.ENROLLING and patient.telegram_id is None and patient.enrol_step == ""
    assert patient.therapist_id == doc.id and patient.surgery_date == SURGERY
    assert [(a.action, a.actor, a.patient_id, a.staff_id) for a in audit] == [
        ("invite.create", "telegram:1", patient.id, doc.id)
    ]


@pytest.mark.parametrize(
    ("kw", "code", "phrase"),
    [
        ({"programme_id": "nope"}, "unknown_programme", "known programmes: lumbar-example"),
        ({"surgery_type": "knee"}, "bad_surgery_type", "lumbar, cervical, other"),
        ({"surgery_type": "cervical"}, "programme_mismatch", "lumbar surgery"),
        ({"alias": "  "}, "bad_alias", "alias"),
        ({"surgery_date": date(2027, 6, 1)}, "surgery_date_ahead", "6 months"),
        ({"surgery_date": date(2025, 1, 1)}, "surgery_date_past", "a year ago"),
        ({"therapist_id": 12345}, "unknown_therapist", "12345"),
    ],
)
async def test_bad_input_is_refused_and_creates_nothing(
    db: Database, clock: FakeClock, content: Content, kw: dict[str, Any], code: str, phrase: str
) -> None:
    with pytest.raises(InviteError) as caught:
        await invite_for(db, clock, content, **kw)
    assert caught.value.code == code and phrase in str(caught.value)
    assert await snapshot(db) == ([], [], [])


async def test_duplicate_alias_is_refused_whatever_the_case(db: Database, clock: FakeClock, content: Content) -> None:
    await invite_for(db, clock, content, alias="P-7")
    with pytest.raises(InviteError) as caught:
        await invite_for(db, clock, content, alias="p-7")
    assert caught.value.code == "duplicate_alias"


async def test_find_staff_by_telegram_id_or_name(db: Database) -> None:
    weber = await make_staff(db, name="Dr Weber", telegram_id=777)
    await make_staff(db, name="Dr Kim")
    await make_staff(db, name="Dr Kim")
    async with db.session() as session:
        assert (await find_staff(session, "777")).id == weber.id
        assert (await find_staff(session, "dr weber")).id == weber.id
        with pytest.raises(InviteError, match="2 staff members"):
            await find_staff(session, "Dr Kim")
        with pytest.raises(InviteError, match="no active staff"):
            await find_staff(session, "Dr Nobody")


async def test_a_code_links_one_account_once(db: Database, clock: FakeClock, content: Content) -> None:
    invite = await invite_for(db, clock, content)
    first = await tap(db, clock, invite.code, 501, language="de")
    assert first.outcome == Outcome.PATIENT and not first.resumed
    assert first.patient.telegram_id == 501 and first.patient.enrol_step == "consent"
    assert first.patient.language == "de"
    # The same account may come back through the same link: it resumes.
    clock.advance(timedelta(days=30))  # even after the invite's expiry
    again = await tap(db, clock, invite.code, 501)
    assert again.outcome == Outcome.PATIENT and again.resumed and again.patient.id == first.patient.id
    before = await snapshot(db)
    other = await tap(db, clock, invite.code, 502)
    assert other.outcome == Outcome.USED
    assert await snapshot(db) == before
    async with db.session() as session:
        stored = await session.get(Invite, invite.id)
    assert stored is not None and stored.used_by == 501


async def test_expiry_is_exact(db: Database, clock: FakeClock, content: Content) -> None:
    first = await invite_for(db, clock, content, alias="P-1")
    second = await invite_for(db, clock, content, alias="P-2")
    clock.advance(timedelta(days=14) - timedelta(seconds=1))
    assert (await tap(db, clock, first.code, 601)).outcome == Outcome.PATIENT
    clock.advance(timedelta(seconds=1))
    before = await snapshot(db)
    assert (await tap(db, clock, second.code, 602)).outcome == Outcome.EXPIRED
    assert await snapshot(db) == before


@pytest.mark.parametrize("code", ["", "a b", "x" * 65, "ünïcode", "abc;drop", "../../etc"])
async def test_malformed_codes(db: Database, clock: FakeClock, content: Content, code: str) -> None:
    await invite_for(db, clock, content)
    before = await snapshot(db)
    assert (await tap(db, clock, code, 701)).outcome == Outcome.MALFORMED
    assert await snapshot(db) == before


async def test_unknown_code(db: Database, clock: FakeClock, content: Content) -> None:
    await invite_for(db, clock, content)
    before = await snapshot(db)
    assert (await tap(db, clock, "AAAAAAAAAAAAAAAA", 702)).outcome == Outcome.UNKNOWN
    assert await snapshot(db) == before


async def test_an_enrolled_patient_or_staff_cannot_take_another_patients_invite(
    db: Database, clock: FakeClock, content: Content
) -> None:
    await make_patient(db, clock, telegram_id=801)
    await make_staff(db, telegram_id=802)
    invite = await invite_for(db, clock, content)
    before = await snapshot(db)
    assert (await tap(db, clock, invite.code, 801)).outcome == Outcome.OTHER_PATIENT
    assert (await tap(db, clock, invite.code, 802)).outcome == Outcome.IS_STAFF
    assert await snapshot(db) == before
    # The invite is still good for the patient it was meant for.
    assert (await tap(db, clock, invite.code, 803)).outcome == Outcome.PATIENT


async def test_staff_invite_registers_staff_once(db: Database, clock: FakeClock) -> None:
    admin = await make_staff(db, role="admin", telegram_id=900)
    async with db.session() as session:
        invite = await create_staff_invite(
            session, name="Dr Lang", role="therapist", now=clock.now(), valid_days=14, created_by=admin.id
        )
        await session.commit()
    assert invite.kind == "staff" and invite.patient_id is None
    result = await tap(db, clock, invite.code, 901, language="de")
    assert result.outcome == Outcome.STAFF
    assert (result.staff.name, result.staff.role, result.staff.telegram_id) == ("Dr Lang", "therapist", 901)
    assert result.staff.language == "de" and result.staff.timezone == "Europe/Berlin"
    assert (await tap(db, clock, invite.code, 901)).outcome == Outcome.ALREADY_STAFF
    before = await snapshot(db)
    assert (await tap(db, clock, invite.code, 902)).outcome == Outcome.USED
    assert await snapshot(db) == before
    async with db.session() as session:
        actions = [a.action for a in (await session.exec(select(AuditLog).order_by(AuditLog.id))).all()]  # type: ignore[arg-type]
    assert actions == ["staff_invite.create", "staff.join"]


async def test_staff_invite_refusals(db: Database, clock: FakeClock) -> None:
    await make_patient(db, clock, telegram_id=911)
    await make_staff(db, telegram_id=912)
    async with db.session() as session:
        fresh = await create_staff_invite(session, name="A", role="admin", now=clock.now(), valid_days=1)
        old = await create_staff_invite(session, name="B", role="therapist", now=clock.now(), valid_days=1)
        await session.commit()
    before = await snapshot(db)
    assert (await tap(db, clock, fresh.code, 911)).outcome == Outcome.IS_PATIENT
    assert (await tap(db, clock, fresh.code, 912)).outcome == Outcome.ALREADY_STAFF
    clock.advance(timedelta(days=1))
    assert (await tap(db, clock, old.code, 913)).outcome == Outcome.EXPIRED
    assert await snapshot(db) == before
    async with db.session() as session:
        with pytest.raises(InviteError):
            await create_staff_invite(session, name="C", role="surgeon", now=clock.now(), valid_days=1)


async def test_a_removed_staff_member_invited_again_is_staff_again(db: Database, clock: FakeClock) -> None:
    admin = await make_staff(db, role="admin", telegram_id=920)
    gone = await make_staff(db, telegram_id=921, name="Dr Away", language="de", timezone="Europe/Vienna")
    async with db.session() as session:
        row = await session.get(Staff, gone.id)
        assert row is not None
        row.active = False
        session.add(row)
        again = await create_staff_invite(
            session, name="Dr Back", role="admin", now=clock.now(), valid_days=14, created_by=admin.id
        )
        await session.commit()
    result = await tap(db, clock, again.code, 921, language="en")
    assert result.outcome == Outcome.STAFF
    assert result.staff is not None and result.staff.id == gone.id, "the same row: their audit trail stays theirs"
    async with db.session() as session:
        back = await active_staff(session, 921)
        joined = (await session.exec(select(AuditLog).where(AuditLog.action == "staff.join"))).one()
    assert back is not None and (back.name, back.role, back.language, back.timezone) == (
        "Dr Back",
        "admin",
        "de",
        "Europe/Vienna",
    )
    assert joined.staff_id == gone.id and "rejoined" in joined.detail
    assert (await tap(db, clock, again.code, 921)).outcome == Outcome.ALREADY_STAFF


async def test_renewed_invite_replaces_the_old_one_and_may_move_the_patient_to_a_new_account(
    db: Database, clock: FakeClock, content: Content
) -> None:
    old = await invite_for(db, clock, content)
    assert (await tap(db, clock, old.code, 1001)).outcome == Outcome.PATIENT
    unused = await invite_for(db, clock, content, alias="P-2")
    async with db.session() as session:
        patient = await session.get(Patient, unused.patient_id)
        assert patient is not None
        renewed = await renew_patient_invite(session, patient, now=clock.now(), valid_days=14)
        await session.commit()
    assert (await tap(db, clock, unused.code, 1002)).outcome == Outcome.EXPIRED
    assert (await tap(db, clock, renewed.code, 1002)).outcome == Outcome.PATIENT
    # A new phone: the clinic renews the first patient's invite, the new account takes over.
    async with db.session() as session:
        first = await session.get(Patient, old.patient_id)
        assert first is not None
        again = await renew_patient_invite(session, first, now=clock.now(), valid_days=14)
        await session.commit()
    moved = await tap(db, clock, again.code, 1003)
    assert moved.outcome == Outcome.PATIENT and moved.patient.id == first.id and moved.patient.telegram_id == 1003
    assert (await tap(db, clock, old.code, 1001)).outcome == Outcome.USED


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("https://t.me/RehabTestBot?start=riTzER8eSvch4I4u", "riTzER8eSvch4I4u"),
        ("  t.me/rehabtestbot?start=Ab3-_x \n", "Ab3-_x"),
        ("http://www.telegram.me/RehabTestBot/?start=cgAbc", "cgAbc"),
        ("riTzER8eSvch4I4u", "riTzER8eSvch4I4u"),
        ("cgriTzER8eSvch4I4u", "cgriTzER8eSvch4I4u"),
        ("https://t.me/OtherBot?start=riTzER8eSvch4I4u", None),  # another bot's link
        ("my link: https://t.me/RehabTestBot?start=abc", None),  # not the whole message
        ("ich_will_sterben", None),  # 16 characters, but words: a code alone needs a digit
        ("abcdefghijklmnop", None),
        ("riTzER8eSvch4I4", None),  # 15 characters
        ("4111111111111111", None),  # 16 digits: a card number, not a code
    ],
)
def test_an_invitation_pasted_into_the_chat_is_found(text: str, code: str | None) -> None:
    assert pasted_link_code(text, "@RehabTestBot") == code


async def test_an_unanswered_caregiver_link_gives_way_and_a_confirmed_one_refuses(
    db: Database, clock: FakeClock, content: Content
) -> None:
    from rehab_bot import caregiver

    supported, _ = await make_patient(db, clock, telegram_id=950, times=())

    async def caregiver_link(telegram_id: int, *, confirmed: bool) -> int:
        async with db.session() as session:
            row = await session.get(Patient, supported.id)
            assert row is not None
            link = await caregiver.invite(session, row, clock.now(), hours=24)
            opened = await caregiver.open_link(session, link.code, telegram_id, "en", clock.now())
            assert opened.outcome == caregiver.Outcome.ASK_CONSENT
            if confirmed:
                await caregiver.consent(session, link, "Carla", clock.now())
            await session.commit()
            assert link.id is not None
            return link.id

    async def link_holder(link_id: int) -> int | None:
        async with db.session() as session:
            link = await session.get(caregiver.Caregiver, link_id)
            assert link is not None
            return link.telegram_id

    # A refused invitation (expired) changes nothing: the unanswered link stays with its account.
    expired = await invite_for(db, clock, content, alias="P-LATE")
    clock.advance(timedelta(days=15))
    pending = await caregiver_link(951, confirmed=False)
    assert (await tap(db, clock, expired.code, 951)).outcome == Outcome.EXPIRED
    assert await link_holder(pending) == 951
    # A patient's invitation enrols the account; the unanswered link is released and audited.
    invite = await invite_for(db, clock, content, alias="P-NEW")
    assert (await tap(db, clock, invite.code, 951)).outcome == Outcome.PATIENT
    assert await link_holder(pending) is None
    # So does a staff invitation.
    async with db.session() as session:
        staff_invite = await create_staff_invite(
            session, name="Dr New", role="therapist", now=clock.now(), valid_days=1
        )
        await session.commit()
    pending = await caregiver_link(952, confirmed=False)
    assert (await tap(db, clock, staff_invite.code, 952)).outcome == Outcome.STAFF
    assert await link_holder(pending) is None
    async with db.session() as session:
        released = (await session.exec(select(AuditLog).where(AuditLog.action == caregiver.RELEASE))).all()
    assert [(row.patient_id, row.detail.split(" ")[1]) for row in released] == [
        (supported.id, "for=patient_invite"),
        (supported.id, "for=staff_invite"),
    ]
    # A confirmed caregiver is still refused, and keeps their link.
    confirmed = await caregiver_link(953, confirmed=True)
    other = await invite_for(db, clock, content, alias="P-OTHER")
    async with db.session() as session:
        other_staff = await create_staff_invite(session, name="Dr Two", role="admin", now=clock.now(), valid_days=1)
        await session.commit()
    before = await snapshot(db)
    assert (await tap(db, clock, other.code, 953)).outcome == Outcome.IS_CAREGIVER
    assert (await tap(db, clock, other_staff.code, 953)).outcome == Outcome.IS_CAREGIVER
    assert await snapshot(db) == before
    assert await link_holder(confirmed) == 953


@pytest.mark.parametrize("typed", ["ÄÖÜ-123", "Müller-7", "José-12"])
def test_an_alias_with_umlauts_or_accents_is_refused_saying_which_letters_are_meant(typed: str) -> None:
    """ "Ä" is a letter: "An alias has 3-24 characters: letters, digits, ..." refused "ÄÖÜ-123" with a rule it
    seemed to follow. The refusal, and the step that asks for the alias, say the letters A-Z."""
    from rehab_bot.bot.staff.invites import STEP_TEXT
    from rehab_bot.i18n import t
    from rehab_bot.invite import InviteError, validate_alias

    with pytest.raises(InviteError) as refused:
        validate_alias(typed)
    assert refused.value.code == "bad_alias"
    assert "letters A-Z (no umlauts or accents)" in refused.value.text("en")
    assert "Buchstaben A-Z (ohne Umlaute und Akzente)" in refused.value.text("de")
    assert "letters A-Z without accents" in t("en", STEP_TEXT["alias"])
    assert "Buchstaben A-Z ohne Akzente" in t("de", STEP_TEXT["alias"])
    assert validate_alias("LWS-0412") == "LWS-0412"


def test_a_new_code_never_starts_as_a_caregivers_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """One in 4,096 codes of secrets.token_urlsafe(12) starts with "cg": such a patient's invitation was read
    as a caregiver's, and /start answered 'This link is not valid'."""
    from rehab_bot import invite

    drawn = iter(["cgT0kenStartsCG1", "cg2ndOneAlsoCg22", "Ab3dEfGhIjKlMnOp"])
    monkeypatch.setattr(invite.secrets, "token_urlsafe", lambda n: next(drawn))
    assert invite.new_code() == "Ab3dEfGhIjKlMnOp"


@pytest.mark.parametrize(
    ("code", "caregivers"),
    [
        ("cgAb3dEfGhIjKlMnOp", True),  # "cg" and 16
        ("cgAb3dEfGhIjKlMn", False),  # 16 in all: a patient's code made before new_code avoided "cg"
        ("Ab3dEfGhIjKlMnOp", False),
        ("cg", False),
        ("cgAb3dEfGhIjKlMnOp9", False),
        ("cgAb3dEfGh!jKlMnOp", False),
    ],
)
def test_a_caregivers_code_is_cg_and_sixteen(code: str, caregivers: bool) -> None:
    from rehab_bot.invite import is_caregiver_code

    assert is_caregiver_code(code) is caregivers
