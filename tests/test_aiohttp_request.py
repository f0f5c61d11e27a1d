"""AiohttpRequest against the fake Bot API: same requests, same PTB exceptions as HTTPXRequest."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from rig.telegram_server import (
    FakeTelegram,
    blocked,
    chat_not_found,
    reset,
    retry_after,
    server_error,
    slow,
    timeout,
)
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData
from telegram.request._requestparameter import RequestParameter

from rehab_bot.aiohttp_request import AiohttpRequest, encode_multipart, encode_request_data

TOKEN = "123456789:AAE-test_SECRET_token_value_0123456"
KEYBOARD = InlineKeyboardMarkup(
    [[InlineKeyboardButton("Done ✅", callback_data="done:1"), InlineKeyboardButton("Later", callback_data="later:1")]]
)
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 300 + b"\xff\xd9"  # ~77 KB: over the chunked-write threshold

Backend = Callable[..., BaseRequest]
BACKENDS: dict[str, Backend] = {"aiohttp": AiohttpRequest, "httpx": HTTPXRequest}


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN) as server:
        yield server


@pytest.fixture
async def make_bot(tg: FakeTelegram) -> AsyncIterator[Callable[..., Any]]:
    bots: list[Bot] = []

    async def make(backend: str = "aiohttp", **request_kwargs: Any) -> Bot:
        bot = Bot(
            TOKEN, base_url=tg.base_url, base_file_url=tg.base_file_url, request=BACKENDS[backend](**request_kwargs)
        )
        await bot.initialize()
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        await bot.shutdown()


async def test_get_me(make_bot: Any, tg: FakeTelegram) -> None:
    bot = await make_bot()
    me = await bot.get_me()
    assert me.username == FakeTelegram.BOT_USERNAME and me.is_bot
    assert tg.calls("getMe")[-1].response_status == 200


async def test_send_message_with_inline_keyboard(make_bot: Any, tg: FakeTelegram) -> None:
    bot = await make_bot()
    sent = await bot.send_message(42, "Time for your exercises – 09:00 ü", reply_markup=KEYBOARD)
    [message] = tg.user(42).messages
    assert message.text == "Time for your exercises – 09:00 ü"
    assert message.buttons == [[("Done ✅", "done:1"), ("Later", "later:1")]]
    assert sent.message_id == message.message_id
    assert sent.reply_markup == KEYBOARD


async def test_send_photo_upload_arrives_intact(make_bot: Any, tg: FakeTelegram) -> None:
    bot = await make_bot()
    await bot.send_photo(42, InputFile(PHOTO, filename="knee-bend.jpg"), caption="Like this", reply_markup=KEYBOARD)
    request = tg.calls("sendPhoto")[-1]
    upload = request.files["photo"]
    assert upload.data == PHOTO
    assert upload.filename == "knee-bend.jpg"
    assert upload.content_type == "image/jpeg"
    assert request.params["caption"] == "Like this"
    assert tg.user(42).last.photo is not None and tg.user(42).last.buttons[0][0][0] == "Done ✅"


async def test_send_document_from_file_handle_like_httpx(make_bot: Any, tg: FakeTelegram) -> None:
    uploads = []
    for backend in BACKENDS:
        bot = await make_bot(backend)
        await bot.send_document(42, io.BytesIO(b"%PDF-1.4 exercise plan"), filename='plan "v2".pdf')
        uploads.append(tg.calls("sendDocument")[-1].files["document"])
    ours, theirs = uploads
    assert ours.data == b"%PDF-1.4 exercise plan"
    assert ours == theirs  # field, filename (httpx escapes the quotes as %22), type, bytes


async def test_download_a_file(make_bot: Any, tg: FakeTelegram) -> None:
    bot = await make_bot()
    sent = await tg.user(42).send_document(b"scan-bytes", filename="scan.pdf")
    file = await bot.get_file(sent["message"]["document"]["file_id"])
    assert bytes(await file.download_as_bytearray()) == b"scan-bytes"


async def test_long_poll_get_updates_waits_and_returns_an_update(make_bot: Any, tg: FakeTelegram) -> None:
    # read_timeout 1 s < long-poll timeout 2 s: PTB adds the poll timeout to the read timeout.
    bot = await make_bot(read_timeout=1.0)
    started = time.monotonic()
    assert await bot.get_updates(timeout=2) == ()
    assert 1.8 < time.monotonic() - started < 3.5
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.3)
    await tg.user(42).send("/help")
    [update] = await asyncio.wait_for(poll, 2)
    assert update.message is not None and update.message.text == "/help"


async def test_bodies_match_httpx_byte_for_byte() -> None:
    import httpx

    params = [
        RequestParameter.from_input("chat_id", 42),
        RequestParameter.from_input("caption", 'Knee "bend" \\ ü\n'),
        RequestParameter.from_input("reply_markup", KEYBOARD),
        RequestParameter.from_input("disable_notification", True),
        RequestParameter.from_input("photo", InputFile(PHOTO, filename='a"b\r.jpg', attach=False)),
    ]
    data = RequestData(params)
    ours, ours_type = encode_multipart(data.json_parameters.items(), data.multipart_data.items(), boundary="b0undary")
    theirs = httpx._multipart.MultipartStream(data.json_parameters, data.multipart_data, boundary=b"b0undary")
    assert ours == b"".join(theirs.iter_chunks())
    assert b'name="photo"; filename="a%22b%0D.jpg"\r\nContent-Type: image/jpeg\r\n\r\n' + PHOTO in ours
    assert ours_type == theirs.content_type

    plain = RequestData(params[:4])
    body, content_type, has_files = encode_request_data(plain)
    headers, stream = httpx._content.encode_urlencoded_data(plain.json_parameters)
    assert (body, content_type, has_files) == (b"".join(stream), headers["Content-Type"], False)
    assert encode_request_data(RequestData([])) == (None, None, False)
    assert encode_request_data(None) == (None, None, False)


# --- errors: the same PTB exception from both backends ------------------------------------


async def _error_from(make_bot: Any, tg: FakeTelegram, backend: str, fault: Any, **kwargs: Any) -> BaseException:
    bot = await make_bot(backend, **kwargs)
    tg.inject("sendMessage", chat_id=42, error=fault, times=1)
    with pytest.raises(Exception) as info:
        await bot.send_message(42, "hello")
    return info.value


@pytest.mark.parametrize(
    ("fault", "expected", "message"),
    [
        # PTB words it "3 seconds", or "0:00:03" once retry_after is a timedelta
        # (rehab_bot opts in to that with PTB_TIMEDELTA).
        (retry_after(3), RetryAfter, "Flood control exceeded. Retry in 0:00:03"),
        (blocked(), Forbidden, "Forbidden: bot was blocked by the user"),
        (chat_not_found(), BadRequest, "Chat not found"),
        (server_error(502), NetworkError, "Bad Gateway"),
        (server_error(500), NetworkError, "Internal Server Error"),
    ],
    ids=["429", "403", "400", "502", "500"],
)
async def test_api_errors_map_like_httpx(
    make_bot: Any, tg: FakeTelegram, fault: Any, expected: type[Exception], message: str
) -> None:
    for backend in BACKENDS:
        error = await _error_from(make_bot, tg, backend, fault)
        assert type(error) is expected, backend
        shown = error.message.replace("3 seconds", "0:00:03")  # type: ignore[attr-defined]
        assert shown == message, backend
        if isinstance(error, RetryAfter):
            assert error.retry_after in (3, timedelta(seconds=3))


async def test_connection_reset_is_network_error(make_bot: Any, tg: FakeTelegram) -> None:
    for backend in BACKENDS:
        error = await _error_from(make_bot, tg, backend, reset())
        assert type(error) is NetworkError, backend
    assert "aiohttp." in str(await _error_from(make_bot, tg, "aiohttp", reset()))


async def test_stalled_response_is_timed_out(make_bot: Any, tg: FakeTelegram) -> None:
    for backend in BACKENDS:
        started = time.monotonic()
        error = await _error_from(make_bot, tg, backend, timeout(30), read_timeout=0.5)
        assert type(error) is TimedOut, backend
        assert time.monotonic() - started < 2.5, backend


async def test_per_call_read_timeout_overrides_the_default(make_bot: Any, tg: FakeTelegram) -> None:
    bot = await make_bot(read_timeout=30.0)
    tg.inject("sendMessage", chat_id=42, error=timeout(30), times=1)
    started = time.monotonic()
    with pytest.raises(TimedOut):
        await bot.send_message(42, "hello", read_timeout=0.3)
    assert time.monotonic() - started < 2


async def test_connection_refused_is_network_error() -> None:
    for backend in BACKENDS:
        request = BACKENDS[backend](connect_timeout=2.0)
        bot = Bot(TOKEN, base_url="http://127.0.0.1:9/bot", request=request)
        await request.initialize()
        try:
            with pytest.raises(NetworkError) as info:
                await bot.get_me()
            assert type(info.value) is NetworkError, backend
        finally:
            await request.shutdown()


async def test_pool_timeout_when_every_connection_is_busy(make_bot: Any, tg: FakeTelegram) -> None:
    bot = await make_bot(connection_pool_size=1, pool_timeout=0.2)
    tg.inject("sendMessage", chat_id=42, error=slow(1.0), times=1)
    first = asyncio.create_task(bot.send_message(42, "slow"))
    await asyncio.sleep(0.1)
    with pytest.raises(TimedOut, match="Pool timeout"):
        await bot.send_message(43, "queued")
    await first
    await bot.send_message(43, "now there is room")
    assert [m.text for m in tg.user(43).messages] == ["now there is room"]


async def test_lifecycle() -> None:
    request = AiohttpRequest(read_timeout=7.0)
    assert request.read_timeout == 7.0
    with pytest.raises(NetworkError, match="not initialized"):  # BaseRequest wraps it, as for httpx
        await request.post("http://127.0.0.1:9/bot/getMe")
    async with FakeTelegram(token=TOKEN) as tg:
        for _ in range(2):  # initialize again after a shutdown
            async with request:
                body = await request.post(f"{tg.base_url}{TOKEN}/getMe")
                assert isinstance(body, dict) and body["username"] == FakeTelegram.BOT_USERNAME
        await request.shutdown()  # twice is fine


async def test_stalled_upload_is_timed_out_by_the_write_timeout() -> None:
    # A server that accepts and never reads: the body cannot be written.
    import socket

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind(("127.0.0.1", 0))
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, sock=sock)
    port = sock.getsockname()[1]
    data = RequestData([RequestParameter.from_input("document", InputFile(b"x" * 16_000_000, filename="big.bin"))])
    try:
        for backend in BACKENDS:
            request = BACKENDS[backend](media_write_timeout=0.3, read_timeout=30.0)
            await request.initialize()
            started = time.monotonic()
            try:
                with pytest.raises(TimedOut):
                    await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/sendDocument", request_data=data)
            finally:
                await request.shutdown()
            assert time.monotonic() - started < 5, backend
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
