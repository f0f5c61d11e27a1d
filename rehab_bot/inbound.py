"""How many messages one person may send: the inbound limit.

Anybody can message the bot, so one person sending hundreds of messages in a
few seconds must not cost everybody else their answers. Each sender (a
Telegram user, or a chat when there is no user) may send ``limit`` updates
in any ``window`` seconds; every update is counted when it arrives, before
any handler or database work, so refusing one costs next to nothing.

* Within the limit every update is handled as usual, so the first messages
  of a flood (a red-flag answer, a crisis message) are always handled fully.
* The first update over the limit is answered with one friendly "slow down"
  notice instead of being handled; the ones after it are dropped (not
  queued, not answered) until the sender's rate falls below the limit again.
  The next flood gets one notice again.
* A message with a crisis phrase is never dropped silently: one that arrives
  while its sender is over the limit is still handled fully (crisis text,
  crisis note, alert), at most one per window; more crisis messages within
  the same window are dropped, as the patient has just been shown the crisis
  text and the clinic has just been alerted.

Plain Python and a monotonic clock, no telegram imports: the update
processor in rehab_bot.bot.updates applies it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    """What to do with one update."""

    HANDLE = "handle"  # within the limit
    NOTICE = "notice"  # the first one over the limit: say "slow down" instead
    DROP = "drop"  # over the limit, notice already given
    CRISIS = "crisis"  # over the limit but carries a crisis phrase: handle it anyway


# Reasons for dropped updates, the label of the metric counting them.
OVER_LIMIT = "over_limit"
CRISIS_REPEAT = "crisis_repeat"


@dataclass
class _Sender:
    arrivals: deque[float]
    noticed: bool = False
    crisis_at: float | None = None
    last: float = 0.0


@dataclass
class InboundLimit:
    """At most ``limit`` updates per sender in any ``window`` seconds."""

    limit: int
    window: float
    monotonic: Callable[[], float] = time.monotonic
    _senders: dict[int, _Sender] = field(default_factory=dict)
    _next_sweep: float = 0.0

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ValueError("limit must be at least 1 and window above 0")

    def check(self, sender: int, *, crisis: Callable[[], bool] = lambda: False) -> Verdict:
        """Count one update from sender and say what to do with it.

        crisis is asked only for an update over the limit (it may look at the
        message's text): True lets one crisis message per window through.
        """
        now = self.monotonic()
        self._sweep(now)
        state = self._senders.get(sender)
        if state is None:
            state = self._senders[sender] = _Sender(deque(maxlen=self.limit))
        arrivals = state.arrivals
        over = len(arrivals) == self.limit and now - arrivals[0] < self.window
        arrivals.append(now)
        state.last = now
        if not over:
            state.noticed = False
            return Verdict.HANDLE
        if crisis():
            if state.crisis_at is None or now - state.crisis_at >= self.window:
                state.crisis_at = now
                return Verdict.CRISIS
        if not state.noticed:
            state.noticed = True
            return Verdict.NOTICE
        return Verdict.DROP

    def tracked(self) -> int:
        """Senders remembered now (bounded: idle ones are forgotten)."""
        return len(self._senders)

    def _sweep(self, now: float) -> None:
        """Forget senders idle for a whole window, at most once per window."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.window
        idle = [s for s, state in self._senders.items() if now - state.last >= self.window]
        for sender in idle:
            del self._senders[sender]
