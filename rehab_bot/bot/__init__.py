"""The Telegram layer: thin handlers that parse an update, call the core, render the reply."""
