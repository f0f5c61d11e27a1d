"""Addresses in the patients' Mini App (core, no telegram): one place builds them.

The Mini App is served by the clinic's web app at ``[web] public_url``
(validated in config.py: https, or http on a loopback host). The chat links
into it with web_app buttons: a session's player, a check-in form, a result.
The web app's routes (rehab_bot/web/patient_app.py) use the same paths.
"""

from __future__ import annotations

HOME = "/app"
SESSION = "/app/session/{id}"  # the exercise player of one session
SESSION_MEDIA = "/app/session/{id}/media/{n}"  # the n-th exercise's photo, GIF or video (1-based)
CHECKINS = "/app/checkin"  # POST: start an on-demand check-in
CHECKIN = "/app/checkin/{id}"  # the form of one check-in (and its set)
RESULT = "/app/result"  # the newest check-in result: a red-flag reply
MESSAGES = "/app/messages"  # the patient's messages to the care team (privacy mode)
MYDATA = "/app/mydata"  # everything the clinic holds about the patient (as /mydata)
# The clinic dashboard's page of one patient (rehab_bot/web/patients.py), for staff.
STAFF_PATIENT = "/patients/{id}"


def _base(public_url: str) -> str:
    return public_url.rstrip("/")


def session_path(session_id: int) -> str:
    return SESSION.format(id=session_id)


def media_path(session_id: int, number: int) -> str:
    return SESSION_MEDIA.format(id=session_id, n=number)


def checkin_path(checkin_id: int) -> str:
    return CHECKIN.format(id=checkin_id)


def session_url(public_url: str, session_id: int) -> str:
    """The exercise player of one session."""
    return _base(public_url) + session_path(session_id)


def checkin_url(public_url: str, checkin_id: int) -> str:
    """The form of an opened check-in, by its row id: the address names no questionnaire (no health topic)."""
    return _base(public_url) + checkin_path(checkin_id)


def result_url(public_url: str) -> str:
    """The patient's latest check-in result (a red-flag reply is shown there)."""
    return _base(public_url) + RESULT


def home_url(public_url: str) -> str:
    """The Mini App's start page."""
    return _base(public_url) + HOME


def mydata_url(public_url: str) -> str:
    """The patient's "My data" page in the Mini App."""
    return _base(public_url) + MYDATA


def staff_patient_url(public_url: str, patient_id: int) -> str:
    """One patient's page on the clinic dashboard (staff sign in there; privacy mode points here)."""
    return _base(public_url) + STAFF_PATIENT.format(id=patient_id)


def messages_url(public_url: str) -> str:
    """Where the patient writes to the care team on the clinic's server (privacy mode)."""
    return _base(public_url) + MESSAGES
