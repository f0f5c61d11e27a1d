"""Privacy between patients: using every command and every button, one patient never sees another's data.

Two enrolled patients, A and B, share the bot. B's data is full of markers
that appear nowhere else: a unique alias, a unique therapist's name, an odd
timezone (Chatham) and odd session times and quiet hours, a surgery date and
a pause date nobody else has, check-ins with answers, exercise sessions in
every state, notes, an alert, a delivery, a motivation log entry, a lesson record, an audit
row, a staff draft, invitations, care-team messages (a photo, a reply) and a caregiver who
answered for B. Then A, through the fake Bot API, does
everything a patient can do:

* every command the bot registers outside the staff module, and every
  command in the setMyCommands menu, each once plainly and once with
  arguments naming B (the matrix is derived from the running Application:
  a new command without a row here fails the test); the staff commands with
  B's alias (the unknown answer itself is test_authorisation's business);
* a scripted walk through every flow to its depth (session reminders through
  done/effort/pain, snooze/back/re-send/skip/reason, partly/skipped
  questions; check-ins, /pain, notes typed, replied and offered, a crisis
  message; settings times, timezone, quiet hours, language; pause by
  button and by date, resume; stop and delete declined), then every
  callback_data A was ever sent, pressed at least once (stale or live), and
  at the end /stop and /delete confirmed, with the command matrix again as a
  stopped patient and as an erased one;
* forged presses for every callback_data prefix the bot handles (derived
  from the CallbackQueryHandlers: a new prefix without forgeries here fails
  the test) that name B's sessions (in every state, every action and value),
  B's check-ins (every item and value), B's patient id, B's alert and B's
  therapist, pressed on A's live menu.

Markers cannot catch a leak of derived values (a count, a time converted to
A's zone), so halfway through a control patient C is added whose data would
sway any query not limited to A (sessions done at A's slot times, a session
due before A's next one, check-ins scored today, an open check-in), and what
A's read-only commands show, files and chart included, must stay the same.

Proven: nothing A receives (texts, edits and their history, captions,
button labels and data, callback answers, the /mydata file, the /progress
caption and chart) contains any of B's markers; the /mydata file holds only
A's rows and the chart is exactly the one drawn from A's data; C's data
changes nothing A is shown; every forged
press naming B gets the neutral "no longer active" answer and leaves A's
chat untouched; not one row of any table that is not A's (B's rows, both
therapists, everything else) changed; and the bot sent nothing to B or to
B's therapist.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram, FakeUser, SentMessage
from sqlalchemy import or_, select
from sqlmodel import SQLModel
from telegram.ext import CallbackQueryHandler, CommandHandler

from rehab_bot import patient as patient_core
from rehab_bot import programme, report
from rehab_bot import session as session_core
from rehab_bot.bot import staff as staff_bot
from rehab_bot.bot import web as web_bot
from rehab_bot.models import (
    Alert,
    Answer,
    AuditLog,
    Caregiver,
    CareMessage,
    CheckIn,
    Delivery,
    ExerciseSession,
    Invite,
    Kind,
    LessonProgress,
    MotivationLog,
    Note,
    Patient,
    PatientStatus,
    StaffDraft,
    TimingProposal,
    TimingWindow,
)

# A long scenario: `pytest -m "not slow"` leaves it out; .ci/run runs it.
pytestmark = pytest.mark.slow

WED = date(2026, 6, 10)  # the clock starts at 07:00 on this Wednesday in Berlin
STALE = "This button is no longer active."
SYNC = "zz:sync"  # answered by the catch-all only after every earlier update was handled
OOPS = "Something went wrong on our side"

A_TG, A_THERAPIST_TG = 7301, 7401
B_TG, B_THERAPIST_TG = 987654321, 7402
B_CAREGIVER_TG = 7405
C_TG = 7303  # a control patient, added late: A's views must not change
B_ALIAS = "Zyxwvut"
B_FRESH_CODE, B_USED_CODE = "ZyxFreshInvite2", "ZyxUsedInvite01"
# B's session times and quiet hours in Chatham (UTC+12:45) fall outside 05:00-17:00 UTC, the
# hours this test moves the clock through, so the engine never touches B's rules.
B_TIMES = ("06:47", "11:23", "16:59")
B_QUIET = ("23:11", "05:37")
B_TIMING = ("12:17", "12:27", "06:13", "21:59")  # B's proposed and usual time, B's window for automatic moves
B_SURGERY, B_PAUSED_UNTIL = date(2026, 3, 17), date(2026, 8, 29)
# Text that only B's data contains: a leak of any of it to A is visible in what A receives.
MARKERS = (
    B_ALIAS,
    "Qwertzuiop",  # B's therapist
    "Chatham",
    *B_TIMES,
    *B_QUIET,
    *B_TIMING,
    "2026-03-17",
    "17.03.2026",
    "March 17",
    "17. März",
    "Day 85",
    "2026-08-29",
    "29.08.2026",
    "August 29",
    "29. August",
    str(B_TG),
    "quokka",  # B's notes
    "platypus",  # B's alert
    "wombat",  # B's delivery body
    "numbat",  # B's answer text, audit detail, motivation key
    "ZyxFresh",
    "ZyxUsed",
)


def berlin(day: date, hhmm: str, seconds: int = 1) -> datetime:
    """A Berlin wall-clock time in June (UTC+2) as a UTC instant."""
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, seconds, tzinfo=UTC) - timedelta(hours=2)


@pytest.fixture
async def bot(bot_factory: Any, backend: str) -> Any:
    """The bot on each backend, with the per-chat pacing scaled down so the walk runs in seconds."""
    return await bot_factory(backend, delivery={"per_chat_interval": 0.02})


# --- the two patients --------------------------------------------------------------------------------


class B:
    """Patient B and the ids of their objects, for forging presses."""

    def __init__(self) -> None:
        self.patient: Patient = Patient(alias="")
        self.therapist_id = 0
        self.sessions: list[int] = []
        self.checkins: list[tuple[int, str]] = []  # (id, questionnaire id)
        self.alert_id = 0
        self.messages: list[int] = []  # care-team messages: B's and the reply
        self.caregiver_id = 0
        self.timing_id = 0

    @property
    def id(self) -> int:
        assert self.patient.id is not None
        return self.patient.id


async def make_a(bot: Any) -> Patient:
    """A: five days after lumbar surgery, three sessions a day in Berlin, as enrolment leaves them."""
    therapist = await make_staff(bot.db, telegram_id=A_THERAPIST_TG, name="Dr Plain")
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        alias="PAT-A",
        telegram_id=A_TG,
        therapist_id=therapist.id,
        programme_id="lumbar-example",
        surgery_date=WED - timedelta(days=5),
        phase_id="weeks-1-2",
        session_times="09:00,13:00,18:00",
        enrol_step="done",
        consent_at=bot.clock.now(),
    )
    async with bot.db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        await programme.schedule_sessions(s, fresh, bot.services.content, bot.clock.now())
        await s.commit()
        return fresh


async def make_b(bot: Any) -> B:
    """B: distinctive everything, paused, with a history in every table that names a patient."""
    b = B()
    therapist = await make_staff(bot.db, telegram_id=B_THERAPIST_TG, name="Dr Qwertzuiop")
    b.therapist_id = therapist.id or 0
    now = bot.clock.now()
    b.patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=B_TIMES,
        tz="Pacific/Chatham",
        status=PatientStatus.PAUSED,
        alias=B_ALIAS,
        telegram_id=B_TG,
        therapist_id=therapist.id,
        programme_id="lumbar-example",
        surgery_date=B_SURGERY,
        phase_id="weeks-1-2",
        session_times=",".join(B_TIMES),
        paused_until=B_PAUSED_UNTIL,
        quiet_start=B_QUIET[0],
        quiet_end=B_QUIET[1],
        enrol_step="done",
        consent_at=now - timedelta(days=80),
        created_at=now - timedelta(days=80),
        last_activity_at=now - timedelta(hours=5),
    )
    bid = b.id
    content = bot.services.content
    async with bot.db.session() as s:
        delivery = Delivery(
            key=f"b-history-{bid}",
            kind=Kind.SESSION.value,
            priority=3,
            patient_id=bid,
            chat_id=B_TG,
            local_date=WED,
            slot=B_TIMES[0],
            due_at=now - timedelta(hours=3),
            not_before=now - timedelta(hours=3),
            status="sent",
            body="wombat reminder body",
            message_id=4,
            sent_at=now - timedelta(hours=3),
        )
        s.add(delivery)
        await s.flush()
        # One session in every state a press can act on; no live message, so only the owner check stands.
        day = WED - timedelta(days=1)
        states: list[tuple[str, str, str, dict[str, Any]]] = [
            ("06:47", "pending", "", {}),
            ("11:23", "pending", "snooze", {}),
            ("16:59", "done", "effort", {}),
            ("07:13", "partly", "pain", {"effort": "hard"}),
            ("08:21", "skipped", "reason", {}),
            ("09:34", "skipped", "closed", {"skip_reason": "forgot"}),
        ]
        rows = []
        for slot, status, step, extra in states:
            es = ExerciseSession(
                patient_id=bid,
                local_date=day,
                slot=slot,
                phase_id="weeks-1-2",
                status=status,
                step=step,
                delivery_id=delivery.id if slot == "06:47" else None,
                answered_at=None if status == "pending" else now - timedelta(hours=20),
                created_at=now - timedelta(days=1),
                **extra,
            )
            s.add(es)
            rows.append(es)
        s.add(
            ExerciseSession(
                patient_id=bid, local_date=day - timedelta(days=1), slot="06:47", status="done", effort="easy", pain=9
            )
        )
        # Check-ins: an open pain entry, a complete one, a complete mood, an open symptom check.
        checkins = [
            CheckIn(patient_id=bid, questionnaire_id="pain", status="open", started_at=now - timedelta(hours=1)),
            CheckIn(
                patient_id=bid,
                questionnaire_id="pain",
                status="complete",
                score=9.0,
                started_at=now - timedelta(days=1),
                completed_at=now - timedelta(days=1),
                local_date=day,
            ),
            CheckIn(
                patient_id=bid,
                questionnaire_id="mood",
                status="complete",
                score=1.0,
                started_at=now - timedelta(days=1),
                completed_at=now - timedelta(days=1),
                local_date=day,
            ),
            CheckIn(
                patient_id=bid,
                questionnaire_id="symptoms",
                status="open",
                started_at=now - timedelta(hours=1),
                expires_at=now + timedelta(hours=11),
            ),
        ]
        for checkin in checkins:
            s.add(checkin)
        await s.flush()
        s.add(Answer(checkin_id=checkins[1].id or 0, patient_id=bid, item_id="pain", value=9, text="numbat"))
        s.add(Answer(checkin_id=checkins[2].id or 0, patient_id=bid, item_id="mood", value=1))
        s.add(Answer(checkin_id=checkins[3].id or 0, patient_id=bid, item_id="any", value=1))
        s.add(Note(patient_id=bid, text="quokka: my neighbour's parrot keeps me awake", created_at=now))
        s.add(Note(patient_id=bid, text="quokka crisis words", crisis=True, created_at=now))
        alert = Alert(
            key=f"flag:{checkins[3].id}:bladder",
            patient_id=bid,
            severity="emergency",
            kind="red_flag",
            detail="platypus: new bladder trouble",
            created_at=now - timedelta(minutes=30),
            escalated_at=now - timedelta(minutes=10),  # already escalated: the clinic's job leaves it be
        )
        s.add(alert)
        s.add(MotivationLog(patient_id=bid, message_key="numbat-cheer", local_date=day))
        timing_question = TimingProposal(
            patient_id=bid,
            session_index=1,
            from_time=B_TIMES[1],
            to_time=B_TIMING[0],
            usual_time=B_TIMING[1],
            created_at=now,
        )
        s.add(timing_question)
        s.add(TimingWindow(patient_id=bid, start=B_TIMING[2], end=B_TIMING[3], updated_at=now))
        s.add(LessonProgress(patient_id=bid, lesson_id="numbat-lesson", safety=True, delivered_at=now, wrong_answers=3))
        s.add(
            AuditLog(staff_id=therapist.id, actor=f"telegram:{B_THERAPIST_TG}", action="view.patient", patient_id=bid)
        )
        s.add(AuditLog(staff_id=therapist.id, actor="cli", action="export", patient_id=bid, detail="numbat export"))
        s.add(
            Invite(
                code=B_USED_CODE,
                patient_id=bid,
                created_by=therapist.id,
                created_at=now - timedelta(days=81),
                expires_at=now - timedelta(days=74),
                used_at=now - timedelta(days=80),
                used_by=B_TG,
            )
        )
        s.add(
            Invite(
                code=B_FRESH_CODE,
                patient_id=bid,
                created_by=therapist.id,
                created_at=now,
                expires_at=now + timedelta(days=7),
            )
        )
        s.add(
            StaffDraft(
                staff_id=therapist.id or 0, kind="times", step="times", patient_id=bid, alias=B_ALIAS, updated_at=now
            )
        )
        # A conversation with the care team (with a photo), and a caregiver who answered for B.
        asked = CareMessage(
            patient_id=bid,
            direction="in",
            text="echidna: is my wound fine?",
            photo_path="echidna.jpg",
            photo_file_id="echidna-file",
            photo_bytes=4242,
            chat_message_id=77,
            created_at=now - timedelta(hours=2),
        )
        s.add(asked)
        await s.flush()
        answered = CareMessage(
            patient_id=bid,
            direction="out",
            staff_id=therapist.id,
            parent_id=asked.id,
            text="echidna: it looks fine",
            chat_message_id=78,
            created_at=now - timedelta(hours=1),
        )
        carer = Caregiver(
            patient_id=bid,
            code="cgZyxCarer01",
            expires_at=now + timedelta(days=1),
            telegram_id=B_CAREGIVER_TG,
            name="Wallaby",
            consent_at=now - timedelta(days=2),
            missed=True,  # (B's history has one missed session, not two: the care tick queues nothing for B)
            weekly=True,
        )
        s.add_all([answered, carer])
        await s.flush()
        s.add(
            Answer(
                checkin_id=checkins[3].id or 0, patient_id=bid, item_id="wound", value=1, proxy=True,
                caregiver_id=carer.id,
            )
        )  # fmt: skip
        await s.commit()
        b.messages = [asked.id or 0, answered.id or 0]
        b.caregiver_id = carer.id or 0
        b.sessions = [es.id or 0 for es in rows]
        b.checkins = [(c.id or 0, c.questionnaire_id) for c in checkins]
        b.alert_id = alert.id or 0
        b.timing_id = timing_question.id or 0
    assert set(content.questionnaires) >= {q for _, q in b.checkins}
    return b


async def make_c(bot: Any) -> int:
    """C: like A (Berlin, same surgery day) with data that any query not limited to A would pick up.

    Sessions done at A's own slots today and on the days before (streak, adherence, /today),
    a session due sooner than A's next one (/progress), check-ins scored today (the chart), an
    open check-in (/checkin) and a pause; C's id is returned.
    """
    now = bot.clock.now()
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=("18:40",),
        alias="CONTROL-C",
        telegram_id=C_TG,
        programme_id="lumbar-example",
        surgery_date=WED - timedelta(days=5),
        phase_id="weeks-1-2",
        session_times="08:30,12:30,17:30",
        enrol_step="done",
    )
    cid = patient.id or 0
    async with bot.db.session() as s:
        for days_ago in range(8):
            for slot in ("08:30", "12:30", "17:30", "09:00", "13:00", "18:00"):
                status = "done" if days_ago else "partly"
                s.add(
                    ExerciseSession(patient_id=cid, local_date=WED - timedelta(days=days_ago), slot=slot, status=status)
                )
        for qid, score in (("pain", 10.0), ("mood", 5.0)):
            s.add(
                CheckIn(
                    patient_id=cid,
                    questionnaire_id=qid,
                    status="complete",
                    score=score,
                    started_at=now,
                    completed_at=now,
                    local_date=WED,
                )
            )
        s.add(CheckIn(patient_id=cid, questionnaire_id="symptoms", status="open", started_at=now))
        s.add(Note(patient_id=cid, text="control note", created_at=now))
        # C has read and understood the lessons A has not: A's /learn must not show it.
        for lesson_id in ("walking", "wound-care", "infection-signs"):
            s.add(LessonProgress(patient_id=cid, lesson_id=lesson_id, delivered_at=now, opened_at=now, understood=True))
        await s.commit()
    return cid


async def views(w: Walker) -> list[tuple[Any, ...]]:
    """Everything A's read-only commands show, files and chart included."""
    out = []
    for text in ("/start", "/today", "/progress", "/learn", "/settings", "/timing", "/pause", "/checkin", "/mydata"):
        for m in await w.send(text):
            media = m.media.data if m.media is not None else None
            out.append((text, m.text, m.callback_data, media))
    return out


# --- the matrices ---------------------------------------------------------------------------------


def command_matrix(b: B, *, patient: bool = True) -> dict[str, list[str]]:
    """Every patient command, plainly and with arguments that name B.

    B's fresh invitation (a renewed link, e.g. for a new phone) is tried only while A is a
    patient: an account that is nobody's patient and holds the link *is* B's new account, by
    design, and the code is B's secret that A could not know.
    """
    codes = [B_FRESH_CODE, B_USED_CODE] if patient else [B_USED_CODE]
    return {
        "start": ["/start", f"/start {B_ALIAS}", *(f"/start {code}" for code in codes)],
        "help": ["/help", f"/help {B_ALIAS}"],
        "today": ["/today", f"/today {B_ALIAS}"],
        "checkin": ["/checkin", f"/checkin {b.checkins[0][0]}"],
        "pain": ["/pain", f"/pain {B_ALIAS}"],
        "note": ["/note", "/note The exercises are going well this week."],
        "progress": ["/progress", f"/progress {b.id}"],
        "learn": ["/learn", f"/learn {B_ALIAS}", "/learn numbat-lesson"],
        "settings": ["/settings", f"/settings {B_ALIAS}"],
        "pause": ["/pause", f"/pause {B_ALIAS}"],
        "resume": ["/resume", f"/resume {b.id}"],
        "cancel": ["/cancel", f"/cancel {B_ALIAS}"],
        "mydata": ["/mydata", f"/mydata {B_ALIAS}", f"/mydata {b.id}"],
        "caregiver": ["/caregiver", f"/caregiver {B_ALIAS}", f"/caregiver {b.caregiver_id}"],
        "delete": ["/delete", f"/delete {B_ALIAS}"],
        "stop": ["/stop", f"/stop {b.id}"],
        "timing": ["/timing", f"/timing {B_ALIAS}", f"/timing {b.timing_id}", "/timing off"],
    }


def staff_commands(b: B) -> list[str]:
    """The staff commands, naming B (a patient gets the unknown answer: see test_authorisation)."""
    return [
        "/patients",
        "/patients all",
        f"/patient {B_ALIAS}",
        "/alerts",
        "/invite",
        "/staffinvite",
        "/dashboard",
        "/cancel",
    ]


def session_forgeries(b: B) -> list[str]:
    """Every action and value on every one of B's sessions."""
    actions = ["d", "p", "k", "z", "b"]
    actions += [f"z:{m}" for m in session_core.SNOOZE_MINUTES]
    actions += [f"e:{v}" for v in (*session_core.EFFORTS, session_core.SKIP_ANSWER)]
    actions += [f"n:{v}" for v in (*range(session_core.PAIN_MAX + 1), session_core.SKIP_ANSWER)]
    actions += [f"r:{v}" for v in session_core.SKIP_REASONS]
    return [f"s:{sid}:{action}" for sid in b.sessions for action in actions]


def checkin_forgeries(b: B, content: Any) -> list[str]:
    """Every item (and one past the end) and every value of B's check-ins, and skips."""
    out = []
    for checkin_id, qid in b.checkins:
        items = content.questionnaires[qid].items
        for index in range(len(items) + 1):
            values = [str(o.value) for o in items[index].options] if index < len(items) else ["0"]
            out += [f"ci:{checkin_id}:{index}:{v}" for v in (*values, "s")]
    return out


def forgeries(b: B, content: Any) -> dict[str, list[str]]:
    """Forged callback data naming B's objects, for every callback pattern the bot handles."""
    bid = b.id
    return {
        "^s:": session_forgeries(b),
        "^ci:": checkin_forgeries(b, content),
        "^cq:": [f"cq:{qid}:{bid}" for qid in content.questionnaires] + [f"cq:{b.checkins[0][0]}", f"cq:{B_ALIAS}"],
        "^nt:[sx]$": [f"nt:s:{bid}", f"nt:x:{bid}"],
        "^sc:": [f"sc:{qid}:{bid}" for qid in content.questionnaires] + [f"sc:{bid}"],
        "^pt:": [
            f"pt:pause:7:{bid}",
            f"pt:pause:date:{bid}",
            f"pt:set:times:{bid}",
            f"pt:set:tz:{bid}",
            f"pt:set:lang:{bid}",
            f"pt:set:quiet:{bid}",
            f"pt:del:yes:{bid}",
            f"pt:stop:yes:{bid}",
            f"pt:del:no:{bid}",
            f"pt:stop:no:{bid}",
            f"pt:{bid}",
        ],
        "^e:": [
            f"e:{bid}:{action}"
            for action in ("ok", "no", "tz:Europe/Berlin", "tz:Pacific/Chatham", "tzx", "tm:0800.1300.1800", "back")
        ],
        "^st:": [
            {
                "ak": f"st:ak:{b.alert_id}",
                "pc": f"st:pc:{bid}:lumbar-example",
                "pd": f"st:pd:{bid}:3",
                "it": f"st:it:{b.therapist_id}",
                "pl": "st:pl:a:0",
                "sr": "st:sr:admin",
                "is": "st:is:lumbar",
                "ip": "st:ip:lumbar-example",
            }.get(action, f"st:{action}:{bid}")
            for action in staff_bot.ACTIONS
        ],
        "^le:": [
            f"le:m:{bid}",
            "le:o:numbat-lesson",
            "le:a:numbat-lesson:0",
            f"le:o:when-to-call:{bid}",
            f"le:a:when-to-call:2:{bid}",
            f"le:r:when-to-call:{bid}",
        ],
        "^nt:c$": ["nt:c"],
        "^cz:[yn]$": ["cz:y", "cz:n"],  # the crisis question's answers: only on a question that asks them
        "^cm:": [f"cm:{action}:{mid}:{bid}" for mid in b.messages for action in ("r", "k")]
        + [f"cm:r:{bid}", f"cm:r:{bid}:{bid}"],
        "^cg:": [
            *(f"cg:{action}:{b.caregiver_id}" for action in ("p", "rm", "ry", "ok", "no")),
            *(f"cg:t:{b.caregiver_id}:{n}" for n in range(4)),
            "cg:dy",
            "cg:dn",
            f"cg:new:{bid}",
        ],
        "^cp:": ["cp:" + data[3:] for data in checkin_forgeries(b, content)],
        "^cs:": [f"cs:{qid}" for qid in content.questionnaires] + [f"cs:{bid}"],
        "^tm:": [f"tm:{b.timing_id}:y", f"tm:{b.timing_id}:n", f"tm:{b.timing_id}"],
        "^xo:out$": ["xo:out"],  # the experiment notice's opt-out: only from a message that carries it
        "^sd:": [f"sd:{sid}" for sid in b.sessions],  # a typed "done": records only the presser's own session
        # A typed "done" before the reminder: only from the offer that carries it, for the presser's own session.
        "^sa:": ["sa:0800", "sa:0900", "sa:1300", "sa:1800", f"sa:{bid}"],
        # Not a pattern: what no handler claims goes to the catch-all.
        "": [f"zz:{bid}", f"s:{b.sessions[0]}", f"ci:{b.checkins[0][0]}:0", f"e:{bid}"],
    }


def registered_patterns(app: Any) -> set[str]:
    """The callback_data patterns of every CallbackQueryHandler in the running bot."""
    found = set()
    for handlers in app.handlers.values():
        for h in handlers:
            if isinstance(h, CallbackQueryHandler) and h.pattern is not None:
                found.add(h.pattern if isinstance(h.pattern, str) else getattr(h.pattern, "pattern", str(h.pattern)))
    return found


def registered_commands(app: Any) -> tuple[set[str], set[str]]:
    """(patient-facing commands, staff commands) of every CommandHandler in the running bot."""
    patient: set[str] = set()
    staff: set[str] = set()
    for handlers in app.handlers.values():
        for h in handlers:
            if isinstance(h, CommandHandler):
                module = getattr(h.callback, "__module__", "")
                in_staff = module.startswith(staff_bot.__name__ + ".")
                is_staff = module in (staff_bot.__name__, web_bot.__name__) or in_staff
                (staff if is_staff else patient).update(h.commands)
    return patient, staff


# --- A's side of the chat ---------------------------------------------------------------------------


class Walker:
    """A's hands on the chat: every action waits until the bot has handled it completely."""

    def __init__(self, tg: FakeTelegram, user: FakeUser) -> None:
        self.tg, self.user = tg, user
        self.seen: dict[str, int] = {}  # callback_data -> the newest message that carried it
        self.pressed: set[str] = set()

    def scan(self) -> None:
        for m in self.user.messages:
            for data in m.callback_data:
                if data != SYNC:
                    self.seen[data] = m.message_id

    async def sync(self) -> None:
        """Updates are handled one at a time, in order: the catch-all's answer comes after all before it."""
        await self.user.press_data(SYNC, self.user.messages[0].message_id)
        await self.user.wait_for_answer(timeout=20)
        self.scan()

    async def send(self, text: str, reply_to: int | None = None) -> list[SentMessage]:
        before = len(self.user.messages)
        await self.user.send(text, reply_to=reply_to)
        await self.sync()
        return self.user.messages[before:]

    async def press(self, label: str, message: SentMessage | int | None = None) -> str | None:
        update = await self.user.press(label, message)
        return await self._answered(update)

    async def press_data(self, data: str, message_id: int) -> str | None:
        update = await self.user.press_data(data, message_id)
        return await self._answered(update)

    async def _answered(self, update: dict[str, Any]) -> str | None:
        self.pressed.add(update["callback_query"]["data"])
        answer = await self.user.wait_for_answer(timeout=20)
        await self.sync()
        return answer.text

    def message(self, message_id: int) -> SentMessage:
        return self.tg.message(self.user.user_id, message_id)

    def newest(self, predicate: Callable[[SentMessage], bool]) -> SentMessage:
        found = [m for m in self.user.messages if not m.deleted and predicate(m)]
        assert found, f"no such message; last: {[m.text for m in self.user.messages[-3:]]}"
        return found[-1]

    def state(self) -> list[tuple[Any, ...]]:
        """What A's chat looks like: any send or edit changes it."""
        return [(m.message_id, m.text, json.dumps(m.reply_markup), len(m.history)) for m in self.user.messages]


def labels(message: SentMessage) -> list[str]:
    return message.button_labels


async def batch_press(tg: FakeTelegram, user: FakeUser, data: list[str], message_id: int) -> list[str | None]:
    """Queue every press at once, then wait until each is answered; the answers in order."""
    ids = []
    for d in data:
        update = await user.press_data(d, message_id)
        ids.append(update["callback_query"]["id"])
    await tg.wait_until(
        lambda: {a.query_id for a in user.callback_answers} >= set(ids), timeout=120, what="every forged press answered"
    )
    by_id = {a.query_id: a.text for a in user.callback_answers}
    return [by_id[i] for i in ids]


# --- what A sees and what changed ---------------------------------------------------------------------


def everything_sent(tg: FakeTelegram, user: FakeUser, chat_ids: set[int]) -> list[str]:
    """Every string the bot sent to these chats: parameters of every call, files, edits, answers."""
    out = []
    for r in tg.requests:
        if r.chat_id in chat_ids:
            out.append(json.dumps(r.params, ensure_ascii=False, default=str))
            for f in r.files.values():
                if not f.data.startswith(b"\x89PNG"):
                    out.append(f.data.decode("utf-8", errors="replace"))
    for m in user.messages:
        out += [m.text or "", m.raw_text or "", *(h or "" for h in m.history), *m.button_labels, *m.callback_data]
        if m.document is not None and m.document.data is not None:
            out.append(m.document.data.decode("utf-8", errors="replace"))
    out += [a.text or "" for a in user.callback_answers]
    return out


def leaks(texts: list[str]) -> list[tuple[str, str]]:
    found = []
    for text in texts:
        for marker in MARKERS:
            if marker.lower() in text.lower():
                found.append((marker, text[:300]))
    return found


async def not_a(bot: Any, a_id: int, c_id: int = 0) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table that is not A's (B's rows, both therapists, everything else).

    C, the control patient added after the first snapshot, is left out.
    """
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with bot.db.session() as s:
        conn = await s.connection()
        for table in SQLModel.metadata.sorted_tables:
            if table.name in ("receiver_lease", "send_share"):  # the running bot's own leases: heartbeats move on
                continue
            query = select(table)
            if "patient_id" in table.c:
                query = query.where(or_(table.c.patient_id.not_in([a_id, c_id]), table.c.patient_id.is_(None)))
            elif table.name == "patient":
                query = query.where(table.c.id.not_in([a_id, c_id]))
            rows = (await conn.execute(query.order_by(*table.primary_key.columns))).all()
            out[table.name] = [tuple(row) for row in rows]
    return out


async def b_rows(bot: Any, b: B) -> int:
    """How many rows name B (so the snapshot is known not to be empty)."""
    total = 0
    async with bot.db.session() as s:
        conn = await s.connection()
        for table in patient_core.patient_tables():
            total += len((await conn.execute(select(table).where(table.c.patient_id == b.id))).all())
    return total


# --- the walk ---------------------------------------------------------------------------------------------


async def tick_at(bot: Any, walker: Walker, when: datetime) -> SentMessage:
    """Move the clock, run the engine, and return the reminder it sent A."""
    before = len(walker.user.messages)
    bot.clock.set(when)
    await bot.tick()
    await walker.sync()
    new = [m for m in walker.user.messages[before:] if "⏭ Skip" in labels(m)]
    assert len(new) == 1, [m.text for m in walker.user.messages[before:]]
    return new[0]


async def sessions_walk(bot: Any, w: Walker) -> None:
    """Each session button to its depth: done/effort/pain, snooze/back/re-send/skip/reason, partly/skips."""
    r1 = await tick_at(bot, w, berlin(WED, "09:00"))
    assert await w.press("✅ Done", r1) is None
    question = w.newest(lambda m: m.text == "How hard did the exercises feel?")
    await w.press("😌 Easy", question)
    await w.press("3", question)
    assert "Well done" in (w.message(question.message_id).text or "")

    r2 = await tick_at(bot, w, berlin(WED, "13:00"))
    await w.press("⏰ Snooze", r2)
    await w.press("« Back", r2)
    await w.press("⏰ Snooze", r2)
    await w.press("15 min", r2)
    again = await tick_at(bot, w, berlin(WED, "13:15"))
    await w.press("⏭ Skip", again)
    reasons = w.newest(lambda m: m.text == "What got in the way?")
    await w.press("Pain", reasons)

    r3 = await tick_at(bot, w, berlin(WED, "18:00"))
    await w.press("🌗 Partly", r3)
    question = w.newest(lambda m: (m.text or "").endswith("How hard did the exercises feel?"))
    await w.press("Skip this question", question)
    await w.press("Skip this question", question)


async def checkins_walk(w: Walker) -> None:
    """/checkin's menu into each questionnaire, a red flag on the way, /pain."""
    for title, answer in (("Pain", "4"), ("Mood", "🙂 4")):
        [menu] = await w.send("/checkin")
        assert title in labels(menu), labels(menu)
        await w.press(title, menu)
        await w.press(answer, menu)
    [menu] = await w.send("/checkin")
    await w.press("Wound and symptom check", menu)
    await w.press("Yes, at least one", menu)
    for _ in range(20):
        current = w.message(menu.message_id)
        if not current.has_inline_keyboard:
            break
        text = current.text or ""
        if "In one leg or in both legs?" in text:  # the follow-ups of weakness: one leg, not getting worse
            await w.press("One leg", menu)
        elif "new since yesterday, or getting worse?" in text:
            await w.press("No, the same as before", menu)
        else:
            await w.press("Yes" if "weakness" in text else "No", menu)
    assert "Thank you! Your answers are saved." in (w.message(menu.message_id).text or "")
    [question] = await w.send("/pain")
    await w.press("7", question)


async def notes_walk(w: Walker) -> None:
    """/note with and without text, a reply to its prompt, free text saved and not, a crisis message."""
    [prompt] = await w.send("/note")
    await w.send("The stairs were easier today.", reply_to=prompt.message_id)
    await w.send("/note Please call me about the brace.")
    [offer] = await w.send("I walked to the bakery and back.")
    await w.press("Save as a note", offer)
    [offer] = await w.send("Just thinking aloud.")
    await w.press("No, thanks", offer)
    crisis = await w.send("Some days I want to die.")
    assert crisis, "the crisis text is answered"


async def settings_walk(w: Walker) -> None:
    """Every settings button and typed answer; pause by button and by date; stop and delete declined."""
    [menu] = await w.send("/settings")
    await w.press("🕒 Times", menu)
    await w.send("08:30, 12:30, 17:30")
    menu = w.newest(lambda m: "pt:set:tz" in m.callback_data)
    await w.press("🌍 Timezone", menu)
    await w.send("Vienna")
    menu = w.newest(lambda m: "pt:set:quiet" in m.callback_data)
    await w.press("🌙 Quiet hours", menu)
    await w.press("Set my own", menu)
    await w.send("22:00-06:00")
    menu = w.newest(lambda m: "pt:set:quiet" in m.callback_data)
    await w.press("🌙 Quiet hours", menu)
    await w.press("No quiet hours", menu)
    menu = w.newest(lambda m: "pt:set:quiet" in m.callback_data)
    await w.press("🌙 Quiet hours", menu)
    await w.press("Clinic default", menu)
    menu = w.newest(lambda m: "pt:set:lang" in m.callback_data)
    await w.press("🗣 Language", menu)
    await w.press("Deutsch", menu)
    menu = w.newest(lambda m: "pt:set:lang" in m.callback_data)
    await w.press_data("pt:set:lang", menu.message_id)
    await w.press("English", menu)

    [offer] = await w.send("/pause")
    await w.press("3 days", offer)
    [offer] = await w.send("/pause")
    await w.press("📅 Choose a date", offer)
    await w.send("20.06.2026")
    await w.send("/resume")
    [ask] = await w.send("/stop")
    await w.press("No, keep them", ask)
    [ask] = await w.send("/delete")
    await w.press("No, keep my data", ask)


async def commands_walk(w: Walker, matrix: dict[str, list[str]], staff: list[str]) -> None:
    for texts in matrix.values():
        for text in texts:
            replies = await w.send(text)
            assert replies, f"{text} got no answer"
    for text in staff:
        await w.send(text)


async def press_everything(w: Walker, *, keep: Callable[[str], bool]) -> int:
    """Press every callback_data A was ever sent and has not pressed yet (except what keep() holds back)."""
    count = 0
    for _ in range(10):
        todo = [(d, mid) for d, mid in w.seen.items() if d not in w.pressed and not keep(d)]
        if not todo:
            return count
        for data, mid in todo:
            await w.press_data(data, mid)
            count += 1
    raise AssertionError("the buttons never ran out")


def confirmation(data: str) -> bool:
    return data.startswith(("pt:del:yes:", "pt:stop:yes:"))


async def forge(bot: Any, tg: FakeTelegram, w: Walker, b: B) -> int:
    """Every forged press naming B, on A's live settings menu: neutral answers, A's chat untouched."""
    forged = forgeries(b, bot.services.content)
    [menu] = await w.send("/settings")
    before = w.state()
    presses = [d for data in forged.values() for d in data]
    answers = await batch_press(tg, w.user, presses, menu.message_id)
    await w.sync()
    wrong = [(d, ans) for d, ans in zip(presses, answers, strict=True) if ans != STALE]
    assert not wrong, f"forged presses that were not answered neutrally: {wrong[:10]}"
    assert w.state() == before, "a forged press changed A's chat"
    assert menu.has_inline_keyboard, "A's own live menu keeps its buttons"
    return len(presses)


# --- the test ---------------------------------------------------------------------------------------------


async def test_one_patient_never_sees_anothers_data(bot: Any, tg: FakeTelegram) -> None:
    started = asyncio.get_running_loop().time()
    a = await make_a(bot)
    b = await make_b(bot)
    assert a.id is not None and a.id != b.id
    assert await b_rows(bot, b) >= 20
    before = await not_a(bot, a.id)
    user = tg.user(A_TG)
    w = Walker(tg, user)
    content = bot.services.content

    # The matrices cover everything the bot registers: a new command or button prefix fails here.
    matrix = command_matrix(b)
    patient_cmds, staff_cmds = registered_commands(bot.app)
    menu = {c.command for lang in ("", "en", "de") for c in tg.commands_for("default", language_code=lang)}
    assert menu and menu <= patient_cmds
    assert set(matrix) == patient_cmds | menu, "every patient command is in the matrix"
    assert staff_cmds == {text.split()[0][1:] for text in staff_commands(b)}
    assert registered_patterns(bot.app) == set(forgeries(b, content)) - {""}, "every button prefix is forged"

    await sessions_walk(bot, w)
    await checkins_walk(w)
    await notes_walk(w)
    await settings_walk(w)
    await commands_walk(w, matrix, staff_commands(b))

    # /mydata: only A's rows, nothing of B's.
    [reply] = await w.send("/mydata")
    assert reply.document is not None and reply.document.data is not None
    data = json.loads(reply.document.data)
    assert data["patient"]["alias"] == "PAT-A" and data["patient"]["therapist"] == "Dr Plain"
    assert set(data["tables"]) == {t.name for t in patient_core.patient_tables()}
    assert all(row["patient_id"] == a.id for rows in data["tables"].values() for row in rows)
    assert data["tables"]["exercise_session"] and data["tables"]["checkin"] and data["tables"]["note"]
    assert not leaks([reply.document.data.decode()])
    # Every row's time comes from the injected clock: a row stamped with the wall clock once made this
    # test fail whenever the real time of day was one of B's session times (06:47, 11:23, 16:59).
    assert datetime.now(UTC).date().isoformat() not in reply.document.data.decode(), "no wall-clock time"

    # /progress: the caption speaks of A, and the chart is the one drawn from A's data alone.
    replies = await w.send("/progress")
    [chart] = [m for m in replies if m.photo is not None]
    assert chart.caption and not leaks([chart.caption])
    assert replies[0].text and "Day 5 after your surgery." in replies[0].text
    async with bot.db.session() as s:
        fresh = await s.get(Patient, a.id)
        assert fresh is not None
        own = report.render_chart(await report.load_progress(s, fresh, bot.clock.now()))
    assert chart.photo is not None and chart.photo.data == own

    # Non-interference: another patient's data, made to sway every query not limited to A, changes
    # nothing A is shown (this catches leaks of derived values that carry no marker).
    seen_before = await views(w)
    assert seen_before == await views(w), "A's views are stable"
    c_id = await make_c(bot)
    assert await views(w) == seen_before, "another patient's data changed what A sees"

    forged = await forge(bot, tg, w, b)
    pressed = await press_everything(w, keep=confirmation)

    # Stopped, then erased: every command again, every forged press again, every button left.
    [ask] = await w.send("/stop")
    await w.press_data(next(d for d in ask.callback_data if d.startswith("pt:stop:yes:")), ask.message_id)
    await commands_walk(w, matrix, [])
    await w.send("/resume")
    [ask] = await w.send("/delete")
    await w.press_data(next(d for d in ask.callback_data if d.startswith("pt:del:yes:")), ask.message_id)
    async with bot.db.session() as s:
        gone = await s.get(Patient, a.id)
        assert gone is not None and gone.telegram_id is None, "A's data is erased"
    await commands_walk(w, command_matrix(b, patient=False), [])
    answers = await batch_press(tg, user, [d for ds in forgeries(b, content).values() for d in ds], ask.message_id)
    assert set(answers) == {STALE}
    pressed += await press_everything(w, keep=lambda d: False)
    bot.clock.advance(timedelta(minutes=5))
    await bot.tick()  # what A's actions queued for the care team goes out now
    await w.sync()

    assert not set(w.seen) - w.pressed, "every button A was sent has been pressed"
    assert {d.split(":")[0] for d in w.seen} >= {"s", "ci", "cq", "nt", "pt", "le"}
    texts = everything_sent(tg, user, {A_TG})
    assert not leaks(texts), leaks(texts)[:5]
    assert not any(OOPS in t for t in texts), [t for t in texts if OOPS in t][:3]
    assert not leaks(everything_sent(tg, tg.user(A_THERAPIST_TG), {A_THERAPIST_TG}))
    assert await not_a(bot, a.id, c_id) == before, "nothing that is not A's changed"
    assert {r.chat_id for r in tg.requests if r.chat_id is not None} <= {A_TG, A_THERAPIST_TG}
    for other in (B_TG, B_THERAPIST_TG, C_TG):
        assert not tg.user(other).messages, f"{other} heard nothing"
    commands = sum(len(v) for v in matrix.values())
    print(
        f"privacy matrix: {len(matrix)} patient commands ({commands} variants, run 3 times) + "
        f"{len(staff_commands(b))} staff commands; {len(w.pressed)} distinct buttons pressed ({pressed} in bulk); "
        f"{forged} forged presses x 2 over {len(registered_patterns(bot.app))} prefixes; "
        f"{asyncio.get_running_loop().time() - started:.1f}s"
    )
