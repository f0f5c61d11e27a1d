"""`rehab-bot demo`: the seeded clinic, the demo clock, the page's refusals, and the command itself.

The seed runs on a migrated SQLite database (the demo's backend); the clock and the page run the
real demo (rehab_bot.demo.runner.Demo: the Application against the embedded fake Bot API) in a
temporary folder; the command runs as a real process with its own HOME, working folder and TMPDIR,
to show that it writes nothing outside its temporary folder and removes that at exit. Those two
(a day of the clinic's reminders; a process that draws a chart with an empty matplotlib cache, about
20 s) are marked slow.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cli_runner import BIN, clean_env, rehab_bot
from sqlmodel import col, select

from rehab_bot.config import ClinicConfig, Config
from rehab_bot.content import load_content
from rehab_bot.demo import seed
from rehab_bot.demo.page import DemoPage
from rehab_bot.demo.runner import Demo
from rehab_bot.models import (
    Alert,
    CheckIn,
    Delivery,
    ExerciseSession,
    Invite,
    Note,
    Patient,
    ReminderRule,
    Staff,
)

BERLIN = ZoneInfo("Europe/Berlin")
TODAY = date(2026, 6, 10)


def berlin(day: date, hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


async def rows(db: Any, model: Any) -> list[Any]:
    async with db.session() as session:
        return list((await session.exec(select(model).order_by(model.id))).all())


# --- the seeded clinic ---------------------------------------------------------------------------


async def test_the_demo_clinic_has_staff_patients_at_different_stages_and_weeks_of_history(
    database_factory: Callable[..., Any],
) -> None:
    db = await database_factory("sqlite")
    now = seed.demo_start(TODAY, "Europe/Berlin")
    assert now == berlin(TODAY, "08:40")
    made = await seed.seed(db, load_content(None), Config(), now)

    staff = {s.telegram_id: s for s in await rows(db, Staff)}
    assert {(s.role, s.active) for s in staff.values()} == {("admin", True), ("therapist", True)}
    assert staff[made.therapist_id].name == made.therapist_name
    assert {s.language for s in staff.values()} == {"en"}

    patients = {p.alias: p for p in await rows(db, Patient)}
    assert {alias: p.status for alias, p in patients.items()} == {
        "P-2041": "active",
        "P-2042": "active",
        "P-2043": "paused",
        "P-2044": "enrolling",
    }
    assert all(p.therapist_id == staff[made.therapist_id].id for p in patients.values())
    assert patients["P-2043"].language == "de" and patients["P-2043"].paused_until is not None
    assert all(p.consent_at is not None for a, p in patients.items() if a != "P-2044")

    sessions = await rows(db, ExerciseSession)
    by_patient: dict[int, list[ExerciseSession]] = {}
    for row in sessions:
        by_patient.setdefault(row.patient_id, []).append(row)
    well = by_patient[patients["P-2041"].id]
    days = {row.local_date for row in well}
    assert (min(days), max(days)) == (TODAY - timedelta(days=28), TODAY - timedelta(days=1)), "four weeks"
    assert {row.status for row in sessions} == {"done", "partly", "skipped", "missed"}
    assert all(row.pain is not None for row in sessions if row.status == "done")
    assert patients["P-2044"].id not in by_patient, "the visitor's patient has no history yet"

    def done_share(rows_: list[ExerciseSession]) -> float:
        return sum(r.status in ("done", "partly") for r in rows_) / len(rows_)

    struggling = [r for r in by_patient[patients["P-2042"].id] if r.local_date >= TODAY - timedelta(days=4)]
    recent_well = [r for r in well if r.local_date >= TODAY - timedelta(days=4)]
    assert done_share(recent_well) > done_share(struggling), "one does well, one struggles"

    checkins = await rows(db, CheckIn)
    assert len(checkins) > 40 and all(c.status == "complete" for c in checkins)

    # This morning's pain of 8 is an open critical alert whose message to the therapist is still to go;
    # everything older has gone out, and alerts older than a day were acknowledged.
    alerts = await rows(db, Alert)
    open_alerts = [a for a in alerts if a.acknowledged_at is None]
    this_morning = now - timedelta(minutes=40) + timedelta(seconds=20)
    assert any(a.severity == "critical" and a.created_at == this_morning for a in open_alerts)
    assert all(a.created_at >= now - timedelta(days=1) for a in open_alerts)
    queued = [d for d in await rows(db, Delivery) if d.status == "queued"]
    assert [(d.kind, d.chat_id) for d in queued] == [("alert", made.therapist_id)]

    [invite] = [i for i in await rows(db, Invite) if i.patient_id == patients["P-2044"].id]
    assert invite.code == made.invite_code and invite.used_at is None and invite.expires_at > now


async def test_with_lang_de_the_demo_staff_speak_german_so_the_staff_pages_are_german(
    database_factory: Callable[..., Any],
) -> None:
    db = await database_factory("sqlite")
    config = Config(clinic=ClinicConfig(timezone="Europe/Berlin", language="de"))
    await seed.seed(db, load_content(None), config, seed.demo_start(TODAY, "Europe/Berlin"))
    assert {(s.name, s.language) for s in await rows(db, Staff)} == {("Dr Sam Admin", "de"), ("Alex Physio", "de")}


# --- the running demo: clock and page -------------------------------------------------------------


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    running = Demo(tmp_path)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def enrol(demo: Demo) -> None:
    user = demo.patient
    assert user is not None and demo.seeded is not None
    await user.send(f"/start {demo.seeded.invite_code}")
    await user.wait_for(lambda m: "Do you agree?" in (m.text or ""), timeout=10)
    await user.press("Yes, I agree")
    [prompt] = await user.wait_for(lambda m: "time zone" in (m.text or ""), include_edits=False, timeout=10)
    await user.press(prompt.button_labels[0], prompt)
    [times] = await user.wait_for(lambda m: "reminders?" in (m.text or ""), include_edits=False, timeout=10)
    await user.press(times.button_labels[0], times)
    await user.wait_for(lambda m: "first reminder comes today at 09:00" in (m.text or ""), timeout=10)


@pytest.mark.slow
async def test_the_demo_clock_moves_to_the_next_reminder_and_by_a_day_never_back(demo: Demo) -> None:
    start = demo.clock.now()
    local = start.astimezone(BERLIN)
    assert (local.hour, local.minute) == (8, 40)
    therapist = demo.therapist
    assert therapist is not None
    # At the start the engine sent this morning's alert to the therapist.
    await therapist.wait_for(lambda m: "CRITICAL alert for P-2042" in (m.text or ""), timeout=10)

    await enrol(demo)
    paced = demo.monotonic()
    assert await demo.next_reminder() == berlin(local.date(), "09:00")
    # The pacer's time moved with the clock: a message sent at 08:40 holds up nothing at 09:00.
    assert demo.monotonic() - paced >= 20 * 60
    user = demo.patient
    assert user is not None
    assert (user.last.text or "").startswith("Time for your exercise session (09:00).")
    # The next one is this patient's (a lesson or the 13:00 session), not another patient's.
    async with demo._db().session() as session:
        mine = (await session.exec(select(Patient).where(col(Patient.alias) == "P-2044"))).one()
        dues = (
            await session.exec(
                select(ReminderRule.next_due_at).where(
                    col(ReminderRule.patient_id) == mine.id, col(ReminderRule.active).is_(True)
                )
            )
        ).all()
    expected = min(d for d in dues if d is not None)
    assert berlin(local.date(), "09:00") < expected <= berlin(local.date(), "13:00")
    count = len(user.messages)
    assert await demo.next_reminder() == expected
    assert len(user.messages) > count, "something arrived for the patient"

    before = demo.clock.now()
    assert await demo.plus_day() == before + timedelta(days=1)
    sessions = [
        (m.text or "").splitlines()[0] for m in user.messages if (m.text or "").startswith("Time for your exercise")
    ]
    # 09:00 and 13:00 today, 18:00 today, 09:00 tomorrow, and a nudge in between perhaps: each slot once.
    slots = re.findall(r"\((\d\d:\d\d)\)", " ".join(sessions))
    assert slots == ["09:00", "13:00", "18:00", "09:00"], sessions
    assert demo.clock.now() >= before, "the clock never went back"


async def test_the_demo_clock_stops_when_an_unanswered_crisis_question_alerts(demo: Demo) -> None:
    """An outside tester left the crisis question unanswered at 08:40 and pressed "Next reminder": the clock
    went on to the next reminder, hours later, so the alert read "Raised ... 12:00" for a question due at
    09:10. The clock stops at the question's deadline, as the bot's periodic check would raise it."""
    await enrol(demo)
    user, therapist = demo.patient, demo.therapist
    assert user is not None and therapist is not None
    asked = demo.clock.now()
    await user.send("took an extra painkiller last night")
    await user.wait_for(lambda m: "Are you having thoughts of ending your life" in (m.text or ""), timeout=10)
    due = asked + timedelta(minutes=30)
    stops = [await demo.next_reminder()]  # the 09:00 session first, then whatever is next
    while stops[-1] < due:
        stops.append(await demo.next_reminder())
    assert stops[0] == berlin(asked.astimezone(BERLIN).date(), "09:00") and stops[-1] == due, stops
    [told] = await therapist.wait_for(lambda m: "The crisis question was not answered." in (m.text or ""), timeout=10)
    assert "took an extra painkiller last night" in (told.text or "")
    [alert] = [a for a in await rows(demo._db(), Alert) if a.kind == "crisis_question"]
    assert alert.created_at == asked + timedelta(minutes=30)


async def test_the_page_takes_presses_only_from_itself_and_only_buttons_that_are_there(demo: Demo) -> None:
    page = DemoPage(demo)
    url = await page.start("127.0.0.1", 0)
    try:
        bodies: list[str] = []

        def post(path: str, data: bytes, headers: dict[str, str]) -> int:
            request = urllib.request.Request(url + path.lstrip("/"), data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    bodies.append(response.read().decode())
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        form = {"Content-Type": "application/x-www-form-urlencoded"}
        token = {**form, "X-Demo-Token": page.token}
        # A cross-site form cannot set the header: refused, and nothing reaches the bot.
        assert await asyncio.to_thread(post, "/chat/patient/send", b"text=hello", form) == 403
        assert await asyncio.to_thread(post, "/clock/day", b"", {"X-Demo-Token": "guess"}) == 403
        assert demo.tg is not None and demo.tg.pending_updates == []
        # A button that is not on that message (or a message that does not exist) is not pressed, as in
        # Telegram: the chat is drawn as it is (a double click's second press lands here), no error.
        therapist = demo.therapist
        assert therapist is not None
        [alert] = await therapist.wait_for(lambda m: "CRITICAL alert" in (m.text or ""), timeout=10)
        body = f"message={alert.message_id}&row=0&col=5".encode()
        assert await asyncio.to_thread(post, "/chat/therapist/press", body, token) == 200
        assert await asyncio.to_thread(post, "/chat/therapist/press", b"message=999&row=0&col=0", token) == 200
        assert len(bodies) == 2 and all("CRITICAL alert for P-2042" in b for b in bodies)
        assert await asyncio.to_thread(post, "/chat/therapist/press", b"message=x&row=0&col=0", token) == 400
        assert await asyncio.to_thread(post, "/chat/nobody/send", b"text=hi", token) == 404
        # Another name for this computer (DNS rebinding) gets nothing, not even the page.
        assert await asyncio.to_thread(post, "/chat/patient/send", b"text=hi", {**token, "Host": "evil.example"}) == 403
        assert therapist.callback_answers == []
        # The button that is there is pressed as Telegram would: a callback query with its own data.
        body = f"message={alert.message_id}&row=0&col=0".encode()
        assert await asyncio.to_thread(post, "/chat/therapist/press", body, token) == 200
        answer = await therapist.wait_for_answer(timeout=10)
        assert answer.query_id == therapist.last_query_id
        # Its answer shows as a toast for a few seconds, then not again.
        assert page._toast(therapist) == (answer.text or None)
        page._answers_seen[therapist.chat_id] = (len(therapist.callback_answers), 0.0)
        assert page._toast(therapist) is None
    finally:
        await page.stop()


async def test_what_is_typed_after_a_question_that_asks_for_a_reply_is_sent_as_that_reply(demo: Demo) -> None:
    """Telegram's app answers a ForceReply question (/note's "Please type your note") with a reply to it;
    the page sent plain text, so the note was offered to the care team instead of being saved."""
    page = DemoPage(demo)
    url = await page.start("127.0.0.1", 0)
    try:
        await enrol(demo)
        user = demo.patient
        assert user is not None

        def send(text: str) -> int:
            data = urllib.parse.urlencode({"text": text}).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Demo-Token": page.token}
            request = urllib.request.Request(url + "chat/patient/send", data=data, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)

        assert page.force_reply_to(user) is None
        assert await asyncio.to_thread(send, "/note") == 200
        [prompt] = await user.wait_for(lambda m: "Please type your note" in (m.text or ""), timeout=10)
        assert page.force_reply_to(user) == prompt.message_id
        # A message chosen with ↩ must be in this chat; anything else falls back to the open question.
        for forged in ("999999", "-1", "x", "", "１"):
            assert page.replied_to(user, forged) == prompt.message_id, forged
        assert await asyncio.to_thread(send, "My back is stiff in the mornings") == 200
        await user.wait_for(lambda m: "Saved as a note" in (m.text or ""), timeout=10)
        assert not any("Shall I send this" in (m.text or "") for m in user.messages)
        assert page.force_reply_to(user) is None, "the question was answered: the next text is plain again"
        async with demo._db().session() as session:
            mine = (await session.exec(select(Patient).where(col(Patient.alias) == "P-2044"))).one()
            notes = (await session.exec(select(Note).where(col(Note.patient_id) == mine.id))).all()
        assert [n.text for n in notes] == ["My back is stiff in the mornings"]
    finally:
        await page.stop()


async def test_the_invitation_stays_on_the_page_until_the_visitor_opens_it(demo: Demo) -> None:
    """A visitor who typed something before pressing Start was told, as a stranger, that they need an
    invitation link, and the link was gone from the page: no way to enrol but to restart the demo."""
    page = DemoPage(demo)
    url = await page.start("127.0.0.1", 0)
    try:
        user = demo.patient
        assert user is not None and demo.seeded is not None
        start = f"/start {demo.seeded.invite_code}"

        def chat() -> str:
            with urllib.request.urlopen(url + "chat/patient?lang=en", timeout=10) as response:
                return str(response.read().decode())

        assert 'class="start"' in await asyncio.to_thread(chat)
        await user.send("hello?")
        await user.wait_for(lambda m: "invitation link" in (m.text or ""), timeout=10)
        html = await asyncio.to_thread(chat)
        assert 'class="start"' in html and start in html, "the invitation is still there"
        await user.send(start)
        await user.wait_for(lambda m: "Do you agree?" in (m.text or ""), timeout=10)
        assert 'class="start"' not in await asyncio.to_thread(chat)
    finally:
        await page.stop()


async def test_a_file_the_bot_sends_is_drawn_with_its_name_and_downloads(demo: Demo) -> None:
    """/mydata's JSON file (and a therapist's export) showed as its caption alone: nothing said a file had
    come, and it could not be opened. Now its name is drawn as a download link, served as an attachment."""
    page = DemoPage(demo)
    url = await page.start("127.0.0.1", 0)
    try:
        await enrol(demo)
        user = demo.patient
        assert user is not None
        await user.send("/mydata")
        [sent] = await user.wait_for(lambda m: m.document is not None, timeout=10)
        assert sent.document is not None and sent.document.filename

        def get(path: str) -> tuple[bytes, dict[str, str]]:
            with urllib.request.urlopen(url + path.lstrip("/"), timeout=10) as response:
                return response.read(), dict(response.headers)

        html, _ = await asyncio.to_thread(get, "/chat/patient?lang=en")
        link = f'href="/media/{sent.document.file_id}" download="{sent.document.filename}"'
        assert link in html.decode() and f"📎 {sent.document.filename}" in html.decode()
        body, headers = await asyncio.to_thread(get, f"/media/{sent.document.file_id}")
        assert body == sent.document.data
        assert headers["Content-Disposition"].startswith("attachment; filename=")
        assert headers["Content-Type"] == "application/octet-stream"
        assert headers["X-Content-Type-Options"] == "nosniff"
    finally:
        await page.stop()


# --- the command ----------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", [[], ["--no-browser"]])
def test_demo_prints_its_address_and_opens_it_unless_told_not_to(
    flag: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import threading
    import webbrowser

    from rehab_bot.demo import runner

    opened: list[str] = []
    done = threading.Event()

    def fake_open(url: str) -> bool:
        opened.append(url)
        done.set()
        return True

    async def fake_serve(folder: Path, *, port: int, language: str, ready: Callable[[str], None]) -> None:
        assert folder.name.startswith("rehab-bot-demo-") and folder.is_dir()
        ready(f"http://127.0.0.1:{port}/")

    monkeypatch.setattr(webbrowser, "open", fake_open)
    monkeypatch.setattr(runner, "serve", fake_serve)
    result = rehab_bot("demo", "--port", "8123", *flag, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "open http://127.0.0.1:8123/" in result.stdout
    done.wait(5 if not flag else 0.5)
    assert opened == ([] if flag else ["http://127.0.0.1:8123/"])


def test_demo_help_names_what_it_does_and_needs_nothing(tmp_path: Path) -> None:
    result = rehab_bot("demo", "--help", cwd=tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "no token" in text.lower() and "127.0.0.1" in text and "--no-browser" in text
    bad = rehab_bot("demo", "--port", "70000", "--no-browser", cwd=tmp_path)
    assert bad.returncode == 1 and "--port 70000 is not a port" in bad.stderr


def test_demo_help_says_what_each_option_does_as_the_code_does_it(tmp_path: Path) -> None:
    """--config was described as the configuration file the demo reads; the demo ignores --config (and says
    so). --lang is the language of the page, the patient and the staff: their web dashboard and their chat
    (staff text follows Staff.language, which the demo seeds from --lang)."""
    import argparse

    from rehab_bot.cli import build_parser

    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    options = {o: a for a in sub.choices["demo"]._actions for o in a.option_strings}
    config_help = " ".join(str(options["--config"].help).split())
    assert config_help.startswith("ignored:") and "REHAB_BOT_*" in config_help
    ignored = rehab_bot("demo", "--config", "x.toml", "--port", "70000", cwd=tmp_path)
    assert "--config is ignored" in ignored.stderr
    lang = options["--lang"]
    assert lang.default == "en" and "(default: en)" in str(lang.help)
    for said in ("page", "patient you play", "web dashboard and the therapist's chat"):
        assert said in str(lang.help), said
    port = options["--port"]
    assert port.default == 8765 and "default 8765" in str(port.help)
    text = " ".join(rehab_bot("demo", "--help", cwd=tmp_path).stdout.split())
    assert "closing its terminal (SIGHUP) or SIGTERM" in text


async def test_lang_de_is_the_language_of_the_page_the_visitors_patient_the_staffs_dashboard_and_the_therapists_chat(
    tmp_path: Path,
) -> None:
    """What `demo --lang`'s help says, checked on a running German demo."""
    demo = Demo(tmp_path, language="de")
    await demo.start()
    page = DemoPage(demo)
    url = await page.start("127.0.0.1", 0)
    try:
        assert demo.patient is not None and demo.patient.language_code == "de"
        assert demo.therapist is not None and demo.therapist.language_code == "en"
        assert {s.language for s in await rows(demo._db(), Staff)} == {"de"}, "the staff's dashboard"

        def fetch() -> str:
            with urllib.request.urlopen(url, timeout=10) as response:
                return str(response.read().decode())

        html = await asyncio.to_thread(fetch)
        assert '<html lang="de"' in html and 'href="/?lang=en"' in html, "German, with a link to English"
        therapist = demo.therapist  # their Telegram speaks English; the staff row (de) decides
        await therapist.send("/help")
        [answer] = await therapist.wait_for(lambda m: "Befehle:" in (m.text or ""), timeout=10)
        assert "/patients – Ihre Patient/innen" in answer.text and "I remind you" not in answer.text
    finally:
        await page.stop()
        await demo.stop()


@pytest.mark.slow
def test_the_demo_command_writes_nothing_outside_its_temporary_folder_and_removes_it(tmp_path: Path) -> None:
    home, work, temp = (tmp_path / name for name in ("home", "work", "tmp"))
    for folder in (home, work, temp):
        folder.mkdir()
    env = clean_env({"HOME": str(home), "TMPDIR": str(temp), "PYTHONDONTWRITEBYTECODE": "1"})
    env.pop("MPLCONFIGDIR", None)
    env.pop("XDG_CACHE_HOME", None)
    env.pop("XDG_CONFIG_HOME", None)
    # A config.toml and a bad REHAB_BOT_ variable in the way: the demo reads neither.
    (work / "config.toml").write_text("[telegram]\ntoken = 'broken'\n", encoding="utf-8")
    env["REHAB_BOT_CLINIC_TIMZONE"] = "x"
    process = subprocess.Popen(
        [str(BIN), "demo", "--no-browser", "--port", "0"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
        assert match, (line, process.stderr.read() if process.poll() is not None else "")
        url = match.group(1)
        [folder] = list(temp.iterdir())
        assert folder.name.startswith("rehab-bot-demo-") and folder.stat().st_mode & 0o777 == 0o700
        assert (folder / "demo.db").stat().st_mode & 0o777 == 0o600
        with urllib.request.urlopen(url, timeout=10) as response:
            page = response.read().decode()
        token = re.search(r'"X-Demo-Token": "([^"]+)"', page)
        assert token and "Patient P-2044" in page
        # The therapist asks for a patient's chart: matplotlib draws it (its cache goes to the folder).
        request = urllib.request.Request(
            url + "chat/therapist/send",
            data=b"text=/patient P-2041",
            headers={"X-Demo-Token": token.group(1), "Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            assert response.status == 200
        deadline = time.monotonic() + 20
        chat = ""
        while time.monotonic() < deadline and "/media/" not in chat:
            with urllib.request.urlopen(url + "chat/therapist", timeout=10) as response:
                chat = response.read().decode()
            time.sleep(0.5)
        assert "/media/" in chat, "the chart arrived as a photo"
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert list(home.iterdir()) == [] and sorted(p.name for p in work.iterdir()) == ["config.toml"]
    assert list(temp.iterdir()) == [], "the temporary folder is removed at exit"
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("signals", "while_starting"),
    [
        ([signal.SIGHUP], False),
        ([signal.SIGHUP, signal.SIGHUP], False),
        ([signal.SIGTERM], False),
        ([signal.SIGHUP], True),
    ],
    ids=["hangup", "hangup-twice", "term", "hangup-while-starting"],
)
def test_the_demo_stops_cleanly_and_removes_its_folder_on_sighup_and_sigterm(
    signals: list[signal.Signals], while_starting: bool, tmp_path: Path
) -> None:
    """Closing the demo's terminal (SIGHUP, which may come twice: the terminal's and the shell's) or a
    SIGTERM stops it as Ctrl+C does: exit 0, and the temporary folder with its database is gone, also
    while it is still starting. SIGHUP's default ended the process on the spot and left the folder,
    database and all, in TMPDIR."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = clean_env({"TMPDIR": str(temp), "MPLCONFIGDIR": str(tmp_path / "mpl")})
    process = subprocess.Popen(
        [str(BIN), "demo", "--no-browser", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if while_starting:
            # The demo's folder, not any file: Python's tempfile, on its first use, writes a file into TMPDIR
            # and removes it at once to see that it may (seen here as a folder that was there, then gone).
            def made() -> bool:
                return any(entry.is_dir() for entry in temp.iterdir())

            deadline = time.monotonic() + 30
            while not made() and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.01)
            assert made(), "the demo made its folder"
        else:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert re.search(r"open http://127\.0\.0\.1:\d+/", line), (line, process.poll())
            [folder] = list(temp.iterdir())
            assert (folder / "demo.db").is_file()
        for sig in signals:
            process.send_signal(sig)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, (process.returncode, err)
    assert list(temp.iterdir()) == [], "the temporary folder is removed"
    assert "Traceback" not in err
    if while_starting:
        assert "open http" not in out, "a demo stopped before it served does not offer its address"


def test_a_stop_signal_outside_serving_interrupts_once_and_never_while_the_folder_is_made_or_removed() -> None:
    """Before serve takes the signals over, and after it lets go, a SIGHUP or SIGTERM is a KeyboardInterrupt
    once (noted, and raised when armed, while the folder is made), then ignored: it never ends the
    process on the spot, and never cuts the folder's removal short. The handlers before are put back."""
    import os

    from rehab_bot.demo.runner import interrupt_on_stop_signals

    def deliver(sig: signal.Signals) -> None:
        os.kill(os.getpid(), sig)
        time.sleep(0.2)  # the handler runs here, between bytecodes

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)}
    with interrupt_on_stop_signals() as signals:
        # Before any signal is sent: in a thread other than the main one nothing is installed.
        assert signal.getsignal(signal.SIGHUP) == signals.interrupt, "run in the main thread"
        deliver(signal.SIGHUP)  # not armed: noted
        assert signals.requested
        with pytest.raises(KeyboardInterrupt):
            signals.arm()
        signals.disarm()
        deliver(signal.SIGTERM)  # ignored: the cleanup under way goes on
    with interrupt_on_stop_signals() as signals:
        signals.arm()
        with pytest.raises(KeyboardInterrupt):
            deliver(signal.SIGTERM)
        deliver(signal.SIGHUP)
        deliver(signal.SIGINT)
        signals.disarm()
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_closing_the_demos_terminal_stops_it_and_removes_its_folder(tmp_path: Path) -> None:
    """The demo runs in a terminal of its own (a pseudo-terminal it controls); closing it is what the
    kernel turns into SIGHUP, after which the terminal cannot be written to. Exit 0, folder gone."""
    import fcntl
    import os
    import termios

    temp = tmp_path / "tmp"
    temp.mkdir()
    master, slave = os.openpty()

    def take_the_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [str(BIN), "demo", "--no-browser", "--port", "0"],
        cwd=tmp_path,
        env=clean_env({"TMPDIR": str(temp), "MPLCONFIGDIR": str(tmp_path / "mpl")}),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=take_the_terminal,
    )
    os.close(slave)
    try:
        shown = b""
        deadline = time.monotonic() + 60
        while b"open http://127.0.0.1:" not in shown and time.monotonic() < deadline:
            shown += os.read(master, 1024)
        assert b"open http://127.0.0.1:" in shown, shown
        assert len(list(temp.iterdir())) == 1
        os.close(master)
        returncode = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert returncode == 0
    assert list(temp.iterdir()) == [], "the temporary folder is removed"


def test_an_address_nobody_can_read_is_not_a_failure_to_serve(tmp_path: Path) -> None:
    """The terminal closed (EIO) or the pipe's reader gone (EPIPE) as the demo printed its address: that
    OSError was reported as "cannot serve the demo on 127.0.0.1:PORT" with status 1 (1 in 4 runs of the
    closed-terminal test under load). It serves on; the hang-up then stops it as usual."""
    import socket

    temp = tmp_path / "tmp"
    temp.mkdir()
    for _attempt in range(3):  # a free port may be taken by another test between the probe and the demo
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [str(BIN), "demo", "--no-browser", "--port", str(port)],
            cwd=tmp_path,
            env=clean_env({"TMPDIR": str(temp), "MPLCONFIGDIR": str(tmp_path / "mpl")}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None
        process.stdout.close()  # nobody reads: writing the address fails with EPIPE
        try:
            deadline = time.monotonic() + 60
            served = False
            while not served and time.monotonic() < deadline and process.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                        served = response.status == 200  # the address was printed (or tried) before this
                except OSError:
                    time.sleep(0.1)
            if not served and process.poll() is not None:
                _, err = process.communicate()
                if b"address already in use" in err:
                    continue
            assert served and process.poll() is None, "still serving after its address could not be written"
            process.send_signal(signal.SIGHUP)
            _, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        break
    assert process.returncode == 0, err
    assert b"cannot serve" not in err and b"Traceback" not in err
    assert list(temp.iterdir()) == []


async def test_the_demo_stops_only_after_the_charts_warm_up_thread_has_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warm-up writes matplotlib's font cache into the demo's folder; a stop during it left the thread
    running while the folder was removed (it could write there again) and the interpreter shut down.

    The real warm-up builds each language's chart once per process, so in a process that drew one
    already it ends at once: a stand-in that takes its time makes the stop meet a running thread."""
    import threading

    from rehab_bot import report
    from rehab_bot.bot.app import CHART_WARM_UP_THREAD

    started, finished = threading.Event(), threading.Event()

    def slow_warm_up(languages: Any = None, stop: threading.Event | None = None) -> None:
        started.set()
        time.sleep(0.5)  # a stop arrives meanwhile; the warm-up ends only at its next language
        finished.set()

    monkeypatch.setattr(report, "warm_up", slow_warm_up)
    demo = Demo(tmp_path)
    await demo.start()
    try:
        deadline = time.monotonic() + 20
        while not started.is_set():
            assert time.monotonic() < deadline, "the warm-up starts after the engine's first tick"
            await demo.settle()
            await asyncio.sleep(0.05)
    finally:
        await demo.stop()
    assert finished.is_set(), "the stop returned while the warm-up was still running"
    assert not any(t.name == CHART_WARM_UP_THREAD for t in threading.enumerate())
