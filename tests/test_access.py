"""rehab_bot.access: what each role may see and do with a patient."""

from __future__ import annotations

import pytest

from rehab_bot.access import Access, Forbidden, StaffError, access, is_admin, require
from rehab_bot.models import Patient, Role, Staff


def member(role: Role, id_: int, *, active: bool = True) -> Staff:
    return Staff(id=id_, telegram_id=100 + id_, name=f"S{id_}", role=role.value, active=active)


def test_admins_change_everyone_therapists_their_own_and_only_view_the_others() -> None:
    admin, own, colleague = member(Role.ADMIN, 1), member(Role.THERAPIST, 2), member(Role.THERAPIST, 3)
    patient = Patient(alias="LWS-1", therapist_id=2)
    assert [access(s, patient) for s in (admin, own, colleague, None)] == [
        Access.WRITE,
        Access.WRITE,
        Access.READ,
        Access.NONE,
    ]
    assert access(member(Role.ADMIN, 4, active=False), patient) == Access.NONE, "removed staff lose access"
    assert is_admin(admin) and not is_admin(own) and not is_admin(None)
    assert not is_admin(member(Role.ADMIN, 5, active=False))


def test_require_refuses_with_a_reason_fit_to_show() -> None:
    patient = Patient(alias="LWS-1", therapist_id=2)
    require(member(Role.THERAPIST, 3), patient, Access.READ)
    with pytest.raises(Forbidden, match="LWS-1 is not your patient: you can view, but not change"):
        require(member(Role.THERAPIST, 3), patient, Access.WRITE)
    with pytest.raises(StaffError, match="not allowed"):
        require(member(Role.THERAPIST, 3, active=False), patient, Access.READ)
