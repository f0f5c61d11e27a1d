"""One receiver of Telegram updates per database: a lease row with a heartbeat.

Telegram hands each update to one consumer. Two processes polling with one
token fight over getUpdates (one of them gets 409 Conflict forever), and two
webhook processes would both answer. So the process that receives updates
(``rehab-bot run``) holds the ``receiver_lease`` row: it takes it at start,
renews it every HEARTBEAT_SECONDS, and deletes it when it stops. A second
receiver finds a live lease and refuses to start, naming the holder; extra
processes run with ``--no-updates`` and never take it.

A holder that crashed leaves its row behind. The row is taken over once it
has expired (LEASE_SECONDS after the last heartbeat), or at once when the
holder ran on this same node and its process is gone (a restart after a
crash or SIGKILL need not wait). A node is the host name plus the PID
namespace, so two containers that share a host name (host networking) never
judge each other's pids.

Plain Python over the database; time comes from the caller (the clock).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from rehab_bot.db import Database, insert_ignore
from rehab_bot.models import ReceiverLease, table_of

LEASE_NAME = "updates"
LEASE_SECONDS = 60.0
HEARTBEAT_SECONDS = 15.0

_TABLE = table_of(ReceiverLease)


@dataclass(frozen=True)
class Holder:
    """Who holds (or wants) the lease: a random token plus where the process runs."""

    token: str
    host: str
    pid: int
    mode: str
    node: str = ""

    @classmethod
    def this_process(cls, mode: str) -> Holder:
        host = socket.gethostname()
        return cls(token=uuid.uuid4().hex, host=host, pid=os.getpid(), mode=mode, node=this_node(host))


def this_node(host: str) -> str:
    """The host name plus the PID namespace (Linux), where a pid means one process."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return host
    return f"{host}/pidns:{namespace}"


class ReceiverBusy(Exception):
    """Another live process receives updates for this database."""

    def __init__(self, host: str, pid: int, mode: str, heartbeat_at: datetime, expires_at: datetime) -> None:
        self.host, self.pid, self.mode = host, pid, mode
        self.heartbeat_at, self.expires_at = heartbeat_at, expires_at
        super().__init__(
            f"another process already receives updates for this bot: {mode} on host {host}, pid {pid} "
            f"(last heartbeat {heartbeat_at:%Y-%m-%d %H:%M:%S} UTC). Stop it first, or start this one with "
            f"--no-updates to only send reminders (PostgreSQL). If that process crashed, its lease expires "
            f"at {expires_at:%H:%M:%S} UTC."
        )


def process_alive(pid: int) -> bool:
    """True if a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _stale(row: Any, me: Holder, now: datetime, alive: Callable[[int], bool]) -> bool:
    if row.holder == me.token or row.expires_at <= now:
        return True
    # Same node: the holder's process is gone, or its pid is ours (a restarted container).
    return bool(me.node and row.node == me.node and (row.pid == me.pid or not alive(row.pid)))


async def acquire(
    db: Database,
    me: Holder,
    now: datetime,
    *,
    seconds: float = LEASE_SECONDS,
    alive: Callable[[int], bool] = process_alive,
) -> None:
    """Take the lease, or take over a stale one; raise ReceiverBusy if another holder is live."""
    values = {
        "name": LEASE_NAME,
        "holder": me.token,
        "host": me.host,
        "pid": me.pid,
        "node": me.node,
        "mode": me.mode,
        "acquired_at": now,
        "heartbeat_at": now,
        "expires_at": now + timedelta(seconds=seconds),
    }
    for _ in range(5):  # another process may insert or delete between our statements
        async with db.engine.begin() as conn:
            inserted = await conn.execute(insert_ignore(db.dialect, _TABLE).values(**values))
            if inserted.rowcount == 1:
                return
            row = (await conn.execute(select(_TABLE).where(_TABLE.c.name == LEASE_NAME))).one_or_none()
            if row is None:
                continue
            if not _stale(row, me, now, alive):
                raise ReceiverBusy(row.host, row.pid, row.mode, row.heartbeat_at, row.expires_at)
            taken = await conn.execute(
                update(_TABLE).where(_TABLE.c.name == LEASE_NAME, _TABLE.c.holder == row.holder).values(**values)
            )
            if taken.rowcount == 1:
                return
    raise RuntimeError("could not settle the receiver lease")  # pragma: no cover - five races in a row


async def renew(db: Database, me: Holder, now: datetime, *, seconds: float = LEASE_SECONDS) -> bool:
    """Heartbeat: extend our lease; False if it is no longer ours (taken over after it expired)."""
    async with db.engine.begin() as conn:
        result = await conn.execute(
            update(_TABLE)
            .where(_TABLE.c.name == LEASE_NAME, _TABLE.c.holder == me.token)
            .values(heartbeat_at=now, expires_at=now + timedelta(seconds=seconds))
        )
    return bool(result.rowcount == 1)


async def release(db: Database, me: Holder) -> None:
    """Give the lease up (at a clean stop), if it is still ours."""
    async with db.engine.begin() as conn:
        await conn.execute(delete(_TABLE).where(_TABLE.c.name == LEASE_NAME, _TABLE.c.holder == me.token))


async def current(db: Database) -> ReceiverLease | None:
    """The lease row as stored, or None."""
    async with db.session() as session:
        return await session.get(ReceiverLease, LEASE_NAME)
