"""rehab-bot: a Telegram bot a clinic runs for its own patients after spine surgery."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rehab-bot")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
