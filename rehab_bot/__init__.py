"""rehab-bot: a Telegram bot a clinic runs for its own patients after spine surgery."""

import os
from importlib.metadata import PackageNotFoundError, version

# Opt in to python-telegram-bot's coming behaviour (RetryAfter.retry_after as a
# timedelta) instead of a deprecation warning on every 429; rehab_bot.transport
# reads both forms.
os.environ.setdefault("PTB_TIMEDELTA", "true")

try:
    __version__ = version("rehab-bot")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
