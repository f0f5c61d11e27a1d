"""An alert's detail in the reader's language (rehab_bot.alert_detail), and the alerts that carry it.

A German-speaking therapist read the English detail ("Wound and symptom check: ⚠ New trouble controlling
your bladder ... Yes") inside alerts; the detail is now kept as parts that render in any language, next to
the English text Alert.detail keeps for exports and the audit. Alerts raised before keep their detail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from factories import make_config, make_patient, make_staff
from sqlmodel import col, select
from test_redflag import ALERT_CHAT, CLINIC, _alert_deliveries, _alerts, _answer_all

from rehab_bot import alert as alert_core
from rehab_bot import alert_detail as parts
from rehab_bot import caregiver, checkin, redflag
from rehab_bot.clock import FakeClock
from rehab_bot.content import Content, load_content
from rehab_bot.content.checkins import AlertRule
from rehab_bot.db import Database
from rehab_bot.i18n import N_
from rehab_bot.models import Alert, Delivery, Patient

AT = datetime(2026, 6, 10, 17, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(None)


# --------------------------------------------------------------------------- rendering (pure)


def test_a_message_renders_in_each_language_with_its_values() -> None:
    told = parts.message(N_("The patient was told to contact the clinic today."))
    assert parts.render([told], "en") == "The patient was told to contact the clinic today."
    assert (
        parts.render([told], "de")
        == "Der Patientin oder dem Patienten wurde gesagt, sich heute bei der Klinik zu melden."
    )
    recent = parts.message(N_("Recent entries (oldest first): {scores}"), scores=parts.join(", ", 5, 6.5, 7))
    assert parts.render([recent], "en") == "Recent entries (oldest first): 5, 6.5, 7"
    assert parts.render([recent], "de") == "Letzte Einträge (älteste zuerst): 5, 6,5, 7", (
        "figures as German writes them"
    )


def test_content_texts_nested_messages_and_fixed_figures() -> None:
    line = parts.join(
        "", "⚠ ", parts.content({"en": "Chest pain?", "de": "Brustschmerzen?"}), " ", parts.message("Yes")
    )
    baseline = parts.message(
        N_("{rise} above the baseline {baseline} (first {days} days) [{rule}]"),
        rise=parts.fixed(3),
        baseline=parts.fixed(2.25),
        days=3,
        rule="pain-above-baseline",
    )
    assert parts.render([line, baseline], "en") == (
        "⚠ Chest pain? Yes\n3.0 above the baseline 2.2 (first 3 days) [pain-above-baseline]"
    )
    assert parts.render([line, baseline], "de") == (
        "⚠ Brustschmerzen? Ja\n3,0 über dem Ausgangswert 2,2 (erste 3 Tage) [pain-above-baseline]"
    )
    # A content text without the reader's language: English; a language nobody supports: English.
    assert parts.render([parts.content({"en": "Walk", "fr": "Marcher"})], "de") == "Walk"
    assert parts.render([line], "fr") == "⚠ Chest pain? Yes"


def test_plural_messages_pick_the_form_for_n() -> None:
    def silent(n: int) -> parts.Value:
        return parts.plural_message(
            "No answer from the patient for {n} hour (rule '{rule}': {hours} h).",
            "No answer from the patient for {n} hours (rule '{rule}': {hours} h).",
            n,
            rule="inactive-48h",
            hours=1,
        )

    assert parts.english([silent(1)]) == "No answer from the patient for 1 hour (rule 'inactive-48h': 1 h)."
    assert parts.render([silent(50)], "de") == (
        "Seit 50 Stunden keine Antwort der Patientin oder des Patienten (Regel 'inactive-48h': 1 h)."
    )


def test_the_patients_own_words_stay_as_written_in_every_language() -> None:
    words = "Ich will nicht mehr {leben} «}"  # braces and quotes are text, not placeholders
    quoted = parts.message(N_("Message: «{message}»"), message=words)
    assert parts.render([quoted], "de") == f"Nachricht: «{words}»"
    assert parts.render([quoted], "en") == f"Message: «{words}»"


def test_an_alert_without_parts_shows_its_stored_detail() -> None:
    """Alerts raised before the parts (and plain-text details) read as they were stored, in any language."""
    old = Alert(patient_id=1, severity="high", kind="red_flag", detail="Pain:\n⚠ Chest pain? Yes")
    assert old.detail_parts is None
    assert parts.text(old, "de") == parts.text(old, "en") == "Pain:\n⚠ Chest pain? Yes"
    for broken in ("not json", '{"msgid": "x"}', '[{"unknown": 1}]', '[{"msgid": "{a}", "params": {"a": true}}]'):
        old.detail_parts = broken
        assert parts.text(old, "de") == old.detail, broken


def test_parts_survive_storage_and_a_line_is_appended_to_both_columns() -> None:
    detail = [parts.message(N_("{questionnaire}:"), questionnaire=parts.content({"en": "Pain", "de": "Schmerzen"}))]
    alert = Alert(
        patient_id=1, severity="high", kind="red_flag", detail=parts.english(detail), detail_parts=parts.dumps(detail)
    )
    assert parts.loads(alert.detail_parts) == detail
    proxy = parts.message(N_("Answered by the patient's caregiver on their behalf (proxy answer)."))
    alert.detail, alert.detail_parts = parts.appended(alert, proxy)
    assert alert.detail == "Pain:\nAnswered by the patient's caregiver on their behalf (proxy answer)."
    assert parts.text(alert, "de") == (
        "Schmerzen:\nVon der Betreuungsperson im Namen der Patientin oder des Patienten beantwortet "
        "(stellvertretende Antwort)."
    )
    old = Alert(patient_id=1, severity="high", kind="red_flag", detail="Pain: 8")
    assert parts.appended(old, proxy) == (
        "Pain: 8\nAnswered by the patient's caregiver on their behalf (proxy answer).",
        None,
    )


def test_score_rule_reasons_are_messages_in_both_languages() -> None:
    rule = AlertRule(id="pain-trend", kind="trend", severity="high", questionnaire="pain", rise=2, days=3)
    history = [redflag.Entry(n + 1, AT.date() + timedelta(days=n), score) for n, score in enumerate((2, 3, 4.5))]
    reason = redflag.evaluate(rule, history)
    assert parts.english([reason]) == "rose every day for 3 days: 2.0 → 3.0 → 4.5 [pain-trend]"
    assert parts.render([reason], "de") == "an 3 Tagen jeden Tag gestiegen: 2,0 → 3,0 → 4,5 [pain-trend]"


# --------------------------------------------------------------------------- alerts raised and read


async def test_a_red_flag_reads_in_german_for_a_german_therapist_and_in_english_in_the_alert_chat(
    db: Database, clock: FakeClock, content: Content
) -> None:
    therapist = await make_staff(db, language="de")
    patient, _ = await make_patient(db, clock, times=(), therapist_id=therapist.id, created_at=clock.now())
    await _answer_all(db, clock, content, patient, "symptoms", [1, 1])  # yes, then bladder: yes
    [alert] = await _alerts(db)
    symptoms = content.questionnaires["symptoms"]
    bladder = next(item for item in symptoms.items if item.id == "bladder").text
    # The English detail stays in Alert.detail (exports, audit) ...
    assert "Wound and symptom check:" in alert.detail and "call the emergency number now" in alert.detail
    # ... and the parts read in German.
    german = parts.text(alert, "de")
    assert german.startswith("Wunde und Beschwerden:")
    assert f"⚠ {bladder['de'][:40]}" in german and german.split("⚠ ", 1)[1].splitlines()[0].endswith(" Ja")
    assert "jetzt den Notruf zu wählen" in german
    assert "bladder" not in german and "Yes" not in german

    bodies = {d.chat_id: d.body for d in await _alert_deliveries(db)}
    to_therapist, to_chat = bodies[therapist.telegram_id], bodies[ALERT_CHAT]
    assert to_therapist.startswith(f"⚠️ Warnung NOTFALL für {patient.alias}\nWarnzeichen in einer Abfrage.\n")
    assert german in to_therapist and "Ausgelöst " in to_therapist
    assert "bladder" not in to_therapist and "Raised" not in to_therapist
    # The clinic's alert chat reads the clinic's language (English here), as before.
    assert to_chat.startswith(f"⚠️ EMERGENCY alert for {patient.alias}\nRed flag in a check-in.\n")
    assert alert.detail in to_chat


async def test_a_crisis_alert_quotes_the_patient_as_written_inside_german_text(
    db: Database, clock: FakeClock, content: Content
) -> None:
    therapist = await make_staff(db, language="de")
    patient, _ = await make_patient(db, clock, times=(), therapist_id=therapist.id, created_at=clock.now())
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        await redflag.on_crisis(session, row, content, CLINIC, "I want to end my life", clock.now())
        await session.commit()
    [alert] = await _alerts(db)
    german = parts.text(alert, "de")
    assert "Krisenliste" in german and german.endswith("Nachricht: «I want to end my life»")
    assert alert.detail.endswith("Message: «I want to end my life»")


async def test_a_german_admins_escalation_is_german_and_the_routing_reason_too(
    db: Database, clock: FakeClock, content: Content
) -> None:
    """No responsible therapist: the alert goes to the admins, who read why, and its escalation, in German."""
    admin = await make_staff(db, role="admin", language="de", timezone="Europe/Berlin")
    patient, _ = await make_patient(db, clock, times=(), created_at=clock.now())
    await _answer_all(db, clock, content, patient, "symptoms", [1, 1])
    [alert] = await _alerts(db)
    [body] = [d.body for d in await _alert_deliveries(db) if d.chat_id == admin.telegram_id]
    assert "Warum Sie dies erhalten: keine zuständige Therapeutin, kein zuständiger Therapeut." in body
    config = make_config(clinic={"alert_chat_id": ALERT_CHAT})
    clock.set(clock.now() + timedelta(minutes=config.staff.escalation_minutes + 1))
    async with db.session() as session:
        assert await alert_core.escalate_overdue(session, clock.now(), config) == [alert.id]
        await session.commit()
        escalations = await session.exec(select(Delivery).where(col(Delivery.key).startswith(f"e{alert.id}:")))
        [escalation] = escalations.all()
    minutes = config.staff.escalation_minutes
    assert escalation.body.startswith(
        f"🚨 ESKALATION: Die Warnung (Stufe Notfall) für {patient.alias} (Warnzeichen in einer Abfrage) "
        f"ist seit {minutes} Minuten nicht bestätigt.\nWunde und Beschwerden:\n"
    )
    assert "zuständig: keine Therapeutin, kein Therapeut zugewiesen." in escalation.body
    assert parts.text(alert, "de") in escalation.body


async def test_an_old_alert_without_parts_is_escalated_with_its_stored_detail(db: Database, clock: FakeClock) -> None:
    admin = await make_staff(db, role="admin", language="de")
    patient, _ = await make_patient(db, clock, times=())
    assert patient.id is not None
    async with db.session() as session:
        session.add(
            Alert(
                patient_id=patient.id,
                severity="emergency",
                kind="red_flag",
                detail="bladder: yes",
                created_at=clock.now(),
            )
        )
        await session.commit()
    config = make_config()
    clock.set(clock.now() + timedelta(minutes=config.staff.escalation_minutes + 1))
    async with db.session() as session:
        assert len(await alert_core.escalate_overdue(session, clock.now(), config)) == 1
        await session.commit()
        [escalation] = (await session.exec(select(Delivery).where(Delivery.chat_id == admin.telegram_id))).all()
    assert escalation.body.startswith("🚨 ESKALATION") and "\nbladder: yes\n" in escalation.body


async def test_a_caregivers_proxy_answer_is_noted_in_the_readers_language(
    db: Database, clock: FakeClock, content: Content
) -> None:
    """The proxy note goes into the parts and English detail once, and into each queued message in its
    reader's language: German for the therapist, English for the clinic's alert chat."""
    therapist = await make_staff(db, language="de")
    patient, _ = await make_patient(db, clock, times=(), therapist_id=therapist.id, created_at=clock.now())
    now = clock.now()
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        link = await caregiver.invite(session, row, now, hours=24)
        await caregiver.open_link(session, link.code, 7_000_123, "en", now)
        await caregiver.consent(session, link, "Carl", now)
        [started] = await checkin.start(session, row, content, ["symptoms"], now)
        assert started.id is not None
        for index, value in ((0, 1), (1, 1)):  # yes, then bladder: yes
            result = await caregiver.proxy_answer(session, link, row, content, CLINIC, started.id, index, value, now)
            assert result.status == "recorded"
        await session.commit()
    [alert] = await _alerts(db)
    assert alert.detail.count(caregiver.PROXY_NOTE) == 1
    german = parts.text(alert, "de")
    assert german.endswith("(stellvertretende Antwort).") and caregiver.PROXY_NOTE not in german
    bodies = {d.chat_id: d.body for d in await _alert_deliveries(db)}
    assert bodies[therapist.telegram_id].count("(stellvertretende Antwort).") == 1
    assert caregiver.PROXY_NOTE not in bodies[therapist.telegram_id]
    assert bodies[ALERT_CHAT].count(caregiver.PROXY_NOTE) == 1
