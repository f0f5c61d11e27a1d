"""The same form posted twice (a double click, a reload, a retried request) and stale forms, over HTTP.

A staff reply and a patient's message from the Mini App are sent once, however often the form
arrives, also when the two posts race each other; what the second post answers is what the
first did.
"""

from __future__ import annotations

import asyncio
import io
import json
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from factories import make_patient, make_staff
from PIL import Image
from sqlmodel import col, select
from test_checkins import enrolled
from webrig import WEB, client, csrf, init_data, miniapp_web, sign_in_initdata, web_url

from rehab_bot import library
from rehab_bot.models import CareMessage, Delivery, ProgrammePlan

THERAPIST, COLLEAGUE, PATIENT = 7411, 7412, 7511


async def signed_in(bot: Any, telegram_id: int) -> aiohttp.ClientSession:
    browser = client()
    response = await sign_in_initdata(browser, web_url(bot), init_data(telegram_id, bot.clock.now()))
    assert response.status == 200
    return browser


async def token_of(browser: aiohttp.ClientSession, url: str) -> str:
    async with browser.get(url) as page:
        assert page.status == 200
        return csrf(await page.text())


async def messages(bot: Any) -> list[CareMessage]:
    async with bot.db.session() as session:
        return list((await session.exec(select(CareMessage).order_by(col(CareMessage.id)))).all())


async def deliveries(bot: Any, prefix: str) -> list[Delivery]:
    async with bot.db.session() as session:
        found = await session.exec(select(Delivery).where(col(Delivery.key).startswith(prefix)))
        return list(found.all())


@pytest.fixture
async def web_bot(bot_factory: Any, backend: str, tmp_path: Path) -> Any:
    return await bot_factory(
        backend,
        web=miniapp_web(),
        privacy={"health_data_in_chat": False},
        care={"photo_dir": str(tmp_path / "photos")},
    )


async def test_a_reply_posted_twice_reaches_the_patient_once(web_bot: Any) -> None:
    bot = web_bot
    patient = await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    async with bot.db.session() as session:
        asked = CareMessage(
            patient_id=patient.id, direction="in", text="Is the pain normal?", created_at=bot.clock.now()
        )
        session.add(asked)
        await session.commit()
        await session.refresh(asked)
    url = f"{web_url(bot)}/patients/{patient.id}/messages/{asked.id}/reply"
    async with await signed_in(bot, THERAPIST) as browser:
        token = await token_of(browser, f"{web_url(bot)}/patients/{patient.id}")

        async def post(text: str) -> str:
            async with browser.post(url, data={"text": text, "csrf_token": token}) as response:
                assert response.status == 200
                return await response.text()

        first = await post("Yes, in week 1 it is.")
        again = await post("  Yes, in week 1 it is.  ")  # the form again (back and resubmit)
        assert "Your reply is on its way to the patient." in first and "on its way" in again
        raced = await asyncio.gather(post("Keep going gently."), post("Keep going gently."))  # a double click
        assert all("on its way" in html for html in raced)
        await post("Yes, in week 1 it is.")  # later, again: still the one reply
    replies = [m for m in await messages(bot) if m.direction == "out"]
    assert [m.text for m in replies] == ["Yes, in week 1 it is.", "Keep going gently."]
    assert len(await deliveries(bot, "cm")) == 2, "one message in the patient's chat per reply"


async def test_a_mini_app_message_posted_twice_reaches_the_team_once(web_bot: Any, tmp_path: Path) -> None:
    bot = web_bot
    await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    url = f"{web_url(bot)}/app/messages"
    photo = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 120, 90)).save(photo, "JPEG")
    async with await signed_in(bot, PATIENT) as browser:
        token = await token_of(browser, url)

        async def post(text: str, picture: bytes | None = None) -> str:
            form = aiohttp.FormData()
            form.add_field("csrf_token", token)
            form.add_field("text", text)
            if picture is not None:
                form.add_field("photo", picture, filename="x.jpg", content_type="image/jpeg")
            async with browser.post(url, data=form) as response:
                assert response.status == 200
                return await response.text()

        assert "Sent to your care team." in await post("The wound is red at the edge")
        assert "Sent to your care team." in await post("The wound is red at the edge")  # a reload
        raced = await asyncio.gather(post("It itches", photo.getvalue()), post("It itches", photo.getvalue()))
        assert all("Sent to your care team." in html for html in raced)
        bot.clock.advance(timedelta(minutes=11))
        await post("The wound is red at the edge")  # later: a new message, sent again
    sent = await messages(bot)
    assert [m.text for m in sent] == ["The wound is red at the edge", "It itches", "The wound is red at the edge"]
    assert len(list((tmp_path / "photos").iterdir())) == 1, "the photo posted twice is stored once"
    notices = await deliveries(bot, "cm")
    assert sorted({d.key.split(":")[0] for d in notices}) == sorted(f"cm{m.id}" for m in sent)
    assert len(notices) == 3, "the therapist is told once per message"


class _Fields(HTMLParser):
    """The named fields of the page's form whose action ends with ``action``, as a browser posts them."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.fields: dict[str, str] = {}
        self._inside = False
        self._open: tuple[str, str] | None = None  # (tag, name) of a textarea or select being read

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._inside = a.get("action", "").endswith(self.action)
        elif not self._inside:
            return
        elif tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            self.fields[a["name"]] = a.get("value", "")
        elif tag in ("textarea", "select") and a.get("name"):
            self._open = (tag, a["name"])
            self.fields.setdefault(a["name"], "")
        elif tag == "option" and self._open is not None and "selected" in a:
            self.fields[self._open[1]] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._open is not None and self._open[0] == "textarea":
            self.fields[self._open[1]] += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("textarea", "select"):
            self._open = None
        elif tag == "form":
            self._inside = False


def builder_fields(html: str, action: str = "/programme/save") -> dict[str, str]:
    parser = _Fields(action)
    parser.feed(html)
    return parser.fields


async def own_plan_sets(bot: Any, patient_id: int) -> tuple[int, int]:
    """(version, sets of the first exercise) of the patient's own plan."""
    async with bot.db.session() as session:
        row = (await session.exec(select(ProgrammePlan).where(col(ProgrammePlan.patient_id) == patient_id))).one()
    return row.version, json.loads(row.body)["phases"][0]["sessions"][0]["items"][0]["sets"]


async def test_two_therapists_saving_one_plan_never_overwrite_each_other_unseen(bot_factory: Any, backend: str) -> None:
    bot = await bot_factory(backend, web=WEB)
    owner = await make_staff(bot.db, telegram_id=THERAPIST, name="Dr Ada")
    await make_staff(bot.db, telegram_id=COLLEAGUE, name="Dr Ben", role="admin")
    patient, _ = await make_patient(
        bot.db, bot.clock, telegram_id=PATIENT, therapist_id=owner.id, programme_id="lumbar-example"
    )
    base = f"{web_url(bot)}/patients/{patient.id}/programme"
    sets = "phases-0-sessions-0-items-0-sets"
    async with await signed_in(bot, THERAPIST) as ada, await signed_in(bot, COLLEAGUE) as ben:

        async def opened(browser: aiohttp.ClientSession) -> dict[str, str]:
            async with browser.get(base) as page:
                assert page.status == 200
                fields = builder_fields(await page.text())
            assert fields["version"] == "0" and fields[sets]
            return fields

        async def save(browser: aiohttp.ClientSession, form: dict[str, str]) -> tuple[int, str]:
            async with browser.post(f"{base}/save", data=form, allow_redirects=False) as response:
                return response.status, await response.text()

        ada_form, ben_form = await opened(ada), await opened(ben)
        ada_form[sets], ben_form[sets] = "2", "4"
        assert (await save(ada, ada_form))[0] == 303
        assert (await save(ada, ada_form))[0] == 303, "the same form again (a double click) is no conflict"
        assert await own_plan_sets(bot, patient.id or 0) == (2, 2)

        # Ben's builder was opened before Ada saved: his save is refused, with who and what to do;
        # Ada's plan stays, and the page keeps everything Ben typed.
        status, html = await save(ben, ben_form)
        assert status == 409 and "The plan was not saved" in html
        assert "Dr Ada saved this patient&#39;s plan at" in html and "Your changes are below and not saved." in html
        kept = builder_fields(html)
        assert kept[sets] == "4" and kept["version"] == "2"
        assert await own_plan_sets(bot, patient.id or 0) == (2, 2)
        # Saving the shown form again replaces Ada's plan knowingly.
        assert (await save(ben, kept))[0] == 303
        assert await own_plan_sets(bot, patient.id or 0) == (3, 4)

        # Both save a builder opened at the same version, at the same moment: one wins, one is told.
        ada_form, ben_form = await _reopened(ada, base), await _reopened(ben, base)
        ada_form[sets], ben_form[sets] = "5", "6"
        raced = sorted(s for s, _ in await asyncio.gather(save(ada, ada_form), save(ben, ben_form)))
        assert raced == [303, 409]
        assert (await own_plan_sets(bot, patient.id or 0))[0] == 4


async def _reopened(browser: aiohttp.ClientSession, base: str) -> dict[str, str]:
    async with browser.get(base) as page:
        return builder_fields(await page.text())


async def test_two_staff_editing_one_exercise_never_overwrite_each_other_unseen(bot_factory: Any, backend: str) -> None:
    bot = await bot_factory(backend, web=WEB)
    ada = await make_staff(bot.db, telegram_id=THERAPIST, name="Dr Ada")
    await make_staff(bot.db, telegram_id=COLLEAGUE, name="Dr Ben")
    async with bot.db.session() as session:
        raw = {"name": {"en": "Wall slides", "de": "Wandgleiten"}, "instructions": {"en": "Slide.", "de": "Gleiten."}}
        row = await library.create(session, ada, {**raw, "sets": 2, "reps": 8}, bot.clock.now())
        await session.commit()
        url = f"{web_url(bot)}/exercises/{library.clinic_id(row)}"

    async def opened(browser: aiohttp.ClientSession) -> dict[str, str]:
        async with browser.get(url) as page:
            assert page.status == 200
            return builder_fields(await page.text(), url.rsplit("/", 1)[1])

    async def save(browser: aiohttp.ClientSession, form: dict[str, str]) -> tuple[int, str]:
        async with browser.post(url, data=form, allow_redirects=False) as response:
            return response.status, await response.text()

    async def stored() -> tuple[str, int | None]:
        async with bot.db.session() as session:
            found = await library.get(session, url.rsplit("/", 1)[1])
            assert found is not None
            return json.loads(found.instructions)["en"], found.reps

    async with await signed_in(bot, THERAPIST) as ada_web, await signed_in(bot, COLLEAGUE) as ben_web:
        ada_form, ben_form = await opened(ada_web), await opened(ben_web)
        assert ada_form["base"]
        ada_form["instructions-en"] = "Slide your back slowly down the wall."
        ben_form["reps"] = "10"
        bot.clock.advance(timedelta(minutes=1))
        assert (await save(ada_web, ada_form))[0] == 303
        assert (await save(ada_web, ada_form))[0] == 303, "the same form again (a double click) is no conflict"
        bot.clock.advance(timedelta(minutes=1))
        status, html = await save(ben_web, ben_form)
        assert status == 422 and "Someone changed this exercise at" in html and "Your changes are below" in html
        kept = builder_fields(html, url.rsplit("/", 1)[1])
        assert kept["reps"] == "10" and kept["base"] != ben_form["base"]
        assert await stored() == ("Slide your back slowly down the wall.", 8), "Ada's change is kept"
        assert (await save(ben_web, kept))[0] == 303, "saved again: Ben replaces it knowingly"
        assert await stored() == ("Slide.", 10)
