"""Injectable time, so tests can run a week of reminders in seconds.

Production uses SystemClock. Tests use FakeClock and move it forward by hand;
the dispatcher then does what it would have done at that instant.
All instants are aware datetimes in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that can tell the current UTC time."""

    def now(self) -> datetime:
        """Return the current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """Return datetime.now(UTC)."""
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """Return the pinned instant."""
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to an instant (forwards only: time does not run backwards here)."""
        when = when.astimezone(UTC)
        if when < self._now:
            raise ValueError("FakeClock cannot go backwards")
        self._now = when

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by a timedelta or a number of seconds; return the new now."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        self.set(self._now + delta)
        return self._now
