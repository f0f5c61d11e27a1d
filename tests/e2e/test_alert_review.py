"""Alert accuracy end to end: after acknowledging an alert, one optional tap records whether it needed action."""

from __future__ import annotations

from typing import Any

from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram
from sqlmodel import select
from test_checkins import enrolled

from rehab_bot import alert as alerts
from rehab_bot.bot import app as app_module
from rehab_bot.models import Alert, AlertReview, AuditLog, Patient


async def test_needed_action_is_recorded_once_by_staff_who_may(bot: Any, tg: FakeTelegram) -> None:
    admin = await make_staff(bot.db, role="admin", telegram_id=9301, name="Admin Rev")
    await make_staff(bot.db, telegram_id=9302, name="Dr Elsewhere")
    patient = await enrolled(bot, 9401, schedule=False)
    one, other, user = tg.user(9301), tg.user(9302), tg.user(9401)
    await user.send("I want to kill myself")
    await user.wait_for(lambda m: "Your care team has been told." in (m.text or ""))
    await bot.tick()  # the engine sends the alert
    [alert_message] = await one.wait_for(lambda m: "Possible crisis" in (m.text or ""), timeout=10)
    async with bot.db.session() as s:
        alert_id = (await s.exec(select(Alert.id).where(Alert.patient_id == patient.id))).one()

    # Before acknowledging, a verdict is refused.
    await one.press_data(f"st:rv:{alert_id}:1", alert_message.message_id)
    assert (await one.wait_for_answer()).text == "Acknowledge the alert first."
    one.mark_seen()
    await one.press("✅ Acknowledge", alert_message)
    await one.wait_for_answer()
    [acked] = await one.wait_for()
    assert acked.button_labels == ["Needed action", "No action needed"]

    # Forged verdicts: a bad value, an unknown alert, a staff member without write access.
    for forged, answer in (
        (f"st:rv:{alert_id}:2", "This button is no longer active."),
        (f"st:rv:{alert_id}", "This button is no longer active."),
        ("st:rv:424242:1", "This alert no longer exists."),
    ):
        await one.press_data(forged, acked.message_id)
        assert (await one.wait_for_answer()).text == answer, forged
    await other.send("/alerts")
    [listing] = await other.wait_for()
    await other.press_data(f"st:rv:{alert_id}:0", listing.message_id)
    assert "not your patient" in ((await other.wait_for_answer()).text or "")

    one.mark_seen()
    await one.press("Needed action", acked)
    assert (await one.wait_for_answer()).text == "Recorded: needed action."
    [done] = await one.wait_for()
    assert done.text.endswith("Needed action.") and not done.callback_data
    await one.press_data(f"st:rv:{alert_id}:0", acked.message_id)
    assert (await one.wait_for_answer()).text == "Already recorded: needed action."
    async with bot.db.session() as s:
        [review] = (await s.exec(select(AlertReview))).all()
        assert (review.alert_id, review.needed_action, review.staff_id) == (alert_id, True, admin.id)
        [audited] = (await s.exec(select(AuditLog).where(AuditLog.action == "alert.review"))).all()
        assert audited.detail == f"alert={alert_id} needed_action=yes"


async def test_a_double_tap_on_acknowledge_keeps_the_verdict_buttons(bot: Any, tg: FakeTelegram) -> None:
    # The second press of a double tap (acknowledged already, by the same person) edited the message
    # again without buttons: the verdict the first press offered was gone from the chat.
    await make_staff(bot.db, role="admin", telegram_id=9321, name="Admin Dee")
    await enrolled(bot, 9421, schedule=False)
    one, user = tg.user(9321), tg.user(9421)
    await user.send("I want to kill myself")
    await user.wait_for(lambda m: "Your care team has been told." in (m.text or ""))
    await bot.tick()
    [alert_message] = await one.wait_for(lambda m: "Possible crisis" in (m.text or ""), timeout=10)
    [acknowledge] = alert_message.callback_data
    one.mark_seen()
    await one.press_data(acknowledge, alert_message.message_id)
    first = one.last_query_id
    await one.press_data(acknowledge, alert_message.message_id)  # before the first press is answered
    await one.wait_for_answer()
    await tg.wait_until(lambda: {first, one.last_query_id} <= {a.query_id for a in one.callback_answers})
    await bot.handled()
    assert [a.text for a in one.callback_answers][-2:] == ["Acknowledged.", "Already acknowledged by Admin Dee."]
    acked = tg.message(one.chat_id, alert_message.message_id)
    assert "✅ Acknowledged by Admin Dee" in (acked.text or "")
    assert acked.button_labels == ["Needed action", "No action needed"]


async def test_a_colleague_who_acknowledged_in_the_therapists_place_can_give_the_verdict(
    bot: Any, tg: FakeTelegram
) -> None:
    # No admin, a patient without a therapist: the alert goes to every staff member and whoever it
    # reached may acknowledge it. The acknowledgement offers the verdict; pressing it was refused
    # with "P-... is not your patient", so the verdict was lost.
    await make_staff(bot.db, telegram_id=9311, name="Dr Ben")
    cleo = await make_staff(bot.db, telegram_id=9312, name="Dr Cleo")
    orphan, _ = await make_patient(bot.db, bot.clock, therapist_id=None, telegram_id=9411)
    async with bot.db.session() as session:
        row = await session.get(Patient, orphan.id)
        assert row is not None
        made = await alerts.raise_alert(
            session, row, kind="red_flag", severity="emergency", detail="new numbness",
            now=bot.clock.now(), clinic=bot.config.clinic,
        )  # fmt: skip
        assert made is not None
        await session.commit()
    await app_module.dispatch_job(bot.app)
    await bot.tick()
    colleague = tg.user(9312)
    [alert_message] = await colleague.wait_for(lambda m: "EMERGENCY alert" in (m.text or ""))
    colleague.mark_seen()
    await colleague.press("✅ Acknowledge", alert_message)
    assert (await colleague.wait_for_answer()).text == "Acknowledged."
    [acked] = await colleague.wait_for(lambda m: m.edited)
    assert acked.button_labels == ["Needed action", "No action needed"]
    await colleague.press("No action needed", acked)
    assert (await colleague.wait_for_answer()).text == "Recorded: no action needed."
    async with bot.db.session() as s:
        [review] = (await s.exec(select(AlertReview))).all()
    assert (review.alert_id, review.needed_action, review.staff_id) == (made.id, False, cleo.id)
