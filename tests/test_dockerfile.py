"""No Docker engine runs here, so check the Dockerfile's promises against the package."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

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


def test_entrypoint_is_rehab_bot_and_the_default_command_is_run() -> None:
    # `docker run IMAGE staff add ...` must become `rehab-bot staff add ...`, not `rehab-bot run staff add`.
    [entrypoint] = instruction("ENTRYPOINT")
    assert json.loads(entrypoint) == ["rehab-bot"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["rehab-bot"] == "rehab_bot.cli:main"
    [cmd] = instruction("CMD")
    args = build_parser().parse_args(json.loads(cmd))
    assert args.command == "run" and not args.no_updates
    add = build_parser().parse_args(["staff", "add", "--telegram-id", "1", "--role", "admin", "--name", "A"])
    assert (add.command, add.staff_command) == ("staff", "add")


def test_user_is_numeric_and_created_with_that_uid() -> None:
    # A numeric USER lets Kubernetes' runAsNonRoot verify it without reading /etc/passwd.
    [user] = instruction("USER")
    assert re.fullmatch(r"\d+(:\d+)?", user) and int(user.split(":")[0]) >= 1000
    assert f"--uid {user.split(':')[0]}" in DOCKERFILE


def test_image_installs_the_locked_dependencies_with_hashes() -> None:
    [run] = [line for line in instruction("RUN") if "pip install" in line]
    assert "pip install --require-hashes -r requirements.lock" in run
    assert "--no-deps ." in run, "the package itself must not pull unlocked dependencies"
    assert "requirements.lock" in " ".join(instruction("COPY"))
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pinned = {
        m.group(1).lower().replace("_", "-"): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, re.M)
    }
    # Every requirement line carries at least one sha256 hash (pip refuses the file otherwise).
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock):
        if "==" in block.split("\n")[0]:
            assert "--hash=sha256:" in block, block.split("\n")[0]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for text in project["dependencies"]:
        requirement = Requirement(text)
        key = requirement.name.lower().replace("_", "-")
        assert key in pinned, f"{key} is a dependency but not in requirements.lock; regenerate it (see README)"
        assert requirement.specifier.contains(pinned[key]), f"requirements.lock pins {key}=={pinned[key]}: {text}"


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
