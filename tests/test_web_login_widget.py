"""The Telegram Login Widget's data is verified as Telegram documents it; the option is off by default."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from factories import TEST_TOKEN

from rehab_bot.config import ConfigError, WebConfig, load_config
from rehab_bot.web import initdata, login_widget
from rehab_bot.web.login_widget import LoginError, sign, verify

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
USER = {"id": "4242", "first_name": "Dana", "username": "dana_pt", "auth_date": str(int(NOW.timestamp()))}


def test_documented_example_by_hand() -> None:
    """The hash computed by hand from the documentation's recipe is accepted."""
    check = "\n".join(f"{k}={USER[k]}" for k in sorted(USER))
    digest = hmac.new(hashlib.sha256(TEST_TOKEN.encode()).digest(), check.encode(), hashlib.sha256).hexdigest()
    user = verify({**USER, "hash": digest}, TEST_TOKEN, NOW, 3600)
    assert (user.id, user.auth_date) == (4242, int(NOW.timestamp()))


@pytest.mark.parametrize(
    "change",
    [
        {"id": "4243"},  # another user
        {"first_name": "Eve"},  # any signed field
        {"hash": "0" * 64},
        {"hash": ""},
    ],
)
def test_a_changed_field_or_hash_is_refused(change: dict[str, str]) -> None:
    with pytest.raises(LoginError, match="bad signature"):
        verify({**sign(USER, TEST_TOKEN), **change}, TEST_TOKEN, NOW, 3600)


def test_a_missing_hash_another_bot_or_the_mini_app_key_is_refused() -> None:
    with pytest.raises(LoginError):
        verify(dict(USER), TEST_TOKEN, NOW, 3600)
    with pytest.raises(LoginError, match="bad signature"):
        verify(sign(USER, "123:another-bot"), TEST_TOKEN, NOW, 3600)
    # initData's key (HMAC "WebAppData") is not the widget's (SHA256 of the token): not interchangeable.
    web_app_hash = dict(p.split("=", 1) for p in initdata.sign(USER, TEST_TOKEN).split("&"))["hash"]
    with pytest.raises(LoginError, match="bad signature"):
        verify({**USER, "hash": web_app_hash}, TEST_TOKEN, NOW, 3600)


def test_an_unknown_field_is_refused_even_when_signed() -> None:
    with pytest.raises(LoginError, match="unexpected"):
        verify(sign({**USER, "role": "admin"}, TEST_TOKEN), TEST_TOKEN, NOW, 3600)


def test_auth_date_age_and_future() -> None:
    data = sign(USER, TEST_TOKEN)
    assert verify(data, TEST_TOKEN, NOW + timedelta(seconds=3600), 3600).id == 4242
    with pytest.raises(LoginError, match="too old"):
        verify(data, TEST_TOKEN, NOW + timedelta(seconds=3601), 3600)
    with pytest.raises(LoginError, match="future"):
        verify(data, TEST_TOKEN, NOW - timedelta(seconds=login_widget.SKEW_SECONDS + 1), 3600)
    with pytest.raises(LoginError, match="no auth_date"):
        verify(sign({**USER, "auth_date": "soon"}, TEST_TOKEN), TEST_TOKEN, NOW, 3600)


def test_the_frame_sends_the_browser_back_to_this_site() -> None:
    url = login_widget.frame_url("@rehab_clinic_bot", "https://rehab.clinic.example/")
    assert url.startswith("https://oauth.telegram.org/embed/rehab_clinic_bot?")
    assert "return_to=https%3A%2F%2Frehab.clinic.example%2Fsignin%2Ftelegram" in url
    assert "origin=https%3A%2F%2Frehab.clinic.example&" in url


def test_off_by_default_and_only_with_an_https_domain(tmp_path: Path) -> None:
    assert WebConfig().login_widget is False
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}
    path = tmp_path / "c.toml"
    path.write_text('[web]\nlogin_widget = true\npublic_url = "http://127.0.0.1:8081"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env)
    assert str(info.value).startswith("web.login_widget")
    path.write_text('[web]\nlogin_widget = true\npublic_url = "https://rehab.clinic.example"\n')
    assert load_config(path, env=env).web.login_widget is True
