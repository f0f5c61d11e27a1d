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

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from pathlib import Path
from typing import Any

from rehab_bot.schedule import ScheduleError, parse_hhmm, zone

ENV_PREFIX = "REHAB_BOT_"
DEFAULT_CONFIG_PATH = Path("config.toml")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/rehab-bot.db"
LANGUAGES = ("en", "de")

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


@dataclass(frozen=True)
class ClinicConfig:
    name: str = "Our clinic"
    timezone: str = "Europe/Berlin"
    language: str = "en"
    emergency_text: str = (
        "If this is an emergency, call 112 (or your local emergency number) now, "
        "or go to the nearest emergency department."
    )
    phone: str = ""
    alert_chat_id: int | None = None
    invite_valid_days: int = 14


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


@dataclass(frozen=True)
class DeliveryConfig:
    global_rate: float = 30.0
    per_chat_interval: float = 1.0
    paid_broadcast: bool = False
    paid_broadcast_rate: float = 1000.0
    poll_interval: float = 1.0
    batch_size: int = 500
    send_window: int = 30
    grace_period_minutes: int = 120
    max_attempts: int = 5
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 300.0
    sending_lease_seconds: float = 300.0
    quiet_hours_start: time | None = time(21, 30)
    quiet_hours_end: time | None = time(7, 30)
    nudge_after_hours: float = 3.0

    @property
    def effective_rate(self) -> float:
        """Messages per second across all chats."""
        return self.paid_broadcast_rate if self.paid_broadcast else self.global_rate


@dataclass(frozen=True)
class ContentConfig:
    dir: Path | None = None


@dataclass(frozen=True)
class HttpConfig:
    listen: str = ""

    @property
    def host_port(self) -> tuple[str, int] | None:
        """(host, port) for the health/metrics endpoint, or None when disabled."""
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return (host or "127.0.0.1", int(port))


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"


WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class StaffConfig:
    escalation_minutes: int = 30
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
class InboundConfig:
    max_concurrent: int = 16
    user_limit: int = 20
    user_window_seconds: float = 10.0


@dataclass(frozen=True)
class Config:
    clinic: ClinicConfig = field(default_factory=ClinicConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    content: ContentConfig = field(default_factory=ContentConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    staff: StaffConfig = field(default_factory=StaffConfig)
    inbound: InboundConfig = field(default_factory=InboundConfig)
    source: Path | None = None


_SECTIONS: dict[str, type] = {
    "clinic": ClinicConfig,
    "telegram": TelegramConfig,
    "database": DatabaseConfig,
    "delivery": DeliveryConfig,
    "content": ContentConfig,
    "http": HttpConfig,
    "logging": LoggingConfig,
    "staff": StaffConfig,
    "inbound": InboundConfig,
}


def _field_types(cls: type) -> dict[str, Any]:
    return {f.name: f.type for f in fields(cls)}


def _env_value(section: str, key: str, env: Mapping[str, str]) -> str | None:
    name = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
    if name in env:
        return env[name]
    file_name = env.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"{section}.{key}", f"cannot be read from {name}_FILE={file_name}", str(exc.strerror)
            ) from exc
    return None


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
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if type_name.startswith("float"):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if type_name.startswith("time"):
            return parse_hhmm(str(value))
        if type_name.startswith("Path"):
            return Path(str(value)).expanduser()
        if not isinstance(value, str):
            raise ValueError
        return value
    except (ValueError, TypeError, ScheduleError) as exc:
        kind = type_name.split(" ")[0]
        expected = {"time": "a time as HH:MM", "bool": "true or false"}.get(kind, f"a {kind}")
        raise ConfigError(key, f"has the value {value!r}", f"it must be {expected}") from exc


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None, *, need_token: bool = True) -> Config:
    """Read config.toml (if it exists) and the environment; validate; return Config.

    path=None means ./config.toml when present. A path given explicitly must exist.
    need_token=False lets maintenance commands (db, content) run without a bot token.
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    source: Path | None = None
    if path is not None and not path.exists():
        raise ConfigError("--config", f"names {path}, which does not exist", "copy config.example.toml there")
    candidate = path if path is not None else DEFAULT_CONFIG_PATH
    if candidate.exists():
        try:
            with candidate.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(candidate), f"is not valid TOML ({exc})", "fix the line named") from exc
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
    if not clinic.emergency_text.strip():
        raise ConfigError("clinic.emergency_text", "is empty", "say what a patient must do in an emergency")
    if clinic.invite_valid_days < 1:
        raise ConfigError("clinic.invite_valid_days", "must be at least 1")
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
    if tg.mode not in ("polling", "webhook"):
        raise ConfigError("telegram.mode", f"is {tg.mode!r}", 'use "polling" or "webhook"')
    if not 0.5 <= tg.request_timeout <= 120:
        raise ConfigError("telegram.request_timeout", "must be between 0.5 and 120 seconds")
    if tg.http_client not in ("aiohttp", "httpx"):
        raise ConfigError("telegram.http_client", f"is {tg.http_client!r}", 'use "aiohttp" or "httpx"')
    if tg.mode == "webhook":
        if not tg.webhook_url.startswith("https://"):
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
    if config.database.pg_schema and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", config.database.pg_schema):
        raise ConfigError(
            "database.pg_schema", f"is {config.database.pg_schema!r}", "use lower-case letters, digits and _"
        )
    if delivery.global_rate <= 0 or delivery.global_rate > 30:
        raise ConfigError(
            "delivery.global_rate",
            "must be above 0 and at most 30",
            "Telegram allows about 30 messages/s; see paid_broadcast",
        )
    if not 0 < delivery.paid_broadcast_rate <= 1000:
        raise ConfigError("delivery.paid_broadcast_rate", "must be above 0 and at most 1000")
    if delivery.per_chat_interval < 1.0:
        raise ConfigError(
            "delivery.per_chat_interval", "must be at least 1.0", "Telegram allows one message/s per chat"
        )
    for key in ("poll_interval", "backoff_base_seconds", "sending_lease_seconds", "nudge_after_hours"):
        if getattr(delivery, key) <= 0:
            raise ConfigError(f"delivery.{key}", "must be above 0")
    for key in ("batch_size", "send_window", "max_attempts"):
        if getattr(delivery, key) < 1:
            raise ConfigError(f"delivery.{key}", "must be at least 1")
    if delivery.grace_period_minutes < 0:
        raise ConfigError("delivery.grace_period_minutes", "must not be negative")
    if (delivery.quiet_hours_start is None) != (delivery.quiet_hours_end is None):
        raise ConfigError(
            "delivery.quiet_hours_start", "and quiet_hours_end must be set together", 'use "" for both to disable'
        )
    if config.content.dir is not None and not config.content.dir.is_dir():
        raise ConfigError("content.dir", f"names {config.content.dir}, which is not a directory")
    if config.http.listen:
        try:
            host_port = config.http.host_port
        except ValueError as exc:
            raise ConfigError(
                "http.listen", f"is {config.http.listen!r}", 'use "HOST:PORT", e.g. "127.0.0.1:9090"'
            ) from exc
        assert host_port is not None
    if config.logging.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("logging.level", f"is {config.logging.level!r}", "use DEBUG, INFO, WARNING or ERROR")
    staff = config.staff
    if staff.escalation_minutes < 1:
        raise ConfigError("staff.escalation_minutes", "must be at least 1")
    if staff.digest_weekday.lower() not in WEEKDAY_NAMES:
        raise ConfigError(
            "staff.digest_weekday", f"is {staff.digest_weekday!r}", f"use one of {', '.join(WEEKDAY_NAMES)}"
        )
    if not 0 < staff.digest_low_adherence <= 1:
        raise ConfigError("staff.digest_low_adherence", "must be above 0 and at most 1", "e.g. 0.5 for 50%")
    if staff.digest_pain_rise <= 0:
        raise ConfigError("staff.digest_pain_rise", "must be above 0", "NRS points, e.g. 2")
    if staff.digest_no_response_days < 1:
        raise ConfigError("staff.digest_no_response_days", "must be at least 1")
    _validate_inbound(config.inbound)


def _validate_inbound(inbound: InboundConfig) -> None:
    if not 1 <= inbound.max_concurrent <= 256:
        raise ConfigError("inbound.max_concurrent", "must be between 1 and 256", "e.g. 16")
    if not 1 <= inbound.user_limit <= 10_000:
        raise ConfigError("inbound.user_limit", "must be between 1 and 10000", "e.g. 20 updates per window")
    if not 1 <= inbound.user_window_seconds <= 3600:
        raise ConfigError("inbound.user_window_seconds", "must be between 1 and 3600 seconds", "e.g. 10")
