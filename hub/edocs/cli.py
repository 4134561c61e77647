"""Command groups of the document exchange, mounted by the hub's CLI as ``lgsp edocs`` and
``lgsp agencies``.

Exit codes as ``lgsp``: 0 success; 1 the command ran and something failed (no such dead delivery);
2 bad usage, configuration or input file; 3 broker or store unreachable.
"""

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from hub.broker import Broker, create_broker
from hub.edocs.delivery import DeliveryPublisher, EdocsTopology
from hub.edocs.directory import AgencyDirectory, import_agencies, parse_agencies_csv
from hub.edocs.errors import DirectoryError
from hub.edocs.repository import EdocsRepository
from hub.errors import BrokerError, ConfigError, StoreError
from hub.settings import Settings, load_settings
from hub.store import Store

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3

edocs_app = typer.Typer(
    name="edocs", help="Document exchange: dead-lettered deliveries.", no_args_is_help=True
)
agencies_app = typer.Typer(
    name="agencies", help="The agencies directory (organ codes, names, parents).", no_args_is_help=True
)
console = Console(width=max(Console().width, 140))
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML configuration (default: $LGSP_CONFIG, else ./lgsp.yaml if present)"
    ),
]


def _settings(path: Path | None) -> Settings:
    if path is None:
        env = os.environ.get("LGSP_CONFIG")
        path = Path(env) if env else (Path("lgsp.yaml") if Path("lgsp.yaml").exists() else None)
    try:
        return load_settings(path)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc


def _run(factory: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(factory())  # type: ignore[arg-type]
    except (ConfigError, DirectoryError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    except (BrokerError, StoreError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_UNREACHABLE) from exc


async def _store(settings: Settings) -> Store:
    store = Store.from_url(settings.store.url)
    await store.migrate()
    return store


async def drop_from_dlq(broker: Broker, queue: str, message_id: str) -> int:
    """Remove the copies of one message from a dead-letter queue, keeping the others in it."""
    kept = []
    dropped = 0
    for _ in range(await broker.message_count(queue)):
        delivery = await broker.get(queue)
        if delivery is None:
            break
        if delivery.message.message_id == message_id:
            await delivery.ack()
            dropped += 1
        else:
            kept.append(delivery)
    for delivery in kept:
        await delivery.nack(requeue=True)
    return dropped


@edocs_app.command("dlq")
def dlq(
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="rows to list")] = 100,
) -> None:
    """List dead-lettered deliveries (pushes that exhausted their retries, or were refused for good)."""
    settings = _settings(config)

    async def main() -> tuple[list[dict[str, Any]], dict[str, int]]:
        store = await _store(settings)
        try:
            rows = await EdocsRepository(store.engine).dead(limit)
        finally:
            await store.close()
        counts: dict[str, int] = {}
        if not settings.broker.url.startswith("embedded:"):
            names = EdocsTopology(settings.broker.namespace, settings.edocs.push.retry_delays_ms)
            broker = create_broker(settings.broker.url)
            await broker.connect()
            try:
                await broker.declare(names.topology())
                for spec in (names.pull, names.push):
                    counts[spec.dlq_name] = await broker.message_count(spec.dlq_name)
            finally:
                await broker.close()
        return rows, counts

    rows, counts = _run(main)
    table = Table(title="dead-lettered deliveries")
    for column in ("id", "kind", "document", "recipient", "mode", "attempts", "dead at", "last error"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["kind"],
            row["document_id"],
            row["recipient"],
            row["mode"],
            str(row["attempts"]),
            str(row["dead_at"])[:19],
            (row["last_error"] or "")[:80],
        )
    console.print(table)
    for queue, count in counts.items():
        console.print(f"{queue}: {count} message(s)")
    console.print(
        f"{len(rows)} dead deliver{'y' if len(rows) == 1 else 'ies'}; replay one with: lgsp edocs retry ID"
    )


@edocs_app.command("retry")
def retry(
    delivery_id: Annotated[int, typer.Argument(help="the dead delivery's id (from lgsp edocs dlq)")],
    config: ConfigOption = None,
) -> None:
    """Replay one dead-lettered delivery: back to queued with fresh attempts, and sent again."""
    settings = _settings(config)

    async def main() -> str:
        store = await _store(settings)
        try:
            repository = EdocsRepository(store.engine)
            row = await repository.requeue_dead(delivery_id)
            if row is None:
                return "missing"
            if settings.broker.url.startswith("embedded:"):
                return "outbox"
            names = EdocsTopology(settings.broker.namespace, settings.edocs.push.retry_delays_ms)
            broker = create_broker(settings.broker.url)
            await broker.connect()
            try:
                await broker.declare(names.topology())
                await drop_from_dlq(broker, names.queue_for(row["mode"]).dlq_name, row["key"])
                publisher = DeliveryPublisher(broker, repository, names)
                await publisher.publish([row])
                await publisher.flush()
            finally:
                await broker.close()
            return "published"
        finally:
            await store.close()

    outcome = _run(main)
    if outcome == "missing":
        err.print(f"[red]error:[/red] delivery {delivery_id} is not dead-lettered (see lgsp edocs dlq)")
        raise typer.Exit(EXIT_FAILED)
    if outcome == "outbox":
        console.print(
            f"delivery {delivery_id} requeued; the running hub resends it within edocs.outbox_interval"
        )
    else:
        console.print(f"delivery {delivery_id} requeued and published")


@agencies_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="CSV with a header row: code,name,parent[,endpoint] (UTF-8)")],
    config: ConfigOption = None,
) -> None:
    """Import agencies (organ codes with names and parents) into the store; existing codes are updated."""
    settings = _settings(config)
    try:
        rows = parse_agencies_csv(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"[red]error:[/red] cannot read {file}: {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    except DirectoryError as exc:
        err.print(f"[red]error:[/red] {file}: {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc

    async def main() -> tuple[int, int]:
        store = await _store(settings)
        try:
            repository = EdocsRepository(store.engine)
            directory = AgencyDirectory(settings.edocs.agencies, repository)
            return await import_agencies(directory, repository, rows)
        finally:
            await store.close()

    inserted, updated = _run(main)
    console.print(f"{file}: {inserted} agencies added, {updated} updated")


@agencies_app.command("list")
def list_agencies(config: ConfigOption = None) -> None:
    """List the agencies directory (configured and imported)."""
    settings = _settings(config)

    async def main() -> list[Any]:
        store = await _store(settings)
        try:
            repository = EdocsRepository(store.engine)
            return await AgencyDirectory(settings.edocs.agencies, repository).all()
        finally:
            await store.close()

    table = Table(title="agencies")
    for column in ("code", "name", "parent", "delivery"):
        table.add_column(column)
    for agency in _run(main):
        table.add_row(agency.code, agency.name, agency.parent or "", agency.mode)
    console.print(table)


__all__ = ["agencies_app", "drop_from_dlq", "edocs_app"]
