"""Alerts for the clinic: raise, route, acknowledge and escalate.

Alerts come from red flags, score rules, crisis messages, unreachable or
silent patients.

An alert is a row, and telling the clinic about it is a delivery of kind
``alert`` (priority 1, never deferred by quiet hours), through the same engine
as every reminder. A dedupe key keeps one open alert per cause, so a patient
who has blocked the bot produces one alert, not one per reminder.

Routing (:func:`route`), so that no alert goes nowhere:

* the patient's responsible therapist (an active staff member), and the
  clinic's alert chat ([clinic] alert_chat_id) when there is one, under its
  new id once Telegram upgraded it to a supergroup (:func:`alert_chat`);
* without an active responsible therapist (none assigned, or removed): every
  active admin at once, and the alert chat; the message says why ("no
  responsible therapist");
* with no admin either: every active staff member;
* with nobody at all: the alert is still recorded and the patient still gets
  their red-flag reply, and the log says at ERROR that it reached nobody.

Each message is written in its reader's language (the staff member's; the alert chat: the clinic's),
the alert's detail included (:mod:`rehab_bot.alert_detail`: it is kept as parts that render in any
language, and in English in ``Alert.detail``).

Every alert message carries an Acknowledge button (callback ``st:aa:<alert
id>``, see rehab_bot/bot/staff/alerts.py); times are shown in each reader's own
timezone with its abbreviation (the alert chat: the clinic's).

:func:`acknowledge` records who acknowledged an alert, once, even when two
staff press at the same moment: someone who may change the patient, or
anybody it reached in an admin's place (:func:`stands_in`). An unacknowledged emergency or urgent alert
that the patient reported (ESCALATING_KINDS) escalates once to every admin
(:func:`escalation_due`, :func:`escalate_overdue`), as a message to staff
(staff.staff_message, key ``e<alert>:<chat>``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import alert_detail, audit
from rehab_bot.access import Access, StaffError, require
from rehab_bot.config import ClinicConfig, Config
from rehab_bot.content.checkins import SEVERITIES, level_of
from rehab_bot.i18n import N_, t, tn
from rehab_bot.models import PRIORITY, Alert, ChatMove, Delivery, DeliveryStatus, Kind, Patient, Role, Staff
from rehab_bot.schedule import zone
from rehab_bot.staff import admins, queue_staff_messages, staff_members, staff_message

log = logging.getLogger(__name__)

# Alert severities that escalate to the admins when nobody acknowledges them,
# by their triage level (content.checkins.level_of, the one mapping):
# emergency after [staff] escalation_minutes, urgent after urgent_escalation_minutes
# of office time ([clinic] office_hours). Each alert escalates once.
ESCALATING_SEVERITIES = frozenset(s for s in SEVERITIES if level_of(s) in ("emergency", "urgent"))
# Only what the patient reported escalates: red-flag answers, score rules and
# crisis messages. Operational alerts (a silent patient, a blocked bot, deleted
# data) are for the caseload, whatever their severity.
ESCALATING_KINDS = ("red_flag", "checkin", "crisis", "crisis_question", "session_pain")

# How staff read an alert's severity and kind on the web pages (Alert.severity and Alert.kind hold
# the values): every severity of content.checkins.SEVERITIES, every kind raise_alert is given.
SEVERITY_LABELS = {
    "low": N_("Low"),
    "high": N_("High"),
    "critical": N_("Critical"),
    "emergency": N_("Emergency"),
}
KIND_LABELS = {
    "red_flag": N_("Red flag in a check-in"),
    "checkin": N_("Check-in score"),
    "session_pain": N_("Pain during exercises"),
    "crisis": N_("Crisis words"),
    "crisis_question": N_("Crisis question unanswered"),
    "inactive": N_("No answers for a while"),
    "unreachable": N_("Unreachable on Telegram"),
    "data_deleted": N_("Data deleted by the patient"),
    "stopped": N_("Messages stopped by the patient"),
}

# What an alert message says happened, by kind (msgids; {detail} is the alert's detail in the reader's language).
TITLES = {
    "unreachable": N_("Patient unreachable: Telegram refuses messages ({detail}). Reminders are paused."),
    # Check-ins and red flags (rehab_bot/redflag.py); detail names the answers.
    "red_flag": N_("Red flag in a check-in.\n{detail}"),
    "checkin": N_("Check-in answers need attention.\n{detail}"),
    "session_pain": N_("Pain during the exercises needs attention.\n{detail}"),
    "crisis": N_("Possible crisis.\n{detail}"),
    "crisis_question": N_("The crisis question was not answered.\n{detail}"),
    "inactive": N_("No response.\n{detail}"),
    "data_deleted": N_("The patient deleted their data with /delete. All messages to them have stopped."),
    "stopped": N_("The patient stopped all messages with /stop. Nothing is sent to them until they send /resume."),
}
OTHER_TITLE = N_("{kind}: {detail}")
# Why a reader who is not the responsible therapist gets an alert (msgids; Route.reasons).
NO_THERAPIST = N_("no responsible therapist")
THERAPIST_REMOVED = N_("no responsible therapist (theirs was removed)")
NO_ADMIN = N_("no admin either, so every staff member gets it")
NOBODY = N_("no staff member and no alert chat")
# Who is responsible, in an escalation, for a patient without a therapist (alerts and care messages).
UNASSIGNED = N_("no therapist assigned")


def local_time_text(when: datetime, tz: str) -> str:
    """An instant as the reader's wall-clock time with the zone's abbreviation: "2026-06-10 07:21 CEST"."""
    local = when.astimezone(zone(tz))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or tz}"


def shorten(text: str, limit: int) -> str:
    """At most limit characters, cut at a word boundary with "…" (never mid-word)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-\n") + "…"


SOMEONE = N_("someone")


def who(by: str, lang: str) -> str:
    """The name of the staff member who acknowledged or read something first, or "someone" in lang if that
    staff member is no longer known (the core says "")."""
    return by or t(lang, SOMEONE)


def ack_payload(alert_id: int, lang: str = "en") -> str:
    """The delivery payload that puts an Acknowledge button under a staff message, in its reader's language."""
    return json.dumps({"ack": alert_id, "lang": lang})


def ack_alert_id(payload: str) -> int | None:
    """The alert a staff message's Acknowledge button is for, if any."""
    try:
        value = json.loads(payload).get("ack") if payload else None
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Recipient:
    """Who an alert goes to: a staff member's private chat, or the clinic's alert chat (staff_id None)."""

    staff_id: int | None
    chat_id: int
    timezone: str
    language: str = "en"  # the staff member's; the alert chat's is the clinic's


@dataclass(frozen=True)
class Route:
    """An alert's recipients, and why they are not (only) the responsible therapist."""

    recipients: tuple[Recipient, ...]
    reasons: tuple[str, ...] = ()  # msgids; none when the responsible therapist gets it

    @property
    def reason(self) -> str:
        """Why, in English ("" when the responsible therapist gets it)."""
        return "; ".join(self.reasons)

    def reason_in(self, lang: str) -> str:
        """Why, in lang."""
        return "; ".join(t(lang, reason) for reason in self.reasons)

    @property
    def reaches_someone(self) -> bool:
        return bool(self.recipients)


async def responsible_therapist(session: AsyncSession, patient: Patient) -> Staff | None:
    """The patient's responsible staff member, if assigned and still active."""
    if patient.therapist_id is None:
        return None
    staff = await session.get(Staff, patient.therapist_id)
    return staff if staff is not None and staff.active else None


async def route(session: AsyncSession, patient: Patient, clinic: ClinicConfig) -> Route:
    """Who an alert about this patient goes to (see the module docstring)."""
    people: list[Staff] = []
    reasons: tuple[str, ...] = ()
    therapist = await responsible_therapist(session, patient)
    if therapist is not None:
        people.append(therapist)
    else:
        reasons = (NO_THERAPIST if patient.therapist_id is None else THERAPIST_REMOVED,)
        people = await admins(session)
        if not people:
            people = await staff_members(session)
            if people:
                reasons = (*reasons, NO_ADMIN)
    recipients = [Recipient(s.id, s.telegram_id, s.timezone, s.language) for s in people]
    group = await alert_chat(session, clinic)
    if group is not None:
        recipients.append(Recipient(None, group, clinic.timezone, clinic.language))
    unique = {r.chat_id: r for r in reversed(recipients)}  # one message per chat; a person before the group
    ordered = tuple(r for r in recipients if unique.get(r.chat_id) is r)
    return Route(ordered, reasons if ordered else (NOBODY,))


# A chat id moves when Telegram upgrades a group to a supergroup (and only then, once per group); a
# chain longer than this is not a real chat's history.
_MOVES = 8


async def _alert_chat_ids(session: AsyncSession, clinic: ClinicConfig) -> list[int]:
    """The alert chat's ids, the configured one first and its current one last; none without one."""
    ids: list[int] = []
    chat = clinic.alert_chat_id
    while chat is not None and chat not in ids and len(ids) < _MOVES:
        ids.append(chat)
        move = await session.get(ChatMove, chat)
        chat = move.new_chat_id if move is not None else None
    return ids


async def alert_chat(session: AsyncSession, clinic: ClinicConfig) -> int | None:
    """The id the clinic's alert chat has now: [clinic] alert_chat_id, followed through the upgrades
    to a supergroup that Telegram reported (:func:`record_chat_move`); None without an alert chat."""
    ids = await _alert_chat_ids(session, clinic)
    return ids[-1] if ids else None


async def is_alert_chat(session: AsyncSession, clinic: ClinicConfig, chat_id: int) -> bool:
    """True for the clinic's alert chat, under its configured id or one it moved to."""
    return chat_id in await _alert_chat_ids(session, clinic)


async def record_chat_move(session: AsyncSession, old_chat_id: int, new_chat_id: int, now: datetime) -> bool:
    """Record that Telegram gave chat ``old_chat_id`` the new id ``new_chat_id`` (an upgrade to a supergroup).

    Telegram says so twice (a service message in each chat, and a refused send to the old id), and may
    say it to several processes: the first record stands, a repeat changes nothing. The operator is told
    once, at WARNING, which id to configure. True when recorded now.
    """
    if old_chat_id == new_chat_id or await session.get(ChatMove, old_chat_id) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(ChatMove(old_chat_id=old_chat_id, new_chat_id=new_chat_id, moved_at=now))
    except IntegrityError:  # another process recorded it first
        return False
    log.warning(
        "Telegram upgraded the alert chat %d to a supergroup with the new id %d: alerts go there; "
        "set [clinic] alert_chat_id = %d in the configuration",
        old_chat_id,
        new_chat_id,
        new_chat_id,
    )
    return True


@dataclass(frozen=True)
class Reach:
    """Whether alerts can reach anybody at all (start-up, /healthz, check-config)."""

    staff: int  # active staff members
    admins: int  # of whom admins
    alert_chat: bool

    @property
    def anyone(self) -> bool:
        return self.staff > 0 or self.alert_chat


async def reach(session: AsyncSession, clinic: ClinicConfig) -> Reach:
    """Count who alerts can go to."""
    rows = (
        await session.exec(select(Staff.role, func.count()).where(col(Staff.active).is_(True)).group_by(Staff.role))
    ).all()
    counts = {role: int(n) for role, n in rows}
    return Reach(sum(counts.values()), counts.get(Role.ADMIN.value, 0), clinic.alert_chat_id is not None)


def severity_in(severity: str, lang: str) -> str:
    """An alert's severity as a word of lang: as stored in English ("emergency"), else its label ("Notfall",
    a German noun keeps its capital); an unknown one as stored."""
    label = SEVERITY_LABELS.get(severity)
    if label is None:
        return severity
    word = t(lang, label)
    return severity if word == label else word


def kind_in(kind: str, lang: str) -> str:
    """An alert's kind as staff read it in lang ("Red flag in a check-in"); an unknown one as stored."""
    return t(lang, KIND_LABELS[kind]) if kind in KIND_LABELS else kind


def alert_text(alert: Alert, patient: Patient, tz: str = "UTC", reason: str = "", lang: str = "en") -> str:
    """The clinician-facing text in the reader's language: alias, why this reader gets it (reason, already in
    lang), what happened (the detail in lang, alert_detail.text), when (reader's time)."""
    detail = alert_detail.text(alert, lang)
    what = t(lang, TITLES.get(alert.kind, OTHER_TITLE), kind=alert.kind, detail=detail)
    why = t(lang, "Why you get this: {reason}.", reason=reason) + "\n" if reason else ""
    head = t(
        lang, "⚠️ {severity} alert for {alias}", severity=severity_in(alert.severity, lang).upper(), alias=patient.alias
    )
    raised = t(lang, "Raised {when}.", when=local_time_text(alert.created_at, tz))
    return f"{head}\n{why}{what}\n{raised}"


def kind_word(kind: str, lang: str) -> str:
    """An alert's kind in a short list line (/alerts, the Telegram patient detail): as stored for English
    readers ("red_flag"), its label in any other language ("Warnzeichen in einer Abfrage")."""
    return kind if lang == "en" else kind_in(kind, lang)


def neutral_text(severity: str, alias: str, lang: str = "en") -> str:
    """A staff alert that names no symptom, for clinics that keep health data out of Telegram ([privacy]),
    in the reader's language."""
    return t(
        lang,
        "⚠️ {severity} alert for {alias}. Open the dashboard to see it.",
        severity=severity_in(severity, lang).upper(),
        alias=alias,
    )


# The neutral staff message when its alert is gone (msgid: t(lang, NEUTRAL_STAFF_MESSAGE)).
NEUTRAL_STAFF_MESSAGE = N_("There is a new message for you on the dashboard.")


async def raise_alert(
    session: AsyncSession,
    patient: Patient,
    *,
    kind: str,
    severity: str,
    detail: str | Sequence[alert_detail.Value],
    now: datetime,
    clinic: ClinicConfig,
    key: str | None = None,
    after_id: int | None = None,
) -> Alert | None:
    """Record an alert and queue its messages; None if an open one has this key.

    ``detail``: parts (rehab_bot.alert_detail), which each reader reads in their language, or a plain
    text that reads the same in every language (Telegram's error for an unreachable patient).
    ``after_id``: the alert takes the id after it (patient.erase on SQLite, so that ids only rise).
    """
    assert patient.id is not None
    if key is not None:
        existing = (await session.exec(select(Alert).where(Alert.key == key))).first()
        if existing is not None:
            return None
    if isinstance(detail, str):
        english, parts = detail, None
    else:
        english, parts = alert_detail.english(detail), alert_detail.dumps(detail)
    alert = Alert(
        key=key, patient_id=patient.id, severity=severity, kind=kind, detail=english, detail_parts=parts, created_at=now
    )
    if after_id is not None:
        alert.id = after_id + 1
    session.add(alert)
    await session.flush()
    assert alert.id is not None
    routing = await route(session, patient, clinic)
    if not routing.reaches_someone:
        log.error(
            "alert %d (%s, %s) for patient %s reaches nobody: %s; add staff with `rehab-bot staff add`",
            alert.id,
            kind,
            severity,
            patient.id,
            NOBODY,
        )
    for recipient in routing.recipients:
        session.add(
            Delivery(
                key=f"a{alert.id}:{recipient.chat_id}",
                kind=Kind.ALERT.value,
                priority=PRIORITY[Kind.ALERT],
                patient_id=patient.id,
                staff_id=recipient.staff_id,
                chat_id=recipient.chat_id,
                due_at=now,
                not_before=now,
                status=DeliveryStatus.QUEUED.value,
                body=alert_text(
                    alert, patient, recipient.timezone, routing.reason_in(recipient.language), recipient.language
                ),
                payload=ack_payload(alert.id, recipient.language),
                created_at=now,
            )
        )
    return alert


# --- acknowledge and escalate ------------------------------------------------------


async def open_alerts(session: AsyncSession, staff: Staff, *, limit: int = 20) -> list[tuple[Alert, Patient]]:
    """Unacknowledged alerts this staff member must act on: all for admins, own patients' otherwise; the
    most severe first (emergency, critical, high, low), the longest waiting first within each, so an
    emergency is never cut off by the limit behind older low ones.

    Without an active admin, a therapist's list has what reached them in an admin's place too (:func:`stands_in`).
    """
    rank = case({severity: n for n, severity in enumerate(SEVERITIES)}, value=col(Alert.severity), else_=-1)
    query = (
        select(Alert, Patient)
        .join(Patient, col(Patient.id) == col(Alert.patient_id))
        .where(col(Alert.acknowledged_at).is_(None))
        .order_by(rank.desc(), col(Alert.created_at), col(Alert.id))
        .limit(limit)
    )
    if staff.role != Role.ADMIN.value:
        mine = col(Patient.therapist_id) == staff.id
        if await admins(session):
            query = query.where(mine)
        else:  # what reaches every staff member in place of an admin (see stands_in)
            query = query.where(or_(mine, _to_everyone()))
    return [(a, p) for a, p in (await session.exec(query)).all()]


async def patient_of_alert_message(session: AsyncSession, chat_id: int, message_id: int) -> Patient | None:
    """The patient of the alert (or escalation) the bot sent as this message to this chat, if it was one."""
    found = await session.exec(
        select(Patient)
        .join(Delivery, col(Delivery.patient_id) == col(Patient.id))
        .where(
            col(Delivery.chat_id) == chat_id,
            col(Delivery.message_id) == message_id,
            col(Delivery.kind) == Kind.ALERT.value,
        )
    )
    return found.first()


def _to_everyone() -> ColumnElement[bool]:
    """SQL over Alert joined to its Patient: the alert went to every staff member when the clinic has no
    active admin (:func:`route`, :func:`escalate_overdue`): it was escalated, or its patient has no
    active therapist (:func:`responsible_therapist` is None). One rule for the list and for stands_in."""
    active = select(Staff.id).where(col(Staff.active).is_(True))
    return or_(
        col(Alert.escalated_at).is_not(None),
        col(Patient.therapist_id).is_(None),
        col(Patient.therapist_id).not_in(active),
    )


async def stands_in(session: AsyncSession, alert: Alert, patient: Patient) -> bool:
    """True when this alert (or its escalation) went to every staff member, none of them responsible for it.

    That happens only without an active admin (:func:`_to_everyone`): an alert about a patient with no
    active therapist, or an escalated one. Whoever it reached may then acknowledge it; otherwise nobody
    could, and it would stay open for ever. The alert is read as stored (pending changes are flushed first).
    """
    if await admins(session):
        return False
    found = await session.exec(
        select(Alert.id)
        .join(Patient, col(Patient.id) == col(Alert.patient_id))
        .where(col(Alert.id) == alert.id, col(Patient.id) == patient.id, _to_everyone())
    )
    return found.first() is not None


@dataclass(frozen=True)
class Acknowledged:
    alert: Alert
    patient: Patient
    by: str  # who acknowledged it (maybe somebody else, earlier); "" if unknown now: see who()
    now: bool  # False when it had been acknowledged already


async def acknowledge(session: AsyncSession, staff: Staff, alert_id: int, now: datetime) -> Acknowledged:
    """Acknowledge an alert once; pressing again says who already did."""
    alert = await session.get(Alert, alert_id)
    patient = await session.get(Patient, alert.patient_id) if alert is not None else None
    if alert is None or patient is None:
        raise StaffError("This alert no longer exists.")
    if not (staff.active and await stands_in(session, alert, patient)):
        require(staff, patient, Access.WRITE)
    if alert.acknowledged_at is not None:
        earlier = await session.get(Staff, alert.acknowledged_by) if alert.acknowledged_by else None
        return Acknowledged(alert, patient, earlier.name if earlier else "", now=False)
    # Conditional, so two staff pressing at once record one acknowledgement.
    result = await session.exec(
        update(Alert)
        .where(col(Alert.id) == alert_id, col(Alert.acknowledged_at).is_(None))
        .values(acknowledged_at=now, acknowledged_by=staff.id)
    )
    await session.refresh(alert)
    if not result.rowcount:
        earlier = await session.get(Staff, alert.acknowledged_by) if alert.acknowledged_by else None
        return Acknowledged(alert, patient, earlier.name if earlier else "", now=False)
    audit.record(
        session,
        action=audit.ACKNOWLEDGE,
        now=now,
        staff=staff,
        patient_id=patient.id,
        detail=f"alert={alert_id} kind={alert.kind} severity={alert.severity}",
    )
    return Acknowledged(alert, patient, staff.name, now=True)


async def sent_copies(session: AsyncSession, alert_id: int) -> list[Delivery]:
    """The staff copies of an alert and of its escalation ("a<id>:", "e<id>:") that reached a chat (their
    message ids known): each one says who acknowledged it once somebody has, wherever that was (a copy's
    button, /alerts, the web)."""
    rows = await session.exec(
        select(Delivery).where(
            or_(col(Delivery.key).like(f"a{alert_id}:%"), col(Delivery.key).like(f"e{alert_id}:%")),
            col(Delivery.kind) == Kind.ALERT.value,
            col(Delivery.status) == DeliveryStatus.SENT.value,
            col(Delivery.message_id).is_not(None),
        )
    )
    return list(rows.all())


def escalation_text(
    alert: Alert, patient: Patient, therapist: Staff | None, config: Config, tz: str, lang: str = "en"
) -> str:
    """What the admins read, in their language, when an emergency or urgent alert went unacknowledged."""
    who = therapist.name if therapist is not None else t(lang, UNASSIGNED)
    if therapist is not None and not therapist.active:
        who = t(lang, "{name} (removed)", name=therapist.name)
    head = t(
        lang,
        "🚨 ESCALATION: the {severity} alert for {alias} ({kind}) has not been acknowledged for {waited}.",
        severity=severity_in(alert.severity, lang),
        alias=patient.alias,
        kind=kind_in(alert.kind, lang),
        waited=_waited(alert, config, lang),
    )
    raised = t(lang, "Raised {when}; responsible: {who}.", when=local_time_text(alert.created_at, tz), who=who)
    return f"{head}\n{alert_detail.text(alert, lang)}\n{raised}"


def escalation_due(alert: Alert, config: Config) -> datetime | None:
    """When an unacknowledged alert escalates, or None for levels that never do.

    Emergency: escalation_minutes after it was raised. Urgent: after
    urgent_escalation_minutes of the clinic's office hours (every minute counts
    when none are configured). Operational alerts (ESCALATING_KINDS) never do.
    """
    if alert.kind not in ESCALATING_KINDS:
        return None
    level = level_of(alert.severity)
    if level == "emergency":
        return alert.created_at + timedelta(minutes=config.staff.escalation_minutes)
    if level == "urgent":
        span = timedelta(minutes=config.staff.urgent_escalation_minutes)
        return config.clinic.office_hours.add_open_time(alert.created_at, span, config.clinic.timezone)
    return None


def _waited(alert: Alert, config: Config, lang: str = "en") -> str:
    if level_of(alert.severity) == "urgent":
        minutes = config.staff.urgent_escalation_minutes
        if config.clinic.office_hours.configured:
            return tn(lang, "{n} minute of office hours", "{n} minutes of office hours", minutes)
        return tn(lang, "{n} minute", "{n} minutes", minutes)
    return tn(lang, "{n} minute", "{n} minutes", config.staff.escalation_minutes)


async def escalate_overdue(session: AsyncSession, now: datetime, config: Config) -> list[int]:
    """Escalate unacknowledged emergency and urgent alerts to every admin once they are due (escalation_due)."""
    soonest = min(config.staff.escalation_minutes, config.staff.urgent_escalation_minutes)
    candidates = (
        await session.exec(
            select(Alert).where(
                col(Alert.acknowledged_at).is_(None),
                col(Alert.escalated_at).is_(None),
                col(Alert.severity).in_(sorted(ESCALATING_SEVERITIES)),
                col(Alert.kind).in_(ESCALATING_KINDS),
                col(Alert.created_at) <= now - timedelta(minutes=soonest),
            )
        )
    ).all()
    due = [a for a in candidates if (at := escalation_due(a, config)) is not None and at <= now]
    escalated: list[int] = []
    if not due:
        return escalated
    recipients = await admins(session) or await staff_members(session)
    for alert in due:
        assert alert.id is not None
        claimed = await session.exec(
            update(Alert)
            .where(col(Alert.id) == alert.id, col(Alert.escalated_at).is_(None), col(Alert.acknowledged_at).is_(None))
            .values(escalated_at=now)
        )
        if not claimed.rowcount:
            continue  # another process escalated it, or somebody acknowledged it just now
        patient = await session.get(Patient, alert.patient_id)
        if patient is None:
            continue
        therapist = await session.get(Staff, patient.therapist_id) if patient.therapist_id else None
        rows = [
            staff_message(
                f"e{alert.id}:{member.telegram_id}",
                member.telegram_id,
                member.id,
                escalation_text(alert, patient, therapist, config, member.timezone, member.language),
                now,
                patient_id=patient.id,
                payload=ack_payload(alert.id, member.language),
            )
            for member in recipients
        ]
        chat = await alert_chat(session, config.clinic)
        if not rows and chat is not None:
            lang = config.clinic.language
            text = escalation_text(alert, patient, therapist, config, config.clinic.timezone, lang)
            rows.append(
                staff_message(
                    f"e{alert.id}:{chat}", chat, None, text, now, patient_id=patient.id,
                    payload=ack_payload(alert.id, lang),
                )
            )  # fmt: skip
        if not rows:
            log.error("alert %d needs escalation but reaches nobody: no staff member and no alert chat", alert.id)
        await queue_staff_messages(session, rows)
        escalated.append(alert.id)
        log.info("escalated alert %d to %d recipient(s)", alert.id, len(rows))
    return escalated
