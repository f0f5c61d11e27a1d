"""The ``rehab-bot`` command.

    rehab-bot run                 run the bot (polling or webhook, from config)
    rehab-bot run --no-updates    an extra dispatch-only process (PostgreSQL)
    rehab-bot db upgrade          apply database migrations
    rehab-bot db backup PATH      copy a live SQLite database safely
    rehab-bot check-config        validate config.toml and the environment
    rehab-bot content check [DIR] validate clinic content files
    rehab-bot content list        show loaded content and where it came from
    rehab-bot --version

Configuration comes from ``--config PATH`` (default ./config.toml) and
REHAB_BOT_* environment variables; see config.example.toml. A bad value
exits with status 2 and one line naming the key and the fix.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from rehab_bot import __version__
from rehab_bot.config import Config, ConfigError, load_config
from rehab_bot.logs import scrub, setup_logging

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with a --help for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="rehab-bot",
        description="A Telegram bot a clinic runs for its patients after spine surgery.",
    )
    parser.add_argument("--version", action="version", version=f"rehab-bot {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help="configuration file (default: ./config.toml if it exists; REHAB_BOT_* variables override it)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the bot",
        description="Upgrade the database, then run the bot in the configured mode (polling or webhook) "
        "until SIGINT or SIGTERM.",
    )
    run.add_argument(
        "--no-updates",
        action="store_true",
        help="send due reminders only and do not receive updates; run extra processes like this "
        "against one PostgreSQL database, while exactly one process receives updates",
    )

    db = sub.add_parser("db", help="database maintenance", description="Database maintenance.")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_sub.add_parser(
        "upgrade",
        help="apply migrations",
        description="Apply all database migrations (the bot also does this at start).",
    )
    backup = db_sub.add_parser(
        "backup",
        help="back up a SQLite database",
        description="Copy the SQLite database with SQLite's online backup API; safe while the bot runs. "
        "For PostgreSQL use pg_dump (see README).",
    )
    backup.add_argument("path", type=Path, help="where to write the copy")

    content = sub.add_parser("content", help="clinic content files", description="Clinic content files.")
    content_sub = content.add_subparsers(dest="content_command", metavar="ACTION", required=True)
    check = content_sub.add_parser(
        "check",
        help="validate content files",
        description="Validate the built-in content plus a clinic content folder (default: [content] dir). "
        "Errors are printed as file:line: message; the exit status is 1 if there are any.",
    )
    check.add_argument("dir", nargs="?", type=Path, help="clinic content folder to check")
    content_sub.add_parser(
        "list",
        help="list loaded content",
        description="List every exercise, programme and text that is loaded, "
        "and whether it is built-in or the clinic's.",
    )

    sub.add_parser(
        "check-config",
        help="validate the configuration",
        description="Load config.toml and REHAB_BOT_* variables, validate them, and print a summary without secrets.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_CONFIG
    try:
        config = load_config(args.config, need_token=args.command in ("run", "check-config"))
    except ConfigError as exc:
        print(f"rehab-bot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.logging.level)
    try:
        if args.command == "run":
            return cmd_run(config, receive_updates=not args.no_updates)
        if args.command == "db":
            if args.db_command == "upgrade":
                return cmd_db_upgrade(config)
            return cmd_db_backup(config, args.path)
        if args.command == "check-config":
            return cmd_check_config(config)
        if args.command == "content":
            if args.content_command == "check":
                return cmd_content_check(args.dir or config.content.dir)
            return cmd_content_list(config.content.dir)
    except ConfigError as exc:
        print(f"rehab-bot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    parser.error(f"unknown command {args.command}")
    return EXIT_CONFIG  # pragma: no cover - parser.error exits


def cmd_run(config: Config, *, receive_updates: bool) -> int:
    """Run the bot until stopped."""
    from rehab_bot.bot.app import build_application, run
    from rehab_bot.db import is_sqlite

    if not receive_updates and is_sqlite(config.database.url):
        raise ConfigError(
            "database.url",
            "is SQLite",
            "--no-updates processes share the queue; use PostgreSQL for more than one process",
        )
    run(build_application(config, receive_updates=receive_updates))
    return 0


def cmd_db_upgrade(config: Config) -> int:
    """Apply migrations and print the revision reached."""
    from rehab_bot.db import Database, current_revision

    async def go() -> str | None:
        db = Database(config.database.url, pg_schema=config.database.pg_schema or None)
        try:
            await db.upgrade()
            return await current_revision(db.engine)
        finally:
            await db.dispose()

    revision = asyncio.run(go())
    print(f"database at revision {revision}")
    return 0


def cmd_db_backup(config: Config, target: Path) -> int:
    """Back up SQLite with the online backup API."""
    from rehab_bot.db import backup_sqlite, is_sqlite, sqlite_path

    source = sqlite_path(config.database.url) if is_sqlite(config.database.url) else None
    if source is None:
        raise ConfigError("database.url", "is not a SQLite file", "back up PostgreSQL with pg_dump (see README)")
    if not source.exists():
        raise ConfigError(
            "database.url", f"names {source}, which does not exist yet", "run the bot or `rehab-bot db upgrade` first"
        )
    backup_sqlite(source, target)
    print(f"backed up {source} to {target}")
    return 0


def cmd_content_check(directory: Path | None) -> int:
    """Validate content; print file:line errors; 1 if any."""
    from rehab_bot.content import ContentError, load_content

    if directory is not None and not directory.is_dir():
        print(f"rehab-bot: {directory} is not a folder", file=sys.stderr)
        return 1
    try:
        content = load_content(directory)
    except ContentError as exc:
        for line in exc.errors:
            print(line)
        print(f"{len(exc.errors)} problem(s) found", file=sys.stderr)
        return 1
    print(
        f"content OK: {len(content.exercises)} exercises, {len(content.programmes)} programmes, "
        f"{len(content.texts)} texts"
    )
    return 0


def cmd_content_list(directory: Path | None) -> int:
    """Print each loaded item with its source."""
    from rehab_bot.content import ContentError, load_content

    try:
        content = load_content(directory)
    except ContentError as exc:
        for line in exc.errors:
            print(line)
        return 1
    for exercise in content.exercises.values():
        print(f"exercise   {exercise.id:<28} {exercise.name.get('en', '')[:40]:<40} {exercise.source}")
    for programme in content.programmes.values():
        flag = " (example)" if programme.example else ""
        print(f"programme  {programme.id:<28} {programme.name.get('en', '')[:40]:<40} {programme.source}{flag}")
    for text in content.texts.values():
        print(f"text       {text.id:<28} {'':<40} {text.source}")
    return 0


def cmd_check_config(config: Config) -> int:
    """Print a summary of the effective configuration, secrets masked."""
    tg = config.telegram
    print(f"config file: {config.source or '(none; defaults and environment only)'}")
    print(f"clinic: {config.clinic.name} ({config.clinic.timezone}, {config.clinic.language})")
    print(f"telegram: mode={tg.mode} base_url={tg.base_url} token={scrub(tg.token)}")
    url = config.database.url
    print(f"database: {url.split('@')[-1] if '@' in url else url}")
    print(f"delivery: {config.delivery.effective_rate:g} msg/s, grace {config.delivery.grace_period_minutes} min")
    print(f"http: {config.http.listen or 'disabled'}")
    print("configuration OK")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
