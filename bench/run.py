"""Run every benchmark and write bench/RESULTS.md.

    python bench/run.py                      # full run, SQLite and PostgreSQL (~5 min)
    python bench/run.py --quick              # smaller bursts (~2 min)
    python bench/run.py --backend sqlite     # one backend only

See bench/README.md for what each figure means. Exit status 0 when every
target is met, 1 when one is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import chart_db
import claim
import flood
import processes
import startup
import throughput
import web
from benchlib import BENCH, Figure, Results, machine_info, postgres_available


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the rehab-bot benchmarks and write bench/RESULTS.md.")
    parser.add_argument("--quick", action="store_true", help="smaller bursts and baseline (about 2 minutes)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--patients", type=int, default=100_000, help="(a) patients, 3 daily slots each")
    parser.add_argument("--due-at-start", type=int, default=1_000, help="(a) slots already due when the bot starts")
    parser.add_argument("--cpu-reminders", type=int, help="(b) session reminders in the CPU burst")
    parser.add_argument("--burst", type=int, help="(c, d) N reminders in the burst (default: 100 s worth)")
    parser.add_argument("--rate", type=float, help="(c, d) R messages/s enforced by the fake server (default 30)")
    parser.add_argument(
        "--flood-reminders", type=int, help="(e) reminders draining during the flood (default 10,000; quick 900)"
    )
    parser.add_argument("--flood-others", type=int, help="(e) other patients during the flood (default 1,000)")
    parser.add_argument("--flood-window", type=float, help="(e) seconds the others are spread over (default 60)")
    parser.add_argument(
        "--only",
        choices=("startup", "naive", "cpu", "burst", "flood", "claim", "chart", "processes", "web"),
        action="append",
        help="run only these measures (repeatable); RESULTS.md then holds only their rows",
    )
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args(argv)
    args.cpu_reminders = args.cpu_reminders or (500 if args.quick else 2_000)
    args.rate = args.rate or 30.0
    args.burst = args.burst or int(args.rate * (15 if args.quick else 100))
    args.naive_patients = 3_000 if args.quick else 10_000
    args.flood_reminders = args.flood_reminders or (900 if args.quick else 10_000)
    args.flood_others = args.flood_others or (200 if args.quick else 1_000)
    args.flood_window = args.flood_window or (20.0 if args.quick else 60.0)
    args.only = set(args.only or ("startup", "naive", "cpu", "burst", "flood", "claim", "chart", "processes", "web"))
    return args


async def attempt(results: Results, what: str, kind: str, measure: Awaitable[Any]) -> Any:
    """Run one measurement; if it breaks, say so in the results and go on with the others."""
    try:
        return await measure
    except Exception as exc:  # a broken measurement must not lose the others
        traceback.print_exc()
        results.add(Figure(what, kind, None, "", "", False, f"could not run: {type(exc).__name__}: {exc}"[:300]))
        return None


async def run(args: argparse.Namespace) -> Results:
    results = Results()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if "postgres" in backends and not await postgres_available():
        results.notes.append("PostgreSQL was not reachable: its rows are missing. Set REHAB_BOT_BENCH_PG_URL.")
        print("PostgreSQL is not reachable; running SQLite only", file=sys.stderr)
        backends.remove("postgres")
    ours: dict[str, tuple[float | None, float | None]] = {}
    with tempfile.TemporaryDirectory(prefix="rehab-bench-") as tmp:
        workdir = Path(tmp)
        for kind in backends if "startup" in args.only else ():
            print(f"(a) start-up, {args.patients:,} patients × 3 slots [{kind}]", flush=True)
            measured = await attempt(
                results,
                "(a) start-up",
                kind,
                startup.startup(kind, workdir, results, patients=args.patients, due_now=args.due_at_start),
            )
            ours[kind] = measured or (None, None)
            if not args.quick:
                print(f"(a') start-up with every patient's first slot due [{kind}]", flush=True)
                await attempt(
                    results,
                    "(a') start-up, all due",
                    kind,
                    startup.startup(
                        kind, workdir, results, patients=args.patients, due_now=args.patients, informational=True
                    ),
                )
        if args.only & {"startup", "naive"}:
            print(f"(a) naive baseline: {args.naive_patients * 3:,} JobQueue jobs", flush=True)
            await attempt(
                results,
                "(a) naive baseline",
                "-",
                startup.naive_baseline(
                    results, patients=args.naive_patients, ours=ours, our_slots=args.patients * len(startup.SLOTS)
                ),
            )
        for kind in backends if "claim" in args.only else ():
            print(f"(f) claim time with 100,000 queued; drain rate at a 16,000 backlog vs 1,500 [{kind}]", flush=True)
            await attempt(results, "(f) claim time", kind, claim.claim_time(results, kind, workdir))
            await attempt(results, "(f) backlog drain ratio", kind, claim.backlog_ratio(results, kind, workdir))
        for kind in backends if "chart" in args.only else ():
            print(f"(g) /progress chart: a year from the database, in a fresh process [{kind}]", flush=True)
            await attempt(results, "(g) /progress chart", kind, chart_db.chart_row(results, kind, workdir))
        if "processes" in args.only and "postgres" in backends:
            print("(h) paid broadcasts: 1, 2 and 3 dispatch processes share the rate [postgres]", flush=True)
            backlog = 4_000 if args.quick else 16_000
            await attempt(
                results, "(h) processes", "postgres", processes.combined_rate(results, workdir, reminders=backlog)
            )
        for kind in backends if "web" in args.only else ():
            print(f"(w) web app: caseload of 2,000, a year's patient page, replies while 20 staff browse [{kind}]")
            await attempt(results, "(w) web app", kind, web.run_all(results, [kind], workdir, quick=args.quick))
        for kind in backends if "cpu" in args.only else ():
            n = args.cpu_reminders
            print(f"(b) CPU per reminder, {n:,} session reminders at up to 1,000 msg/s [{kind}]", flush=True)
            await attempt(
                results, "(b) CPU per reminder", kind, throughput.cpu_per_reminder(kind, workdir, results, reminders=n)
            )
            for client in ("aiohttp", "httpx"):
                print(f"(b') without session rendering, {2 * n:,} reminders, {client} [{kind}]", flush=True)
                await attempt(
                    results,
                    f"(b') CPU per reminder, engine + HTTP only, {client}",
                    kind,
                    throughput.cpu_per_reminder(
                        kind, workdir, results, reminders=2 * n, http_client=client, plain=True
                    ),
                )
        for kind in backends if "burst" in args.only else ():
            print(f"(c, d) burst of {args.burst:,} at {args.rate:g} msg/s, a patient taps [{kind}]", flush=True)
            await attempt(
                results,
                "(c, d) burst",
                kind,
                throughput.burst(kind, workdir, results, reminders=args.burst, rate=args.rate),
            )
            if not args.quick:
                n = int(args.rate * 20)
                print(f"(d') burst of {n:,}: taps, and /help every 2 s from another patient [{kind}]", flush=True)
                await attempt(
                    results,
                    "(d') burst with /help",
                    kind,
                    throughput.burst(kind, workdir, results, reminders=n, rate=args.rate, help_every=2.0),
                )
        for kind in backends if "flood" in args.only else ():
            print(
                f"(e) flood: 300 messages in 10 s from one person, {args.flood_others:,} others in "
                f"{args.flood_window:g} s, during a burst of {args.flood_reminders:,} [{kind}]",
                flush=True,
            )
            await attempt(
                results,
                "(e) flood",
                kind,
                flood.flood(
                    kind,
                    workdir,
                    results,
                    reminders=args.flood_reminders,
                    others=args.flood_others,
                    window=args.flood_window,
                    rate=args.rate,
                ),
            )
    return results


def write_results(path: Path, args: argparse.Namespace, results: Results, started: datetime, took: float) -> None:
    info = machine_info()
    command = "python bench/run.py " + " ".join(sys.argv[1:])
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command.strip()}` on {started:%Y-%m-%d %H:%M} UTC in {took / 60:.1f} minutes"
        f"{' (quick mode: smaller bursts)' if args.quick else ''}. One run; figures, not timed tests.",
        "See README.md in this folder for the method.",
        "",
        f"- Machine: {info['cpu']}, {info['memory']} RAM, {info['os']}",
        f"- Load average (1 min) at start {args.load_start:.2f}, at end {os.getloadavg()[0]:.2f}: other work on the"
        " machine slows the bot and inflates CPU figures; above the core count, rerun on a quiet machine",
        f"- Python {info['python']}; {info['libraries']}",
        "- PostgreSQL: the local server, a fresh schema per measurement, dropped afterwards",
        "",
        "| Measure | Backend | Figure | Target | Result | Notes |",
        "|---|---|---|---|---|---|",
    ]
    for f in results.figures:
        verdict = {True: "pass", False: "**FAIL**", None: "info"}[f.passed]
        lines.append(
            f"| {f.measure} | {f.backend} | {f.shown()} | {f.target or '–'} | {verdict} | {f.note.replace('|', '/')} |"
        )
    if results.notes:
        lines += ["", *[f"- {note}" for note in results.notes]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_start = os.getloadavg()[0]
    started = datetime.now(UTC)
    began = time.monotonic()
    results = asyncio.run(run(args))
    took = time.monotonic() - began
    write_results(args.output, args, results, started, took)
    missed = [f for f in results.figures if f.passed is False]
    print(f"\nwrote {args.output} in {took:.0f} s; {len(missed)} target(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
