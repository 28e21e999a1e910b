"""The router's upstream transport over real sockets: keep-alive reuse, a server closing idle connections,
bodies cut short, and upstreams that hang."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from forge.serving.transport import PooledTransport

OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":1234}'


async def server(handler) -> tuple[asyncio.AbstractServer, str, list]:
    connections: list = []

    async def accept(reader, writer):
        connections.append(writer)
        await handler(reader, writer)

    srv = await asyncio.start_server(accept, "127.0.0.1", 0)
    return srv, f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}", connections


async def read_request(reader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    return head + await reader.readexactly(length)


def test_connections_are_reused_and_one_the_server_closed_while_idle_is_replaced():
    async def scenario() -> tuple:
        async def keep_alive(reader, writer):
            while not reader.at_eof():
                try:
                    await read_request(reader)
                except asyncio.IncompleteReadError:
                    return
                writer.write(OK)
                await writer.drain()

        srv, url, connections = await server(keep_alive)
        async with httpx.AsyncClient(transport=PooledTransport(), base_url=url) as client:
            answers = [(await client.post("/x", json={"n": i})).json() for i in range(5)]
            reused = len(connections)
            connections[0].close()  # the server drops the idle connection
            await asyncio.sleep(0.05)
            after = (await client.get("/y")).json()
        srv.close()
        return answers, reused, after, len(connections)

    answers, reused, after, total = asyncio.run(scenario())
    assert answers == [{"ok": 1234}] * 5 and reused == 1
    assert after == {"ok": 1234} and total == 2


def test_chunked_bodies_stream_and_a_body_cut_short_is_an_error():
    async def scenario() -> tuple:
        async def chunked(reader, writer):
            request = await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
            if b"/cut" not in request:
                writer.write(b"6\r\n world\r\n0\r\n\r\n")
            await writer.drain()
            writer.close()

        srv, url, _ = await server(chunked)
        async with httpx.AsyncClient(transport=PooledTransport(), base_url=url) as client:
            async with client.stream("GET", "/whole") as response:
                pieces = [piece async for piece in response.aiter_bytes()]
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/cut")
        srv.close()
        return pieces

    assert b"".join(asyncio.run(scenario())) == b"hello world"


def test_an_upstream_that_never_answers_times_out_and_a_closed_port_fails_to_connect():
    async def scenario() -> None:
        async def silent(reader, writer):
            await asyncio.sleep(5)

        srv, url, _ = await server(silent)
        async with httpx.AsyncClient(transport=PooledTransport(), base_url=url, timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get("/")
        srv.close()
        port = srv.sockets[0].getsockname()[1] if srv.sockets else 1
        async with httpx.AsyncClient(transport=PooledTransport(), timeout=2) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")

    asyncio.run(scenario())
