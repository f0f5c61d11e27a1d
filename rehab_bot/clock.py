"""Injectable time, so tests can run a week of reminders in seconds.

Production uses SystemClock. Tests use FakeClock and move it forward by hand;
the dispatcher then does what it would have done at that instant.
All instants are aware datetimes in UTC.

The pacer (rehab_bot.ratelimit) keeps Telegram's spacing on a monotonic clock
of its own, real by default. ScaledTime runs that clock, and the pacer's
sleeps, faster than real time: the end-to-end tests run the pacer and the fake
Bot API's flood limits on one ScaledTime, so one message a second per chat
still holds there, in a fraction of the wall time.
"""

from __future__ import annotations

import asyncio
import time
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


class ScaledTime:
    """A monotonic clock that runs ``scale`` times as fast as real time, and sleeps on it.

    ``monotonic()`` reads like time.monotonic() at the start and then gains
    ``scale`` seconds per real second; ``sleep(seconds)`` waits seconds of this
    clock (seconds / scale of real time). Scale 1 is real time.
    """

    def __init__(self, scale: float = 1.0, origin: float | None = None) -> None:
        """``origin``: the instant (time.monotonic()) from which the clock gains ``scale`` seconds per
        second, now by default. CLOCK_MONOTONIC is one clock for every process of a Linux host, so two
        processes with the same scale and origin read the same scaled time (see :meth:`shared`)."""
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._origin = time.monotonic() if origin is None else origin

    def monotonic(self) -> float:
        """Seconds on this clock."""
        return self._origin + (time.monotonic() - self._origin) * self.scale

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock."""
        await asyncio.sleep(max(0.0, seconds) / self.scale)

    def shared(self) -> str:
        """This clock as text (``scale@origin``) for another process's :meth:`from_shared`."""
        return f"{self.scale!r}@{self._origin!r}"

    @classmethod
    def from_shared(cls, text: str) -> ScaledTime:
        """The clock :meth:`shared` described: the same scaled time in this process.

        A test and bench hook: the end-to-end tests hand it to `rehab-bot run`
        processes through REHAB_BOT_TEST_PACE_CLOCK (rehab_bot.cli), so that the
        bot's pacer and the fake Bot API's flood limits run on one scaled clock.
        """
        scale, sep, origin = text.partition("@")
        try:
            if not sep:
                raise ValueError(text)
            return cls(float(scale), float(origin))
        except ValueError as exc:
            raise ValueError(f"expected SCALE@ORIGIN (for example 10@12345.6), not {text!r}") from exc
