"""Logging that never leaks the bot token.

httpx logs every request URL at INFO, and Bot API URLs carry the token
(``/bot123:ABC/sendMessage``), so httpx is held at WARNING. That is not enough
on its own: exception messages and tracebacks from any library can contain
the URL too, so a filter on every handler rewrites ``bot<digits>:<secret>``
in the message, its arguments and the formatted exception text.

Health data is kept out of logs by convention: log ids (patient id,
delivery id), never answers, aliases, names or message text, and never a
Telegram id. Libraries do not know that convention: at DEBUG,
python-telegram-bot logs every request's parameters and every update (free
text, names, usernames, phone numbers, the webhook secret), and aiosqlite
logs statements with their parameters. So ``level = "DEBUG"`` applies to
rehab-bot's own loggers only; every other library stays at INFO at most, and
the chatty ones at WARNING (see LIBRARY_LEVELS). Exact secrets registered
with add_secret (the webhook secret) are scrubbed from every record too.
A failed SQL statement's traceback would carry its bound values: the engines
hide them (db.create_engine, unless [database] echo is on), and PostgreSQL's
DETAIL line (the failing row or key) is scrubbed here.
"""

from __future__ import annotations

import logging
import re
import sys

TOKEN_RE = re.compile(r"(?:bot)?\d{3,}:[A-Za-z0-9_-]{20,}")
REDACTED = "bot<redacted>"
# PostgreSQL's DETAIL line of an error repeats the values of the row or key at
# fault ("Failing row contains (1, 1, <a note's text>, ...)", "Key
# (telegram_id)=(...) already exists"); asyncpg puts it into the exception's
# message, so it would reach every logged traceback.
PG_DETAIL_RE = re.compile(r"^([ \t]*DETAIL:).*$", re.MULTILINE)
PG_DETAIL_HIDDEN = r"\1  <hidden: it may hold a row's values>"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


# Libraries held at these levels whatever [logging] level says (their DEBUG
# and, for some, INFO lines carry request parameters, updates or SQL).
LIBRARY_LEVELS: dict[str, int] = {
    "telegram": logging.INFO,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "aiohttp": logging.WARNING,
    "aiosqlite": logging.WARNING,
    "asyncpg": logging.WARNING,
    "sqlalchemy": logging.WARNING,  # [database] echo still prints SQL: it bypasses logger levels
    "alembic": logging.WARNING,
    "apscheduler": logging.WARNING,
    "PIL": logging.INFO,
    "asyncio": logging.INFO,
}
OWN_LOGGER = "rehab_bot"
MIN_SECRET_LENGTH = 8
_secrets: set[str] = set()


def add_secret(value: str) -> None:
    """Scrub this exact string (e.g. the webhook secret_token) from every log record from now on."""
    if len(value) >= MIN_SECRET_LENGTH:
        _secrets.add(value)


def scrub(text: str) -> str:
    """Replace anything shaped like a bot token, every registered secret and PostgreSQL's DETAIL lines."""
    text = TOKEN_RE.sub(REDACTED, text)
    text = PG_DETAIL_RE.sub(PG_DETAIL_HIDDEN, text)
    for secret in _secrets:
        text = text.replace(secret, "<redacted>")
    return text


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Rewrite a record in place so that no token survives, exception text included."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a bad %-format: keep the raw parts, scrubbed
        message = f"{record.msg} {record.args}"
    record.msg = scrub(message)
    record.args = None
    if record.exc_info:
        # Format the traceback now, scrub it, and cache it where Formatter
        # looks first, so the raw text is never rendered by any handler.
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    return record


class TokenScrubFilter(logging.Filter):
    """A handler filter that scrubs every record passing through it."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


_base_factory = logging.getLogRecordFactory()


def _scrubbing_factory(*args: object, **kwargs: object) -> logging.LogRecord:
    return scrub_record(_base_factory(*args, **kwargs))


def install_record_scrubber() -> None:
    """Scrub at record creation, so handlers we do not own (pytest's, a
    library's) never see a token either. Idempotent."""
    if logging.getLogRecordFactory() is not _scrubbing_factory:
        logging.setLogRecordFactory(_scrubbing_factory)


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger: readable lines to stderr, tokens scrubbed."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_rehab_bot", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(TokenScrubFilter())
    handler._rehab_bot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    wanted = logging.getLevelName(level.upper())
    # DEBUG is for rehab-bot's own loggers; other libraries never go below INFO.
    root.setLevel(max(wanted, logging.INFO))
    logging.getLogger(OWN_LOGGER).setLevel(wanted)
    install_record_scrubber()
    quiet_noisy_loggers()


class _NoInvalidJsonDump(logging.Filter):
    """python-telegram-bot logs an answer that is not JSON (a wrong [telegram] base_url's web page) at
    ERROR, with the page and a traceback, then raises: the caller reports that in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Can not load invalid JSON data")


_NO_INVALID_JSON_DUMP = _NoInvalidJsonDump()


def quiet_noisy_loggers() -> None:
    """Hold back libraries that log request URLs (the token), updates or SQL parameters (health data)."""
    for name, level in LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger("telegram.request.BaseRequest").addFilter(_NO_INVALID_JSON_DUMP)  # idempotent
    # The dispatch job repeats every second while one tick may drain a long
    # burst; APScheduler then warns on every skipped run. That is the intended
    # behaviour (one tick at a time), so only its errors are worth a line.
    logging.getLogger("apscheduler.executors").setLevel(logging.ERROR)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
