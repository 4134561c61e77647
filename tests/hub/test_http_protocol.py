"""The gateway's HTTP protocol: a response's head and body leave in one write, nothing is lost."""

import asyncio
from typing import Any

import httpx
import pytest

from hub.http_protocol import _HeadHoldingTransport
from hub.serving import serving


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        self.writes.append(b"".join(chunks))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def holding() -> tuple[RecordingTransport, _HeadHoldingTransport]:
    raw = RecordingTransport()
    return raw, _HeadHoldingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]


async def test_head_and_body_written_together_in_one_write() -> None:
    # Given a transport holding a response's head
    raw, transport = holding()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert raw.writes == []
    # When the body follows in the same loop turn
    transport.write(b"body")
    # Then both leave in one write, and the end of the turn adds nothing
    assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]


async def test_a_lone_write_leaves_at_the_end_of_the_loop_turn() -> None:
    raw, transport = holding()
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


async def test_close_writes_what_is_held_first_and_abort_drops_it() -> None:
    raw, transport = holding()
    transport.write(b"last words")
    transport.close()
    assert raw.writes == [b"last words"] and raw.closed
    await asyncio.sleep(0)
    assert raw.writes == [b"last words"], "nothing written twice"

    raw, transport = holding()
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    assert raw.writes == [] and raw.aborted


async def test_transport_passes_other_calls_through() -> None:
    _raw, transport = holding()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
    with pytest.raises(AttributeError):
        transport.no_such_method  # noqa: B018


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for n in range(3):
            await send({"type": "http.response.body", "body": b"part%d;" % n, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-length", str(len(body)).encode()), (b"x-echo", b"yes")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def test_server_answers_whole_and_streamed_responses_on_one_keep_alive_connection() -> None:
    # Given a server on the coalescing protocol and a client keeping one connection
    async with (
        serving(_app) as server,
        httpx.AsyncClient(base_url=server.url, limits=httpx.Limits(max_connections=1)) as http,
    ):
        # When it answers whole responses, a large one and a streamed one, one after the other
        for size in (0, 10, 1 << 20):
            response = await http.post("/echo", content=b"z" * size)
            # Then each arrives complete, with its headers
            assert response.status_code == 201 and response.headers["x-echo"] == "yes"
            assert response.content == b"z" * size
        streamed = await http.get("/stream")
        assert streamed.status_code == 200 and streamed.content == b"part0;part1;part2;"
        assert "server" not in streamed.headers
