"""The document exchange core, shared by the REST API and the LGSP facade.

Submission, in order: safe parse -> edXML schema -> the caller acts for From/OrganId -> signature
(member policy; signer bound to From/OrganId) -> read the header from the signed content ->
idempotency key (sender, DocumentId, business type) -> recipients known -> the document it refers
to (revoke, update, replace) -> one transaction: document, attachments (streamed), recipients,
deliveries -> publish (the outbox resends what the broker did not confirm).
"""

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.edocs.delivery import DeliveryPublisher, EdocsMetrics
from hub.edocs.directory import AgencyDirectory
from hub.edocs.edxml import (
    BusinessDocType,
    EdxmlSchema,
    Organization,
    PackageHeader,
    ResponseFor,
    StaffInfo,
    StatusCode,
    StatusMessage,
    build_status,
    format_timestamp,
    kind_of,
    parse_edxml,
    read_package,
    read_status,
    sender_of,
)
from hub.edocs.errors import (
    CallerRefused,
    DocumentNotFound,
    PackageInvalid,
    TransitionRefused,
)
from hub.edocs.ingest import (
    AttachmentExtractor,
    AttachmentRecord,
    Spool,
    assemble,
    attachment_parser,
    attachment_texts_held,
    encode_attachment,
    layout_json,
    make_skeleton,
)
from hub.edocs.repository import DuplicateKey, EdocsRepository, aware, utcnow
from hub.edocs.settings import EdocMember, EdocsSettings
from hub.edocs.transitions import RecipientState, next_state
from hub.edocs.verify import MessageVerifier
from hub.errors import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")
_THREAD_ABOVE = 1024 * 1024
_BUSINESS_STATE = {
    BusinessDocType.REVOKE: "revoked",
    BusinessDocType.UPDATE: "updated",
    BusinessDocType.REPLACE: "replaced",
}


@dataclass(frozen=True, slots=True)
class EdocCaller:
    """An authenticated edocs member: its client id, the organ it acts for, and its policy."""

    client: str
    organ: str
    member: EdocMember
    method: str = "api-key"


@dataclass(frozen=True, slots=True)
class Submission:
    """The answer to a submission, and its JSON as sent; a replay repeats the first answer exactly."""

    body: dict[str, Any]
    content: bytes
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class StatusInput:
    code: StatusCode
    description: str = ""
    timestamp: str | None = None
    staff: StaffInfo | None = None
    recipients: tuple[str, ...] = ()
    raw: bytes | None = None
    signer: str | None = None


@dataclass(frozen=True, slots=True)
class _Checked:
    header: PackageHeader
    signer: str | None
    algorithm: str | None
    skeleton: bytes
    markers: tuple[str, ...]
    sha256: str
    size: int


@dataclass
class DocumentContent:
    """A stored document ready to stream: its metadata and the bytes, produced lazily."""

    meta: dict[str, Any]
    stream: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _answer(body: dict[str, Any]) -> str:
    # Compact JSON, as the API sends it: rendered once, stored for replays, and sent as it is.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class EdocsService:
    """Accepts, stores, serves and tracks documents and statuses."""

    def __init__(
        self,
        settings: EdocsSettings,
        *,
        repository: EdocsRepository,
        directory: AgencyDirectory,
        verifier: MessageVerifier,
        publisher: DeliveryPublisher,
        metrics: EdocsMetrics,
        schema: EdxmlSchema | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.directory = directory
        self._verifier = verifier
        self._publisher = publisher
        self._metrics = metrics
        self._schema = schema or EdxmlSchema()
        self._clock = clock

    async def _cpu(self, size: int, function: Callable[..., T], *args: Any) -> T:
        # Large packages are parsed and verified off the event loop; small ones are cheaper inline.
        if size > _THREAD_ABOVE:
            return await asyncio.to_thread(function, *args)
        return function(*args)

    # ---- submission ------------------------------------------------------------------------------

    def _check_package(self, caller: EdocCaller, spool: Spool, received_at: datetime) -> _Checked:
        # Parsed from the spool piece by piece, and hashed on the way: the body is never held whole.
        digest = hashlib.sha256()
        root = parse_edxml(spool.chunks(digest=digest), max_bytes=self.settings.max_package_bytes)
        # The attachments' base64 is checked by the storage pass's strict decoder, not twice (ingest.py).
        with attachment_texts_held(root):
            self._schema.validate(root)
            if kind_of(root) != "package":
                raise PackageInvalid(
                    "this is a status message: POST it to /v1/edocs/{id}/status", element="StatusCode"
                )
            organ = sender_of(root)
            if organ != caller.organ:
                raise CallerRefused(
                    f"client {caller.client} acts for {caller.organ}, not for From/OrganId {organ}",
                    kind="denied",
                )
            # The skeleton is taken first: verification then owns the tree (no copy) and may detach its
            # signature.
            skeleton, markers = make_skeleton(root, self.settings.hub_organ_id, format_timestamp(received_at))
        verified = self._verifier.verify(
            root,
            caller.member,
            organ,
            required=caller.member.require_signature,
            owned=True,
            source_bytes=spool.size,
        )
        header = read_package(verified.root, content=False)  # the submission never reads Content
        if header.sender.organ_id != organ:
            raise PackageInvalid(
                "the signed From/OrganId differs from the document's", element="From/OrganId"
            )
        return _Checked(
            header=header,
            signer=verified.signer,
            algorithm=verified.algorithm,
            skeleton=skeleton,
            markers=markers,
            sha256=digest.hexdigest(),
            size=spool.size,
        )

    async def submit(self, caller: EdocCaller, spool: Spool) -> Submission:
        """Accept a package for delivery (or replay the answer to an earlier identical key).

        Raises:
            PackageRefused, SignatureRefused, CallerRefused, UnknownAgency, TransitionRefused: refused.
            StoreError: it could not be stored.
        """
        received_at = self._clock()
        checked = await self._cpu(spool.size, self._check_package, caller, spool, received_at)
        header = checked.header
        sender = header.sender.organ_id
        kind = header.business.doc_type
        refers: tuple[str, str] | None = None
        if kind is not BusinessDocType.NEW:
            # A repeated revoke/update/replace must replay before the original's new state refuses it;
            # new documents are checked for duplicates inside the storing transaction.
            existing = await self.repository.document_by_key(sender, header.document_id, int(kind))
            if existing is not None:
                return self._replay(existing["response"])
            target = header.business.document_id or header.document_id
            original = await self.repository.original_for(sender, target)
            if original is None or original["business_type"] != BusinessDocType.NEW:
                raise PackageInvalid(
                    f"Bussiness/DocumentId {target}: {sender} sent no document with that DocumentId",
                    element="Bussiness/DocumentId",
                )
            if original["state"] != "active":
                raise TransitionRefused(
                    f"document {original['id']} is already {original['state']}",
                    current=original["state"],
                    code=f"BussinessDocType {int(kind)}",
                )
            refers = (original["id"], _BUSINESS_STATE[kind])
        agencies = await self.directory.require(r.organ_id for r in header.recipients)
        hub_id = uuid.uuid4().hex
        response = {
            "id": hub_id,
            "document_id": header.document_id,
            "from": sender,
            "subject": header.subject,
            "business_type": int(kind),
            "refers_to": refers[0] if refers else None,
            "recipients": [
                {"organ_id": code, "name": agency.name, "mode": agency.mode}
                for code, agency in agencies.items()
            ],
            "attachments": len(checked.markers),
            "signed": checked.signer is not None,
            "signer": checked.signer,
            "algorithm": checked.algorithm,
            "received_at": received_at.isoformat(),
        }
        answer = _answer(response)
        document = {
            "id": hub_id,
            "sender": sender,
            "client": caller.client,
            "document_id": header.document_id,
            "business_type": int(kind),
            "refers_to": refers[0] if refers else None,
            "state": "active",
            "subject": header.subject,
            "code": header.code,
            "promulgation_date": header.promulgation_date,
            "signer": checked.signer,
            "algorithm": checked.algorithm,
            "size": checked.size,
            "sha256": checked.sha256,
            "skeleton": checked.skeleton,
            "markers": json.dumps(checked.markers),
            "response": answer,
            "received_at": received_at,
        }
        recipients = [
            {
                "document": hub_id,
                "organ": code,
                "status": None,
                "recall": None,
                "version": 0,
                "updated_at": received_at,
            }
            for code in agencies
        ]
        deliveries = [
            self._delivery_row(f"edoc:{hub_id}:{code}", "edoc", hub_id, None, code, agency.mode, received_at)
            for code, agency in agencies.items()
        ]
        writer = self._attachment_writer(hub_id, spool) if checked.markers else None
        try:
            stored = await self.repository.store_document(
                document, recipients, deliveries, attachments=writer, refers=refers
            )
        except DuplicateKey as duplicate:
            earlier = duplicate.response
            if earlier is None:
                found = await self.repository.document_by_key(sender, header.document_id, int(kind))
                if found is None:
                    raise StoreError("a concurrent submission collided but left no document") from None
                earlier = found["response"]
            return self._replay(earlier)
        self._metrics.submissions.labels("edoc", "accepted").inc()
        await self._publisher.publish(stored)
        return Submission(response, answer.encode())

    def _replay(self, response: str) -> Submission:
        self._metrics.submissions.labels("edoc", "duplicate").inc()
        body = json.loads(response)
        return Submission(body, _answer(body).encode(), replayed=True)

    def _attachment_writer(self, hub_id: str, spool: Spool) -> Callable[[AsyncConnection], Any]:
        async def write(connection: AsyncConnection) -> None:
            extractor = AttachmentExtractor()
            parser = attachment_parser(extractor)
            for chunk in spool.chunks():
                parser.feed(chunk)
                await self._flush_chunks(connection, hub_id, extractor)
            records = cast(list[AttachmentRecord], parser.close())
            await self._flush_chunks(connection, hub_id, extractor)
            await self.repository.insert_attachments(
                connection,
                [
                    {
                        "document": hub_id,
                        "position": r.position,
                        "content_id": r.content_id[:255],
                        "name": r.name[:512],
                        "content_type": r.content_type[:255],
                        "description": r.description,
                        "size": r.size,
                        "sha256": r.sha256,
                        "chunks": r.chunks,
                        "layout": layout_json(r.layout),
                    }
                    for r in records
                ],
            )

        return write

    async def _flush_chunks(
        self, connection: AsyncConnection, hub_id: str, extractor: AttachmentExtractor
    ) -> None:
        pending, extractor.pending = extractor.pending, []
        for position, seq, data in pending:
            await self.repository.insert_chunk(connection, hub_id, position, seq, data)

    @staticmethod
    def _delivery_row(
        key: str, kind: str, document: str, status: str | None, recipient: str, mode: str, now: datetime
    ) -> dict[str, Any]:
        return {
            "key": key,
            "kind": kind,
            "document": document,
            "status": status,
            "recipient": recipient,
            "mode": mode,
            "state": "queued",
            "attempts": 0,
            "created_at": now,
            "queued_at": now,
        }

    # ---- reading ---------------------------------------------------------------------------------

    async def _visible_document(
        self, caller: EdocCaller, hub_id: str, *, skeleton: bool = False
    ) -> dict[str, Any]:
        document = await self.repository.document(hub_id, with_skeleton=skeleton)
        if document is None or (
            document["sender"] != caller.organ
            and await self.repository.delivery_for(caller.organ, hub_id) is None
        ):
            raise DocumentNotFound(f"no document {hub_id} for {caller.organ}")
        return document

    async def document_content(self, hub_id: str, document: dict[str, Any] | None = None) -> DocumentContent:
        """The stored package as received, with the hub's TraceHeader, as a stream (no access check).

        Raises:
            DocumentNotFound: no such document.
        """
        document = document or await self.repository.document(hub_id, with_skeleton=True)
        if document is None:
            raise DocumentNotFound(f"no document {hub_id}")
        markers = tuple(json.loads(document["markers"]))
        attachments = await self.repository.attachments_of(hub_id) if markers else []

        def attachment(position: int) -> AsyncIterator[bytes]:
            row = attachments[position]
            return encode_attachment(
                json.loads(row["layout"]), self.repository.chunks(hub_id, position, row["chunks"])
            )

        headers = {
            "X-Edoc-Id": hub_id,
            "X-Edoc-From": document["sender"],
            "X-Edoc-Signed": "true" if document["signer"] else "false",
        }
        if document["signer"]:
            headers["X-Edoc-Signer"] = document["signer"]
        meta = {k: v for k, v in document.items() if k not in ("skeleton", "markers", "response")}
        return DocumentContent(meta, assemble(document["skeleton"], markers, attachment), headers)

    async def open_document(self, caller: EdocCaller, hub_id: str) -> DocumentContent:
        """The package for its sender or one of its recipients.

        Raises:
            DocumentNotFound: no such document visible to the caller.
        """
        document = await self._visible_document(caller, hub_id, skeleton=True)
        return await self.document_content(hub_id, document)

    async def attachment(self, caller: EdocCaller, hub_id: str, position: int) -> DocumentContent:
        """One attachment's decoded bytes.

        Raises:
            DocumentNotFound: no such document or attachment visible to the caller.
        """
        await self._visible_document(caller, hub_id)
        rows = await self.repository.attachments_of(hub_id)
        if not 0 <= position < len(rows):
            raise DocumentNotFound(f"document {hub_id} has no attachment {position}")
        row = rows[position]
        return DocumentContent(
            {k: v for k, v in row.items() if k != "layout"},
            self.repository.chunks(hub_id, position, row["chunks"]),
        )

    async def inbox(
        self,
        caller: EdocCaller,
        *,
        kind: str = "edoc",
        state: str = "available",
        sender: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: int = 0,
        limit: int = 50,
    ) -> dict[str, Any]:
        """The caller's deliveries, oldest first, ``limit`` at a time (``next`` continues)."""
        limit = max(1, min(limit, self.settings.page_size))
        kinds = ("edoc", "status") if kind == "all" else (kind,)
        states = None if state == "all" else tuple(state.split(","))
        rows = await self.repository.inbox(
            caller.organ,
            kinds=kinds,
            states=states,
            sender=sender,
            since=since,
            until=until,
            after=after,
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "items": [self._inbox_item(r) for r in rows],
            "next": str(rows[-1]["delivery"]) if more else None,
        }

    @staticmethod
    def _inbox_item(row: Mapping[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = {
            "delivery": row["delivery"],
            "kind": row["kind"],
            "state": row["state"],
            "mode": row["mode"],
            "id": row["document"],
            "document_id": row["document_id"],
            "from": row["sender"],
            "subject": row["subject"],
            "code": row["code"],
            "promulgation_date": row["promulgation_date"],
            "business_type": row["business_type"],
            "refers_to": row["refers_to"],
            "document_state": row["document_state"],
            "signed": row["signer"] is not None,
            "received_at": _iso(row["received_at"]),
            "available_at": _iso(row["available_at"] or row["delivered_at"]),
            "acked_at": _iso(row["acked_at"]),
        }
        if row["kind"] == "status":
            item["status"] = {
                "id": row["status_id"],
                "code": row["status_code"],
                "from": row["status_author"],
                "recipient": row["status_organ"],
                "description": row["status_description"],
                "timestamp": row["status_timestamp"],
            }
        return item

    async def ack(
        self, caller: EdocCaller, hub_id: str | None = None, *, delivery_id: int | None = None
    ) -> dict[str, Any]:
        """Acknowledge the caller's delivery of a document (or any delivery by id); idempotent.

        Raises:
            DocumentNotFound: the caller has no such delivery, or it is not in its inbox yet.
        """
        row = await self.repository.ack(caller.organ, document=hub_id, delivery_id=delivery_id)
        if row is None:
            raise DocumentNotFound(
                f"no delivery {'of ' + hub_id if hub_id else delivery_id} to acknowledge for {caller.organ}"
            )
        return {
            "delivery": row["id"],
            "kind": row["kind"],
            "id": row["document"],
            "recipient": row["recipient"],
            "state": row["state"],
            "acked_at": _iso(aware(row["acked_at"])),
        }

    async def ack_status(self, caller: EdocCaller, status_id: str) -> dict[str, Any]:
        """Acknowledge the caller's delivery of a status message.

        Raises:
            DocumentNotFound: the caller has no delivery of that status.
        """
        row = await self.repository.status_delivery_for(caller.organ, status_id)
        if row is None:
            raise DocumentNotFound(f"no status {status_id} delivered to {caller.organ}")
        return await self.ack(caller, delivery_id=row["id"])

    async def ack_if_recipient(self, caller: EdocCaller, hub_id: str) -> None:
        """Acknowledge the caller's delivery of ``hub_id`` when it has one in its inbox (the sender has none)."""
        if await self.repository.delivery_for(caller.organ, hub_id) is not None:
            await self.repository.ack(caller.organ, document=hub_id)

    async def record_failure(self, caller: EdocCaller, hub_id: str, reason: str) -> None:
        """Note that the caller could not process its delivery of ``hub_id`` (it stays in the inbox).

        Raises:
            DocumentNotFound: the caller has no delivery of it.
        """
        row = await self.repository.delivery_for(caller.organ, hub_id)
        if row is None:
            raise DocumentNotFound(f"no document {hub_id} for {caller.organ}")
        await self.repository.record_failure(caller.organ, row["id"], f"recipient reported: {reason}")

    # ---- statuses --------------------------------------------------------------------------------

    def _check_status(self, caller: EdocCaller, data: bytes) -> tuple[StatusMessage, str | None]:
        root = parse_edxml(data, max_bytes=self.settings.max_package_bytes)
        self._schema.validate(root)
        if kind_of(root) != "status":
            raise PackageInvalid("this is a document package, not a status message", element="StatusCode")
        claimed = read_status(root)
        if claimed.sender.organ_id != caller.organ:
            raise CallerRefused(
                f"client {caller.client} acts for {caller.organ}, not for From/OrganId {claimed.sender.organ_id}",
                kind="denied",
            )
        verified = self._verifier.verify(root, caller.member, caller.organ, required=False)
        return (read_status(verified.root) if verified.signed else claimed), verified.signer

    async def submit_status_message(
        self, caller: EdocCaller, data: bytes, hub_id: str | None = None
    ) -> dict[str, Any]:
        """Record an edXML status message about ``hub_id`` (or the document its ResponseFor names).

        Raises:
            PackageRefused, SignatureRefused, CallerRefused, DocumentNotFound, TransitionRefused: refused.
        """
        status, signer = await self._cpu(len(data), self._check_status, caller, data)
        response = status.response_for
        if hub_id is None:
            original = await self.repository.original_for(response.organ_id, response.document_id)
            if original is None:
                raise DocumentNotFound(f"no document {response.document_id} from {response.organ_id}")
            hub_id = original["id"]
        document = await self.repository.document(hub_id)
        if document is None:
            raise DocumentNotFound(f"no document {hub_id}")
        if response.document_id != document["document_id"]:
            raise PackageInvalid(
                f"ResponseFor/DocumentId {response.document_id} is not the DocumentId of document {hub_id}",
                element="ResponseFor/DocumentId",
            )
        request = StatusInput(
            code=status.code,
            description=status.description,
            timestamp=status.timestamp,
            staff=status.staff,
            raw=data,
            signer=signer,
        )
        return await self.post_status(caller, hub_id, request, document=document)

    async def post_status(
        self, caller: EdocCaller, hub_id: str, request: StatusInput, *, document: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Record a status about ``hub_id`` from the caller and deliver it to the other side.

        Raises:
            DocumentNotFound: no such document visible to the caller.
            TransitionRefused: the code is not allowed now or not from the caller.
            PackageInvalid: a named recipient is not a recipient of the document.
        """
        document = document or await self.repository.document(hub_id)
        if document is None:
            raise DocumentNotFound(f"no document {hub_id}")
        timestamp = request.timestamp or format_timestamp(self._clock())
        for _ in range(5):
            recipients = {r["organ"]: r for r in await self.repository.recipients_of(hub_id)}
            is_sender = caller.organ == document["sender"]
            by_sender = is_sender and (
                request.code is StatusCode.RECALL_REQUESTED or caller.organ not in recipients
            )
            if by_sender:
                targets = list(request.recipients) or [
                    organ
                    for organ, row in recipients.items()
                    if not RecipientState(row["status"], row["recall"]).final
                ]
                strangers = [organ for organ in targets if organ not in recipients]
                if strangers:
                    raise PackageInvalid(
                        f"{', '.join(strangers)} is not a recipient of document {hub_id}",
                        element="recipients",
                    )
                if not targets:
                    raise TransitionRefused(
                        f"status {request.code.value} refused: no recipient can still be asked",
                        current=None,
                        code=request.code.value,
                    )
            elif caller.organ in recipients:
                targets = [caller.organ]
            else:
                raise DocumentNotFound(f"no document {hub_id} for {caller.organ}")
            if request.timestamp is not None:
                # A status carrying its own timestamp is idempotent: the same one again is a replay.
                replay = await self._replayed_status(hub_id, targets, caller.organ, request.code, timestamp)
                if replay is not None:
                    return replay
            transitions = []
            for organ in targets:
                row = recipients[organ]
                new = next_state(
                    RecipientState(row["status"], row["recall"]), request.code, by_sender=by_sender
                )
                transitions.append((organ, row["version"], {"status": new.status, "recall": new.recall}))
            raw = request.raw or build_status(
                StatusMessage(
                    sender=Organization(caller.organ),
                    response_for=ResponseFor(
                        document["sender"],
                        document["document_id"],
                        document["code"],
                        document["promulgation_date"],
                    ),
                    code=request.code,
                    timestamp=timestamp,
                    description=request.description,
                    staff=request.staff,
                )
            )
            now = self._clock()
            statuses, deliveries = [], []
            audience = targets if by_sender else [document["sender"]]
            modes = {code: agency.mode for code, agency in (await self.directory.lookup(audience)).items()}
            for organ in targets:
                status_id = uuid.uuid4().hex
                statuses.append(
                    {
                        "id": status_id,
                        "document": hub_id,
                        "organ": organ,
                        "author": caller.organ,
                        "code": request.code.value,
                        "description": request.description,
                        "timestamp": timestamp,
                        "staff": json.dumps(_staff_dict(request.staff), ensure_ascii=False)
                        if request.staff
                        else None,
                        "raw": raw,
                        "signer": request.signer,
                        "created_at": now,
                    }
                )
                to = organ if by_sender else document["sender"]
                deliveries.append(
                    self._delivery_row(
                        f"status:{status_id}:{to}",
                        "status",
                        hub_id,
                        status_id,
                        to,
                        modes.get(to, "pull"),
                        now,
                    )
                )
            try:
                stored = await self.repository.store_status(transitions, statuses, deliveries)
            except DuplicateKey:
                replay = await self._replayed_status(hub_id, targets, caller.organ, request.code, timestamp)
                if replay is None:
                    raise StoreError("a concurrent status collided but left no status") from None
                return replay
            if stored is None:
                continue  # a recipient's state changed underneath: decide again on fresh state
            self._metrics.submissions.labels("status", "accepted").inc()
            await self._publisher.publish(stored)
            return {
                "id": hub_id,
                "code": request.code.value,
                "timestamp": timestamp,
                "statuses": [{"id": s["id"], "recipient": s["organ"]} for s in statuses],
                "replayed": False,
            }
        raise TransitionRefused(
            "the document's state kept changing; try again", current=None, code=request.code.value
        )

    async def _replayed_status(
        self, hub_id: str, targets: Sequence[str], author: str, code: StatusCode, timestamp: str
    ) -> dict[str, Any] | None:
        found = []
        for organ in targets:
            row = await self.repository.status_by_key(hub_id, organ, author, code.value, timestamp)
            if row is None:
                return None
            found.append({"id": row["id"], "recipient": organ})
        self._metrics.submissions.labels("status", "duplicate").inc()
        return {"id": hub_id, "code": code.value, "timestamp": timestamp, "statuses": found, "replayed": True}

    async def status_history(self, caller: EdocCaller, hub_id: str) -> dict[str, Any]:
        """Each recipient's current state and status history (a recipient sees only its own).

        Raises:
            DocumentNotFound: no such document visible to the caller.
        """
        document = await self._visible_document(caller, hub_id)
        recipients = await self.repository.recipients_of(hub_id)
        history = await self.repository.statuses_of(hub_id)
        if caller.organ != document["sender"]:
            recipients = [r for r in recipients if r["organ"] == caller.organ]
        result = {}
        for row in recipients:
            result[row["organ"]] = {
                "status": row["status"],
                "recall": row["recall"],
                "history": [
                    {
                        "id": s["id"],
                        "code": s["code"],
                        "from": s["author"],
                        "description": s["description"],
                        "timestamp": s["timestamp"],
                        "staff": s["staff"],
                        "signed": s["signer"] is not None,
                        "recorded_at": _iso(s["created_at"]),
                    }
                    for s in history
                    if s["organ"] == row["organ"]
                ],
            }
        return {
            "id": hub_id,
            "document_id": document["document_id"],
            "from": document["sender"],
            "state": document["state"],
            "recipients": result,
        }

    async def status_message(self, caller: EdocCaller, status_id: str) -> bytes:
        """The edXML status message as received (or as the hub built it from JSON).

        Raises:
            DocumentNotFound: no such status visible to the caller.
        """
        row = await self.repository.status(status_id)
        if row is None:
            raise DocumentNotFound(f"no status {status_id}")
        document = await self.repository.document(row["document"])
        parties = {row["organ"], row["author"], document["sender"] if document else ""}
        if caller.organ not in parties:
            raise DocumentNotFound(f"no status {status_id} for {caller.organ}")
        return bytes(row["raw"])

    async def delivery_body(self, row: Mapping[str, Any]) -> tuple[AsyncIterator[bytes], dict[str, str]]:
        """What a push delivery POSTs: the package (or status message) and the hub's headers."""
        headers = {
            "Content-Type": "application/xml; charset=utf-8",
            "Idempotency-Key": row["key"],
            "X-Edoc-Kind": row["kind"],
            "X-Edoc-Delivery": str(row["id"]),
            "X-Edoc-Id": row["document"],
        }
        if row["kind"] == "status":
            status = await self.repository.status(row["status"])
            if status is None:
                raise DocumentNotFound(f"no status {row['status']}")
            headers["X-Edoc-Status-Id"] = status["id"]

            async def one() -> AsyncIterator[bytes]:
                yield bytes(status["raw"])

            return one(), headers
        content = await self.document_content(row["document"])
        headers.update(content.headers)
        return content.stream, headers


def _staff_dict(staff: StaffInfo) -> dict[str, str]:
    return {
        "department": staff.department,
        "staff": staff.staff,
        "mobile": staff.mobile,
        "email": staff.email,
    }


__all__ = ["DocumentContent", "EdocCaller", "EdocsService", "StatusInput", "Submission"]
