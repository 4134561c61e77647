"""`lgsp serve --processes N`: N forked gateway processes on one port (SO_REUSEPORT), supervised.

The process groups run in a child interpreter (tests/hub/process_group_script.py), never by forking
the test runner itself."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from typer.testing import CliRunner

from hub.cli import EXIT_CONFIG, app
from hub.processes import ProcessGroup
from hub.serving import listen, serving
from tests.hub.test_cli import write_config

SCRIPT = Path(__file__).with_name("process_group_script.py")


def _start(mode: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), mode], stdout=subprocess.PIPE, text=True, cwd=SCRIPT.parents[2]
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def _pid_at(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        return int(connection.recv(64))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"


def test_process_group_processes_serve_one_port_and_stop_on_sigterm() -> None:
    # Given a group of two processes on one port, each answering one connection with its pid
    group, port = _start("answer-once")
    try:
        # When two connections are made
        pids = {_pid_at(port), _pid_at(port)}
        # Then two processes, children of the group, answered
        assert len(pids) == 2 and group.pid not in pids
        # And SIGTERM to the group stops it and every process in it
        group.send_signal(signal.SIGTERM)
        assert group.wait(30) == 0
        assert not any(_alive(pid) for pid in pids)
    finally:
        group.kill()


def test_process_group_replaces_a_process_that_died() -> None:
    # Given a group of two processes, each answering one connection with its pid
    group, port = _start("answer-once")
    try:
        first = _pid_at(port)
        # When one of them is killed
        os.kill(first, signal.SIGKILL)
        # Then a new process takes its place and answers
        deadline = time.monotonic() + 30
        seen = {first}
        while len(seen) < 3 and time.monotonic() < deadline:
            try:
                seen.add(_pid_at(port))
            except ConnectionRefusedError:  # the other one answered; its replacement is not listening yet
                time.sleep(0.05)
        assert len(seen) == 3
    finally:
        group.send_signal(signal.SIGTERM)
        group.wait(30)


def test_process_group_gives_up_when_processes_keep_dying_at_start() -> None:
    # Given processes that exit as soon as they start
    group, _ = _start("die")
    # When the group has replaced them a few times / Then it stops with a failure status
    assert group.wait(60) == 1


def test_process_group_needs_at_least_one_process() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ProcessGroup(lambda index, ready: None, 0)


async def test_app_server_accepts_on_a_socket_it_was_given() -> None:
    # Given a listening socket opened beforehand (as each process of a group does)
    async def pid(_: Request) -> PlainTextResponse:
        return PlainTextResponse(str(os.getpid()))

    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    # When an app server is started on it / Then it serves there
    async with serving(Starlette(routes=[Route("/", pid)]), sock=sock) as server:
        assert server.port == port
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/")
    assert response.text == str(os.getpid())


def test_cli_serve_processes_needs_a_shared_broker(tmp_path: Path) -> None:
    # Given the embedded broker (the default), which lives inside one process
    path = write_config(tmp_path / "c.yaml")
    # When several gateway processes are asked for / Then it is refused as a configuration error
    result = CliRunner().invoke(app, ["serve", "-c", str(path), "--processes", "2"])
    assert result.exit_code == EXIT_CONFIG
    assert "--processes above 1 needs broker.url amqp://" in result.output
