"""compose.yaml, checked without Docker: the commands it runs exist, its variables are config keys."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from rehab_bot.cli import build_parser
from rehab_bot.config import Config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]


def rehab_bot_services() -> dict[str, Any]:
    built = {s.get("image") for s in SERVICES.values() if "build" in s}
    return {name: s for name, s in SERVICES.items() if "build" in s or s.get("image") in built}


def config_env_names() -> set[str]:
    """REHAB_BOT_<SECTION>_<KEY> for every key Config knows."""
    names = set()
    for section in fields(Config):
        if section.name == "source":
            continue
        for key in fields(getattr(Config(), section.name)):
            names.add(f"REHAB_BOT_{section.name}_{key.name}".upper())
    return names


def test_one_bot_receives_updates_and_one_dispatcher_only_sends() -> None:
    parser = build_parser()
    commands = {name: parser.parse_args(service["command"]) for name, service in rehab_bot_services().items()}
    assert {args.command for args in commands.values()} == {"run"}
    receivers = [name for name, args in commands.items() if not args.no_updates]
    dispatchers = [name for name, args in commands.items() if args.no_updates]
    assert receivers == ["bot"], "exactly one process may receive updates"
    assert len(dispatchers) == 1
    # The README's first-admin command runs through this service.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"docker compose run --rm (\w+) (staff add [^\n`]+)", readme)
    assert match and match.group(1) == "bot"
    args = parser.parse_args(match.group(2).replace('"', "").split()[:8])
    assert (args.command, args.staff_command, args.role) == ("staff", "add", "admin")


def test_postgres_with_a_named_volume_and_a_healthcheck_gates_the_bot() -> None:
    [db_name] = [name for name, s in SERVICES.items() if str(s.get("image", "")).startswith("postgres:")]
    db = SERVICES[db_name]
    [volume] = db["volumes"]
    source, target = volume.split(":")[:2]
    assert source in (COMPOSE.get("volumes") or {}), "the database lives in a named volume"
    assert target == "/var/lib/postgresql/data"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    for name, service in rehab_bot_services().items():
        assert service["depends_on"][db_name]["condition"] == "service_healthy", name


def test_secrets_come_from_files_and_variables_are_config_keys() -> None:
    known = config_env_names()
    declared = COMPOSE["secrets"]
    assert all(set(spec) == {"file"} for spec in declared.values())
    for name, service in SERVICES.items():
        env = service.get("environment", {})
        assert not any(re.search(r"PASSWORD$|TOKEN$|_URL$", key) for key in env), f"{name}: a secret in plain text"
        for key, value in env.items():
            if key.endswith("_FILE"):
                secret = value.removeprefix("/run/secrets/")
                assert value.startswith("/run/secrets/") and secret in service["secrets"] and secret in declared
            if key.startswith("REHAB_BOT_"):
                assert key.removesuffix("_FILE") in known, f"{name}: {key} is not a configuration key"
    for service in rehab_bot_services().values():
        env = service["environment"]
        assert {"REHAB_BOT_TELEGRAM_TOKEN_FILE", "REHAB_BOT_DATABASE_URL_FILE"} <= set(env)


def test_the_compose_services_use_the_database_of_their_secret_not_the_images_sqlite(tmp_path: Path) -> None:
    """The image's ENV REHAB_BOT_DATABASE_URL (SQLite in /data) is in every container compose
    starts; the service's REHAB_BOT_DATABASE_URL_FILE secret (PostgreSQL) must win over it."""
    from rehab_bot.config import load_config

    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    image_env = dict(re.findall(r"(REHAB_BOT_[A-Z_]+)=(\S+)", dockerfile))
    assert image_env["REHAB_BOT_DATABASE_URL"].startswith("sqlite")
    secrets = {
        "telegram_token": "123456789:AAE-test-token-for-the-compose-test",
        "database_url": "postgresql+asyncpg://rehab:pw@db:5432/rehab",
    }
    for name, value in secrets.items():
        (tmp_path / name).write_text(value, encoding="utf-8")
    for name, service in rehab_bot_services().items():
        env = {**image_env}
        for key, value in service["environment"].items():
            env[key] = str(tmp_path / value.removeprefix("/run/secrets/")) if key.endswith("_FILE") else value
        config = load_config(None, env=env)
        assert config.database.url == secrets["database_url"], name
        assert config.telegram.token == secrets["telegram_token"], name


def test_the_bots_data_folder_is_one_named_volume_that_outlives_down_and_up() -> None:
    """/data (the image's VOLUME and working folder) holds patients' photos, the library's uploads and the
    web app's session key even with PostgreSQL. Without a named volume each container got an anonymous
    one, which `docker compose down` left behind and the next `up` replaced with an empty folder."""
    from rehab_bot.config import load_config, photo_dir

    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    [workdir] = re.findall(r"^WORKDIR\s+(\S+)", dockerfile, re.M)[-1:]
    assert workdir == "/data" and re.search(r'^VOLUME\s+\["/data"\]', dockerfile, re.M)
    named = COMPOSE.get("volumes") or {}
    mounts = {}
    for name, service in rehab_bot_services().items():
        data = [v for v in service.get("volumes", []) if str(v).split(":")[1:2] == ["/data"]]
        assert len(data) == 1, f"{name}: /data must be mounted from a named volume"
        source = data[0].split(":")[0]
        assert source in named and not source.startswith((".", "/")), f"{name}: {source} is not a named volume"
        mounts[name] = source
    # One volume: the dispatcher sends the library's uploads, stored by the bot under /data.
    assert set(mounts) == {"bot", "dispatcher"} and len(set(mounts.values())) == 1
    assert "botdata" in mounts.values()
    # What the bot writes by default lands in /data (relative to the working folder), so in that volume.
    config = load_config(
        None, env={"REHAB_BOT_DATABASE_URL": "postgresql+asyncpg://rehab:pw@db:5432/rehab"}, need_token=False
    )
    for path in (config.library.media_dir, config.web.secret_file, photo_dir(config)):
        resolved = path if path.is_absolute() else Path(workdir) / path
        assert resolved.is_relative_to("/data"), path
    # README's Compose section says where the data lives, and what deletes it.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    compose_section = readme.split("### Docker Compose with PostgreSQL", 1)[1].split("\n### ", 1)[0]
    assert "`botdata`" in compose_section and "`pgdata`" in compose_section
    assert "docker compose down -v" in compose_section
