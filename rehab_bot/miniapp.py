"""Addresses in the patients' Mini App (core, no telegram): one place builds them.

The Mini App is served by the clinic's web app at ``[web] public_url``
(validated in config.py: https, or http on a loopback host). The chat links
into it with web_app buttons: a session's player, a check-in form, a result.
"""

from __future__ import annotations


def _base(public_url: str) -> str:
    return public_url.rstrip("/")


def session_url(public_url: str, session_id: int) -> str:
    """The exercise player of one session."""
    return f"{_base(public_url)}/app/session/{session_id}"


def checkin_url(public_url: str, checkin_id: int) -> str:
    """The form of an opened check-in, by its row id: the address names no questionnaire (no health topic)."""
    return f"{_base(public_url)}/app/checkin/{checkin_id}"


def result_url(public_url: str) -> str:
    """The patient's latest check-in result (a red-flag reply is shown there)."""
    return f"{_base(public_url)}/app/result"


def home_url(public_url: str) -> str:
    """The Mini App's start page."""
    return f"{_base(public_url)}/app"
