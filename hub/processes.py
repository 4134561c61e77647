"""Several copies of one server in forked processes, supervised (``lgsp serve --processes N``).

A gateway keeps no state outside the broker and the store, so N gateway processes can serve one port,
each with its own event loop, broker connection, store pool and listening socket (SO_REUSEPORT, from
``hub.serving.listen``): the kernel spreads new connections among them. The parent only supervises: it forwards
SIGINT/SIGTERM, replaces a process that died, and gives up (stopping the others) when processes keep
dying right after they start, so a broken configuration does not restart forever.
"""

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger(__name__)

Target = Callable[[int, Callable[[], None]], None]
"""What each process runs: ``target(index, ready)``; it calls ``ready()`` once it serves, and returns
when it has stopped (after SIGTERM)."""


def _child(target: Target, index: int, ready: Connection) -> None:
    # The parent's handlers (and its ignored signals) are not the child's.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    target(index, lambda: ready.send(index))  # a few bytes: one atomic write to the shared pipe


class ProcessGroup:
    """Runs ``count`` forked copies of ``target`` until SIGINT/SIGTERM (fork before any event loop runs).

    ``quick_death``: a process exiting sooner than this after its start counts towards ``max_quick_deaths``
    in a row, after which the group stops (exit status 1).
    """

    def __init__(
        self,
        target: Target,
        count: int,
        *,
        name: str = "lgsp",
        quick_death: float = 10.0,
        max_quick_deaths: int = 3,
        stop_timeout: float = 30.0,
    ) -> None:
        if count < 1:
            raise ValueError(f"a process group needs at least one process, not {count}")
        self._target = target
        self._count = count
        self._name = name
        self._quick_death = quick_death
        self._max_quick_deaths = max_quick_deaths
        self._stop_timeout = stop_timeout
        self._context = multiprocessing.get_context("fork")  # the target need not be picklable
        self._ready, self._ready_writer = self._context.Pipe(duplex=False)
        self._processes: dict[int, tuple[BaseProcess, float]] = {}
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        """The ids of the processes running now."""
        return [p.pid for p, _ in self._processes.values() if p.pid is not None]

    def _start(self, index: int) -> None:
        process = self._context.Process(
            target=_child, args=(self._target, index, self._ready_writer), name=f"{self._name}-{index}"
        )
        process.start()
        self._processes[index] = (process, time.monotonic())

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def run(self, on_ready: Callable[[list[int]], None] | None = None) -> int:
        """Start the processes, call ``on_ready(pids)`` once each is serving, supervise until a signal;
        returns the exit status (0 after a signal, 1 after repeated quick deaths)."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        status, quick_deaths, waiting = 0, 0, set(range(self._count))
        try:
            for index in range(self._count):
                self._start(index)
            while not self._stopping:
                sentinels = {p.sentinel: i for i, (p, _) in self._processes.items()}
                for ready in multiprocessing.connection.wait([*sentinels, self._ready], timeout=0.5):
                    if ready is self._ready:
                        waiting.discard(self._ready.recv())
                        if not waiting and on_ready is not None:
                            on_ready(self.pids)
                            on_ready = None
                        continue
                    index = sentinels[ready]  # type: ignore[index]
                    process, started = self._processes.pop(index)
                    process.join()
                    if self._stopping:
                        continue
                    quick = time.monotonic() - started < self._quick_death
                    quick_deaths = quick_deaths + 1 if quick else 0
                    log.warning(
                        "%s process %d (pid %s) exited with status %s",
                        self._name,
                        index,
                        process.pid,
                        process.exitcode,
                    )
                    if quick_deaths >= self._max_quick_deaths:
                        log.error("%s processes keep exiting at start-up; stopping", self._name)
                        status, self._stopping = 1, True
                        break
                    self._start(index)
        finally:
            self._stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return status

    def _stop(self) -> None:
        for process, _ in self._processes.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout
        for process, _ in self._processes.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        self._processes.clear()


__all__ = ["ProcessGroup", "Target"]
