"""Odd input typed into the web app's forms, and forms posted twice or left open, over HTTP.

NUL characters (PostgreSQL refuses them in text), text of nothing visible (a zero-width space),
digits of other scripts: a clear answer, never a server error or stored garbage. A new exercise
or a staff invitation posted twice is made once; an alert a colleague acknowledged first says so.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from factories import make_patient, make_staff, photo
from sqlmodel import col, select
from test_checkins import enrolled
from test_web_resubmit import builder_fields, signed_in, token_of
from webrig import WEB, miniapp_web, web_url

from rehab_bot import audit
from rehab_bot.models import Alert, CareMessage, ClinicExercise, Invite
from rehab_bot.web import exercises as exercises_web

THERAPIST, ADMIN, PATIENT = 7421, 7422, 7521
EXERCISE = {
    "name-en": "Wall slides",
    "name-de": "Wandgleiten",
    "instructions-en": "Slide.",
    "instructions-de": "Gleiten.",
}


async def stored_messages(bot: Any) -> list[CareMessage]:
    async with bot.db.session() as session:
        return list((await session.exec(select(CareMessage).order_by(col(CareMessage.id)))).all())


async def exercises(bot: Any) -> list[ClinicExercise]:
    async with bot.db.session() as session:
        return list((await session.exec(select(ClinicExercise).order_by(col(ClinicExercise.id)))).all())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_a_nul_or_nothing_visible_in_a_reply_or_a_mini_app_message(bot_factory: Any, backend: str) -> None:
    bot = await bot_factory(backend, web=miniapp_web(), privacy={"health_data_in_chat": False})
    patient = await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    async with bot.db.session() as session:
        asked = CareMessage(patient_id=patient.id, direction="in", text="Is it normal?", created_at=bot.clock.now())
        session.add(asked)
        await session.commit()
        await session.refresh(asked)
    base = web_url(bot)
    async with await signed_in(bot, THERAPIST) as staff:
        token = await token_of(staff, f"{base}/patients/{patient.id}")
        url = f"{base}/patients/{patient.id}/messages/{asked.id}/reply"
        async with staff.post(url, data={"text": "\u200b \u200b", "csrf_token": token}) as page:
            assert page.status == 200 and "The reply is empty." in await page.text()
        async with staff.post(url, data={"text": "Yes,\x00 it is.", "csrf_token": token}) as page:
            assert page.status == 200 and "on its way" in await page.text()
    async with await signed_in(bot, PATIENT) as app:
        token = await token_of(app, f"{base}/app/messages")
        async with app.post(f"{base}/app/messages", data={"csrf_token": token, "text": "\u200b\u2060 "}) as page:
            assert page.status == 200 and "Write a message or add a photo." in await page.text()
        async with app.post(f"{base}/app/messages", data={"csrf_token": token, "text": "Thanks\x00!"}) as page:
            assert page.status == 200 and "Sent to your care team." in await page.text()
    texts = [(m.direction, m.text) for m in await stored_messages(bot)]
    assert texts == [("in", "Is it normal?"), ("out", "Yes, it is."), ("in", "Thanks!")]


async def test_exercise_texts_of_nothing_visible_and_numbers_in_other_digits_are_refused(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    await make_staff(bot.db, telegram_id=THERAPIST, name="Dr Ada", language="de")
    base = web_url(bot)
    async with await signed_in(bot, THERAPIST) as staff:
        token = await token_of(staff, f"{base}/exercises/new")

        async def post(**fields: str) -> tuple[int, str]:
            data = {**EXERCISE, "csrf_token": token, "sets": "2", **fields}
            async with staff.post(f"{base}/exercises/new", data=data, allow_redirects=False) as response:
                return response.status, await response.text()

        for odd in ("\u0661\u0660", "1_0", "+3", "²"):  # Arabic-Indic ten, and what int() also reads
            status, html = await post(sets=odd)
            assert status == 422 and "Sätze: muss eine Zahl aus Ziffern (0-9) sein" in html, odd
        status, html = await post(**{"name-en": "\u200b "})
        assert status == 422 and "Name (Englisch): ist leer" in html
        assert 'value="Wandgleiten"' in html, "what was typed is kept"
        assert await exercises(bot) == []
        status, _ = await post(**{"name-en": " Wall\x00 slides ", "sets": " 3 "})
        assert status == 303
    [row] = await exercises(bot)
    assert json.loads(row.name) == {"en": "Wall slides", "de": "Wandgleiten"} and row.sets == 3


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_a_new_exercise_posted_twice_is_added_once(bot_factory: Any, backend: str) -> None:
    bot = await bot_factory(backend, web=WEB)
    await make_staff(bot.db, telegram_id=THERAPIST, name="Dr Ada")
    base = web_url(bot)
    async with await signed_in(bot, THERAPIST) as staff:
        token = await token_of(staff, f"{base}/exercises/new")

        async def post(name: str) -> str:
            data = {**EXERCISE, "name-en": name, "csrf_token": token, "sets": "2"}
            async with staff.post(f"{base}/exercises/new", data=data, allow_redirects=False) as response:
                assert response.status == 303
                return response.headers["Location"]

        first = await post("Wall slides")
        assert await post("Wall slides") == first  # a reload
        raced = await asyncio.gather(post("Bridges"), post("Bridges"))  # a double click
        assert raced[0] == raced[1] != first
    assert [json.loads(row.name)["en"] for row in await exercises(bot)] == ["Wall slides", "Bridges"]


async def post_exercise(
    browser: aiohttp.ClientSession, base: str, token: str, name: str, upload: bytes, **fields: str
) -> aiohttp.ClientResponse:
    """The new exercise form with a photo, as a browser without scripts posts it (multipart)."""
    form = aiohttp.FormData()
    for key, value in {**EXERCISE, "csrf_token": token, "name-en": name, "sets": "2", **fields}.items():
        form.add_field(key, value)
    form.add_field("media", upload, filename="wall.jpg", content_type="image/jpeg")
    async with browser.post(f"{base}/exercises/new", data=form, allow_redirects=False) as response:
        await response.read()
        return response


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_a_new_exercise_posted_twice_with_its_photo_stores_the_photo_once(
    bot_factory: Any, backend: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    bot = await bot_factory(backend, web=WEB, library={"media_dir": media})
    await make_staff(bot.db, telegram_id=THERAPIST, name="Dr Ada")
    base, upload = web_url(bot), photo("JPEG", gps=True)
    async with await signed_in(bot, THERAPIST) as staff:
        token = await token_of(staff, f"{base}/exercises/new")

        async def post(name: str) -> str:
            response = await post_exercise(staff, base, token, name, upload)
            assert response.status == 303
            return response.headers["Location"]

        first = await post("Wall slides")
        assert await post("Wall slides") == first  # a reload
        raced = await asyncio.gather(post("Bridges"), post("Bridges"))  # a double click
        assert raced[0] == raced[1] != first
    rows = await exercises(bot)
    assert [json.loads(row.name)["en"] for row in rows] == ["Wall slides", "Bridges"]
    assert sorted(p.name for p in media.iterdir()) == sorted(Path(row.media).name for row in rows), "no orphan file"


class _FailingCommit:
    """The request's database session, whose commit fails (the database went away at the last moment)."""

    def __init__(self, session: Any, media: Path) -> None:
        self._session, self._media = session, media

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def commit(self) -> None:
        assert len(list(self._media.iterdir())) == 1, "the photo was written"
        raise RuntimeError("the database went away")


async def test_a_photo_stored_for_a_new_exercise_that_then_fails_is_removed(
    bot_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = tmp_path / "media"
    bot = await bot_factory(web=WEB, library={"media_dir": media})
    await make_staff(bot.db, telegram_id=THERAPIST, name="Dr Ada")
    base = web_url(bot)
    record = audit.record

    def failing(session: Any, *, action: str, **kw: Any) -> Any:
        if action == audit.LIBRARY_MEDIA:  # after the photo is written: the save fails and is not committed
            assert len(list(media.iterdir())) == 1
            raise RuntimeError("the database went away")
        return record(session, action=action, **kw)

    async with await signed_in(bot, THERAPIST) as staff:
        token = await token_of(staff, f"{base}/exercises/new")
        monkeypatch.setattr(audit, "record", failing)
        response = await post_exercise(staff, base, token, "Wall slides", photo("JPEG"))
        assert response.status == 500
        monkeypatch.setattr(audit, "record", record)
        real_db = exercises_web.db
        monkeypatch.setattr(exercises_web, "db", lambda request: _FailingCommit(real_db(request), media))
        response = await post_exercise(staff, base, token, "Wall slides", photo("JPEG", size=(50, 40)))
        assert response.status == 500
        monkeypatch.setattr(exercises_web, "db", real_db)
        refused = await post_exercise(staff, base, token, "Wall slides", photo("JPEG"), sets="99")
        assert refused.status == 422
    assert await exercises(bot) == []
    assert list(media.iterdir()) == [], "no orphan file"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_a_staff_invitation_posted_twice_makes_one_link(bot_factory: Any, backend: str) -> None:
    bot = await bot_factory(backend, web=WEB)
    await make_staff(bot.db, telegram_id=ADMIN, name="Admin Anna", role="admin", language="de")
    base = web_url(bot)
    async with await signed_in(bot, ADMIN) as admin:
        token = await token_of(admin, f"{base}/admin/staff")

        async def invite(name: str, role: str = "therapist") -> str:
            data = {"csrf_token": token, "name": name, "role": role}
            async with admin.post(f"{base}/admin/staff/invite", data=data) as page:
                assert page.status == 200
                return await page.text()

        await invite("Dr Ben")
        await invite("Dr Ben")  # a reload
        await asyncio.gather(invite("Dr Cleo"), invite("Dr Cleo"))  # a double click
        await invite("Dr Ben", "admin")  # another role: another invitation
        html = await invite("Dr\x00 Dan")
        assert "Geben Sie für die Einladung einen Namen und eine Rolle an." in html
    async with bot.db.session() as session:
        rows = (await session.exec(select(Invite).order_by(col(Invite.id)))).all()
    assert [(row.staff_name, row.role) for row in rows] == [
        ("Dr Ben", "therapist"),
        ("Dr Cleo", "therapist"),
        ("Dr Ben", "admin"),
    ]


async def test_an_alert_a_colleague_acknowledged_first_says_who(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    await make_staff(bot.db, telegram_id=THERAPIST, name="Dr Ada", role="admin")
    await make_staff(bot.db, telegram_id=ADMIN, name="Dr Ben", role="admin")
    patient, _ = await make_patient(bot.db, bot.clock, alias="ODD-0001", telegram_id=7100)
    async with bot.db.session() as session:
        alert = Alert(patient_id=patient.id or 0, severity="urgent", kind="red_flag", created_at=bot.clock.now())
        session.add(alert)
        await session.commit()
        await session.refresh(alert)
    base = web_url(bot)
    async with await signed_in(bot, THERAPIST) as ada, await signed_in(bot, ADMIN) as ben:
        ada_token, ben_token = await token_of(ada, f"{base}/alerts"), await token_of(ben, f"{base}/alerts")

        async def ack(browser: aiohttp.ClientSession, token: str) -> str:
            async with browser.post(f"{base}/alerts/{alert.id}/ack", data={"csrf_token": token}) as page:
                assert page.status == 200
                return await page.text()

        assert "Acknowledged." in await ack(ben, ben_token)
        html = await ack(ada, ada_token)  # Ada's inbox was open from before
        assert "Already acknowledged by Dr Ben." in html and "<p>Acknowledged.</p>" not in html


async def test_a_refused_number_comes_back_as_typed_with_its_problem_beside_it(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    doc = await make_staff(bot.db, telegram_id=THERAPIST, name="Dr Ada")
    patient, _ = await make_patient(
        bot.db, bot.clock, telegram_id=PATIENT, therapist_id=doc.id, programme_id="lumbar-example"
    )
    base = web_url(bot)
    async with await signed_in(bot, THERAPIST) as staff:
        token = await token_of(staff, f"{base}/exercises/new")
        for typed, said in (
            ("abc", "must be a number in digits (0-9)"),
            ("-3", "must be a number in digits (0-9)"),
            ("999", "must be at most 20"),
            ("99999999999", "must be at most 20"),  # all digits: not "must be a number in digits"
        ):
            data = {**EXERCISE, "csrf_token": token, "sets": typed, "reps": "12"}
            async with staff.post(f"{base}/exercises/new", data=data, allow_redirects=False) as response:
                html = await response.text()
                assert response.status == 422, typed
            sets = re.search(r'<input id="sets"[^>]*>\s*(<small[^>]*>[^<]*</small>)?', html)
            assert sets is not None, typed
            assert f'value="{typed}"' in sets.group(0), "what was typed comes back"
            assert 'aria-invalid="true" aria-describedby="problem"' in sets.group(0)
            assert sets.group(1) == f'<small class="problem" id="sets-problem">{said}</small>', typed
            assert 'value="12"' in html and 'value="Wandgleiten"' in html, "the rest of the form is kept"
        url = f"{base}/patients/{patient.id}/programme"
        async with staff.get(url) as page:
            fields = builder_fields(await page.text())
        reps = "phases-0-sessions-0-items-0-reps"
        for typed in ("many", "-3", "99999999999"):
            async with staff.post(f"{url}/save", data={**fields, reps: typed}, allow_redirects=False) as response:
                assert response.status == 422
                page_text = await response.text()
                assert builder_fields(page_text)[reps] == typed, "what was typed comes back"
                digits_said = "must be a number in digits (0-9)" in page_text
                assert digits_said is (typed != "99999999999"), (typed, digits_said)
    assert await exercises(bot) == []


async def test_a_refused_staff_invitation_comes_back_as_typed(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    await make_staff(bot.db, telegram_id=ADMIN, name="Admin Anna", role="admin", language="de")
    base = web_url(bot)
    async with await signed_in(bot, ADMIN) as admin:
        token = await token_of(admin, f"{base}/admin/staff")
        for name in ("Dr Ben " + "x" * 100, "Dr\tBen", "   "):  # too long (the form), a tab (the core), blank
            data = {"csrf_token": token, "name": name, "role": "admin"}
            async with admin.post(f"{base}/admin/staff/invite", data=data) as page:
                assert page.status == 200
                html = await page.text()
            field = re.search(r'<input id="invite-name"[^>]*>', html)
            assert field is not None
            assert f'value="{name}"' in field.group(0), "what was typed comes back"
            assert 'aria-invalid="true" aria-describedby="invite-problem"' in field.group(0)
            assert (
                '<p role="alert" class="problem" id="invite-problem">'
                "Geben Sie für die Einladung einen Namen und eine Rolle an.</p>"
            ) in html
            assert '<option value="admin" selected>' in html, "the role chosen is kept"
        async with admin.get(f"{base}/admin/staff") as page:
            html = await page.text()
        assert 'id="invite-problem"' not in html and 'value="   "' not in html, "shown once"
    async with bot.db.session() as session:
        assert (await session.exec(select(Invite))).all() == []
