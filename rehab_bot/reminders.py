"""The reminder engine: the database is the schedule.

Every reminder slot is a ``reminder_rule`` row whose indexed ``next_due_at``
says when it fires next. One repeating job calls :meth:`Dispatcher.tick`,
which works in four steps:

1. **Recover.** Deliveries left in ``sending`` by a process that died are
   marked ``unknown`` once their lease has passed. They are never re-sent: we
   cannot tell whether Telegram got them, and a duplicate is worse than a
   gap. The loss is bounded by one send window (``DeliveryConfig.window``).
2. **Materialise.** Each due rule becomes a ``delivery`` row keyed
   ``r<rule>:<local date>:<slot>`` under a unique constraint, and the rule
   advances to its next local slot, in one transaction. Rows older than the
   grace period are recorded as ``missed``; late ones within it are flagged
   ``late`` so the text can admit it; quiet hours move ``not_before``.
3. **Claim.** A conditional UPDATE moves a window of queued rows, most urgent
   and earliest due first, to ``sending`` (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL; SQLite has one writer at a time). A row can be claimed once.
4. **Send and record.** The window goes out concurrently through the
   :class:`Sender`; each outcome is stored on its row. When half of the
   window is recorded it is topped up again, so the database work overlaps
   the paced sending and never more than one window is in ``sending``.

Plain Python over SQLAlchemy: no telegram imports. Time comes from a Clock.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypeVar, runtime_checkable
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, Select, and_, bindparam, exists, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col
from sqlmodel import select as select_models
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import alert as alerts
from rehab_bot.clock import Clock
from rehab_bot.config import ClinicConfig, DeliveryConfig
from rehab_bot.db import Database, insert_ignore
from rehab_bot.models import (
    PRIORITY,
    URGENT_KINDS,
    Delivery,
    DeliveryStatus,
    Kind,
    Patient,
    PatientStatus,
    ReminderRule,
    UTCDateTime,
    table_of,
)
from rehab_bot.schedule import (
    Occurrence,
    QuietHours,
    Rule,
    local_date,
    next_after_date,
    next_from_now,
    parse_days,
    parse_hhmm,
)

log = logging.getLogger(__name__)

# Core tables for the hot paths: bulk statements without ORM overhead.
RULES = table_of(ReminderRule)
PATIENTS = table_of(Patient)
DELIVERIES = table_of(Delivery)
# The other processes' rows in the claim (made once: an alias builds a proxy per column on first use).
_OTHER = DELIVERIES.alias("other")

# A reminder more than this late says so ("sorry, this comes late").
LATE_AFTER = timedelta(minutes=5)
RECOVER_EVERY = timedelta(seconds=60)
# Queued rows that outwaited the grace period are marked missed by the claim at most this often
# (one statement per claim before; a row past its grace by seconds more is still hours from harm).
SWEEP_EVERY = timedelta(seconds=5)

T = TypeVar("T")


# --- what the sender gets and gives back ---------------------------------


@dataclass(frozen=True)
class DueMessage:
    """One claimed delivery, with what is needed to render it."""

    delivery_id: int
    key: str
    kind: str
    chat_id: int
    patient_id: int | None
    staff_id: int | None
    language: str
    late: bool
    local_date: date | None
    slot: str
    payload: str
    body: str
    attempts: int
    due_at: datetime


@dataclass(frozen=True)
class Sent:
    message_id: int | None = None


@dataclass(frozen=True)
class Retry:
    """Try again later: network trouble, 5xx, or 429 (rate_limited)."""

    reason: str
    after_seconds: float | None = None
    rate_limited: bool = False


@dataclass(frozen=True)
class Unreachable:
    """The chat is gone for us: blocked, deactivated, not found. Never retry."""

    reason: str


@dataclass(frozen=True)
class Failed:
    """A permanent error for this message only (a 400 other than chat not found)."""

    reason: str


Outcome = Sent | Retry | Unreachable | Failed


class Sender(Protocol):
    """Delivers one message; never raises for Telegram errors, returns an Outcome."""

    async def send(self, message: DueMessage) -> Outcome:
        """Send and classify the result."""
        ...


@runtime_checkable
class BatchSender(Sender, Protocol):
    """A Sender that works a claimed window at once; the dispatcher calls these around the sends."""

    async def render_window(self, db: AsyncSession, messages: Sequence[DueMessage], opened: Mapping[int, Any]) -> None:
        """Render what it can of the window in the claim's transaction (reads only), with what was opened."""
        ...

    async def prepare(self, messages: Sequence[DueMessage]) -> None:
        """Render the rest of the window, after the claim committed and before its sends start."""
        ...

    def forget(self, messages: Iterable[DueMessage]) -> None:
        """Drop what was prepared for sends that were cancelled."""
        ...

    async def flush(self, db: AsyncSession, *, isolate: bool = False) -> None:
        """Run the batched after-send bookkeeping in the transaction that records the window's outcomes.

        Raises BookkeepingFailed, keeping the items for another flush; with
        isolate=True each part runs in a savepoint and a failing one is only logged.
        """
        ...

    async def committed(self) -> None:
        """The transaction that ran flush() committed: run what the bookkeeping left for after it."""
        ...


class BookkeepingFailed(Exception):
    """A sender's after-send bookkeeping failed; the transaction is rolled back and recorded again without it."""


class _WindowNotOpened(Exception):
    """Opening or rendering a claimed window failed; the claim is rolled back and taken again without it."""


# Opens what a claimed window needs before it is rendered (rehab_bot.session.open_for_deliveries:
# the exercise sessions), in the claim's transaction: (db, messages, now) -> {delivery_id: opened}.
WindowOpener = Callable[[AsyncSession, Sequence[DueMessage], datetime], Awaitable[Mapping[int, Any]]]


@dataclass
class TickReport:
    """What one tick did, for logs, metrics and tests."""

    materialised: int = 0
    missed: int = 0
    skipped: int = 0
    recovered: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unreachable: int = 0
    outcomes: list[tuple[int, Outcome]] = field(default_factory=list)

    def add(self, other: TickReport) -> None:
        """Accumulate another report into this one."""
        for name in ("materialised", "missed", "skipped", "recovered", "sent", "retried", "failed", "unreachable"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.outcomes.extend(other.outcomes)


# --- rules -------------------------------------------------------------------


def rule_for(row: Any, tz: str) -> Rule:
    """Build the pure schedule Rule from a reminder_rule row and the patient's zone."""
    return Rule(
        local_time=parse_hhmm(row.local_time),
        tz=tz,
        start_date=row.start_date,
        end_date=row.end_date,
        days_of_week=parse_days(row.days),
        every_n_days=row.every_n_days,
    )


def _apply_occurrence(rule: ReminderRule, occurrence: Occurrence | None) -> None:
    if occurrence is None:
        rule.next_due_at = None
        rule.next_local_date = None
    else:
        rule.next_due_at = occurrence.due_at
        rule.next_local_date = occurrence.local_date


def add_rule(
    session: AsyncSession,
    patient: Patient,
    *,
    kind: Kind,
    local_time: str,
    now: datetime,
    days: str = "",
    every_n_days: int | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
    payload: str = "",
) -> ReminderRule:
    """Add a recurring slot for a patient, scheduled from the next slot after now."""
    assert patient.id is not None
    rule = ReminderRule(
        patient_id=patient.id,
        kind=kind.value,
        priority=PRIORITY[kind],
        local_time=parse_hhmm(local_time).strftime("%H:%M"),
        days=days,
        every_n_days=every_n_days,
        start_date=start_date or local_date(patient, now),
        end_date=end_date,
        payload=payload,
        created_at=now,
        updated_at=now,
    )
    _apply_occurrence(rule, next_from_now(rule_for(rule, patient.timezone), now))
    session.add(rule)
    return rule


def add_one_off(
    session: AsyncSession, patient: Patient, *, kind: Kind, due_at: datetime, now: datetime, payload: str = ""
) -> ReminderRule:
    """A single reminder at an instant (a snooze, a follow-up nudge)."""
    assert patient.id is not None
    rule = one_off_rule(patient.id, patient.timezone, kind=kind, due_at=due_at, now=now, payload=payload)
    session.add(rule)
    return rule


# The key a one-off's JSON payload sets when the patient asked for it with a tap (the exercises
# after ▶ Start): an answer, not a reminder, so quiet hours do not hold it back (held to the
# morning, it would be past its session's day and dropped, after the patient was told it comes).
ASKED = "asked"


@functools.lru_cache(maxsize=1024)
def asked_for(payload: str) -> bool:
    """True when a rule's payload says the patient asked for it just now (see ASKED)."""
    try:
        data = json.loads(payload or "null")
    except ValueError:
        return False
    return isinstance(data, dict) and data.get(ASKED) is True


def one_off_rule(
    patient_id: int, timezone: str, *, kind: Kind, due_at: datetime, now: datetime, payload: str = ""
) -> ReminderRule:
    """The row of a one-off reminder, not yet added to a session."""
    return ReminderRule(**one_off_values(patient_id, timezone, kind=kind, due_at=due_at, now=now, payload=payload))


def one_off_values(
    patient_id: int, timezone: str, *, kind: Kind, due_at: datetime, now: datetime, payload: str = ""
) -> dict[str, Any]:
    """The column values of a one-off reminder, for bulk inserts (every column without a default)."""
    local = due_at.astimezone(_tz(timezone))
    return {
        "patient_id": patient_id,
        "kind": kind.value,
        "priority": PRIORITY[kind],
        "local_time": local.strftime("%H:%M"),
        "days": "",
        "every_n_days": None,
        "start_date": local.date(),
        "end_date": local.date(),
        "once": True,
        "payload": payload,
        "active": True,
        "next_due_at": due_at,
        "next_local_date": local.date(),
        "last_local_date": None,
        "created_at": now,
        "updated_at": now,
    }


async def reschedule_patient(session: AsyncSession, patient: Patient, now: datetime) -> int:
    """Recompute every active rule of a patient after a change of times or timezone.

    Takes effect from the next slot. A slot already delivered today (in any
    zone) is not delivered again: the search starts after last_local_date.
    Returns how many rules were rescheduled.
    """
    rules = (
        await session.exec(
            select_models(ReminderRule).where(
                col(ReminderRule.patient_id) == patient.id,
                col(ReminderRule.active).is_(True),
                col(ReminderRule.once).is_(False),
            )
        )
    ).all()
    for rule in rules:
        reschedule_rule(session, rule, patient.timezone, now)
    return len(rules)


def reschedule_rule(session: AsyncSession, rule: ReminderRule, tz: str, now: datetime) -> None:
    """Recompute one rule's next slot after a change, never repeating a slot it already delivered."""
    _apply_occurrence(rule, next_from_now(rule_for(rule, tz), now, rule.last_local_date))
    rule.updated_at = now
    session.add(rule)


def _tz(name: str) -> ZoneInfo:
    from rehab_bot.schedule import zone

    return zone(name)


# --- the dispatcher ----------------------------------------------------------


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Dispatcher:
    """Claims due reminders from the database and sends them, exactly once."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: DeliveryConfig,
        clinic: ClinicConfig,
        sender: Sender,
        *,
        worker_id: str | None = None,
        rng: random.Random | None = None,
        open_window: WindowOpener | None = None,
    ) -> None:
        self.db = db
        self.open_window = open_window
        self.clock = clock
        self.settings = settings
        self.clinic = clinic
        self.sender = sender
        self.worker_id = worker_id or _worker_id()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._lock = asyncio.Lock()
        self._last_recover: datetime | None = None
        self._last_sweep: datetime | None = None
        self._stopping = False
        self.totals = TickReport()
        self.ticks = 0  # ticks run to the end since start (the tests wait for the one at start)

    def stop_claiming(self) -> None:
        """Shutting down: claim nothing more; sends already in flight finish and are recorded.

        A stop that waited for the tick to drain a morning's backlog would
        outlast any supervisor's patience (Docker sends SIGKILL after 10 s),
        and a kill leaves the window in flight in doubt. Stopping between
        windows leaves nothing in doubt: the rest stays queued for the next start.
        """
        self._stopping = True

    @property
    def busy(self) -> bool:
        """True while a tick is running."""
        return self._lock.locked()

    async def tick(self, *, max_windows: int | None = None, wait: bool = False) -> TickReport:
        """Recover, materialise and send everything due now (at most max_windows claims).

        A call while another tick runs returns at once (the repeating job
        must not pile up), unless wait=True, which queues behind it.
        """
        if self._stopping or (self._lock.locked() and not wait):
            return TickReport()
        async with self._lock:
            report = TickReport()
            now = self.clock.now()
            if self._last_recover is None or now - self._last_recover >= RECOVER_EVERY:
                report.recovered = await self.recover(now)
                self._last_recover = now
            step = await self.materialise(self.clock.now())
            report.add(step)
            await self._send_claimed(report, max_windows, materialising=self._full(step))
            self.totals.add(
                TickReport(
                    **{
                        k: getattr(report, k)
                        for k in (
                            "materialised",
                            "missed",
                            "skipped",
                            "recovered",
                            "sent",
                            "retried",
                            "failed",
                            "unreachable",
                        )
                    }
                )
            )
            self.ticks += 1
            return report

    # 1. recover ---------------------------------------------------------------

    async def recover(self, now: datetime) -> int:
        """Mark deliveries stuck in `sending` past their lease as `unknown`."""
        cutoff = now - timedelta(seconds=self.settings.sending_lease_seconds)
        table = DELIVERIES
        async with self.db.dispatch_engine.begin() as conn:
            result = await conn.execute(
                update(table)
                .where(table.c.status == DeliveryStatus.SENDING.value, table.c.claimed_at < cutoff)
                .values(status=DeliveryStatus.UNKNOWN.value, error="in flight when a process stopped; not re-sent")
            )
        count = int(result.rowcount or 0)
        if count:
            log.warning("marked %d deliveries in doubt after a crash (not re-sent)", count)
        return count

    # 2. materialise -----------------------------------------------------------

    async def materialise(self, now: datetime) -> TickReport:
        """Turn one batch of due rules into delivery rows and advance the rules."""
        report = TickReport()
        grace = timedelta(minutes=self.settings.grace_period_minutes)
        async with self.db.dispatch_session() as session:
            r, p = RULES.c, PATIENTS.c
            query = (
                select(
                    r.id,
                    r.patient_id,
                    r.kind,
                    r.priority,
                    r.local_time,
                    r.days,
                    r.every_n_days,
                    r.start_date,
                    r.end_date,
                    r.once,
                    r.payload,
                    r.next_due_at,
                    r.next_local_date,
                    p.telegram_id,
                    p.timezone,
                    p.status,
                    p.paused_until,
                    p.quiet_start,
                    p.quiet_end,
                )
                .join(PATIENTS, p.id == r.patient_id)
                .where(r.next_due_at <= now)
                .order_by(r.next_due_at)
                .limit(self.settings.batch_size)
            )
            if self.db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True, of=RULES)
            conn = await session.connection()
            rows = (await conn.execute(query)).all()
            if not rows:
                return report
            new_rows: list[dict[str, Any]] = []
            rule_updates: list[dict[str, Any]] = []
            resumed: set[int] = set()
            for row in rows:
                rule = rule_for(row, row.timezone)
                slot = rule.slot
                due_at: datetime = row.next_due_at
                day: date = row.next_local_date or local_date(row, due_at)
                kind = Kind(row.kind)
                asked = bool(row.once) and asked_for(row.payload)
                last_date = day
                while True:
                    status = self._status_for(row, kind, day, now, due_at, grace, resumed)
                    late = now - due_at > LATE_AFTER
                    not_before = due_at
                    if status == DeliveryStatus.QUEUED and kind not in URGENT_KINDS and not asked:
                        quiet_end = self._quiet_end(row, max(now, due_at))
                        if quiet_end is not None:
                            not_before = quiet_end
                    new_rows.append(
                        {
                            "key": f"r{row.id}:{day.isoformat()}:{slot}",
                            "kind": kind.value,
                            "priority": row.priority,
                            "rule_id": row.id,
                            "patient_id": row.patient_id,
                            "chat_id": row.telegram_id or 0,
                            "local_date": day,
                            "slot": slot,
                            "due_at": due_at,
                            "not_before": not_before,
                            "status": status.value,
                            "late": late,
                            "payload": row.payload,
                            "created_at": now,
                            "attempts": 0,
                            "body": "",
                            "error": "",
                            "claimed_by": "",
                        }
                    )
                    if status == DeliveryStatus.MISSED:
                        report.missed += 1
                    elif status == DeliveryStatus.SKIPPED:
                        report.skipped += 1
                    else:
                        report.materialised += 1
                    last_date = day
                    nxt = None if row.once else next_after_date(rule, day)
                    if nxt is None or nxt.due_at > now:
                        break
                    # Catching up after downtime: older slots are recorded, one by one.
                    day, due_at = nxt.local_date, nxt.due_at
                rule_updates.append(
                    {
                        "rid": row.id,
                        "old_due": row.next_due_at,
                        "next_due_at": None if nxt is None else nxt.due_at,
                        "next_local_date": None if nxt is None else nxt.local_date,
                        "last_local_date": last_date,
                        "active": nxt is not None,
                        "updated_at": now,
                    }
                )
            await self._insert_ignoring_duplicates(conn, new_rows)
            # The WHERE on the old next_due_at makes the advance conditional:
            # a second process that read the same rule changes nothing.
            table = RULES
            await conn.execute(
                update(table)
                .where(and_(table.c.id == bindparam("rid"), table.c.next_due_at == bindparam("old_due")))
                .values(
                    next_due_at=bindparam("next_due_at"),
                    next_local_date=bindparam("next_local_date"),
                    last_local_date=bindparam("last_local_date"),
                    active=bindparam("active"),
                    updated_at=bindparam("updated_at"),
                ),
                rule_updates,
            )
            if resumed:
                await conn.execute(
                    update(PATIENTS)
                    .where(PATIENTS.c.id.in_(resumed))
                    .values(status=PatientStatus.ACTIVE.value, paused_until=None)
                )
            await session.commit()
        return report

    def _status_for(
        self,
        row: Any,
        kind: Kind,
        local_date: date,
        now: datetime,
        due_at: datetime,
        grace: timedelta,
        resumed: set[int],
    ) -> DeliveryStatus:
        status = row.status
        if status == PatientStatus.PAUSED.value and row.paused_until is not None and local_date > row.paused_until:
            resumed.add(row.patient_id)
            status = PatientStatus.ACTIVE.value
        if row.patient_id in resumed:
            status = PatientStatus.ACTIVE.value
        if status != PatientStatus.ACTIVE.value or not row.telegram_id:
            return DeliveryStatus.SKIPPED
        if kind not in URGENT_KINDS and now - due_at > grace:
            return DeliveryStatus.MISSED
        return DeliveryStatus.QUEUED

    def _quiet_end(self, row: Any, at: datetime) -> datetime | None:
        quiet = QuietHours.for_patient(row, self.settings.quiet_hours_start, self.settings.quiet_hours_end)
        return quiet.ends_after(at, row.timezone) if quiet is not None else None

    async def _insert_ignoring_duplicates(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        table = DELIVERIES
        stmt = insert_ignore(self.db.dialect, table, keys=["key"])
        await conn.execute(stmt, list(rows))

    # 3. claim -------------------------------------------------------------------

    def claim_query(self, now: Any, limit: Any) -> Select[Any]:
        """The ids claim() takes: due queued rows in claim order, read through ix_delivery_claim.

        On PostgreSQL several processes may send; a chat that another process
        is sending to right now is left for later, so the per-chat interval
        holds across processes (the pacer spaces sends to one chat within a
        process). That check reads ix_delivery_sending, a handful of rows.

        now and limit are values or bind parameters (claim() builds its statement
        once, with parameters, and runs that same statement for every window).
        """
        table = DELIVERIES
        pick = select(table.c.id).where(table.c.status == DeliveryStatus.QUEUED.value, table.c.not_before <= now)
        if self.db.dialect == "postgresql":
            other = _OTHER
            pick = pick.where(
                ~exists()
                .where(
                    other.c.status == DeliveryStatus.SENDING.value,
                    other.c.chat_id == table.c.chat_id,
                    other.c.claimed_by != self.worker_id,
                )
                .correlate(table)
            )
        pick = pick.order_by(table.c.priority, table.c.due_at, table.c.id).limit(limit)
        if self.db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True, of=table)
        return pick

    @functools.cached_property
    def _claim_statement(self) -> Any:
        """The claim as one statement, built once: run with {"claim_now": ..., "claim_limit": ...}.

        Building it per window cost more CPU than running it (an aliased
        table's 23 column proxies, the cache key of a new statement: ~0.7 ms
        on the test machine, against ~0.2 ms for the round trip), which was
        most of the 2.7 ms the claim took in bench/claim.py on PostgreSQL.
        The patient's language comes back with the row (a scalar subquery in
        RETURNING), so the claim needs no second statement for it.
        """
        table = DELIVERIES
        now = bindparam("claim_now", type_=UTCDateTime)
        # A CTE, not `id IN (subquery)`: PostgreSQL may re-run an IN
        # subquery per row and so ignore its LIMIT; a locking CTE runs once.
        picked = self.claim_query(now, bindparam("claim_limit", type_=Integer)).cte("picked")
        language = (
            select(PATIENTS.c.language).where(PATIENTS.c.id == table.c.patient_id).scalar_subquery().label("language")
        )
        return (
            update(table)
            .where(table.c.id == picked.c.id, table.c.status == DeliveryStatus.QUEUED.value)
            .values(
                status=DeliveryStatus.SENDING.value,
                claimed_by=self.worker_id,
                claimed_at=now,
                attempts=table.c.attempts + 1,
            )
            .returning(
                table.c.id,
                table.c.key,
                table.c.kind,
                table.c.chat_id,
                table.c.patient_id,
                table.c.staff_id,
                table.c.late,
                table.c.local_date,
                table.c.slot,
                table.c.payload,
                table.c.body,
                table.c.attempts,
                table.c.due_at,
                table.c.priority,
                language,
            )
        )

    async def claim(self, now: datetime, limit: int) -> list[DueMessage]:
        """Atomically move up to `limit` due queued rows to `sending`; return them.

        In the same transaction the window is opened and rendered as far as
        the sender can (:meth:`_open_window`): one transaction per window for
        the claim and the render lookups. If that fails, the claim is taken
        again without it and its messages are rendered one by one.
        """
        try:
            return await _once_more_if_disconnected(lambda: self._claim(now, limit))
        except _WindowNotOpened:
            log.exception("opening a window of deliveries failed; rendering them one by one")
            return await _once_more_if_disconnected(lambda: self._claim(now, limit, open_window=False))

    async def _claim(self, now: datetime, limit: int, *, open_window: bool = True) -> list[DueMessage]:
        grace = timedelta(minutes=self.settings.grace_period_minutes)
        table = DELIVERIES
        async with self.db.dispatch_session() as session:
            conn = await session.connection()
            # Rows that waited past the grace period in the queue (a long
            # backlog, retries) are missed, not sent hours late.
            sweep = self._last_sweep is None or not timedelta(0) <= now - self._last_sweep < SWEEP_EVERY
            if sweep:
                await conn.execute(
                    update(table)
                    .where(
                        table.c.status == DeliveryStatus.QUEUED.value,
                        # Measured from when it was meant to go out, so a message
                        # deferred by quiet hours is not "late" at their end.
                        table.c.not_before < now - grace,
                        table.c.kind.not_in([k.value for k in URGENT_KINDS]),
                    )
                    .values(status=DeliveryStatus.MISSED.value, error="not sent within the grace period")
                )
            claimed = (await conn.execute(self._claim_statement, {"claim_now": now, "claim_limit": limit})).all()
            messages = self._messages(claimed, now)
            if open_window:
                await self._open_window(session, messages, now)
            await session.commit()
        if sweep:
            self._last_sweep = now
        return messages

    def _messages(self, claimed: Sequence[Any], now: datetime) -> list[DueMessage]:
        claimed = sorted(claimed, key=lambda r: (r.priority, r.due_at, r.id))
        return [
            DueMessage(
                delivery_id=r.id,
                key=r.key,
                kind=r.kind,
                chat_id=r.chat_id,
                patient_id=r.patient_id,
                staff_id=r.staff_id,
                language=r.language if r.language is not None else self.clinic.language,
                late=r.late,
                local_date=r.local_date,
                slot=r.slot,
                payload=r.payload,
                body=r.body,
                attempts=r.attempts,
                due_at=r.due_at if r.due_at.tzinfo else r.due_at.replace(tzinfo=now.tzinfo),
            )
            for r in claimed
        ]

    async def _open_window(self, session: AsyncSession, messages: Sequence[DueMessage], now: datetime) -> None:
        """Open what the window needs (the exercise sessions) and let the sender render it, in the claim's
        transaction. No savepoint (two more round trips per window): a failure rolls the claim back."""
        if not messages:
            return
        try:
            opened = await self.open_window(session, messages, now) if self.open_window is not None else {}
            if isinstance(self.sender, BatchSender):
                await self.sender.render_window(session, messages, opened)
        except Exception as exc:
            raise _WindowNotOpened from exc

    # 4. send and record -------------------------------------------------------

    def _full(self, step: TickReport) -> bool:
        """True when a materialise step filled its batch, so more rules may be due."""
        return step.materialised + step.missed + step.skipped >= self.settings.batch_size

    async def _send_claimed(self, report: TickReport, max_claims: int | None, *, materialising: bool = False) -> None:
        """Claim, send and record until nothing is due, keeping the pacer busy.

        Materialising is interleaved with sending: after a restart with a
        whole morning due, the first reminders go out after one batch of
        rules rather than after all of them, and rules falling due during a
        long drain (the next slot of the day) are picked up every
        ``poll_interval`` instead of when the drain ends.

        At most ``window`` rows are in ``sending`` at any moment (the
        bound on what a crash can leave in doubt). Rather than wait for a
        whole window to finish before claiming the next, the window is
        topped up whenever half of it has been sent and recorded: the
        database work of one half overlaps the paced sending of the other,
        so a burst drains at the full rate instead of pausing between
        windows.
        """
        capacity = self.settings.window
        refill = max(1, capacity // 2)
        in_flight: dict[asyncio.Task[Outcome], DueMessage] = {}
        claims = 0
        more = True
        every = timedelta(seconds=self.settings.poll_interval)
        materialised_at = self.clock.now()
        # On PostgreSQL the next batch of rules is materialised on a connection of its own while the
        # window is claimed, sent and recorded: the engine's database work is otherwise one statement
        # after another, and with a backlog to materialise that waiting capped one process's rate.
        # SQLite has one writer: there it runs in turn with the claims, as before.
        overlap = self.db.dialect == "postgresql"
        materialiser: asyncio.Future[TickReport] | None = None
        try:
            while True:
                if materialiser is not None and (materialiser.done() or not in_flight):
                    step = await materialiser
                    materialiser = None
                    report.add(step)
                    materialising = self._full(step)
                    materialised_at = self.clock.now()
                    if step.materialised:
                        more = True
                can_claim = more and not self._stopping and (max_claims is None or claims < max_claims)
                free = capacity - len(in_flight)
                if can_claim and free >= (refill if in_flight else 1):
                    claimed = await self.claim(self.clock.now(), free)
                    claims += 1
                    more = bool(claimed) or materialising
                    await self._prepare(claimed)
                    for message in claimed:
                        in_flight[asyncio.ensure_future(self._send_one(message))] = message
                    can_claim = more and not self._stopping and (max_claims is None or claims < max_claims)
                # While the claimed window is being sent, turn the next batch of due rules into deliveries.
                due = materialising or self.clock.now() - materialised_at >= every
                if materialiser is None and not self._stopping and due and overlap:
                    materialiser = asyncio.ensure_future(self.materialise(self.clock.now()))
                elif materialiser is None and not self._stopping and due:
                    step = await self.materialise(self.clock.now())
                    report.add(step)
                    materialising = self._full(step)
                    materialised_at = self.clock.now()
                    if step.materialised:
                        more = True
                        can_claim = not self._stopping and (max_claims is None or claims < max_claims)
                if not in_flight:
                    if materialiser is not None or (materialising and not self._stopping):
                        continue  # nothing claimable yet: materialise the next batch, or wait for it
                    return
                # Record in batches: half a window while more may be claimed, else all.
                need = min(refill, len(in_flight)) if can_claim else len(in_flight)
                pending: set[asyncio.Task[Outcome]] = set(in_flight)
                finished: list[asyncio.Task[Outcome]] = []
                while len(finished) < need:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    finished.extend(done)
                report.add(await self.record([(in_flight.pop(task), task.result()) for task in finished]))
        except Exception:
            # The database failed to claim or record: let what is in flight
            # finish and try to record it, rather than leave it in doubt.
            if in_flight:
                outcomes = await asyncio.gather(*in_flight)
                try:
                    report.add(await self.record(list(zip(in_flight.values(), outcomes, strict=True))))
                except Exception:
                    log.exception("could not record %d outcomes; they will be marked in doubt", len(in_flight))
                in_flight.clear()
            raise
        finally:
            # Cancelled (shutdown): the rows stay in `sending` and are recovered
            # as unknown after their lease, exactly like a crash.
            for task in in_flight:
                task.cancel()
            if materialiser is not None:
                # Its transaction rolls back; what it had not committed is materialised at the next tick.
                materialiser.cancel()
                if materialiser.done() and not materialiser.cancelled():
                    materialiser.exception()  # retrieved: the failure that ended the loop was raised
            if isinstance(self.sender, BatchSender) and in_flight:
                self.sender.forget(in_flight.values())

    async def _prepare(self, messages: Sequence[DueMessage]) -> None:
        """Let a batch sender render what the claim's transaction left, before the sends start."""
        if isinstance(self.sender, BatchSender) and messages:
            await self.sender.prepare(messages)

    async def send_window(self, messages: Sequence[DueMessage]) -> TickReport:
        """Send claimed messages concurrently and store each outcome."""
        await self._prepare(messages)
        outcomes = await asyncio.gather(*(self._send_one(m) for m in messages))
        return await self.record(list(zip(messages, outcomes, strict=True)))

    async def _send_one(self, message: DueMessage) -> Outcome:
        try:
            return await self.sender.send(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in rendering must not stall the queue
            log.exception("sender raised for delivery %d", message.delivery_id)
            return Failed(f"internal error: {type(exc).__name__}")

    def backoff(self, attempts: int) -> float:
        """Exponential backoff with jitter for the attempt just made."""
        base = self.settings.backoff_base_seconds * (2 ** max(0, attempts - 1))
        return min(self.settings.backoff_max_seconds, base) * self._rng.uniform(0.5, 1.5)

    async def record(self, results: Iterable[tuple[DueMessage, Outcome]]) -> TickReport:
        """Store outcomes: sent, retry later, failed, or patient unreachable.

        The sender's after-send bookkeeping for the window runs in the same
        transaction: one per recorded batch.
        """
        results = list(results)
        try:
            return await _once_more_if_disconnected(lambda: self._record(results))
        except BookkeepingFailed:
            # Recorded again with each part of the bookkeeping in a savepoint: the failing part
            # is logged and left out, the outcomes and the other parts stand.
            return await _once_more_if_disconnected(lambda: self._record(results, isolate=True))

    async def _record(self, results: Sequence[tuple[DueMessage, Outcome]], *, isolate: bool = False) -> TickReport:
        report = TickReport()
        now = self.clock.now()
        sent: list[dict[str, Any]] = []
        retry: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        unreachable: list[tuple[DueMessage, Unreachable]] = []
        for message, outcome in results:
            report.outcomes.append((message.delivery_id, outcome))
            if isinstance(outcome, Sent):
                sent.append({"did": message.delivery_id, "message_id": outcome.message_id, "sent_at": now})
            elif isinstance(outcome, Retry):
                # A 429 is Telegram pacing us, not a fault: it does not use up
                # an attempt, and we wait exactly as long as we were told.
                give_up = not outcome.rate_limited and message.attempts >= self.settings.max_attempts
                if give_up:
                    failed.append(
                        {
                            "did": message.delivery_id,
                            "error": f"gave up after {message.attempts} attempts: {outcome.reason}",
                        }
                    )
                    continue
                delay = outcome.after_seconds if outcome.after_seconds is not None else self.backoff(message.attempts)
                retry.append(
                    {
                        "did": message.delivery_id,
                        "not_before": now + timedelta(seconds=delay),
                        "error": outcome.reason[:500],
                        "refund": 1 if outcome.rate_limited else 0,
                    }
                )
            elif isinstance(outcome, Failed):
                failed.append({"did": message.delivery_id, "error": outcome.reason[:500]})
            else:
                unreachable.append((message, outcome))
        async with self.db.dispatch_session() as session:
            conn = await session.connection()
            if sent:
                await conn.execute(_RECORD_SENT, sent)
            if retry:
                await conn.execute(_RECORD_RETRY, retry)
            if failed:
                await conn.execute(_RECORD_FAILED, failed)
            for message, outcome in unreachable:
                await self._mark_unreachable(session, message, outcome, now)
            if isinstance(self.sender, BatchSender):
                await self.sender.flush(session, isolate=isolate)
            await session.commit()
        if isinstance(self.sender, BatchSender):
            await self.sender.committed()
        report.sent, report.retried = len(sent), len(retry)
        report.failed, report.unreachable = len(failed), len(unreachable)
        return report

    async def _mark_unreachable(
        self, session: AsyncSession, message: DueMessage, outcome: Unreachable, now: datetime
    ) -> None:
        table = DELIVERIES
        conn = await session.connection()
        await conn.execute(
            update(table)
            .where(table.c.id == message.delivery_id)
            .values(status=DeliveryStatus.FAILED.value, error=f"unreachable: {outcome.reason}"[:500])
        )
        if (
            message.patient_id is None
            or message.kind in (Kind.ALERT.value, Kind.CAREGIVER.value)
            or message.staff_id is not None
        ):
            # A staff chat or a caregiver's chat that blocked us: not the patient's; the error is recorded.
            return
        patient = await session.get(Patient, message.patient_id)
        if patient is None:
            return
        await conn.execute(
            update(table)
            .where(
                table.c.patient_id == patient.id,
                table.c.status == DeliveryStatus.QUEUED.value,
                table.c.kind != Kind.ALERT.value,
            )
            .values(status=DeliveryStatus.SKIPPED.value, error="patient unreachable")
        )
        if patient.status != PatientStatus.UNREACHABLE.value:
            patient.status = PatientStatus.UNREACHABLE.value
            patient.unreachable_reason = outcome.reason[:200]
            session.add(patient)
        await alerts.raise_alert(
            session,
            patient,
            kind="unreachable",
            severity="high",
            detail=outcome.reason,
            key=f"unreachable:{patient.id}",
            now=now,
            clinic=self.clinic,
        )

    async def backlog(self) -> int:
        """Deliveries queued and due now (for /metrics)."""
        table = DELIVERIES
        async with self.db.engine.connect() as conn:
            result = await conn.execute(
                select(func.count())
                .select_from(table)
                .where(table.c.status == DeliveryStatus.QUEUED.value, table.c.not_before <= self.clock.now())
            )
            return int(result.scalar_one())

    async def next_wakeup(self) -> datetime | None:
        """The earliest instant at which a tick would have work (tests jump there)."""
        rules = RULES
        table = DELIVERIES
        async with self.db.engine.connect() as conn:
            next_rule = (await conn.execute(select(func.min(rules.c.next_due_at)))).scalar_one()
            next_retry = (
                await conn.execute(
                    select(func.min(table.c.not_before)).where(table.c.status == DeliveryStatus.QUEUED.value)
                )
            ).scalar_one()
        candidates = [_aware(t) for t in (next_rule, next_retry) if t is not None]
        return min(candidates) if candidates else None


# The statements that record a window's outcomes, built once (executed with a row of parameters each).
_BY_ID = DELIVERIES.c.id == bindparam("did")
_RECORD_SENT = (
    update(DELIVERIES)
    .where(_BY_ID)
    .values(
        status=DeliveryStatus.SENT.value,
        message_id=bindparam("message_id"),
        sent_at=bindparam("sent_at"),
        error="",
    )
)
_RECORD_RETRY = (
    update(DELIVERIES)
    .where(_BY_ID)
    .values(
        status=DeliveryStatus.QUEUED.value,
        not_before=bindparam("not_before"),
        error=bindparam("error"),
        attempts=DELIVERIES.c.attempts - bindparam("refund"),
    )
)
_RECORD_FAILED = update(DELIVERIES).where(_BY_ID).values(status=DeliveryStatus.FAILED.value, error=bindparam("error"))


async def _once_more_if_disconnected(run: Callable[[], Awaitable[T]]) -> T:
    """Run a transaction; run it again once if the connection was found dead.

    The engine's connections have no pre-ping (rehab_bot.db): after a database
    restart the first statement on a pooled connection fails, SQLAlchemy drops
    the pool's old connections, and the transaction, rolled back, is safe to
    run again on a new one.
    """
    try:
        return await run()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("the database connection was lost; trying once more on a new one")
        return await run()


def _aware(value: datetime) -> datetime:
    # Aggregates bypass the column type, so SQLite hands back naive UTC.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
