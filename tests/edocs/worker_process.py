"""A document exchange worker in its own process; the test kills it with SIGKILL mid-push.

Usage: python -m tests.edocs.worker_process '<config json>'
"""

import asyncio
import json
import sys
from typing import Any

from hub.registry import ConnectorRegistry
from hub.runtime import Hub
from hub.settings import load_settings


async def main(config: dict[str, Any]) -> None:
    hub = Hub.create(load_settings(data=config, environ={}), registry=ConnectorRegistry([]))
    await hub.start(migrate=False)
    await hub.start_extensions(workers=True)
    print("READY", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
