"""No Docker engine runs here, so check the Dockerfile's promises against the package."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from rehab_bot.cli import build_parser
from rehab_bot.config import load_config

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def instruction(name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+?)(?<!\\)$", DOCKERFILE, re.M | re.S)]


def test_slim_python_base_and_non_root_user() -> None:
    [base] = instruction("FROM")
    match = re.fullmatch(r"python:3\.(\d+)-slim", base)
    assert match and int(match.group(1)) >= 11
    [user] = instruction("USER")
    assert user not in ("root", "0")


def test_entrypoint_is_rehab_bot_run_and_exists_in_the_package() -> None:
    [entrypoint] = instruction("ENTRYPOINT")
    command = json.loads(entrypoint)
    assert command == ["rehab-bot", "run"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["rehab-bot"] == "rehab_bot.cli:main"
    args = build_parser().parse_args(command[1:])
    assert args.command == "run"


def test_copied_paths_exist_and_data_volume_holds_the_database() -> None:
    copied = {source for line in instruction("COPY") for source in line.split()[:-1]}
    for source in copied:
        assert (ROOT / source).exists(), source
    # pip install in the image builds from pyproject, which names these files.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for needed in [project["readme"], *project.get("license-files", [])]:
        assert needed in copied, f"{needed} is needed to build the package but not copied"
    assert '["/data"]' in " ".join(instruction("VOLUME"))
    env = {
        "REHAB_BOT_DATABASE_URL": "sqlite+aiosqlite:////data/rehab-bot.db",
        "REHAB_BOT_HTTP_LISTEN": "0.0.0.0:8080",
        "REHAB_BOT_TELEGRAM_TOKEN": "123456:" + "a" * 30,
    }
    for key, value in env.items():
        if key != "REHAB_BOT_TELEGRAM_TOKEN":
            assert f"{key}={value}" in DOCKERFILE
    config = load_config(None, env=env)
    assert config.database.url.endswith("////data/rehab-bot.db")
    assert config.http.host_port == ("0.0.0.0", 8080)


def test_healthcheck_targets_the_health_endpoint_on_the_exposed_port() -> None:
    [health] = instruction("HEALTHCHECK")
    assert "http://127.0.0.1:8080/healthz" in health
    assert "8080" in " ".join(instruction("EXPOSE"))


def test_data_folder_is_private_to_the_non_root_user() -> None:
    [user] = instruction("USER")
    runs = " ".join(instruction("RUN"))
    match = re.search(r"install -d -m (0?700) -o (\w+) -g (\w+) /data\b", runs)
    assert match, "the /data folder must be created 0700 and owned by the bot's user"
    assert match.group(2) == user
    # the process narrows its own umask, so files it makes in /data are 0600 (tests/test_file_modes.py)
    from rehab_bot.files import UMASK

    assert UMASK == 0o077
