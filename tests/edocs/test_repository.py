"""The document store's batch writes, on SQLite and on PostgreSQL (where documents arriving together are
written by one statement): the same answers from both."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from hub.edocs import tables as t
from hub.edocs.repository import DuplicateKey, EdocsRepository
from hub.errors import StoreError
from hub.store import Store

RECIPIENTS = ("H40.12", "H40.13", "H40.14")


@pytest.fixture
async def repository(store_url: str) -> AsyncIterator[EdocsRepository]:
    store = Store.from_url(store_url)
    await store.migrate()
    try:
        yield EdocsRepository(store.engine)
    finally:
        await store.close()


def _document(number: str, *, refers: str | None = None, business_type: int = 0) -> dict[str, Any]:
    hub_id = uuid.uuid4().hex
    return {
        "id": hub_id,
        "sender": "000.00.00.H40",
        "client": "VN/GOV/000.00.00.H40/edoc",
        "document_id": f"000.00.00.H40,2024/05/02,{number}/UBND-VP",
        "business_type": business_type,
        "refers_to": refers,
        "state": "active",
        "subject": "Về việc triển khai trục liên thông văn bản",
        "code": f"{number}/UBND-VP",
        "promulgation_date": "2024/05/02",
        "signer": "VN/GOV/000.00.00.H40",
        "algorithm": "rsa-sha256",
        "size": 20_000,
        "sha256": "0" * 64,
        "skeleton": b"<edXML>" + bytes(range(256)) * 8 + b"</edXML>",
        "markers": "[]",
        "response": json.dumps({"id": hub_id, "document_id": number}),
        "received_at": datetime.now(UTC),
    }


def _rows(document: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    now = document["received_at"]
    recipients = [
        {
            "document": document["id"],
            "organ": o,
            "status": None,
            "recall": None,
            "version": 0,
            "updated_at": now,
        }
        for o in RECIPIENTS
    ]
    deliveries = [
        {
            "key": f"edoc:{document['id']}:{o}",
            "kind": "edoc",
            "document": document["id"],
            "status": None,
            "recipient": o,
            "mode": "pull",
            "state": "queued",
            "attempts": 0,
            "created_at": now,
            "queued_at": now,
        }
        for o in RECIPIENTS
    ]
    return recipients, deliveries


async def _store(
    repository: EdocsRepository, document: dict[str, Any], refers: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    recipients, deliveries = _rows(document)
    return await repository.store_document(document, recipients, deliveries, refers=refers)


async def _count(repository: EdocsRepository, table: sa.Table) -> int:
    async with repository.engine.connect() as connection:
        return int(await connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def test_repository_documents_arriving_together_are_stored_with_their_deliveries(
    repository: EdocsRepository,
) -> None:
    # Given ten documents arriving together (one batch)
    documents = [_document(str(n)) for n in range(10)]

    # When they are stored
    stored = await asyncio.gather(*(_store(repository, d) for d in documents))

    # Then each gets its own three deliveries, with distinct ids, and every row is in the store
    for document, deliveries in zip(documents, stored, strict=True):
        assert [d["key"] for d in deliveries] == [f"edoc:{document['id']}:{o}" for o in RECIPIENTS]
        assert all(d["document"] == document["id"] and d["state"] == "queued" for d in deliveries)
    ids = [d["id"] for deliveries in stored for d in deliveries]
    assert len(set(ids)) == 30
    assert await _count(repository, t.documents) == 10
    assert await _count(repository, t.recipients) == 30
    assert await _count(repository, t.deliveries) == 30
    found = await repository.document(documents[3]["id"], with_skeleton=True)
    assert found is not None and found["skeleton"] == documents[3]["skeleton"]
    assert found["received_at"] == documents[3]["received_at"]


async def _rows_of(repository: EdocsRepository, table: sa.Table, *key: str) -> dict[Any, dict[str, Any]]:
    async with repository.engine.connect() as connection:
        result = await connection.execute(sa.select(table))
        return {tuple(row._mapping[k] for k in key): dict(row._mapping) for row in result}


@pytest.mark.parametrize("count", [1, 7])
async def test_repository_every_column_of_a_batch_reads_back_as_given(
    repository: EdocsRepository, count: int
) -> None:
    # Given documents arriving together whose columns are alike in some rows and differ in others
    # (one subject and one size differ, the skeleton is the same in all; deliveries of two modes)
    documents = [_document(str(n)) for n in range(count)]
    documents[-1]["subject"] = "Một chủ đề khác"
    documents[0]["size"] = 1
    rows = [_rows(d) for d in documents]
    for _, deliveries in rows:
        deliveries[-1]["mode"] = "push"

    # When they are stored
    await asyncio.gather(
        *(repository.store_document(d, r, dl) for d, (r, dl) in zip(documents, rows, strict=True))
    )

    # Then every column of every row reads back as it was given
    def same(given: dict[str, Any], found: dict[str, Any]) -> None:
        for column, value in given.items():
            read = found[column]
            if isinstance(value, datetime) and isinstance(read, datetime) and read.tzinfo is None:
                read = read.replace(tzinfo=UTC)
            assert read == value, f"{column}: {read!r} != {value!r}"

    stored_documents = await _rows_of(repository, t.documents, "id")
    stored_recipients = await _rows_of(repository, t.recipients, "document", "organ")
    stored_deliveries = await _rows_of(repository, t.deliveries, "key")
    assert len(stored_documents) == count
    assert len(stored_recipients) == len(stored_deliveries) == 3 * count
    for document, (recipients, deliveries) in zip(documents, rows, strict=True):
        same(document, stored_documents[(document["id"],)])
        for recipient in recipients:
            same(recipient, stored_recipients[(recipient["document"], recipient["organ"])])
        for delivery in deliveries:
            same(delivery, stored_deliveries[(delivery["key"],)])


async def test_repository_duplicate_keys_get_the_first_answer_and_store_nothing(
    repository: EdocsRepository,
) -> None:
    # Given a document already stored
    first = _document("1")
    await _store(repository, first)

    # When a batch brings it twice more (other hub ids, same key), a new one, and another new one twice
    again, again_twice = _document("1"), _document("1")
    fresh, twin, twin_copy = _document("2"), _document("3"), _document("3")
    outcomes = await asyncio.gather(
        *(_store(repository, d) for d in (again, fresh, again_twice, twin, twin_copy)), return_exceptions=True
    )

    # Then the repeats answer with the first response of their key, and only the new ones are stored
    answers = [o.response if isinstance(o, DuplicateKey) else o for o in outcomes]
    assert answers[0] == first["response"] and answers[2] == first["response"]
    assert answers[4] == twin["response"]
    assert isinstance(answers[1], list) and isinstance(answers[3], list)
    assert await _count(repository, t.documents) == 3
    assert await _count(repository, t.deliveries) == 9


async def test_repository_a_referring_document_changes_the_state_of_the_original(
    repository: EdocsRepository,
) -> None:
    # Given an original document
    original = _document("7")
    await _store(repository, original)

    # When its revocation arrives together with an unrelated document
    revocation = _document("7", refers=original["id"], business_type=1)
    await asyncio.gather(
        _store(repository, revocation, refers=(original["id"], "revoked")), _store(repository, _document("8"))
    )

    # Then the original is revoked and the revocation is stored like any document
    stored = await repository.document(original["id"])
    assert stored is not None and stored["state"] == "revoked"
    assert await _count(repository, t.documents) == 3


async def test_repository_published_and_available_deliveries_are_marked_by_id(
    repository: EdocsRepository,
) -> None:
    # Given two documents' deliveries
    stored = await asyncio.gather(_store(repository, _document("1")), _store(repository, _document("2")))
    first, second = ([d["id"] for d in deliveries] for deliveries in stored)

    # When the first document's deliveries are confirmed published and made available
    await repository.mark_published(first)
    moved = await repository.make_available(first)

    # Then only the second document's deliveries are left for the outbox, and the first moved once
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert sorted(r["id"] for r in await repository.unpublished(later)) == sorted(second)
    assert sorted(moved) == sorted(first)
    assert await repository.make_available(first) == {}


async def test_repository_delivery_made_available_counts_as_published(repository: EdocsRepository) -> None:
    # Given a document's deliveries, one of them marked published, none made available yet
    (stored,) = await asyncio.gather(_store(repository, _document("1")))
    ids = [d["id"] for d in stored]
    await repository.mark_published(ids[:1])
    marked = (await repository.delivery(ids[0]) or {})["published_at"]

    # When they are consumed (made available) before the publisher marks the others
    await repository.make_available(ids)

    # Then the outbox leaves them all alone, and the earlier mark keeps its time
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert await repository.unpublished(later) == []
    rows = [await repository.delivery(i) or {} for i in ids]
    assert all(r["published_at"] is not None for r in rows) and rows[0]["published_at"] == marked


@pytest.mark.postgres
async def test_repository_skeletons_compress_with_lz4_and_chunks_are_stored_as_they_are_on_postgres(
    postgres_database: str,
) -> None:
    # Given a PostgreSQL store, migrated
    store = Store.from_url(postgres_database)
    try:
        await store.migrate()
        async with store.engine.connect() as connection:
            lz4 = await connection.scalar(
                sa.text(
                    "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
                )
            )
            # When the columns holding package skeletons and attachment chunks are looked at
            found = {
                row[0]: (row[1], row[2])
                for row in await connection.execute(
                    sa.text(
                        "SELECT attrelid::regclass::text, attcompression::text, attstorage::text"
                        " FROM pg_attribute WHERE (attrelid, attname) IN"
                        " (('edoc_documents'::regclass, 'skeleton'), ('edoc_attachment_chunks'::regclass, 'data'))"
                    )
                )
            }
    finally:
        await store.close()
    # Then skeletons compress with lz4 where the server has it (not the default pglz), and the chunks
    # (mostly compressed files already) are stored out of line without compression
    assert found["edoc_documents"] == ("l" if lz4 else "", "x")
    assert found["edoc_attachment_chunks"][1] == "e"


async def _states(repository: EdocsRepository, ids: list[int]) -> set[str]:
    # On a connection of its own: what other transactions see
    async with repository.engine.connect() as connection:
        rows = await connection.execute(sa.select(t.deliveries.c.state).where(t.deliveries.c.id.in_(ids)))
        return {r.state for r in rows}


@pytest.mark.postgres
async def test_repository_making_available_commits_each_call_on_one_connection_and_replaces_it_once_lost(
    postgres_database: str,
) -> None:
    store = Store.from_url(postgres_database)
    try:
        await store.migrate()
        repository = EdocsRepository(store.engine)
        # Given three documents' deliveries
        stored = await asyncio.gather(*(_store(repository, _document(str(n))) for n in range(3)))
        first, second, third = ([d["id"] for d in deliveries] for deliveries in stored)
        async with repository.making_available() as make_available:
            # When the first are made available
            assert sorted(await make_available(first)) == sorted(first)
            # Then the change is committed when the call returns (a worker acks right after), on the one
            # connection the block keeps
            assert await _states(repository, first) == {"available"}
            assert store.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
            # And when the server ends that connection, the next call fails and nothing moves
            async with store.engine.connect() as connection:
                await connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            with pytest.raises(StoreError):
                await make_available(second)
            assert await _states(repository, second) == {"queued"}
            # Then the call after it takes a fresh connection
            assert sorted(await make_available(second + third)) == sorted(second + third)
        # And the block gives its connection back
        assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await store.close()
