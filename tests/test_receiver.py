"""The receiver lease: one process receives updates per database; a crashed holder is taken over."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rehab_bot import receiver
from rehab_bot.clock import FakeClock
from rehab_bot.db import Database
from rehab_bot.receiver import Holder, ReceiverBusy

A = Holder(token="a" * 32, host="bot-a", pid=101, mode="polling", node="bot-a/pidns:1")
B = Holder(token="b" * 32, host="bot-b", pid=202, mode="webhook", node="bot-b/pidns:1")


def never_alive(pid: int) -> bool:
    raise AssertionError("liveness is only asked about holders on this host")


async def test_second_receiver_is_refused_naming_the_holder(db: Database, clock: FakeClock) -> None:
    await receiver.acquire(db, A, clock.now(), alive=never_alive)
    clock.advance(timedelta(seconds=30))
    with pytest.raises(ReceiverBusy) as info:
        await receiver.acquire(db, B, clock.now(), alive=never_alive)
    message = str(info.value)
    assert "host bot-a, pid 101" in message and "polling" in message and "--no-updates" in message
    lease = await receiver.current(db)
    assert lease is not None and lease.holder == A.token


async def test_heartbeat_keeps_the_lease_and_expiry_lets_another_take_over(db: Database, clock: FakeClock) -> None:
    await receiver.acquire(db, A, clock.now(), alive=never_alive)
    for _ in range(8):  # two minutes of heartbeats, longer than one lease
        clock.advance(timedelta(seconds=receiver.HEARTBEAT_SECONDS))
        assert await receiver.renew(db, A, clock.now())
        with pytest.raises(ReceiverBusy):
            await receiver.acquire(db, B, clock.now(), alive=never_alive)
    # A crashes: no more heartbeats. Just before expiry B is still refused, then takes over.
    clock.advance(timedelta(seconds=receiver.LEASE_SECONDS - 1))
    with pytest.raises(ReceiverBusy):
        await receiver.acquire(db, B, clock.now(), alive=never_alive)
    clock.advance(timedelta(seconds=1))
    await receiver.acquire(db, B, clock.now(), alive=never_alive)
    lease = await receiver.current(db)
    assert lease is not None and (lease.holder, lease.host, lease.pid) == (B.token, "bot-b", 202)
    assert lease.expires_at == clock.now() + timedelta(seconds=receiver.LEASE_SECONDS)
    # A wakes up: its heartbeat fails (it must stop receiving), and its release leaves B's lease alone.
    assert not await receiver.renew(db, A, clock.now())
    await receiver.release(db, A)
    assert (await receiver.current(db)) is not None


async def test_release_frees_the_lease_at_once(db: Database, clock: FakeClock) -> None:
    await receiver.acquire(db, A, clock.now(), alive=never_alive)
    await receiver.release(db, A)
    assert await receiver.current(db) is None
    await receiver.acquire(db, B, clock.now(), alive=never_alive)


async def test_a_dead_holder_on_this_host_is_taken_over_without_waiting(db: Database, clock: FakeClock) -> None:
    here_dead = Holder(token="c" * 32, host="bot-a", pid=303, mode="polling", node="bot-a/pidns:1")
    await receiver.acquire(db, A, clock.now(), alive=never_alive)
    with pytest.raises(ReceiverBusy):  # pid 101 still runs on bot-a
        await receiver.acquire(db, here_dead, clock.now(), alive=lambda pid: pid == 101)
    await receiver.acquire(db, here_dead, clock.now(), alive=lambda pid: False)
    lease = await receiver.current(db)
    assert lease is not None and lease.holder == here_dead.token
    # A restarted container gets the old pid again: that holder cannot be alive either.
    again = Holder(token="d" * 32, host="bot-a", pid=303, mode="polling", node="bot-a/pidns:1")
    await receiver.acquire(db, again, clock.now(), alive=lambda pid: True)
    assert (await receiver.current(db)).holder == again.token  # type: ignore[union-attr]


async def test_acquire_twice_by_the_same_holder_renews(db: Database, clock: FakeClock) -> None:
    await receiver.acquire(db, A, clock.now(), alive=never_alive)
    clock.advance(timedelta(seconds=10))
    await receiver.acquire(db, A, clock.now(), alive=never_alive)
    lease = await receiver.current(db)
    assert lease is not None and lease.heartbeat_at == clock.now()


async def test_same_host_name_in_another_pid_namespace_waits_for_expiry(db: Database, clock: FakeClock) -> None:
    # Two containers with host networking share a host name, not their pids.
    other_container = Holder(token="e" * 32, host="bot-a", pid=101, mode="polling", node="bot-a/pidns:2")
    await receiver.acquire(db, A, clock.now(), alive=never_alive)
    with pytest.raises(ReceiverBusy):
        await receiver.acquire(db, other_container, clock.now(), alive=never_alive)
    clock.advance(timedelta(seconds=receiver.LEASE_SECONDS))
    await receiver.acquire(db, other_container, clock.now(), alive=never_alive)


def test_this_process_names_its_node() -> None:
    import os
    import socket

    me = Holder.this_process("polling")
    assert (me.host, me.pid) == (socket.gethostname(), os.getpid())
    assert me.node.startswith(me.host) and len(me.token) == 32
