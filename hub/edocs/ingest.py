"""Getting a package in and out without holding its attachments twice.

In: the request body is spooled (memory up to 1 MiB, then a temporary file) under the size limit;
multipart bodies are split into spooled parts. After the package has been verified, a second,
streaming pass over the spool (an lxml target parser fed 64 KiB at a time) decodes each
``ContentTransferEncoded`` incrementally into chunks for the store, recording the exact whitespace
layout of the base64 text. The stored skeleton is the package with a marker in place of each
attachment's text.

Out: the skeleton is streamed with every marker replaced by the attachment re-encoded from its
chunks in its recorded layout, so the canonical form, and therefore the sender's signature, is
what the sender signed.
"""

import base64
import binascii
import contextlib
import hashlib
import json
import re
import secrets
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar, Protocol, cast

from lxml import etree
from python_multipart.multipart import MultipartParser, parse_options_header

from hub.edocs.edxml import NAMESPACES, XML_DECLARATION, append_trace, envelope_element, q
from hub.edocs.errors import PackageInvalid, PackageMalformed, PackageTooLarge

READ_CHUNK = 64 * 1024
STORE_CHUNK = 256 * 1024
MEMORY_SPOOL = 1024 * 1024
MAX_LAYOUT_RUNS = 100_000
MAX_FIELD = 64 * 1024
MULTIPART_OVERHEAD = 256 * 1024
_TOKENS = re.compile(r"[^ \t\r\n]+|[ \t\r\n]+")
_WHITESPACE = " \t\r\n"


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


class Spool:
    """Bytes received from a client: in memory while small, then in a temporary file."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=MEMORY_SPOOL)  # noqa: SIM115
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self.size += len(data)

    def read_all(self) -> bytes:
        self._file.seek(0)
        return self._file.read()

    def chunks(self, size: int = READ_CHUNK, *, digest: _Digest | None = None) -> Iterator[bytes]:
        """The bytes from the start, ``size`` at a time; ``digest`` (a hashlib object) is fed each piece."""
        self._file.seek(0)
        while chunk := self._file.read(size):
            if digest is not None:
                digest.update(chunk)
            yield chunk

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "Spool":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @classmethod
    def of(cls, data: bytes) -> "Spool":
        spool = cls()
        spool.write(data)
        return spool


async def spool_body(stream: AsyncIterable[bytes], limit: int, declared: str | None = None) -> Spool:
    """Spool a request body, refusing it as soon as it passes ``limit`` bytes.

    Raises:
        PackageTooLarge: the body (or its declared Content-Length) is over ``limit``.
    """
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PackageTooLarge(f"the body is {declared} bytes; the limit is {limit}", limit=limit)
    spool = Spool()
    try:
        async for chunk in stream:
            if spool.size + len(chunk) > limit:
                raise PackageTooLarge(f"the body exceeds the limit of {limit} bytes", limit=limit)
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    return spool


@dataclass
class MultipartBody:
    """The parts of a multipart/form-data body: file parts spooled, text fields decoded."""

    files: dict[str, Spool] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        for spool in self.files.values():
            spool.close()


def is_multipart(content_type: str | None) -> bool:
    return bool(content_type) and parse_options_header(content_type)[0] == b"multipart/form-data"


def split_multipart(
    body: Spool, content_type: str, *, part_limit: int, file_fields: frozenset[str]
) -> MultipartBody:
    """Split a spooled multipart/form-data body; parts named in ``file_fields`` or carrying a filename
    are spooled, others are decoded as UTF-8 text fields.

    Raises:
        PackageMalformed: the multipart body cannot be parsed.
        PackageTooLarge: a part is larger than ``part_limit`` (a text field than 64 KiB).
    """
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise PackageMalformed("multipart/form-data without a boundary", reason="multipart")
    result = MultipartBody()
    state: dict[str, Any] = {}

    def on_part_begin() -> None:
        state.update(headers={}, field=b"", value=b"", sink=None, text=bytearray(), name=None)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, params = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        if (name in file_fields or b"filename" in params) and name not in result.files:
            state["sink"] = result.files[name] = Spool()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        sink: Spool | None = state["sink"]
        piece = data[start:end]
        if sink is not None:
            if sink.size + len(piece) > part_limit:
                raise PackageTooLarge(f"part {state['name']!r} exceeds {part_limit} bytes", limit=part_limit)
            sink.write(piece)
        elif state["name"] and state["name"] not in result.files:
            state["text"] += piece
            if len(state["text"]) > MAX_FIELD:
                raise PackageTooLarge(f"field {state['name']!r} exceeds {MAX_FIELD} bytes", limit=MAX_FIELD)

    def on_part_end() -> None:
        if state.get("sink") is None and state.get("name") and state["name"] not in result.files:
            result.fields[state["name"]] = bytes(state["text"]).decode("utf-8", "replace")

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        for chunk in body.chunks():
            parser.write(chunk)
        parser.finalize()
    except PackageTooLarge:
        result.close()
        raise
    except Exception as exc:  # python-multipart raises its own and ValueError variants
        result.close()
        raise PackageMalformed(f"the multipart body cannot be parsed: {exc}", reason="multipart") from exc
    return result


# ---- the skeleton --------------------------------------------------------------------------------


_ATTACHMENT_TEXTS = "e:AttachmentEncoded/e:Attachment/e:ContentTransferEncoded"
_HAS_TEXT = etree.XPath("boolean(text())")  # without copying the text out, as .text would


@contextlib.contextmanager
def _stand_ins(nodes: list[etree._Element], texts: list[str]) -> Iterator[None]:
    # Each node is swapped for an element of its own name, attributes, line and tail holding only the given
    # text, and swapped back afterwards: moving elements costs no copy of a megabyte of text (taking the
    # text out as a str and setting it again copied it twice and checked it, about 4 ms a megabyte). A
    # node that might not come back exactly as it was (a prefix or declaration of its own, attributes)
    # has its text and children swapped instead.
    swapped: list[tuple[etree._Element, etree._Element]] = []
    taken: list[tuple[etree._Element, str | bytes | None, list[etree._Element]]] = []
    try:
        for node, text in zip(nodes, texts, strict=True):
            parent = node.getparent()
            assert parent is not None
            if _moves_back_unchanged(node, parent):
                stand_in = parent.makeelement(node.tag)
                stand_in.text = text
                stand_in.tail = node.tail
                stand_in.sourceline = node.sourceline
                parent.replace(node, stand_in)
                swapped.append((node, stand_in))
            else:
                children = list(node)
                for child in children:
                    node.remove(child)
                taken.append((node, _take_text(node, text), children))
        yield
    finally:
        for node, stand_in in reversed(swapped):
            parent = stand_in.getparent()
            assert parent is not None
            parent.replace(stand_in, node)
        for node, original, children in reversed(taken):
            node.text = original  # type: ignore[assignment]  # ASCII bytes: copied into the tree once
            node.extend(children)


def _moves_back_unchanged(node: etree._Element, parent: etree._Element) -> bool:
    # A node taken out of the tree gets declarations of its own, and on its way back takes the parent's
    # declaration of its namespace: the same prefix only when that is the one prefix in scope for it and
    # the node declares nothing itself (and has no attribute whose prefix could change).
    scope = parent.nsmap
    uri = etree.QName(node).namespace
    return (
        not node.attrib
        and node.nsmap == scope
        and scope.get(node.prefix) == uri
        and list(scope.values()).count(uri) == 1
    )


def _take_text(node: etree._Element, text: str) -> str | bytes | None:
    # Swaps the text; an attachment's (ASCII) text is kept as bytes, the cheapest to put back.
    original = node.text
    node.text = text
    return original.encode("ascii") if original is not None and original.isascii() else original


@contextlib.contextmanager
def attachment_texts_held(root: etree._Element) -> Iterator[int]:
    """Take the base64 text of each attachment out of the tree for the duration, and put it back; yields
    how many were taken.

    The XSD's ``base64Binary`` check of a megabyte of text costs more than parsing it; with the text held
    out, the schema checks the package's structure, and the storage pass's strict decoder checks the
    base64 (refusing the package before anything is committed). Only a ``ContentTransferEncoded`` holding
    nothing but text is emptied, so what the schema sees is always a fragment the decoder checks whole.
    """
    nodes = [n for n in root.iterfind(_ATTACHMENT_TEXTS, NAMESPACES) if len(n) == 0 and _HAS_TEXT(n)]
    with _stand_ins(nodes, [""] * len(nodes)):
        yield len(nodes)


def make_skeleton(root: etree._Element, hub_organ_id: str, timestamp: str) -> tuple[bytes, tuple[str, ...]]:
    """Serialize the package with each attachment's text replaced by a unique marker and the hub's
    TraceHeader appended; returns the skeleton and its markers, in attachment order. The tree is left as
    it was (its signature can still be verified)."""
    nonce = secrets.token_hex(12)
    nodes = list(root.iterfind(_ATTACHMENT_TEXTS, NAMESPACES))
    markers = tuple(f"@@edoc-attachment-{nonce}-{index}@@" for index in range(len(nodes)))
    envelope = envelope_element(root)
    head = None if envelope is None else envelope.find(q("edXMLHeader"))
    had_trace_list = head is not None and head.find(q("TraceHeaderList")) is not None
    with _stand_ins(nodes, list(markers)):
        trace = append_trace(root, hub_organ_id, timestamp)
        try:
            return XML_DECLARATION + etree.tostring(root, encoding="UTF-8"), markers
        finally:
            _remove_trace(trace, had_trace_list)


def _remove_trace(trace: etree._Element, had_trace_list: bool) -> None:
    # Undoes append_trace: the TraceHeader (and the TraceHeaderList it created) go, their tails stay.
    trace_list = trace.getparent()
    assert trace_list is not None
    if not had_trace_list:
        trace_list.getparent().remove(trace_list)  # type: ignore[union-attr]
        return
    previous = trace.getprevious()
    if trace.tail is not None:
        if previous is not None:
            previous.tail = (previous.tail or "") + trace.tail
        else:
            trace_list.text = (trace_list.text or "") + trace.tail
        trace.tail = None
    trace_list.remove(trace)


# ---- decoding attachments --------------------------------------------------------------------------


@dataclass
class AttachmentRecord:
    """What the streaming pass learnt about one attachment."""

    position: int
    content_id: str = ""
    name: str = ""
    content_type: str = ""
    description: str = ""
    size: int = 0
    sha256: str = ""
    chunks: int = 0
    layout: dict[str, Any] = field(default_factory=dict)


class _Base64Sink:
    """Decodes base64 text incrementally and records where its whitespace was."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self._emit = emit
        self._seen = False
        self._lead = ""
        self._ws = ""
        self._run = 0
        self._line = 0
        self._sep = ""
        self._inner = 0
        self._runs: list[list[Any]] | None = None
        self._carry = ""
        self._last = ""
        self._buffer = bytearray()
        self._hash = hashlib.sha256()
        self._pieces: list[str] = []
        self._held = 0
        self.size = 0

    def feed(self, text: str) -> None:
        # libxml2 hands character data over a few hundred characters at a time: gathered here, it is
        # tokenised, decoded and hashed 64 KiB at a time (the same tokens, far fewer calls).
        self._pieces.append(text)
        self._held += len(text)
        if self._held >= READ_CHUNK:
            self._drain()

    def _drain(self) -> None:
        if not self._pieces:
            return
        text = "".join(self._pieces)
        self._pieces, self._held = [], 0
        chars: list[str] = []
        if any(c in text for c in _WHITESPACE):
            for match in _TOKENS.finditer(text):
                token = match.group()
                if token[0] in _WHITESPACE:
                    self._ws += token
                else:
                    self._chars(token)
                    chars.append(token)
        elif text:
            # One unbroken run (base64 sent as one line): what the tokeniser would find, at C speed.
            self._chars(text)
            chars.append(text)
        if chars:
            data = self._carry + "".join(chars)
            cut = len(data) - len(data) % 4
            if cut:
                self._decode(data[:cut])
                self._last = data[cut - 4 : cut]
            self._carry = data[cut:]

    def _chars(self, token: str) -> None:
        if not self._seen:
            self._seen, self._lead, self._ws = True, self._ws, ""
        elif self._ws:
            self._close_run(self._run, self._ws)
            self._run, self._ws = 0, ""
        self._run += len(token)

    def _close_run(self, length: int, ws: str) -> None:
        if self._runs is None:
            if self._inner == 0:
                self._line, self._sep = length, ws
            if length == self._line and ws == self._sep:
                self._inner += 1
                return
            self._runs = [[self._line, self._sep] for _ in range(self._inner)]
        self._runs.append([length, ws])
        if len(self._runs) > MAX_LAYOUT_RUNS:
            raise PackageInvalid(
                "ContentTransferEncoded: the base64 text has too many irregular line breaks",
                element="ContentTransferEncoded",
            )

    def _decode(self, chars: str) -> None:
        try:
            data = binascii.a2b_base64(chars, strict_mode=True)
        except binascii.Error as exc:
            raise PackageInvalid(
                f"ContentTransferEncoded is not valid base64: {exc}", element="ContentTransferEncoded"
            ) from exc
        self._hash.update(data)
        self.size += len(data)
        self._buffer += data
        while len(self._buffer) >= STORE_CHUNK:
            self._emit(bytes(self._buffer[:STORE_CHUNK]))
            del self._buffer[:STORE_CHUNK]

    def finish(self) -> tuple[dict[str, Any], str]:
        self._drain()
        if self._carry:
            raise PackageInvalid(
                "ContentTransferEncoded: the base64 text length is not a multiple of 4",
                element="ContentTransferEncoded",
            )
        if self._last and base64.b64encode(base64.b64decode(self._last)).decode() != self._last:
            raise PackageInvalid(
                "ContentTransferEncoded: the base64 text is not canonical (padding bits set)",
                element="ContentTransferEncoded",
            )
        if self._buffer:
            self._emit(bytes(self._buffer))
            self._buffer.clear()
        if not self._seen:
            return {"lead": self._ws, "trail": "", "line": 0, "sep": ""}, self._hash.hexdigest()
        layout: dict[str, Any] = {"lead": self._lead, "trail": self._ws}
        if self._runs is None and (self._inner == 0 or self._run <= self._line):
            layout.update(line=self._line if self._inner else 0, sep=self._sep)
        else:
            runs = self._runs if self._runs is not None else [[self._line, self._sep]] * self._inner
            layout["runs"] = runs
        return layout, self._hash.hexdigest()


class AttachmentExtractor:
    """An lxml parser target: the attachments' metadata, and their content as decoded chunks."""

    _META: ClassVar[dict[str, str]] = {
        q("ContentId"): "content_id",
        q("AttachmentName"): "name",
        q("ContentType"): "content_type",
        q("Description"): "description",
    }

    def __init__(self) -> None:
        self.records: list[AttachmentRecord] = []
        self.pending: list[tuple[int, int, bytes]] = []
        self._stack: list[str] = []
        self._current: AttachmentRecord | None = None
        self._sink: _Base64Sink | None = None
        self._text: list[str] | None = None

    def start(self, tag: str, attrib: Any, nsmap: Any = None) -> None:
        parent = self._stack[-1] if self._stack else None
        self._stack.append(tag)
        if tag == q("Attachment") and parent == q("AttachmentEncoded"):
            self._current = AttachmentRecord(position=len(self.records))
        elif self._current is not None and parent == q("Attachment"):
            if tag == q("ContentTransferEncoded"):
                record = self._current
                self._sink = _Base64Sink(lambda data: self._chunk(record, data))
            elif tag in self._META:
                self._text = []

    def _chunk(self, record: AttachmentRecord, data: bytes) -> None:
        self.pending.append((record.position, record.chunks, data))
        record.chunks += 1

    def data(self, text: str) -> None:
        if self._sink is not None:
            self._sink.feed(text)
        elif self._text is not None:
            self._text.append(text)

    def end(self, tag: str) -> None:
        self._stack.pop()
        record = self._current
        if record is None:
            return
        if tag == q("ContentTransferEncoded") and self._sink is not None:
            record.layout, record.sha256 = self._sink.finish()
            record.size = self._sink.size
            self._sink = None
        elif tag in self._META and self._text is not None:
            setattr(record, self._META[tag], "".join(self._text).strip()[:1000])
            self._text = None
        elif tag == q("Attachment"):
            self.records.append(record)
            self._current = None

    def comment(self, text: str) -> None:
        return None

    def close(self) -> list[AttachmentRecord]:
        return self.records


def attachment_parser(extractor: AttachmentExtractor) -> etree.XMLParser:
    """A feed parser hardened like the safe parser, whose checks the bytes passed already; like the edocs
    parse it takes an attachment as one text node of any length the package limit allows."""
    return etree.XMLParser(
        target=cast(Any, extractor), resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True
    )


def layout_json(layout: dict[str, Any]) -> str:
    return json.dumps(layout, separators=(",", ":"))


# ---- encoding attachments back ----------------------------------------------------------------------


def _xml_text(text: str) -> bytes:
    # Base64 characters and spaces, tabs and newlines need no escaping; a CR came from a reference.
    return text.replace("\r", "&#13;").encode("ascii")


async def encode_attachment(layout: dict[str, Any], chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The base64 text of an attachment, in the layout it arrived in, as escaped XML character data."""
    yield _xml_text(layout.get("lead", ""))
    runs: list[list[Any]] | None = layout.get("runs")
    line: int = layout.get("line", 0)
    sep = _xml_text(layout.get("sep", ""))
    run_index = 0
    room = runs[0][0] if runs else (line or -1)
    carry = b""

    def place(chars: bytes) -> bytes:
        nonlocal run_index, room
        out = bytearray()
        position = 0
        while position < len(chars):
            if room == 0:
                if runs is not None:
                    out += _xml_text(runs[run_index][1])
                    run_index += 1
                    room = runs[run_index][0] if run_index < len(runs) else -1
                else:
                    out += sep
                    room = line
            take = len(chars) - position if room < 0 else min(room, len(chars) - position)
            out += chars[position : position + take]
            position += take
            if room > 0:
                room -= take
        return bytes(out)

    async for chunk in chunks:
        data = carry + chunk
        cut = len(data) - len(data) % 3
        carry = data[cut:]
        if cut:
            yield place(base64.b64encode(data[:cut]))
    if carry:
        yield place(base64.b64encode(carry))
    yield _xml_text(layout.get("trail", ""))


async def assemble(
    skeleton: bytes,
    markers: tuple[str, ...],
    attachment: Callable[[int], AsyncIterator[bytes]],
) -> AsyncIterator[bytes]:
    """Stream the skeleton with each marker replaced by ``attachment(position)``'s bytes."""
    rest = skeleton
    for position, marker in enumerate(markers):
        head, found, rest = rest.partition(marker.encode("ascii"))
        yield head
        if found:
            async for piece in attachment(position):
                yield piece
    yield rest


__all__ = [
    "AttachmentExtractor",
    "AttachmentRecord",
    "MultipartBody",
    "Spool",
    "assemble",
    "attachment_parser",
    "attachment_texts_held",
    "encode_attachment",
    "is_multipart",
    "layout_json",
    "make_skeleton",
    "split_multipart",
    "spool_body",
]
