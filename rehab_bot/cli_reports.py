"""The clinic's evaluation commands: `rehab-bot experiment report ID`.

Kept apart from cli.py (which registers and dispatches them) so the
command-line parser stays one screen per feature. No telegram imports.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from rehab_bot.config import Config

COMMANDS = ("experiment",)


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
        "patients, outcome rate; an arm with fewer than 5 patients is suppressed) and the effect of the treatment "
        "on the outcome's probability with a 95%% confidence interval (weighted and centred least squares, "
        "correct for the known randomisation probabilities; standard errors clustered by patient). No patient "
        "is named. An unknown experiment id exits with status 1.",
    )
    report.add_argument("id", metavar="ID", help="the experiment's id in experiments.toml")


def run(config: Config, args: argparse.Namespace) -> int:
    """Run an evaluation command; 1 for bad input."""
    from rehab_bot import experiment
    from rehab_bot.clock import SystemClock
    from rehab_bot.content import load_content
    from rehab_bot.db import Database

    content = load_content(config.content.dir)
    if args.id not in content.experiments:
        known = ", ".join(sorted(content.experiments)) or "none"
        print(f"rehab-bot: no experiment {args.id!r} in the content (experiments: {known})", file=sys.stderr)
        return 1

    async def go() -> list[str]:
        db = Database(config.database.url, pg_schema=config.database.pg_schema or None)
        try:
            await db.upgrade()
            async with db.session() as session:
                result = await experiment.report(session, content, args.id, SystemClock().now())
                await session.commit()
            return experiment.report_lines(result)
        finally:
            await db.dispose()

    for line in asyncio.run(go()):
        print(line)
    return 0
