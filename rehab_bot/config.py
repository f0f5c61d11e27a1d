"""Configuration: one TOML file, overridable key by key from the environment.

Every key ``section.key`` in config.toml can also come from the environment
variable ``REHAB_BOT_SECTION_KEY`` (for example ``REHAB_BOT_TELEGRAM_TOKEN``),
or from a file named by ``REHAB_BOT_SECTION_KEY_FILE`` (Docker secrets mount
them under /run/secrets). The environment wins over the file, so a clinic can
keep secrets out of config.toml entirely.

Bad configuration fails fast with a ConfigError that names the key and the
fix; the CLI turns it into exit code 2 without a traceback.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rehab_bot.i18n import SUPPORTED_LANGUAGES
from rehab_bot.office_hours import OfficeHours, parse_office_hours
from rehab_bot.schedule import ScheduleError, parse_hhmm, zone
from rehab_bot.typed import number

ENV_PREFIX = "REHAB_BOT_"
DEFAULT_CONFIG_PATH = Path("config.toml")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/rehab-bot.db"
LANGUAGES = SUPPORTED_LANGUAGES  # the languages patients can choose (one list, in i18n)

# BotFather tokens look like 123456789:AA...; the secret part is 35 chars today
# but Telegram has never promised a length, so only the shape is checked.
_TOKEN_RE = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{20,}$")
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class ConfigError(Exception):
    """A configuration value is missing or wrong; the message names key and fix."""

    def __init__(self, key: str, problem: str, fix: str = "") -> None:
        self.key = key
        message = f"{key} {problem}"
        if fix:
            message += f": {fix}"
        super().__init__(message)


# Clinic names that are not a clinic's own: empty, the built-in default and
# config.example.toml's. Patients would read them in every greeting.
PLACEHOLDER_CLINIC_NAMES = ("", "our clinic", "example spine clinic")


def toml_fix(message: str) -> str:
    """What to do about a tomllib error: it names a line, or the end of the file (a string or list left open)."""
    if "(at line " in message:
        return "fix the line named"
    return "the file ends in the middle of a value or table name: check its quotes and brackets"


def clinic_name_is_placeholder(name: str) -> bool:
    """True when [clinic] name was left empty, at the default, or at the example's value."""
    return " ".join(name.split()).casefold() in PLACEHOLDER_CLINIC_NAMES


# The clinic's built-in emergency text, in every language patients can choose.
DEFAULT_EMERGENCY_TEXT = {
    "en": (
        "If this is an emergency, call 112 (or your local emergency number) now, "
        "or go to the nearest emergency department."
    ),
    "de": (
        "Wenn es ein Notfall ist, rufen Sie jetzt die 112 (oder Ihre örtliche Notrufnummer) an "
        "oder gehen Sie in die nächste Notaufnahme."
    ),
}
# [clinic] keys patients read: a string (every language) or a table per language.
LOCALIZED_CLINIC_KEYS = ("emergency_text", "phone_hours")


@dataclass(frozen=True)
class ClinicConfig:
    name: str = "Our clinic"
    timezone: str = "Europe/Berlin"
    language: str = "en"
    # {language: text}; validate() requires every language of LANGUAGES.
    emergency_text: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_EMERGENCY_TEXT))
    phone: str = ""
    # {language: text}, like "Mon-Fri 8:00-16:00"; {} = not shown.
    phone_hours: dict[str, str] = field(default_factory=dict)
    alert_chat_id: int | None = None
    invite_valid_days: int = 14
    # Per weekday in the clinic's timezone; see rehab_bot/office_hours.py. Empty: not configured.
    office_hours: OfficeHours = field(default_factory=OfficeHours)

    def text(self, key: str, lang: str) -> str:
        """A patient-facing clinic text (emergency_text, phone_hours) in lang; "" when not set."""
        value: dict[str, str] = getattr(self, key)
        return value.get(lang, "")


@dataclass(frozen=True)
class TelegramConfig:
    token: str = ""
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    mode: str = "polling"
    webhook_url: str = ""
    webhook_listen: str = "0.0.0.0"  # noqa: S104 - a webhook must listen on the container's interface
    webhook_port: int = 8443
    webhook_path: str = "telegram"
    secret_token: str = ""
    http_client: str = "aiohttp"
    request_timeout: float = 10.0


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = DEFAULT_DATABASE_URL
    pg_schema: str = ""
    echo: bool = False


AUTO_WINDOW_SECONDS = 0.4
AUTO_WINDOW_MIN = 30


@dataclass(frozen=True)
class DeliveryConfig:
    global_rate: float = 30.0
    per_chat_interval: float = 1.0
    paid_broadcast: bool = False
    paid_broadcast_rate: float = 1000.0
    poll_interval: float = 1.0
    batch_size: int = 500
    # None: 0.4 s of sending at the configured rate, at least 30 (see window).
    send_window: int | None = None
    grace_period_minutes: int = 120
    max_attempts: int = 5
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 300.0
    sending_lease_seconds: float = 300.0
    quiet_hours_start: time | None = time(21, 30)
    quiet_hours_end: time | None = time(7, 30)
    nudge_after_hours: float = 3.0
    # Tapering (rehab_bot/tapering.py): after this many weeks with adherence at or above
    # taper_adherence, session nudges stop and reminders thin out as the phase allows; 0 = never.
    taper_after_weeks: int = 0
    taper_adherence: float = 0.8

    @property
    def effective_rate(self) -> float:
        """Messages per second across all chats."""
        return self.paid_broadcast_rate if self.paid_broadcast else self.global_rate

    @property
    def window(self) -> int:
        """Deliveries claimed and in flight at once (rehab_bot.reminders): send_window when set, else
        AUTO_WINDOW_SECONDS of sending at the configured rate, at least AUTO_WINDOW_MIN: 30 on the
        free tier, 400 with paid broadcasts at 1,000 msg/s.

        Each window costs two transactions whatever its size, so at the paid rate a window of 30
        spent about a quarter of the bot's CPU per reminder on them (bench/, CPU per delivered
        reminder), and the claim and record of each half-window are round trips one after another,
        which capped one process's rate while the database was slow to answer (bench/RESULTS.md,
        issue 14); the bound on messages in doubt after a crash is 0.4 s of sending. At 0.2 s (200) one
        process sent 580-660 msg/s on a 2-core Xeon beside PostgreSQL and the fake server, at 0.4 s
        711-724, and a larger window added nothing more (728 at 800): the doubt is doubled for a tenth
        more throughput, and only with paid broadcasts (the free tier's window stays 30).
        """
        if self.send_window is not None:
            return self.send_window
        return max(AUTO_WINDOW_MIN, min(1000, round(self.effective_rate * AUTO_WINDOW_SECONDS)))


@dataclass(frozen=True)
class ContentConfig:
    dir: Path | None = None


@dataclass(frozen=True)
class LibraryConfig:
    # Photos, GIFs and videos uploaded to the exercise library (files 0600, folder 0700).
    media_dir: Path = Path("data/media")


@dataclass(frozen=True)
class HttpConfig:
    listen: str = ""

    @property
    def host_port(self) -> tuple[str, int] | None:
        """(host, port) for the health/metrics endpoint, or None when disabled."""
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return (host.strip("[]") or "127.0.0.1", int(port))


# Hosts that may use plain http for [web] public_url: the machine itself.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def host_is_loopback(host: str) -> bool:
    """This machine only; a host name is case-insensitive (RFC 3986 section 3.2.2)."""
    return host.strip("[]").lower() in LOOPBACK_HOSTS


def _scheme_and_host(url: str) -> tuple[str, str]:
    """The URL's scheme and host in lower case ("", "" when it is no URL): both are case-insensitive
    (RFC 3986 sections 3.1 and 3.2.2), so HTTPS://Rehab.Clinic.de is https too."""
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), (parts.hostname or "").lower()
    except ValueError:
        return "", ""


def url_is_https(url: str) -> bool:
    """An https address with a host. The one place that decides it."""
    scheme, host = _scheme_and_host(url)
    return scheme == "https" and bool(host)


def url_is_loopback_http(url: str) -> bool:
    """A plain http address on this machine only (127.0.0.1, localhost, ::1)."""
    scheme, host = _scheme_and_host(url)
    return scheme == "http" and host_is_loopback(host)


@dataclass(frozen=True)
class WebConfig:
    """The clinic's web app (dashboard and Mini App), served by the bot process: rehab_bot/web/."""

    # HOST:PORT to serve on; "" = no web app.
    listen: str = ""
    # The address staff and Telegram open, e.g. https://rehab.clinic.example (behind a TLS proxy).
    # "" = http://<listen> (loopback only).
    public_url: str = ""
    # The key of the session cookie and CSRF tokens (at least 32 characters). "" = read it from
    # secret_file, made there (random, mode 0600) on first start.
    secret: str = ""
    secret_file: Path = Path("data/web-secret")
    # A signed-in browser is signed out after this many minutes without a request.
    idle_minutes: int = 30
    # ... and this many hours after signing in, however active (a session is never kept alive for ever).
    session_hours: int = 12
    # Mini App sign-in: Telegram's initData older than this is refused (the Login Widget's data too).
    initdata_max_age_seconds: int = 3600
    # Staff may also sign in with the Telegram Login Widget on the signed-out page (rehab_bot/web/login_widget.py).
    # Needs public_url over https, linked to the bot with BotFather's /setdomain. Off by default.
    login_widget: bool = False

    @property
    def host_port(self) -> tuple[str, int] | None:
        """(host, port) to serve on, or None when the web app is off."""
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return (host.strip("[]") or "127.0.0.1", int(port))

    @property
    def https(self) -> bool:
        """Served to browsers over https (through the proxy): cookies are then Secure."""
        return url_is_https(self.public_url)


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"


WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class StaffConfig:
    escalation_minutes: int = 30
    # Urgent (severity "critical") alerts: minutes of office time before escalation.
    urgent_escalation_minutes: int = 240
    # The crisis question unanswered this long: a critical alert (redflag.check_unanswered_questions).
    crisis_question_minutes: int = 30
    digest_weekday: str = "monday"
    digest_time: time = time(8, 0)
    digest_low_adherence: float = 0.5
    digest_pain_rise: float = 2.0
    digest_no_response_days: int = 3

    @property
    def digest_weekday_index(self) -> int:
        """0 = Monday, as date.weekday() counts."""
        return WEEKDAY_NAMES.index(self.digest_weekday.lower())


@dataclass(frozen=True)
class ExportConfig:
    # Patient.identifier.system in FHIR exports: a URI the clinic owns.
    # "" = urn:uuid:<this installation's namespace> (see rehab_bot/installation.py).
    identifier_system: str = ""


# An identifier system must be a URI the clinic owns: an http(s) URL, an OID or a UUID.
_IDENTIFIER_SYSTEM_RE = re.compile(
    r"^(https?://[A-Za-z0-9.-]+(:\d+)?(/[\x21-\x7e]*)?"
    r"|urn:oid:[0-2](\.(0|[1-9]\d*))+"
    r"|urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)

# Reserved for examples (RFC 2606, RFC 6761): every clinic could copy them.
_EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net", "example", "localhost")


@dataclass(frozen=True)
class CareConfig:
    """Care-team messages and caregivers (rehab_bot/message.py, rehab_bot/caregiver.py)."""

    # Working hours (within [clinic] office_hours) a patient's message may wait
    # unanswered before it goes to the admins, once.
    escalate_after_hours: float = 8.0
    # Photos from patients: the largest accepted, and the folder they are kept in
    # (mode 0700, files 0600). "" = a "photos" folder next to the SQLite database,
    # or data/photos.
    photo_max_bytes: int = 10_000_000
    photo_dir: str = ""
    # How long a caregiver invitation link stays valid.
    caregiver_invite_hours: int = 72


@dataclass(frozen=True)
class InboundConfig:
    max_concurrent: int = 16
    user_limit: int = 20
    user_window_seconds: float = 10.0


@dataclass(frozen=True)
class PrivacyConfig:
    # False: the chat carries no health data (neutral reminders and prompts; answers in the Mini App).
    health_data_in_chat: bool = True


@dataclass(frozen=True)
class Config:
    clinic: ClinicConfig = field(default_factory=ClinicConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    content: ContentConfig = field(default_factory=ContentConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    web: WebConfig = field(default_factory=WebConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    staff: StaffConfig = field(default_factory=StaffConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    inbound: InboundConfig = field(default_factory=InboundConfig)
    library: LibraryConfig = field(default_factory=LibraryConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    care: CareConfig = field(default_factory=CareConfig)
    source: Path | None = None


# Every number in the configuration has bounds, declared here, one line per key
# ("section.key": Bound(lowest, highest)); validate() checks them all after
# the rules with a more specific message. tests/test_config.py fails when a
# numeric key has no line here, so a new int/float key must add one, and when
# config.example.toml does not name its bounds above the key.
@dataclass(frozen=True)
class Bound:
    """Inclusive bounds of a numeric key; above=True excludes ``low`` itself."""

    low: float
    high: float
    unit: str = ""
    above: bool = False
    hint: str = ""

    def admits(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return (value > self.low if self.above else value >= self.low) and value <= self.high

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        low = f"above {self.low:g}" if self.above else f"at least {self.low:g}"
        return f"must be {low} and at most {self.high:g}{unit}"


BOUNDS: dict[str, Bound] = {
    "clinic.alert_chat_id": Bound(-(2**53), 2**53, "(a Telegram chat id)"),
    "clinic.invite_valid_days": Bound(1, 365, "days"),
    "telegram.webhook_port": Bound(1, 65535),
    "telegram.request_timeout": Bound(0.5, 120, "seconds"),
    "delivery.global_rate": Bound(
        0, 30, "messages/s", above=True, hint="Telegram allows about 30 messages/s; see paid_broadcast"
    ),
    "delivery.per_chat_interval": Bound(1, 3600, "seconds", hint="Telegram allows one message/s per chat"),
    "delivery.paid_broadcast_rate": Bound(0, 1000, "messages/s", above=True),
    "delivery.poll_interval": Bound(0, 3600, "seconds", above=True),
    "delivery.batch_size": Bound(1, 10_000),
    "delivery.send_window": Bound(1, 1000),
    "delivery.grace_period_minutes": Bound(0, 10_080, "minutes", hint="10080 minutes is a week"),
    "delivery.max_attempts": Bound(1, 100),
    "delivery.backoff_base_seconds": Bound(0, 3600, "seconds", above=True),
    "delivery.backoff_max_seconds": Bound(0, 86_400, "seconds", above=True),
    "delivery.sending_lease_seconds": Bound(0, 86_400, "seconds", above=True),
    "delivery.nudge_after_hours": Bound(0, 72, "hours", above=True),
    "delivery.taper_after_weeks": Bound(0, 52, "weeks", hint="0 means nudges never stop"),
    "delivery.taper_adherence": Bound(0, 1, above=True, hint="a share, e.g. 0.8 for 80%"),
    "staff.escalation_minutes": Bound(1, 10_080, "minutes"),
    "staff.urgent_escalation_minutes": Bound(1, 10_080, "office minutes"),
    "staff.crisis_question_minutes": Bound(1, 1440, "minutes"),
    "inbound.max_concurrent": Bound(1, 256, "updates at once"),
    "inbound.user_limit": Bound(1, 10_000, "updates per window"),
    "inbound.user_window_seconds": Bound(1, 3600, "seconds"),
    "staff.digest_low_adherence": Bound(0, 1, above=True, hint="a share, e.g. 0.5 for 50%"),
    "staff.digest_pain_rise": Bound(0, 10, "NRS points", above=True),
    "staff.digest_no_response_days": Bound(1, 365, "days"),
    "web.idle_minutes": Bound(1, 1440, "minutes"),
    "web.session_hours": Bound(1, 168, "hours"),
    "web.initdata_max_age_seconds": Bound(10, 86_400, "seconds"),
    "care.escalate_after_hours": Bound(0, 168, "working hours", above=True),
    "care.photo_max_bytes": Bound(
        10_000, 20_000_000, "bytes", hint="bots can download files of up to 20 MB from Telegram"
    ),
    "care.caregiver_invite_hours": Bound(1, 720, "hours"),
}

# REHAB_BOT_* variables that are not configuration keys: the test suite's and
# the benchmarks' own settings, and the Chromium the browser tests and the
# screenshot scripts drive.
NON_CONFIG_ENV_PREFIXES = ("REHAB_BOT_TEST_", "REHAB_BOT_BENCH_")
NON_CONFIG_ENV_NAMES = frozenset({"REHAB_BOT_CHROMIUM"})


_SECTIONS: dict[str, type] = {
    "clinic": ClinicConfig,
    "telegram": TelegramConfig,
    "database": DatabaseConfig,
    "delivery": DeliveryConfig,
    "content": ContentConfig,
    "http": HttpConfig,
    "web": WebConfig,
    "logging": LoggingConfig,
    "staff": StaffConfig,
    "export": ExportConfig,
    "inbound": InboundConfig,
    "library": LibraryConfig,
    "privacy": PrivacyConfig,
    "care": CareConfig,
}


def _field_types(cls: type) -> dict[str, Any]:
    return {f.name: f.type for f in fields(cls)}


def _env_value(section: str, key: str, env: Mapping[str, str]) -> str | None:
    """The variable's value, or its _FILE's content; the _FILE wins when both are set.

    The Docker image sets REHAB_BOT_DATABASE_URL (SQLite in /data) for itself; compose.yaml
    names PostgreSQL with REHAB_BOT_DATABASE_URL_FILE, which must not lose to the image's default.
    """
    name = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
    file_name = env.get(f"{name}_FILE")
    if not file_name:
        return env.get(name)
    try:
        return Path(file_name).read_text(encoding="utf-8-sig").strip()  # a byte-order mark is no part of it
    except OSError as exc:
        raise ConfigError(
            f"{section}.{key}", f"cannot be read from {name}_FILE={file_name}", str(exc.strerror)
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{section}.{key}", f"cannot be read from {name}_FILE={file_name}", "the file is not UTF-8 text"
        ) from exc


def _coerce(key: str, type_name: str, value: Any) -> Any:
    """Convert a TOML or environment value to the field's declared type."""
    optional = "None" in type_name
    if value is None or (optional and value == ""):
        return None
    try:
        if type_name.startswith("bool"):
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError
        if type_name.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError  # int(3.7) would quietly make it 3
            return int(value)
        if type_name.startswith("float"):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if type_name.startswith("time"):
            return parse_hhmm(str(value))
        if type_name.startswith("OfficeHours"):
            try:
                return parse_office_hours(value)
            except (ValueError, AttributeError) as exc:
                raise ConfigError(
                    key, f"is not valid ({exc})", 'use e.g. { mon-fri = "08:00-17:00", sat = "09:00-12:00" }'
                ) from exc
        if type_name.startswith("Path"):
            return Path(str(value)).expanduser()
        if not isinstance(value, str):
            raise ValueError
        return value
    except (ValueError, TypeError, ScheduleError) as exc:
        kind = type_name.split(" ")[0]
        expected = {
            "time": "a time as HH:MM",
            "bool": "true or false",
            "int": "a whole number",
            "float": "a number",
            "str": 'text (a string in quotes: "...")',
        }.get(kind, f"a {kind}")
        raise ConfigError(key, f"has the value {value!r}", f"it must be {expected}") from exc


def _localized_value(section: str, key: str, raw: Any, env: Mapping[str, str]) -> dict[str, str] | None:
    """A per-language text: a string means every language, a table gives each language its own.

    ``REHAB_BOT_CLINIC_<KEY>`` (a string for every language) and
    ``REHAB_BOT_CLINIC_<KEY>_<LANG>`` (one language) override the file.
    None: not set anywhere (the built-in default applies).
    """
    name = f"{section}.{key}"
    result: dict[str, str] | None = None
    if isinstance(raw, str):
        result = {lang: raw for lang in LANGUAGES}
    elif isinstance(raw, dict):
        result = {}
        for lang, text in raw.items():
            if lang not in LANGUAGES:
                raise ConfigError(
                    f"{name}.{lang}", "is not a language patients can choose", f"use {', '.join(LANGUAGES)}"
                )
            if not isinstance(text, str):
                raise ConfigError(f"{name}.{lang}", f"has the value {text!r}", "it must be a string")
            result[lang] = text
    elif raw is not None:
        raise ConfigError(
            name, f"has the value {raw!r}", f'it must be a string or a table per language ({key}.en = "...")'
        )
    whole = _env_value(section, key, env)
    if whole is not None:
        result = {lang: whole for lang in LANGUAGES}
    for lang in LANGUAGES:
        one = _env_value(section, f"{key}_{lang}", env)
        if one is not None:
            result = {**(result or {}), lang: one}
    return result


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None, *, need_token: bool = True) -> Config:
    """Read config.toml (if it exists) and the environment; validate; return Config.

    path=None means ./config.toml when present. A path given explicitly must exist.
    need_token=False lets maintenance commands (db, content) run without a bot token.
    """
    env = os.environ if env is None else env
    check_environment(env)
    data: dict[str, Any] = {}
    source: Path | None = None
    if path is not None and not path.exists():
        raise ConfigError("--config", f"names {path}, which does not exist", "copy config.example.toml there")
    candidate = path if path is not None else DEFAULT_CONFIG_PATH
    if candidate.exists():
        try:
            # utf-8-sig: Windows editors (Notepad) start UTF-8 files with a byte-order mark, which
            # tomllib reads as "Invalid statement (at line 1, column 1)".
            data = tomllib.loads(candidate.read_bytes().decode("utf-8-sig"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(candidate), f"is not valid TOML ({exc})", toml_fix(str(exc))) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                str(candidate), f"is not UTF-8 text (byte {exc.start})", "save it as UTF-8 (TOML files are UTF-8)"
            ) from exc
        except OSError as exc:
            raise ConfigError(
                str(candidate), f"cannot be read ({exc.strerror or exc})", "name a readable config.toml file"
            ) from exc
        source = candidate

    for section in data:
        if section not in _SECTIONS:
            raise ConfigError(section, "is not a known section", f"use one of {', '.join(_SECTIONS)}")

    sections: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        raw = data.get(section, {})
        if not isinstance(raw, dict):
            raise ConfigError(section, "must be a [section] table")
        types = _field_types(cls)
        for key in raw:
            if key not in types:
                raise ConfigError(f"{section}.{key}", "is not a known key", "see config.example.toml")
        values: dict[str, Any] = {}
        for key, type_name in types.items():
            if section == "clinic" and key in LOCALIZED_CLINIC_KEYS:
                localized = _localized_value(section, key, raw.get(key), env)
                if localized is not None:
                    values[key] = localized
                continue
            value = _env_value(section, key, env)
            if value is None and key in raw:
                value = raw[key]
            if value is not None:
                values[key] = _coerce(f"{section}.{key}", str(type_name), value)
        sections[section] = cls(**values)
    config = Config(**sections, source=source)
    validate(config, need_token=need_token)
    return config


def validate(config: Config, *, need_token: bool = True) -> None:
    """Check cross-field rules; raise ConfigError for the first problem found."""
    clinic, tg, delivery = config.clinic, config.telegram, config.delivery
    try:
        zone(clinic.timezone)
    except ScheduleError as exc:
        raise ConfigError(
            "clinic.timezone", f"is {clinic.timezone!r}", "use an IANA name such as Europe/Berlin"
        ) from exc
    if clinic.language not in LANGUAGES:
        raise ConfigError("clinic.language", f"is {clinic.language!r}", f"use one of {', '.join(LANGUAGES)}")
    for lang in LANGUAGES:
        if not clinic.emergency_text.get(lang, "").strip():
            raise ConfigError(
                f"clinic.emergency_text.{lang}",
                "is missing or empty",
                f"say in this language what a patient must do in an emergency (patients can choose {lang})",
            )
        if any(v.strip() for v in clinic.phone_hours.values()) and not clinic.phone_hours.get(lang, "").strip():
            raise ConfigError(
                f"clinic.phone_hours.{lang}",
                "is missing or empty",
                f"give the phone hours in every language patients can choose, or one string for all (no {lang})",
            )
    if need_token:
        if not tg.token:
            raise ConfigError(
                "telegram.token",
                "is missing",
                "create a bot with @BotFather and put its token in config.toml or REHAB_BOT_TELEGRAM_TOKEN",
            )
        if not _TOKEN_RE.match(tg.token):
            raise ConfigError(
                "telegram.token", "does not look like a bot token", "copy it again from @BotFather (digits:secret)"
            )
    check_bot_api_url("telegram.base_url", tg.base_url, "https://api.telegram.org/bot")
    check_bot_api_url("telegram.base_file_url", tg.base_file_url, "https://api.telegram.org/file/bot")
    if tg.mode not in ("polling", "webhook"):
        raise ConfigError("telegram.mode", f"is {tg.mode!r}", 'use "polling" or "webhook"')
    if tg.http_client not in ("aiohttp", "httpx"):
        raise ConfigError("telegram.http_client", f"is {tg.http_client!r}", 'use "aiohttp" or "httpx"')
    if tg.mode == "webhook":
        if not url_is_https(tg.webhook_url):
            raise ConfigError("telegram.webhook_url", "must be an https:// URL in webhook mode")
        if not _SECRET_TOKEN_RE.match(tg.secret_token):
            raise ConfigError(
                "telegram.secret_token",
                "is required in webhook mode",
                "set 1-256 characters of A-Z, a-z, 0-9, _ and -",
            )
    if config.database.url.split("://", 1)[0] not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ConfigError(
            "database.url",
            f"uses an unsupported driver ({config.database.url.split('://', 1)[0]})",
            "use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db",
        )
    check_database_url(config.database.url)
    if config.database.pg_schema and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", config.database.pg_schema):
        raise ConfigError(
            "database.pg_schema", f"is {config.database.pg_schema!r}", "use lower-case letters, digits and _"
        )
    if (delivery.quiet_hours_start is None) != (delivery.quiet_hours_end is None):
        raise ConfigError(
            "delivery.quiet_hours_start", "and quiet_hours_end must be set together", 'use "" for both to disable'
        )
    if config.content.dir is not None and not config.content.dir.is_dir():
        raise ConfigError("content.dir", f"names {config.content.dir}, which is not a directory")
    if config.http.listen:
        check_listen("http.listen", config.http.listen, example="127.0.0.1:9090")
    if tg.mode == "webhook":
        check_listen("telegram.webhook_listen", f"{tg.webhook_listen}:{tg.webhook_port}", example="0.0.0.0")  # noqa: S104 - an example
    _validate_web(config)
    check_sqlite_folder(config.database.url)
    check_writable_folder("library.media_dir", config.library.media_dir)
    if config.logging.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("logging.level", f"is {config.logging.level!r}", "use DEBUG, INFO, WARNING or ERROR")
    staff = config.staff
    if staff.digest_weekday.lower() not in WEEKDAY_NAMES:
        raise ConfigError(
            "staff.digest_weekday", f"is {staff.digest_weekday!r}", f"use one of {', '.join(WEEKDAY_NAMES)}"
        )
    check_bounds(config)
    _validate_export(config.export)
    if not config.privacy.health_data_in_chat and not config.web.public_url:
        raise ConfigError(
            "privacy.health_data_in_chat",
            "is false, but [web] public_url is empty",
            "patients then answer on the clinic's web app: set [web] public_url, or keep health_data_in_chat = true",
        )
    if config.care.photo_dir and "\0" in config.care.photo_dir:
        raise ConfigError("care.photo_dir", "contains a NUL character", "give a folder path")


def _validate_web(config: Config) -> None:
    web = config.web
    fix = 'use the https:// address of the TLS proxy in front of it, e.g. "https://rehab.your-clinic.de"'
    # Checked whenever it is set: the Mini App buttons open it, and Telegram opens https only.
    if web.public_url:
        parts = urlsplit(web.public_url)
        host = (parts.hostname or "").lower()
        if (
            parts.scheme not in ("http", "https")
            or not host
            or parts.query
            or parts.fragment
            or parts.username
            or parts.password
        ):
            raise ConfigError("web.public_url", f"is {web.public_url!r}, not a URL", fix)
        if not (url_is_https(web.public_url) or url_is_loopback_http(web.public_url)):
            raise ConfigError("web.public_url", f"is {web.public_url!r}: plain http is for 127.0.0.1 only", fix)
    if web.login_widget and not web.https:
        raise ConfigError(
            "web.login_widget",
            "is on, but public_url is not an https:// address",
            "set public_url to the clinic's domain (linked to the bot with BotFather's /setdomain), "
            "or turn login_widget off",
        )
    if not web.listen:
        return
    check_listen("web.listen", web.listen, example="127.0.0.1:8081")
    if web.listen == config.http.listen:
        raise ConfigError(
            "web.listen", f"is {web.listen!r}, the same as http.listen", "give the web app a port of its own"
        )
    host_port = web.host_port
    assert host_port is not None
    if config.telegram.mode == "webhook" and host_port[1] == config.telegram.webhook_port:
        raise ConfigError(
            "web.listen", f"uses port {host_port[1]}, the webhook's", "give the web app a port of its own"
        )
    if not web.public_url and not host_is_loopback(host_port[0]):
        raise ConfigError("web.public_url", f"is missing, and web.listen ({web.listen}) is not this machine only", fix)
    if web.secret and len(web.secret) < 32:
        raise ConfigError(
            "web.secret",
            "is shorter than 32 characters",
            'use e.g. the output of: python -c "import secrets; print(secrets.token_urlsafe(32))"',
        )


def photo_dir(config: Config) -> Path:
    """Where patients' photos are kept: [care] photo_dir, else next to the SQLite file, else data/photos."""
    if config.care.photo_dir:
        return Path(config.care.photo_dir)
    url = config.database.url
    if url.startswith("sqlite+aiosqlite:///") and ":memory:" not in url:
        return Path(url.removeprefix("sqlite+aiosqlite:///")).parent / "photos"
    return Path("data") / "photos"


def _validate_export(export: ExportConfig) -> None:
    system = export.identifier_system
    if not system:
        return
    fix = (
        "use a URL on the clinic's own domain (https://<domain>/...), a urn:oid: or a urn:uuid: the clinic "
        'owns, or "" for this installation\'s own urn:uuid:'
    )
    if not _IDENTIFIER_SYSTEM_RE.match(system):
        raise ConfigError("export.identifier_system", f"is {system!r}, which is not such a URI", fix)
    host = system.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0].lower().rstrip(".") if "://" in system else ""
    if any(host == domain or host.endswith("." + domain) for domain in _EXAMPLE_DOMAINS):
        raise ConfigError("export.identifier_system", f"is {system!r}, an example address nobody owns", fix)


def check_bounds(config: Config) -> None:
    """Every numeric key within its declared Bound (see BOUNDS)."""
    for section, cls in _SECTIONS.items():
        values = getattr(config, section)
        for f in fields(cls):
            key = f"{section}.{f.name}"
            bound = BOUNDS.get(key)
            value = getattr(values, f.name)
            if bound is None or value is None or isinstance(value, bool):
                continue
            if not bound.admits(value):
                raise ConfigError(key, f"{bound.describe()} (it is {value!r})", bound.hint)


# How alike (difflib's ratio, 0-1) an unknown variable's name after REHAB_BOT_ must be to a known one's
# to be suggested: CLINIC_TIMZONE is 0.97 alike CLINIC_TIMEZONE, FOO 0.38 alike CARE_PHOTO_DIR.
ENV_SUGGESTION_CUTOFF = 0.8


def check_environment(env: Mapping[str, str]) -> None:
    """Refuse a REHAB_BOT_* variable that names no key (a typo would be silently ignored)."""
    known = {
        f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}" for section, cls in _SECTIONS.items() for f in fields(cls)
    }
    # Per-language clinic texts also have one variable per language (REHAB_BOT_CLINIC_EMERGENCY_TEXT_DE).
    known |= {f"{ENV_PREFIX}CLINIC_{key.upper()}_{lang.upper()}" for key in LOCALIZED_CLINIC_KEYS for lang in LANGUAGES}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name.startswith(NON_CONFIG_ENV_PREFIXES) or name in NON_CONFIG_ENV_NAMES:
            continue
        base, suffix = (name[: -len("_FILE")], "_FILE") if name.endswith("_FILE") else (name, "")
        if name in known or base in known:
            continue
        # Compared after the prefix, which every name shares: on whole names REHAB_BOT_FOO was
        # "close" to REHAB_BOT_CARE_PHOTO_DIR. Only a near miss (a typo, a dropped word's end) is suggested.
        keys = {variable.removeprefix(ENV_PREFIX): variable for variable in known}
        short = base.removeprefix(ENV_PREFIX)
        guess = difflib.get_close_matches(short, sorted(keys), n=1, cutoff=ENV_SUGGESTION_CUTOFF)
        # A key's section left out (REHAB_BOT_TOKEN for REHAB_BOT_TELEGRAM_TOKEN): suggested when one key is so.
        # Sections are one word (_SECTIONS), so a key's name in its section is what follows the first "_".
        named = [key for key in sorted(keys) if key.split("_", 1)[1] == short]
        guess = guess or (named if len(named) == 1 else [])
        fix = f"did you mean {keys[guess[0]]}{suffix}?" if guess else "see config.example.toml for the variables"
        raise ConfigError(name, "is not a configuration variable", fix)


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def check_listen(key: str, listen: str, *, example: str) -> None:
    """HOST:PORT with a real IPv4/IPv6 address or host name and a port 1-65535."""
    fix = f'use "HOST:PORT", e.g. "{example}"' if ":" in example else f'use an address such as "{example}"'
    host, sep, port = listen.rpartition(":")
    if not sep or not 1 <= (number(port, 5) or 0) <= 65535:
        raise ConfigError(key, f"is {listen!r}", fix + " (a port from 1 to 65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        return
    try:
        if ":" in host:
            ipaddress.IPv6Address(host)
        elif re.fullmatch(r"[0-9.]+", host):
            ipaddress.IPv4Address(host)
        elif not _HOSTNAME_RE.match(host):
            raise ValueError(host)
    except ValueError as exc:
        raise ConfigError(key, f"is {listen!r}", f"{host!r} is not an IP address or host name; {fix}") from exc


def check_writable_folder(key: str, folder: Path) -> None:
    """A folder the bot writes into must be a writable folder, or creatable (the bot then makes it 0700)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(key, f"is {folder}, but {existing} is not a folder", "choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        problem = "is not writable" if existing == folder else f"cannot be created ({existing} is not writable)"
        raise ConfigError(key, f"is {folder}, which {problem}", "create the folder for the bot's user (mode 0700)")


def check_bot_api_url(key: str, url: str, default: str) -> None:
    """[telegram] base_url and base_file_url: an http or https URL with a host, to which the token is appended.

    Unlike [web] public_url, plain http is allowed to any host: a self-hosted telegram-bot-api server
    speaks only http, and often runs beside the bot under its own name (http://telegram-bot-api:8081/bot
    in a compose network). Anything else (ftp:, a bare host, no scheme) was accepted here and failed
    only when `run` reached Telegram, as "cannot reach the Bot API" retried forever or a traceback.
    """
    self_hosted = default.replace("https://api.telegram.org", "http://localhost:8081")
    fix = f'use the Bot API server\'s address, "{default}" (the default), or e.g. "{self_hosted}" for a self-hosted one'
    # Not the value itself when it may hold a password (user:password@).
    shown = f"{url!r}" if "@" not in url else "(not shown: it has a user:password@ part)"
    if not url.strip():
        raise ConfigError(key, "is empty", fix)
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise ConfigError(key, f"is {shown}, not a URL", fix) from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ConfigError(key, f"is {shown}, not an http:// or https:// URL with a host", fix)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if not port_ok:
        raise ConfigError(key, f"is {shown}, whose port is not a number 1-65535", fix)
    if parts.query or parts.fragment or any(c.isspace() for c in url):
        raise ConfigError(key, f"is {shown}, which has a ?query, #fragment or space: the token is appended to it", fix)


def check_database_url(url: str) -> None:
    """A URL SQLAlchemy can read (a port that is a number), and for SQLite a file: an in-memory database
    would lose every patient, staff member and reminder when the process ends."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from rehab_bot.db import sqlite_path

    try:
        make_url(url)
    except (ArgumentError, ValueError) as exc:
        # Not the URL itself: it may hold a password.
        raise ConfigError(
            "database.url",
            "is not a valid database URL (is the port a number?)",
            "use postgresql+asyncpg://user@host:5432/db",
        ) from exc
    if url.startswith("sqlite") and sqlite_path(url) is None:
        raise ConfigError(
            "database.url",
            "names no database file (an in-memory database, lost when the bot stops)",
            f"use a file, e.g. {DEFAULT_DATABASE_URL}",
        )


def check_sqlite_folder(url: str) -> None:
    """A SQLite file's folder must be a writable folder, or creatable (the bot then makes it 0700)."""
    if not url.startswith("sqlite"):
        return
    from rehab_bot.db import sqlite_path

    try:
        path = sqlite_path(url)
    except Exception as exc:  # an unparsable URL
        raise ConfigError("database.url", f"is {url!r}", "use sqlite+aiosqlite:///path.db") from exc
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            "database.url", f"puts the database in {folder}, but {existing} is not a folder", "choose another path"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == folder else f" and cannot be created there ({existing} is not writable)"
        problem = "is not writable" if existing == folder else "does not exist"
        raise ConfigError(
            "database.url",
            f"puts the database in {folder}, which {problem}{where}",
            "create the folder for the bot's user (mode 0700) or choose a writable path",
        )
