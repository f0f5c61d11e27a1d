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
        ('[delivery]\nmax_attempts = "many"\n', {}, "delivery.max_attempts", "int"),
        ("[clinik]\n", {}, "clinik", "one of"),
        ('[clinic]\nnmae = "x"\n', {}, "clinic.nmae", "config.example.toml"),
        ("[clinic\n", {}, "config.toml", "TOML"),
        ('[http]\nlisten = "nope"\n', {}, "http.listen", "HOST:PORT"),
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


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


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
