"""Verify a Telegram Mini App's ``initData``, exactly as core.telegram.org/bots/webapps documents it.

``initData`` is a query string (``query_id=…&user=…&auth_date=…&hash=…``). Telegram signs it:

1. the data-check-string is every field except ``hash``, as ``key=value``, sorted by key,
   joined by ``\\n`` (values URL-decoded);
2. ``secret_key = HMAC_SHA256(key="WebAppData", message=bot_token)``;
3. ``hash = hex(HMAC_SHA256(key=secret_key, message=data_check_string))``.

A valid hash proves the data came from Telegram for this bot; ``auth_date`` (Unix seconds)
must not be older than the configured maximum age, nor lie in the future. ``signature``
(Ed25519, for third parties) is a field like any other here: it is part of the check string.

Plain Python: no telegram or web imports.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

# Future auth_date tolerated (clock skew between Telegram and this machine).
SKEW_SECONDS = 60
MAX_LENGTH = 8192


class InitDataError(ValueError):
    """initData is malformed, forged or too old (the message names which, never the data)."""


@dataclass(frozen=True)
class WebAppUser:
    """The Telegram user who opened the Mini App."""

    id: int
    language_code: str
    auth_date: int


def _secret_key(bot_token: str) -> bytes:
    return hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()


def _check_string(fields: dict[str, str]) -> str:
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")


def sign(fields: dict[str, str], bot_token: str) -> str:
    """initData for these fields, signed as Telegram signs it (tests and the demo use it)."""
    digest = hmac.new(_secret_key(bot_token), _check_string(fields).encode(), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": digest})


def verify(init_data: str, bot_token: str, now: datetime, max_age_seconds: int) -> WebAppUser:
    """The user of valid, fresh initData; raises InitDataError otherwise."""
    if not init_data or len(init_data) > MAX_LENGTH:
        raise InitDataError("missing or too long")
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise InitDataError("not a query string") from exc
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InitDataError("a field is repeated")
    received = fields.get("hash", "")
    expected = hmac.new(_secret_key(bot_token), _check_string(fields).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(received.encode(), expected.encode()):
        raise InitDataError("bad signature")
    try:
        auth_date = int(fields.get("auth_date", ""))
    except ValueError as exc:
        raise InitDataError("no auth_date") from exc
    age = now.timestamp() - auth_date
    if age > max_age_seconds:
        raise InitDataError("too old")
    if age < -SKEW_SECONDS:
        raise InitDataError("dated in the future")
    try:
        user = json.loads(fields.get("user", ""))
        user_id = user["id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InitDataError("no user") from exc
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        raise InitDataError("no user")
    language = user.get("language_code")
    return WebAppUser(id=user_id, language_code=language if isinstance(language, str) else "", auth_date=auth_date)
