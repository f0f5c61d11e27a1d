"""Security checks of the web app from outside, over HTTP: redirects stay on this site, sign-out ends a
session for every copy of its cookie, patients' photos lose their metadata, odd ids are no server error."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from factories import make_patient, make_staff
from PIL import Image
from sqlmodel import select
from test_checkins import enrolled
from webrig import WEB, client, csrf, dashboard_link, init_data, miniapp_web, sign_in_initdata, sign_in_link, web_url

from rehab_bot.models import Alert, CareMessage


@pytest.mark.parametrize(
    "target", ["/%09/evil.example", "/%0d%0a/evil.example", "/%5C%5Cevil.example", "//evil.example"]
)
async def test_acknowledging_an_alert_never_redirects_to_another_site(bot_factory: Any, target: str) -> None:
    bot = await bot_factory(web=WEB)
    staff = await make_staff(bot.db, telegram_id=7002, role="admin")
    patient, _ = await make_patient(bot.db, bot.clock, alias="SEC-0001", telegram_id=7100)
    async with bot.db.session() as session:
        alert = Alert(
            patient_id=patient.id or 0, severity="urgent", kind="red_flag", created_at=bot.clock.now(), detail="x"
        )
        session.add(alert)
        await session.commit()
        alert_id = alert.id
    assert staff.id is not None
    base = web_url(bot)
    async with client() as browser:
        assert (await sign_in_link(browser, await dashboard_link(bot, 7002))).status == 303
        async with browser.get(f"{base}/alerts") as page:
            token = csrf(await page.text())
        async with browser.post(
            f"{base}/alerts/{alert_id}/ack?next={target}", headers={"X-CSRF-Token": token}, allow_redirects=False
        ) as response:
            assert response.status == 303
            location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location


def _photo_with_gps() -> bytes:
    """A phone's JPEG: EXIF with the camera and the GPS position where it was taken."""
    image = Image.new("RGB", (40, 30), (180, 40, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def test_a_patients_photo_reaches_the_care_team_without_its_gps_position(
    bot_factory: Any, tmp_path: Path
) -> None:
    bot = await bot_factory(web=miniapp_web(), care={"photo_dir": str(tmp_path / "photos")})
    await enrolled(bot, 7291, therapist=7191, schedule=False)
    upload = _photo_with_gps()
    assert Image.open(io.BytesIO(upload)).getexif().get_ifd(0x8825)
    base = web_url(bot)
    async with client() as browser:
        assert (await sign_in_initdata(browser, base, init_data(7291, bot.clock.now()))).status == 200
        async with browser.get(f"{base}/app/messages") as page:
            token = csrf(await page.text())
        form = aiohttp.FormData()
        form.add_field("csrf_token", token)
        form.add_field("text", "The wound")
        form.add_field("photo", upload, filename="wound.jpg", content_type="image/jpeg")
        async with browser.post(f"{base}/app/messages", data=form) as response:
            assert response.status == 200 and "Sent to your care team" in await response.text()
        # A file that only starts like a JPEG (here: a page) is no photo.
        form = aiohttp.FormData()
        form.add_field("csrf_token", token)
        form.add_field("photo", b"\xff\xd8\xff\xe0<html><script>alert(1)</script>", filename="x.jpg")
        async with browser.post(f"{base}/app/messages", data=form) as response:
            assert "is not a photo" in await response.text()
    async with bot.db.session() as session:
        [stored] = (await session.exec(select(CareMessage))).all()
    kept = (tmp_path / "photos" / stored.photo_path).read_bytes()
    with Image.open(io.BytesIO(kept)) as image:
        assert image.format == "JPEG" and image.size == (40, 30)
        assert not image.getexif(), "EXIF (GPS position, camera) must not be kept"
    assert b"PhoneMaker" not in kept and stored.photo_bytes == len(kept)
    async with client() as browser:
        assert (await sign_in_link(browser, await dashboard_link(bot, 7191))).status == 303
        async with browser.get(f"{base}/patients/{stored.patient_id}/messages/{stored.id}/photo") as shown:
            assert await shown.read() == kept


@pytest.mark.parametrize("start", ["template:99999999999999999999999", "template:²", "template:0x1"])
async def test_a_builder_start_no_database_can_hold_is_a_404_not_a_server_error(bot_factory: Any, start: str) -> None:
    bot = await bot_factory(web=WEB)
    await make_staff(bot.db, telegram_id=7002, role="admin")
    patient, _ = await make_patient(bot.db, bot.clock, alias="SEC-0002", telegram_id=7100)
    async with client() as browser:
        assert (await sign_in_link(browser, await dashboard_link(bot, 7002))).status == 303
        async with browser.get(f"{web_url(bot)}/patients/{patient.id}/programme", params={"start": start}) as page:
            assert page.status == 404
