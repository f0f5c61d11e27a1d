"""This installation's identity: an id namespace generated once, kept in the database.

FHIR exports derive every resource id from it (uuid5(namespace, "Patient/<row id>")),
so the same row always exports to the same id here, and two installations
(two clinics, or a test and a production database) never export the same id.
The migration that creates the table generates it; a database without the row
(tables made some other way) gets one on first use. It is never changed.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.models import Installation, utcnow

INSTALLATION_ROW = 1


async def namespace(session: AsyncSession, now: datetime | None = None) -> uuid.UUID:
    """The installation's id namespace; generated and stored on first use if missing."""
    row = await session.get(Installation, INSTALLATION_ROW)
    if row is None:
        try:
            async with session.begin_nested():
                session.add(Installation(id=INSTALLATION_ROW, namespace=str(uuid.uuid4()), created_at=now or utcnow()))
        except IntegrityError:
            pass  # another process was first: use its namespace
        row = (await session.exec(select(Installation).where(Installation.id == INSTALLATION_ROW))).one()
    return uuid.UUID(row.namespace)
