"""The `lgsp` command line (typer + rich).

Exit codes: 0 success; 1 the command ran and something failed (a demo scenario, a check);
2 bad usage or invalid configuration; 3 a required service (broker, store) is unreachable.
"""

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from rich.console import Console
from rich.table import Table

from hub.errors import BrokerError, ConfigError, HubError, RegistryError, StoreError
from hub.settings import Settings, load_settings

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3

app = typer.Typer(
    name="lgsp",
    help="lgsp-hub: provincial integration hub (gateway, workers, sandboxes, signatures, mappings).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(width=max(Console().width, 140))
err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML configuration (default: $LGSP_CONFIG, else ./lgsp.yaml if present)"
    ),
]


def _config_path(path: Path | None) -> Path | None:
    if path is not None:
        return path
    env = os.environ.get("LGSP_CONFIG")
    if env:
        return Path(env)
    default = Path("lgsp.yaml")
    return default if default.exists() else None


def _settings(path: Path | None) -> Settings:
    try:
        return load_settings(_config_path(path))
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc


def _run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on uvloop (falling back to asyncio), mapping hub errors to exit codes."""
    try:
        import uvloop

        runner: Callable[[Awaitable[T]], T] = uvloop.run  # type: ignore[assignment]
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.run  # type: ignore[assignment]
    try:
        return runner(coro_factory())
    except (ConfigError, RegistryError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    except (BrokerError, StoreError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_UNREACHABLE) from exc


def _logging(settings: Settings | None = None, level: str | None = None) -> None:
    chosen = (level or (settings.log_level if settings else "info")).upper()
    logging.basicConfig(
        level=chosen, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("pika").setLevel(logging.WARNING)


def _settle_heap() -> None:
    # Everything allocated at start-up lives as long as the process: freeze it out of the
    # collector's scans, and collect the young generation less often (full collections paused a
    # busy gateway for ~125 ms; bench/query_overhead.py measured +30 % throughput with this).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="where to write the starter configuration")] = Path(
        "lgsp.yaml"
    ),
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a commented starter configuration."""
    if path.exists() and not force:
        err.print(f"[red]error:[/red] {path} exists; use --force to overwrite it")
        raise typer.Exit(EXIT_CONFIG)
    path.write_text(files("hub").joinpath("starter.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    console.print(f"wrote {path}; check it with: lgsp check-config -c {path}")


@app.command("check-config")
def check_config(config: ConfigOption = None) -> None:
    """Validate the configuration, the connector types it names and their settings."""
    settings = _settings(config)
    from hub.connector import ConnectorContext
    from hub.registry import ConnectorRegistry, operation_for

    async def check() -> None:
        registry = ConnectorRegistry.from_entry_points()
        for name, instance in settings.connectors.items():
            built = registry.build(name, instance, ConnectorContext(instance=name))
            await built.close()
        for service, service_settings in settings.service_ids().items():
            name = service_settings.connector
            operation = operation_for(service, service_settings.operation)
            registry.check_operation(name, settings.connectors[name], operation)

    _run(check)
    console.print(
        f"[green]ok[/green]: {len(settings.services)} services, {len(settings.connectors)} connectors, "
        f"{len(settings.members)} members, {len(settings.acl)} ACL entries"
    )


@app.command()
def services(config: ConfigOption = None) -> None:
    """List the services this hub offers, their connectors and who may call them."""
    settings = _settings(config)
    table = Table(title="services")
    for column in ("service", "connector", "type", "operation", "allowed clients"):
        table.add_column(column)
    from hub.registry import operation_for

    for service, service_settings in sorted(settings.service_ids().items()):
        allowed = sorted(e.client for e in settings.acl if "*" in e.services or str(service) in e.services)
        table.add_row(
            str(service),
            service_settings.connector,
            settings.connectors[service_settings.connector].type,
            operation_for(service, service_settings.operation),
            "\n".join(allowed) or "-",
        )
    console.print(table)


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="listen address (overrides gateway.host)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (overrides gateway.port)")] = None,
    workers: Annotated[
        bool | None,
        typer.Option("--workers/--no-workers", help="also run connector workers in this process"),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="gateway processes on the port, connections spread among them (one per core; above 1 needs RabbitMQ)",
        ),
    ] = 1,
) -> None:
    """Run the gateway (and, with the embedded broker, the workers) until SIGINT/SIGTERM."""
    settings = _settings(config)
    _logging(settings)
    from hub.runtime import Hub
    from hub.serving import AppServer, listen, reserve_port

    in_process = workers
    if in_process is None:
        in_process = settings.gateway.workers_in_process
    if in_process is None:
        in_process = settings.broker.url.startswith("embedded:")
    host = host or settings.gateway.host
    port = port if port is not None else settings.gateway.port

    async def main(sock: Any = None, ready: Callable[[], None] | None = None) -> None:
        hub = Hub.create(settings)
        await hub.start(migrate=sock is None)  # a process group migrates once, before it forks
        try:
            if in_process:
                await hub.start_workers()
            await hub.start_extensions(workers=in_process)
            server = AppServer(hub.gateway_app(), host=host, port=port, sock=sock)
            await server.start()
            _settle_heap()
            if ready is None:
                console.print(
                    f"gateway listening on {server.url} (broker {settings.broker.url.split('@')[-1]})"
                )
            else:
                ready()
            await _until_signalled()
            await server.stop()
        finally:
            await hub.stop()

    if processes == 1:
        _run(main)
        return
    if settings.broker.url.startswith("embedded:"):
        err.print(
            "[red]error:[/red] --processes above 1 needs broker.url amqp://...: the embedded broker lives inside one process"
        )
        raise typer.Exit(EXIT_CONFIG)
    from hub.processes import ProcessGroup

    _run(functools.partial(_migrate, settings))
    try:
        reserved = reserve_port(host, port)
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot listen on {host}:{port}: {exc}")
        raise typer.Exit(EXIT_UNREACHABLE) from exc
    bound = reserved.getsockname()[1]

    def gateway_process(_: int, ready: Callable[[], None]) -> None:
        sock = listen(host, bound, reuse_port=True)
        _run(lambda: main(sock, ready))

    group = ProcessGroup(gateway_process, processes, name="lgsp-gateway")
    status = group.run(
        on_ready=lambda pids: console.print(
            f"gateway listening on http://{host}:{bound} ({processes} processes, pids "
            f"{', '.join(map(str, pids))}; broker {settings.broker.url.split('@')[-1]})"
        )
    )
    reserved.close()
    if status:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def worker(
    config: ConfigOption = None,
    connector: Annotated[
        list[str] | None,
        typer.Option("--connector", help="connector instance to serve (repeatable; default all)"),
    ] = None,
    count: Annotated[int, typer.Option(min=1, max=64, help="consumers in this process")] = 1,
) -> None:
    """Run connector workers until SIGINT/SIGTERM; start as many processes, on as many machines, as needed."""
    settings = _settings(config)
    _logging(settings)
    if settings.broker.url.startswith("embedded:"):
        err.print(
            "[red]error:[/red] the embedded broker lives inside `lgsp serve`; set broker.url to amqp://... for separate workers"
        )
        raise typer.Exit(EXIT_CONFIG)
    from hub.runtime import Hub

    async def main() -> None:
        hub = Hub.create(settings)
        await hub.start()
        try:
            started = await hub.start_workers(connector or None, count=count)
            await hub.start_extensions(workers=True)
            _settle_heap()
            console.print(f"worker serving {', '.join(started[0].instances) if started else 'nothing'}")
            await _until_signalled()
        finally:
            await hub.stop()

    _run(main)


@app.command()
def maintenance(
    state: Annotated[str, typer.Argument(help="on | off | status")],
    config: ConfigOption = None,
) -> None:
    """Switch maintenance mode for every gateway sharing the store (healthz and requests answer 503)."""
    if state not in {"on", "off", "status"}:
        err.print(f"[red]error:[/red] state must be on, off or status, not {state!r}")
        raise typer.Exit(EXIT_CONFIG)
    settings = _settings(config)
    from hub.runtime import MAINTENANCE_FLAG
    from hub.store import Store

    async def main() -> str:
        store = Store.from_url(settings.store.url)
        try:
            await store.migrate()
            if state != "status":
                await store.set_flag(MAINTENANCE_FLAG, state)
            return (await store.get_flag(MAINTENANCE_FLAG)) or "off"
        finally:
            await store.close()

    console.print(f"maintenance: {_run(main)}")


@app.command("db-upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply the store's Alembic migrations up to the newest revision."""
    _run(functools.partial(_migrate, _settings(config)))
    console.print("store is at the newest revision")


async def _migrate(settings: Settings) -> None:
    from hub.store import Store

    store = Store.from_url(settings.store.url)
    try:
        await store.migrate()
    finally:
        await store.close()


@app.command()
def sandbox(
    name: Annotated[str, typer.Argument(help="sandbox to run, e.g. population_db, business_registry")],
    port: Annotated[int, typer.Option(help="listen port")] = 8081,
    host: Annotated[str, typer.Option(help="listen address")] = "127.0.0.1",
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML file of sandbox options")
    ] = None,
) -> None:
    """Run a national-system simulator as a real HTTP server."""
    points = {p.name: p for p in entry_points(group="lgsp_hub.sandboxes")}
    if name not in points:
        err.print(f"[red]error:[/red] no sandbox {name!r} (installed: {', '.join(sorted(points)) or 'none'})")
        raise typer.Exit(EXIT_CONFIG)
    options: dict[str, Any] = {}
    if config is not None:
        try:
            options = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            err.print(f"[red]error:[/red] cannot read sandbox options {config}: {exc}")
            raise typer.Exit(EXIT_CONFIG) from exc
        if not isinstance(options, dict):
            err.print(f"[red]error:[/red] {config} must hold a mapping of options")
            raise typer.Exit(EXIT_CONFIG)
    try:
        asgi = points[name].load()(**options)
    except (TypeError, ConfigError) as exc:
        err.print(f"[red]error:[/red] sandbox {name}: bad option ({exc})")
        raise typer.Exit(EXIT_CONFIG) from exc
    import uvicorn

    console.print(f"sandbox {name} on http://{host}:{port}")
    uvicorn.run(asgi, host=host, port=port, log_level="warning")


@app.command()
def demo(
    broker: Annotated[str | None, typer.Option(help="broker URL (default: embedded)")] = None,
    store: Annotated[str | None, typer.Option(help="store URL (default: a temporary SQLite file)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log what the hub does")] = False,
) -> None:
    """Start gateway + workers + broker + store + sandboxes in one process, run real scenarios, print a table."""
    _logging(level="info" if verbose else "error")
    from hub.demo import run_demo

    ok = _run(lambda: run_demo(console, broker_url=broker, store_url=store))
    raise typer.Exit(0 if ok else EXIT_FAILED)


def _mount_plugins() -> None:
    # The standalone libraries bring their own command groups; the hub only mounts them.
    from hub.edocs.cli import agencies_app, edocs_app
    from mappings.cli import app as mapping_app
    from signing.cli import app as signing_app

    app.add_typer(mapping_app, name="mapping", help="Validate, apply and test mapping specs.")
    app.add_typer(signing_app)
    app.add_typer(edocs_app, name="edocs", help="Document exchange: dead-lettered deliveries and replays.")
    app.add_typer(agencies_app, name="agencies", help="The agencies directory (organ codes).")


_mount_plugins()


def main() -> None:
    """Entry point of the `lgsp` console script."""
    try:
        app()
    except HubError as exc:  # pragma: no cover - commands translate their own errors
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
