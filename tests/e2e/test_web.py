"""The web app over HTTP, served by the running bot: sign-in, sessions, CSRF, access, audit, menus."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from factories import make_patient, make_staff
from sqlmodel import col, select
from webrig import WEB, client, csrf, dashboard_link, init_data, sign_in_initdata, sign_in_link, web_url

from rehab_bot import audit
from rehab_bot.models import AuditLog, Patient, Staff, WebSession
from rehab_bot.web.app import COOKIE_NAME


async def actions(bot: Any) -> list[tuple[str, str, str]]:
    async with bot.db.session() as session:
        rows = (await session.exec(select(AuditLog).order_by(col(AuditLog.id)))).all()
    return [(row.action, row.actor, row.detail) for row in rows]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_dashboard_link_signs_in_once_and_the_caseload_is_audited(bot_factory: Any, backend: str) -> None:
    bot = await bot_factory(backend, web=WEB)
    doc = await make_staff(bot.db, telegram_id=7002, name="Dr Ben")
    await make_patient(bot.db, bot.clock, alias="LWS-0001", therapist_id=doc.id)
    link = await dashboard_link(bot, 7002)
    assert link.startswith(web_url(bot) + "/signin?token=")
    [call] = [c for c in bot.tg.calls("sendMessage") if "/signin?token=" in str(c.params.get("text"))]
    assert call.params["link_preview_options"] == {"is_disabled": True}

    async with client() as browser:
        # Opening the link (as a link preview would) uses nothing up: signing in takes a POST.
        async with browser.get(link) as page:
            assert page.status == 200
        first = await sign_in_link(browser, link)
        assert first.status == 303 and first.headers["Location"] == "/caseload"
        cookie = first.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # http on loopback
        async with browser.get(f"{web_url(bot)}/caseload") as page:
            html = await page.text()
            assert page.status == 200
            assert "LWS-0001" in html
            assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
            assert page.headers["Referrer-Policy"] == "no-referrer"

    async with client() as other:
        again = await sign_in_link(other, link)
        assert again.status == 400  # used once already
        async with other.get(f"{web_url(bot)}/caseload", allow_redirects=False) as page:
            assert page.status == 401

    done = await actions(bot)
    assert (audit.WEB_LINK, "telegram:7002", "") in done
    assert (audit.WEB_SIGNIN, "web:7002", "link") in done
    assert any(a == audit.VIEW_PATIENTS and actor == "web:7002" and "shown=1" in d for a, actor, d in done)


async def test_an_expired_link_is_refused(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    await make_staff(bot.db, telegram_id=7002)
    link = await dashboard_link(bot, 7002)
    bot.clock.advance(timedelta(minutes=5, seconds=1))
    async with client() as browser:
        response = await sign_in_link(browser, link)
        assert response.status == 400


async def test_dashboard_is_an_unknown_command_for_strangers_and_says_when_the_web_app_is_off(bot: Any) -> None:
    stranger = bot.tg.user(4242)
    await stranger.send("/dashboard")
    [reply] = await stranger.wait_for()
    assert "/signin" not in (reply.text or "")
    await make_staff(bot.db, telegram_id=7002)
    doc = bot.tg.user(7002)
    doc.mark_seen()
    await doc.send("/dashboard")
    [off] = await doc.wait_for()
    assert "not switched on" in (off.text or "")


async def test_a_post_without_a_csrf_token_is_refused(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    await make_staff(bot.db, telegram_id=7002)
    async with client() as browser:
        assert (await sign_in_link(browser, await dashboard_link(bot, 7002))).status == 303
        base = web_url(bot)
        async with browser.post(f"{base}/signout", allow_redirects=False) as response:
            assert response.status == 403
        async with browser.post(
            f"{base}/signout", data={"csrf_token": "20991231000000##forged"}, allow_redirects=False
        ) as response:
            assert response.status == 403
        async with browser.get(f"{base}/caseload") as page:
            assert page.status == 200  # still signed in
            token = csrf(await page.text())
        async with browser.post(f"{base}/signout", headers={"X-CSRF-Token": token}, allow_redirects=False) as response:
            assert response.status == 303
        async with browser.get(f"{base}/caseload", allow_redirects=False) as page:
            assert page.status == 401


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_signing_out_ends_every_copy_of_the_cookie(bot_factory: Any, backend: str) -> None:
    """The session is ended on the server: a copy of the cookie taken before sign-out is refused after it."""
    bot = await bot_factory(backend, web=WEB)
    await make_staff(bot.db, telegram_id=7002)
    base = web_url(bot)
    async with client() as browser, client() as thief:
        assert (await sign_in_link(browser, await dashboard_link(bot, 7002))).status == 303
        [cookie] = [c for c in browser.cookie_jar if c.key == COOKIE_NAME]
        thief.cookie_jar.update_cookies({COOKIE_NAME: cookie.value})
        async with thief.get(f"{base}/caseload", allow_redirects=False) as page:
            assert page.status == 200, "a copy works while the session is open"
        async with browser.get(f"{base}/caseload") as page:
            token = csrf(await page.text())
        async with browser.post(f"{base}/signout", headers={"X-CSRF-Token": token}, allow_redirects=False) as out:
            assert out.status == 303
        async with thief.get(f"{base}/caseload", allow_redirects=False) as page:
            assert page.status == 401
        # A second sign-in is a new session, and works.
        assert (await sign_in_link(browser, await dashboard_link(bot, 7002))).status == 303
        async with browser.get(f"{base}/caseload", allow_redirects=False) as page:
            assert page.status == 200


async def test_a_session_ends_after_session_hours_however_active(bot_factory: Any) -> None:
    bot = await bot_factory(web={**WEB, "idle_minutes": 30, "session_hours": 2})
    await make_staff(bot.db, telegram_id=7002)
    async with client() as browser:
        assert (await sign_in_link(browser, await dashboard_link(bot, 7002))).status == 303
        for _ in range(4):  # 1 h 56 min of clicks, never idle for long
            bot.clock.advance(timedelta(minutes=29))
            async with browser.get(f"{web_url(bot)}/caseload", allow_redirects=False) as page:
                assert page.status == 200
        bot.clock.advance(timedelta(minutes=5))  # 2 h 1 min after signing in
        async with browser.get(f"{web_url(bot)}/caseload", allow_redirects=False) as page:
            assert page.status == 401
        # Mini App sign-ins get the same end (and a stored row each, cleared once expired).
        assert (await sign_in_initdata(browser, web_url(bot), init_data(7002, bot.clock.now()))).status == 200
        async with bot.db.session() as session:
            rows = (await session.exec(select(WebSession))).all()
        assert len(rows) == 1 and rows[0].expires_at == bot.clock.now() + timedelta(hours=2)


async def test_removing_a_staff_member_ends_their_session_at_the_next_request(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    member = await make_staff(bot.db, telegram_id=7002)
    async with client() as browser:
        assert (await sign_in_link(browser, await dashboard_link(bot, 7002))).status == 303
        async with browser.get(f"{web_url(bot)}/caseload") as page:
            assert page.status == 200
        async with bot.db.session() as session:
            row = await session.get(Staff, member.id)
            assert row is not None
            row.active = False
            await session.commit()
        async with browser.get(f"{web_url(bot)}/caseload") as page:
            assert page.status == 401


async def test_an_idle_session_ends(bot_factory: Any) -> None:
    bot = await bot_factory(web={**WEB, "idle_minutes": 30})
    await make_staff(bot.db, telegram_id=7002)
    async with client() as browser:
        assert (await sign_in_link(browser, await dashboard_link(bot, 7002))).status == 303
        bot.clock.advance(timedelta(minutes=29))
        async with browser.get(f"{web_url(bot)}/caseload") as page:
            assert page.status == 200  # and the idle time starts again
        bot.clock.advance(timedelta(minutes=29))
        async with browser.get(f"{web_url(bot)}/caseload") as page:
            assert page.status == 200
        bot.clock.advance(timedelta(minutes=31))
        async with browser.get(f"{web_url(bot)}/caseload") as page:
            assert page.status == 401


async def test_mini_app_signs_in_staff_and_patients_and_refuses_forged_or_stale_data(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    await make_staff(bot.db, telegram_id=7002)
    await make_patient(bot.db, bot.clock, alias="LWS-0002", telegram_id=7100)
    base, now = web_url(bot), bot.clock.now()
    async with client() as browser:
        response = await sign_in_initdata(browser, base, init_data(7002, now))
        assert response.status == 200
        async with browser.get(f"{base}/caseload") as page:
            assert page.status == 200
    async with client() as browser:
        assert (await sign_in_initdata(browser, base, init_data(7100, now))).status == 200
        async with browser.get(f"{base}/me") as page:
            assert "LWS-0002" in await page.text()
        async with browser.get(f"{base}/caseload") as page:
            assert page.status == 403  # a patient is not staff
    async with client() as browser:
        forged = init_data(7002, now, token="987654321:AAE-another_bots_token_value_01234")
        assert (await sign_in_initdata(browser, base, forged)).status == 401  # issue 16: forged or stale -> 401
        stale = init_data(7002, now - timedelta(hours=2))
        assert (await sign_in_initdata(browser, base, stale)).status == 401
        stranger = init_data(4242, now)
        assert (await sign_in_initdata(browser, base, stranger)).status == 403
        async with browser.get(f"{base}/caseload", allow_redirects=False) as page:
            assert page.status == 401


async def test_staff_chats_get_the_mini_app_menu_button_and_patients_a_dashboard_button(bot_factory: Any) -> None:
    bot = await bot_factory(web={**WEB, "public_url": "https://rehab.clinic.test"})
    doc = await make_staff(bot.db, telegram_id=7002)
    from rehab_bot.bot.staff import sync_staff_menus

    await sync_staff_menus(bot.app, everyone=True)
    assert bot.tg.menu_buttons[7002] == {
        "type": "web_app",
        "text": "Dashboard",
        "web_app": {"url": "https://rehab.clinic.test/app"},
    }
    user = bot.tg.user(7002)
    await user.send("/patients")
    [listing] = await user.wait_for(lambda m: "patients" in (m.text or "").lower())
    assert ("Open dashboard", "https://rehab.clinic.test/app") in [b for row in listing.buttons for b in row]
    async with bot.db.session() as session:
        row = await session.get(Staff, doc.id)
        assert row is not None
        row.active = False
        await session.commit()
    await sync_staff_menus(bot.app)
    assert bot.tg.menu_buttons[7002] == {"type": "default"}


@pytest.mark.parametrize(
    ("lang", "title", "said", "back", "refused"),
    [
        (
            "en",
            "The form has expired",
            "The form had expired or was not sent from this site, so nothing was done.",
            "Back to the page",
            "You are not allowed to open this page or to do this.",
        ),
        (
            "de",
            "Das Formular ist abgelaufen",
            "Das Formular war abgelaufen oder wurde nicht von dieser Website gesendet, daher wurde nichts getan.",
            "Zurück zur Seite",
            "Sie dürfen diese Seite nicht öffnen oder dies nicht tun.",
        ),
    ],
)
async def test_a_missing_or_expired_csrf_token_says_so_and_links_back_a_refusal_stays_a_refusal(
    bot_factory: Any, lang: str, title: str, said: str, back: str, refused: str
) -> None:
    bot = await bot_factory(web=WEB)
    doc = await make_staff(bot.db, telegram_id=7002, language=lang)
    await make_staff(bot.db, telegram_id=7003, language=lang)
    patient, _ = await make_patient(bot.db, bot.clock, alias="LWS-0001", therapist_id=doc.id)
    base = web_url(bot)
    async with client() as browser:
        assert (await sign_in_link(browser, await dashboard_link(bot, 7002))).status == 303
        for data in ({}, {"csrf_token": "20991231000000##forged"}):
            async with browser.post(f"{base}/patients/{patient.id}/pause", data=data, allow_redirects=False) as page:
                html = (await page.text()).replace("&#39;", "'")
                assert page.status == 403 and page.content_type == "text/html"
            assert f"<h1>{title}</h1>" in html and said in html
            assert f'<a href="/patients/{patient.id}">{back}</a>' in html
            assert refused not in html
        async with browser.post(f"{base}/signout", headers={"HX-Request": "true"}) as bare:
            assert bare.status == 403 and said in await bare.text()
    async with bot.db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None and row.paused_until is None, "nothing was done"
    # A real refusal is still the plain 403: a therapist (signed in, valid token) posting to an admin page.
    async with client() as other:
        assert (await sign_in_link(other, await dashboard_link(bot, 7003))).status == 303
        async with other.get(f"{base}/caseload") as page:
            token = csrf(await page.text())
        async with other.post(f"{base}/admin/staff/1/role", data={"csrf_token": token}) as page:
            html = (await page.text()).replace("&#39;", "'")
            assert page.status == 403 and refused in html and title not in html and back not in html


async def test_the_sign_in_page_speaks_the_links_staff_member_s_language(bot_factory: Any) -> None:
    """A German therapist's /dashboard link opened in an English browser: the page is German, as every page
    after signing in is; a link that no longer works (or none) follows the browser, as before."""
    bot = await bot_factory(web=WEB)
    await make_staff(bot.db, telegram_id=7003, language="de")
    link = await dashboard_link(bot, 7003)
    async with client() as browser:
        english = {"Accept-Language": "en-GB,en;q=0.9"}
        async with browser.get(link, headers=english) as page:
            html = await page.text()
            assert page.status == 200 and '<html lang="de"' in html and "Anmelden" in html, html[:400]
        async with browser.get(f"{web_url(bot)}/signin?token=not-a-token", headers=english) as page:
            assert '<html lang="en"' in await page.text()
        await sign_in_link(browser, link)
    async with client() as other:
        async with other.get(link, headers={"Accept-Language": "en"}) as page:  # used: the browser's language
            assert '<html lang="en"' in await page.text()
