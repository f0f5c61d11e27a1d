"""Run the rehab-bot command as an administrator would, in this process or in a real one.

`rehab_bot(*args, cwd=..., env=...)` returns a CompletedProcess either way.
In this process (the default) it calls `rehab_bot.cli.main` with the
environment, working folder and stdout/stderr of a fresh process: only the
variables given (the caller's REHAB_BOT_* are dropped), output captured, and
everything `main` changes for the rest of a process (umask, logging, the
audit operator) put back afterwards. That saves starting Python and importing
the bot (~1-2 s) per call. `subprocess=True`, and every `rehab-bot run`, start
a real process: for what only a process shows (exit codes of `run`, the
umask it starts with, signals, a terminal).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import io
import logging
import os
import subprocess as _subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent / "rehab-bot"


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without REHAB_BOT_* variables, plus env."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("REHAB_BOT_")}
    return {**base, **(env or {})}


def rehab_bot(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    subprocess: bool = False,
    timeout: float = 120,
    preexec_fn: Callable[[], Any] | None = None,
) -> _subprocess.CompletedProcess[str]:
    """Run `rehab-bot ARGS` in cwd with the REHAB_BOT_* variables in env only."""
    if subprocess or preexec_fn is not None or (args and args[0] == "run"):
        return _subprocess.run(
            [str(BIN), *args],
            cwd=cwd,
            env=clean_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=preexec_fn,
        )
    return in_process(list(args), cwd=cwd, env=env)


def _main(argv: Sequence[str]) -> int:
    from rehab_bot import cli

    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1


def in_process(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> _subprocess.CompletedProcess[str]:
    """Call cli.main(argv) as if it were a process of its own; see the module docstring."""
    try:
        import asyncio

        asyncio.get_running_loop()
    except RuntimeError:
        return _in_process(argv, cwd=cwd, env=env)
    # main() runs asyncio.run(); from inside an async test it needs a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(_in_process, argv, cwd=cwd, env=env).result()


def _in_process(argv: list[str], *, cwd: Path, env: dict[str, str] | None) -> _subprocess.CompletedProcess[str]:
    saved_environ = os.environ.copy()
    saved_cwd = os.getcwd()
    saved_umask = os.umask(0o022)
    os.umask(saved_umask)
    root = logging.getLogger()
    saved_handlers = list(root.handlers)
    saved_levels = {
        name: logger.level
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    saved_root_level = root.level
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(clean_env(env))
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            # A context of its own: the audit operator main() sets stays in it.
            code = contextvars.copy_context().run(_main, argv)
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)
        os.chdir(saved_cwd)
        os.umask(saved_umask)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_root_level)
        for name, logger in logging.Logger.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(saved_levels.get(name, logging.NOTSET))
    return _subprocess.CompletedProcess(["rehab-bot", *argv], code, out.getvalue(), err.getvalue())
