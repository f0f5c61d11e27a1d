"""The programme builder's core: plans checked by the content's rules, saved, previewed, followed by the engine."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from typing import Any

import pytest
from factories import FakeSender, make_staff
from sqlmodel import col, select

from rehab_bot import caseload, library, plan, programme
from rehab_bot import session as session_core
from rehab_bot.access import Forbidden
from rehab_bot.clock import FakeClock
from rehab_bot.config import ClinicConfig, DeliveryConfig
from rehab_bot.content import Content, check_phases, load_content
from rehab_bot.db import Database
from rehab_bot.models import (
    AuditLog,
    Delivery,
    DeliveryStatus,
    Kind,
    Patient,
    PatientStatus,
    ProgrammePlan,
    ReminderRule,
    Staff,
)
from rehab_bot.plan import PlanError
from rehab_bot.reminders import Dispatcher
from rehab_bot.session_text import exercise_card, reminder_text

SURGERY = date(2026, 6, 1)  # T0 (2026-06-10 07:00 Berlin) is day 9: phase weeks-1-2, 3 sessions at 09, 13, 18
QUIET = (None, None)


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(None)


def lumbar(content: Content) -> dict[str, Any]:
    return plan.from_programme(content.programmes["lumbar-example"], content.exercises).model_dump()


async def enrolled(db: Database, clock: FakeClock, content: Content, therapist: Staff, **kw: Any) -> Patient:
    values: dict[str, Any] = {
        "alias": "P-1",
        "telegram_id": 4242,
        "surgery_date": SURGERY,
        "programme_id": "lumbar-example",
        "timezone": "Europe/Berlin",
        "enrol_step": "done",
        "therapist_id": therapist.id,
    }
    values.update(kw)
    async with db.session() as session:
        patient = Patient(**values)
        session.add(patient)
        await session.flush()
        await programme.on_enrolled(session, patient, content, clock.now())
        await session.commit()
        await session.refresh(patient)
    return patient


async def session_rules(db: Database, patient: Patient) -> list[ReminderRule]:
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        return await programme.session_rules(session, p)


# --- checking a plan ---------------------------------------------------------------------


def test_a_content_programme_becomes_a_plan_and_passes_the_same_checks(content: Content) -> None:
    raw = lumbar(content)
    checked = plan.check(raw, content.exercises)
    assert [p.id for p in checked.phases] == [p.id for p in content.programmes["lumbar-example"].phases]
    quad = next(i for i in raw["phases"][0]["sessions"][0]["items"] if i["exercise"] == "quad-sets")
    assert (quad["sets"], quad["reps"], quad["hold_seconds"]) == (1, 10, 5)  # the content's dose to start from
    assert plan.check(checked.body(), content.exercises).schema == checked.schema  # stored and read back


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: r["phases"][1].update(from_day=20), "days 14-19 are in no phase"),
        (lambda r: r["phases"][0].update(from_day=3), "days 0-2 after surgery are in no phase"),
        (
            lambda r: r["phases"][0]["sessions"][0]["items"][0].update(exercise="moonwalk"),
            "unknown exercise 'moonwalk'",
        ),
        (
            lambda r: r["phases"][0]["sessions"][0]["items"][0].update(reps=0),
            "Exercise 1 \\(Walking\\): Repetitions: must be at least 1",
        ),
        (
            lambda r: r["phases"][0]["sessions"][0]["items"][0].update(hold_seconds=601),
            "Exercise 1 \\(Walking\\): Hold \\(seconds\\): must be at most 600",
        ),
        (
            lambda r: r["phases"][0]["title"].pop("de"),
            r"Phase 1 «Weeks 1-2: gentle activation and walking»: Title \(German\): is required",
        ),
        (
            lambda r: r["phases"][0].update(default_times=["09:00", "25:00", "18:00"]),
            r"Default times \(HH:MM, one per session\): not a time as HH:MM \(00:00-23:59\): 25:00$",
        ),
        (
            lambda r: r["phases"][0]["sessions"].pop(),
            r"Sessions: give 1 session \(the same for every session of the day\) or 3 \(one for each\), not 2$",
        ),
        (lambda r: r["phases"][0].update(sessions_per_day=7), "Sessions per day: must be at most 6"),
        (lambda r: r["phases"][0]["sessions"][0].update(items=[]), "Session 1: Exercises: needs at least 1 item"),
        (lambda r: r.update(phases=[]), "^Phases: needs at least 1 item$"),
    ],
)
def test_a_plan_that_breaks_a_programme_rule_is_refused_with_the_reason(
    content: Content, change: Any, problem: str
) -> None:
    raw = copy.deepcopy(lumbar(content))
    change(raw)
    with pytest.raises(PlanError, match=problem):
        plan.check(raw, content.exercises)


EN_1 = "Phase 1 «Weeks 1-2: gentle activation and walking»"
DE_1 = "Phase 1 „Woche 1-2: sanfte Aktivierung und Gehen“"


@pytest.mark.parametrize(
    ("change", "en", "de"),
    [
        (
            lambda r: r["phases"][0]["sessions"][0]["items"][0].update(sets=99),
            f"{EN_1} › Session 1 › Exercise 1 (Walking): Sets: must be at most 20",
            f"{DE_1} › Einheit 1 › Übung 1 (Gehen): Sätze: darf höchstens 20 sein",
        ),
        (
            lambda r: r["phases"][0].update(sessions_per_day=0),
            f"{EN_1}: Sessions per day: must be at least 1",
            f"{DE_1}: Einheiten pro Tag: muss mindestens 1 sein",
        ),
        (
            lambda r: r["phases"][0]["sessions"][0].update(items=[]),
            f"{EN_1} › Session 1: Exercises: needs at least 1 item",
            f"{DE_1} › Einheit 1: Übungen: braucht mindestens einen Eintrag",
        ),
        (
            lambda r: r["phases"][0].update(from_day=None),
            f"{EN_1}: From day after surgery: is required",
            f"{DE_1}: Ab Tag nach der Operation: fehlt",
        ),
        (
            lambda r: r["phases"][0]["title"].update(en="x" * 121),
            "Phase 1 «" + "x" * 121 + "»: Title (English): is too long (at most 120 characters)",
            f"{DE_1}: Titel (Englisch): ist zu lang (höchstens 120 Zeichen)",
        ),
        (
            # A note in English only reached a German patient in English (an outside test).
            lambda r: r["phases"][0]["sessions"][0]["items"][2].update(note={"en": "Keep the knee straight."}),
            f"{EN_1} › Session 1 › Exercise 3 (Thigh tightening): Note for the patient (German): is empty, while "
            "this exercise's note is written in another language: write it in each, or in none",
            f"{DE_1} › Einheit 1 › Übung 3 (Oberschenkel anspannen): Hinweis für den Patienten (Deutsch): ist leer, "
            "während der Hinweis zu dieser Übung in einer anderen Sprache geschrieben ist: Schreiben Sie ihn in "
            "jeder Sprache oder in keiner",
        ),
    ],
)
def test_a_plans_problem_lines_are_in_our_own_words_in_english_and_german(
    content: Content, change: Any, en: str, de: str
) -> None:
    raw = copy.deepcopy(lumbar(content))
    change(raw)
    with pytest.raises(PlanError) as refused:
        plan.check(raw, content.exercises, draft=True)
    assert refused.value.lines("en") == [en] and refused.value.lines("de") == [de]
    assert str(refused.value) == en


EN_2 = "Phase 2 «Weeks 3-6: standing exercises»"
DE_2 = "Phase 2 „Woche 3-6: Übungen im Stehen“"


@pytest.mark.parametrize(
    ("change", "en", "de"),
    [
        (
            lambda r: r["phases"][1].update(from_day=20),
            f"{EN_2}: From day after surgery: days 14-19 are in no phase"
            " (between phase 'weeks-1-2' and phase 'weeks-3-6')",
            f"{DE_2}: Ab Tag nach der Operation: die Tage 14-19 liegen in keiner Phase"
            " (zwischen Phase 'weeks-1-2' und Phase 'weeks-3-6')",
        ),
        (
            lambda r: r["phases"][1].update(from_day=10),
            f"{EN_2}: From day after surgery: starts on day 10 and so overlaps phase 'weeks-1-2' (days 0-13)",
            f"{DE_2}: Ab Tag nach der Operation: beginnt an Tag 10 und überschneidet sich so mit Phase 'weeks-1-2'"
            " (Tage 0-13)",
        ),
        (
            lambda r: r["phases"][0].update(from_day=3),
            f"{EN_1}: From day after surgery: the first phase starts on day 3: days 0-2 after surgery are in no phase"
            " (start it on day 0)",
            f"{DE_1}: Ab Tag nach der Operation: die erste Phase beginnt an Tag 3: die Tage 0-2 nach der Operation"
            " liegen in keiner Phase (lassen Sie sie an Tag 0 beginnen)",
        ),
        (
            lambda r: r["phases"][1].update(to_day=10),
            f"{EN_2}: To day (empty: open-ended): ends on day 10, before it starts (day 14)",
            f"{DE_2}: Bis Tag (leer: ohne Ende): endet an Tag 10, bevor sie beginnt (Tag 14)",
        ),
        (
            lambda r: r["phases"][0]["sessions"][1]["items"][2].update(exercise="moonwalk"),
            f"{EN_1} › Session 2 › Exercise 3: uses unknown exercise 'moonwalk'",
            f"{DE_1} › Einheit 2 › Übung 3: verwendet die unbekannte Übung 'moonwalk'",
        ),
        (
            lambda r: r["phases"][1].update(id="weeks-1-2"),
            f"{EN_2}: Phase id: another phase has the id 'weeks-1-2' too",
            f"{DE_2}: Phasen-ID: eine andere Phase hat auch die ID 'weeks-1-2'",
        ),
        (
            lambda r: r["phases"][0].update(id="Early!"),
            f"{EN_1}: Phase id: must be 1-40 lowercase letters, digits, '-' or '_'",
            f"{DE_1}: Phasen-ID: muss aus 1-40 Kleinbuchstaben, Ziffern, '-' oder '_' bestehen",
        ),
        (lambda r: r["phases"][0].update(id=""), f"{EN_1}: Phase id: is empty", f"{DE_1}: Phasen-ID: ist leer"),
        (
            lambda r: r["phases"][1].update(default_times=[]),
            f"{EN_2}: Default times (HH:MM, one per session): needs at least 1 item",
            f"{DE_2}: Standardzeiten (HH:MM, eine je Einheit): braucht mindestens einen Eintrag",
        ),
        (
            lambda r: r["phases"][0].update(default_times=["09:00", "13:00"]),
            f"{EN_1}: Default times (HH:MM, one per session): needs one time per session (3 a day); 2 given",
            f"{DE_1}: Standardzeiten (HH:MM, eine je Einheit): braucht eine Uhrzeit je Einheit (3 am Tag); 2 angegeben",
        ),
        (
            lambda r: r["phases"][0].update(default_times=["13:00", "09:00", "18:00"]),
            f"{EN_1}: Default times (HH:MM, one per session): must be different times, from the earliest to the latest",
            f"{DE_1}: Standardzeiten (HH:MM, eine je Einheit): müssen verschiedene Uhrzeiten sein,"
            " von der frühesten bis zur spätesten",
        ),
        (
            lambda r: r["phases"][0]["sessions"].pop(),
            f"{EN_1}: Sessions: give 1 session (the same for every session of the day) or 3 (one for each), not 2",
            f"{DE_1}: Einheiten: geben Sie 1 Einheit an (dieselbe für jede Einheit des Tages) oder 3 (eine für jede),"
            " nicht 2",
        ),
    ],
)
def test_the_programme_rules_say_where_and_what_in_english_and_german(
    content: Content, change: Any, en: str, de: str
) -> None:
    raw = copy.deepcopy(lumbar(content))
    change(raw)
    with pytest.raises(PlanError) as refused:
        plan.check(raw, content.exercises)
    assert refused.value.lines("en") == [en] and refused.value.lines("de") == [de]
    assert str(refused.value) == en, "the CLI and the logs: English"


def test_the_taper_rules_and_the_content_checks_fallback_are_said_in_german_too(content: Content) -> None:
    """The taper rules (tapered_sessions_per_day, tapered_days) and any other content check on a plan's
    phases (the fallback: a field check written for content files) were English text whatever the
    staff member's language."""
    checked = plan.check(lumbar(content), content.exercises)
    raw = [plan._content_phase(p) for p in checked.schema.phases]
    raw[0]["tapered_sessions_per_day"] = raw[0]["sessions_per_day"] + 1
    raw[1]["tapered_days"] = "Mo,Mi"
    _, problems = check_phases(raw, set(content.exercises), plan.PLAN_LABEL)
    assert [p.text("de") for p in problems] == [
        "phase.0.tapered_sessions_per_day: 4 Einheiten am Tag bei weniger Erinnerungen sind mehr als die 3 der "
        "Phase (sessions_per_day)",
        'phase.1.tapered_days: muss Wochentage wie "mon,wed,fri" aufzählen (mon, tue, wed, thu, fri, sat, sun)',
    ]
    assert str(problems[0]) == (
        "phase.0.tapered_sessions_per_day: 4 sessions a day when tapered is more than the phase's 3 (sessions_per_day)"
    )
    raw = [plan._content_phase(p) for p in checked.schema.phases]
    raw[0]["from_day"] = -1
    _, problems = check_phases(raw, set(content.exercises), plan.PLAN_LABEL)
    assert [p.text("de") for p in problems] == [
        "die Programmregeln lassen das nicht zu: plan phase 'weeks-1-2': 'from_day' must be at least 0, not -1"
    ]
    # A plan itself never gets that far with a negative day: its schema says it in the builder's words.
    draft = lumbar(content)
    draft["phases"][0]["from_day"] = -1
    with pytest.raises(PlanError) as refused:
        plan.check(draft, content.exercises)
    assert refused.value.lines("de") == [f"{DE_1}: Ab Tag nach der Operation: muss mindestens 0 sein"]


@pytest.mark.parametrize(
    ("where", "en", "de"),
    [
        (
            "phases.2.sessions.0.items.2.hold_seconds",
            "Phase 3 «Weeks 7-12: building strength» › Session 1 › Exercise 3 (Bridging): Hold (seconds)",
            "Phase 3 „Woche 7-12: Kraft aufbauen“ › Einheit 1 › Übung 3 (Brücke): Halten (Sekunden)",
        ),
        (
            "phases.1.default_times",
            "Phase 2 «Weeks 3-6: standing exercises»: Default times (HH:MM, one per session)",
            "Phase 2 „Woche 3-6: Übungen im Stehen“: Standardzeiten (HH:MM, eine je Einheit)",
        ),
        (
            "phases.0.sessions.1.items.0.note.de",
            f"{EN_1} › Session 2 › Exercise 1 (Walking): Note for the patient (German)",
            f"{DE_1} › Einheit 2 › Übung 1 (Gehen): Hinweis für den Patienten (Deutsch)",
        ),
        (
            "phases.3.title",
            "Phase 4 «After week 12: keep it up»: Title (English, German)",
            "Phase 4 „Ab Woche 13: dranbleiben“: Titel (Englisch, Deutsch)",
        ),
        ("phases.0.sessions.2", f"{EN_1} › Session 3", f"{DE_1} › Einheit 3"),
        # Past the end of the draft: counted all the same, without a name.
        (
            "phases.9.sessions.4.items.7.reps",
            "Phase 10 › Session 5 › Exercise 8: Repetitions",
            "Phase 10 › Einheit 5 › Übung 8: Wiederholungen",
        ),
        ("phases.0.sessions.0.items.40", f"{EN_1} › Session 1 › Exercise 41", f"{DE_1} › Einheit 1 › Übung 41"),
        # A field the builder has no label for is named as it is.
        (
            "phases.1.colour",
            "Phase 2 «Weeks 3-6: standing exercises»: colour",
            "Phase 2 „Woche 3-6: Übungen im Stehen“: colour",
        ),
        ("based_on", "based_on", "based_on"),
        ("phases", "Phases", "Phasen"),
        ("", "", ""),
    ],
)
def test_a_problems_place_is_said_in_the_therapists_words(content: Content, where: str, en: str, de: str) -> None:
    raw = lumbar(content)
    assert plan.place(where, raw, content.exercises, "en") == en
    assert plan.place(where, raw, content.exercises, "de") == de


def test_a_place_without_names_says_the_numbers(content: Content) -> None:
    raw = lumbar(content)
    raw["phases"][0]["title"] = {"en": " ", "de": ""}  # blank: no name
    raw["phases"][0]["sessions"][0]["items"][1]["exercise"] = "moonwalk"  # not in the library: no name
    where = "phases.0.sessions.0.items.1.sets"
    assert plan.place(where, raw, content.exercises, "de") == "Phase 1 › Einheit 1 › Übung 2: Sätze"
    raw["phases"][0]["title"] = {"en": "Early"}  # no German title: the English one
    assert plan.place("phases.0", raw, content.exercises, "de") == "Phase 1 „Early“"
    assert plan.place(where, {}, {}, "en") == "Phase 1 › Session 1 › Exercise 2: Sets"


# --- saving a patient's own plan ------------------------------------------------------------


def heavier(content: Content, *, extra: str | None = None) -> dict[str, Any]:
    """The lumbar programme with quad sets at 3 x 15, hold 8 s, a note, and maybe an extra exercise."""
    raw = copy.deepcopy(lumbar(content))
    for session in raw["phases"][0]["sessions"]:
        for item in session["items"]:
            if item["exercise"] == "quad-sets":
                item.update(sets=3, reps=15, hold_seconds=8, note={"en": "Slowly.", "de": "Langsam."})
        if extra is not None:
            session["items"].append({"exercise": extra, "sets": 2, "reps": 6, "duration_seconds": 120})
    return raw


async def test_saving_a_plan_re_plans_in_place_tells_the_patient_once_and_is_audited(
    db: Database, clock: FakeClock, content: Content
) -> None:
    doc = await make_staff(db)
    async with db.session() as session:
        extra = library.clinic_id(
            await library.create(
                session,
                doc,
                {
                    "name": {"en": "Wall slides", "de": "Wandgleiten"},
                    "instructions": {"en": "Slide down the wall.", "de": "An der Wand hinabgleiten."},
                },
                clock.now(),
            )
        )
        await session.commit()
    patient = await enrolled(db, clock, content, doc, language="de")
    before = [r.id for r in await session_rules(db, patient)]
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        saved = await programme.save_own_plan(
            session, doc, p, heavier(content, extra=extra), content, clock.now(), quiet=QUIET
        )
        await session.commit()
    assert [r.id for r in await session_rules(db, patient)] == before  # the same rules, moved in place
    notice = saved.applied.notice
    assert notice is not None
    assert notice.body.startswith("🆕 Ihr Behandlungsteam hat Ihr Übungsprogramm geändert.")
    assert "Neu:\n• Wandgleiten (2 × 6 Wiederholungen, 2 Min.)" in notice.body
    assert "Neue Menge:\n• Oberschenkel anspannen (3 × 15 Wiederholungen, 5 s halten" not in notice.body
    assert "• Oberschenkel anspannen (3 × 15" in notice.body and "8" in notice.body
    async with db.session() as session:
        audit = (await session.exec(select(AuditLog).where(col(AuditLog.action) == "change.plan"))).all()
        assert len(audit) == 1 and audit[0].patient_id == patient.id and "from=lumbar-example" in audit[0].detail

        # Saved again before the message went out: still one message, saying what changed since the first state.
        p = await session.get(Patient, patient.id)
        assert p is not None
        again = heavier(content, extra=extra)
        for session_plan in again["phases"][0]["sessions"]:
            session_plan["items"] = [i for i in session_plan["items"] if i["exercise"] != "walking"]
        await programme.save_own_plan(session, doc, p, again, content, clock.now(), quiet=QUIET)
        await session.commit()
        [waiting] = (
            await session.exec(select(Delivery).where(col(Delivery.patient_id) == patient.id, col(Delivery.body) != ""))
        ).all()
    assert waiting.status == DeliveryStatus.QUEUED.value and waiting.id == notice.id
    assert "Neu:\n• Wandgleiten" in waiting.body and "Nicht mehr in Ihrem Programm:\n• Gehen" in waiting.body

    # Changed back to the content programme's exercises and doses: nothing left to tell.
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        await programme.save_own_plan(session, doc, p, lumbar(content), content, clock.now(), quiet=QUIET)
        await session.commit()
        status = (await session.exec(select(Delivery.status).where(col(Delivery.id) == waiting.id))).one()
    assert status == DeliveryStatus.SKIPPED.value


async def test_a_colleague_may_not_save_a_plan_for_a_patient_who_is_not_theirs(
    db: Database, clock: FakeClock, content: Content
) -> None:
    doc = await make_staff(db)
    colleague = await make_staff(db, name="Dr Other")
    patient = await enrolled(db, clock, content, doc)
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        with pytest.raises(Forbidden, match="not your patient"):
            await programme.save_own_plan(session, colleague, p, heavier(content), content, clock.now(), quiet=QUIET)
        await session.rollback()
        assert await plan.own_plan(session, patient.id or 0) is None


async def test_the_preview_is_exactly_the_next_reminder_the_engine_sends(
    db: Database, clock: FakeClock, content: Content
) -> None:
    doc = await make_staff(db)
    patient = await enrolled(db, clock, content, doc, language="de")
    new_plan = heavier(content)
    new_plan["phases"][0]["default_times"] = ["08:00", "12:00", "20:00"]
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        unchanged = await programme.preview(session, content, p, clock.now())
        shown = await programme.preview(session, content, p, clock.now(), new_plan)
    assert unchanged is not None and shown is not None
    assert unchanged.cards[2].startswith("3/6 · Oberschenkel anspannen\n1 × 10 Wiederholungen")
    assert (
        shown.cards[2].startswith("3/6 · Oberschenkel anspannen\n3 × 15 Wiederholungen")
        and "📝 Langsam." in shown.cards[2]
    )
    assert shown.text.startswith("Zeit für Ihre Übungseinheit (09:00).") and "6 Übungen" in shown.text
    assert (shown.local_date, shown.slot) == (date(2026, 6, 10), "09:00")  # the patient's own times are kept

    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        await programme.save_own_plan(session, doc, p, new_plan, content, clock.now(), quiet=QUIET)
        await session.commit()
    sender = FakeSender()
    dispatcher = Dispatcher(
        db, clock, DeliveryConfig(quiet_hours_start=None, quiet_hours_end=None), ClinicConfig(), sender
    )
    await dispatcher.tick()
    assert [m.body.splitlines()[0] for m in sender.sent] == ["🆕 Ihr Behandlungsteam hat Ihr Übungsprogramm geändert."]
    clock.set(shown.due_at)
    await dispatcher.tick()
    [reminder] = [m for m in sender.sent if m.kind == Kind.SESSION.value and not m.body]
    assert (reminder.local_date, reminder.slot) == (shown.local_date, shown.slot)
    async with db.session() as session:
        opened = await session_core.open_for_deliveries(session, content, [reminder], clock.now())
    r = opened[reminder.delivery_id]
    assert r is not None and r.phase is not None
    lang = r.patient.language
    sent_text = reminder_text(
        lang,
        slot=reminder.slot,
        late=reminder.late,
        exercises=r.exercises,
        change=r.change,
        session_name=r.phase.title[lang],
    )
    assert sent_text == shown.text  # the engine then adds a line of encouragement
    assert [exercise_card(lang, n, 6, ex) for n, ex in enumerate(r.exercises, start=1)] == shown.cards


async def test_the_engine_follows_the_plan_into_its_next_phase_and_the_chat_programme_button_replaces_it(
    db: Database, clock: FakeClock, content: Content
) -> None:
    doc = await make_staff(db)
    patient = await enrolled(db, clock, content, doc)
    raw = heavier(content)
    raw["phases"][0]["to_day"] = 10  # the first phase ends tomorrow; the second starts on day 11
    raw["phases"][1]["from_day"] = 11
    raw["phases"][1]["sessions_per_day"] = 1
    raw["phases"][1]["default_times"] = ["10:00"]
    raw["phases"][1]["sessions"] = [{"items": [{"exercise": "bridges", "sets": 2, "reps": 5}]}]
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        await programme.save_own_plan(session, doc, p, raw, content, clock.now(), quiet=QUIET)
        await session.commit()
    rules = await session_rules(db, patient)
    assert [r.end_date for r in rules] == [None, SURGERY + timedelta(days=10), SURGERY + timedelta(days=10)]

    sender = FakeSender()
    dispatcher = Dispatcher(
        db, clock, DeliveryConfig(quiet_hours_start=None, quiet_hours_end=None), ClinicConfig(), sender
    )
    for _ in range(2 * 24 + 6):  # to 13:00 on day 11
        clock.advance(timedelta(hours=1))
        await dispatcher.tick()
    reminders = [m for m in sender.sent if m.kind == Kind.SESSION.value and not m.body]
    assert [(m.local_date, m.slot) for m in reminders][-1] == (date(2026, 6, 12), "09:00")
    async with db.session() as session:
        opened = await session_core.open_for_deliveries(session, content, reminders[-1:], clock.now())
    r = opened[reminders[-1].delivery_id]
    assert r is not None and r.change is not None and r.change.phase.id == "weeks-3-6"
    assert [(e.id, e.sets, e.reps) for e in r.exercises] == [("bridges", 2, 5)]

    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        await caseload.change_programme(session, doc, p, "lumbar-example", content, clock.now(), quiet=QUIET)
        await session.commit()
        assert await plan.own_plan(session, patient.id or 0) is None
        assert p.status == PatientStatus.ACTIVE.value
    rules = await session_rules(db, patient)
    assert len(rules) == 3  # day 11 is in the content programme's weeks-1-2 again: three sessions a day


async def test_a_template_is_saved_under_a_name_by_any_staff_member(
    db: Database, clock: FakeClock, content: Content
) -> None:
    doc = await make_staff(db)
    async with db.session() as session:
        row = await programme.save_template(
            session, doc, "  Fusion,  slow start ", heavier(content), content, clock.now()
        )
        await session.commit()
        with pytest.raises(PlanError) as refused:
            await programme.save_template(session, doc, " ", heavier(content), content, clock.now())
        assert refused.value.lines("en") == ["Template name: needs 1-120 characters"]
        assert refused.value.lines("de") == ["Name der Vorlage: braucht 1-120 Zeichen"]
        [template] = await plan.templates(session)
    assert (template.id, template.name, template.patient_id, template.based_on) == (
        row.id,
        "Fusion, slow start",
        None,
        "lumbar-example",
    )
    assert plan.check(template.body, content.exercises).phases[0].id == "weeks-1-2"


async def test_the_builder_starts_from_a_programme_a_template_the_patients_plan_or_empty(
    db: Database, clock: FakeClock, content: Content
) -> None:
    doc = await make_staff(db)
    patient = await enrolled(db, clock, content, doc)
    async with db.session() as session:
        from_content = await plan.starting_point(session, content, "programme:lumbar-example")
        assert from_content == lumbar(content)
        p = await session.get(Patient, patient.id)
        assert p is not None
        assert await plan.starting_point(session, content, "current", p) == lumbar(content)
        await programme.save_own_plan(session, doc, p, heavier(content), content, clock.now(), quiet=QUIET)
        template = await programme.save_template(session, doc, "Heavier", heavier(content), content, clock.now())
        await session.commit()
        assert await plan.starting_point(session, content, "current", p) == heavier(content)
        assert await plan.starting_point(session, content, f"template:{template.id}") == heavier(content)
        blank = await plan.starting_point(session, content, "empty")
        assert blank["phases"][0]["title"] == {"en": "Your exercise programme", "de": "Ihr Übungsprogramm"}
        with pytest.raises(PlanError, match="at least 1 item"):
            plan.check(blank, content.exercises)  # a session needs an exercise before it is saved
        blank["phases"][0]["sessions"][0]["items"].append({"exercise": "walking", "duration_seconds": 600})
        assert plan.check(blank, content.exercises).phases[0].sessions_per_day == 1
        for missing in ("programme:nope", "template:999", f"template:{p.id}x", "bogus"):
            with pytest.raises(PlanError, match="no longer exists") as refused:
                await plan.starting_point(session, content, missing)
            assert refused.value.lines("de") == ["Diesen Ausgangspunkt gibt es nicht mehr."]


async def test_the_fhir_care_plan_describes_the_patients_own_plan(
    db: Database, clock: FakeClock, content: Content
) -> None:
    from rehab_bot import export

    doc = await make_staff(db)
    patient = await enrolled(db, clock, content, doc, consent_at=clock.now())
    raw = heavier(content)
    raw["phases"][0]["sessions"] = [{"items": [{"exercise": "bridges", "sets": 2, "reps": 5}]}]
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        await programme.save_own_plan(session, doc, p, raw, content, clock.now(), quiet=QUIET)
        await session.commit()
        data = await export.collect(session, clock.now(), content=content)
    bundle = export.fhir_bundle(data, content, clock.now())
    [plan_resource] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan"]
    assert plan_resource["activity"][0]["detail"]["description"] == "Exercises: Bridging"


async def followed_with(db: Database, content: Content, patient: Patient, raw: dict[str, Any]) -> Any:
    """The programme the patient follows once raw is stored as their own plan (as saved before, unchecked)."""
    async with db.session() as session:
        session.add(ProgrammePlan(patient_id=patient.id, body=json.dumps(raw), based_on="lumbar-example"))
        await session.commit()
        p = await session.get(Patient, patient.id)
        assert p is not None
        return await programme.programme_for(session, content, p)


async def test_a_stored_plan_that_no_longer_checks_falls_back_to_the_content_programme(
    db: Database, clock: FakeClock, content: Content
) -> None:
    doc = await make_staff(db)
    patient = await enrolled(db, clock, content, doc)
    raw = heavier(content)
    raw["phases"][0]["sessions"][0]["items"][0]["exercise"] = "clinic-999"  # an exercise that is gone
    assert await followed_with(db, content, patient, raw) is content.programmes["lumbar-example"]


async def test_a_plan_stored_with_a_note_in_one_language_is_still_followed(
    db: Database, clock: FakeClock, content: Content
) -> None:
    """The every-language rule for notes is for plans saved from now on: one saved before stays the patient's
    plan (dropping it would silently put them back on the content programme); saving it again asks for both."""
    doc = await make_staff(db)
    patient = await enrolled(db, clock, content, doc)
    raw = heavier(content)
    raw["phases"][0]["sessions"][0]["items"][0]["note"] = {"en": "Keep the knee straight.", "de": ""}
    assert plan.check(raw, content.exercises).schema.phases[0].sessions[0].items[0].note.en  # type: ignore[attr-defined]
    with pytest.raises(PlanError, match="Note for the patient \\(German\\): is empty"):
        plan.check(raw, content.exercises, draft=True)
    followed = await followed_with(db, content, patient, raw)
    assert followed is not content.programmes["lumbar-example"]
    assert followed.phases[0].sessions[0].items[0].note == {"en": "Keep the knee straight."}  # type: ignore[union-attr]


async def test_the_chats_patient_detail_says_the_patient_follows_their_own_plan(
    db: Database, clock: FakeClock, content: Content
) -> None:
    doc = await make_staff(db)
    patient = await enrolled(db, clock, content, doc)
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        before = await caseload.patient_detail(session, doc, p, clock.now(), content)
        await programme.save_own_plan(session, doc, p, heavier(content), content, clock.now(), quiet=QUIET)
        await session.commit()
        after = await caseload.patient_detail(session, doc, p, clock.now(), content)
    name = content.programmes["lumbar-example"].name["en"]
    assert (before.programme_name, after.programme_name) == (name, f"own plan v1 (from {name})")


async def test_without_health_data_in_the_chat_the_change_message_names_no_exercise(
    db: Database, clock: FakeClock, content: Content
) -> None:
    doc = await make_staff(db)
    patient = await enrolled(db, clock, content, doc, language="de")
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        saved = await programme.save_own_plan(
            session, doc, p, heavier(content), content, clock.now(), quiet=QUIET, neutral=True
        )
        await session.commit()
    assert saved.applied.notice is not None
    assert saved.applied.notice.body == "🆕 Ihr Behandlungsteam hat Ihren Plan geändert."
