"""axe-core in a Playwright page: the accessibility check every web page's test runs.

``serious(page)`` injects the vendored ``tests/data/axe/axe.min.js`` (npm ``axe-core``) and returns
the violations whose impact is serious or critical, as short readable strings, so a test can
``assert await serious(page) == []`` and print what is wrong when it is not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parents[1] / "data" / "axe" / "axe.min.js"
BLOCKING = ("serious", "critical")


async def violations(page: Any) -> list[dict[str, Any]]:
    """Every axe-core violation on the page as it is now (WCAG 2.x A/AA rules and best practices)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Compiled by the DevTools protocol, not by a <script> tag: the web app's
        # Content-Security-Policy (script-src 'self') would block an inline script.
        await page.evaluate("() => {\n" + AXE.read_text(encoding="utf-8") + "\n}")
    script = "async () => (await window.axe.run(document, {resultTypes: ['violations']})).violations"
    result = await page.evaluate(script)
    return list(result)


async def serious(page: Any) -> list[str]:
    """The serious and critical violations, one line each: rule id, help text and the first elements."""
    lines = []
    for item in await violations(page):
        if item.get("impact") in BLOCKING:
            targets = ", ".join(str(node.get("target")) for node in item.get("nodes", [])[:3])
            lines.append(f"{item['id']} ({item['impact']}): {item['help']} at {targets}")
    return lines
