"""A stand-in for Telegram's telegram-web-app.js in Chromium: ``window.Telegram.WebApp`` with initData the test signs.

Telegram's own script (vendored at /static/vendor/telegram/telegram-web-app.js) reads initData from the
address Telegram opens; a test has no Telegram client, so :func:`open_as` routes that script to this stub,
which hands the page signed initData, a theme, and BackButton/MainButton/HapticFeedback objects that
record their calls in ``window.__tg`` for the test to read; ``window.__tg.emit(name)`` fires a Telegram
event (``themeChanged``) to the page's handlers.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from webrig import init_data, web_url

STUB = """
(function () {
  var calls = [];
  var handlers = {};
  function button(name) {
    return {
      isVisible: false,
      setText: function (text) { calls.push([name + ".setText", text]); this.text = text; return this; },
      show: function () { calls.push([name + ".show"]); this.isVisible = true; return this; },
      hide: function () { calls.push([name + ".hide"]); this.isVisible = false; return this; },
      onClick: function (fn) { handlers[name] = fn; return this; },
    };
  }
  var events = {};
  window.__tg = {
    calls: calls,
    press: function (name) { handlers[name](); },
    emit: function (name) { (events[name] || []).forEach(function (fn) { fn(); }); },
  };
  window.Telegram = {
    WebApp: {
      initData: %(init_data)s,
      initDataUnsafe: {},
      colorScheme: %(scheme)s,
      themeParams: %(theme)s,
      ready: function () { calls.push(["ready"]); },
      expand: function () { calls.push(["expand"]); },
      onEvent: function (name, fn) { (events[name] = events[name] || []).push(fn); },
      BackButton: button("BackButton"),
      MainButton: button("MainButton"),
      HapticFeedback: {
        notificationOccurred: function (kind) { calls.push(["haptic", kind]); },
        impactOccurred: function (kind) { calls.push(["impact", kind]); },
        selectionChanged: function () { calls.push(["selection"]); },
      },
    },
  };
})();
"""
LIGHT = {
    "bg_color": "#ffffff",
    "text_color": "#000000",
    "hint_color": "#707579",
    "link_color": "#2481cc",
    "button_color": "#2481cc",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#f4f4f5",
}
DARK = {
    "bg_color": "#212121",
    "text_color": "#ffffff",
    "hint_color": "#aaaaaa",
    "link_color": "#8774e1",
    "button_color": "#8774e1",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#181818",
}


async def open_as(
    page: Any,
    bot: Any,
    telegram_id: int,
    path: str,
    *,
    lang: str = "en",
    at: datetime | None = None,
    dark: bool = False,
) -> Any:
    """Open a Mini App page as Telegram would for this user: the stub WebApp carries initData signed at ``at``."""
    data = init_data(telegram_id, at or bot.clock.now(), lang=lang)
    script = STUB % {
        "init_data": json.dumps(data),
        "scheme": json.dumps("dark" if dark else "light"),
        "theme": json.dumps(DARK if dark else LIGHT),
    }

    async def stub(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/javascript", body=script)

    await page.route("**/static/vendor/telegram/telegram-web-app.js*", stub)
    return await page.goto(web_url(bot) + path)


async def calls(page: Any) -> list[list[str]]:
    return list(await page.evaluate("() => window.__tg.calls"))
