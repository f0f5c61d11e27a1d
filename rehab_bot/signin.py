"""One-time sign-in links to the web app: what /dashboard in a staff chat hands out.

A link carries a random token (32 bytes, URL-safe); the database keeps only its
SHA-256, the staff member, and when it expires (LINK_MINUTES) and was used. A
token signs in once: :func:`redeem` marks it used in the same statement that
checks it is unused and unexpired, so two browsers racing with one link get one
session between them. The staff member must still be active when the link is
redeemed (access is rechecked on every web request anyway).

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
from rehab_bot.models import Staff, WebSignin

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
