"""What handlers and jobs share: the :class:`Services` of the running bot, the typed :data:`App`, :func:`svc`.

A leaf of the Telegram layer: it imports no other module of rehab_bot.bot,
so every feature module can import it without reaching back into
rehab_bot.bot.app, the composition root that imports them all.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, TypeAlias, cast

from telegram.ext import Application, ContextTypes, ExtBot, JobQueue

from rehab_bot.clock import Clock
from rehab_bot.config import Config
from rehab_bot.content import Content
from rehab_bot.db import Database
from rehab_bot.health import HealthServer
from rehab_bot.metrics import Metrics
from rehab_bot.ratelimit import Pacer
from rehab_bot.receiver import Holder
from rehab_bot.reminders import Dispatcher
from rehab_bot.send_budget import SendBudget
from rehab_bot.web.app import WebServer

# The Application as ApplicationBuilder().build() makes it (default context, plain dicts, a job queue).
App: TypeAlias = Application[
    ExtBot[Any],
    ContextTypes.DEFAULT_TYPE,
    dict[Any, Any],
    dict[Any, Any],
    dict[Any, Any],
    JobQueue[ContextTypes.DEFAULT_TYPE],
]
Context: TypeAlias = ContextTypes.DEFAULT_TYPE
# What carries bot_data: a handler's or job's context, or the Application itself.
Host: TypeAlias = Context | App


@dataclass
class Services:
    """What handlers and jobs need, shared through bot_data["services"]; nothing is pickled."""

    config: Config
    db: Database
    clock: Clock
    metrics: Metrics
    pacer: Pacer
    dispatcher: Dispatcher | None = None
    health: HealthServer | None = None
    # The clinic's web app ([web] listen), when on.
    web: WebServer | None = None
    receive_updates: bool = True
    mode: str = "polling"
    # This process's hold on the receiver lease (rehab_bot.receiver), while it receives updates.
    lease: Holder | None = None
    # PostgreSQL: this process's share of the rate budget all sending processes split.
    send_budget: SendBudget | None = None
    # Loaded once in build_application; invalid content stops the start (ContentError).
    content: Content = field(default_factory=Content)
    # The menu each staff chat was last given, by Telegram id ("role:language", or "" for none).
    staff_menus: dict[int, str] = field(default_factory=dict)
    # Set by serve(): stops the process (the lease was lost, or SIGINT/SIGTERM).
    stop: asyncio.Event | None = None
    # The "[database] echo is on" warning was logged once already.
    echo_warned: bool = False


def svc(holder: Host) -> Services:
    """The Services of the running bot, from a handler's context or the Application (both have bot_data)."""
    result = holder.bot_data["services"]
    assert isinstance(result, Services)
    return result


def app_of(context: Context) -> App:
    """The running Application of a handler's or job's context (PTB types it with an unbound parameter)."""
    return cast(App, context.application)
