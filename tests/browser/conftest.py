"""Real Chromium for the web tests: Playwright for Python driving Debian's Chromium.

Playwright's own browser download cannot be reached from here, so the browser is the system's,
through ``executable_path``: ``REHAB_BOT_CHROMIUM`` if set, else Debian's headless shell
(``chromium-headless-shell``, built from the same ``chromium`` source: the build Playwright itself
runs for headless tests), else the full ``chromium``. The headless shell leaves out the browser's
user interface: the 37 browser tests took 64 s of CPU with it against 124 to 136 s with the full
``chromium`` (``pytest -n 2 tests/browser``, one run each, idle 2-core machine, 2026-12-01), with the
same Blink and V8. ``.ci/run`` installs both with apt-get. Under ``CI=true`` a missing browser or
Playwright fails the test; elsewhere the browser tests skip with the reason.

Fixtures (async; every test and fixture of a pytest process runs in one event loop, pyproject.toml):

- ``browser``: a headless Chromium, started once per pytest process (each xdist worker) with its
  Playwright driver, on first use: starting both for each test cost about 1.2 s of CPU (the
  driver 0.8 s, Chromium 0.4 s) and 1 s of wall time;
- ``page``: a fresh context (its own cookies and storage) and page for each test, at desktop width;
  ``phone_page`` at phone width, ``tablet_page`` at a portrait tablet's (768x1024). Nothing of one
  test's browsing is seen by the next.

Every test under this folder gets the ``browser`` marker, and ``slow``: each drives a real browser
through a whole page or journey, so the fast suite (``pytest -m "not slow"``) leaves them to
``.ci/run``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

CHROMIUM = (
    os.environ.get("REHAB_BOT_CHROMIUM")
    or shutil.which("chromium-headless-shell")
    or shutil.which("chromium")
    or "/usr/bin/chromium"
)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 768, "height": 1024}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests must run under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    if not os.path.exists(CHROMIUM):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium-headless-shell)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def _page(browser: Any, viewport: dict[str, int], **options: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport=viewport, **options)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.console_errors = errors  # read by tests that assert a clean console
    try:
        yield page
    finally:
        await context.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    async for made in _page(browser, DESKTOP):
        yield made


@pytest.fixture
async def phone_page(browser: Any) -> AsyncIterator[Any]:
    async for made in _page(browser, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2):
        yield made


@pytest.fixture
async def tablet_page(browser: Any) -> AsyncIterator[Any]:
    async for made in _page(browser, TABLET, is_mobile=True, has_touch=True, device_scale_factor=2):
        yield made


# The running bot and the fake Bot API of the end-to-end tests: the web app is served by the bot.
from e2e.conftest import bot_factory, pace_time, tg  # noqa: E402, F401
