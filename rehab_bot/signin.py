"""Signing in to the web app: the one-time links /dashboard in a staff chat hands out, and sessions.

A link carries a random token (32 bytes, URL-safe); the database keeps only its
SHA-256, the staff member, and when it expires (LINK_MINUTES) and was used. A
token signs in once: :func:`redeem` marks it used in the same statement that
checks it is unused and unexpired, so two browsers racing with one link get one
session between them. The staff member must still be active when the link is
redeemed (access is rechecked on every web request anyway).

A web session (any sign-in: link, Mini App, Login Widget) is a random id in
the encrypted cookie and its SHA-256 in the table web_session with when it
ends (``[web] session_hours`` after signing in, however active). Signing out
marks the row ended: a copy of the cookie kept elsewhere stops working too.
Rows past expires_at are cleared when the next session starts.

Plain Python over SQLModel: no telegram or web imports.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import audit
from rehab_bot.models import Staff, WebSession, WebSignin

LINK_MINUTES = 5
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 100


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_link_token(session: AsyncSession, staff: Staff, now: datetime) -> str:
    """A new single-use token for this staff member (the caller commits); expired ones are cleared."""
    assert staff.id is not None
    await session.exec(delete(WebSignin).where(col(WebSignin.expires_at) < now))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        WebSignin(
            token_hash=token_hash(token),
            staff_id=staff.id,
            created_at=now,
            expires_at=now + timedelta(minutes=LINK_MINUTES),
        )
    )
    audit.record(session, action=audit.WEB_LINK, now=now, staff=staff)
    return token


async def holder(session: AsyncSession, token: str, now: datetime) -> Staff | None:
    """The active staff member a valid, unused, unexpired token belongs to, without using it (the sign-in page
    speaks their language); else None. Only redeem signs anybody in."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = await session.get(WebSignin, token_hash(token))
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    staff = await session.get(Staff, row.staff_id)
    return staff if staff is not None and staff.active else None


async def redeem(session: AsyncSession, token: str, now: datetime) -> Staff | None:
    """The active staff member a valid, unused, unexpired token belongs to, marking it used; else None.

    The caller commits (with the session's audit row).
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = token_hash(token)
    claimed = await session.exec(
        update(WebSignin)
        .where(
            col(WebSignin.token_hash) == digest,
            col(WebSignin.used_at).is_(None),
            col(WebSignin.expires_at) > now,
        )
        .values(used_at=now)
    )
    if claimed.rowcount != 1:
        return None
    row = await session.get(WebSignin, digest)
    assert row is not None
    staff = await session.get(Staff, row.staff_id)
    if staff is None or not staff.active:
        return None
    return staff


async def start_session(session: AsyncSession, now: datetime, hours: int) -> str:
    """A new web session's id, open for ``hours`` (the caller commits); expired ones are cleared."""
    await session.exec(delete(WebSession).where(col(WebSession.expires_at) < now))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(WebSession(token_hash=token_hash(token), created_at=now, expires_at=now + timedelta(hours=hours)))
    return token


async def session_open(session: AsyncSession, token: object, now: datetime) -> bool:
    """Whether the cookie's session id names a session that was neither signed out nor has expired."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return False
    row = await session.get(WebSession, token_hash(token))
    return row is not None and row.ended_at is None and row.expires_at > now


async def end_session(session: AsyncSession, token: object, now: datetime) -> None:
    """Sign out: the session ends for every copy of its cookie (the caller commits)."""
    if isinstance(token, str) and token and len(token) <= MAX_TOKEN_LENGTH:
        await session.exec(
            update(WebSession)
            .where(col(WebSession.token_hash) == token_hash(token), col(WebSession.ended_at).is_(None))
            .values(ended_at=now)
        )
