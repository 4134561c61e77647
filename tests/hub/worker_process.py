"""A worker process whose connector hangs: the test kills it with SIGKILL mid-message.

Usage: python -m tests.hub.worker_process '<config json>'
"""

import asyncio
import json
import sys
from typing import Any, ClassVar

from hub.connector import Connector, ConnectorContext, ConnectorReply, ConnectorRequest, Operation
from hub.registry import ConnectorRegistry
from hub.runtime import Hub
from hub.settings import load_settings


class Hang(Connector):
    name: ClassVar[str] = "scripted"
    operations: ClassVar[dict[str, Operation]] = {"run": Operation("run")}

    @classmethod
    def create(cls, settings: Any, context: ConnectorContext) -> "Hang":
        return cls()

    async def call(self, request: ConnectorRequest) -> ConnectorReply:
        print(f"ENTERED {request.message_id}", flush=True)
        await asyncio.sleep(3600)
        return ConnectorReply()


async def main(config: dict[str, Any]) -> None:
    hub = Hub.create(load_settings(data=config, environ={}), registry=ConnectorRegistry([Hang]))
    await hub.start(migrate=False)
    await hub.start_workers()
    print("READY", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
