"""The README as a clinic's IT person follows it: its commands and values work with the code."""

from __future__ import annotations

import re
from pathlib import Path

from rehab_bot.config import ConfigError, DeliveryConfig, load_config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_placeholder_tokens_pass_the_token_format_check(tmp_path: Path) -> None:
    texts = README + (ROOT / "compose.yaml").read_text(encoding="utf-8")
    tokens = re.findall(r"REHAB_BOT_TELEGRAM_TOKEN=([^\s`'\"]+)", texts)
    tokens += re.findall(r"printf '%s' '([^']+)' > secrets/telegram_token", texts)
    assert len(tokens) >= 2
    empty = tmp_path / "config.toml"
    empty.write_text("", encoding="utf-8")
    for token in tokens:
        try:
            load_config(empty, env={"REHAB_BOT_TELEGRAM_TOKEN": token})
        except ConfigError as exc:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"the README's token {token!r} fails: {exc}") from exc


def test_quiet_hours_are_explained_where_the_first_reminder_is_tried() -> None:
    defaults = DeliveryConfig()
    assert defaults.quiet_hours_start is not None and defaults.quiet_hours_end is not None
    start, end = defaults.quiet_hours_start.strftime("%H:%M"), defaults.quiet_hours_end.strftime("%H:%M")
    paragraphs = [p for p in README.split("\n\n") if "first reminder" in p.lower() and "quiet hours" in p.lower()]
    assert paragraphs, "the README must warn about quiet hours where it tells how to try the first reminder"
    [paragraph] = paragraphs
    assert start in paragraph and end in paragraph
    assert "held back" in paragraph and "/settings" in paragraph


def test_the_test_database_variable_is_documented_with_its_default() -> None:
    factories = (ROOT / "tests" / "factories.py").read_text(encoding="utf-8")
    match = re.search(r'"REHAB_BOT_TEST_PG_URL", "([^"]+)"', factories)
    assert match, "tests/factories.py reads REHAB_BOT_TEST_PG_URL with a default"
    assert f"`REHAB_BOT_TEST_PG_URL`, default\n`{match.group(1)}`" in README


def test_the_first_command_starts_the_demo_the_second_runs_the_tests_then_a_real_token() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    first, second = blocks[0].strip(), blocks[1].strip()
    assert first == "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/rehab-bot demo"
    assert second == "bash .ci/run"
    real = next(
        i for i, block in enumerate(blocks) if "REHAB_BOT_TELEGRAM_TOKEN=" in block and "rehab-bot run" in block
    )
    assert real >= 2, "running with a real token comes after the demo and the tests"
    # The options the README names are the command's own.
    from rehab_bot.cli import build_parser

    demo_help = build_parser()._subparsers._group_actions[0].choices["demo"].format_help()  # type: ignore[union-attr]
    for option in ("--no-browser", "--port", "--lang"):
        assert option in demo_help and option in README
