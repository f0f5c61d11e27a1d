"""How much of each test's time a reply waits on the per-chat pacing: a pytest plugin.

Method: Pacer.acquire is wrapped; while at least one send is waiting in it
(one message a second per chat, real time), the clock runs. Per test, the
call phase's wall time and that waiting time are written, longest first, to
the file named by PACER_WAIT_OUT (default pacer-wait.txt). Overlapping waits
count once, so the figure never exceeds the wall time. Run it on the tests
you want, without xdist:

    PYTHONPATH=bench .venv/bin/python -m pytest -p pacer_wait -n 0 tests/e2e/test_clinician.py

The README (Quickstart, the test times) quotes figures measured with it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rehab_bot import ratelimit

_state = {"waited": 0.0, "waiting": 0, "since": 0.0}
_rows: list[tuple[float, float, str]] = []
_acquire = ratelimit.Pacer.acquire


async def _timed_acquire(self: ratelimit.Pacer, chat_id: int | None, priority: int = ratelimit.BULK) -> None:
    if _state["waiting"] == 0:
        _state["since"] = time.monotonic()
    _state["waiting"] += 1
    try:
        await _acquire(self, chat_id, priority)
    finally:
        _state["waiting"] -= 1
        if _state["waiting"] == 0:
            _state["waited"] += time.monotonic() - _state["since"]


ratelimit.Pacer.acquire = _timed_acquire  # type: ignore[method-assign]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    _state.update(waited=0.0, waiting=0)
    started = time.monotonic()
    yield
    _rows.append((time.monotonic() - started, _state["waited"], item.nodeid))


def pytest_unconfigure(config: Any) -> None:
    out = Path(os.environ.get("PACER_WAIT_OUT", "pacer-wait.txt"))
    lines = [f"{wall:7.2f} s {waited:7.2f} s  {node}" for wall, waited, node in sorted(_rows, reverse=True)]
    out.write_text("  wall   paced-wait  test\n" + "\n".join(lines) + "\n", encoding="utf-8")
