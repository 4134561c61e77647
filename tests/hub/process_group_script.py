"""A process group for tests/hub/test_processes.py, run as its own interpreter: prints the port, then
supervises two processes, each listening on it (SO_REUSEPORT) as ``lgsp serve --processes`` does,
until SIGTERM.

``answer-once``: each process answers one connection with its pid, then stops accepting (so the next
connection goes to another process) and waits for SIGTERM. ``die``: each process exits at once.
"""

import os
import signal
import sys
from collections.abc import Callable

from hub.processes import ProcessGroup
from hub.serving import listen, reserve_port


def main() -> int:
    mode = sys.argv[1]
    reserved = reserve_port("127.0.0.1", 0)
    port = reserved.getsockname()[1]

    def answer_once(_: int, ready: Callable[[], None]) -> None:
        sock = listen("127.0.0.1", port, reuse_port=True)
        ready()
        connection, _address = sock.accept()
        sock.close()  # before answering: once the answer is read, the next connection goes elsewhere
        with connection:
            connection.sendall(str(os.getpid()).encode())
        signal.pause()

    def die(_: int, ready: Callable[[], None]) -> None:
        raise SystemExit(3)

    if mode == "die":
        print(port, flush=True)
        return ProcessGroup(die, 2, quick_death=30.0).run()
    # The port is printed once both processes listen.
    return ProcessGroup(answer_once, 2).run(on_ready=lambda _: print(port, flush=True))


if __name__ == "__main__":
    raise SystemExit(main())
