"""A German-speaking therapist (Staff.language "de") reads the staff views in Telegram in German.

The alert messages and their details were German already, but /alerts, /patients, /patient, the
Acknowledge and review buttons and their answers were English around them; and in privacy mode the
neutral alert was English. Aliases, names and the patient's own words stay as they are.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram

from rehab_bot import alert as alerts
from rehab_bot.bot.common import UNKNOWN_COMMAND
from rehab_bot.i18n import t
from rehab_bot.models import Patient

THERAPIST = 7901


async def _raise(bot: Any, patient_id: int | None, detail: str) -> int:
    async with bot.db.session() as session:
        patient = await session.get(Patient, patient_id)
        assert patient is not None
        raised = await alerts.raise_alert(
            session,
            patient,
            kind="red_flag",
            severity="emergency",
            detail=detail,
            now=bot.clock.now(),
            clinic=bot.config.clinic,
        )
        await session.commit()
    assert raised is not None and raised.id is not None
    return raised.id


async def _german_therapist(bot: Any) -> Patient:
    therapist = await make_staff(bot.db, telegram_id=THERAPIST, name="Dr Berta", language="de")
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        alias="LWS-0901",
        therapist_id=therapist.id,
        programme_id="lumbar-example",
        surgery_date=date(2026, 6, 1),
        times=(),
    )
    return patient


async def test_a_german_therapist_acknowledges_and_reviews_an_alert_message_in_german(
    bot: Any, tg: FakeTelegram
) -> None:
    patient = await _german_therapist(bot)
    doc = tg.user(THERAPIST, language_code="de")
    # The alert message itself: German, with a German Acknowledge button and German review buttons.
    await _raise(bot, patient.id, "new bladder problems")
    await bot.tick()
    [message] = await doc.wait_for(lambda m: "LWS-0901" in (m.text or ""))
    assert (message.text or "").startswith("⚠️ Warnung NOTFALL für LWS-0901")
    assert message.button_labels == ["✅ Bestätigen"]
    await doc.press("✅ Bestätigen", message)
    assert (await doc.wait_for_answer()).text == "Bestätigt."
    [acknowledged] = await doc.wait_for(lambda m: "✅ Bestätigt von Dr Berta" in (m.text or ""))
    assert acknowledged.button_labels == ["Handlungsbedarf", "Kein Handlungsbedarf"]
    await doc.press("Handlungsbedarf", acknowledged)
    assert (await doc.wait_for_answer()).text == "Erfasst: Handlungsbedarf."
    [reviewed] = await doc.wait_for(lambda m: (m.text or "").endswith("\nHandlungsbedarf."))
    assert "Acknowledged" not in (reviewed.text or "") and "action" not in (reviewed.text or "")


async def test_a_german_therapist_reads_alerts_patients_and_the_patient_page_in_german(
    bot: Any, tg: FakeTelegram
) -> None:
    patient = await _german_therapist(bot)
    doc = tg.user(THERAPIST, language_code="de")
    # /alerts: the list, its button, the answer and the list after acknowledging.
    await _raise(bot, patient.id, "numb saddle area")
    await bot.tick()
    await doc.wait_for(lambda m: "numb saddle area" in (m.text or ""))
    await doc.send("/alerts")
    [card] = await doc.wait_for(lambda m: "st:ak:" in ",".join(m.callback_data))
    text = card.text or ""
    assert "Offene Warnungen Ihrer Patient/innen: 1." in text
    assert "NOTFALL · LWS-0901 · Warnzeichen in einer Abfrage · " in text and "numb saddle area" in text
    assert "Open alerts" not in text and "red_flag" not in text and "EMERGENCY" not in text, text
    assert card.button_labels == ["✅ Nr. 1 bestätigen: LWS-0901"]
    await doc.press("✅ Nr. 1 bestätigen: LWS-0901", card)
    assert (await doc.wait_for_answer()).text == "Bestätigt."
    [edited] = await doc.wait_for(lambda m: "bestätigt von Dr Berta" in (m.text or ""))
    assert "Keine offenen Warnungen bei Ihren Patient/innen." in (edited.text or "")
    assert "LWS-0901 (Warnzeichen in einer Abfrage) bestätigt von Dr Berta" in (edited.text or "")
    assert "No open alerts" not in (edited.text or "") and "acknowledged" not in (edited.text or "")

    # /patients: the list.
    await doc.send("/patients")
    [listing] = await doc.wait_for(lambda m: "LWS-0901 ·" in (m.text or ""))
    text = listing.text or ""
    assert text.startswith("Ihre Patient/innen: 1 — Seite 1 von 1")
    assert "LWS-0901 · aktiv · Tag " in text and "Therapietreue 7 T." in text and "letzter Schmerz" in text
    assert "Your patients" not in text and "adherence" not in text and "last pain" not in text, text
    assert "Alle Patient/innen" in listing.button_labels

    # /patient: one patient, with an open alert, and its buttons.
    await _raise(bot, patient.id, "fever and wound redness")
    await doc.send("/patient LWS-0901")
    [detail] = await doc.wait_for(lambda m: (m.text or "").startswith("LWS-0901 — "))
    text = detail.text or ""
    assert text.startswith("LWS-0901 — aktiv\nOP (lumbal) am 01.06.2026 (Tag ")  # was "am 2026-06-01"
    # The patient's session times name their zone; an alert's time is the reader's, as German writes it
    # (it read "(06-10 07:00 CEST)").
    assert re.search(r"Übungszeiten: [0-9:, ]+ \(Europe/Berlin\)", text), text
    assert re.search(r"Warnzeichen in einer Abfrage \(\d{1,2}\. \w+, \d\d:\d\d CES?T\)", text), text
    assert "· Therapeut/in: Dr Berta" in text and "Programm: " in text and "Übungszeiten: " in text
    assert "Therapietreue: 7 Tage " in text and "Letzter Schmerz – · letzte Stimmung – · offene Warnungen 1" in text
    assert "⚠️ Notfall Warnzeichen in einer Abfrage (" in text and "fever and wound redness" in text
    assert "Noch keine Antworten." in text and "Keine Notizen." in text
    for english in ("therapist:", "Adherence", "Last pain", "open alerts", "No answers yet", "No notes", "surgery"):
        assert english not in text, english
    assert {"Programm", "Übungszeiten", "Pausieren", "Entlassen", "CSV exportieren", "FHIR exportieren"} == set(
        detail.button_labels
    )
    await doc.send("/help")
    [helped] = await doc.wait_for(lambda m: "/alerts" in (m.text or ""))
    assert (helped.text or "").startswith("Sie nutzen diesen Bot als Teil des Klinikteams")
    assert "/alerts – Offene Warnungen bestätigen" in (helped.text or "") and "/staffinvite" not in (helped.text or "")
    await doc.send("/patient NOPE-1")
    [unknown] = await doc.wait_for(lambda m: "NOPE-1" in (m.text or ""))
    assert unknown.text == "Keine Patientin und kein Patient hat das Pseudonym 'NOPE-1'. /patients listet alle auf."


async def test_an_english_therapist_keeps_the_english_views(bot: Any, tg: FakeTelegram) -> None:
    therapist = await make_staff(bot.db, telegram_id=THERAPIST + 1, name="Dr Ann")
    patient, _ = await make_patient(bot.db, bot.clock, alias="LWS-0902", therapist_id=therapist.id, times=())
    doc = tg.user(THERAPIST + 1, language_code="de")  # the app's language is not the staff member's
    await _raise(bot, patient.id, "new bladder problems")
    await bot.tick()
    [message] = await doc.wait_for(lambda m: "LWS-0902" in (m.text or ""))
    assert message.button_labels == ["✅ Acknowledge"]
    await doc.send("/alerts")
    [card] = await doc.wait_for(lambda m: "st:ak:" in ",".join(m.callback_data))
    assert "Open alerts for your patients: 1." in (card.text or "")
    assert "EMERGENCY · LWS-0902 · red_flag · " in (card.text or "")
    await doc.send("/patient LWS-0902")
    [detail] = await doc.wait_for(lambda m: (m.text or "").startswith("LWS-0902 — active"))
    assert "⚠️ emergency red_flag (" in (detail.text or "") and "Recent answers" not in (detail.text or "")
    await doc.send("/help")
    [helped] = await doc.wait_for(lambda m: "/alerts" in (m.text or ""))
    assert "/alerts – Open alerts to acknowledge" in (helped.text or "") and "Befehle" not in (helped.text or "")


PUBLIC = "https://rehab.clinic.test"


async def test_in_privacy_mode_the_german_therapist_gets_the_neutral_alert_and_the_link_in_german(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    bot = await bot_factory(privacy={"health_data_in_chat": False}, web={"public_url": PUBLIC})
    therapist = await make_staff(bot.db, telegram_id=THERAPIST + 2, name="Dr Berta", language="de")
    patient, _ = await make_patient(bot.db, bot.clock, alias="LWS-0903", therapist_id=therapist.id, times=())
    await _raise(bot, patient.id, "new bladder problems")
    await bot.tick()
    doc = tg.user(THERAPIST + 2)
    [neutral] = await doc.wait_for(lambda m: "LWS-0903" in (m.text or ""))
    assert neutral.text == "⚠️ Warnung NOTFALL für LWS-0903. Öffnen Sie das Dashboard, um sie zu sehen."
    assert neutral.button_labels == ["✅ Bestätigen"]
    await doc.send("/patient LWS-0903")
    [link] = await doc.wait_for(lambda m: (m.text or "").startswith("🔒 LWS-0903"))
    assert "Datenschutzmodus" in (link.text or "") and link.button_labels == ["Im Dashboard öffnen"]


async def test_a_german_therapist_changes_care_invites_and_cancels_in_german(bot: Any, tg: FakeTelegram) -> None:
    patient = await _german_therapist(bot)
    doc = tg.user(THERAPIST, language_code="de")
    await doc.send("/patient LWS-0901")
    [detail] = await doc.wait_for(lambda m: (m.text or "").startswith("LWS-0901 — "))

    await doc.press("Pausieren", detail)
    [menu] = await doc.wait_for(lambda m: (m.text or "") == "Erinnerungen für LWS-0901 pausieren:")
    assert menu.button_labels == ["3 Tage", "1 Woche", "2 Wochen", "Bis zur Wiederaufnahme", "So lassen"]
    await doc.press("1 Woche", menu)
    assert (await doc.wait_for_answer()).text == "Pausiert."
    await doc.wait_for(lambda m: (m.text or "").startswith("Die Erinnerungen für LWS-0901 sind bis einschließlich"))

    await doc.press("Übungszeiten", detail)
    [ask] = await doc.wait_for(lambda m: (m.text or "").startswith("Neue Übungszeiten für LWS-0901"))
    assert ask.button_labels == ["✖ Abbrechen"]
    await doc.send("25:00")
    [refused] = await doc.wait_for(lambda m: "25:00" in (m.text or ""))
    assert refused.text == "25:00 ist keine Uhrzeit (HH:MM, z. B. 08:00)."
    await doc.send("/cancel")
    [cancelled] = await doc.wait_for(lambda m: "Abgebrochen" in (m.text or ""))
    assert cancelled.text == "Abgebrochen; nichts wurde gespeichert."

    await doc.press("Entlassen", detail)
    [confirm] = await doc.wait_for(lambda m: (m.text or "").startswith("LWS-0901 entlassen?"))
    assert confirm.button_labels == ["Entlassen", "Behalten"]
    await doc.press("Behalten", confirm)
    assert (await doc.wait_for_answer()).text == "Keine Änderung."

    await doc.send("/invite")
    [step1] = await doc.wait_for(lambda m: "Schritt 1 von 5" in (m.text or ""))
    assert step1.button_labels[0].endswith(" verwenden") and step1.button_labels[-1] == "✖ Abbrechen"
    await doc.send("Anna")
    [no_name] = await doc.wait_for(lambda m: "Pseudonym" in (m.text or ""))
    assert no_name.text == (
        "Verwenden Sie ein Pseudonym mit mindestens einer Ziffer (z. B. LWS-0412), nicht den Namen der Patientin "
        "oder des Patienten."
    )
    await doc.send("LWS-0902")
    await doc.wait_for(lambda m: (m.text or "").startswith("Schritt 2 von 5"))
    await doc.send("31.02.")
    [no_date] = await doc.wait_for(lambda m: "31.02." in (m.text or ""))
    assert (no_date.text or "").startswith("'31.02.' ist kein Datum; bitte senden Sie das OP-Datum als JJJJ-MM-TT")
    await doc.send("2026-06-03")
    [step3] = await doc.wait_for(lambda m: (m.text or "").startswith("Schritt 3 von 5"))
    assert step3.button_labels == ["Lumbal", "Zervikal", "Andere", "✖ Abbrechen"]
    await doc.press("Lumbal", step3)
    [step4] = await doc.wait_for(lambda m: (m.text or "").startswith("Schritt 4 von 5"))
    assert any(label.endswith(" (Beispiel)") for label in step4.button_labels), step4.button_labels
    await doc.press("✖ Abbrechen", step4)
    assert (await doc.wait_for_answer()).text == "Abgebrochen."
    for message in doc.messages:
        for english in ("step 1 of 5", "Step ", "Cancel", "Keep", "Pause reminders", "Reminders for", "Discharge"):
            assert english not in (message.text or "") and english not in message.button_labels, (english, message)
    assert patient.alias == "LWS-0901"


async def test_a_staff_members_typo_free_text_and_a_stale_button_are_answered_in_their_language(
    bot: Any, tg: FakeTelegram
) -> None:
    """The fallbacks (an unknown command, text no step waits for, a button no longer there) answered in the
    Telegram app's language, not the staff member's: a German therapist with an English app (the demo's
    therapist, in `rehab-bot demo --lang de`) got English there, and German everywhere else."""
    await _german_therapist(bot)
    doc = tg.user(THERAPIST, language_code="en")
    await doc.send("/hilfe")
    [unknown] = await doc.wait_for()
    assert unknown.text == t("de", UNKNOWN_COMMAND) != UNKNOWN_COMMAND
    await doc.send("hallo")
    [pointer] = await doc.wait_for()
    assert pointer.text == t("de", "Please use the buttons below, or type /help.")
    assert pointer.text != "Please use the buttons below, or type /help."
    await doc.send("/help")
    [helped] = await doc.wait_for(lambda m: "/alerts" in (m.text or ""))
    await doc.press_data("zz:gone", helped.message_id)
    answer = await doc.wait_for_answer()
    assert answer.text == t("de", "This button is no longer active.") != "This button is no longer active."
    # An English therapist with a German app keeps English.
    await make_staff(bot.db, telegram_id=THERAPIST + 2, name="Dr Ann")
    ann = tg.user(THERAPIST + 2, language_code="de")
    await ann.send("/hilfe")
    [unknown] = await ann.wait_for()
    assert unknown.text == UNKNOWN_COMMAND


async def test_a_programme_is_named_by_its_title_in_the_readers_language_never_by_its_id(
    bot: Any, tg: FakeTelegram
) -> None:
    """The Programme button, keeping the same programme and the invitation's programme step name the
    programme as the content titles it in the staff member's language (they said 'jetzt: lumbar-example')."""
    title = "Beispiel: die ersten 12 Wochen nach einer Operation an der Lendenwirbelsäule"
    await _german_therapist(bot)
    await make_staff(bot.db, telegram_id=7902, name="Dr Carl")  # two members: the invitation asks for a therapist
    doc = tg.user(THERAPIST, language_code="de")
    await doc.send("/patient LWS-0901")
    [detail] = await doc.wait_for(lambda m: (m.text or "").startswith("LWS-0901 — "))
    assert f"Programm: {title} · " in (detail.text or "")
    await doc.press("Programm", detail)
    [menu] = await doc.wait_for(lambda m: (m.text or "").startswith("Programm für LWS-0901"))
    assert menu.text == f"Programm für LWS-0901 (jetzt: {title}). Wählen Sie das neue:"
    await doc.press(f"{title} (Beispiel)", menu)
    [kept] = await doc.wait_for(lambda m: m.edited and m.message_id == menu.message_id)
    assert kept.text == f"LWS-0901 bleibt bei {title}."

    await doc.send("/invite")
    await doc.wait_for(lambda m: "Schritt 1 von 5" in (m.text or ""))
    await doc.send("LWS-0902")
    await doc.wait_for(lambda m: (m.text or "").startswith("Schritt 2 von 5"))
    await doc.send("2026-06-03")
    [step3] = await doc.wait_for(lambda m: (m.text or "").startswith("Schritt 3 von 5"))
    await doc.press("Lumbal", step3)
    [step4] = await doc.wait_for(lambda m: (m.text or "").startswith("Schritt 4 von 5"))
    await doc.press(f"{title} (Beispiel)", step4)
    [chosen] = await doc.wait_for(lambda m: m.edited and m.message_id == step4.message_id)
    assert chosen.text == f"Programm: {title}"
    for message in doc.messages:
        assert "lumbar-example" not in (message.text or ""), message.text
