"""One-time sign-in links (rehab_bot.signin): hashed at rest, five minutes, once, active staff only."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from factories import make_staff
from sqlmodel import select

from rehab_bot import signin
from rehab_bot.clock import FakeClock
from rehab_bot.db import Database
from rehab_bot.models import Staff, WebSignin


async def test_a_token_signs_in_once_within_five_minutes(db: Database, clock: FakeClock) -> None:
    staff = await make_staff(db)
    async with db.session() as session:
        token = await signin.create_link_token(session, staff, clock.now())
        await session.commit()
    async with db.session() as session:
        [row] = (await session.exec(select(WebSignin))).all()
    assert row.token_hash == signin.token_hash(token) and token not in row.token_hash
    assert row.expires_at == clock.now() + timedelta(minutes=signin.LINK_MINUTES)
    async with db.session() as session:
        assert await signin.redeem(session, token + "x", clock.now()) is None
        found = await signin.redeem(session, token, clock.now() + timedelta(minutes=4))
        await session.commit()
    assert found is not None and found.id == staff.id
    async with db.session() as session:
        assert await signin.redeem(session, token, clock.now()) is None  # used


async def test_an_expired_token_or_a_removed_member_signs_nobody_in(db: Database, clock: FakeClock) -> None:
    staff = await make_staff(db)
    async with db.session() as session:
        late = await signin.create_link_token(session, staff, clock.now())
        removed = await signin.create_link_token(session, staff, clock.now())
        await session.commit()
    async with db.session() as session:
        assert await signin.redeem(session, late, clock.now() + timedelta(minutes=5)) is None
        member = await session.get(Staff, staff.id)
        assert member is not None
        member.active = False
        await session.commit()
    async with db.session() as session:
        assert await signin.redeem(session, removed, clock.now()) is None


async def test_two_browsers_racing_with_one_link_get_one_sign_in(db: Database, clock: FakeClock) -> None:
    staff = await make_staff(db)
    async with db.session() as session:
        token = await signin.create_link_token(session, staff, clock.now())
        await session.commit()

    async def attempt() -> bool:
        async with db.session() as session:
            found = await signin.redeem(session, token, clock.now())
            await session.commit()
            return found is not None

    results = await asyncio.gather(*(attempt() for _ in range(4)), return_exceptions=True)
    assert [r for r in results if r is True] == [True]
