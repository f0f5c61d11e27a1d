"""Recovery education, the core: which lesson on which day, missed lessons, teach-back answers and gaps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

from factories import make_patient
from sqlmodel import select

from rehab_bot import education as core
from rehab_bot.clock import FakeClock
from rehab_bot.content import load_content
from rehab_bot.content.lessons import Course, Lesson, LessonAnswer, Question
from rehab_bot.db import Database
from rehab_bot.models import Delivery, Kind, LessonProgress, Patient, ReminderRule
from rehab_bot.reminders import reschedule_rule

CONTENT = load_content(None)
SURGERY = date(2026, 6, 10)


def lesson(lesson_id: str, day: int, **kw: object) -> Lesson:
    return Lesson(id=lesson_id, day=day, title={"en": lesson_id, "de": lesson_id}, text={"en": "t", "de": "t"}, **kw)  # type: ignore[arg-type]


def patient(**kw: object) -> Patient:
    values: dict[str, object] = {
        "alias": "P",
        "surgery_date": SURGERY,
        "surgery_type": "lumbar",
        "programme_id": "lumbar-example",
        "created_at": datetime(2026, 6, 1, tzinfo=UTC),
    }
    values.update(kw)
    return Patient(**values)  # type: ignore[arg-type]


def with_course(*lessons: Lesson, at: time | None = None) -> object:
    return replace(CONTENT, course=Course(tuple(sorted(lessons, key=lambda x: x.day)), False, {}, at))


def plan(p: Patient, content: object) -> list[tuple[str, int]]:
    return [(x.lesson.id, x.day) for x in core.course_plan(p, content)]  # type: ignore[arg-type]


def test_the_built_in_course_by_day_for_a_lumbar_patient_and_nothing_for_a_cervical_one() -> None:
    lumbar = core.course_plan(patient(), CONTENT)
    assert [(p.lesson.id, p.day) for p in lumbar][:9] == [
        ("walking", 1),
        ("wound-care", 2),
        ("infection-signs", 3),
        ("limits-weeks-1-2", 4),
        ("pain-medicines", 5),
        ("sleep", 6),
        ("when-to-call", 7),
        ("walking-more", 10),
        ("limits-weeks-3-6", 14),
    ]
    assert all(p.on == SURGERY + timedelta(days=p.day) for p in lumbar)
    assert core.course_plan(patient(surgery_type="cervical"), CONTENT) == []


def test_conditions_surgery_type_programme_and_phase() -> None:
    content = with_course(
        lesson("any", 1),
        lesson("cervical", 2, surgery_types=("cervical",)),
        lesson("our-programme", 3, programmes=("lumbar-example",)),
        lesson("other-programme", 4, programmes=("other",)),
        lesson("phase-early", 5, phases=("weeks-1-2",)),
        lesson("phase-late", 6, phases=("weeks-3-6",)),
        lesson("phase-late-ok", 20, phases=("weeks-3-6",)),
    )
    assert plan(patient(), content) == [("any", 1), ("our-programme", 3), ("phase-early", 5), ("phase-late-ok", 20)]
    assert plan(patient(surgery_type="cervical", programme_id=""), content) == [("any", 1), ("cervical", 2)]


def test_at_most_one_lesson_a_day_later_ones_move_to_the_next_free_day() -> None:
    content = with_course(lesson("a", 3), lesson("b", 3), lesson("c", 3), lesson("d", 5), lesson("e", 9))
    assert plan(patient(), content) == [("a", 3), ("b", 4), ("c", 5), ("d", 6), ("e", 9)]


def test_day_zero_without_a_surgery_date_is_the_day_of_consent() -> None:
    p = patient(surgery_date=None, consent_at=datetime(2026, 6, 12, 21, 30, tzinfo=UTC))  # 23:30 in Berlin
    assert core.day_zero(p) == date(2026, 6, 12)
    assert core.course_plan(p, CONTENT)[0].on == date(2026, 6, 13)


def test_lesson_time_is_the_course_time_else_the_first_session() -> None:
    now = datetime(2026, 6, 12, 6, 0, tzinfo=UTC)
    # A minute after the first session's reminder, so the lesson arrives below it.
    assert core.lesson_time(patient(session_times="13:00,08:30"), CONTENT, now) == time(8, 31)
    assert core.lesson_time(patient(), CONTENT, now) == time(9, 1)  # the programme's first default time
    assert core.lesson_time(patient(session_times="23:59"), CONTENT, now) == time(23, 59)
    timed = with_course(lesson("a", 1), at=time(18, 15))
    assert core.lesson_time(patient(session_times="08:30"), timed, now) == time(18, 15)  # type: ignore[arg-type]


QUESTION = Question(
    {"en": "q", "de": "q"},
    (LessonAnswer({"en": "no", "de": "nein"}, False), LessonAnswer({"en": "yes", "de": "ja"}, True)),
    {"en": "because", "de": "weil"},
)


async def test_due_offers_missed_lessons_once_and_answers_make_a_gap(db: Database, clock: FakeClock) -> None:
    content = with_course(
        lesson("one", 0), lesson("two", 1), lesson("safe", 2, safety=True, question=QUESTION), lesson("four", 3)
    )
    clock.set(datetime(2026, 6, 10, 5, 0, tzinfo=UTC))
    p, _ = await make_patient(db, clock, times=(), surgery_date=SURGERY, programme_id="lumbar-example")
    async with db.session() as s:
        row = await s.get(Patient, p.id)
        assert row is not None
        rule = await core.schedule_for(s, row, content, clock.now())  # type: ignore[arg-type]
        await s.commit()
        assert rule is not None and rule.kind == Kind.LESSON and rule.local_time == "09:01"
        assert rule.end_date is None, "it ends when every lesson went out or was offered, not on a date"
        # Day 2: "one" and "two" never went out (before enrolment, a pause): offered with "safe".
        due = await core.due(s, row, content, SURGERY + timedelta(days=2))  # type: ignore[arg-type]
        assert due.lesson is not None and due.lesson.id == "safe"
        assert [x.id for x in due.missed] == ["one", "two"]
        assert row.id is not None
        await core.record_sent(
            s,
            row.id,
            "safe",
            ["one", "two"],
            content,
            local_date=SURGERY + timedelta(days=2),  # type: ignore[arg-type]
            delivery_id=None,
            message_id=7,
            now=clock.now(),
        )
        await s.commit()
        again = await core.due(s, row, content, SURGERY + timedelta(days=2))  # type: ignore[arg-type]
        assert again.empty, "offered once, not again"
        nxt = await core.due(s, row, content, SURGERY + timedelta(days=3))  # type: ignore[arg-type]
        assert nxt.lesson is not None and nxt.lesson.id == "four" and not nxt.missed
        # A lesson whose day has not come, or not in the course, cannot be answered or opened.
        clock.set(datetime(2026, 6, 12, 8, 0, tzinfo=UTC))  # day 2
        assert await core.answer(s, row, content, "four", 0, clock.now()) is None  # type: ignore[arg-type]
        assert await core.open_lesson(s, row, content, "nope", clock.now()) is None  # type: ignore[arg-type]
        assert await core.answer(s, row, content, "safe", 5, clock.now()) is None  # type: ignore[arg-type]
        first = await core.answer(s, row, content, "safe", 0, clock.now())  # type: ignore[arg-type]
        assert first is not None and not first.correct and not first.gap
        second = await core.answer(s, row, content, "safe", 0, clock.now())  # type: ignore[arg-type]
        assert second is not None and second.gap, "the second wrong answer to a safety lesson is a gap"
        right = await core.answer(s, row, content, "safe", 1, clock.now())  # type: ignore[arg-type]
        assert right is not None and right.correct and not right.gap
        await s.commit()
        assert await core.gaps(s, row.id) == ["safe"]
        assert await core.unanswered_safety(s, row.id) == []
        summary = await core.summary(s, row, content)  # type: ignore[arg-type]
        assert (summary.delivered, summary.offered, summary.read, summary.understood) == (1, 2, 1, 1)
        progress = (await s.exec(select(LessonProgress).where(LessonProgress.lesson_id == "safe"))).one()
        assert (progress.first_answer, progress.last_answer, progress.wrong_answers) == (0, 1, 2)
        assert progress.understood and progress.message_id == 7
        # A new plan replaces the rule rather than adding a second one.
        await core.schedule_for(s, row, content, clock.now())  # type: ignore[arg-type]
        await s.commit()
        rules = (await s.exec(select(ReminderRule).where(ReminderRule.kind == Kind.LESSON.value))).all()
        assert [r.active for r in rules] == [False, True]


async def test_a_pause_past_the_last_lesson_still_offers_the_missed_ones_then_the_rule_ends(
    db: Database, clock: FakeClock
) -> None:
    content = with_course(lesson("one", 0), lesson("two", 1))
    clock.set(datetime(2026, 6, 10, 5, 0, tzinfo=UTC))  # day 0, 07:00 in Berlin
    p, _ = await make_patient(db, clock, times=(), surgery_date=SURGERY, programme_id="lumbar-example")
    async with db.session() as s:
        row = await s.get(Patient, p.id)
        assert row is not None and row.id is not None
        rule = await core.schedule_for(s, row, content, clock.now())  # type: ignore[arg-type]
        assert rule is not None
        await s.commit()
        # Paused on days 0-5: neither lesson went out. On day 6 (after the course's last lesson day)
        # the rule still has a slot, which offers both.
        after_pause = datetime(2026, 6, 16, 5, 0, tzinfo=UTC)
        reschedule_rule(s, rule, row.timezone, after_pause)
        assert rule.active and rule.next_due_at is not None
        assert rule.next_local_date == SURGERY + timedelta(days=6)
        due = await core.due(s, row, content, SURGERY + timedelta(days=6))  # type: ignore[arg-type]
        assert due.lesson is None and [x.id for x in due.missed] == ["one", "two"]
        await core.record_sent(
            s,
            row.id,
            None,
            ["one", "two"],
            content,  # type: ignore[arg-type]
            local_date=SURGERY + timedelta(days=6),
            delivery_id=None,
            message_id=8,
            now=after_pause,
        )
        await s.commit()
        # Every lesson is out: the rule ends, and a new plan makes none.
        assert not rule.active and rule.next_due_at is None
        assert await core.schedule_for(s, row, content, after_pause) is None  # type: ignore[arg-type]


async def test_the_weekly_digest_lists_patients_with_unanswered_safety_lessons(db: Database) -> None:
    from factories import make_config, make_staff

    from rehab_bot import digest

    monday = datetime(2026, 3, 23, 7, 0, tzinfo=UTC)  # 08:00 in Berlin, the digest time
    clock = FakeClock(monday - timedelta(days=3))
    doc = await make_staff(db, name="Dr Digest")
    seen = monday - timedelta(hours=5)
    silent, _ = await make_patient(db, clock, alias="SAFE-1", therapist_id=doc.id, last_activity_at=seen)
    answered, _ = await make_patient(db, clock, alias="SAFE-2", therapist_id=doc.id, last_activity_at=seen)
    async with db.session() as s:
        for p, answered_at in ((silent, None), (answered, seen)):
            for lesson_id, safety in (("when-to-call", True), ("sleep", False)):
                s.add(
                    LessonProgress(
                        patient_id=p.id or 0,
                        lesson_id=lesson_id,
                        safety=safety,
                        delivered_at=seen,
                        answered_at=answered_at if safety else None,
                    )
                )
        await s.commit()
        assert await digest.queue_digests(s, monday, make_config(), load_content(None)) == 1
        await s.commit()
        [digest] = (await s.exec(select(Delivery))).all()
    assert "1 of the 2 patients in your care at risk" in digest.body
    # The lesson by its title, not its id (an outside test read "infection-signs, when-to-call").
    said = "• SAFE-1: safety lessons unanswered: When to call for help at once"
    assert "SAFE-1 (day" not in digest.body and said in digest.body
    assert "SAFE-2" not in digest.body and "sleep" not in digest.body
