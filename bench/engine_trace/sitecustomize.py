"""Time the reminder engine's steps in a bot process: where one dispatch process spends its wall time.

Used for the paid-broadcast row (bench/processes.py): with this folder on PYTHONPATH and
SEND_TRACE=/some/prefix in the environment, every Python process that imports rehab_bot.reminders
(the bench and the `rehab-bot run --no-updates` processes it starts) writes /some/prefix.<pid> at
exit: for claim, record, materialise and tick, how often they ran, their wall time and the process
CPU spent while they ran (other coroutines included). A step's wall time far above its CPU is waiting
(on PostgreSQL, or for a core). Without SEND_TRACE it does nothing.

    SEND_TRACE=/tmp/trace PYTHONPATH=$PWD/bench/engine_trace python bench/run.py --only processes
"""

from __future__ import annotations

import atexit
import os
import time
from collections import defaultdict
from typing import Any

if os.environ.get("SEND_TRACE"):
    import rehab_bot.reminders as engine

    _stats: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    _began = time.perf_counter()

    def _timed(name: str) -> None:
        step = getattr(engine.Dispatcher, name)

        async def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return await step(self, *args, **kwargs)
            finally:
                entry = _stats[name]
                entry[0] += 1
                entry[1] += time.perf_counter() - wall
                entry[2] += time.process_time() - cpu

        setattr(engine.Dispatcher, name, timed)

    for _name in ("claim", "record", "materialise", "tick"):
        _timed(_name)

    def _write() -> None:
        if not _stats:
            return
        with open(f"{os.environ['SEND_TRACE']}.{os.getpid()}", "w", encoding="utf-8") as out:
            out.write(f"process: {time.perf_counter() - _began:.2f} s up, {time.process_time():.2f} s CPU\n")
            for name, (count, wall, cpu) in _stats.items():
                out.write(f"{name}: {int(count)} calls, {wall:.2f} s wall, {cpu:.2f} s process CPU meanwhile\n")

    atexit.register(_write)
