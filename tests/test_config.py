"""Configuration: file, environment, secrets files, and errors that name the key and the fix."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from factories import TEST_TOKEN

from rehab_bot.config import _SECTIONS, ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_documents_every_key(tmp_path: Path) -> None:
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    config = load_config(ROOT / "config.example.toml", env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    assert config.clinic.name == "Example Spine Clinic"
    for section, cls in _SECTIONS.items():
        assert f"[{section}]" in example
        for field in fields(cls):
            assert re.search(rf"^#? ?{field.name} = ", example, re.M), f"{section}.{field.name} is not in the example"
            # each key has a comment line right above it (or above its group)
    assert example.count("\n# ") > 40


def test_defaults_need_only_a_token() -> None:
    config = load_config(None, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    assert config.database.url == "sqlite+aiosqlite:///data/rehab-bot.db"
    assert config.telegram.base_url == "https://api.telegram.org/bot"
    assert config.telegram.base_file_url == "https://api.telegram.org/file/bot"
    assert config.delivery.global_rate == 30 and config.delivery.grace_period_minutes == 120


def test_environment_overrides_file_and_secret_files_work(tmp_path: Path) -> None:
    path = write(tmp_path, '[telegram]\ntoken = "1:bad"\n[database]\nurl = "sqlite+aiosqlite:///x.db"\n')
    secret = tmp_path / "token"
    secret.write_text(TEST_TOKEN + "\n", encoding="utf-8")
    config = load_config(
        path,
        env={
            "REHAB_BOT_TELEGRAM_TOKEN_FILE": str(secret),
            "REHAB_BOT_DATABASE_URL": "postgresql+asyncpg://u@h/db",
            "REHAB_BOT_DELIVERY_GLOBAL_RATE": "20",
            "REHAB_BOT_DELIVERY_PAID_BROADCAST": "yes",
        },
    )
    assert config.telegram.token == TEST_TOKEN
    assert config.database.url == "postgresql+asyncpg://u@h/db"
    assert config.delivery.global_rate == 20.0 and config.delivery.paid_broadcast is True
    assert config.delivery.effective_rate == 1000


@pytest.mark.parametrize(
    ("text", "env", "key", "fix"),
    [
        ("", {}, "telegram.token", "@BotFather"),
        ('[telegram]\ntoken = "abc"\n', {}, "telegram.token", "digits:secret"),
        ('[clinic]\ntimezone = "Berlin"\n', {}, "clinic.timezone", "IANA"),
        ('[clinic]\nlanguage = "fr"\n', {}, "clinic.language", "en, de"),
        ('[telegram]\nmode = "webhook"\nwebhook_url = "https://x.org/t"\n', {}, "telegram.secret_token", "required"),
        ('[telegram]\nmode = "push"\n', {}, "telegram.mode", "polling"),
        ('[database]\nurl = "mysql://x"\n', {}, "database.url", "sqlite+aiosqlite"),
        ("[delivery]\nglobal_rate = 100\n", {}, "delivery.global_rate", "paid_broadcast"),
        ('[delivery]\nquiet_hours_start = "25:00"\n', {}, "delivery.quiet_hours_start", "HH:MM"),
        ('[delivery]\nmax_attempts = "many"\n', {}, "delivery.max_attempts", "it must be a whole number"),
        ("", {"REHAB_BOT_DELIVERY_GLOBAL_RATE": "fast"}, "delivery.global_rate", "it must be a number"),
        ("[clinic]\nname = 5\n", {}, "clinic.name", 'it must be text (a string in quotes: "...")'),
        ("[clinik]\n", {}, "clinik", "one of"),
        ('[clinic]\nnmae = "x"\n', {}, "clinic.nmae", "config.example.toml"),
        ("[clinic\n", {}, "config.toml", "TOML"),
        ('[http]\nlisten = "nope"\n', {}, "http.listen", "HOST:PORT"),
        # A port that is no number was a ValueError traceback from SQLAlchemy in every command.
        ('[database]\nurl = "postgresql+asyncpg://u:pw@db:54x2/rehab"\n', {}, "database.url", "is the port a number?"),
        ('[database]\nurl = "postgresql+asyncpg://u:pw@[::1/rehab"\n', {}, "database.url", "not a valid database URL"),
        # In memory: `staff add` said "added" and every command (and `run`) lost it all at the end.
        ('[database]\nurl = "sqlite+aiosqlite://"\n', {}, "database.url", "an in-memory database"),
        ('[database]\nurl = "sqlite+aiosqlite:///:memory:"\n', {}, "database.url", "an in-memory database"),
        ('[content]\ndir = "/does/not/exist"\n', {}, "content.dir", "not a directory"),
        ("", {"REHAB_BOT_TELEGRAM_TOKEN_FILE": "/no/such/file"}, "telegram.token", "cannot be read"),
    ],
)
def test_bad_config_names_key_and_fix(tmp_path: Path, text: str, env: dict[str, str], key: str, fix: str) -> None:
    path = write(tmp_path, text)
    full_env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN, **env}
    if key == "telegram.token":
        full_env.pop("REHAB_BOT_TELEGRAM_TOKEN")
    with pytest.raises(ConfigError) as info:
        load_config(path, env=full_env)
    assert str(info.value).startswith(key) or key in str(info.value)
    assert fix in str(info.value)


@pytest.mark.parametrize("value", ["3.7", "14.5"])
def test_a_fraction_for_a_whole_number_is_refused_not_cut(tmp_path: Path, value: str) -> None:
    """invite_valid_days = 3.7 in config.toml quietly became 3 days."""
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}
    with pytest.raises(ConfigError, match=rf"^clinic\.invite_valid_days has the value {value}"):
        load_config(write(tmp_path, f"[clinic]\ninvite_valid_days = {value}\n"), env=env)
    assert load_config(write(tmp_path, "[clinic]\ninvite_valid_days = 14.0\n"), env=env).clinic.invite_valid_days == 14


def test_a_byte_order_mark_is_read_past_in_config_toml_and_secret_files(tmp_path: Path) -> None:
    """Notepad's UTF-8 starts with a byte-order mark: config.toml was 'not valid TOML (Invalid statement
    (at line 1, column 1))' and a token file's token 'does not look like a bot token'."""
    path = tmp_path / "config.toml"
    path.write_bytes(b'\xef\xbb\xbf[clinic]\r\nname = "Klinik am See"\r\n')
    token_file = tmp_path / "token"
    token_file.write_bytes(b"\xef\xbb\xbf" + TEST_TOKEN.encode() + b"\r\n")
    config = load_config(path, env={"REHAB_BOT_TELEGRAM_TOKEN_FILE": str(token_file)})
    assert config.clinic.name == "Klinik am See" and config.telegram.token == TEST_TOKEN


@pytest.mark.parametrize(
    ("text", "parser", "fix"),
    [
        ('[clinic]\nname = "x\n', "Illegal character", "fix the line named"),
        ('[clinic]\nname = "x', "Unterminated string (at end of document)", "check its quotes and brackets"),
        ("[clinic]\nname = ", "Invalid value (at end of document)", "check its quotes and brackets"),
        ("[clinic", "(at end of document)", "check its quotes and brackets"),
    ],
)
def test_a_toml_error_says_what_to_fix_without_naming_a_line_the_parser_did_not(
    tmp_path: Path, text: str, parser: str, fix: str
) -> None:
    """'(at end of document)' names no line, but the message ended 'fix the line named'."""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    message = str(info.value)
    assert "is not valid TOML" in message and parser in message and message.endswith(fix)
    if "(at line " not in message:
        assert "line named" not in message


def test_config_example_names_the_bound_of_every_bounded_key() -> None:
    """Each key in BOUNDS has its bounds in the comments above it in config.example.toml, as 'LOW-HIGH'
    (or 'at most HIGH' when the lowest is 0 or excluded): urgent_escalation_minutes had none."""
    from rehab_bot.config import BOUNDS

    lines = (Path(__file__).resolve().parent.parent / "config.example.toml").read_text(encoding="utf-8").splitlines()
    missing = []
    for key, bound in BOUNDS.items():
        if key == "clinic.alert_chat_id":
            continue  # a Telegram chat id: its bound is the id's range, not a setting to choose
        section, name = key.split(".")
        start = lines.index(f"[{section}]")
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
        [at] = [i for i in range(start, end) if re.match(rf"#? ?{name} = ", lines[i])]
        comments = []
        for line in reversed(lines[start + 1 : at]):  # its comment block, past keys that share it
            if line.startswith("#"):
                comments.append(line.lstrip("# "))
            elif comments or not line.strip():
                break
        text = " ".join(reversed(comments))
        low, high = (str(int(v)) if v == int(v) else f"{v:g}" for v in (bound.low, bound.high))
        forms = [f"{low}-{high}"] + ([f"at most {high}"] if bound.above or bound.low == 0 else [])
        if not any(re.search(rf"(?<![\d.]){re.escape(form)}(?![\d])", text) for form in forms):
            missing.append(f"{key} ({' or '.join(forms)})")
    assert missing == []


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


# --- complete validation: bounds, listen addresses, the SQLite folder, the environment ---


def test_every_numeric_key_has_declared_bounds() -> None:
    from rehab_bot.config import BOUNDS

    for section, cls in _SECTIONS.items():
        for field in fields(cls):
            if any(kind in str(field.type) for kind in ("int", "float")):
                assert f"{section}.{field.name}" in BOUNDS, f"{section}.{field.name} has no Bound in config.BOUNDS"
    assert set(BOUNDS) <= {f"{s}.{f.name}" for s, cls in _SECTIONS.items() for f in fields(cls)}


@pytest.mark.parametrize(
    ("text", "key", "fix"),
    [
        ("[delivery]\ngrace_period_minutes = 1e13\n", "delivery.grace_period_minutes", "at most 10080 minutes"),
        ("[delivery]\ngrace_period_minutes = -1\n", "delivery.grace_period_minutes", "at least 0"),
        ("[delivery]\nbatch_size = 1000000000\n", "delivery.batch_size", "at most 10000"),
        ("[delivery]\nsend_window = 100000\n", "delivery.send_window", "at most 1000"),
        ("[delivery]\nmax_attempts = 1e9\n", "delivery.max_attempts", "at most 100"),
        ("[delivery]\nbackoff_max_seconds = 1e300\n", "delivery.backoff_max_seconds", "at most 86400"),
        ("[delivery]\nsending_lease_seconds = inf\n", "delivery.sending_lease_seconds", "at most 86400"),
        ("[delivery]\npoll_interval = nan\n", "delivery.poll_interval", "above 0"),
        ("[delivery]\nper_chat_interval = 1e9\n", "delivery.per_chat_interval", "at most 3600"),
        ("[delivery]\nnudge_after_hours = 1e6\n", "delivery.nudge_after_hours", "at most 72"),
        ("[clinic]\ninvite_valid_days = 100000\n", "clinic.invite_valid_days", "at most 365"),
        ("[clinic]\nalert_chat_id = 1e20\n", "clinic.alert_chat_id", "at most"),
        ("[telegram]\nwebhook_port = 70000\n", "telegram.webhook_port", "at most 65535"),
        ("[staff]\nescalation_minutes = 1e12\n", "staff.escalation_minutes", "at most 10080"),
        ("[staff]\ndigest_pain_rise = 11\n", "staff.digest_pain_rise", "at most 10"),
        ("[staff]\ndigest_no_response_days = 100000\n", "staff.digest_no_response_days", "at most 365"),
    ],
)
def test_every_number_has_a_maximum(tmp_path: Path, text: str, key: str, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    assert str(info.value).startswith(key) and fix in str(info.value)


def test_bounds_are_inclusive_at_their_maximum(tmp_path: Path) -> None:
    text = "[delivery]\ngrace_period_minutes = 10080\nsend_window = 1000\n[telegram]\nwebhook_port = 65535\n"
    config = load_config(write(tmp_path, text), env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    assert config.delivery.grace_period_minutes == 10080


@pytest.mark.parametrize(
    ("listen", "fix"),
    [
        ("999.1.1.1:99999", "port from 1 to 65535"),
        ("999.1.1.1:8080", "'999.1.1.1' is not an IP address"),
        ("127.0.0.1:0", "port from 1 to 65535"),
        ("bad_host!:8080", "is not an IP address or host name"),
        ("[::1:80", "is not an IP address"),
        ("127.0.0.1:80x", "HOST:PORT"),
    ],
)
def test_listen_addresses_must_be_host_and_port(tmp_path: Path, listen: str, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f'[http]\nlisten = "{listen}"\n'), env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    assert str(info.value).startswith("http.listen") and fix in str(info.value)


def test_valid_listen_addresses_pass(tmp_path: Path) -> None:
    for listen, expected in [
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("[::1]:9090", ("::1", 9090)),
        ("metrics.internal:9090", ("metrics.internal", 9090)),
        (":9090", ("127.0.0.1", 9090)),
    ]:
        config = load_config(None, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN, "REHAB_BOT_HTTP_LISTEN": listen})
        assert config.http.host_port == expected


def test_webhook_listen_address_is_checked(tmp_path: Path) -> None:
    text = (
        '[telegram]\nmode = "webhook"\nwebhook_url = "https://x.org/t"\nsecret_token = "abc"\n'
        'webhook_listen = "300.0.0.1"\n'
    )
    with pytest.raises(ConfigError, match=r"^telegram\.webhook_listen .*not an IP address"):
        load_config(write(tmp_path, text), env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})


def test_sqlite_folder_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("x", encoding="utf-8")
    url = f"sqlite+aiosqlite:///{tmp_path}/plain-file/data/bot.db"
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN, "REHAB_BOT_DATABASE_URL": url})
    assert str(info.value).startswith("database.url") and "is not a folder" in str(info.value)


def test_sqlite_folder_that_cannot_be_created_or_written_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    real_access = os.access
    # As root every folder is writable; pretend to be the clinic's unprivileged user.
    monkeypatch.setattr("rehab_bot.config.os.access", lambda p, m: False if Path(p) == locked else real_access(p, m))
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}
    with pytest.raises(ConfigError, match=r"does not exist and cannot be created there"):
        load_config(None, env={**env, "REHAB_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{locked}/data/bot.db"})
    with pytest.raises(ConfigError, match=r"which is not writable"):
        load_config(None, env={**env, "REHAB_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{locked}/bot.db"})
    # a missing folder under a writable one is fine: the bot creates it 0700 at start
    config = load_config(None, env={**env, "REHAB_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/new/bot.db"})
    assert not (tmp_path / "new").exists() and config.database.url.endswith("/new/bot.db")


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("REHAB_BOT_CLINIC_TIMZONE", "did you mean REHAB_BOT_CLINIC_TIMEZONE?"),
        ("REHAB_BOT_TELEGRAM_TOKN_FILE", "did you mean REHAB_BOT_TELEGRAM_TOKEN_FILE?"),
        ("REHAB_BOT_DELIVERY_GRACE_PERIOD", "did you mean REHAB_BOT_DELIVERY_GRACE_PERIOD_MINUTES?"),
        # The section left out: one key ends so.
        ("REHAB_BOT_TOKEN", "did you mean REHAB_BOT_TELEGRAM_TOKEN?"),
        ("REHAB_BOT_TOKEN_FILE", "did you mean REHAB_BOT_TELEGRAM_TOKEN_FILE?"),
        ("REHAB_BOT_XYZZY", "config.example.toml"),
        # Names far from every key get no guess: these got "did you mean REHAB_BOT_CARE_PHOTO_DIR?" and the like.
        ("REHAB_BOT_FOO", "config.example.toml"),
        ("REHAB_BOT_DEBUG", "config.example.toml"),
        ("REHAB_BOT_PORT", "config.example.toml"),
    ],
)
def test_unknown_environment_variable_is_refused_with_a_suggestion(name: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN, name: "x"})
    assert str(info.value).startswith(name) and suggestion in str(info.value)
    if suggestion == "config.example.toml":
        assert "did you mean" not in str(info.value)


def test_test_suite_and_bench_variables_are_not_configuration() -> None:
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN, "REHAB_BOT_TEST_PG_URL": "x", "REHAB_BOT_BENCH_PG_URL": "y"}
    assert load_config(None, env=env).clinic.timezone == "Europe/Berlin"
    # The browser the browser tests and screenshot scripts drive (tests/browser/conftest.py).
    assert load_config(None, env={**env, "REHAB_BOT_CHROMIUM": "/usr/bin/chromium"}).clinic.timezone == "Europe/Berlin"
    with pytest.raises(ConfigError):  # only that name: a look-alike is still refused
        load_config(None, env={**env, "REHAB_BOT_CHROMIUMS": "/usr/bin/chromium"})


def test_clinic_texts_per_language(tmp_path: Path) -> None:
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}
    default = load_config(None, env=env).clinic
    assert default.text("emergency_text", "de").startswith("Wenn es ein Notfall ist, rufen Sie jetzt die 112")
    assert default.text("emergency_text", "en").startswith("If this is an emergency, call 112")
    assert default.text("phone_hours", "de") == ""

    tables = write(
        tmp_path,
        '[clinic]\nphone = "+49 30 1"\n'
        '[clinic.emergency_text]\nen = "Call 112."\nde = "Rufen Sie die 112."\n'
        '[clinic.phone_hours]\nen = "Mon-Fri 8-16"\nde = "Mo-Fr 8-16 Uhr"\n',
    )
    clinic = load_config(tables, env=env).clinic
    assert (clinic.text("emergency_text", "en"), clinic.text("emergency_text", "de")) == (
        "Call 112.",
        "Rufen Sie die 112.",
    )
    assert clinic.text("phone_hours", "de") == "Mo-Fr 8-16 Uhr"

    inline = write(tmp_path, '[clinic]\nemergency_text = { en = "Call 112.", de = "Die 112." }\nphone_hours = "8-16"\n')
    clinic = load_config(inline, env=env).clinic
    assert clinic.text("emergency_text", "de") == "Die 112." and clinic.text("phone_hours", "en") == "8-16"

    # The environment still wins: one string for every language, or one language.
    clinic = load_config(
        inline,
        env={**env, "REHAB_BOT_CLINIC_EMERGENCY_TEXT": "Ring 999.", "REHAB_BOT_CLINIC_EMERGENCY_TEXT_DE": "Ruf 112."},
    ).clinic
    assert (clinic.text("emergency_text", "en"), clinic.text("emergency_text", "de")) == ("Ring 999.", "Ruf 112.")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[clinic.emergency_text]\nen = "Call 112."\n', "clinic.emergency_text.de is missing or empty"),
        ('[clinic]\nemergency_text = { en = "Call 112.", de = " " }\n', "clinic.emergency_text.de is missing"),
        ('[clinic]\nemergency_text = { en = "a", de = "b", fr = "c" }\n', "clinic.emergency_text.fr is not a language"),
        ('[clinic]\nphone_hours = { de = "8-16 Uhr" }\n', "clinic.phone_hours.en is missing or empty"),
        ("[clinic]\nemergency_text = 112\n", "clinic.emergency_text has the value 112"),
    ],
)
def test_a_clinic_text_missing_a_language_is_a_config_error(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(write(tmp_path, text), env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("http://rehab.clinic.example", "plain http is for 127.0.0.1 only"),
        ("http://127.0.0.2", "plain http is for 127.0.0.1 only"),
        ("ftp://rehab.clinic.example", "not a URL"),
        ("rehab.clinic.example", "not a URL"),
        ("https://", "not a URL"),
        ("https://rehab.clinic.example/#x", "not a URL"),
        ("https://user:secret@rehab.clinic.example", "not a URL"),
    ],
)
def test_the_mini_app_address_needs_https_except_on_loopback(tmp_path: Path, url: str, fix: str) -> None:
    """Checked also without [web] listen: the reminders' Start buttons open it, and Telegram opens https only."""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f'[web]\npublic_url = "{url}"\n'), env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    assert str(info.value).startswith("web.public_url") and fix in str(info.value)


def test_loopback_may_use_http_and_privacy_mode_needs_the_mini_app(tmp_path: Path) -> None:
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}
    for url in (
        "http://127.0.0.1:8080",
        "http://localhost:8080/rehab",
        "http://[::1]:8080",
        "https://rehab.example.org",
    ):
        assert load_config(write(tmp_path, f'[web]\npublic_url = "{url}"\n'), env=env).web.public_url == url
    assert load_config(write(tmp_path, ""), env=env).privacy.health_data_in_chat is True, "on by default"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[privacy]\nhealth_data_in_chat = false\n"), env=env)
    assert str(info.value).startswith("privacy.health_data_in_chat") and "[web] public_url" in str(info.value)
    off = load_config(
        write(tmp_path, '[privacy]\nhealth_data_in_chat = false\n[web]\npublic_url = "https://rehab.example.org"\n'),
        env=env,
    )
    assert off.privacy.health_data_in_chat is False
    env_off = {**env, "REHAB_BOT_PRIVACY_HEALTH_DATA_IN_CHAT": "false", "REHAB_BOT_WEB_PUBLIC_URL": "https://x.org"}
    assert load_config(write(tmp_path, ""), env=env_off).privacy.health_data_in_chat is False


# --- [telegram] base_url and base_file_url ----------------------------------------------


@pytest.mark.parametrize("key", ["base_url", "base_file_url"])
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://api.telegram.org/bot", "not an http:// or https:// URL with a host"),
        ("api.telegram.org/bot", "not an http:// or https:// URL with a host"),
        ("://api.telegram.org/bot", "not an http:// or https:// URL with a host"),
        ("https:///bot", "not an http:// or https:// URL with a host"),
        ("", "is empty"),
        ("http://[::1/bot", "not a URL"),
        ("http://localhost:99999/bot", "port is not a number 1-65535"),
        ("https://api.telegram.org/bot?x=1", "the token is appended to it"),
        ("https://api.telegram.org/bot ", "the token is appended to it"),
    ],
)
def test_the_bot_api_addresses_must_be_http_or_https_urls(tmp_path: Path, key: str, url: str, problem: str) -> None:
    """An ftp:, schemeless or bare-host address passed every check and failed only when `run` reached
    Telegram ("cannot reach the Bot API", retried forever); now a config error names the key and the fix."""
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f'[telegram]\n{key} = "{url}"\n'), env=env)
    message = str(info.value)
    assert message.startswith(f"telegram.{key} ") and problem in message, message
    assert "https://api.telegram.org/" in message and "self-hosted" in message, "it says what to use"
    with pytest.raises(ConfigError, match=rf"^telegram\.{key} "):
        load_config(write(tmp_path, ""), env={**env, f"REHAB_BOT_TELEGRAM_{key.upper()}": url})


def test_a_password_in_a_bot_api_address_is_not_repeated_in_the_error(tmp_path: Path) -> None:
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN, "REHAB_BOT_TELEGRAM_BASE_URL": "ftp://user:s3cret@proxy/bot"}
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, ""), env=env)
    assert str(info.value).startswith("telegram.base_url ") and "s3cret" not in str(info.value)


def test_http_and_https_bot_api_addresses_are_accepted_also_self_hosted_ones(tmp_path: Path) -> None:
    """Plain http is allowed to any host, unlike [web] public_url: a self-hosted telegram-bot-api
    server speaks only http, often beside the bot in a compose network."""
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}
    for base, files in [
        ("https://api.telegram.org/bot", "https://api.telegram.org/file/bot"),
        ("HTTPS://API.TELEGRAM.ORG/bot", "https://api.telegram.org/file/bot"),
        ("http://localhost:8081/bot", "http://localhost:8081/file/bot"),
        ("http://telegram-bot-api:8081/bot", "http://telegram-bot-api:8081/file/bot"),
        ("http://[::1]:8081/bot", "http://[::1]:8081/file/bot"),
        ("https://bot-api.clinic.example/bot{token}/test", "https://bot-api.clinic.example/file/bot{token}/test"),
    ]:
        text = f'[telegram]\nbase_url = "{base}"\nbase_file_url = "{files}"\n'
        telegram = load_config(write(tmp_path, text), env=env).telegram
        assert (telegram.base_url, telegram.base_file_url) == (base, files)


# --- [web] ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "fix"),
    [
        ('[web]\nlisten = "0.0.0.0:8081"\n', "web.public_url", "https://"),
        (
            '[web]\nlisten = "127.0.0.1:8081"\npublic_url = "http://rehab.clinic.de"\n',
            "web.public_url",
            "127.0.0.1 only",
        ),
        ('[web]\nlisten = "127.0.0.1:8081"\npublic_url = "rehab.clinic.de"\n', "web.public_url", "not a URL"),
        ('[web]\nlisten = "127.0.0.1:8081"\npublic_url = "https://x.de/?a=1"\n', "web.public_url", "not a URL"),
        ('[web]\nlisten = "127.0.0.1:8081"\nsecret = "short"\n', "web.secret", "32 characters"),
        ('[web]\nlisten = "nope"\n', "web.listen", "HOST:PORT"),
        ('[http]\nlisten = "127.0.0.1:8081"\n[web]\nlisten = "127.0.0.1:8081"\n', "web.listen", "port of its own"),
        ('[web]\nlisten = "127.0.0.1:8081"\nidle_minutes = 0\n', "web.idle_minutes", "at least 1"),
        (
            '[web]\nlisten = "127.0.0.1:8081"\ninitdata_max_age_seconds = 999999\n',
            "web.initdata_max_age_seconds",
            "86400",
        ),
    ],
)
def test_bad_web_settings_name_key_and_fix(tmp_path: Path, text: str, key: str, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    assert str(info.value).startswith(key) and fix in str(info.value), str(info.value)


def test_web_is_off_by_default_and_https_or_loopback_is_accepted(tmp_path: Path) -> None:
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}
    assert load_config(write(tmp_path, ""), env=env).web.host_port is None
    for text, https in [
        ('[web]\nlisten = "0.0.0.0:8081"\npublic_url = "https://rehab.clinic.de"\n', True),
        ('[web]\nlisten = "127.0.0.1:8081"\n', False),
        ('[web]\nlisten = "127.0.0.1:8081"\npublic_url = "http://localhost:8081"\n', False),
    ]:
        web = load_config(write(tmp_path, text), env=env).web
        assert web.host_port is not None and web.https is https


@pytest.mark.parametrize(
    "url", ["HTTPS://rehab.clinic-x.de", "Https://Rehab.Clinic-X.de/app-root", "hTtPs://REHAB.CLINIC-X.DE:8443"]
)
def test_an_upper_case_https_scheme_is_https_everywhere(tmp_path: Path, url: str) -> None:
    """RFC 3986: scheme and host are case-insensitive. Secure cookie, Mini App buttons and Login Widget all agree."""
    from types import SimpleNamespace
    from typing import Any, cast

    from rehab_bot.bot.miniapp import miniapp_url
    from rehab_bot.bot.services import Services

    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}
    text = f'[web]\nlisten = "127.0.0.1:8081"\npublic_url = "{url}"\nlogin_widget = true\n'
    config = load_config(write(tmp_path, text), env=env)
    assert config.web.https is True, "the session cookie is Secure"
    none = cast(Any, None)
    services = Services(config=config, db=none, clock=none, metrics=none, pacer=none)
    assert miniapp_url(SimpleNamespace(bot_data={"services": services})) == url.rstrip("/") + "/app"
    webhook = '[telegram]\nmode = "webhook"\nwebhook_url = "HTTPS://x.org/t"\nsecret_token = "abc"\n'
    assert load_config(write(tmp_path, webhook), env=env).telegram.webhook_url == "HTTPS://x.org/t"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("HTTP://LOCALHOST:8081", True),
        ("http://LocalHost:8081/rehab", True),
        ("HTTP://127.0.0.1:8081", True),
        ("HTTP://[::1]:8081", True),
        ("HTTP://rehab.clinic-x.de", False),
        ("Http://127.0.0.2", False),
    ],
)
def test_plain_http_is_for_loopback_hosts_in_any_case(tmp_path: Path, url: str, ok: bool) -> None:
    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}
    if ok:
        assert load_config(write(tmp_path, f'[web]\npublic_url = "{url}"\n'), env=env).web.https is False
    else:
        with pytest.raises(ConfigError, match=re.escape("plain http is for 127.0.0.1 only")):
            load_config(write(tmp_path, f'[web]\npublic_url = "{url}"\n'), env=env)
    listen = '[web]\nlisten = "LOCALHOST:8081"\n'
    assert load_config(write(tmp_path, listen), env=env).web.host_port == ("LOCALHOST", 8081)


def test_one_place_decides_https_and_loopback_http() -> None:
    from rehab_bot.config import url_is_https, url_is_loopback_http

    assert url_is_https("https://a.de") and url_is_https("HTTPS://A.DE/x") and not url_is_https("https://")
    assert not url_is_https("http://a.de") and not url_is_https("ftp://a.de") and not url_is_https("http://[::1")
    assert url_is_loopback_http("HTTP://LOCALHOST") and url_is_loopback_http("http://[::1]:8080")
    assert not url_is_loopback_http("https://localhost") and not url_is_loopback_http("http://127.0.0.2")


def test_the_send_window_follows_the_rate_unless_set(tmp_path: Path) -> None:
    """Unset, a window is 0.4 s of sending, at least 30; a set send_window wins."""
    token = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}
    assert load_config(None, env=token).delivery.send_window is None
    assert load_config(None, env=token).delivery.window == 30
    paid = {**token, "REHAB_BOT_DELIVERY_PAID_BROADCAST": "true"}
    assert load_config(None, env=paid).delivery.window == 400
    assert load_config(None, env={**paid, "REHAB_BOT_DELIVERY_PAID_BROADCAST_RATE": "400"}).delivery.window == 160
    assert load_config(None, env={**paid, "REHAB_BOT_DELIVERY_SEND_WINDOW": "30"}).delivery.window == 30
    path = tmp_path / "config.toml"
    path.write_text("[delivery]\nsend_window = 12\n")
    assert load_config(path, env=token).delivery.window == 12
