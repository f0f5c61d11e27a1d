"""How long /progress's chart takes to draw for a year of daily data (target: <= 300 ms).

    python bench/chart.py [--runs 20] [--json]

Renders report.synthetic(365 days: pain, mood, two sessions a day) with the
same code /progress uses (report.render_chart), once to warm up (imports,
fonts), then --runs times; prints the median and the worst run against the
target. The first, cold render (matplotlib import and font cache) is shown
for information: a bot pays it once per process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from rehab_bot import report  # noqa: E402

TARGET_MS = 300.0


def measure(runs: int) -> dict[str, float | int | bool | str]:
    """Render the year-long chart; times in milliseconds."""
    progress = report.synthetic(365, date(2026, 6, 10))
    started = time.perf_counter()
    png = report.render_chart(progress)
    cold_ms = (time.perf_counter() - started) * 1000
    width, height = report.png_size(png)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        report.render_chart(progress)
        times.append((time.perf_counter() - started) * 1000)
    median = statistics.median(times)
    return {
        "measure": "progress chart, 365 days of data",
        "median_ms": round(median, 1),
        "max_ms": round(max(times), 1),
        "cold_ms": round(cold_ms, 1),
        "runs": runs,
        "target_ms": TARGET_MS,
        "passed": median <= TARGET_MS,
        "png_bytes": len(png),
        "size": f"{width}x{height}",
    }


async def chart(results: Any, runs: int = 20) -> float:
    """For bench/run.py: add this measure to its Results as a benchlib Figure; returns the median."""
    from benchlib import Figure

    result = measure(runs)
    results.add(
        Figure(
            "(e) /progress chart, 365 days of data",
            "-",
            float(result["median_ms"]),
            "ms",
            f"≤ {TARGET_MS:g} ms",
            bool(result["passed"]),
            f"median of {runs}; worst {result['max_ms']} ms; cold first render {result['cold_ms']} ms; "
            f"PNG {result['size']}",
        )
    )
    return float(result["median_ms"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = measure(args.runs)
    if args.json:
        print(json.dumps(result))
    else:
        verdict = "PASS" if result["passed"] else "FAIL"
        print(
            f"{result['measure']}: median {result['median_ms']} ms, worst {result['max_ms']} ms "
            f"over {result['runs']} runs (target <= {TARGET_MS:g} ms) {verdict}; "
            f"cold first render {result['cold_ms']} ms; PNG {result['size']}, {result['png_bytes']} bytes"
        )
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
