"""The web app's secret: from [web] secret, or a file made once with mode 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from rehab_bot.config import WebConfig
from rehab_bot.web.context import load_secret


def test_the_secret_file_is_made_private_once_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "web-secret"
    first = load_secret(WebConfig(secret_file=path))
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(WebConfig(secret_file=path)) == first
    assert load_secret(WebConfig(secret="x" * 40, secret_file=path)) == b"x" * 40
