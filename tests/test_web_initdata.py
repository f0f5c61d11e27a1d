"""Mini App initData verification, against Telegram's documented algorithm and forged or stale data."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from factories import TEST_TOKEN

from rehab_bot.web.initdata import InitDataError, sign, verify

NOW = datetime(2026, 6, 10, 5, 0, tzinfo=UTC)
USER = json.dumps({"id": 7002, "first_name": "Ben", "language_code": "de-AT"}, separators=(",", ":"))


def fields(at: datetime = NOW, **extra: str) -> dict[str, str]:
    return {"query_id": "AAHdF6IQAAAAAN0XohDhrOrc", "user": USER, "auth_date": str(int(at.timestamp())), **extra}


def by_the_documentation(values: dict[str, str], token: str) -> str:
    """core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app, written out independently."""
    check = "\n".join(f"{k}={v}" for k, v in sorted(values.items()))
    secret = hmac.new(key=b"WebAppData", msg=token.encode(), digestmod=hashlib.sha256).digest()
    digest = hmac.new(key=secret, msg=check.encode(), digestmod=hashlib.sha256).hexdigest()
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in {**values, "hash": digest}.items())


def test_data_signed_as_documented_is_accepted() -> None:
    user = verify(by_the_documentation(fields(), TEST_TOKEN), TEST_TOKEN, NOW, 3600)
    assert (user.id, user.language_code, user.auth_date) == (7002, "de-AT", int(NOW.timestamp()))
    assert verify(sign(fields(signature="abc"), TEST_TOKEN), TEST_TOKEN, NOW, 3600).id == 7002


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (sign(fields(), "987654321:AAE-another_bots_token_value_01234"), "bad signature"),  # another bot
        ("", "missing"),
        ("x" * 9000, "too long"),
        ("user=1&&&", "not a query string"),
        (urlencode({**fields(), "hash": "0" * 64}), "bad signature"),
        (urlencode(fields()), "bad signature"),  # no hash
        (sign(fields(at=NOW - timedelta(seconds=3601)), TEST_TOKEN), "too old"),
        (sign(fields(at=NOW + timedelta(minutes=5)), TEST_TOKEN), "future"),
        (sign({"auth_date": str(int(NOW.timestamp()))}, TEST_TOKEN), "no user"),
        (sign(fields(user='{"id": "7002"}'), TEST_TOKEN), "no user"),
        (sign({**fields(), "auth_date": "yesterday"}, TEST_TOKEN), "auth_date"),
    ],
)
def test_forged_stale_and_malformed_data_is_refused(data: str, reason: str) -> None:
    with pytest.raises(InitDataError, match=reason):
        verify(data, TEST_TOKEN, NOW, 3600)


def test_a_changed_field_breaks_the_signature() -> None:
    good = dict(parse_qsl(sign(fields(), TEST_TOKEN)))
    good["user"] = good["user"].replace("7002", "7003")
    with pytest.raises(InitDataError, match="bad signature"):
        verify(urlencode(good), TEST_TOKEN, NOW, 3600)


def test_a_repeated_field_is_refused() -> None:
    data = sign(fields(), TEST_TOKEN) + "&user=" + quote('{"id":1}')
    with pytest.raises(InitDataError, match="repeated"):
        verify(data, TEST_TOKEN, NOW, 3600)


def test_the_age_limit_is_the_configured_one() -> None:
    data = sign(fields(at=NOW - timedelta(minutes=10)), TEST_TOKEN)
    assert verify(data, TEST_TOKEN, NOW, 601).id == 7002
    with pytest.raises(InitDataError, match="too old"):
        verify(data, TEST_TOKEN, NOW, 599)
