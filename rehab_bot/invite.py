"""Invitations: how a patient (or a staff member) gets from the clinic to the bot.

A patient invite creates the Patient row (status "enrolling", not yet linked
to any Telegram account) and a single-use code that expires after
``clinic.invite_valid_days``. The clinic hands the patient a deep link
``https://t.me/<bot>?start=<code>``, printed as a QR code; tapping it sends
``/start <code>``, and :func:`redeem` links the Telegram account to the
patient. A staff invite works the same way and creates the Staff row.

Codes are ``secrets.token_urlsafe(12)``: 16 URL-safe characters, 96 random
bits, well inside Telegram's 64-character limit for start parameters. A code
is claimed by the first Telegram account that taps it (a conditional UPDATE,
so two accounts can never both claim it); the same account may tap it again
to resume its enrolment, anyone else is told it has been used.

Plain Python over SQLModel: no telegram imports. The caller commits.
"""

from __future__ import annotations

import enum
import io
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import audit, enrolment
from rehab_bot.access import StaffError
from rehab_bot.config import clinic_name_is_placeholder
from rehab_bot.content import Content, Programme
from rehab_bot.db import REPEAT_WINDOW, lock_row
from rehab_bot.i18n import N_, t
from rehab_bot.models import (
    SURGERY_TYPES,
    AuditLog,
    Caregiver,
    Invite,
    Patient,
    PatientStatus,
    Role,
    Staff,
    table_of,
)
from rehab_bot.schedule import read_date, zone
from rehab_bot.typed import number, plain

if TYPE_CHECKING:
    from PIL import ImageDraw
    from PIL.ImageFont import FreeTypeFont

CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
STAFF_ROLES = (Role.THERAPIST.value, Role.ADMIN.value)
MAX_ALIAS = 64
# What staff type as a new alias (chat and CLI): a pseudonym, see validate_alias.
_ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,23}$")
_NAME_WORD_RE = re.compile(r"[A-ZÄÖÜ][a-zäöüß]{2,}")
# A surgery date outside this window is far more likely a typo than a plan.
MAX_DAYS_AHEAD = 183
MAX_DAYS_AGO = 366
_BOT_USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")


class InviteError(StaffError):
    """An invite cannot be made as asked; ``code`` names the problem for translated UIs.

    A StaffError: the message is fit to show the staff member who typed the input. Where the
    message is a msgid (marked with N_), ``values`` fill its {placeholders} and exc.text(lang) says
    it in the staff member's language (the chat's /invite); other messages read the same in any.
    """

    def __init__(self, code: str, message: str, *, values: dict[str, object] | None = None, **details: object) -> None:
        super().__init__(message, **(values or {}))
        self.code = code
        self.details = details


CAREGIVER_PREFIX = "cg"  # a caregiver's code is "cg" and a new_code(): 18 characters
CODE_LENGTH = 16


def new_code() -> str:
    """A fresh unguessable invite code (16 URL-safe characters), never starting as a caregiver's does:
    one in 4,096 of secrets.token_urlsafe(12) begins with "cg", and /start read such a patient's invitation
    as a caregiver's, which it could not find ("This link is not valid")."""
    while True:
        code = secrets.token_urlsafe(12)
        if not code.startswith(CAREGIVER_PREFIX):
            return code


def is_caregiver_code(code: str) -> bool:
    """A caregiver's code: "cg" and 16 code characters. A patient's 16-character code is never one, even if
    it starts with "cg" (codes made before new_code avoided that)."""
    rest = code.removeprefix(CAREGIVER_PREFIX)
    return rest != code and len(rest) == CODE_LENGTH and CODE_RE.match(rest) is not None


# An invitation link pasted into the chat instead of tapped (people copy links): the whole message is
# the link, with or without https:// and www. Telegram's own links only: t.me and telegram.me.
_PASTED_LINK_RE = re.compile(
    r"\A\s*(?:https?://)?(?:www\.)?(?:t|telegram)\.me/([A-Za-z][A-Za-z0-9_]{3,31})/?\?start=([A-Za-z0-9_-]{1,64})\s*\Z",
    re.IGNORECASE,
)


# A code typed or pasted on its own: a patient's or staff member's (new_code: 16 characters) or a
# caregiver's ("cg" and 16), with a digit in it, as 93 % of codes have (a word with _ or - is still words),
# and a letter (16 digits alone are a card or an insurance number, not a code).
_BARE_CODE_RE = re.compile(r"\A\s*((?:cg)?[A-Za-z0-9_-]{16})\s*\Z")


def pasted_link_code(text: str, bot_username: str) -> str | None:
    """The code of an invitation pasted or typed into the chat, or None.

    The whole text must be the invitation link to this bot (t.me/<bot>?start=<code>, with or without
    https://), or the code alone. Words are never taken for a code: a code alone needs a digit and a letter.
    """
    found = _PASTED_LINK_RE.match(text)
    if found is not None:
        return found.group(2) if found.group(1).lower() == bot_username.strip().lstrip("@").lower() else None
    bare = _BARE_CODE_RE.match(text)
    if bare is not None and any(c.isdigit() for c in bare.group(1)) and any(c.isalpha() for c in bare.group(1)):
        return bare.group(1)
    return None


def deep_link(bot_username: str, code: str) -> str:
    """The t.me link that opens the bot and sends /start <code>."""
    username = bot_username.strip().lstrip("@")
    if not _BOT_USERNAME_RE.match(username):
        raise InviteError("bad_bot_username", f"{bot_username!r} is not a Telegram bot username")
    return f"https://t.me/{username}?start={code}"


def qr_png(link: str, caption: Sequence[str] = ()) -> bytes:
    """A printable QR code of the link, as PNG bytes.

    Caption lines (see qr_caption) are printed under the code, wrapped to its
    width, and stored in the PNG's Description text chunk as well.
    """
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=4)
    qr.add_data(link)
    qr.make(fit=True)
    buffer = io.BytesIO()
    if not caption:
        qr.make_image(fill_color="black", back_color="white").save(buffer)
        return buffer.getvalue()
    from PIL import Image, ImageDraw
    from PIL.PngImagePlugin import PngInfo

    code = qr.make_image(fill_color="black", back_color="white").get_image().convert("L")
    width = code.size[0]
    font = _caption_font(max(14, width // 22))
    measure = ImageDraw.Draw(code)
    lines = [wrapped for line in caption for wrapped in _wrap(line, measure, font, width - 40)]
    line_height = int(font.size * 1.35)
    # Under the code's quiet zone (4 white modules), which scanners need intact.
    top = code.size[1]
    image = Image.new("L", (width, top + line_height * len(lines) + 40), 255)
    image.paste(code, (0, 0))
    draw = ImageDraw.Draw(image)
    for n, line in enumerate(lines):
        draw.text((width // 2, top + n * line_height), line, fill=0, font=font, anchor="ma")
    info = PngInfo()
    info.add_itxt("Description", "\n".join(caption))
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _caption_font(size: int) -> FreeTypeFont:
    """DejaVu Sans (shipped with matplotlib, a dependency) covers umlauts; Pillow's own font does not."""
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (ImportError, OSError):  # pragma: no cover - matplotlib is a dependency
        font = ImageFont.load_default(size=size)
        assert isinstance(font, ImageFont.FreeTypeFont)  # Pillow >= 10.1 with FreeType, as in requirements.lock
        return font


def _wrap(text: str, draw: ImageDraw.ImageDraw, font: FreeTypeFont, width: int) -> list[str]:
    """Greedy word wrap to a pixel width (a single over-long word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def qr_caption(*, alias: str, clinic: str, expires_at: datetime, timezone: str, language: str) -> list[str]:
    """What is printed under an invitation's QR code, in the clinic's language.

    The alias (so the printout finds its patient), the clinic's name (left out
    while it is a placeholder), the last day the link works, and how to use it.
    """
    from babel.dates import format_date

    last_day = expires_at.astimezone(zone(timezone)).date()
    lines = [alias]
    if not clinic_name_is_placeholder(clinic):
        lines.append(" ".join(clinic.split()))
    lines.append(t(language, "Valid until {date}", date=format_date(last_day, "long", locale=language)))
    lines.append(t(language, "Scan with your phone's camera."))
    return lines


@dataclass(frozen=True)
class PatientInvite:
    """What create_patient_invite made."""

    patient: Patient
    invite: Invite
    programme: Programme


def _audit(
    session: AsyncSession,
    *,
    actor: str,
    staff_id: int | None,
    action: str,
    now: datetime,
    patient_id: int | None = None,
    detail: str = "",
) -> None:
    session.add(
        AuditLog(
            staff_id=staff_id,
            actor=audit.resolve_actor(actor),
            action=action,
            patient_id=patient_id,
            detail=detail,
            created_at=now,
        )
    )


async def find_staff(session: AsyncSession, ref: str) -> Staff:
    """An active staff member by Telegram id (digits) or by name (case-insensitive)."""
    ref = ref.strip()
    telegram_id = number(ref.removeprefix("-"))
    if telegram_id is not None:
        telegram_id = -telegram_id if ref.startswith("-") else telegram_id
        staff = (await session.exec(select(Staff).where(col(Staff.telegram_id) == telegram_id))).first()
        matches = [staff] if staff is not None else []
    else:
        matches = list((await session.exec(select(Staff).where(func.lower(col(Staff.name)) == ref.casefold()))).all())
    matches = [s for s in matches if s.active]
    if len(matches) > 1:
        raise InviteError(
            "ambiguous_therapist",
            f"{len(matches)} staff members are called {ref!r}; give their Telegram id instead",
            therapist=ref,
        )
    if not matches:
        raise InviteError(
            "unknown_therapist", f"no active staff member with the Telegram id or name {ref!r}", therapist=ref
        )
    return matches[0]


async def responsible_staff(session: AsyncSession, ref: str | None) -> tuple[Staff, bool]:
    """A new patient's responsible therapist: (staff, chosen by default).

    ``ref`` (a Telegram id or name) names them. Without it, the only active
    therapist is the default (or the only active admin when there are no
    therapists); with more than one candidate the choice is required, and with
    no staff at all the invitation is refused: no patient without a
    responsible person, since their alerts go to that person.
    """
    if ref is not None and ref.strip():
        return await find_staff(session, ref), False
    active = list((await session.exec(select(Staff).where(col(Staff.active).is_(True)).order_by(col(Staff.id)))).all())
    therapists = [s for s in active if s.role == Role.THERAPIST.value]
    candidates = therapists or active
    if len(candidates) == 1:
        return candidates[0], True
    if not candidates:
        raise InviteError(
            "no_staff",
            "there is no staff member yet to be responsible for the patient: add one first with "
            "`rehab-bot staff add --telegram-id N --role therapist --name NAME`",
        )
    # Without therapists the candidates are the admins: say so, not "2 therapists work here".
    who = "therapists" if therapists else "admins and no therapist"
    names = ", ".join(c.name for c in candidates[:10]) + (", ..." if len(candidates) > 10 else "")
    raise InviteError(
        "therapist_required",
        f"{len(candidates)} {who} work here: name the responsible one with --therapist (Telegram id or name: {names})",
    )


# --- what staff type for a new patient: the alias and the surgery date -------------------------


def alias_key(text: str) -> str:
    """The one comparison rule for aliases: case-insensitive, outer spaces and invisible marks ignored.

    SQL compares ``lower(alias)`` with this (:func:`alias_matches`); every
    creation, uniqueness check and lookup (chat, web, CLI) goes through it.
    """
    return plain(text).strip().lower()


def alias_matches(text: str) -> ColumnElement[bool]:
    """The WHERE clause for "the patient whose alias is ``text``" (see :func:`alias_key`)."""
    return func.lower(col(Patient.alias)) == alias_key(text)


def validate_alias(text: str) -> str:
    """A new pseudonymous alias as staff type it: 3-24 letters A-Z, digits, - or _, with at least one digit.

    Read as plain text (rehab_bot.typed): a zero-width space pasted with it or full-width letters are no error.
    """
    alias = plain(text).strip()
    if not _ALIAS_RE.match(alias):
        raise InviteError(
            "bad_alias",
            N_(
                "An alias has 3-24 characters: letters A-Z (no umlauts or accents), digits, - or _ (no spaces), "
                "and starts with a letter or digit."
            ),
        )
    if not any(c.isdigit() for c in alias):
        # Pseudonymous by default: a bare word is too often the patient's name.
        raise InviteError(
            "bad_alias", N_("Use a pseudonym with at least one digit (e.g. LWS-0412), not the patient's name.")
        )
    return alias


def alias_looks_like_name(alias: str) -> bool:
    """Two capitalised words in a row (Anna-Muster1, AnnaMuster7): probably a real name, worth a warning."""
    words = re.findall(r"[A-Za-zÄÖÜäöüß][a-zäöüß]*", alias)
    shape = "".join("N" if _NAME_WORD_RE.fullmatch(word) else "." for word in words)
    return "NN" in shape


async def patient_by_alias(session: AsyncSession, alias: str) -> Patient | None:
    """The patient with this alias, ignoring case (:func:`alias_key`)."""
    return (await session.exec(select(Patient).where(alias_matches(alias)))).first()


async def alias_taken(session: AsyncSession, alias: str) -> bool:
    """True when some patient (or an unredeemed invite's patient) uses this alias."""
    return await patient_by_alias(session, alias) is not None


def check_surgery_date(surgery_date: date, today: date) -> date:
    """The surgery date if it is plausible: at most 6 months ahead and a year ago (else a typo)."""
    if surgery_date > today + timedelta(days=MAX_DAYS_AHEAD):
        raise InviteError(
            "surgery_date_ahead",
            N_("The surgery date {day} is more than 6 months ahead; please check it."),
            values={"day": surgery_date.isoformat()},
        )
    if surgery_date < today - timedelta(days=MAX_DAYS_AGO):
        raise InviteError(
            "surgery_date_past",
            N_("The surgery date {day} is more than a year ago; please check it."),
            values={"day": surgery_date.isoformat()},
        )
    return surgery_date


def parse_surgery_date(text: str, today: date, *, dotted: bool = True) -> date:
    """A typed surgery date, checked by :func:`check_surgery_date`.

    The chat reads it as a patient's pause date is read (schedule.read_date: "2026-06-03", "3.6.26",
    "03.06.2026", "03/06/2026", day first; without a year the one nearest today); the CLI's
    ``--surgery-date`` takes ISO dates only (``dotted=False``).
    """
    text = plain(text).strip()
    if dotted:
        parsed = read_date(text, today)
    else:
        try:
            parsed = datetime.strptime(text, "%Y-%m-%d").date()
        except ValueError:
            parsed = None
    if parsed is not None:
        return check_surgery_date(parsed, today)
    if dotted:
        raise InviteError(
            "bad_surgery_date",
            N_(
                "{text} is not a date; please send the surgery date as YYYY-MM-DD (e.g. 2026-06-03) or DD.MM.YYYY "
                "(e.g. 03.06.2026 or 3.6.26)."
            ),
            values={"text": repr(text[:20])},
        )
    raise InviteError(
        "bad_surgery_date",
        N_("{text} is not a date; please send the surgery date as YYYY-MM-DD (e.g. 2026-06-03)."),
        values={"text": repr(text[:20])},
    )


async def create_patient_invite(
    session: AsyncSession,
    content: Content,
    *,
    alias: str,
    surgery_date: date,
    programme_id: str,
    now: datetime,
    valid_days: int,
    timezone: str,
    language: str,
    surgery_type: str = "lumbar",
    therapist_id: int | None = None,
    created_by: int | None = None,
    actor: str = "cli",
) -> PatientInvite:
    """Create an enrolling patient and their single-use invite; raise InviteError for bad input.

    timezone and language are the clinic's defaults: the patient chooses
    their zone during enrolment, and their language comes from Telegram.
    The creation is audited (actor "cli" or "telegram:<id>").
    """
    alias = alias.strip()
    if not alias or len(alias) > MAX_ALIAS or not alias.isprintable():
        raise InviteError("bad_alias", f"the alias must be 1-{MAX_ALIAS} printable characters")
    if surgery_type not in SURGERY_TYPES:
        raise InviteError(
            "bad_surgery_type",
            f"surgery type {surgery_type!r} is not one of {', '.join(SURGERY_TYPES)}",
            surgery_types=SURGERY_TYPES,
        )
    programme = content.programmes.get(programme_id)
    if programme is None:
        known = sorted(content.programmes)
        raise InviteError(
            "unknown_programme",
            f"unknown programme {programme_id!r}; known programmes: {', '.join(known) or '(none)'}",
            known=known,
        )
    if surgery_type != "other" and surgery_type not in programme.surgery_types:
        raise InviteError(
            "programme_mismatch",
            f"programme {programme_id!r} is for {', '.join(programme.surgery_types)} surgery, not {surgery_type}",
        )
    check_surgery_date(surgery_date, now.astimezone(zone(timezone)).date())
    if await alias_taken(session, alias):
        raise InviteError("duplicate_alias", f"a patient with the alias {alias!r} already exists", alias=alias)
    if therapist_id is not None:
        therapist = await session.get(Staff, therapist_id)
        if therapist is None or not therapist.active:
            raise InviteError("unknown_therapist", f"no active staff member with id {therapist_id}")
    patient = Patient(
        alias=alias,
        language=language,
        timezone=timezone,
        status=PatientStatus.ENROLLING.value,
        therapist_id=therapist_id,
        surgery_date=surgery_date,
        surgery_type=surgery_type,
        programme_id=programme_id,
        created_at=now,
    )
    session.add(patient)
    await session.flush()
    invite = await _new_invite(
        session,
        now=now,
        valid_days=valid_days,
        created_by=created_by,
        actor=actor,
        action="invite.create",
        patient_id=patient.id,
    )
    return PatientInvite(patient, invite, programme)


async def renew_patient_invite(
    session: AsyncSession,
    patient: Patient,
    *,
    now: datetime,
    valid_days: int,
    created_by: int | None = None,
    actor: str = "cli",
) -> Invite:
    """A new invite for an existing patient (link lost or expired, or a new phone).

    The patient's unused invites stop working. Whoever redeems the new one
    becomes the patient's Telegram account (the old account, if any, is unlinked).
    """
    assert patient.id is not None
    await session.exec(
        update(Invite)
        .where(col(Invite.patient_id) == patient.id, col(Invite.used_at).is_(None))
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    return await _new_invite(
        session,
        now=now,
        valid_days=valid_days,
        created_by=created_by,
        actor=actor,
        action="invite.renew",
        patient_id=patient.id,
    )


async def _new_invite(
    session: AsyncSession,
    *,
    now: datetime,
    valid_days: int,
    created_by: int | None,
    actor: str,
    action: str,
    patient_id: int | None = None,
    role: str = "",
    staff_name: str = "",
) -> Invite:
    """Add a fresh single-use code (for a patient, or with a role for staff) and audit it under action."""
    invite = Invite(
        code=new_code(),
        kind="patient" if patient_id is not None else "staff",
        patient_id=patient_id,
        role=role,
        staff_name=staff_name,
        created_by=created_by,
        created_at=now,
        expires_at=now + timedelta(days=valid_days),
    )
    session.add(invite)
    await session.flush()
    detail = f"invite {invite.id}" + (f" {role}" if role else "")
    _audit(session, actor=actor, staff_id=created_by, action=action, now=now, patient_id=patient_id, detail=detail)
    return invite


async def create_staff_invite(
    session: AsyncSession,
    *,
    name: str,
    role: str,
    now: datetime,
    valid_days: int,
    created_by: int | None = None,
    actor: str = "cli",
) -> Invite:
    """A single-use invite that registers whoever redeems it as staff (role, name)."""
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise InviteError("bad_name", "the staff member's name must be 1-100 printable characters")
    if role not in STAFF_ROLES:
        raise InviteError("bad_role", f"role {role!r} is not one of {', '.join(STAFF_ROLES)}")
    if created_by is not None:
        # The same form posted again (a double click, a reload): the link made a moment ago, not a
        # second live link nobody sees. The creator's row is locked first (db.lock_row), so a second
        # post racing the first waits for it and then finds it.
        await lock_row(session, table_of(Staff), created_by)
        earlier = await session.exec(
            select(Invite)
            .where(
                col(Invite.kind) == "staff",
                col(Invite.created_by) == created_by,
                col(Invite.staff_name) == name,
                col(Invite.role) == role,
                col(Invite.used_at).is_(None),
                col(Invite.created_at) >= now - REPEAT_WINDOW,
                col(Invite.created_at) <= now,
                col(Invite.expires_at) > now,
            )
            .order_by(col(Invite.id).desc())
        )
        found = earlier.first()
        if found is not None:
            return found
    return await _new_invite(
        session,
        now=now,
        valid_days=valid_days,
        created_by=created_by,
        actor=actor,
        action="staff_invite.create",
        role=role,
        staff_name=name,
    )


async def open_staff_invites(session: AsyncSession, now: datetime) -> list[tuple[Invite, Staff | None]]:
    """Staff invitations neither used nor expired, newest first, each with the staff member who made it
    (None: made on the command line)."""
    rows = await session.exec(
        select(Invite, Staff)
        .join(Staff, col(Staff.id) == col(Invite.created_by), isouter=True)
        .where(
            col(Invite.kind) == "staff",
            col(Invite.used_at).is_(None),
            col(Invite.withdrawn_at).is_(None),
            col(Invite.expires_at) > now,
        )
        .order_by(col(Invite.created_at).desc(), col(Invite.id).desc())
    )
    return [(found, maker) for found, maker in rows.all()]


async def withdraw_staff_invite(
    session: AsyncSession, invite_id: int, *, now: datetime, by: Staff | None, actor: str = "cli"
) -> Invite | None:
    """Withdraw an open staff invitation: its link then answers that the clinic withdrew it (Outcome.WITHDRAWN).
    None when there is no such open invitation (used, expired or withdrawn meanwhile, a patient's, or no
    such id)."""
    invites = table_of(Invite)
    conn = await session.connection()
    result = await conn.execute(
        update(invites)
        .where(
            invites.c.id == invite_id,
            invites.c.kind == "staff",
            invites.c.used_at.is_(None),
            invites.c.withdrawn_at.is_(None),
            invites.c.expires_at > now,
        )
        .values(withdrawn_at=now)
    )
    if not result.rowcount:
        return None
    withdrawn = await session.get(Invite, invite_id)
    assert withdrawn is not None
    await session.refresh(withdrawn)
    _audit(
        session,
        actor=actor,
        staff_id=by.id if by is not None else None,
        action=audit.INVITE_STAFF_WITHDRAW,
        now=now,
        detail=f"invite {invite_id} {withdrawn.role}",
    )
    return withdrawn


class Outcome(enum.StrEnum):
    """What tapping an invite link led to."""

    PATIENT = "patient"  # linked (or already linked to this account): enrol or resume
    STAFF = "staff"  # registered as staff just now
    MALFORMED = "malformed"  # not something we ever issue
    UNKNOWN = "unknown"
    USED = "used"  # claimed by another Telegram account
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # a staff invitation an admin withdrew
    OTHER_PATIENT = "other_patient"  # this account is already a different patient
    IS_STAFF = "is_staff"  # a staff account tapped a patient link
    IS_PATIENT = "is_patient"  # a patient account tapped a staff link
    IS_CAREGIVER = (
        "is_caregiver"  # a confirmed caregiver's account (rehab_bot.caregiver) tapped a patient or staff link
    )
    ALREADY_STAFF = "already_staff"  # a staff account tapped a staff link


@dataclass(frozen=True)
class Redeemed:
    outcome: Outcome
    patient: Patient | None = None
    staff: Staff | None = None
    invite: Invite | None = field(default=None, repr=False)
    resumed: bool = False  # the account had claimed this patient before


async def _claim(session: AsyncSession, invite: Invite, telegram_id: int, now: datetime) -> bool:
    """Mark the invite used by this account, unless someone got there first."""
    result = await session.exec(
        update(Invite)
        .where(col(Invite.id) == invite.id, col(Invite.used_at).is_(None))
        .values(used_at=now, used_by=telegram_id)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        return False
    invite.used_at, invite.used_by = now, telegram_id
    return True


async def redeem(
    session: AsyncSession,
    code: str,
    *,
    telegram_id: int,
    language: str,
    timezone: str,
    now: datetime,
) -> Redeemed:
    """Act on /start <code> from a Telegram account; every refusal changes nothing.

    language (from Telegram) is stored on a newly linked patient or staff
    member; timezone is the clinic's, for a new staff member.
    """
    if not CODE_RE.match(code):
        return Redeemed(Outcome.MALFORMED)
    invite = (await session.exec(select(Invite).where(col(Invite.code) == code))).first()
    if invite is None:
        return Redeemed(Outcome.UNKNOWN)
    me_patient = (await session.exec(select(Patient).where(col(Patient.telegram_id) == telegram_id))).first()
    me_staff = (await session.exec(select(Staff).where(col(Staff.telegram_id) == telegram_id))).first()
    if invite.kind == "staff":
        return await _redeem_staff(session, invite, telegram_id, language, timezone, now, me_patient, me_staff)
    patient = await session.get(Patient, invite.patient_id) if invite.patient_id is not None else None
    if patient is None:
        return Redeemed(Outcome.UNKNOWN)
    if invite.used_at is not None:
        if invite.used_by == telegram_id and me_patient is not None and me_patient.id == patient.id:
            return Redeemed(Outcome.PATIENT, patient=me_patient, invite=invite, resumed=True)
        return Redeemed(Outcome.USED, invite=invite)
    if invite.expires_at <= now:
        return Redeemed(Outcome.EXPIRED, invite=invite)
    if me_staff is not None:
        return Redeemed(Outcome.IS_STAFF, staff=me_staff, invite=invite)
    if me_patient is not None and me_patient.id != patient.id:
        return Redeemed(Outcome.OTHER_PATIENT, patient=me_patient, invite=invite)
    pending = await _caregiver_link(session, telegram_id) if me_patient is None else None
    if pending is not None and pending.consent_at is not None:
        # One role per account, as a caregiver's link refuses patients and staff (caregiver.open_link):
        # their /checkin, /mydata and /delete would go on answering for the patient they support.
        return Redeemed(Outcome.IS_CAREGIVER, invite=invite)
    if not await _claim(session, invite, telegram_id, now):
        return Redeemed(Outcome.USED, invite=invite)
    if pending is not None:
        await _give_way(session, pending, now, to="patient_invite")
    resumed = patient.telegram_id == telegram_id
    if not resumed:
        # A fresh link, or a renewed invite for a new account: the patient
        # starts enrolment afresh in their own language.
        patient.telegram_id = telegram_id
        patient.language = language
    enrolment.begin(patient)
    patient.last_activity_at = now
    session.add(patient)
    await session.flush()
    return Redeemed(Outcome.PATIENT, patient=patient, invite=invite, resumed=resumed)


async def _caregiver_link(session: AsyncSession, telegram_id: int) -> Caregiver | None:
    """This account's caregiver link, claimed or agreed and not removed: caregiver.link_of, imported here
    because rehab_bot.caregiver imports this module (its links' codes are invite codes)."""
    from rehab_bot.caregiver import link_of

    return await link_of(session, telegram_id)


async def _give_way(session: AsyncSession, link: Caregiver, now: datetime, *, to: str) -> None:
    """An unanswered caregiver link gives way to the invitation just claimed: caregiver.give_way."""
    from rehab_bot.caregiver import give_way

    await give_way(session, link, now, to=to)


async def _redeem_staff(
    session: AsyncSession,
    invite: Invite,
    telegram_id: int,
    language: str,
    timezone: str,
    now: datetime,
    me_patient: Patient | None,
    me_staff: Staff | None,
) -> Redeemed:
    if invite.used_at is not None:
        if invite.used_by == telegram_id and me_staff is not None:
            return Redeemed(Outcome.ALREADY_STAFF, staff=me_staff, invite=invite)
        return Redeemed(Outcome.USED, invite=invite)
    if invite.withdrawn_at is not None:
        return Redeemed(Outcome.WITHDRAWN, invite=invite)
    if invite.expires_at <= now:
        return Redeemed(Outcome.EXPIRED, invite=invite)
    if me_staff is not None and me_staff.active:
        return Redeemed(Outcome.ALREADY_STAFF, staff=me_staff, invite=invite)
    if me_patient is not None:
        return Redeemed(Outcome.IS_PATIENT, patient=me_patient, invite=invite)
    pending = await _caregiver_link(session, telegram_id)
    if pending is not None and pending.consent_at is not None:
        return Redeemed(Outcome.IS_CAREGIVER, invite=invite)
    if not await _claim(session, invite, telegram_id, now):
        return Redeemed(Outcome.USED, invite=invite)
    if pending is not None:
        await _give_way(session, pending, now, to="staff_invite")
    # A removed member invited again gets their row back (its audit trail stays theirs), as
    # `rehab-bot staff add` does; the invitation decides the name and the role.
    name, role = invite.staff_name or "Staff", invite.role or Role.THERAPIST.value
    staff = me_staff or Staff(telegram_id=telegram_id, name=name, language=language, timezone=timezone, created_at=now)
    staff.name, staff.role, staff.active = name, role, True
    session.add(staff)
    await session.flush()
    _audit(
        session,
        actor=f"telegram:{telegram_id}",
        staff_id=staff.id,
        action="staff.join",
        now=now,
        detail=f"invite {invite.id}" + (", rejoined" if me_staff is not None else ""),
    )
    return Redeemed(Outcome.STAFF, staff=staff, invite=invite)
