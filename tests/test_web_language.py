"""Which language a signed-out page speaks: the browser's Accept-Language, ranked, else the clinic's."""

import pytest

from rehab_bot.web.auth import browser_language


@pytest.mark.parametrize(
    ("header", "default", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "en", "de"),
        ("en-GB,en;q=0.9", "de", "en"),
        # A first language the bot does not speak: the next one it does, not the clinic's default.
        ("tr, de;q=0.8, en;q=0.5", "en", "de"),
        ("tr-TR,tr;q=0.9,en-US;q=0.8,en;q=0.7", "de", "en"),
        # q-values rank, whatever the order; q=0 means "not this one".
        ("en;q=0.2, de;q=0.9", "en", "de"),
        ("de;q=0, en", "de", "en"),
        ("de_AT", "en", "de"),
        ("", "de", "de"),
        ("*", "de", "de"),
        ("fr, es;q=0.5", "de", "de"),
        ("de;q=abc, en;q=0.5", "de", "en"),
        (";;,,", "en", "en"),
    ],
)
def test_the_browsers_first_language_the_bot_speaks(header: str, default: str, expected: str) -> None:
    assert browser_language(header, default) == expected
