"""Document exchange: signed edXML packages in, one delivery per recipient out, on RabbitMQ + PostgreSQL.

1,000 signed packages of about 20 KB, 10 % of them also carrying a 1 MB attachment, each to 3 pull
recipients, are POSTed to ``/v1/edocs``, ``--concurrency`` (32) at a time: first the 20 KB ones, then
those with the attachment. The hub runs as in production: the gateway (it parses, validates,
verifies and stores) as ``lgsp serve --processes N`` (``--gateway-processes``, default 2: one per core
of the 2-core development machine; 1 for a single event loop), and one worker process (it settles
deliveries into the inboxes); the table's first lines name the layout. Measured: packages accepted per second with signatures verified (the
20 KB ones alone, those with an attachment alone, and all), deliveries per second (first submit to
last delivery in an inbox), submit-to-inbox latency per delivery (p50, p99), the CPU time each hub
process and the load generator spent per package, how busy the whole machine was, and the hub
processes' RSS before and after (and the peak). Falls back to the embedded broker
and SQLite in one process when RabbitMQ or PostgreSQL is absent. The LAST line is
``RATE edocs-accepted/s <value>`` (all packages).

    python bench/edocs.py            # the full run (about a minute)
    python bench/edocs.py --quick    # a seconds-long smoke run with a few packages (CI)
"""

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

# `python bench/edocs.py` puts bench/ first on sys.path, where bench/mappings.py would shadow the
# mappings package: drop it.
sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

from bench._common import delete_namespace, free_port, port_open, process_cpu_seconds, stop  # noqa: E402

RABBIT = os.environ.get("LGSP_BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
POSTGRES_ADMIN = os.environ.get("LGSP_BENCH_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
SENDER = "000.00.00.H40"
RECIPIENTS = ("H40.12", "H40.13", "H40.14")
CLIENT = f"VN/GOV/{SENDER}/edoc"
KEY = "bench-key"


# ---- the hub processes -------------------------------------------------------------------------------


def run_hub(config_path: str, port: int, role: str) -> None:
    import uvloop

    from hub.registry import ConnectorRegistry
    from hub.runtime import Hub
    from hub.serving import AppServer
    from hub.settings import load_settings

    config = json.loads(Path(config_path).read_text())

    async def main() -> None:
        hub = Hub.create(load_settings(data=config, environ={}), registry=ConnectorRegistry([]))
        await hub.start(migrate=role != "worker")
        await hub.start_extensions(workers=role in ("worker", "all"))
        server = None
        if role in ("gateway", "all"):
            server = await AppServer(hub.gateway_app(), port=port, http="httptools").start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print("READY", flush=True)
        await stop.wait()
        if server is not None:
            await server.stop()
        await hub.stop(timeout=5)

    uvloop.run(main())


def spawn(*args: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(b"READY"):
        process.kill()
        raise RuntimeError(f"hub process {args} did not start")
    return process


def spawn_gateway(config_path: Path, port: int, processes: int) -> tuple[subprocess.Popen[bytes], list[int]]:
    """``lgsp serve --processes N`` (the production command), and the ids of the processes that serve."""
    command = [
        "serve",
        "-c",
        str(config_path),
        "--port",
        str(port),
        "--no-workers",
        "--processes",
        str(processes),
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if b"gateway listening on" not in line:
        process.kill()
        raise RuntimeError(f"lgsp serve --processes {processes} did not start: {line!r}")
    if processes == 1:
        return process, [process.pid]
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return process, [int(pid) for pid in children]


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) // 1024
    return values


def total_memory(pids: list[int]) -> dict[str, int]:
    """VmRSS summed over processes, and the largest VmHWM (peak) among them, in MiB."""
    each = [memory(pid) for pid in pids]
    return {"VmRSS": sum(m["VmRSS"] for m in each), "VmHWM": max(m["VmHWM"] for m in each)}


SERVICES = {"PostgreSQL": ("postgres",), "RabbitMQ": ("beam.smp", "erl_child_setup", "epmd")}


def service_cpu() -> dict[str, float]:
    """CPU seconds so far of the local PostgreSQL and RabbitMQ processes (by command name), each summed."""
    totals = dict.fromkeys(SERVICES, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        for service, names in SERVICES.items():
            if name.startswith(names):
                totals[service] += process_cpu_seconds(int(entry.name))
    return totals


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# ---- the packages ------------------------------------------------------------------------------------


def make_packages(
    workdir: Path, count: int, attachment_every: int, attachment_bytes: int
) -> tuple[list[tuple[bytes, bool]], Path, Path]:
    from cryptography.hazmat.primitives.serialization import Encoding

    from hub.edocs.edxml import (
        Attachment,
        Organization,
        PackageHeader,
        build_package,
        document_id,
        sign_package,
    )
    from signing.pki import issue_certificate, make_ca, make_crl

    ca = make_ca()
    (workdir / "ca.pem").write_bytes(ca.certificate.public_bytes(Encoding.PEM))
    (workdir / "crl.pem").write_bytes(make_crl(ca).public_bytes(Encoding.PEM))
    signer = issue_certificate(ca, f"VN/GOV/{SENDER}")
    content = ("Ủy ban nhân dân tỉnh đề nghị các sở, ban, ngành triển khai trục liên thông văn bản. " * 220)[
        :14_000
    ]
    run = uuid.uuid4().hex[:6]
    blob = os.urandom(attachment_bytes)
    packages = []
    for n in range(count):
        header = PackageHeader(
            sender=Organization(SENDER, organ_name="UBND tỉnh"),
            recipients=tuple(Organization(r) for r in RECIPIENTS),
            document_id=document_id(SENDER, date(2024, 5, 2), f"{run}{n}", "UBND-VP"),
            subject=f"Về việc triển khai trục liên thông văn bản (số {n})",
            content=content,
            code_number=str(n),
            code_notation="UBND-VP",
            promulgation_date="2024/05/02",
        )
        heavy = attachment_every > 0 and n % attachment_every == attachment_every - 1
        attachments = [Attachment("cid:1", "phu-luc.pdf", "application/pdf", blob)] if heavy else []
        data = sign_package(build_package(header, attachments), signer.key, [signer.certificate])
        packages.append((data, heavy))
    return packages, workdir / "ca.pem", workdir / "crl.pem"


def drop_broker_namespace(config: dict[str, Any]) -> None:
    """Delete the run's queues and exchanges from RabbitMQ (each run has a namespace of its own)."""
    from hub.registry import ConnectorRegistry
    from hub.runtime import Hub
    from hub.settings import load_settings

    hub = Hub.create(load_settings(data=config, environ={}), registry=ConnectorRegistry([]))
    delete_namespace(config["broker"]["url"], hub, config["broker"]["namespace"])


def hub_config(broker_url: str, store_url: str, ca: Path, crl: Path) -> dict[str, Any]:
    members = {f"VN/GOV/{o}/edoc": {"api_keys": [f"{KEY}-{o}"]} for o in (SENDER, *RECIPIENTS)}
    return {
        "broker": {"url": broker_url, "namespace": f"bench{uuid.uuid4().hex[:8]}", "prefetch": 128},
        "store": {"url": store_url},
        "log_level": "warning",
        "members": members,
        "edocs": {
            "enabled": True,
            "members": {m: {} for m in members},
            "agencies": {o: {"name": o} for o in (SENDER, *RECIPIENTS)},
            "trust": {"anchors": [str(ca)], "crls": [str(crl)]},
            "prefetch": 256,
            "outbox_interval": 5.0,
            "outbox_grace": 60.0,
        },
    }


# ---- the store ---------------------------------------------------------------------------------------


async def _admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def delivery_times(store_url: str) -> list[tuple[str, datetime | None]]:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from hub.edocs import tables

    engine = create_async_engine(store_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                sa.select(tables.deliveries.c.document, tables.deliveries.c.available_at)
            )
            return [
                (
                    r.document,
                    r.available_at.replace(tzinfo=UTC)
                    if r.available_at and r.available_at.tzinfo is None
                    else r.available_at,
                )
                for r in rows
            ]
    finally:
        await engine.dispose()


# ---- the load ----------------------------------------------------------------------------------------


async def submit_all(
    url: str, packages: list[tuple[bytes, bool]], concurrency: int
) -> tuple[float, dict[str, float], list[str]]:
    """POST every package, ``concurrency`` at a time, on one keep-alive connection each: the seconds it
    took, the submit time of each accepted package by its hub id, and the refusals ("STATUS body").

    On bench/_load_client.py (request head built once, one write per request, httptools, on uvloop),
    because the load client shares the two cores with the hub it measures: aiohttp's client cost
    0.29-0.35 ms of CPU per 20 KB package here (about 7 % of the machine's CPU per package), this one
    0.07-0.09 ms (3,000-package runs). A request unanswered within 120 s, or lost with its connection,
    counts as a refusal ("no answer: ...").
    """
    from bench._load_client import post_all

    headers = {"X-Road-Client": CLIENT, "X-Api-Key": f"{KEY}-{SENDER}", "Content-Type": "application/xml"}
    started = time.perf_counter()
    answers = await post_all(url, "/v1/edocs", headers, [data for data, _ in packages], concurrency, 120)
    elapsed = time.perf_counter() - started
    submitted: dict[str, float] = {}
    failures: list[str] = []
    for answer in answers:
        if answer.status == 201:
            submitted[json.loads(answer.body)["id"]] = answer.sent_at
        elif answer.status:
            failures.append(f"{answer.status} {answer.body[:200].decode(errors='replace')}")
        else:
            failures.append(f"no answer: {answer.error}")
    return elapsed, submitted, failures


async def wait_delivered(store_url: str, expected: int, timeout: float) -> list[tuple[str, datetime | None]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = await delivery_times(store_url)
        if sum(1 for _, at in rows if at is not None) >= expected or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.25)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run with a few packages")
    parser.add_argument("--packages", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=32, help="submissions in flight")
    parser.add_argument(
        "--attachment-every", type=int, default=10, help="every Nth package has an attachment"
    )
    parser.add_argument("--attachment-bytes", type=int, default=1024 * 1024)
    parser.add_argument(
        "--gateway-processes",
        type=int,
        default=2,
        help="lgsp serve --processes N: gateway processes sharing the listening socket (one per core)",
    )
    parser.add_argument("--serve", nargs=3, metavar=("CONFIG", "PORT", "ROLE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        run_hub(args.serve[0], int(args.serve[1]), args.serve[2])
        return 0
    import uvloop

    count = args.packages or (30 if args.quick else 1000)

    workdir = Path(tempfile.mkdtemp(prefix="lgsp-bench-edocs-"))
    prepared = time.perf_counter()
    packages, ca, crl = make_packages(workdir, count, args.attachment_every, args.attachment_bytes)
    prepared = time.perf_counter() - prepared
    warm, rest = packages[:3], packages[3:]
    light = [p for p in rest if not p[1]]
    heavy = [p for p in rest if p[1]]

    real = port_open(5672) and port_open(5432)
    database = f"lgsp_bench_{uuid.uuid4().hex[:10]}"
    if real:
        asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
        broker_url, store_url = RABBIT, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
    else:
        print("RabbitMQ or PostgreSQL unreachable: embedded broker and SQLite, one process", file=sys.stderr)
        broker_url, store_url = "embedded://", f"sqlite+aiosqlite:///{workdir / 'bench.sqlite3'}"
    config = hub_config(broker_url, store_url, ca, crl)
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    port = free_port()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    # What each row measures: a name and the processes it sums (a gateway group's serving processes).
    measured: dict[str, list[int]] = {}
    layout = "one process (embedded)"
    try:
        if real:
            processes["gateway"], measured["gateway"] = spawn_gateway(
                config_path, port, args.gateway_processes
            )
            processes["worker"] = spawn("--serve", str(config_path), str(port), "worker")
            measured["worker"] = [processes["worker"].pid]
            layout = f"gateway: lgsp serve --processes {args.gateway_processes}; worker: 1 process"
        else:
            processes["hub"] = spawn("--serve", str(config_path), str(port), "all")
            measured["hub"] = [processes["hub"].pid]
        url = f"http://127.0.0.1:{port}"
        # Warm-up: three packages not counted (connections, caches, first-call costs).
        uvloop.run(submit_all(url, warm, 3))
        before = {name: total_memory(pids) for name, pids in measured.items()}
        cpu_before = {name: sum(map(process_cpu_seconds, pids)) for name, pids in measured.items()}
        machine_before = machine_busy()
        services_before = service_cpu()
        client_before = time.process_time()
        first_submit = time.time()
        light_seconds, light_ids, light_failures = uvloop.run(submit_all(url, light, args.concurrency))
        heavy_seconds, heavy_ids, heavy_failures = uvloop.run(submit_all(url, heavy, args.concurrency))
        client_cpu = time.process_time() - client_before
        submitted = {**light_ids, **heavy_ids}
        expected = len(submitted) * len(RECIPIENTS)
        rows = asyncio.run(
            wait_delivered(store_url, expected + 3 * len(RECIPIENTS), 120 if not args.quick else 60)
        )
        after = {name: total_memory(pids) for name, pids in measured.items()}
        cpu = {
            name: sum(map(process_cpu_seconds, pids)) - cpu_before[name] for name, pids in measured.items()
        }
        machine_after = machine_busy()
        services = {k: v - services_before[k] for k, v in service_cpu().items()}
    finally:
        for process in processes.values():
            stop(process, 20)
        if real:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            drop_broker_namespace(config)

    failures = light_failures + heavy_failures
    delivered = [(doc, at) for doc, at in rows if doc in submitted and at is not None]
    latencies = [at.timestamp() - submitted[doc] for doc, at in delivered if at is not None]
    last = max((at.timestamp() for _, at in delivered if at is not None), default=first_submit)
    total_seconds = light_seconds + heavy_seconds
    accepted_rate = len(submitted) / total_seconds if total_seconds else 0.0
    print(
        f"{len(rest)} signed packages ({len(light)} of ~{len(light[0][0]) // 1024 if light else 0} KB, {len(heavy)} with a "
        f"{args.attachment_bytes // 1024} KB attachment), {len(RECIPIENTS)} pull recipients each, "
        f"{args.concurrency} in flight; broker {broker_url.split('@')[-1]}, store {store_url.split('@')[-1].split('/')[0] if real else 'sqlite'}"
    )
    print(f"(signing them took {prepared:.1f} s before the run; not counted)")
    print(f"layout: {layout}")
    header = f"{'measure':<52} {'value':>14}"
    print(header)
    print("-" * len(header))
    rows_out = [
        (
            "accepted/s, 20 KB packages (signature verified)",
            f"{len(light_ids) / light_seconds:,.1f}" if light_seconds else "n/a",
        ),
        (
            "accepted/s, packages with the attachment",
            f"{len(heavy_ids) / heavy_seconds:,.1f}" if heavy_seconds else "n/a",
        ),
        ("accepted/s, all packages", f"{accepted_rate:,.1f}"),
        (
            "deliveries/s (first submit to last in inbox)",
            f"{len(delivered) / max(last - first_submit, 1e-9):,.1f}",
        ),
        ("deliveries in inboxes / expected", f"{len(delivered)} / {expected}"),
        ("submit-to-inbox p50 ms", f"{percentile(latencies, 0.50) * 1000:,.1f}"),
        ("submit-to-inbox p99 ms", f"{percentile(latencies, 0.99) * 1000:,.1f}"),
        ("refused submissions", str(len(failures))),
    ]
    for name, pids in measured.items():
        label = f"{name} ({len(pids)} processes)" if len(pids) > 1 else name
        rows_out.append((f"{label}: CPU s / package", f"{cpu[name] / max(len(submitted), 1) * 1000:,.2f} ms"))
        rows_out.append(
            (f"{label}: RSS before -> after MiB", f"{before[name]['VmRSS']} -> {after[name]['VmRSS']}")
        )
        rows_out.append((f"{label}: peak RSS MiB (largest)", str(after[name]["VmHWM"])))
    busy = (machine_after[0] - machine_before[0]) / max(machine_after[1] - machine_before[1], 1)
    rows_out.append(("load client: CPU / package", f"{client_cpu / max(len(submitted), 1) * 1000:,.2f} ms"))
    if real:
        for service, seconds in services.items():
            rows_out.append(
                (f"{service} (local): CPU / package", f"{seconds / max(len(submitted), 1) * 1000:,.2f} ms")
            )
    rows_out.append((f"machine CPU busy ({os.cpu_count()} cores, all processes)", f"{busy:.0%}"))
    gateway = (processes.get("gateway") and cpu.get("gateway")) or cpu.get("hub", 0.0)
    if gateway:
        rows_out.append(("gateway ceiling per free core, pkg/s", f"{len(submitted) / gateway:,.0f}"))
    for label, value in rows_out:
        print(f"{label:<52} {value:>14}")
    if failures:
        print(f"first refusal: {failures[0]}", file=sys.stderr)
    print(f"RATE edocs-accepted/s {accepted_rate:.1f}")
    return 0 if not failures and len(delivered) == expected else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
