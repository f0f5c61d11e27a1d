"""A python-telegram-bot HTTP backend on aiohttp.

PTB's default :class:`~telegram.request.HTTPXRequest` spends about 3 ms of
CPU per ``sendMessage`` (httpx + httpcore + anyio); aiohttp does the same
request for a fraction of that, which matters when a clinic's morning burst
is thousands of reminders. :class:`AiohttpRequest` implements PTB's
documented extension point, :class:`~telegram.request.BaseRequest`, and
behaves like HTTPXRequest where callers can see it:

* **The bytes sent.** Without files the body is
  ``application/x-www-form-urlencoded`` from ``RequestData.json_parameters``
  (every value already a string); with files it is ``multipart/form-data``
  with the same string fields first and then one part per file, encoded
  exactly like httpx does (``name="..."; filename="..."``, the file's MIME
  type, the same escaping). No parameters: no body, as with httpx.
* **Timeouts.** ``read`` bounds each wait for response bytes after the
  request is written (aiohttp ``sock_read``); ``connect`` bounds opening a
  connection (``sock_connect`` and ``connect``); ``pool`` bounds waiting for
  a free connection when all ``connection_pool_size`` are busy; ``write``
  bounds each chunk written of a large body (aiohttp has no write timeout of
  its own, so large bodies are written by :class:`_TimedBody`). Uploads use
  ``media_write_timeout`` unless a write timeout is passed, as in httpx.
* **Errors.** Any timeout raises :class:`~telegram.error.TimedOut` (a pool
  timeout with HTTPXRequest's message, since that request was never sent);
  any other aiohttp error raises :class:`~telegram.error.NetworkError` named
  ``aiohttp.<Class>: <message>``. HTTP statuses are mapped by BaseRequest
  itself (RetryAfter, Forbidden, BadRequest, NetworkError for 5xx, ...).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import IO, Any
from urllib.parse import urlencode

import aiohttp
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import BytesPayload
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_URLENCODED = "application/x-www-form-urlencoded"
_JSON_HEADERS = {"Content-Type": "application/json"}
# Bodies up to this size fit the transport's write buffer and never wait on
# the socket, so the write timeout cannot fire for them (and costs nothing).
_TIMED_WRITE_ABOVE = 64 * 1024
_WRITE_CHUNK = 64 * 1024
_POOL_TIMEOUT_MESSAGE = (
    "Pool timeout: All connections in the connection pool are occupied. "
    "Request was *not* sent to Telegram. Consider adjusting the connection "
    "pool size or the pool timeout."
)

# httpx's HTML5 escaping of multipart parameters (httpx/_multipart.py).
_FORM_ESCAPES = {'"': "%22", "\\": "\\\\", **{chr(c): f"%{c:02X}" for c in range(0x20) if c != 0x1B}}
_FORM_ESCAPE_TABLE = str.maketrans(_FORM_ESCAPES)


def _form_param(name: str, value: str) -> bytes:
    return f'{name}="{value.translate(_FORM_ESCAPE_TABLE)}"'.encode()


def _file_bytes(content: bytes | IO[bytes]) -> bytes:
    if isinstance(content, bytes | bytearray | memoryview):
        return bytes(content)
    # A file handle: read it from the start, as httpx does.
    seek = getattr(content, "seek", None)
    if seek is not None:
        try:
            seek(0)
        except OSError:  # io.UnsupportedOperation is an OSError
            pass
    return content.read()


def encode_multipart(
    fields: Iterable[tuple[str, str]],
    files: Iterable[tuple[str, tuple[str, bytes | IO[bytes], str]]],
    boundary: str | None = None,
) -> tuple[bytes, str]:
    """``multipart/form-data`` exactly as httpx encodes ``data=fields, files=files``.

    Returns the body and its Content-Type header (with the boundary).
    """
    mark = (boundary or os.urandom(16).hex()).encode("ascii")
    chunks: list[bytes] = []
    for name, value in fields:
        chunks += [b"--", mark, b"\r\nContent-Disposition: form-data; ", _form_param("name", name), b"\r\n\r\n"]
        chunks += [value.encode("utf-8"), b"\r\n"]
    for name, (filename, content, mime_type) in files:
        chunks += [b"--", mark, b"\r\nContent-Disposition: form-data; ", _form_param("name", name)]
        if filename:
            chunks += [b"; ", _form_param("filename", filename)]
        if mime_type:
            chunks += [b"\r\nContent-Type: ", mime_type.encode()]
        chunks += [b"\r\n\r\n", _file_bytes(content), b"\r\n"]
    chunks += [b"--", mark, b"--\r\n"]
    return b"".join(chunks), f"multipart/form-data; boundary={mark.decode('ascii')}"


def encode_request_data(request_data: RequestData | None) -> tuple[bytes | None, str | None, bool]:
    """The body, its Content-Type and whether it carries files, like HTTPXRequest sends them."""
    if request_data is None:
        return None, None, False
    files = request_data.multipart_data
    fields = request_data.json_parameters
    if files:
        body, content_type = encode_multipart(fields.items(), files.items())
        return body, content_type, True
    if fields:
        return urlencode(fields).encode("utf-8"), _URLENCODED, False
    return None, None, False


class _TimedBody(BytesPayload):
    """A large body written in chunks, each within the write timeout (httpx semantics)."""

    def __init__(self, value: bytes, *, content_type: str, write_timeout: float | None) -> None:
        super().__init__(value, content_type=content_type)
        self._write_timeout = write_timeout
        self._body = value

    async def write(self, writer: AbstractStreamWriter) -> None:
        """Write all of the body."""
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        """Write the body (at most content_length bytes), chunk by chunk."""
        view = memoryview(self._body)
        if content_length is not None:
            view = view[:content_length]
        for start in range(0, len(view), _WRITE_CHUNK):
            chunk = view[start : start + _WRITE_CHUNK]
            if self._write_timeout is None:
                await writer.write(chunk)
                continue
            try:
                async with asyncio.timeout(self._write_timeout):
                    await writer.write(chunk)
            except TimeoutError as exc:
                raise _WriteTimeout from exc


class _WriteTimeout(TimeoutError):
    """A chunk of the request body could not be written in time."""


class AiohttpRequest(BaseRequest):
    """:class:`~telegram.request.BaseRequest` on one :class:`aiohttp.ClientSession`.

    Args:
        connection_pool_size: most connections open at once (TCPConnector's
            limit); a request beyond it waits up to ``pool_timeout``.
        read_timeout: seconds to wait for response data (default 5).
        write_timeout: seconds to write each chunk of a request body (default 5).
        connect_timeout: seconds to open a connection (default 5).
        pool_timeout: seconds to wait for a free connection (default 1).
        media_write_timeout: write timeout for requests that upload files (default 20).
        session_kwargs: extra keyword arguments for ``aiohttp.ClientSession``.
    """

    __slots__ = (
        "_connect_timeout",
        "_media_write_timeout",
        "_pool",
        "_pool_size",
        "_pool_timeout",
        "_read_timeout",
        "_session",
        "_session_kwargs",
        "_timeouts",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        session_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session_kwargs = session_kwargs or {}
        self._session: aiohttp.ClientSession | None = None
        self._pool: asyncio.Semaphore | None = None
        self._timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout] = {}

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout in seconds, as passed to the constructor."""
        return self._read_timeout

    @property
    def connection_pool_size(self) -> int:
        """Most connections open at once."""
        return self._pool_size

    async def initialize(self) -> None:
        """Open the session (again, after a shutdown); needs a running event loop."""
        if self._session is not None and not self._session.closed:
            return
        connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0)
        kwargs: dict[str, Any] = {
            "connector": connector,
            # Telegram sets no cookies; skipping the jar saves work on every response.
            "cookie_jar": aiohttp.DummyCookieJar(),
            "timeout": self._client_timeout(self._connect_timeout, self._read_timeout),
            "headers": {"User-Agent": self.USER_AGENT},
            **self._session_kwargs,
        }
        self._session = aiohttp.ClientSession(**kwargs)
        self._pool = asyncio.Semaphore(self._pool_size)

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        session, self._session = self._session, None
        if session is None or session.closed:
            return
        await session.close()

    def _client_timeout(self, connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
        key = (connect, read)
        timeout = self._timeouts.get(key)
        if timeout is None:
            # No total: like httpx, a long-poll or a slow but steady download
            # is bounded per read, not overall.
            timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect, sock_read=read)
            if len(self._timeouts) < 64:
                self._timeouts[key] = timeout
        return timeout

    @asynccontextmanager
    async def _connection_slot(self, pool_timeout: float | None) -> AsyncIterator[None]:
        pool = self._pool
        assert pool is not None
        if pool.locked():
            try:
                if pool_timeout is None:
                    await pool.acquire()
                else:
                    async with asyncio.timeout(pool_timeout):
                        await pool.acquire()
            except TimeoutError as exc:
                raise TimedOut(message=_POOL_TIMEOUT_MESSAGE) from exc
        else:
            await pool.acquire()
        try:
            yield
        finally:
            pool.release()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """See :meth:`telegram.request.BaseRequest.do_request`."""
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")

        body, content_type, has_files = encode_request_data(request_data)
        if isinstance(read_timeout, DefaultValue):
            read_timeout = self._read_timeout
        if isinstance(connect_timeout, DefaultValue):
            connect_timeout = self._connect_timeout
        if isinstance(pool_timeout, DefaultValue):
            pool_timeout = self._pool_timeout
        if isinstance(write_timeout, DefaultValue):
            write_timeout = self._media_write_timeout if has_files else self._write_timeout

        data: bytes | _TimedBody | None = body
        headers: dict[str, str] | None = None
        if body is not None:
            assert content_type is not None
            if len(body) > _TIMED_WRITE_ABOVE:
                data = _TimedBody(body, content_type=content_type, write_timeout=write_timeout)
            else:
                headers = {"Content-Type": content_type}
        return await self._send(session, method, url, data, headers, pool_timeout, connect_timeout, read_timeout)

    async def post_json(self, url: str, body: bytes) -> tuple[int, bytes]:
        """POST a JSON body that is already encoded (rehab_bot.transport's lean path); (status, payload).

        Same pool, default timeouts and errors as :meth:`do_request`; bodies
        this path sends (one message's text and buttons) fit the write buffer.
        """
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        return await self._send(
            session, "POST", url, body, _JSON_HEADERS, self._pool_timeout, self._connect_timeout, self._read_timeout
        )

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        data: bytes | _TimedBody | None,
        headers: dict[str, str] | None,
        pool_timeout: float | None,
        connect_timeout: float | None,
        read_timeout: float | None,
    ) -> tuple[int, bytes]:
        try:
            async with (
                self._connection_slot(pool_timeout),
                session.request(
                    method,
                    url,
                    data=data,
                    headers=headers,
                    timeout=self._client_timeout(connect_timeout, read_timeout),
                ) as response,
            ):
                payload = await response.read()
                return response.status, payload
        except TimedOut:
            raise
        except TimeoutError as err:
            # aiohttp's ServerTimeoutError (connect, read) and our write timeout.
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err
