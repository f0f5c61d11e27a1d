"""rehab-bot demo: the real bot against an embedded fake Bot API, with a page that shows both chats."""
