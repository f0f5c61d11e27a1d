"""The clinic's evaluation commands: `rehab-bot experiment report ID`, `rehab-bot report outcomes`.

Kept apart from cli.py (which registers and dispatches them) so the
command-line parser stays one screen per feature. No telegram imports.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.config import Config

COMMANDS = ("experiment", "report")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`experiment report ID`."""
    experiment = sub.add_parser(
        "experiment",
        help="micro-randomised experiments (experiments.toml)",
        description="Micro-randomised experiments defined in the content (experiments.toml, off by default).",
    )
    experiment_sub = experiment.add_subparsers(dest="experiment_command", metavar="ACTION", required=True)
    report = experiment_sub.add_parser(
        "report",
        help="the effect of an experiment with its 95%% confidence interval",
        description="Record the proximal outcomes that are due, then print the experiment's arms (decisions, "
        "patients, outcome rate; an arm with fewer than 5 patients is suppressed), how many patients opted out of "
        "experiments, and the effect of the treatment "
        "on the outcome's probability with a 95% confidence interval (weighted and centred least squares, "
        "correct for the known randomisation probabilities; standard errors clustered by patient). No patient "
        "is named. An unknown experiment id exits with status 1.",
    )
    report.add_argument("id", metavar="ID", help="the experiment's id in experiments.toml")

    reports = sub.add_parser(
        "report",
        help="clinic reports (outcomes)",
        description="Clinic reports from the database, with no patient named.",
    )
    reports_sub = reports.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    out = reports_sub.add_parser(
        "outcomes",
        help="the clinic outcomes report as HTML and CSV",
        description="Write outcomes.html and outcomes.csv (mode 0600) for the patients enrolled from --from to "
        "--to: enrolment and retention at weeks 4, 8 and 12 beside published anchors, the distribution of "
        "session adherence, the share reaching a meaningful improvement on each outcome measure, alerts per 100 "
        "patient-weeks by level, median time to acknowledge, alert accuracy, escalations, crisis events, "
        "crisis questions left unanswered and experiment results. No patient is named; figures from fewer than "
        "5 patients are suppressed. Earlier "
        "files of that name are kept unless --force. A bad date or an existing file exits with status 1.",
    )
    out.add_argument("--from", dest="start", required=True, metavar="DATE", help="first enrolment date, YYYY-MM-DD")
    out.add_argument("--to", dest="end", required=True, metavar="DATE", help="last enrolment date, YYYY-MM-DD")
    out.add_argument("--out", type=Path, default=Path("."), metavar="DIR", help="folder for the two files (default: .)")
    out.add_argument("--force", action="store_true", help="overwrite an earlier outcomes.html and outcomes.csv there")


def run(config: Config, args: argparse.Namespace) -> int:
    """Run an evaluation command; 1 for bad input."""
    if args.command == "report":
        return _outcomes(config, args)
    from rehab_bot import experiment
    from rehab_bot.clock import SystemClock
    from rehab_bot.content import load_content
    from rehab_bot.db import in_session

    content = load_content(config.content.dir)
    if args.id not in content.experiments:
        known = ", ".join(sorted(content.experiments)) or "none"
        print(f"rehab-bot: no experiment {args.id!r} in the content (experiments: {known})", file=sys.stderr)
        return 1

    async def go(session: AsyncSession) -> experiment.ExperimentReport:
        return await experiment.report(session, content, args.id, SystemClock().now())

    result = asyncio.run(in_session(config.database.url, config.database.pg_schema, go))
    for line in experiment.report_lines(result):
        print(line)
    return 0


def _outcomes(config: Config, args: argparse.Namespace) -> int:
    from rehab_bot import outcomes_report
    from rehab_bot.clock import SystemClock
    from rehab_bot.content import load_content
    from rehab_bot.db import in_session
    from rehab_bot.files import kept_unless_forced, private_dir, write_private_text

    dates: list[date] = []
    for option, typed in (("--from", args.start), ("--to", args.end)):
        try:
            dates.append(date.fromisoformat(typed))
        except ValueError:
            print(f"rehab-bot: {option}: {typed!r} is not a date of the calendar (YYYY-MM-DD)", file=sys.stderr)
            return 1
    start, end = dates
    if end < start:
        print("rehab-bot: --to is before --from", file=sys.stderr)
        return 1
    if args.out.exists() and not args.out.is_dir():
        print(
            f"rehab-bot: --out {args.out} is a file; name a folder for outcomes.html and outcomes.csv", file=sys.stderr
        )
        return 1
    targets = [args.out / "outcomes.html", args.out / "outcomes.csv"]
    if not args.force and (kept := kept_unless_forced(targets, "--out")):
        print(f"rehab-bot: {kept}", file=sys.stderr)
        return 1
    content = load_content(config.content.dir)

    async def go(session: AsyncSession) -> outcomes_report.Report:
        return await outcomes_report.build(session, content, start, end, SystemClock().now())

    report = asyncio.run(in_session(config.database.url, config.database.pg_schema, go))
    try:
        folder = private_dir(args.out)
        write_private_text(folder / "outcomes.html", outcomes_report.to_html(report))
        write_private_text(folder / "outcomes.csv", outcomes_report.to_csv(report))
    except OSError as exc:
        print(f"rehab-bot: cannot write {exc.filename or args.out}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {folder / 'outcomes.html'} and {folder / 'outcomes.csv'} ({len(report.rows)} figures)")
    return 0
