"""One patient's whole journey, end to end: from the clinic's invite link to the next programme phase.

The real bot polls the fake Bot API; time is the injected clock, and the
reminder engine runs as its repeating job would (one tick at every instant
something is due, the end-of-day sweep at every local midnight). In English
and in German, one patient:

1. gets an invite made by the core (as the CLI and staff do) and opens the
   deep link (``/start <code>``);
2. is welcomed with the clinic's and the therapist's names, accepts the
   consent, picks the clinic's time zone and the programme's suggested times,
   and reads the summary with the time of the first reminder;
3. lives a week of session reminders: Done with effort and pain, then praise
   with the streak; Partly; Skip with a reason; Snooze and the re-sent
   reminder answered; no answer, one nudge, missed at the end of the day;
   then a pause until a typed date (nothing arrives) ended early by /resume
   (the reminders come back). The other sessions of each day are answered
   Done; the evening check-ins and motivational messages arrive as they
   would, and are left unanswered (tests/e2e/test_checkins.py answers them);
4. crosses into the next programme phase (two sessions a day instead of
   three): the first reminder of the new phase says what changed.

It proves that the pieces tested one by one elsewhere work together, in one
database, over eight days: every message the patient received is checked, in
order (first and last line of its final state, and whether it kept buttons),
and so are the stored patient, consent, sessions and deliveries. It runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from factories import make_staff
from language_check import foreign_sentences, leaks
from rig.telegram_server import FakeTelegram, FakeUser, SentMessage
from sqlmodel import col, select

from rehab_bot import invite as invites
from rehab_bot import redflag
from rehab_bot.bot import session as session_bot
from rehab_bot.content import load_content, localize
from rehab_bot.i18n import t
from rehab_bot.models import (
    Delivery,
    ExerciseSession,
    Invite,
    Kind,
    MotivationLog,
    Patient,
    PatientStatus,
    ReminderRule,
)

# A long scenario: `pytest -m "not slow"` leaves it out; .ci/run runs it.
pytestmark = pytest.mark.slow

BERLIN = ZoneInfo("Europe/Berlin")
WED = date(2026, 6, 10)  # the clock starts at 07:00 on this Wednesday in Berlin (tests/factories.py T0)
SURGERY = date(2026, 6, 3)  # day 7 at enrolment; day 14, the first of "weeks 3-6", is Wednesday 17 June
DAY = timedelta(days=1)
THU, FRI, SAT, SUN, MON, TUE = (WED + DAY * n for n in range(1, 7))
NEXT_WED = WED + 7 * DAY
CONTENT = load_content(None)
CONSENT_VERSION = "2026-11-01"
DAILY = ["pain", "mood", "symptoms"]  # every evening until day 13
WEEKLY = ["phq2", "gad2"]  # every 7 days from day 7


def berlin(day: date, hhmm: str) -> datetime:
    """A Berlin wall-clock time as a UTC instant."""
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=BERLIN).astimezone(UTC)


def phase(phase_id: str) -> Any:
    return next(p for p in CONTENT.programme("lumbar-example").phases if p.id == phase_id)


def first_last(message: SentMessage) -> tuple[str, str, bool]:
    """A message as the transcript records it: first line, last line, live buttons or not."""
    lines = (message.text or "").split("\n")
    return lines[0], lines[-1], message.has_inline_keyboard


# --- the engine, run as its repeating jobs would run it ------------------------------------------


async def next_due(bot: Any) -> datetime | None:
    async with bot.db.session() as s:
        rows = await s.exec(
            select(ReminderRule.next_due_at).where(
                col(ReminderRule.active).is_(True), col(ReminderRule.next_due_at).is_not(None)
            )
        )
        dues = [d for d in rows.all() if d is not None]
    return min(dues) if dues else None


async def run_until(bot: Any, until: datetime) -> None:
    """Move the clock to until, ticking the engine at every due instant and sweeping at local midnights."""
    while True:
        now = bot.clock.now()
        due = await next_due(bot)
        midnight = datetime.combine(now.astimezone(BERLIN).date() + DAY, time(0), tzinfo=BERLIN).astimezone(UTC)
        stop = midnight if due is None else min(due, midnight)
        if stop > until:
            break
        assert stop > now, f"a rule due at {stop} was left behind by the tick at {now}"
        bot.clock.set(stop)
        await bot.tick()
        await session_bot.sweep(bot.app)
    bot.clock.set(until)
    await bot.tick()
    await session_bot.sweep(bot.app)


# --- the patient's side ----------------------------------------------------------------------------


@dataclass
class Journey:
    """Drives the patient and keeps the transcript of everything the bot sent them."""

    bot: Any
    user: FakeUser
    lang: str
    expected: list[tuple[str, str, bool]] = field(default_factory=list)
    taken: int = 0

    def _(self, msgid: str, **kw: Any) -> str:
        return t(self.lang, msgid, **kw)

    @property
    def main(self) -> list[str]:
        return [self._("▶ Start"), self._("✅ Done"), self._("🌗 Partly"), self._("⏭ Skip"), self._("⏰ Snooze")]

    def new(self, count: int) -> list[SentMessage]:
        """The messages the bot sent since the last call; there must be exactly count."""
        fresh = self.user.messages[self.taken :]
        assert len(fresh) == count, [m.text for m in fresh]
        self.taken += count
        return fresh

    def expect(self, first: str, last: str | None = None, buttons: bool = False) -> None:
        """Record what the next message must finally look like (checked at the end)."""
        self.expected.append((first, first if last is None else last, buttons))

    async def press(self, label: str, message: SentMessage, events: int) -> list[SentMessage]:
        """Press a button on message; wait for the silent answer and events sends/edits."""
        self.user.mark_seen()
        await self.user.press(label, message)
        answer = await self.user.wait_for_answer()
        assert answer.text in (None, ""), f"a valid press is answered silently, got {answer.text!r}"
        return await self.user.wait_for(count=events) if events else []

    async def send(self, text: str, events: int = 1) -> list[SentMessage]:
        self.user.mark_seen()
        await self.user.send(text)
        return await self.user.wait_for(count=events)

    async def reminder(self, at: datetime, slot: str, phase_id: str = "weeks-1-2", index: int = 0) -> SentMessage:
        """The engine sends the session reminder due at `at`."""
        await run_until(self.bot, at)
        [message] = self.new(1)
        assert message.text.startswith(self._("Time for your exercise session ({slot}).", slot=slot))
        # Short: the phase, how many exercises; the exercises themselves come with Start.
        count = len(phase(phase_id).exercises_for(index))
        assert localize(phase(phase_id).title, self.lang) in message.text
        assert f"\n{count} " in message.text and len(message.text) <= 400
        assert message.button_labels == self.main
        return message

    def streak_line(self, streak: int) -> str:
        """Shown as soon as Done or Partly is pressed."""
        if streak >= 2:
            return self._("🔥 {n} days in a row.", n=streak)
        return self._("🔥 Your streak starts today.")

    def praise(self, status: str, streak: int) -> str:
        if status == "partly":
            text = self._("Thank you for logging it. Doing part of your exercises still counts.")
        else:
            text = self._("Well done! 💪")
        if streak >= 2:
            return text + " " + self._("That's {n} days in a row.", n=streak)
        return text + " " + self._("Every session counts.")

    async def log(
        self,
        reminder: SentMessage,
        slot: str,
        outcome: str,
        streak: int,
        effort: str | None = None,
        pain: int | None = None,
    ) -> None:
        """Done or Partly on a reminder, then the effort and pain questions (or skip them), then praise."""
        button, line = {
            "done": ("✅ Done", "✅ Logged: done."),
            "partly": ("🌗 Partly", "🌗 Logged: partly done."),
        }[outcome]
        edited, question = await self.press(self._(button), reminder, 2)
        assert edited.message_id == reminder.message_id and not edited.has_inline_keyboard
        line = self._(line) + " " + self.streak_line(streak)
        assert edited.text.endswith("\n\n" + line)
        [sent] = self.new(1)
        assert sent.message_id == question.message_id
        assert question.text == self._("How hard did the exercises feel?")
        efforts = [self._("😌 Easy"), self._("🙂 OK"), self._("😓 Hard")]
        assert question.button_labels == [*efforts, self._("Skip this question")]
        [pain_question] = await self.press(effort or self._("Skip this question"), question, 1)
        assert pain_question.message_id == question.message_id
        ask = self._("How much pain did you have during the exercises? (0 = none, 10 = worst imaginable)")
        intro = self._("Effort: {effort}.", effort=effort) + "\n\n" if effort else ""
        assert pain_question.text == intro + ask
        assert pain_question.button_labels == [str(n) for n in range(11)] + [self._("Skip this question")]
        answer = str(pain) if pain is not None else self._("Skip this question")
        [thanks] = await self.press(answer, question, 1)
        assert thanks.message_id == question.message_id and not thanks.has_inline_keyboard
        assert thanks.text == self.praise(outcome, streak)
        self.expect(self._("Time for your exercise session ({slot}).", slot=slot), line)
        self.expect(self.praise(outcome, streak))

    async def evening(self, day: date, *, checkins: list[list[str]], motivation: str | None) -> None:
        """The evening: the check-in(s), left unanswered, and the day's motivational message, if any."""
        await run_until(self.bot, berlin(day, "21:30"))
        sent = self.new(len(checkins) + (motivation is not None))
        headers = {}
        for questionnaires in checkins:
            title = localize(CONTENT.questionnaires[questionnaires[0]].title, self.lang)
            header = self._("📝 Check-in: {title}", title=title)
            if len(questionnaires) > 1:
                header += f" (1/{len(questionnaires)})"
            item = CONTENT.questionnaires[questionnaires[0]].items[0]
            headers[header] = localize(item.text, self.lang).strip()
            if item.low and item.high:  # what 0 and 10 mean, below the question
                headers[header] += f"\n\n{localize(item.low, self.lang)}\n{localize(item.high, self.lang)}"
        # Check-ins due at the same minute go out together, in no particular order.
        asked = sent[: len(checkins)]
        assert sorted(first_last(m)[0] for m in asked) == sorted(headers)
        for message in asked:
            header = first_last(message)[0]
            assert message.text.endswith(headers[header]) and message.has_inline_keyboard
            self.expect(header, headers[header].split("\n")[-1], True)
        if motivation is not None:
            message = CONTENT.messages[motivation]
            text = message.render(self.lang, **({"days": message.param} if message.trigger == "streak" else {}))
            assert sent[-1].text == text and not sent[-1].has_inline_keyboard
            self.expect(text)
            async with self.bot.db.session() as s:
                logged = (await s.exec(select(MotivationLog).where(col(MotivationLog.local_date) == day))).all()
            assert [m.message_key for m in logged] == [motivation]


# --- the journey -------------------------------------------------------------------------------------


async def stored_patient(bot: Any, patient_id: int) -> Patient:
    async with bot.db.session() as s:
        found = await s.get(Patient, patient_id)
    assert found is not None
    return found


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_one_patient_from_the_invite_link_to_the_next_phase(
    bot_factory: Callable[..., Any], tg: FakeTelegram, backend: str, lang: str, tmp_path: Path
) -> None:
    # The recovery course has its own end-to-end test (test_education.py); the clinic switches it
    # off here so this transcript stays the one of sessions, check-ins and motivation.
    (tmp_path / "lessons.toml").write_text(
        "".join(f'[[lesson]]\nid = "{lesson.id}"\nenabled = false\n\n' for lesson in CONTENT.course.lessons)
        if CONTENT.course is not None
        else ""
    )
    bot = await bot_factory(backend, content={"dir": tmp_path}, delivery={"per_chat_interval": 0.02})
    _ = lambda msgid, **kw: t(lang, msgid, **kw)  # noqa: E731
    header = lambda slot: _("Time for your exercise session ({slot}).", slot=slot)  # noqa: E731
    if lang == "de":
        for msgid in ("✅ Done", "Yes, I agree", "Well done! 💪", "Time for your exercise session ({slot})."):
            assert _(msgid) != msgid, f"the German catalogue must translate {msgid!r}"
    user = tg.user(4242, first_name="Anna" if lang == "en" else "Jonas", language_code=lang)
    journey = Journey(bot, user, lang)
    clinic = bot.config.clinic

    # 1. The clinic makes the invite (the core behind `rehab-bot invite create`); the patient opens the link.
    therapist = await make_staff(bot.db, name="Dr Weber", telegram_id=3001)
    async with bot.db.session() as s:
        made = await invites.create_patient_invite(
            s,
            bot.services.content,
            alias="P-JOURNEY",
            surgery_date=SURGERY,
            programme_id="lumbar-example",
            now=bot.clock.now(),
            valid_days=14,
            timezone="Europe/Berlin",
            language="en",
            therapist_id=therapist.id,
        )
        await s.commit()
        invite_id, patient_id, code = made.invite.id, made.invite.patient_id, made.invite.code
    assert patient_id is not None
    enrolling = await stored_patient(bot, patient_id)
    assert (enrolling.status, enrolling.telegram_id, enrolling.consent_at) == (PatientStatus.ENROLLING, None, None)

    # 2. Welcome and consent.
    [consent] = await journey.send(f"/start {code}")
    welcome = _(
        "Welcome! {clinic} and your physiotherapist {therapist} have invited you to this exercise and "
        "recovery assistant. Setting it up takes about a minute.",
        clinic=clinic.name,
        therapist="Dr Weber",
    )
    assert consent.text == welcome + "\n\n" + CONTENT.text("consent", lang, clinic=clinic.name)
    other = "🌐 Deutsch" if lang == "en" else "🌐 English"  # read it in the other language first, if wanted
    assert consent.button_labels == [_("Yes, I agree"), _("No, thank you"), other]
    linked = await stored_patient(bot, patient_id)
    assert (linked.telegram_id, linked.enrol_step, linked.language) == (4242, "consent", lang)
    consent_at = bot.clock.now()
    _closed, zone_prompt = await journey.press(_("Yes, I agree"), consent, 2)
    assert consent.text.endswith("\n\n" + _("✓ You agreed.")) and not consent.has_inline_keyboard
    agreed = await stored_patient(bot, patient_id)
    assert CONTENT.consent_version == CONSENT_VERSION
    assert (agreed.consent_at, agreed.consent_version, agreed.enrol_step) == (consent_at, CONSENT_VERSION, "timezone")
    journey.expect(welcome, _("✓ You agreed."))

    # Time zone: the clinic's, by button.
    assert zone_prompt.text.startswith(
        _("Which time zone are you in? I need it to remind you at the right local time.")
    )
    clinic_zone = _("{city} – the clinic's time zone (now {time})", city="Berlin", time="07:00")
    assert zone_prompt.button_labels[0] == clinic_zone
    _closed, times_prompt = await journey.press(clinic_zone, zone_prompt, 2)
    assert not zone_prompt.has_inline_keyboard
    journey.expect(zone_prompt.text.split("\n")[0], zone_prompt.text.split("\n")[-1])

    # Session times: the programme's suggestion, by button.
    zone_line = _("Time zone: {zone} ✓", zone=_("{zone} (now {time})", zone="Berlin", time="07:00"))
    assert times_prompt.text.split("\n")[0] == zone_line
    suggested = _("Suggested by your programme") + " · 09:00, 13:00, 18:00"
    assert times_prompt.button_labels[0] == suggested and times_prompt.button_labels[-1] == _("« Change time zone")
    _closed, summary = await journey.press(suggested, times_prompt, 2)
    assert not times_prompt.has_inline_keyboard
    journey.expect(zone_line, times_prompt.text.split("\n")[-1])
    programme = CONTENT.programme("lumbar-example")
    for line in (
        _("✅ All set! Here is your plan:"),
        _("Programme: {name}", name=localize(programme.name, lang)),
        _("Current phase: {title}", title=localize(phase("weeks-1-2").title, lang)),
        _("Reminders: {times}", times="09:00, 13:00, 18:00"),
        _("Your first reminder comes {when}.", when=_("today at {time}", time="09:00")),
        localize(phase("weeks-1-2").change_note, lang),
        _("This chat is not for emergencies.") + " " + clinic.text("emergency_text", lang),
    ):
        assert line in summary.text, line
    journey.expect(
        _("✅ All set! Here is your plan:"),
        _("This chat is not for emergencies.") + " " + clinic.text("emergency_text", lang),
    )
    journey.new(4)
    enrolled = await stored_patient(bot, patient_id)
    assert (enrolled.status, enrolled.enrol_step, enrolled.timezone, enrolled.session_times, enrolled.phase_id) == (
        PatientStatus.ACTIVE,
        "done",
        "Europe/Berlin",
        "09:00,13:00,18:00",
        "weeks-1-2",
    )
    async with bot.db.session() as s:
        used = await s.get(Invite, invite_id)
    assert used is not None and used.used_by == 4242 and used.used_at == consent_at

    # 3. The week. Wednesday: Done, effort Hard, pain 3; the other sessions Done too.
    first = await journey.reminder(berlin(WED, "09:00"), "09:00")
    assert "🆕" not in first.text, "the summary already told the patient about this phase"
    await journey.log(first, "09:00", "done", streak=1, effort=_("😓 Hard"), pain=3)
    await journey.log(await journey.reminder(berlin(WED, "13:00"), "13:00", index=1), "13:00", "done", streak=1)
    await journey.log(await journey.reminder(berlin(WED, "18:00"), "18:00", index=2), "18:00", "done", streak=1)
    await journey.evening(WED, checkins=[DAILY, WEEKLY], motivation="welcome")

    # Thursday: Partly, no effort answer, pain 2: two days in a row.
    reminder = await journey.reminder(berlin(THU, "09:00"), "09:00")
    await journey.log(reminder, "09:00", "partly", streak=2, pain=2)
    await journey.log(await journey.reminder(berlin(THU, "13:00"), "13:00", index=1), "13:00", "done", streak=2)
    await journey.log(await journey.reminder(berlin(THU, "18:00"), "18:00", index=2), "18:00", "done", streak=2)
    await journey.evening(THU, checkins=[DAILY], motivation="first-session")

    # Friday: Skip because of pain: the clinic's own advice, nothing improvised; the streak is broken.
    reminder = await journey.reminder(berlin(FRI, "09:00"), "09:00")
    edited, reasons = await journey.press(_("⏭ Skip"), reminder, 2)
    assert edited.message_id == reminder.message_id and not edited.has_inline_keyboard
    assert edited.text.endswith("\n\n" + _("⏭ Logged: skipped."))
    [sent] = journey.new(1)
    assert sent.message_id == reasons.message_id and reasons.text == _("What got in the way?")
    assert reasons.button_labels == [_("Pain"), _("No time"), _("Forgot"), _("Felt unwell"), _("Other reason")]
    [reply] = await journey.press(_("Pain"), reasons, 1)
    # ... closed by the clinic's own phone line and emergency text, in the patient's language.
    advice = "\n\n".join(
        [
            _("Thank you for telling me."),
            CONTENT.text("exercise_pain", lang).strip(),
            redflag.clinic_contact(clinic, lang),
            clinic.text("emergency_text", lang),
        ]
    )
    assert reply.message_id == reasons.message_id and reply.text == advice and not reply.has_inline_keyboard
    journey.expect(header("09:00"), _("⏭ Logged: skipped."))
    journey.expect(_("Thank you for telling me."), advice.split("\n")[-1])
    # Friday's skip makes it a grace day: the streak goes on without it (Wednesday and Thursday).
    await journey.log(await journey.reminder(berlin(FRI, "13:00"), "13:00", index=1), "13:00", "done", streak=2)
    await journey.log(await journey.reminder(berlin(FRI, "18:00"), "18:00", index=2), "18:00", "done", streak=2)
    await journey.evening(FRI, checkins=[DAILY], motivation=None)

    # Saturday: Snooze (look at the menu, go back, snooze 30 minutes); sent again once, at 09:30, and done.
    reminder = await journey.reminder(berlin(SAT, "09:00"), "09:00")
    [menu] = await journey.press(_("⏰ Snooze"), reminder, 1)
    assert menu.message_id == reminder.message_id
    assert menu.button_labels == [_("{minutes} min", minutes=m) for m in (15, 30, 60)] + [_("« Back")]
    [back] = await journey.press(_("« Back"), reminder, 1)
    assert back.button_labels == journey.main
    await journey.press(_("⏰ Snooze"), reminder, 1)
    [snoozed] = await journey.press(_("{minutes} min", minutes=30), reminder, 1)
    snoozed_line = _("⏰ Snoozed: I will remind you again at {time}.", time="09:30")
    assert snoozed.text.endswith("\n\n" + snoozed_line) and not snoozed.has_inline_keyboard
    journey.expect(header("09:00"), snoozed_line)
    await run_until(bot, berlin(SAT, "09:29"))
    journey.new(0)
    again = await journey.reminder(berlin(SAT, "09:30"), "09:00")
    await journey.log(again, "09:00", "done", streak=3)  # Friday, the grace day, does not count
    await journey.log(await journey.reminder(berlin(SAT, "13:00"), "13:00", index=1), "13:00", "done", streak=3)
    await journey.log(await journey.reminder(berlin(SAT, "18:00"), "18:00", index=2), "18:00", "done", streak=3)
    await journey.evening(SAT, checkins=[DAILY], motivation="streak-3")  # Wed, Thu, Sat: 3 days

    # Sunday: no answer; one nudge three hours later takes over the buttons; missed when the day ends.
    reminder = await journey.reminder(berlin(SUN, "09:00"), "09:00")
    await run_until(bot, berlin(SUN, "11:59"))
    journey.new(0)
    await run_until(bot, berlin(SUN, "12:00"))
    [nudge] = journey.new(1)
    nudge_text = _("Just checking in: did you manage your {slot} exercise session?", slot="09:00")
    assert nudge.text == nudge_text and nudge.button_labels == journey.main
    assert not reminder.has_inline_keyboard, "the reminder's buttons moved to the nudge"
    nudge_done = nudge.callback_data[1]
    journey.expect(header("09:00"), reminder.text.split("\n")[-1])
    journey.expect(nudge_text)
    # A still-open session does not spoil the day: the streak counts Sunday too.
    await journey.log(await journey.reminder(berlin(SUN, "13:00"), "13:00", index=1), "13:00", "done", streak=4)
    await journey.log(await journey.reminder(berlin(SUN, "18:00"), "18:00", index=2), "18:00", "done", streak=4)
    await journey.evening(SUN, checkins=[DAILY], motivation=None)
    assert nudge.has_inline_keyboard
    await run_until(bot, berlin(MON, "00:00"))
    assert not nudge.has_inline_keyboard, "the sweep closed the missed session"
    journey.new(0)
    user.mark_seen()
    await user.press_data(nudge_done, nudge.message_id)
    assert (await user.wait_for_answer()).text == _("This button is no longer active.")

    # Monday 08:00: pause until Tuesday, a typed date.
    await run_until(bot, berlin(MON, "08:00"))
    journey.new(0)
    [offer] = await journey.send("/pause")
    offer_text = _("Need a break, for example while you are ill or on holiday? Pause your reminders until:")
    assert offer.text == offer_text
    assert offer.button_labels == [_("3 days"), _("1 week"), _("2 weeks"), _("📅 Choose a date")]
    _closed, prompt = await journey.press(_("📅 Choose a date"), offer, 2)
    assert not offer.has_inline_keyboard
    prompt_lines = [
        _("Until which date? Send it like 24.06.2026 (the last day without reminders)."),
        _("To pause nothing, send /cancel."),
    ]
    prompt_text = "\n".join(prompt_lines)
    assert prompt.text == prompt_text
    [paused] = await journey.send("16.06.2026")
    paused_lines = [
        _("⏸ Reminders paused until {date}.", date=format_date(TUE, "full", locale=lang)),
        _(
            "They start again on {date}. To start earlier, send /resume.",
            date=format_date(NEXT_WED, "full", locale=lang),
        ),
    ]
    assert paused.text == "\n".join(paused_lines)
    journey.new(3)
    journey.expect(offer_text)
    journey.expect(prompt_lines[0], prompt_lines[-1])
    journey.expect(paused_lines[0], paused_lines[-1])
    on_pause = await stored_patient(bot, patient_id)
    assert (on_pause.status, on_pause.paused_until) == (PatientStatus.PAUSED, TUE)

    # Nothing while paused: Monday's three sessions, its evening, Tuesday's 09:00 session.
    await run_until(bot, berlin(TUE, "10:00"))
    journey.new(0)
    # Tuesday 10:00: back early with /resume; the 13:00 reminder comes again.
    [resumed] = await journey.send("/resume")
    assert resumed.text == _("▶️ Welcome back! Your reminders start again with your next session.")
    journey.new(1)
    journey.expect(resumed.text)
    back_again = await stored_patient(bot, patient_id)
    assert (back_again.status, back_again.paused_until) == (PatientStatus.ACTIVE, None)
    # Monday had no sessions (neutral); Sunday has a missed one, a grace day only two days after
    # Friday's: the run keeps Sunday's grace and ends at Friday (Saturday and Tuesday count).
    await journey.log(await journey.reminder(berlin(TUE, "13:00"), "13:00", index=1), "13:00", "done", streak=2)
    await journey.log(await journey.reminder(berlin(TUE, "18:00"), "18:00", index=2), "18:00", "done", streak=2)
    await journey.evening(TUE, checkins=[DAILY], motivation=None)

    # 4. Wednesday 17 June, day 14: weeks 3-6, twice a day; the first reminder says what changed.
    new_phase = phase("weeks-3-6")
    reminder = await journey.reminder(berlin(NEXT_WED, "09:00"), "09:00", phase_id="weeks-3-6")
    what_changed = f"🆕 {localize(new_phase.title, lang)}\n{localize(new_phase.change_note, lang).strip()}"
    assert what_changed in reminder.text
    assert localize(CONTENT.exercise("ankle-pumps").name, lang) not in reminder.text, "a weeks 1-2 exercise"
    moved = await stored_patient(bot, patient_id)
    assert (moved.phase_id, moved.session_times) == ("weeks-3-6", "09:00,18:00")
    await journey.log(reminder, "09:00", "done", streak=3)
    await run_until(bot, berlin(NEXT_WED, "17:59"))
    journey.new(0)  # no 13:00 session any more: the patient's first and last times are kept
    evening = await journey.reminder(berlin(NEXT_WED, "18:00"), "18:00", phase_id="weeks-3-6")
    assert "🆕" not in evening.text, "the change is told once"
    await journey.log(evening, "18:00", "done", streak=3)

    # Every message the patient saw, in order: first line, last line, buttons still live.
    assert [first_last(m) for m in user.messages] == journey.expected
    assert not any(m.deleted for m in user.messages)

    # The database agrees. The patient, their consent and their plan in the new phase:
    final = await stored_patient(bot, patient_id)
    assert (final.status, final.enrol_step, final.paused_until, final.telegram_id, final.language) == (
        PatientStatus.ACTIVE,
        "done",
        None,
        4242,
        lang,
    )
    assert (final.phase_id, final.timezone, final.session_times) == ("weeks-3-6", "Europe/Berlin", "09:00,18:00")
    assert (final.consent_at, final.consent_version) == (consent_at, CONSENT_VERSION)
    async with bot.db.session() as s:
        rules = (
            await s.exec(
                select(ReminderRule).where(
                    col(ReminderRule.kind) == Kind.SESSION.value,
                    col(ReminderRule.active).is_(True),
                    col(ReminderRule.once).is_(False),
                )
            )
        ).all()
        sessions = (
            await s.exec(select(ExerciseSession).order_by(col(ExerciseSession.local_date), col(ExerciseSession.slot)))
        ).all()
        deliveries = (
            await s.exec(
                select(Delivery).where(col(Delivery.chat_id) == 4242).order_by(col(Delivery.due_at), col(Delivery.id))
            )
        ).all()
    assert sorted((r.local_time, r.next_due_at) for r in rules) == [
        ("09:00", berlin(NEXT_WED + DAY, "09:00")),
        ("18:00", berlin(NEXT_WED + DAY, "18:00")),
    ]

    # One session row per reminder the patient got, with its outcome (none while paused).
    done = ("done", "", None, "")
    assert [(r.local_date, r.slot, r.status, r.effort, r.pain, r.skip_reason) for r in sessions] == [
        (WED, "09:00", "done", "hard", 3, ""),
        (WED, "13:00", *done),
        (WED, "18:00", *done),
        (THU, "09:00", "partly", "", 2, ""),
        (THU, "13:00", *done),
        (THU, "18:00", *done),
        (FRI, "09:00", "skipped", "", None, "pain"),
        (FRI, "13:00", *done),
        (FRI, "18:00", *done),
        (SAT, "09:00", *done),
        (SAT, "13:00", *done),
        (SAT, "18:00", *done),
        (SUN, "09:00", "missed", "", None, ""),
        (SUN, "13:00", *done),
        (SUN, "18:00", *done),
        (TUE, "13:00", *done),
        (TUE, "18:00", *done),
        (NEXT_WED, "09:00", *done),
        (NEXT_WED, "18:00", *done),
    ]
    assert {r.phase_id for r in sessions if r.local_date < NEXT_WED} == {"weeks-1-2"}
    assert {r.phase_id for r in sessions if r.local_date == NEXT_WED} == {"weeks-3-6"}
    assert all(r.step == "closed" for r in sessions)
    assert [(r.local_date, r.snoozed_until) for r in sessions if r.snoozed_until] == [(SAT, berlin(SAT, "09:30"))]
    assert [(r.local_date, r.nudged_at) for r in sessions if r.nudged_at] == [(SUN, berlin(SUN, "12:00"))]
    assert sessions[12].message_id == nudge.message_id, "the missed session ended on its nudge"

    # Every delivery the engine made for the patient, on time. "failed" with "superseded" is the
    # engine's record of a slot with nothing left to send: a nudge for an answered session, or
    # an evening without a motivational message.
    sent, skipped, nothing = "sent", "skipped", "failed"
    expected_deliveries: list[tuple[date, str, str, str]] = []
    for day in (WED, THU, FRI, SAT, SUN, MON, TUE):
        if day == MON:
            expected_deliveries += [(MON, x, "session", skipped) for x in ("09:00", "13:00", "18:00")]
            expected_deliveries += [(MON, "19:00", "checkin", skipped), (MON, "19:30", "motivation", skipped)]
            continue
        expected_deliveries.append((day, "09:00", "session", skipped if day == TUE else sent))
        if day == SAT:
            expected_deliveries.append((SAT, "09:30", "session", sent))  # the snoozed session, sent again
        if day != TUE:
            expected_deliveries.append((day, "12:00", "nudge", sent if day == SUN else nothing))
        expected_deliveries += [
            (day, "13:00", "session", sent),
            (day, "16:00", "nudge", nothing),
            (day, "18:00", "session", sent),
            (day, "19:00", "checkin", sent),
        ]
        if day == WED:
            expected_deliveries.append((WED, "19:00", "checkin", sent))  # PHQ-2 and GAD-2, weekly from day 7
        motivation = sent if day in (WED, THU, SAT) else nothing  # SAT: the 3-day streak
        expected_deliveries += [(day, "19:30", "motivation", motivation), (day, "21:00", "nudge", nothing)]
    expected_deliveries += [
        (NEXT_WED, "09:00", "session", sent),
        (NEXT_WED, "12:00", "nudge", nothing),
        (NEXT_WED, "18:00", "session", sent),
    ]
    assert [(d.local_date, d.slot, d.kind, d.status) for d in deliveries] == expected_deliveries
    assert {d.error for d in deliveries if d.status == nothing} == {"nothing to send: superseded"}
    assert not any(d.late for d in deliveries), "the engine ran on time: nothing was sent late"

    # 5. /help and a note, then every message of the whole journey: only the patient's language.
    user.mark_seen()
    await user.send("/help")
    [helped] = await user.wait_for()
    await user.send("/note " + ("Mein Rücken ist heute steif." if lang == "de" else "My back is stiff today."))
    [saved] = await user.wait_for()
    for reply in (helped, saved):
        assert clinic.text("emergency_text", lang) in (reply.text or "")
    foreign = foreign_sentences(CONTENT, lang, (clinic,))
    received = [m.text or m.caption or "" for m in user.messages]
    received += [label for m in user.messages for label in m.button_labels]
    assert not leaks(received, foreign), "a sentence in another language"
