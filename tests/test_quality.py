"""ruff and mypy stay clean: .ci/run runs them itself (ruff before the tests, mypy beside them), not inside pytest."""

from __future__ import annotations

import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ci_commands() -> list[list[str]]:
    """The commands .ci/run executes, without comments and shell plumbing."""
    commands = []
    for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            commands.append(shlex.split(line, comments=True))
    return commands


def test_ci_runs_ruff_mypy_and_every_test() -> None:
    commands = ci_commands()
    tools = [c[:4] for c in commands if c and c[0].startswith("$VENV/bin/")]
    assert ["$VENV/bin/ruff", "check", "."] in [t[:3] for t in tools]
    assert ["$VENV/bin/ruff", "format", "--check", "."] in tools
    assert ["$VENV/bin/python", "-m", "mypy"] in [t[:3] for t in tools]
    assert ["PYTEST=($VENV/bin/python", "-m", "pytest"] == commands_starting("PYTEST=(")[0][:3]
    runs = commands_starting('"${PYTEST[@]}"')
    selections = sorted(
        (run[run.index("-m") + 1], tuple(a for a in run if a.startswith(("tests/", "--ignore="))))
        for run in runs
        if "-m" in run
    )
    # Every test runs: the parallel pass takes all but the timing tests, which run after it in one
    # serial run, each with the machine to itself (beside the free-tier scenario's bot processes the
    # flood test's reply latency once missed its bound).
    assert selections == [
        ("not timing", ()),
        ("timing", ()),
    ], runs
    last_lint = max(commands.index(c) for c in commands if c[:1] == ["$VENV/bin/ruff"])
    assert all(commands.index(r) > last_lint for r in runs), "lint and types first"
    # mypy runs beside the parallel pass: started before it, waited for (its failure fails the run) after it.
    [mypy] = [c for c in commands if c[:3] == ["$VENV/bin/python", "-m", "mypy"]]
    assert mypy[-1] == "&" and commands.index(mypy) < min(commands.index(r) for r in runs)
    parallel = next(r for r in runs if "not timing" in r)
    waits = [i for i, c in enumerate(commands) if c == ["mypy_result"]]
    assert waits and waits[-1] > commands.index(parallel), "mypy's outcome is checked after the parallel pass"


def commands_starting(prefix: str) -> list[list[str]]:
    """The commands of .ci/run whose raw line starts with prefix (after indentation)."""
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    return [shlex.split(line, comments=True) for line in lines if line.startswith(prefix)]
