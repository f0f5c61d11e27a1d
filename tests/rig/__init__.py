"""Test rig: fakes of the outside world (the Telegram Bot API) for end-to-end tests."""
