"""The ``rehab-bot`` command.

    rehab-bot demo                try it: the whole bot with a made-up clinic, no token, in the browser
    rehab-bot run                 run the bot (polling or webhook, from config)
    rehab-bot run --no-updates    an extra dispatch-only process (PostgreSQL)
    rehab-bot db upgrade          apply database migrations
    rehab-bot db backup PATH [--force]  copy a live SQLite database safely
    rehab-bot check-config        validate config.toml and the environment
    rehab-bot content check [DIR] validate clinic content files
    rehab-bot content list        show loaded content and where it came from
    rehab-bot invite create ...   invite a patient: deep link and QR code (--force: overwrite the PNG)
    rehab-bot staff add|list|remove  clinic staff (bootstrap the first admin here)
    rehab-bot export --format csv|fhir [--patient ALIAS] --out PATH [--force]
    rehab-bot audit [--since DATE] [--format tsv|csv|json]  every staff view, export and change
    rehab-bot report outcomes --from DATE --to DATE [--out DIR] [--force]  the clinic outcomes report
    rehab-bot experiment report ID  an experiment's effect with its confidence interval
    rehab-bot --version

Configuration comes from ``--config PATH`` (default ./config.toml) and
REHAB_BOT_* environment variables; see config.example.toml. A bad value
exits with status 2 and one line naming the key and the fix. ``--config`` and
``--verbose`` (library log lines) go before or after the command. Results go
to stdout, warnings and errors to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError

from rehab_bot import __version__, cli_reports
from rehab_bot.config import Config, ConfigError, clinic_name_is_placeholder, load_config
from rehab_bot.content import ContentError
from rehab_bot.db import DatabaseTooNew, DatabaseUnreachable, NoDatabase
from rehab_bot.files import kept_unless_forced, set_private_umask
from rehab_bot.i18n import SUPPORTED_LANGUAGES
from rehab_bot.logs import OWN_LOGGER, add_secret, scrub, setup_logging

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

EXIT_CONFIG = 2
NO_ADMIN_WARNING = (
    "WARNING: there is no active admin. Alerts about patients without a therapist and escalations have "
    "no admin to go to. Add one: rehab-bot staff add --telegram-id N --role admin --name NAME"
)


CONFIG_HELP = "configuration file (default: ./config.toml if it exists; REHAB_BOT_* variables override it)"


def _global_options(*, defaults: bool, config_help: str = CONFIG_HELP) -> argparse.ArgumentParser:
    """--config and --verbose, accepted before and after the subcommand.

    The top-level parser sets the defaults; each subcommand gets the same
    options with SUPPRESS as default, so a value given before the subcommand is
    not overwritten by the subcommand's default. A subcommand that reads no
    configuration (demo) says so in its --config help.
    """
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--config",
        type=Path,
        default=None if defaults else argparse.SUPPRESS,
        metavar="PATH",
        help=config_help,
    )
    options.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if defaults else argparse.SUPPRESS,
        help=(
            "also show the log lines of libraries (database migrations, HTTP) and, for commands other than "
            "run, rehab-bot's own INFO lines; without it they are quiet"
        ),
    )
    return options


class _SubcommandsWithGlobalOptions(argparse._SubParsersAction):
    """Every subcommand (and sub-subcommand) accepts the global options."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        config_help = kwargs.pop("config_help", CONFIG_HELP)
        kwargs["parents"] = [*kwargs.get("parents", []), _global_options(defaults=False, config_help=config_help)]
        parser = super().add_parser(name, **kwargs)
        parser.register("action", "parsers", _SubcommandsWithGlobalOptions)
        return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with a --help for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="rehab-bot",
        description="A Telegram bot a clinic runs for its patients after spine surgery. "
        "Results go to standard output; messages and errors to standard error. "
        "--config and --verbose may stand before or after the command. Exit status: 0 done; 1 input the "
        "command refused (an unknown id, a bad date, a file in the way); 2 a command line it cannot read (an "
        "unknown option, a missing argument, a number that is not one) or a configuration problem.",
        parents=[_global_options(defaults=True)],
    )
    parser.register("action", "parsers", _SubcommandsWithGlobalOptions)
    parser.add_argument("--version", action="version", version=f"rehab-bot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="try the bot without a token: a made-up clinic and two chats in the browser",
        description="Run the whole bot (the same application and reminder engine as `run`) against a fake "
        "Telegram on this computer, with a temporary SQLite database seeded with a demo clinic: an admin, a "
        "therapist, and patients at different stages with a few weeks of history. A page at "
        "http://127.0.0.1:PORT/ shows a patient's and a therapist's chats side by side; type and tap as either, "
        "and move the demo clock forward. Needs no token and no network; reads no config.toml or REHAB_BOT_* "
        "variables; writes only into a temporary folder, removed when it stops: Ctrl+C, closing its terminal "
        "(SIGHUP) or SIGTERM.",
        config_help="ignored: the demo builds its own configuration and reads no file or REHAB_BOT_* variables",
    )
    demo.add_argument(
        "--port", type=int, default=8765, help="port of the page on 127.0.0.1 (default 8765; 0: any free one)"
    )
    demo.add_argument("--no-browser", action="store_true", help="print the page's address but do not open a browser")
    demo.add_argument(
        "--lang",
        choices=SUPPORTED_LANGUAGES,
        default="en",
        help="language of the page (it links to the other one), of the patient you play and of the staff: their web "
        "dashboard and the therapist's chat (default: en)",
    )

    run = sub.add_parser(
        "run",
        help="run the bot",
        description="Upgrade the database, then run the bot in the configured mode (polling or webhook) "
        "until SIGINT or SIGTERM. Only one process per database receives updates: it holds a receiver lease "
        "in the database, and a second one exits with status 2 naming the first (host and pid). If the Bot "
        "API cannot be reached at start it retries with backoff; a token Telegram rejects exits with status 2.",
    )
    run.add_argument(
        "--no-updates",
        action="store_true",
        help="send due reminders only and do not receive updates; run extra processes like this "
        "against one PostgreSQL database, while exactly one process receives updates. All processes share "
        "one rate budget: on the free tier an extra process adds redundancy, not speed",
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
    backup.add_argument(
        "--force",
        action="store_true",
        help="overwrite PATH if it exists (default: refuse, status 1); never the database itself",
    )

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
        description="List every exercise, programme, text and lesson of the recovery course that is "
        "loaded, and whether it is built-in or the clinic's.",
    )

    invite = sub.add_parser("invite", help="patient invitations", description="Patient invitations.")
    invite_sub = invite.add_subparsers(dest="invite_command", metavar="ACTION", required=True)
    create = invite_sub.add_parser(
        "create",
        help="invite a patient: deep link and QR code",
        description="Create a patient (by alias) and a single-use invitation, valid for [clinic] "
        "invite_valid_days days. Prints the deep link https://t.me/<bot username>?start=<code> and writes it "
        "as a QR code PNG for printing. The bot username is asked from Telegram (getMe) with the configured "
        "token and base_url; pass --bot-username to work offline without a token. An existing file at the QR "
        "code's path is kept unless --force. Input it refuses exits with status 1, a configuration problem with 2.",
    )
    create.add_argument("--alias", required=True, help="the patient's pseudonym, e.g. P-0042 (never a real name)")
    create.add_argument("--surgery-date", required=True, metavar="YYYY-MM-DD", help="the day of surgery")
    create.add_argument(
        "--programme", required=True, metavar="ID", help="exercise programme id (see `rehab-bot content list`)"
    )
    create.add_argument(
        "--therapist",
        metavar="TELEGRAM_ID_OR_NAME",
        help="the patient's responsible physiotherapist, who receives their alerts: an active staff member's "
        "Telegram id or name. Required when more than one therapist works here; with exactly one, that one "
        "is the default (and is printed)",
    )
    create.add_argument("--surgery-type", default="lumbar", metavar="TYPE", help="lumbar (default), cervical or other")
    create.add_argument(
        "--qr",
        type=Path,
        metavar="PATH",
        help="where to write the QR code PNG (default: invite-<alias>.png); a missing folder is created, "
        "a symbolic link is refused",
    )
    create.add_argument(
        "--bot-username",
        metavar="NAME",
        help="the bot's username (without @); skips asking Telegram, so no token or network is needed",
    )
    create.add_argument(
        "--force",
        action="store_true",
        help="overwrite an existing file at the QR code's path (default: refuse, status 1)",
    )

    _add_clinic_commands(sub)
    cli_reports.add_commands(sub)

    sub.add_parser(
        "check-config",
        help="validate the configuration",
        description="Load config.toml and REHAB_BOT_* variables, validate them, and print a summary without secrets. "
        "Warns when the database has no active admin (who receives alerts about patients without a therapist "
        "and escalations).",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    # Health data at rest is private: the database, its -wal/-shm, backups,
    # exports and invite QR codes are created 0600, folders 0700.
    set_private_umask()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_CONFIG
    if args.command == "demo":
        # The demo's configuration is its own: no config.toml, no REHAB_BOT_* variables, no token.
        if args.config is not None:
            print("rehab-bot: the demo uses its own configuration; --config is ignored", file=sys.stderr)
        return cmd_demo(port=args.port, browser=not args.no_browser, language=args.lang, verbose=args.verbose)
    try:
        config = load_config(args.config, need_token=args.command in ("run", "check-config"))
    except ConfigError as exc:
        print(f"rehab-bot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    add_secret(config.telegram.secret_token)
    setup_logging(config.logging.level)
    quiet_library_logs(verbose=args.verbose)
    if args.command != "run" and not args.verbose:
        # A one-off command says what it did on stdout; its own INFO lines ("staff 2 removed; ...") are
        # for --verbose. Warnings and errors still show.
        own = logging.getLogger(OWN_LOGGER)
        own.setLevel(max(own.getEffectiveLevel(), logging.WARNING))
    if args.command != "run":
        # Audit rows written by this command name the person at the keyboard.
        from rehab_bot import audit

        audit.set_cli_operator(audit.os_operator())
    try:
        if args.command == "run":
            return cmd_run(config, receive_updates=not args.no_updates)
        if args.command == "db":
            if args.db_command == "upgrade":
                return cmd_db_upgrade(config)
            return cmd_db_backup(config, args.path, force=args.force)
        if args.command == "check-config":
            return cmd_check_config(config)
        if args.command == "content":
            if args.content_command == "check":
                return cmd_content_check(args.dir or config.content.dir)
            return cmd_content_list(config.content.dir)
        if args.command in ("staff", "export", "audit"):
            return cmd_clinic(config, args)
        if args.command == "invite":
            return cmd_invite_create(config, args)
        if args.command in cli_reports.COMMANDS:
            return cli_reports.run(config, args)
    except ConfigError as exc:
        print(f"rehab-bot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except DatabaseUnreachable as exc:
        print(
            f"rehab-bot: {exc}; check that the database runs and [database] url (REHAB_BOT_DATABASE_URL)",
            file=sys.stderr,
        )
        return 1
    except DatabaseTooNew as exc:
        print(f"rehab-bot: {exc}", file=sys.stderr)
        return 1
    except NoDatabase as exc:  # a command that reads, at a SQLite path that does not exist: nothing is made there
        print(
            f"rehab-bot: no database at {exc.path}: check [database] url in the config (REHAB_BOT_DATABASE_URL); "
            "to start a new one there, run: rehab-bot db upgrade",
            file=sys.stderr,
        )
        return 1
    except DBAPIError as exc:
        # The database refused a statement (no privilege, a read-only file, a full disk): one line.
        # Its first line only: PostgreSQL's DETAIL (the next one) may repeat a row's values.
        orig = getattr(exc, "orig", None) or exc
        reason = scrub(str(orig).split(": ", 1)[-1] if str(orig).startswith("<class ") else str(orig))
        print(f"rehab-bot: the database refused the command: {reason.splitlines()[0]}", file=sys.stderr)
        return 1
    except ContentError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(
            "rehab-bot: the content files have the problems listed above; fix them "
            "(`rehab-bot content check` shows them) and try again",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    parser.error(f"unknown command {args.command}")
    return EXIT_CONFIG  # pragma: no cover - parser.error exits


def progress_bar(*, desc: str, unit: str, total: int | None = None) -> Any:
    """A progress bar on stderr while a person watches: none when stdout or stderr is not a terminal."""
    import shutil

    from tqdm import tqdm

    watched = sys.stdout.isatty() and sys.stderr.isatty()
    # A terminal that reports 0 columns (a serial console, `script`) would get an empty bar.
    width = shutil.get_terminal_size().columns
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not watched, leave=False, ncols=width)


# Libraries that log routine steps at INFO: Alembic (one line per migration and
# plugin, at every command's start), the HTTP clients and aiohttp's server.
LIBRARY_LOGGERS = ("alembic", "httpx", "httpcore", "aiohttp")


def quiet_library_logs(*, verbose: bool) -> None:
    """Hold library loggers at WARNING unless --verbose (then INFO, still token-scrubbed)."""
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


def cmd_demo(*, port: int, browser: bool, language: str, verbose: bool) -> int:
    """Run the demo until Ctrl+C: print the page's address and open it."""
    from rehab_bot.demo.runner import demo_folder, interrupt_on_stop_signals, serve

    if not 0 <= port <= 65535:
        print(f"rehab-bot: --port {port} is not a port (0-65535)", file=sys.stderr)
        return 1
    setup_logging("WARNING")
    quiet_library_logs(verbose=verbose)
    if not verbose:
        import logging

        logging.getLogger("telegram").setLevel(logging.WARNING)  # "Application started" and the like

    def ready(url: str) -> None:
        try:
            print(f"rehab-bot demo: open {url} (Ctrl+C stops it and deletes its data)", flush=True)
        except OSError:
            # Its terminal was closed (EIO) or its pipe's reader left (EPIPE) while it wrote: nobody reads
            # the address. Not "cannot serve the demo": a hang-up stops it in order, as Ctrl+C does.
            pass
        if browser:
            import threading
            import webbrowser

            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    # Ctrl+C, SIGTERM and SIGHUP (its terminal closed) all stop it the same way, and the folder goes:
    # a signal while the folder is made or removed is not a KeyboardInterrupt there (see StopSignals).
    with interrupt_on_stop_signals() as signals:
        try:
            with demo_folder() as folder, asyncio.Runner() as runner:
                try:
                    # The event loop is made before a stop signal may interrupt: one cut short while it was
                    # being made printed a traceback from its __del__ (its repr read a field not yet set).
                    runner.get_loop()
                    signals.arm()
                    runner.run(serve(folder, port=port, language=language, ready=ready))
                except OSError as exc:
                    reason = exc.strerror or type(exc).__name__
                    print(
                        f"rehab-bot: cannot serve the demo on 127.0.0.1:{port} ({reason}); try --port 0",
                        file=sys.stderr,
                    )
                    return 1
                finally:
                    signals.disarm()
        except KeyboardInterrupt:
            pass  # stopped, its folder removed
    return 0


# Test and bench hook: `rehab-bot run` paces on this shared scaled clock
# (rehab_bot.clock.ScaledTime.shared(), "SCALE@ORIGIN") instead of real time, so
# that several bot processes and the tests' fake Bot API enforce Telegram's
# limits in one scaled time (tests/e2e/test_processes.py). Never set in production.
PACE_CLOCK_ENV = "REHAB_BOT_TEST_PACE_CLOCK"


def cmd_run(config: Config, *, receive_updates: bool) -> int:
    """Run the bot until stopped."""
    from rehab_bot.bot.app import TokenRejected, build_application, run
    from rehab_bot.db import is_sqlite
    from rehab_bot.receiver import ReceiverBusy

    if not receive_updates and is_sqlite(config.database.url):
        raise ConfigError(
            "database.url",
            "is SQLite",
            "--no-updates processes share the queue; use PostgreSQL for more than one process",
        )
    pacing: dict[str, Any] = {}
    shared_clock = os.environ.get(PACE_CLOCK_ENV)
    if shared_clock:
        # A test and bench hook, never set in production: see PACE_CLOCK_ENV.
        from rehab_bot.clock import ScaledTime

        try:
            pace = ScaledTime.from_shared(shared_clock)
        except ValueError as exc:
            raise ConfigError(PACE_CLOCK_ENV, str(exc), "unset it: it is a test hook") from exc
        logging.getLogger(__name__).warning(
            "%s is set: Telegram's pacing runs %g times as fast as real time (a test hook)", PACE_CLOCK_ENV, pace.scale
        )
        pacing = {"monotonic": pace.monotonic, "sleep": pace.sleep}
    try:
        run(build_application(config, receive_updates=receive_updates, **pacing))
    except ReceiverBusy as exc:
        print(f"rehab-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except TokenRejected as exc:
        raise ConfigError(
            "telegram.token",
            f"was rejected by the Bot API at {exc} (401 Unauthorized)",
            "copy it again from @BotFather (a revoked token must be replaced) into REHAB_BOT_TELEGRAM_TOKEN",
        ) from exc
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


def cmd_db_backup(config: Config, target: Path, *, force: bool = False) -> int:
    """Back up SQLite with the online backup API; refuse to overwrite without --force."""
    from rehab_bot.db import backup_sqlite, is_sqlite, sqlite_path

    source = sqlite_path(config.database.url) if is_sqlite(config.database.url) else None
    if source is None:
        raise ConfigError("database.url", "is not a SQLite file", "back up PostgreSQL with pg_dump (see README)")
    if not source.exists():
        raise ConfigError(
            "database.url", f"names {source}, which does not exist yet", "run the bot or `rehab-bot db upgrade` first"
        )
    if target.is_dir():
        print(f"rehab-bot: {target} is a folder; name the backup file, e.g. {target / 'rehab-bot.db'}", file=sys.stderr)
        return 1
    if _is_the_database(target, source):
        print(
            f"rehab-bot: {target} is the database itself (or one of its files); name another file for the backup",
            file=sys.stderr,
        )
        return 1
    if not force and (kept := kept_unless_forced([target], "path")):
        print(f"rehab-bot: {kept}", file=sys.stderr)
        return 1
    # The copy is made beside the target and put in its place only when complete,
    # so a failed backup leaves an earlier one (overwritten with --force) as it was.
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with progress_bar(desc="backup", unit="page") as bar:

            def advance(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            backup_sqlite(source, partial, progress=advance)
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        print(f"rehab-bot: cannot write the backup to {target}: {reason}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    print(f"backed up {source} to {target}")
    return 0


def _is_the_database(target: Path, source: Path) -> bool:
    """True when target is the SQLite file (or its -wal, -shm or -journal), by any name or link."""
    own = [source, *(source.with_name(source.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]
    resolved = target.resolve()
    for path in own:
        if resolved == path.resolve():
            return True
        try:
            if target.exists() and path.exists() and os.path.samefile(target, path):
                return True
        except OSError:
            continue
    return False


def cmd_content_check(directory: Path | None) -> int:
    """Validate content; print file:line errors; 1 if any."""
    from rehab_bot.content import ContentError, load_content
    from rehab_bot.i18n import tn

    if directory is not None and not directory.is_dir():
        why = "is not a folder" if directory.exists() else "does not exist"
        print(f"rehab-bot: {directory} {why}", file=sys.stderr)
        return 1
    try:
        content = load_content(directory)
    except ContentError as exc:
        for line in exc.errors:
            print(line)
        print(tn("en", "{n} problem found", "{n} problems found", len(exc.errors)), file=sys.stderr)
        return 1
    print("content OK: " + content.counted("en"))
    return 0


def cmd_content_list(directory: Path | None) -> int:
    """Print each loaded item with its source."""
    from rehab_bot.content import ContentError, load_content
    from rehab_bot.i18n import tn

    try:
        content = load_content(directory)
    except ContentError as exc:
        # Errors, not the listing: on stderr, so `content list > list.txt` holds only a listing.
        for line in exc.errors:
            print(line, file=sys.stderr)
        found = tn("en", "{n} problem", "{n} problems", len(exc.errors))
        print(f"rehab-bot: {found} in the content files; nothing listed", file=sys.stderr)
        return 1
    for exercise in content.exercises.values():
        print(f"exercise   {exercise.id:<28} {exercise.name.get('en', '')[:40]:<40} {exercise.source}")
    for programme in content.programmes.values():
        flag = " (example)" if programme.example else ""
        print(f"programme  {programme.id:<28} {programme.name.get('en', '')[:40]:<40} {programme.source}{flag}")
    for text in content.texts.values():
        print(f"text       {text.id:<28} {'':<40} {text.source}")
    course = content.course
    course_flag = " (example)" if course is not None and course.example else ""
    for lesson in course.lessons if course is not None else ():
        title = f"day {lesson.day}: {lesson.title.get('en', '')}"[:40]
        print(f"lesson     {lesson.id:<28} {title:<40} {lesson.source}{course_flag}")
    return 0


def cmd_invite_create(config: Config, args: argparse.Namespace) -> int:
    """Create a patient and their invite; print the link, write the QR code."""
    import re

    from rehab_bot import invite
    from rehab_bot.clock import SystemClock
    from rehab_bot.content import load_content
    from rehab_bot.db import in_session
    from rehab_bot.files import Staged, stage
    from rehab_bot.schedule import local_date

    clinic = config.clinic
    try:
        # The chat's rules (rehab_bot.invite); the CLI takes ISO dates only.
        surgery_date = invite.parse_surgery_date(
            args.surgery_date, local_date(clinic, SystemClock().now()), dotted=False
        )
    except invite.InviteError as exc:
        print(f"rehab-bot: --surgery-date: {exc}", file=sys.stderr)
        return 1
    if not _check_invite_alias(args):
        return 1
    if not args.bot_username and not config.telegram.token:
        raise ConfigError(
            "telegram.token",
            "is missing",
            "the link needs the bot's username: set the token (REHAB_BOT_TELEGRAM_TOKEN) so it can be asked "
            "from Telegram, or pass --bot-username",
        )
    content = load_content(config.content.dir)
    qr_path: Path = args.qr or Path(f"invite-{re.sub(r'[^A-Za-z0-9_.-]+', '_', args.alias.strip())}.png")
    if qr_path.is_symlink():
        # A link is written through: to a file it points at elsewhere, or a missing one it would create.
        print(f"rehab-bot: --qr {qr_path} is a symbolic link; name the file itself", file=sys.stderr)
        return 1
    if qr_path.is_dir():
        print(
            f"rehab-bot: --qr {qr_path} is a folder; name the PNG file, e.g. {qr_path / 'invite.png'}", file=sys.stderr
        )
        return 1
    if not args.force and (kept := kept_unless_forced([qr_path], "--qr")):
        print(f"rehab-bot: {kept}", file=sys.stderr)  # another patient's printed invitation, perhaps
        return 1

    staged: list[Staged] = []

    async def go(session: AsyncSession) -> tuple[invite.PatientInvite, str, str]:
        therapist, by_default = await invite.responsible_staff(session, args.therapist)
        made = await invite.create_patient_invite(
            session,
            content,
            alias=args.alias,
            surgery_date=surgery_date,
            programme_id=args.programme,
            surgery_type=args.surgery_type,
            therapist_id=therapist.id,
            now=SystemClock().now(),
            valid_days=clinic.invite_valid_days,
            timezone=clinic.timezone,
            language=clinic.language,
            actor="cli",
        )
        # Only now ask Telegram: bad input has been reported without a network call.
        if args.bot_username:
            username = args.bot_username
        else:
            from rehab_bot.bot.app import bot_username

            username = await bot_username(config)
        link = invite.deep_link(username, made.invite.code)
        try:
            caption = invite.qr_caption(
                alias=made.patient.alias,
                clinic=clinic.name,
                expires_at=made.invite.expires_at,
                timezone=clinic.timezone,
                language=clinic.language,
            )
            # Staged under a hidden name (its folders made 0700, as export makes --out's): moved into place
            # only after the invitation is committed, removed if the commit fails, so no QR code on disk
            # is for an invitation that does not exist.
            png = invite.qr_png(link, caption)
            staged.append(await asyncio.to_thread(stage, qr_path.parent, {qr_path.name: png}))
        except OSError as exc:
            raise invite.InviteError("qr", f"cannot write the QR code to {qr_path}: {exc.strerror}") from exc
        return made, link, therapist.name + (" (the only one, by default)" if by_default else "")

    try:
        made, link, therapist_name = asyncio.run(
            in_session(config.database.url, config.database.pg_schema, go, create=True)
        )
    except BaseException as exc:
        for qr in staged:
            qr.discard()  # the invitation was not committed: no QR code for it
        if isinstance(exc, invite.InviteError):
            print(f"rehab-bot: {exc}", file=sys.stderr)
            return 1
        raise
    moved = True
    try:
        for qr in staged:
            qr.publish()
    except OSError as exc:
        for qr in staged:
            qr.discard()
        moved = False
        print(
            f"rehab-bot: the invitation was created, but the QR code could not be put at {qr_path}: {exc.strerror}; "
            "the link below works all the same",
            file=sys.stderr,
        )
    from rehab_bot.schedule import zone

    expires = made.invite.expires_at.astimezone(zone(clinic.timezone)).strftime("%Y-%m-%d %H:%M")
    print(
        f"Invitation for {made.patient.alias}: {made.patient.surgery_type} surgery on {surgery_date.isoformat()}, "
        f"programme {made.programme.id}, therapist {therapist_name}."
    )
    print(f"Link (works once, until {expires} {clinic.timezone}):")
    print(link)
    if moved:
        print(f"QR code for printing: {qr_path}")
    if made.programme.example:
        from rehab_bot.content import localize

        print()
        print(f"NOTE for the clinic: programme {made.programme.id!r} is an example.")
        print(" ".join(localize(made.programme.review_note, clinic.language).split()))
    return 0


def _check_invite_alias(args: argparse.Namespace) -> bool:
    """The chat's /invite alias rule (invite.validate_alias); a warning when it looks like a name."""
    from rehab_bot import invite

    try:
        args.alias = invite.validate_alias(args.alias)
    except invite.InviteError as exc:
        print(f"rehab-bot: --alias {args.alias!r}: {exc}", file=sys.stderr)
        return False
    if invite.alias_looks_like_name(args.alias):
        print(
            f"rehab-bot: warning: the alias {args.alias!r} looks like a real name (two capitalised words); "
            "aliases end up in exports, so use a pseudonym such as LWS-0412",
            file=sys.stderr,
        )
    return True


def cmd_check_config(config: Config) -> int:
    """Print a summary of the effective configuration, secrets masked."""
    tg = config.telegram
    print(f"config file: {config.source or '(none; defaults and environment only)'}")
    print(f"clinic: {config.clinic.name} ({config.clinic.timezone}, {config.clinic.language})")
    print(f"telegram: mode={tg.mode} base_url={tg.base_url} token={scrub(tg.token)}")
    url = config.database.url
    from rehab_bot.db import is_sqlite, masked_url, sqlite_path

    print(f"database: {masked_url(url)}")

    path = sqlite_path(url) if is_sqlite(url) else None
    if path is not None and not path.parent.exists():
        print(f"database folder {path.parent} does not exist yet; the bot creates it (mode 0700) at start")
    print(f"delivery: {config.delivery.effective_rate:g} msg/s, grace {config.delivery.grace_period_minutes} min")
    print(f"http: {config.http.listen or 'disabled'}")
    for warning in staff_warnings(config):
        print(warning, file=sys.stderr)  # results on stdout, warnings on stderr (README)
    if clinic_name_is_placeholder(config.clinic.name):
        print(
            f"rehab-bot: warning: clinic.name is {config.clinic.name!r}, not your clinic's name; patients read it "
            "in greetings and consent: set [clinic] name (or REHAB_BOT_CLINIC_NAME)",
            file=sys.stderr,
        )
    print("configuration OK")
    return 0


def staff_warnings(config: Config) -> list[str]:
    """Warnings about who receives alerts: none when an active admin exists (read-only; migrates nothing)."""
    from sqlalchemy.exc import SQLAlchemyError

    from rehab_bot import alert
    from rehab_bot.db import Database, is_sqlite, sqlite_path

    url = config.database.url
    path = sqlite_path(url) if is_sqlite(url) else None
    if path is not None and not path.exists():
        return [NO_ADMIN_WARNING + " (the database does not exist yet)"]

    async def go() -> alert.Reach:
        db = Database(url, pg_schema=config.database.pg_schema or None)
        try:
            async with db.session() as session:
                return await alert.reach(session, config.clinic)
        finally:
            await db.dispose()

    try:
        reach = asyncio.run(go())
    except (SQLAlchemyError, OSError) as exc:
        return [
            f"WARNING: could not read the staff from the database ({type(exc).__name__}), so whether an active "
            "admin receives alerts was not checked. Check that the database is reachable: rehab-bot db upgrade"
        ]
    if reach.admins:
        return []
    warnings = [NO_ADMIN_WARNING]
    if not reach.anyone:
        warnings.append("WARNING: alerts cannot reach anyone (no active staff member and no [clinic] alert_chat_id).")
    return warnings


# --- clinic staff, exports and the audit log ------------------------------------


def _add_clinic_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`staff add|list|remove`, `export` and `audit`."""
    staff = sub.add_parser(
        "staff",
        help="clinic staff: admins and therapists",
        description="Clinic staff: admins and therapists, who get the staff commands in Telegram.",
    )
    staff_sub = staff.add_subparsers(dest="staff_command", metavar="ACTION", required=True)
    add = staff_sub.add_parser(
        "add",
        help="add (or update) a staff member",
        description="Add a staff member, or change the role and name of an existing one and reactivate them. "
        "Use it to bootstrap the first admin; admins can then invite staff from Telegram with /staffinvite. "
        "The staff command menu appears in their chat at the bot's next start, or within seconds while it "
        "runs. Input it refuses exits with status 1.",
    )
    add.add_argument(
        "--telegram-id",
        type=int,
        required=True,
        metavar="N",
        help="the person's numeric Telegram user id (they can see it with a bot such as @userinfobot)",
    )
    add.add_argument("--role", required=True, choices=("admin", "therapist"), help="admin or therapist")
    add.add_argument("--name", required=True, help='the name colleagues see, e.g. "Dr Ada Weber"')
    add.add_argument(
        "--timezone",
        metavar="TZ",
        help="IANA timezone of their weekly digest and of the times the bot and the dashboard show them "
        "(default: the [clinic] timezone for a new member; an existing member keeps theirs)",
    )
    staff_sub.add_parser(
        "list", help="list staff members", description="List staff: Telegram id, role, name, timezone, active."
    )
    remove = staff_sub.add_parser(
        "remove",
        help="deactivate a staff member",
        description="Deactivate a staff member: their staff commands stop working at once and their menu "
        "goes. Their patients move to the colleague named with --reassign-to, or else to an admin, who is told "
        "in Telegram; with nobody to take them the removal is refused, so no patient is left without a "
        "responsible person. An unknown id, or a member already removed, exits with status 1.",
    )
    remove.add_argument("--telegram-id", type=int, required=True, metavar="N", help="their Telegram user id")
    remove.add_argument(
        "--reassign-to",
        metavar="TELEGRAM_ID_OR_NAME",
        help="the active colleague who takes over their patients (default: an admin)",
    )

    export = sub.add_parser(
        "export",
        help="export patient data (CSV or FHIR R4)",
        description="Export pseudonymous patient data (aliases only, never Telegram ids). csv: a folder with one "
        "file per entity (patients, sessions, checkins, answers, notes, alerts, lessons, messages, caregivers); "
        "docs/EXPORTS.md documents the columns. fhir: one JSON file, a FHIR R4 Bundle of type collection. Every "
        "export is recorded in the audit log before its files are put in place; when the database refuses the "
        "record, nothing is written. "
        "An unknown patient or an unwritable --out exits with status 1.",
    )
    export.add_argument("--format", required=True, choices=("csv", "fhir"), help="csv or fhir")
    export.add_argument("--patient", metavar="ALIAS", help="only this patient (default: every patient)")
    export.add_argument(
        "--out", required=True, type=Path, metavar="PATH", help="a folder for csv, a file (.json) for fhir"
    )
    export.add_argument(
        "--force",
        action="store_true",
        help="overwrite an existing export at --out (default: refuse with status 1)",
    )

    audit = sub.add_parser(
        "audit",
        help="list the audit log",
        description="List the audit log, oldest first, one record per line after a header row: time (UTC), who, "
        "action, patient alias, detail; tab-separated (default), CSV, or a JSON list of objects with those keys. "
        "Every staff view, export and change is recorded there, from Telegram (telegram:<id>), the web app and "
        "Mini App (web:<id>) and this command line (cli:<user>@<host>, the operating-system user). A bad --since "
        "exits with status 1.",
    )
    audit.add_argument("--format", choices=("tsv", "csv", "json"), default="tsv", help="tsv (default), csv or json")
    audit.add_argument(
        "--since", metavar="DATE", help="only records from this UTC date (YYYY-MM-DD) or instant (YYYY-MM-DDTHH:MM)"
    )
    audit.add_argument("--patient", metavar="ALIAS", help="only records about this patient")


def cmd_clinic(config: Config, args: argparse.Namespace) -> int:
    """Run `staff`, `export` or `audit` against the database; 1 for bad input."""
    from rehab_bot.access import StaffError
    from rehab_bot.db import in_session
    from rehab_bot.export import ExportError

    since = None
    if args.command == "audit" and args.since:
        since = _parse_since(args.since)
        if since is None:
            print(
                f"rehab-bot: --since {args.since!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM", file=sys.stderr
            )
            return 1

    async def go(session: AsyncSession) -> tuple[list[str], list[str]]:
        if args.command == "staff":
            return await _staff_command(session, config, args)
        if args.command == "export":
            return await _export_command(session, config, args), []
        return await _audit_command(session, args, since), []

    try:
        creates = args.command == "staff" and args.staff_command == "add"
        lines, warnings = asyncio.run(in_session(config.database.url, config.database.pg_schema, go, create=creates))
    except (StaffError, ExportError) as exc:
        print(f"rehab-bot: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"rehab-bot: cannot write {exc.filename or getattr(args, 'out', '')}: {exc.strerror}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    for warning in warnings:  # after the change is committed: it is about the staff as they now are
        print(warning, file=sys.stderr)
    return 0


def _parse_since(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.strip())
        # In UTC, as the log is kept: 0001-01-01T00:00+14:00 is before the first day Python knows.
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


async def _staff_command(
    session: AsyncSession, config: Config, args: argparse.Namespace
) -> tuple[list[str], list[str]]:
    """(results for stdout, warnings for stderr)."""
    from rehab_bot import staff as staff_core
    from rehab_bot.clock import SystemClock

    now = SystemClock().now()
    if args.staff_command == "add":
        member, created = await staff_core.add_staff(
            session,
            telegram_id=args.telegram_id,
            role=args.role,
            name=args.name,
            timezone=args.timezone,
            default_timezone=config.clinic.timezone,
            now=now,
        )
        verb = "added" if created else "updated"
        line = f"{verb} {member.role} {member.name} (Telegram id {member.telegram_id}, timezone {member.timezone})"
        # A therapist added before any admin, or the last admin made a therapist: said as `remove` says it.
        return [line], [] if await staff_core.admins(session) else [NO_ADMIN_WARNING]
    if args.staff_command == "remove":
        removal = await staff_core.remove_staff(
            session, telegram_id=args.telegram_id, now=now, reassign_to=args.reassign_to
        )
        member = removal.staff
        lines = [f"deactivated {member.role} {member.name} (Telegram id {member.telegram_id})"]
        if removal.patients and removal.new_owner is not None:
            lines.append(
                f"{len(removal.patients)} patient(s) moved to {removal.new_owner.name} "
                f"(Telegram id {removal.new_owner.telegram_id}), who is told in Telegram"
            )
        return lines, [] if await staff_core.admins(session) else [NO_ADMIN_WARNING]
    members = await staff_core.staff_members(session, include_inactive=True)
    if not members:
        return [
            "no staff yet; add the first admin with: rehab-bot staff add --telegram-id N --role admin --name NAME"
        ], []
    return [
        f"{m.telegram_id}\t{m.role}\t{m.name}\t{m.timezone}\t{'active' if m.active else 'inactive'}" for m in members
    ], []


async def _export_command(session: AsyncSession, config: Config, args: argparse.Namespace) -> list[str]:
    from rehab_bot import audit, export, invite
    from rehab_bot.clock import SystemClock
    from rehab_bot.content import load_content

    now = SystemClock().now()
    patient = None
    if args.patient:
        patient = await invite.patient_by_alias(session, args.patient)
        if patient is None:
            raise export.ExportError(f"no patient has the alias {args.patient!r}")
    out: Path = args.out
    if not args.force and await asyncio.to_thread(_holds_export, out, args.format):
        raise export.ExportError(
            f"{out} already {'holds the files of an export' if args.format == 'csv' else 'exists'}; "
            "pass --force to overwrite it, or choose another --out"
        )
    with progress_bar(desc=f"export {args.format}", unit="step", total=2 if args.format == "csv" else 3) as bar:
        content = load_content(config.content.dir) if args.format != "csv" else None
        data = await export.collect(
            session, now, patient=patient, identifier_system=config.export.identifier_system, content=content
        )
        bar.update()
        # Nothing leaves without an audit record: the files are staged under temporary names, the
        # record is committed, and only then are they moved into place (removed if the commit fails).
        if args.format == "csv" or content is None:
            staged = await asyncio.to_thread(export.stage_csv, data, out)
            summary = ""
        else:
            bundle = export.fhir_bundle(data, content, now)
            bar.update()
            staged = await asyncio.to_thread(export.stage_fhir, bundle, out)
            summary = f" ({len(bundle['entry'])} resources)"
        try:
            audit.record(
                session,
                action=audit.EXPORT,
                now=now,
                actor=audit.CLI_ACTOR,
                patient_id=patient.id if patient is not None else None,
                detail=f"{args.format} {'patient' if patient is not None else 'all'} patients={len(data.patients)}",
            )
            await session.commit()
        except BaseException:
            staged.discard()  # at once, also when interrupted: a few unlinks
            raise
        paths = await asyncio.to_thread(staged.publish)
        written = [f"wrote {path}{summary}" for path in paths]
        bar.update()
    return [*written, f"{len(data.patients)} patient(s) exported; the export is recorded in the audit log"]


def _holds_export(out: Path, fmt: str) -> bool:
    """True when writing an export to out would overwrite a file."""
    from rehab_bot import export

    if fmt == "csv":
        return out.is_dir() and any((out / name).is_file() for name in export.TABLES)
    return out.is_file()


async def _audit_command(session: AsyncSession, args: argparse.Namespace, since: datetime | None) -> list[str]:
    from rehab_bot import audit, invite
    from rehab_bot.access import StaffError

    patient_id = None
    if args.patient:
        patient = await invite.patient_by_alias(session, args.patient)
        if patient is None:
            raise StaffError(f"no patient has the alias {args.patient!r}")
        patient_id = patient.id
    entries = await audit.entries(session, since=since, patient_id=patient_id)
    if not entries:
        print("no audit records" + (f" since {since.isoformat()}" if since else ""), file=sys.stderr)
    rows = [audit.entry_fields(entry) for entry in entries]
    if args.format == "json":
        import json

        return [json.dumps([dict(zip(audit.COLUMNS, row, strict=True)) for row in rows], indent=2, ensure_ascii=False)]
    if args.format == "csv":
        import csv
        import io

        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([audit.COLUMNS, *rows])
        return buffer.getvalue().splitlines()
    return ["\t".join(row) for row in [audit.COLUMNS, *rows]]


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
