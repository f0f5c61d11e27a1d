"""The audit trail: every staff view, export and change, with who, what, which patient and when.

Rows are written in the same transaction as the change they describe, so a
change without its record (or a record of a change that was rolled back)
cannot happen. The detail is a short machine-readable string ("programme=x",
"page=2"): never free text a patient wrote, so the log itself holds as little
health data as possible.

Plain Python over SQLModel: no telegram imports.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.models import AuditLog, Patient, Staff

# What staff can do, as recorded in AuditLog.action. Kept in one place so the
# README, the CLI and the tests agree on the names.
VIEW_PATIENTS = "view.patients"
VIEW_PATIENT = "view.patient"
VIEW_ALERTS = "view.alerts"
VIEW_AUDIT = "view.audit"  # the web app's audit log page (admins)
VIEW_STAFF = "view.staff"  # the web app's staff page (admins)
VIEW_OUTCOMES = "view.outcomes"  # the web app's clinic outcomes report (admins; detail: the date range)
VIEW_EXPERIMENTS = "view.experiments"  # the web app's experiments page (admins)
INVITE_PATIENT = "invite.create"  # written by rehab_bot.invite
INVITE_STAFF = "staff_invite.create"  # written by rehab_bot.invite
INVITE_STAFF_WITHDRAW = "staff_invite.withdraw"  # an open staff invitation withdrawn (rehab_bot.invite)
CHANGE_PROGRAMME = "change.programme"
CHANGE_TIMES = "change.times"
PAUSE = "change.pause"
RESUME = "change.resume"
DISCHARGE = "change.discharge"
ACKNOWLEDGE = "alert.acknowledge"
EXPORT = "export"
STAFF_ADD = "staff.add"
STAFF_REMOVE = "staff.remove"
CHANGE_PLAN = "change.plan"  # a patient's own plan saved in the programme builder
TEMPLATE_SAVE = "template.save"
TEMPLATE_DELETE = "template.delete"  # a clinic template deleted (by its author or an admin)
LIBRARY_CREATE = "library.create"
LIBRARY_EDIT = "library.edit"
LIBRARY_MEDIA = "library.media"
WEB_LINK = "web.link"  # /dashboard handed out a one-time sign-in link (rehab_bot.signin)
WEB_SIGNIN = "web.signin"  # a staff member signed in to the web app (link or Mini App)

CLI_ACTOR = "cli"

# Who runs the command line: "cli:<os user>@<host>", set by `rehab-bot` at start.
# Rows written with actor CLI_ACTOR (or with no staff and no actor) get it.
_cli_operator: ContextVar[str] = ContextVar("cli_operator", default=CLI_ACTOR)


def os_operator() -> str:
    """The actor string for this process's operating-system user and host: cli:alice@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container's numeric user without a passwd entry
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    host = socket.gethostname() or "localhost"
    return f"{CLI_ACTOR}:{user}@{host}"[:120]


def set_cli_operator(actor: str) -> None:
    """Record command-line actions as this actor from now on (in this context)."""
    _cli_operator.set(actor)


def resolve_actor(actor: str) -> str:
    """The actor to store: CLI_ACTOR becomes the command line's operator when one is set."""
    return _cli_operator.get() if actor == CLI_ACTOR else actor


def telegram_actor(telegram_id: int) -> str:
    """The actor string for a staff member acting in Telegram."""
    return f"telegram:{telegram_id}"


def web_actor(telegram_id: int) -> str:
    """The actor string for a staff member acting in the web app or Mini App."""
    return f"web:{telegram_id}"


# Where staff act in this context: "telegram" (the chat) or "web" (set per request by the web app),
# so a core function's audit row names the front end it was called from.
_staff_channel: ContextVar[str] = ContextVar("staff_channel", default="telegram")


def set_web_channel() -> None:
    """Staff actions recorded from now on (in this context: one web request) are web:<id>."""
    _staff_channel.set("web")


def staff_actor(staff: Staff) -> str:
    """The actor string for this staff member in the current front end."""
    if _staff_channel.get() == "web":
        return web_actor(staff.telegram_id)
    return telegram_actor(staff.telegram_id)


def record(
    session: AsyncSession,
    *,
    action: str,
    now: datetime,
    staff: Staff | None = None,
    actor: str | None = None,
    patient_id: int | None = None,
    detail: str = "",
) -> AuditLog:
    """Add an audit row to the session (the caller commits it with the change)."""
    if actor is None:
        actor = staff_actor(staff) if staff is not None else CLI_ACTOR
    actor = resolve_actor(actor)
    row = AuditLog(
        staff_id=staff.id if staff is not None else None,
        actor=actor,
        action=action,
        patient_id=patient_id,
        detail=detail[:500],
        created_at=now,
    )
    session.add(row)
    return row


@dataclass(frozen=True)
class AuditEntry:
    """One audit row with the names a reader needs."""

    id: int
    created_at: datetime
    actor: str
    staff_name: str
    action: str
    patient_alias: str
    detail: str


async def entries(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    patient_id: int | None = None,
    limit: int | None = None,
    staff_id: int | None = None,
    until: datetime | None = None,
    newest_first: bool = False,
) -> list[AuditEntry]:
    """Audit rows, oldest first (or newest first), with staff names and patient aliases joined in.

    since is inclusive, until exclusive; staff_id and patient_id narrow to one member or patient.
    """
    query = (
        select(AuditLog, Staff.name, Patient.alias)
        .join(Staff, col(Staff.id) == col(AuditLog.staff_id), isouter=True)
        .join(Patient, col(Patient.id) == col(AuditLog.patient_id), isouter=True)
        .order_by(col(AuditLog.created_at), col(AuditLog.id))
    )
    if since is not None:
        query = query.where(col(AuditLog.created_at) >= since)
    if patient_id is not None:
        query = query.where(col(AuditLog.patient_id) == patient_id)
    if staff_id is not None:
        query = query.where(col(AuditLog.staff_id) == staff_id)
    if until is not None:
        query = query.where(col(AuditLog.created_at) < until)
    if newest_first:
        query = query.order_by(None).order_by(col(AuditLog.created_at).desc(), col(AuditLog.id).desc())
    if limit is not None:
        query = query.limit(limit)
    rows: Sequence[tuple[AuditLog, str | None, str | None]] = (await session.exec(query)).all()
    result = []
    for row, staff_name, alias in rows:
        assert row.id is not None
        result.append(
            AuditEntry(
                id=row.id,
                created_at=row.created_at,
                actor=row.actor,
                staff_name=staff_name or "",
                action=row.action,
                patient_alias=alias or "",
                detail=row.detail,
            )
        )
    return result


# The columns of `rehab-bot audit`, in order (its header row, and the keys of --format json).
COLUMNS = ("time", "who", "action", "patient", "detail")


def entry_fields(entry: AuditEntry) -> list[str]:
    """One record's values in COLUMNS order."""
    who = f"{entry.actor} ({entry.staff_name})" if entry.staff_name else entry.actor
    return [
        entry.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        who,
        entry.action,
        entry.patient_alias or "-",
        entry.detail or "-",
    ]


def format_entry(entry: AuditEntry) -> str:
    """One line for `rehab-bot audit`: tab-separated, so it sorts and greps well."""
    return "\t".join(entry_fields(entry))
