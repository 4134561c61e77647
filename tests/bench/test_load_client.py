"""The benchmarks' load client (bench/_load_client.py) against scripted raw HTTP servers on 127.0.0.1.

What bench/edocs.py relies on: the request bytes exactly as built, one answer per body and in order,
the hub's id read from each 201, every other outcome (a refusal, a lost connection, a hung server,
an unparsable answer) reported and none dropped, and keep-alive connections the server closes replaced.
"""

import asyncio
import json
import time

import pytest
import uvloop

from bench._load_client import post_all
from bench.edocs import submit_all
from tests.hub.broker.conftest import eventually
from tests.hub.test_http_transport import answer, read_request, serving, socket_closed_port

HEADERS = {
    "X-Road-Client": "VN/GOV/000.00.00.H40/edoc",
    "X-Api-Key": "key",
    "Content-Type": "application/xml",
}
CREATED = b"201 Created"
TIMEOUT = 5.0  # a client that lost track of a request fails the test instead of hanging it


def expected_request(port: int, body: bytes) -> bytes:
    return (
        b"POST /v1/edocs HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Road-Client: VN/GOV/000.00.00.H40/edoc\r\n"
        b"X-Api-Key: key\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n%b"
    ) % (port, len(body), body)


async def echo_created(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        _, body = await read_request(reader)
        writer.write(answer(body, status=CREATED))


async def sends_exact_bytes() -> None:
    # Given a server recording each request's bytes and whatever follows the last one
    received: list[bytes] = []
    leftovers: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head, body = await read_request(reader)
            except asyncio.IncompleteReadError as end:
                leftovers.append(end.partial)
                return
            received.append(head + body)
            writer.write(answer(b'{"id": "x"}', status=CREATED))

    bodies = [b"<edXML/>", b"\x00" * (1024 * 1024)]
    async with serving(record) as server:
        # When a small body and a 1 MB one are posted on one connection
        answers = await post_all(server.url(""), "/v1/edocs", HEADERS, bodies, concurrency=1, timeout=TIMEOUT)
        await eventually(lambda: bool(leftovers), what="the end of the connection")
    # Then the server got exactly the pre-built head and each body, and nothing else
    assert received == [expected_request(server.port, body) for body in bodies]
    assert leftovers == [b""]
    assert server.connections == 1
    assert [(a.status, a.body, a.error) for a in answers] == [(201, b'{"id": "x"}', "")] * 2


async def test_post_all_sends_the_head_and_each_body_exactly() -> None:
    await sends_exact_bytes()


def test_post_all_sends_the_head_and_each_body_exactly_on_uvloop() -> None:
    # The benchmark runs the client on uvloop, whose transports differ from asyncio's
    uvloop.run(sends_exact_bytes())


async def test_submit_all_reads_ids_from_201_and_records_other_answers_as_refusals() -> None:
    # Given a hub accepting the "good" packages and refusing the others with a long body
    async def judge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, body = await read_request(reader)
            if body.startswith(b"good"):
                writer.write(answer(json.dumps({"id": f"hub-{body.decode()}"}).encode(), status=CREATED))
            else:
                writer.write(answer(b"E" * 300, status=b"400 Bad Request"))

    packages = [(b"good-1", False), (b"bad", False), (b"good-2", True)]
    started = time.time()
    async with serving(judge) as server:
        # When the bench submits them
        seconds, submitted, failures = await submit_all(server.url(""), packages, 2)
    # Then the accepted ones are keyed by the hub's id with their submit time; the refusal is
    # "STATUS first 200 bytes of the body"
    assert sorted(submitted) == ["hub-good-1", "hub-good-2"]
    assert all(started <= at <= time.time() for at in submitted.values())
    assert failures == ["400 " + "E" * 200]
    assert seconds > 0


async def test_submit_all_reports_every_package_when_nothing_listens() -> None:
    # Given a port nobody listens on
    with socket_closed_port() as port:
        # When packages are submitted to it
        _, submitted, failures = await submit_all(
            f"http://127.0.0.1:{port}", [(b"a", False), (b"b", False)], 4
        )
    # Then none is accepted and each is a refusal saying why
    assert submitted == {}
    assert len(failures) == 2
    assert all(f.startswith("no answer: cannot connect: ConnectionRefusedError") for f in failures)


async def test_post_all_reads_a_chunked_answer() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b'HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"id"\r\n6\r\n: "x"}\r\n0\r\n\r\n'
        )
        await read_request(reader)

    async with serving(chunked) as server:
        answers = await post_all(server.url(""), "/v1/edocs", HEADERS, [b"a"], concurrency=1, timeout=TIMEOUT)
    assert [(a.status, a.body) for a in answers] == [(201, b'{"id": "x"}')]


@pytest.mark.parametrize("announced", [False, True], ids=["closed-silently", "connection-close"])
async def test_post_all_replaces_keep_alive_connections_the_server_closes(announced: bool) -> None:
    # Given a server answering one request per connection, then closing it (silently, or announcing
    # it with "Connection: close" and waiting for the client to close its side)
    after_close: list[bytes] = []

    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        writer.write(answer(body, status=CREATED, extra=b"connection: close\r\n" if announced else b""))
        if announced:
            after_close.append(await reader.read())

    bodies = [b"%d" % n for n in range(20)]
    async with serving(one_per_connection) as server:
        # When 20 bodies are posted 3 at a time
        answers = await post_all(server.url(""), "/v1/edocs", HEADERS, bodies, concurrency=3, timeout=TIMEOUT)
        if announced:
            await eventually(lambda: len(after_close) == 20, what="the client closing its side")
    # Then every body got its own answer: no package lost
    assert [(a.status, a.body, a.error) for a in answers] == [(201, body, "") for body in bodies]
    assert server.connections >= 20
    # and a connection announced closed carried nothing more and was closed by the client
    assert after_close == ([b""] * 20 if announced else [])


async def test_post_all_resends_once_what_a_reused_connection_lost_unanswered() -> None:
    # Given a server answering the first request of a connection and closing it on the second, unanswered
    # (an idle keep-alive connection closed just as the next request went out)
    seen: list[bytes] = []

    async def answer_one_drop_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        seen.append(body)
        writer.write(answer(body, status=CREATED))
        _, body = await read_request(reader)
        seen.append(body)

    bodies = [b"%d" % n for n in range(5)]
    async with serving(answer_one_drop_one) as server:
        # When bodies are posted one at a time
        answers = await post_all(server.url(""), "/v1/edocs", HEADERS, bodies, concurrency=1, timeout=TIMEOUT)
    # Then each lost request was sent again on a new connection and answered there
    assert [(a.status, a.body) for a in answers] == [(201, body) for body in bodies]
    assert seen == [b"0", b"1", b"1", b"2", b"2", b"3", b"3", b"4", b"4"]
    assert server.connections == 5


async def test_post_all_reports_a_request_lost_twice_and_never_resends_from_a_fresh_connection() -> None:
    # Given a server that answers only the very first request and closes every connection on the next
    seen: list[bytes] = []

    async def answer_only_the_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, body = await read_request(reader)
            seen.append(body)
            if len(seen) > 1:
                return
            writer.write(answer(body, status=CREATED))

    async with serving(answer_only_the_first) as server:
        # When three bodies are posted one at a time
        answers = await post_all(
            server.url(""), "/v1/edocs", HEADERS, [b"a", b"b", b"c"], concurrency=1, timeout=TIMEOUT
        )
    # Then "b", lost on the reused connection, was sent once more and reported when lost again; "c", lost
    # on a fresh connection, was sent once and reported
    assert seen == [b"a", b"b", b"b", b"c"]
    assert answers[0].status == 201
    for lost in answers[1:]:
        assert lost.status == 0 and lost.body == b""
        assert lost.error.startswith(("connection closed by the server", "connection lost:"))
    assert server.connections == 3


async def test_post_all_gives_up_on_a_request_unanswered_within_the_timeout() -> None:
    # Given a server that never answers the body "hang"
    async def hang_on_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, body = await read_request(reader)
            if body == b"hang":
                await asyncio.sleep(3600)
            writer.write(answer(body, status=CREATED))

    async with serving(hang_on_request) as server:
        # When it is posted with a short timeout, then another body
        started = time.monotonic()
        answers = await asyncio.wait_for(
            post_all(server.url(""), "/v1/edocs", HEADERS, [b"hang", b"next"], concurrency=1, timeout=0.3), 5
        )
    # Then the bench does not hang: the first is reported, the second answered on a new connection
    assert time.monotonic() - started < 3
    assert (answers[0].status, answers[0].error) == (0, "no answer within 0.3 s")
    assert (answers[1].status, answers[1].body) == (201, b"next")
    assert server.connections == 2


async def test_post_all_reports_an_unparsable_answer_and_goes_on() -> None:
    # Given a server answering its first request with something that is not HTTP
    async def garbage_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        if server.connections == 1:
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            await reader.read()
            return
        writer.write(answer(body, status=CREATED))

    async with serving(garbage_first) as server:
        answers = await post_all(
            server.url(""), "/v1/edocs", HEADERS, [b"a", b"b"], concurrency=1, timeout=TIMEOUT
        )
    # Then the first is reported as such, and the second is answered on a new connection
    assert answers[0].status == 0 and answers[0].error.startswith("unparsable answer")
    assert (answers[1].status, answers[1].body) == (201, b"b")


async def test_post_all_with_no_bodies_opens_no_connection() -> None:
    # The bench submits an empty list when no package has an attachment
    async with serving(echo_created) as server:
        assert await post_all(server.url(""), "/v1/edocs", HEADERS, [], concurrency=32, timeout=TIMEOUT) == []
    assert server.connections == 0


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("https://127.0.0.1:1", HEADERS),
        ("http://127.0.0.1:1", {**HEADERS, "X-Api-Key": "key\r\nX-Injected: 1"}),
    ],
    ids=["not-http", "line-break-in-header"],
)
async def test_post_all_refuses_what_it_cannot_send(url: str, headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        await post_all(url, "/v1/edocs", headers, [b"a"], concurrency=1, timeout=TIMEOUT)
