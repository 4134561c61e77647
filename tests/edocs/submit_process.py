"""Submit one package from a file to a hub in this process and print the peak RSS it took, as JSON.

    python -m tests.edocs.submit_process PKI_DIR WARM_UP PACKAGE STORE_DIR

The hub runs with the embedded broker and a SQLite store, without workers; the small WARM_UP package is
submitted first so that imports, caches and connections are warm. The body streams from the file in 64 KiB pieces,
so the client holds none of it. Peak RSS (VmHWM) is reset just before the submission.
"""

import asyncio
import gc
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

from tests.edocs.harness import SENDER, Pki, edocs_config, headers, running_edocs

STATUS = Path("/proc/self/status")


def _kib(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


async def main(pki_dir: Path, warm_up: Path, package_path: Path, store_dir: Path) -> dict[str, Any]:
    pki = Pki(pki_dir, ca=cast(Any, None), members={}, rogue=cast(Any, None))  # only its CA and CRL files
    config = edocs_config(pki, broker_url="embedded://", store_url=f"sqlite+aiosqlite:///{store_dir}/s.db")
    size = package_path.stat().st_size

    async def body() -> AsyncIterator[bytes]:
        with package_path.open("rb") as file:
            while chunk := file.read(64 * 1024):
                yield chunk

    async with running_edocs(config, workers=False) as running:
        warm = await running.submit(warm_up.read_bytes())
        assert warm.status_code == 201, warm.text
        gc.collect()
        before = _kib("VmRSS")
        STATUS.with_name("clear_refs").write_text("5")  # VmHWM := VmRSS
        response = await running.http.post(
            "/v1/edocs",
            content=body(),
            headers=headers(SENDER, **{"Content-Type": "application/xml", "Content-Length": str(size)}),
            timeout=600,
        )
        peak = _kib("VmHWM")
    return {
        "status": response.status_code,
        "size": size,
        "rss_before_kib": before,
        "peak_kib": peak,
        "growth_per_byte": round((peak - before) * 1024 / size, 2),
    }


if __name__ == "__main__":
    result = asyncio.run(main(*(Path(argument) for argument in sys.argv[1:5])))
    print(json.dumps(result))
