"""Who may see and do what: the roles of clinic staff and their access to a patient.

Roles are ``admin`` and ``therapist`` (:class:`rehab_bot.models.Role`), read
from the database on every call: a member removed or demoted loses access at
their next press, not at the next restart. (The README's "Staff access"
section says the same.)

* An admin may see and change every patient, create staff invites, and is
  who unacknowledged emergency alerts escalate to.
* A therapist may see and change their own patients (Patient.therapist_id).
* A therapist may *see* a colleague's patient (cover during absences is part
  of clinic work) but not change, pause, discharge or export them, nor
  acknowledge their alerts: :func:`access` returns READ for them.

Plain Python: no telegram or database imports.
"""

from __future__ import annotations

import enum

from rehab_bot.i18n import t
from rehab_bot.models import Patient, Role, Staff


class StaffError(ValueError):
    """Bad input or a refused action; the message is fit to show the staff member.

    The message is a msgid with {placeholders} filled from keyword arguments (mark it with N_
    where it is raised): ``str(exc)`` is the English text (the chat, the CLI), :meth:`text` the
    staff member's language (the web app). A value that is itself a msgid is an i18n.Label.
    """

    def __init__(self, msgid: str = "", /, **kwargs: object) -> None:
        self.msgid, self.kwargs = msgid, kwargs
        super().__init__(msgid.format(**kwargs) if kwargs else msgid)

    def text(self, lang: str) -> str:
        """The message in lang."""
        return t(lang, self.msgid, **self.kwargs)


class Forbidden(StaffError):
    """The staff member may not do this to this patient."""


class Access(enum.IntEnum):
    """What a staff member may do with a patient: nothing, view, or view and change."""

    NONE = 0
    READ = 1
    WRITE = 2


def is_admin(staff: Staff | None) -> bool:
    """An active admin."""
    return staff is not None and staff.active and staff.role == Role.ADMIN.value


def access(staff: Staff | None, patient: Patient) -> Access:
    """What this staff member may do with this patient (see the module docstring)."""
    if staff is None or not staff.active:
        return Access.NONE
    if staff.role == Role.ADMIN.value or patient.therapist_id == staff.id:
        return Access.WRITE
    if staff.role == Role.THERAPIST.value:
        return Access.READ
    return Access.NONE


def require(staff: Staff, patient: Patient, needed: Access) -> None:
    """Raise Forbidden unless staff has at least the needed access to patient."""
    if access(staff, patient) < needed:
        if needed == Access.WRITE and access(staff, patient) == Access.READ:
            raise Forbidden(f"{patient.alias} is not your patient: you can view, but not change, them.")
        raise Forbidden("You are not allowed to do this.")
