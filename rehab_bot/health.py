"""The optional HTTP endpoint: /healthz for Docker and load balancers, /metrics for Prometheus.

Runs inside the bot's event loop (aiohttp), in polling and webhook mode alike,
on its own port ([http] listen), so it never shares a port with the webhook.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rehab_bot.metrics import Metrics

Check = Callable[[], Awaitable[dict[str, bool | str]]]


class HealthServer:
    """A tiny aiohttp app with /healthz and /metrics."""

    def __init__(
        self, host: str, port: int, check: Check, metrics: Metrics, refresh: Callable[[], Awaitable[None]]
    ) -> None:
        self.host, self.port = host, port
        self._check = check
        self._metrics = metrics
        self._refresh = refresh
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and serve."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_view)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # the bound port, when 0 was asked for
        if server is not None and server.sockets:  # type: ignore[attr-defined]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        status = await self._check()
        # "alerts" (does any staff member or alert chat receive alerts?) is reported, not a reason for 503.
        healthy = all(v is True for k, v in status.items() if k not in ("mode", "alerts"))
        return web.Response(status=200 if healthy else 503, text=json.dumps(status), content_type="application/json")

    async def _metrics_view(self, _request: web.Request) -> web.Response:
        await self._refresh()
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
