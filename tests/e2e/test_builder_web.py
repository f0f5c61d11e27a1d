"""The exercise library and builder routes over HTTP: who may open what, row edits, problems shown, CSRF."""

from __future__ import annotations

from typing import Any

import pytest
from factories import make_patient, make_staff
from webrig import WEB, client, csrf, dashboard_link, init_data, sign_in_initdata, sign_in_link, web_url

from rehab_bot import plan
from rehab_bot.content import load_content
from rehab_bot.web.builder import edit

CONTENT = load_content(None)


def draft() -> dict[str, Any]:
    return plan.from_programme(CONTENT.programmes["lumbar-example"], CONTENT.exercises).model_dump()


def test_row_buttons_add_and_remove_phases_sessions_and_exercises() -> None:
    raw = draft()
    more = edit(raw, "add-item:0:0")
    assert len(more["phases"][0]["sessions"][0]["items"]) == len(raw["phases"][0]["sessions"][0]["items"]) + 1
    assert more["phases"][0]["sessions"][0]["items"][-1]["exercise"] == ""
    fewer = edit(raw, "remove-item:0:0:0")
    assert fewer["phases"][0]["sessions"][0]["items"][0]["exercise"] == "ankle-pumps"
    assert len(edit(raw, "add-session:1")["phases"][1]["sessions"]) == 2
    assert len(edit(raw, "remove-session:0:2")["phases"][0]["sessions"]) == 2
    last = raw["phases"][-1]
    assert last["to_day"] is None
    added = edit(edit(raw, "remove-phase:3"), "add-phase")
    assert [p["from_day"] for p in added["phases"]] == [0, 14, 42, 84]  # a new phase follows the last one
    items = [i["exercise"] for i in raw["phases"][0]["sessions"][0]["items"]]
    up = edit(raw, "item-up:0:0:2")
    assert [i["exercise"] for i in up["phases"][0]["sessions"][0]["items"]] == [
        items[0],
        items[2],
        items[1],
        *items[3:],
    ]
    down = edit(raw, "item-down:0:0:0")
    assert [i["exercise"] for i in down["phases"][0]["sessions"][0]["items"]] == [items[1], items[0], *items[2:]]
    last = len(items) - 1
    for edge in ("item-up:0:0:0", f"item-down:0:0:{last}", "item-up:0:0:-1", "item-down:0:0:-1", "item-up:0:0:99"):
        assert edit(raw, edge) == raw, edge  # the first row stays first, the last stays last; no wrap-around
    for stale in ("remove-item:9:9:9", "add-session:x", "remove-phase:0:0:0:0", "item-up:9:9:9", "nonsense", ""):
        edit(raw, stale)  # a stale or forged button changes nothing and breaks nothing
    assert raw == draft(), "the draft given is not changed in place"
    single = {"based_on": "", "phases": [raw["phases"][0]]}
    assert edit(single, "remove-phase:0") == single  # the last phase stays


ROUTES = [
    ("GET", "/exercises"),
    ("GET", "/exercises/new"),
    ("POST", "/exercises/new"),
    ("GET", "/exercises/clinic-1"),
    ("POST", "/exercises/clinic-1"),
    ("GET", "/patients/{pid}/programme"),
    ("POST", "/patients/{pid}/programme/edit"),
    ("POST", "/patients/{pid}/programme/preview"),
    ("POST", "/patients/{pid}/programme/save"),
    ("POST", "/patients/{pid}/programme/template"),
]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_strangers_and_patients_reach_none_of_these_pages(bot_factory: Any, backend: str) -> None:
    bot = await bot_factory(backend, web=WEB)
    doc = await make_staff(bot.db, telegram_id=7002)
    patient, _ = await make_patient(
        bot.db, bot.clock, telegram_id=7100, therapist_id=doc.id, consent_at=bot.clock.now()
    )
    base = web_url(bot)
    async with client() as stranger:
        for method, path in ROUTES:
            async with stranger.request(method, base + path.format(pid=patient.id), allow_redirects=False) as r:
                assert r.status in (401, 403), (method, path, r.status)  # POSTs without a token stop at CSRF
    async with client() as patient_browser:
        signed = await sign_in_initdata(patient_browser, base, init_data(7100, bot.clock.now()))
        assert signed.status == 200
        async with patient_browser.get(f"{base}/app") as page:
            token = csrf(await page.text())
        for method, path in ROUTES:
            url = base + path.format(pid=patient.id)
            async with patient_browser.request(method, url, data={"csrf_token": token}, allow_redirects=False) as r:
                assert r.status == 403, (method, path, r.status)


async def test_the_builder_shows_the_plans_problems_and_a_post_without_csrf_is_refused(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    doc = await make_staff(bot.db, telegram_id=7002)
    patient, _ = await make_patient(
        bot.db, bot.clock, telegram_id=7100, therapist_id=doc.id, programme_id="lumbar-example"
    )
    base = f"{web_url(bot)}/patients/{patient.id}/programme"
    async with client() as browser:
        await sign_in_link(browser, await dashboard_link(bot, 7002))
        async with browser.get(base) as page:
            html = await page.text()
            assert page.status == 200 and 'name="phases-3-from_day" type="number" min="0" value="84"' in html
        token = csrf(html)
        form = {
            "csrf_token": token,
            "phases-0-id": "one",
            "phases-0-from_day": "2",
            "phases-0-title-en": "One",
            "phases-0-title-de": "Eins",
            "phases-0-change_note-en": "x",
            "phases-0-change_note-de": "x",
            "phases-0-sessions_per_day": "1",
            "phases-0-default_times": "9 Uhr",
            "phases-0-sessions-0-items-0-exercise": "walking",
            "phases-0-sessions-0-items-0-reps": "many",
        }
        async with browser.post(f"{base}/preview", data=form, headers={"HX-Request": "true"}) as shown:
            text = await shown.text()
            assert shown.status == 200 and "This plan cannot be saved yet" in text
            # WTForms' refusal says its place as the plan's own problems do (plan.place).
            assert (
                "Phase 1 «One» › Session 1 › Exercise 1 (Walking): Repetitions: "
                "must be a number in digits (0-9)" in text
            )
        form["phases-0-sessions-0-items-0-reps"] = "12"
        async with browser.post(f"{base}/preview", data=form, headers={"HX-Request": "true"}) as shown:
            text = await shown.text()
            said = "Phase 1 «One»: Default times (HH:MM, one per session): not a time as HH:MM (00:00-23:59): 9 Uhr"
            assert said in text
        form["phases-0-default_times"] = "09:00"
        async with browser.post(f"{base}/preview", data=form, headers={"HX-Request": "true"}) as shown:
            said = (
                "Phase 1 «One»: From day after surgery: the first phase starts on day 2:"
                " days 0-1 after surgery are in no phase (start it on day 0)"
            )
            assert said in await shown.text()
        async with browser.post(f"{base}/save", data=form, allow_redirects=False) as refused:
            assert refused.status == 422 and "The plan was not saved" in await refused.text()
        async with browser.post(f"{base}/save", data={k: v for k, v in form.items() if k != "csrf_token"}) as r:
            assert r.status == 403
        form.update({"phases-0-from_day": "0", "action": "add-item:0:0"})
        async with browser.post(f"{base}/edit", data=form, headers={"HX-Request": "true"}) as edited:
            text = await edited.text()
            assert edited.status == 200 and text.lstrip().startswith('<form id="builder"')
            assert 'name="phases-0-sessions-0-items-1-exercise"' in text
        async with browser.post(f"{base}/save", data=form, allow_redirects=False) as saved:
            assert saved.status == 303 and saved.headers["Location"].endswith("/programme?saved=1")


async def test_the_patient_page_leads_to_the_builder_and_counts_a_one_day_streak_in_the_singular(
    bot_factory: Any,
) -> None:
    """The builder was reachable only by typing its address: no page linked to it, though the templates
    page says templates are saved from it. The patient page links to it, for the owner to change the plan
    and for a colleague to look at it. And a streak of one day read "streak 1 days"."""
    from rehab_bot.models import ExerciseSession
    from rehab_bot.schedule import local_date

    bot = await bot_factory(web=WEB)
    doc = await make_staff(bot.db, telegram_id=7002)
    await make_staff(bot.db, telegram_id=7003)
    patient, _ = await make_patient(
        bot.db, bot.clock, telegram_id=7100, therapist_id=doc.id, programme_id="lumbar-example"
    )
    async with bot.db.session() as db:
        db.add(
            ExerciseSession(
                patient_id=patient.id,
                local_date=local_date(patient, bot.clock.now()),
                slot="09:00",
                status="done",
                answered_at=bot.clock.now(),
            )
        )
        await db.commit()
    page = f"{web_url(bot)}/patients/{patient.id}"
    for telegram_id, label in ((7002, "Open the programme builder"), (7003, "Look at the programme in the builder")):
        async with client() as browser:
            await sign_in_link(browser, await dashboard_link(bot, telegram_id))
            async with browser.get(page) as shown:
                html = await shown.text()
            assert shown.status == 200
            assert f'<a id="open-builder" href="/patients/{patient.id}/programme">{label}</a>' in html
            assert "streak 1 day<" in html and "streak 1 days" not in html
            async with browser.get(f"{page}/programme") as builder:
                assert builder.status == 200
