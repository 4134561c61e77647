"""Every query of the document exchange, on SQLite and PostgreSQL alike.

Documents arriving together share one transaction. On PostgreSQL the hot statements take their rows
and ids as array parameters, so their SQL is the same whatever the number (prepared once per
connection, no IN list rendered per call): a batch of documents with their recipients and deliveries
is one statement, a set of delivery ids one ``= ANY(...)``.

Delivery state changes are single conditional UPDATEs, so a redelivered broker message, a second
worker or a replayed request finds the row already moved and does nothing twice.

Delivery states: queued -> available (pull) | sending -> delivered / retrying -> ... (push);
available/delivered -> acked; any -> dead (DLQ), dead -> queued (``lgsp edocs retry``).
"""

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.edocs import tables as t
from hub.errors import StoreError
from hub.store.unnest import Split, split_columns, unnest_parameters, unnest_rows

SETTLED = frozenset({"available", "delivered", "acked", "dead"})
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; they were written in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@contextlib.contextmanager
def _store_errors(what: str) -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot {what}: {type(exc).__name__}: {exc}") from exc


class DuplicateKey(Exception):
    """A unique key (document or status idempotency key) is already taken; ``response`` is the first
    answer when it is known."""

    def __init__(self, message: str, *, response: str | None = None) -> None:
        super().__init__(message)
        self.response = response


class _StateChanged(Exception):
    """A recipient's state changed between reading it and writing the transition."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of claiming a push delivery: 'claimed', 'settled', 'busy' or 'missing'."""

    outcome: str
    row: dict[str, Any] | None = None
    wait: float = 0.0


ChunkWriter = Callable[[AsyncConnection], Awaitable[None]]
_BATCH = 64


# Always arrays: a batch's rows are told apart, and its recipients and deliveries joined to its documents,
# by these.
_KEYED = {"edoc_documents": ("id",), "edoc_recipients": ("document",), "edoc_deliveries": ("document",)}


@functools.lru_cache(maxsize=64)
def _postgres_batch_insert(documents: Split, recipients: Split, deliveries: Split) -> sa.TextClause:
    # Documents with their recipients and deliveries (those columns of each, as arrays and scalars) in one
    # statement. A document whose key is taken is skipped with its recipients and deliveries; one row comes
    # back per delivery inserted, or one with a NULL delivery for a document without any.
    return sa.text(
        f"WITH fresh AS (INSERT INTO {t.documents.name} {unnest_rows(t.documents, *documents)}"
        " ON CONFLICT ON CONSTRAINT uq_edoc_documents_key DO NOTHING RETURNING id),"
        f" recipients AS (INSERT INTO {t.recipients.name} {unnest_rows(t.recipients, *recipients)}"
        " WHERE batch.document IN (SELECT id FROM fresh)),"
        f" deliveries AS (INSERT INTO {t.deliveries.name} {unnest_rows(t.deliveries, *deliveries)}"
        " WHERE batch.document IN (SELECT id FROM fresh) RETURNING id, key, document)"
        " SELECT fresh.id AS document, deliveries.id, deliveries.key"
        " FROM fresh LEFT JOIN deliveries ON deliveries.document = fresh.id"
    )


MakeAvailable = Callable[[Sequence[int]], Awaitable[dict[int, datetime]]]


def _moving_to_inbox(among: sa.ColumnElement[bool], now: Any) -> sa.UpdateBase:
    return (
        t.deliveries.update()
        .where(among, t.deliveries.c.state == "queued")
        .values(
            state="available",
            available_at=now,
            published_at=sa.func.coalesce(t.deliveries.c.published_at, now),
        )
        .returning(t.deliveries.c.id, t.deliveries.c.created_at)
    )


# Built once (PostgreSQL): the ids as one array parameter, the time as another.
_MAKE_AVAILABLE = _moving_to_inbox(
    t.deliveries.c.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Integer))),
    sa.bindparam("now", type_=t.deliveries.c.available_at.type),
)


class _HeldConnection:
    """A pooled connection kept from statement to statement, each statement its own transaction
    (autocommit): taken at the first, given back by `close` or after a failure (the next statement
    then takes a fresh one, pinged by the pool)."""

    def __init__(
        self, connect: Callable[[], contextlib.AbstractAsyncContextManager[AsyncConnection]]
    ) -> None:
        self._connect = connect
        self._stack: contextlib.AsyncExitStack | None = None
        self._connection: AsyncConnection | None = None

    async def execute(self, statement: sa.Executable, parameters: dict[str, Any]) -> sa.CursorResult[Any]:
        if self._connection is None:
            stack = contextlib.AsyncExitStack()
            connection = await stack.enter_async_context(self._connect())
            self._stack = stack
            self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        try:
            return await self._connection.execute(statement, parameters)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        stack, self._stack, self._connection = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(SQLAlchemyError, OSError):  # the pool discards what it cannot reset
                await stack.aclose()


@dataclass
class _Pending:
    """A document waiting for the next group commit."""

    document: dict[str, Any]
    recipients: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    refers: tuple[str, str] | None
    future: "asyncio.Future[list[dict[str, Any]]] | None" = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.document["sender"], self.document["document_id"], self.document["business_type"])

    def settle(self, outcome: list[dict[str, Any]] | Exception) -> None:
        if self.future is None or self.future.done():
            return
        if isinstance(outcome, Exception):
            self.future.set_exception(outcome)
        else:
            self.future.set_result(outcome)


class EdocsRepository:
    """The store side of the document exchange, over the hub's async engine.

    Connections are taken through a limiter sized below the engine's pool, so bursts queue here
    instead of opening (and then discarding) overflow connections.
    """

    def __init__(self, engine: AsyncEngine, *, connections: int | None = None) -> None:
        self.engine = engine
        size = connections or max(2, int(getattr(engine.pool, "size", lambda: 5)()) - 1)
        self._limit = asyncio.Semaphore(size)
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._postgres = engine.dialect.name == "postgresql"

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        async with self._limit, self.engine.connect() as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        async with self._limit, self.engine.begin() as connection:
            yield connection

    # ---- documents -----------------------------------------------------------------------------

    async def document_by_key(
        self, sender: str, document_id: str, business_type: int
    ) -> dict[str, Any] | None:
        query = sa.select(t.documents.c.id, t.documents.c.response).where(
            t.documents.c.sender == sender,
            t.documents.c.document_id == document_id,
            t.documents.c.business_type == business_type,
        )
        with _store_errors("read a document"):
            async with self._connect() as connection:
                row = (await connection.execute(query)).first()
        return dict(row._mapping) if row else None

    async def document(self, hub_id: str, *, with_skeleton: bool = False) -> dict[str, Any] | None:
        columns = [c for c in t.documents.c if with_skeleton or c.name != "skeleton"]
        with _store_errors("read a document"):
            async with self._connect() as connection:
                row = (
                    await connection.execute(sa.select(*columns).where(t.documents.c.id == hub_id))
                ).first()
        if row is None:
            return None
        found = dict(row._mapping)
        found["received_at"] = aware(found["received_at"])
        return found

    async def original_for(self, sender: str, document_id: str) -> dict[str, Any] | None:
        """The newest document of ``sender`` with that DocumentId (a new document first)."""
        query = (
            sa.select(t.documents.c.id, t.documents.c.state, t.documents.c.business_type)
            .where(t.documents.c.sender == sender, t.documents.c.document_id == document_id)
            .order_by(t.documents.c.business_type, t.documents.c.received_at.desc())
            .limit(1)
        )
        with _store_errors("read a document"):
            async with self._connect() as connection:
                row = (await connection.execute(query)).first()
        return dict(row._mapping) if row else None

    async def recipients_of(self, hub_id: str) -> list[dict[str, Any]]:
        query = (
            sa.select(t.recipients).where(t.recipients.c.document == hub_id).order_by(t.recipients.c.organ)
        )
        with _store_errors("read recipients"):
            async with self._connect() as connection:
                return [dict(r._mapping) for r in await connection.execute(query)]

    async def store_document(
        self,
        document: dict[str, Any],
        recipients: Sequence[dict[str, Any]],
        deliveries: Sequence[dict[str, Any]],
        *,
        attachments: ChunkWriter | None = None,
        refers: tuple[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Insert a document with its recipients, attachments and deliveries in one transaction; mark
        the document it refers to; return the deliveries with their ids. Documents without attachments
        that arrive together share a transaction (one commit, one WAL flush); each caller still
        returns only once its own document is committed.

        Raises:
            DuplicateKey: the (sender, DocumentId, business type) key is taken (with the first answer
                when it is known).
            StoreError: the store refused the write.
        """
        item = _Pending(document, list(recipients), list(deliveries), refers)
        if attachments is not None:
            return await self._store_one(item, attachments)
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        item.future = future
        self._pending.append(item)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_documents())
        return await future

    async def _store_one(
        self, item: "_Pending", attachments: ChunkWriter | None = None
    ) -> list[dict[str, Any]]:
        document = item.document
        try:
            async with self._begin() as connection:
                earlier = await connection.scalar(
                    sa.select(t.documents.c.response).where(
                        t.documents.c.sender == document["sender"],
                        t.documents.c.document_id == document["document_id"],
                        t.documents.c.business_type == document["business_type"],
                    )
                )
                if earlier is not None:
                    raise DuplicateKey(f"document {document['document_id']} exists", response=earlier)
                await connection.execute(t.documents.insert(), document)
                if attachments is not None:
                    await attachments(connection)
                ids = await self._insert_rest(connection, [item])
                await self._mark_referred(connection, [item])
        except IntegrityError as exc:
            raise DuplicateKey(str(exc)) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot store document {document['id']}: {exc}") from exc
        return [{**d, "id": ids[d["key"]]} for d in item.deliveries]

    @staticmethod
    async def _insert_rest(connection: AsyncConnection, items: Sequence["_Pending"]) -> dict[str, int]:
        await connection.execute(t.recipients.insert(), [r for i in items for r in i.recipients])
        rows = await connection.execute(
            t.deliveries.insert().returning(t.deliveries.c.id, t.deliveries.c.key),
            [d for i in items for d in i.deliveries],
        )
        return {r.key: r.id for r in rows}

    @staticmethod
    async def _mark_referred(connection: AsyncConnection, items: Sequence["_Pending"]) -> None:
        for item in items:
            if item.refers is not None:
                await connection.execute(
                    t.documents.update()
                    .where(t.documents.c.id == item.refers[0])
                    .values(state=item.refers[1])
                )

    async def _flush_documents(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # let documents already on their way join this batch
                batch, self._pending = self._pending[:_BATCH], self._pending[_BATCH:]
                await self._store_batch(batch)
        finally:
            self._flusher = None

    async def _store_batch(self, batch: list["_Pending"]) -> None:
        firsts: dict[tuple[str, str, int], _Pending] = {}
        repeats: list[_Pending] = []
        for item in batch:
            if firsts.setdefault(item.key, item) is not item:
                repeats.append(item)
        insert = self._insert_batch_postgres if self._postgres else self._insert_batch
        try:
            async with self._begin() as connection:
                ids, taken = await insert(connection, list(firsts.values()))
                await self._mark_referred(connection, [i for i in firsts.values() if i.key not in taken])
        except IntegrityError:
            # Another process stored one of these keys meanwhile: settle each on its own.
            for item in batch:
                if item.future is not None and not item.future.done():
                    try:
                        item.settle(await self._store_one(item))
                    except (DuplicateKey, StoreError) as exc:
                        item.settle(exc)
            return
        except SQLAlchemyError as exc:
            failure = StoreError(f"cannot store {len(batch)} documents: {exc}")
            for item in batch:
                item.settle(failure)
            return
        answers: dict[tuple[str, str, int], str | None] = {}
        for key, item in firsts.items():
            if key in taken:
                answers[key] = taken[key]
                item.settle(DuplicateKey("document exists", response=taken[key]))
            else:
                answers[key] = item.document["response"]
                item.settle([{**d, "id": ids[d["key"]]} for d in item.deliveries])
        for item in repeats:
            item.settle(DuplicateKey("document exists", response=answers[item.key]))

    async def _insert_batch(
        self, connection: AsyncConnection, items: Sequence["_Pending"]
    ) -> tuple[dict[str, int], dict[tuple[str, str, int], str | None]]:
        # The delivery ids by key, and the first answers of the keys already taken.
        taken = await self._taken(connection, [i.key for i in items])
        fresh = [i for i in items if i.key not in taken]
        if not fresh:
            return {}, taken
        await connection.execute(t.documents.insert(), [i.document for i in fresh])
        return await self._insert_rest(connection, fresh), taken

    async def _insert_batch_postgres(
        self, connection: AsyncConnection, items: Sequence["_Pending"]
    ) -> tuple[dict[str, int], dict[tuple[str, str, int], str | None]]:
        # As _insert_batch, in one statement (a key taken meanwhile by another process is skipped too).
        tables = (
            (t.documents, [i.document for i in items]),
            (t.recipients, [r for i in items for r in i.recipients]),
            (t.deliveries, [d for i in items for d in i.deliveries]),
        )
        split = [split_columns(rows, arrays=_KEYED[table.name]) for table, rows in tables]
        parameters: dict[str, Any] = {}
        for (table, rows), columns in zip(tables, split, strict=True):
            parameters.update(unnest_parameters(table, rows, columns))
        stored: set[str] = set()
        ids: dict[str, int] = {}
        for row in await connection.execute(_postgres_batch_insert(*split), parameters):
            stored.add(row.document)
            if row.key is not None:
                ids[row.key] = row.id
        skipped = [i.key for i in items if i.document["id"] not in stored]
        taken: dict[tuple[str, str, int], str | None] = dict.fromkeys(skipped)
        if skipped:
            taken.update(await self._taken(connection, skipped))
        return ids, taken

    @staticmethod
    async def _taken(
        connection: AsyncConnection, keys: Sequence[tuple[str, str, int]]
    ) -> dict[tuple[str, str, int], str | None]:
        # The first answer of each of these keys the store already holds.
        key = (t.documents.c.sender, t.documents.c.document_id, t.documents.c.business_type)
        found = await connection.execute(
            sa.select(*key, t.documents.c.response).where(sa.tuple_(*key).in_(keys))
        )
        return {(r.sender, r.document_id, r.business_type): r.response for r in found}

    @staticmethod
    async def insert_chunk(
        connection: AsyncConnection, document: str, position: int, seq: int, data: bytes
    ) -> None:
        await connection.execute(
            t.attachment_chunks.insert(),
            {"document": document, "position": position, "seq": seq, "data": data},
        )

    @staticmethod
    async def insert_attachments(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await connection.execute(t.attachments.insert(), list(rows))

    async def attachments_of(self, hub_id: str) -> list[dict[str, Any]]:
        query = (
            sa.select(t.attachments)
            .where(t.attachments.c.document == hub_id)
            .order_by(t.attachments.c.position)
        )
        with _store_errors("read attachments"):
            async with self._connect() as connection:
                return [dict(r._mapping) for r in await connection.execute(query)]

    async def chunks(self, hub_id: str, position: int, count: int) -> AsyncIterator[bytes]:
        """An attachment's decoded content, one stored chunk at a time."""
        query = sa.select(t.attachment_chunks.c.data).where(
            t.attachment_chunks.c.document == hub_id,
            t.attachment_chunks.c.position == position,
            t.attachment_chunks.c.seq == sa.bindparam("seq"),
        )
        for seq in range(count):
            with _store_errors("read an attachment"):
                async with self._connect() as connection:
                    data = await connection.scalar(query, {"seq": seq})
            if data is None:
                raise StoreError(f"attachment {position} of {hub_id} lacks chunk {seq}")
            yield bytes(data)

    # ---- deliveries ----------------------------------------------------------------------------

    def _among(self, column: sa.ColumnElement[int], ids: Sequence[int]) -> sa.ColumnElement[bool]:
        # An IN list is rendered, and prepared, again for each number of ids; one array is not.
        if self._postgres:
            return column == sa.any_(sa.bindparam("ids", list(ids), type_=postgresql.ARRAY(sa.Integer)))
        return column.in_(list(ids))

    async def mark_published(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with _store_errors("mark deliveries published"):
            async with self._begin() as connection:
                await connection.execute(
                    t.deliveries.update()
                    .where(self._among(t.deliveries.c.id, ids), t.deliveries.c.published_at.is_(None))
                    .values(published_at=utcnow())
                )

    async def unpublished(self, older_than: datetime, limit: int = 500) -> list[dict[str, Any]]:
        """Deliveries queued before ``older_than`` whose broker message was never confirmed."""
        query = (
            sa.select(t.deliveries.c.id, t.deliveries.c.key, t.deliveries.c.kind, t.deliveries.c.mode)
            .where(
                t.deliveries.c.state == "queued",
                t.deliveries.c.published_at.is_(None),
                t.deliveries.c.queued_at < older_than,
            )
            .order_by(t.deliveries.c.id)
            .limit(limit)
        )
        with _store_errors("scan the outbox"):
            async with self._connect() as connection:
                return [dict(r._mapping) for r in await connection.execute(query)]

    async def unsettled(self, after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        """Deliveries not yet settled (queued, retrying or sending), in id order from ``after``."""
        query = (
            sa.select(t.deliveries.c.id, t.deliveries.c.key, t.deliveries.c.kind, t.deliveries.c.mode)
            .where(t.deliveries.c.state.in_(("queued", "retrying", "sending")), t.deliveries.c.id > after)
            .order_by(t.deliveries.c.id)
            .limit(limit)
        )
        with _store_errors("scan unsettled deliveries"):
            async with self._connect() as connection:
                return [dict(r._mapping) for r in await connection.execute(query)]

    async def delivery(self, delivery_id: int) -> dict[str, Any] | None:
        with _store_errors("read a delivery"):
            async with self._connect() as connection:
                row = (
                    await connection.execute(sa.select(t.deliveries).where(t.deliveries.c.id == delivery_id))
                ).first()
        return dict(row._mapping) if row else None

    async def make_available(self, ids: Sequence[int]) -> dict[int, datetime]:
        """Put pull deliveries in their recipients' inboxes; the creation time of each one moved now
        (those already available, or gone, are left out). A delivery consumed was published: it is
        marked so too, and the publisher's later mark passes it by (one row version fewer)."""
        async with self.making_available() as make_available:
            return await make_available(ids)

    @contextlib.asynccontextmanager
    async def making_available(self) -> AsyncIterator[MakeAvailable]:
        """`make_available` for a run of calls. On PostgreSQL they share one connection, taken at the
        first call and given back at the end of the block (or after a failure), and each is one
        autocommitted statement: a worker settling pulls batch after batch pays the pool checkout (and
        its ping, after an idle spell: hub/store/liveness.py) and BEGIN and COMMIT once, not per batch."""
        if not self._postgres:
            yield self._make_available_in_transaction
            return
        held = _HeldConnection(self._connect)

        async def make_available(ids: Sequence[int]) -> dict[int, datetime]:
            if not ids:
                return {}
            with _store_errors("make deliveries available"):
                rows = await held.execute(_MAKE_AVAILABLE, {"ids": list(ids), "now": utcnow()})
                return {r.id: aware(r.created_at) for r in rows}  # type: ignore[misc]

        try:
            yield make_available
        finally:
            await held.close()

    async def _make_available_in_transaction(self, ids: Sequence[int]) -> dict[int, datetime]:
        if not ids:
            return {}
        with _store_errors("make deliveries available"):
            async with self._begin() as connection:
                rows = await connection.execute(_moving_to_inbox(t.deliveries.c.id.in_(list(ids)), utcnow()))
                return {r.id: aware(r.created_at) for r in rows}  # type: ignore[misc]

    async def claim_push(self, delivery_id: int, token: str, lease: timedelta) -> Claim:
        """Take a push delivery for one attempt, unless it is settled or another worker holds its lease."""
        now = utcnow()
        claimable = sa.or_(
            t.deliveries.c.state.in_(("queued", "retrying")),
            sa.and_(t.deliveries.c.state == "sending", t.deliveries.c.lease_until < now),
        )
        with _store_errors("claim a delivery"):
            async with self._begin() as connection:
                result = await connection.execute(
                    t.deliveries.update()
                    .where(t.deliveries.c.id == delivery_id, claimable)
                    .values(
                        state="sending",
                        attempts=t.deliveries.c.attempts + 1,
                        lease_token=token,
                        lease_until=now + lease,
                        published_at=sa.func.coalesce(t.deliveries.c.published_at, now),  # it was consumed
                    )
                )
                row = (
                    await connection.execute(sa.select(t.deliveries).where(t.deliveries.c.id == delivery_id))
                ).first()
        if row is None:
            return Claim("missing")
        found = dict(row._mapping)
        if result.rowcount:
            return Claim("claimed", found)
        if found["state"] == "sending":
            until = aware(found["lease_until"]) or now
            return Claim("busy", found, max((until - now).total_seconds(), 0.0))
        return Claim("settled", found)

    async def finish_push(self, delivery_id: int, token: str, **values: Any) -> bool:
        """Record the outcome of an attempt; False when the lease was lost to another worker."""
        values.setdefault("lease_token", None)
        values.setdefault("lease_until", None)
        with _store_errors("record a push attempt"):
            async with self._begin() as connection:
                result = await connection.execute(
                    t.deliveries.update()
                    .where(t.deliveries.c.id == delivery_id, t.deliveries.c.lease_token == token)
                    .values(**values)
                )
        return bool(result.rowcount)

    async def mark_dead(self, delivery_id: int, error: str) -> None:
        with _store_errors("dead-letter a delivery"):
            async with self._begin() as connection:
                await connection.execute(
                    t.deliveries.update()
                    .where(
                        t.deliveries.c.id == delivery_id, t.deliveries.c.state.notin_(("delivered", "acked"))
                    )
                    .values(state="dead", dead_at=utcnow(), last_error=error[:2000], lease_token=None)
                )

    async def requeue_dead(self, delivery_id: int) -> dict[str, Any] | None:
        """Move a dead delivery back to queued (fresh attempts); None when it is not dead."""
        with _store_errors("requeue a delivery"):
            async with self._begin() as connection:
                result = await connection.execute(
                    t.deliveries.update()
                    .where(t.deliveries.c.id == delivery_id, t.deliveries.c.state == "dead")
                    .values(
                        state="queued",
                        attempts=0,
                        dead_at=None,
                        published_at=None,
                        queued_at=EPOCH,
                        lease_token=None,
                        lease_until=None,
                    )
                )
                if not result.rowcount:
                    return None
                row = (
                    await connection.execute(sa.select(t.deliveries).where(t.deliveries.c.id == delivery_id))
                ).first()
        return dict(row._mapping) if row else None

    async def dead(self, limit: int = 100) -> list[dict[str, Any]]:
        query = (
            sa.select(
                t.deliveries.c.id,
                t.deliveries.c.kind,
                t.deliveries.c.document,
                t.deliveries.c.status,
                t.deliveries.c.recipient,
                t.deliveries.c.mode,
                t.deliveries.c.attempts,
                t.deliveries.c.last_error,
                t.deliveries.c.dead_at,
                t.documents.c.document_id,
            )
            .join(t.documents, t.documents.c.id == t.deliveries.c.document)
            .where(t.deliveries.c.state == "dead")
            .order_by(t.deliveries.c.id)
            .limit(limit)
        )
        with _store_errors("list dead deliveries"):
            async with self._connect() as connection:
                return [dict(r._mapping) for r in await connection.execute(query)]

    async def ack(
        self, organ: str, *, document: str | None = None, delivery_id: int | None = None
    ) -> dict[str, Any] | None:
        """Acknowledge the caller's delivery (idempotent); None when it has none in a state to ack."""
        where = [t.deliveries.c.recipient == organ]
        if delivery_id is not None:
            where.append(t.deliveries.c.id == delivery_id)
        else:
            where += [t.deliveries.c.document == document, t.deliveries.c.kind == "edoc"]
        with _store_errors("acknowledge a delivery"):
            async with self._begin() as connection:
                await connection.execute(
                    t.deliveries.update()
                    .where(*where, t.deliveries.c.state.in_(("available", "delivered")))
                    .values(state="acked", acked_at=utcnow())
                )
                row = (await connection.execute(sa.select(t.deliveries).where(*where))).first()
        if row is None or row.state != "acked":
            return None
        return dict(row._mapping)

    async def record_failure(self, organ: str, delivery_id: int, error: str) -> bool:
        with _store_errors("record a failure"):
            async with self._begin() as connection:
                result = await connection.execute(
                    t.deliveries.update()
                    .where(t.deliveries.c.id == delivery_id, t.deliveries.c.recipient == organ)
                    .values(last_error=error[:2000])
                )
        return bool(result.rowcount)

    async def delivery_for(self, organ: str, document: str) -> dict[str, Any] | None:
        query = sa.select(t.deliveries).where(
            t.deliveries.c.recipient == organ,
            t.deliveries.c.document == document,
            t.deliveries.c.kind == "edoc",
        )
        with _store_errors("read a delivery"):
            async with self._connect() as connection:
                row = (await connection.execute(query)).first()
        return dict(row._mapping) if row else None

    async def status_delivery_for(self, organ: str, status_id: str) -> dict[str, Any] | None:
        query = sa.select(t.deliveries).where(
            t.deliveries.c.recipient == organ,
            t.deliveries.c.status == status_id,
            t.deliveries.c.kind == "status",
        )
        with _store_errors("read a delivery"):
            async with self._connect() as connection:
                row = (await connection.execute(query)).first()
        return dict(row._mapping) if row else None

    async def inbox(
        self,
        organ: str,
        *,
        kinds: Sequence[str],
        states: Sequence[str] | None,
        sender: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        d, doc, st = t.deliveries, t.documents, t.statuses
        query = (
            sa.select(
                d.c.id.label("delivery"),
                d.c.kind,
                d.c.state,
                d.c.mode,
                d.c.created_at,
                d.c.available_at,
                d.c.delivered_at,
                d.c.acked_at,
                doc.c.id.label("document"),
                doc.c.document_id,
                doc.c.sender,
                doc.c.subject,
                doc.c.code,
                doc.c.promulgation_date,
                doc.c.business_type,
                doc.c.refers_to,
                doc.c.state.label("document_state"),
                doc.c.received_at,
                doc.c.signer,
                st.c.id.label("status_id"),
                st.c.code.label("status_code"),
                st.c.author.label("status_author"),
                st.c.organ.label("status_organ"),
                st.c.description.label("status_description"),
                st.c.timestamp.label("status_timestamp"),
            )
            .join(doc, doc.c.id == d.c.document)
            .outerjoin(st, st.c.id == d.c.status)
            .where(d.c.recipient == organ, d.c.kind.in_(list(kinds)), d.c.id > after)
            .order_by(d.c.id)
            .limit(limit)
        )
        if states is not None:
            query = query.where(d.c.state.in_(list(states)))
        if sender is not None:
            query = query.where(doc.c.sender == sender)
        # SQLite compares datetimes as text: always in UTC, as they were written.
        if since is not None:
            query = query.where(d.c.created_at >= since.astimezone(UTC))
        if until is not None:
            query = query.where(d.c.created_at < until.astimezone(UTC))
        with _store_errors("read an inbox"):
            async with self._connect() as connection:
                rows = [dict(r._mapping) for r in await connection.execute(query)]
        for row in rows:
            for key in ("created_at", "available_at", "delivered_at", "acked_at", "received_at"):
                row[key] = aware(row[key])
        return rows

    # ---- statuses ------------------------------------------------------------------------------

    async def status_by_key(
        self, document: str, organ: str, author: str, code: str, timestamp: str
    ) -> dict[str, Any] | None:
        query = sa.select(t.statuses.c.id).where(
            t.statuses.c.document == document,
            t.statuses.c.organ == organ,
            t.statuses.c.author == author,
            t.statuses.c.code == code,
            t.statuses.c.timestamp == timestamp,
        )
        with _store_errors("read a status"):
            async with self._connect() as connection:
                row = (await connection.execute(query)).first()
        return dict(row._mapping) if row else None

    async def store_status(
        self,
        transitions: Sequence[tuple[str, int, dict[str, Any]]],
        statuses: Sequence[dict[str, Any]],
        deliveries: Sequence[dict[str, Any]],
    ) -> list[dict[str, Any]] | None:
        """Apply recipient-state transitions (optimistic: by version), insert statuses and deliveries,
        atomically; None when a recipient's state changed underneath (the caller re-checks).

        Raises:
            DuplicateKey: a status with the same key exists.
            StoreError: the store refused the write.
        """
        try:
            async with self._begin() as connection:
                for organ, version, values in transitions:
                    result = await connection.execute(
                        t.recipients.update()
                        .where(
                            t.recipients.c.document == statuses[0]["document"],
                            t.recipients.c.organ == organ,
                            t.recipients.c.version == version,
                        )
                        .values(version=version + 1, updated_at=utcnow(), **values)
                    )
                    if not result.rowcount:
                        raise _StateChanged
                await connection.execute(t.statuses.insert(), list(statuses))
                rows = await connection.execute(
                    t.deliveries.insert().returning(t.deliveries.c.id, t.deliveries.c.key), list(deliveries)
                )
                ids = {r.key: r.id for r in rows}
        except _StateChanged:
            return None
        except IntegrityError as exc:
            raise DuplicateKey(str(exc)) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot store a status: {exc}") from exc
        return [{**d, "id": ids[d["key"]]} for d in deliveries]

    async def status(self, status_id: str) -> dict[str, Any] | None:
        with _store_errors("read a status"):
            async with self._connect() as connection:
                row = (
                    await connection.execute(sa.select(t.statuses).where(t.statuses.c.id == status_id))
                ).first()
        return dict(row._mapping) if row else None

    async def statuses_of(self, document: str) -> list[dict[str, Any]]:
        query = (
            sa.select(*(c for c in t.statuses.c if c.name != "raw"))
            .where(t.statuses.c.document == document)
            .order_by(t.statuses.c.created_at, t.statuses.c.id)
        )
        with _store_errors("read statuses"):
            async with self._connect() as connection:
                rows = [dict(r._mapping) for r in await connection.execute(query)]
        for row in rows:
            row["created_at"] = aware(row["created_at"])
            row["staff"] = json.loads(row["staff"]) if row["staff"] else None
        return rows

    # ---- agencies ------------------------------------------------------------------------------

    async def agencies(self, codes: Sequence[str] | None = None) -> list[dict[str, Any]]:
        query = sa.select(t.agencies).order_by(t.agencies.c.code)
        if codes is not None:
            query = query.where(t.agencies.c.code.in_(list(codes)))
        with _store_errors("read agencies"):
            async with self._connect() as connection:
                return [dict(r._mapping) for r in await connection.execute(query)]

    async def upsert_agencies(self, rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
        """Insert or update agencies; return (inserted, updated)."""
        codes = [r["code"] for r in rows]
        now = utcnow()
        with _store_errors("import agencies"):
            async with self._begin() as connection:
                existing: set[str] = set()
                for start in range(0, len(codes), 500):
                    batch = codes[start : start + 500]
                    found = await connection.execute(
                        sa.select(t.agencies.c.code).where(t.agencies.c.code.in_(batch))
                    )
                    existing.update(r.code for r in found)
                new = [{**r, "updated_at": now} for r in rows if r["code"] not in existing]
                old = [{**r, "updated_at": now, "key": r["code"]} for r in rows if r["code"] in existing]
                if new:
                    await connection.execute(t.agencies.insert(), new)
                if old:
                    await connection.execute(
                        t.agencies.update()
                        .where(t.agencies.c.code == sa.bindparam("key"))
                        .values(
                            name=sa.bindparam("name"),
                            parent=sa.bindparam("parent"),
                            endpoint=sa.bindparam("endpoint"),
                            updated_at=sa.bindparam("updated_at"),
                        ),
                        [{k: v for k, v in r.items() if k != "code"} for r in old],
                    )
        return len(new), len(old)


__all__ = ["Claim", "DuplicateKey", "EdocsRepository", "aware", "utcnow"]
