"""A lean HTTP/1.1 keep-alive transport for httpx: the router's hop to its upstreams.

httpx's default pool (httpcore on anyio) re-checks every pooled connection with a socket poll each time a request
starts or ends; on the router's path that cost more CPU than everything else the router does. This transport
keeps a plain stack of idle asyncio connections per origin and parses responses with httptools (C). It speaks
only what the router needs: HTTP/1.1, plain or TLS, no proxies; httpx still builds requests and decodes bodies.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import AsyncIterator

import httptools
import httpx

READ = 64 * 1024
Origin = tuple[str, str, int]


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.reused = False

    def close(self) -> None:
        self.writer.close()


class _Response:
    """httptools callbacks: status, headers, then body pieces until the message is complete."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: deque[bytes] = deque()
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()  # reset once the message completes, so read it now

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True

    def delimited(self) -> bool:
        """Whether the body has a declared end (length or chunks), so that an early close is an error."""
        return any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in self.headers)


class PooledTransport(httpx.AsyncBaseTransport):
    def __init__(self, max_idle: int = 256, ssl_context: ssl.SSLContext | None = None):
        self.max_idle = max_idle
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts = request.extensions.get("timeout") or {}
        payload = await request.aread()
        for attempt in range(2):
            conn = self._take(origin) or await self._connect(origin, timeouts.get("connect"))
            try:
                return await self._exchange(conn, origin, request, payload, timeouts.get("read"))
            except (ConnectionError, asyncio.IncompleteReadError, _Closed):
                conn.close()
                # A pooled connection the server closed while idle fails before any byte comes back: retry once
                # on a new one. A fresh connection failing is a real error.
                if not conn.reused or attempt:
                    raise httpx.RemoteProtocolError(f"{url.host} closed the connection") from None
            except TimeoutError:
                conn.close()
                raise httpx.ReadTimeout(f"no answer from {url.host} in time", request=request) from None
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    async def _exchange(self, conn: _Connection, origin: Origin, request: httpx.Request, payload: bytes,
                        read_timeout: float | None) -> httpx.Response:
        target = request.url.raw_path.decode("ascii")
        lines = [f"{request.method} {target} HTTP/1.1".encode()]
        lines += [k + b": " + v for k, v in request.headers.raw]
        conn.writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + payload)
        response = _Response()
        while not response.headers_done:
            await self._feed(conn, response, read_timeout)
        status = response.parser.get_status_code()
        return httpx.Response(status, headers=response.headers, stream=_Body(self, conn, origin, response,
                                                                                read_timeout),
                              extensions={"http_version": b"HTTP/1.1"})

    async def _feed(self, conn: _Connection, response: _Response, read_timeout: float | None) -> None:
        async with asyncio.timeout(read_timeout):
            data = await conn.reader.read(READ)
        if not data:
            if response.headers_done and not response.complete and not response.delimited():
                response.complete = True  # a body that ends where the connection does
                return
            raise _Closed
        try:
            response.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise httpx.RemoteProtocolError(f"bad HTTP response: {exc}") from None

    def _take(self, origin: Origin) -> _Connection | None:
        conns = self._idle.get(origin)
        while conns:
            conn = conns.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                conn.reused = True
                return conn
            conn.close()
        return None

    def _give_back(self, origin: Origin, conn: _Connection, keep_alive: bool) -> None:
        conns = self._idle.setdefault(origin, [])
        if keep_alive and len(conns) < self.max_idle and not conn.reader.at_eof():
            conns.append(conn)
        else:
            conn.close()

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        context = None
        if scheme == "https":
            context = self._ssl = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, ssl=context,
                                                               server_hostname=host if context else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"could not connect to {host}:{port} in time") from None
        except OSError as exc:
            raise httpx.ConnectError(f"could not connect to {host}:{port}: {exc.strerror or exc}") from None
        return _Connection(reader, writer)


class _Closed(Exception):
    pass


class _Body(httpx.AsyncByteStream):
    def __init__(self, transport: PooledTransport, conn: _Connection, origin: Origin, response: _Response,
                 read_timeout: float | None):
        self.transport, self.conn, self.origin = transport, conn, origin
        self.response, self.read_timeout = response, read_timeout
        self.done = self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        response = self.response
        try:
            while True:
                while response.body:
                    yield response.body.popleft()
                if response.complete:
                    break
                await self.transport._feed(self.conn, response, self.read_timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("the upstream stalled mid-body") from None
        except (_Closed, ConnectionError):
            raise httpx.RemoteProtocolError("the upstream closed the connection mid-body") from None
        self.done = True

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.done and self.response.complete:
            self.transport._give_back(self.origin, self.conn, self.response.keep_alive)
        else:
            self.conn.close()  # an unread body would poison the next request on this connection
