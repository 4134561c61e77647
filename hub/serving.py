"""Run ASGI apps under uvicorn inside the current asyncio program (gateway, sandboxes, demo backend)."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn

from hub.http_protocol import CoalescingHttpToolsProtocol


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _EmbeddedServer(uvicorn.Server):
    # Several servers share one loop here; the owning program handles signals, not uvicorn.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket listening on `host`:`port` (port 0: any free one).

    `reuse_port` (SO_REUSEPORT): several processes each listen on a socket of their own on the same
    port, and the kernel spreads new connections evenly among them (``lgsp serve --processes N``; one
    socket shared by all would give most connections to whichever process wakes first).
    """
    return socket.create_server((host, port), family=_family(host), backlog=2048, reuse_port=reuse_port)


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` with SO_REUSEPORT and not listening: it holds the port (and
    resolves port 0) for the processes' own `listen(..., reuse_port=True)` sockets, and takes no
    connection itself."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class AppServer:
    """A uvicorn server started as a task of the running loop; `url` is its base URL. With `sock` (from
    `listen`), it accepts connections on that socket."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
        **options: Any,
    ) -> None:
        self.app = app
        self._sock = sock
        if sock is not None:
            host, port = sock.getsockname()[:2]
        self.host = host
        self.port = port or free_port(host)
        options.setdefault("log_level", "warning")
        options.setdefault("access_log", False)
        options.setdefault("lifespan", "off")
        options.setdefault("server_header", False)  # no software banner for scanners
        if options.get("http", "httptools") in ("httptools", "auto"):
            options["http"] = CoalescingHttpToolsProtocol  # a response's head and body in one write
        self._server = _EmbeddedServer(uvicorn.Config(app, host=self.host, port=self.port, **options))
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, timeout: float = 10.0) -> "AppServer":
        sockets = [self._sock] if self._sock is not None else None
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=sockets))
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"server on {self.url} stopped during start-up")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"server on {self.url} did not start within {timeout} s")
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._task, 10)
        self._task = None


@contextlib.asynccontextmanager
async def serving(app: Any, **options: Any) -> AsyncIterator[AppServer]:
    server = await AppServer(app, **options).start()
    try:
        yield server
    finally:
        await server.stop()


__all__ = ["AppServer", "free_port", "listen", "reserve_port", "serving"]
