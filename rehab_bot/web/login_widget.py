"""Verify a Telegram Login Widget sign-in, exactly as core.telegram.org/widgets/login documents it.

Where the clinic's web app has a domain ([web] public_url over https, linked to the bot with
BotFather's /setdomain) and ``[web] login_widget = true``, the signed-out page embeds Telegram's
login frame; after the staff member confirms in Telegram, Telegram sends the browser to
``<public_url>/signin/telegram`` with the user's fields (``id``, ``first_name``, ``last_name``,
``username``, ``photo_url``, ``auth_date``) and ``hash`` as query parameters. Telegram signs them:

1. the data-check-string is every received field except ``hash``, as ``key=value``, sorted by
   key, joined by ``\\n``;
2. ``secret_key = SHA256(bot_token)`` (unlike the Mini App's initData, whose key is an HMAC);
3. ``hash = hex(HMAC_SHA256(key=secret_key, message=data_check_string))``.

A valid hash proves Telegram confirmed this user for this bot; ``auth_date`` (Unix seconds) must
not be older than the configured maximum age (``[web] initdata_max_age_seconds``), nor lie in
the future. Only the Telegram id is used: the staff member is looked up by it, as for the
Mini App.

Plain Python: no telegram or web imports.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

# The fields Telegram sends; anything else is refused (it would be signed only if Telegram sent it).
FIELDS = ("id", "first_name", "last_name", "username", "photo_url", "auth_date", "hash")
MAX_FIELD = 512
# Future auth_date tolerated (clock skew between Telegram and this machine).
SKEW_SECONDS = 60
# Telegram's login frame, embedded on the signed-out page (no script of telegram.org runs in the page).
FRAME_ORIGIN = "https://oauth.telegram.org"


class LoginError(ValueError):
    """The widget's data is malformed, forged or too old (the message names which, never the data)."""


@dataclass(frozen=True)
class LoginUser:
    id: int
    auth_date: int


def _secret_key(bot_token: str) -> bytes:
    return hashlib.sha256(bot_token.encode()).digest()


def _check_string(fields: Mapping[str, str]) -> str:
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")


def sign(fields: Mapping[str, str], bot_token: str) -> dict[str, str]:
    """The fields with the hash Telegram would add (tests use it)."""
    digest = hmac.new(_secret_key(bot_token), _check_string(fields).encode(), hashlib.sha256).hexdigest()
    return {**fields, "hash": digest}


def verify(fields: Mapping[str, str], bot_token: str, now: datetime, max_age_seconds: int) -> LoginUser:
    """The user of valid, fresh widget data; raises LoginError otherwise."""
    if set(fields) - set(FIELDS) or any(len(value) > MAX_FIELD for value in fields.values()):
        raise LoginError("unexpected or too long fields")
    received = fields.get("hash", "")
    expected = hmac.new(_secret_key(bot_token), _check_string(fields).encode(), hashlib.sha256).hexdigest()
    if not received or not hmac.compare_digest(received.encode(), expected.encode()):
        raise LoginError("bad signature")
    try:
        auth_date, user_id = int(fields.get("auth_date", "")), int(fields.get("id", ""))
    except ValueError as exc:
        raise LoginError("no auth_date or id") from exc
    age = now.timestamp() - auth_date
    if age > max_age_seconds:
        raise LoginError("too old")
    if age < -SKEW_SECONDS:
        raise LoginError("dated in the future")
    if user_id <= 0:
        raise LoginError("no user")
    return LoginUser(id=user_id, auth_date=auth_date)


def frame_url(bot_username: str, public_url: str) -> str:
    """Telegram's login frame for this bot, sending the browser back to /signin/telegram."""
    base = public_url.rstrip("/")
    query = urlencode({"origin": base, "return_to": f"{base}/signin/telegram", "size": "large", "userpic": "false"})
    return f"{FRAME_ORIGIN}/embed/{bot_username.lstrip('@')}?{query}"
