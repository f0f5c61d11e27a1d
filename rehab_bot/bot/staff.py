"""Clinician tools in Telegram: staff roles, /invite, /patients, /patient, /alerts."""

from __future__ import annotations

from typing import Any

from telegram import Bot
from telegram.ext import Application

from rehab_bot.models import Staff


async def set_staff_menu(bot: Bot, staff: Staff) -> None:
    """Show the staff command menu in this staff member's private chat (setMyCommands, chat scope)."""


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Add the staff handlers."""
