"""Starting `rehab-bot run`: one receiver per database, the database before Telegram, clear one-line failures.

Real processes against the fake Bot API server (127.0.0.1 only) and real
databases: SQLite files and PostgreSQL schemas.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from factories import TEST_TOKEN
from rig.telegram_server import FakeTelegram, conflict
from sqlalchemy import text

from rehab_bot import receiver
from rehab_bot.db import Database

# A long scenario: `pytest -m "not slow"` leaves it out; .ci/run runs it. Not `timing`: real
# processes, but nothing here measures how fast they are (only generous timeouts), and most of
# the time goes waiting for a process to start or retry, so they run in the parallel pass.
pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent / "rehab-bot"


def env_for(db: Database, base_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REHAB_BOT_")}
    env.update(
        REHAB_BOT_TELEGRAM_TOKEN=TEST_TOKEN,
        REHAB_BOT_TELEGRAM_BASE_URL=base_url,
        REHAB_BOT_TELEGRAM_BASE_FILE_URL=base_url.replace("/bot", "/file/bot"),
        REHAB_BOT_DATABASE_URL=db.url,
        REHAB_BOT_DATABASE_PG_SCHEMA=db.pg_schema or "",
        **extra,
    )
    return env


def spawn(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    log = (cwd / f"bot-{len(list(cwd.glob('bot-*.log')))}.log").open("wb")
    proc = subprocess.Popen([str(BIN), "run", *args], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = Path(log.name)  # type: ignore[attr-defined]
    log.close()
    return proc


def log_of(proc: subprocess.Popen[bytes]) -> str:
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


async def finish(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:  # noqa: ASYNC109
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode


async def until(predicate: Any, proc: subprocess.Popen[bytes], limit: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while not await predicate():
        if proc.poll() is not None:
            raise AssertionError(f"rehab-bot exited early ({proc.returncode}):\n{log_of(proc)[-3000:]}")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out:\n{log_of(proc)[-3000:]}")
        await asyncio.sleep(0.1)


async def run_to_end(env: dict[str, str], cwd: Path, *args: str, timeout: float = 60) -> tuple[int, str]:  # noqa: ASYNC109
    process = await asyncio.create_subprocess_exec(
        str(BIN), "run", *args, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_second_receiver_exits_2_naming_the_first(
    backend: str, tg: FakeTelegram, database_factory: Any, tmp_path: Path
) -> None:
    db: Database = await database_factory(backend)
    env = env_for(db, tg.base_url)
    first = spawn(env, tmp_path)
    try:

        async def holding() -> bool:
            try:
                lease = await receiver.current(db)
            except Exception:  # the table is not there until the first process migrated
                return False
            return lease is not None and lease.pid == first.pid and bool(tg.calls("getUpdates"))

        await until(holding, first)
        code, out = await run_to_end(env, tmp_path)
        assert code == 2, out
        [line] = out.strip().splitlines()
        assert f"pid {first.pid}" in line and socket.gethostname() in line and "--no-updates" in line
        assert first.poll() is None, "the first receiver keeps running"
        if backend == "postgres":  # a dispatch-only process takes no lease and starts fine
            extra = spawn(env, tmp_path, "--no-updates")

            async def sending() -> bool:  # started: it has taken its share of the send budget
                async with db.engine.connect() as conn:
                    holders = (await conn.execute(text("SELECT holder FROM send_share"))).scalars().all()
                return any(h.rsplit(":", 2)[1] == str(extra.pid) for h in holders)  # host:pid:random

            # (A fixed 3 s was not enough on a loaded machine: the SIGTERM came before Python had
            # even imported the bot, and the process died of it with -15.)
            await until(sending, extra)
            await asyncio.sleep(1)
            assert extra.poll() is None, log_of(extra)
            assert await finish(extra) == 0
            lease = await receiver.current(db)
            assert lease is not None and lease.pid == first.pid
    finally:
        assert await finish(first) == 0
    assert await receiver.current(db) is None, "a clean stop releases the lease"
    assert "Traceback" not in log_of(first)


async def test_409_conflict_is_logged_once_naming_the_cause(
    bot: Any, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    tg.inject("getUpdates", error=conflict(), times=3)
    await tg.wait_until(lambda: sum(1 for r in tg.calls("getUpdates") if r.response_status == 409) >= 3, timeout=30)
    user = tg.user(9301)
    await user.send("/help")  # polling goes on once the other consumer is gone
    await user.wait_for(timeout=30)
    lines = [r.getMessage() for r in caplog.records if "409" in r.getMessage() or "Conflict" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "another program receives updates for this bot token" in lines[0]
    assert not any(r.exc_info or r.exc_text for r in caplog.records if r.levelno >= logging.WARNING)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_without_telegram_the_database_is_ready_and_one_line_explains(
    database_factory: Any, tmp_path: Path
) -> None:
    db: Database = await database_factory("sqlite")
    await db.dispose()
    path = Path(db.url.split(":///", 1)[1])
    path.unlink(missing_ok=True)
    port = _closed_port()
    proc = spawn(env_for(db, f"http://127.0.0.1:{port}/bot"), tmp_path)

    async def migrated() -> bool:
        if not path.exists():
            return False
        try:
            with sqlite3.connect(path) as conn:
                return bool(conn.execute("SELECT version_num FROM alembic_version").fetchone())
        except sqlite3.Error:
            return False

    await until(migrated, proc)
    await asyncio.sleep(4)  # a few retries with backoff (1 s, 2 s, ...)
    assert proc.poll() is None, "it keeps retrying"
    assert await finish(proc) == 0
    out = log_of(proc)
    lines = out.strip().splitlines()
    reach = [line for line in lines if "cannot reach the Bot API" in line]
    assert len(reach) == 1, out
    assert f"cannot reach the Bot API at 127.0.0.1:{port}: " in reach[0]
    assert reach[0].endswith("check the network or [telegram] base_url (retrying)")
    assert "Traceback" not in out and "Unclosed" not in out and "unclosed" not in out
    assert len(lines) <= 3, out


async def test_a_rejected_token_exits_2_with_one_line(tg: FakeTelegram, database_factory: Any, tmp_path: Path) -> None:
    db: Database = await database_factory("sqlite")
    wrong = "987654321:AAE-another_SECRET_token_value_0123"
    env = {**env_for(db, tg.base_url), "REHAB_BOT_TELEGRAM_TOKEN": wrong}
    code, out = await run_to_end(env, tmp_path)
    assert code == 2, out
    [line] = out.strip().splitlines()
    assert "telegram.token was rejected by the Bot API at 127.0.0.1:" in line and "401" in line
    assert "@BotFather" in line
    assert wrong not in out and wrong.split(":")[1] not in out
    assert [r.method for r in tg.requests] == ["getMe"]


async def test_a_base_url_that_is_no_bot_api_is_named_not_the_token(database_factory: Any, tmp_path: Path) -> None:
    """A [telegram] base_url whose server answers 404 with a web page (not the Bot API): `run` printed
    python-telegram-bot's ERROR with the page and a traceback, then 'telegram.token was rejected by the Bot
    API ... (401 Unauthorized)', and `invite create` 'telegram.token was refused by Telegram'."""
    from datetime import date

    from aiohttp import web

    async def page(request: web.Request) -> web.Response:
        return web.Response(status=404, text="<html><body>Not the Bot API</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        db: Database = await database_factory("sqlite")
        base_url = f"http://127.0.0.1:{port}/bot"
        env = env_for(db, base_url)
        expected = (
            f"rehab-bot: configuration error: telegram.base_url is {base_url}, whose server answered Not Found (404) "
            "with something that is not the Bot API: check the address (Telegram's is https://api.telegram.org/bot; "
            "a self-hosted server's ends in /bot)"
        )
        code, out = await run_to_end(env, tmp_path)
        assert (code, out.strip()) == (2, expected)
        invite = await asyncio.create_subprocess_exec(
            str(BIN), "staff", "add", "--telegram-id", "5", "--role", "therapist", "--name", "T",
            env=env, cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        assert await invite.wait() == 0
        invite = await asyncio.create_subprocess_exec(
            str(BIN), "invite", "create", "--alias", "P-0001", "--surgery-date", date.today().isoformat(),
            "--programme", "lumbar-example", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out_bytes, _ = await asyncio.wait_for(invite.communicate(), 60)
        assert invite.returncode == 2 and expected in out_bytes.decode() and "Traceback" not in out_bytes.decode()
    finally:
        await runner.cleanup()


async def test_webhook_mode_as_a_process_holds_the_lease_and_answers(
    tg: FakeTelegram, database_factory: Any, tmp_path: Path
) -> None:
    import aiohttp

    db: Database = await database_factory("sqlite")
    port = _closed_port()
    env = env_for(
        db,
        tg.base_url,
        REHAB_BOT_TELEGRAM_MODE="webhook",
        REHAB_BOT_TELEGRAM_WEBHOOK_URL="https://bot.example.org/telegram",
        REHAB_BOT_TELEGRAM_WEBHOOK_LISTEN="127.0.0.1",
        REHAB_BOT_TELEGRAM_WEBHOOK_PORT=str(port),
        REHAB_BOT_TELEGRAM_SECRET_TOKEN="wh-secret_for_the_test",
    )
    proc = spawn(env, tmp_path)
    try:

        async def listening() -> bool:
            lease = await _lease_or_none(db)
            return bool(tg.calls("setWebhook")) and lease is not None and lease.mode == "webhook"

        await until(listening, proc)
        update = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": 9401, "type": "private", "first_name": "Anna"},
                "from": {"id": 9401, "is_bot": False, "first_name": "Anna", "language_code": "en"},
                "text": "/help",
                "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            },
        }
        headers = {"X-Telegram-Bot-Api-Secret-Token": "wh-secret_for_the_test"}
        for _ in range(50):  # the web server starts right after setWebhook
            try:
                async with aiohttp.ClientSession() as http:
                    async with http.post(f"http://127.0.0.1:{port}/telegram", json=update, headers=headers) as resp:
                        assert resp.status == 200
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        [reply] = await tg.user(9401).wait_for(timeout=15)
        assert "not for emergencies" in reply.text
        code, out = await run_to_end(env, tmp_path)
        assert code == 2 and "webhook on host" in out, out
    finally:
        assert await finish(proc) == 0
    assert await receiver.current(db) is None
    assert "Traceback" not in log_of(proc)


async def _lease_or_none(db: Database) -> Any:
    try:
        return await receiver.current(db)
    except Exception:  # not migrated yet
        return None
