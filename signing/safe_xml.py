"""The one parser for untrusted XML: no DTD, no entities, no network, bounded size, depth and element count.

The prolog is scanned for ``<!DOCTYPE`` before libxml2 sees a byte, so a DTD or entity attack is refused
with :attr:`Reason.DTD_REFUSED` before any expansion, lookup or crypto can run. ``parse_xml`` takes the
document as one bytes object, ``parse_xml_chunks`` as an iterable of pieces (a spooled request body), with
the same checks in the same order.
"""

import codecs
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from lxml import etree

from signing.errors import Reason, XmlMalformed, XmlRefused

MIB = 1024 * 1024

__all__ = ["DEFAULT_LIMITS", "XmlLimits", "parse_xml", "parse_xml_chunks"]


@dataclass(frozen=True, slots=True)
class XmlLimits:
    """Bounds for one untrusted document; every bound is on by default.

    ``huge_text`` lets a text node exceed libxml2's 10,000,000-character cap (its ``huge_tree``); the
    document stays bounded by ``max_bytes``, ``max_depth`` and ``max_elements``, and DTDs, entities and
    the network stay refused. Turn it on only where ``max_bytes`` is what bounds memory (large attachments).
    """

    max_bytes: int = 50 * MIB
    max_depth: int = 100
    max_elements: int = 1_000_000
    max_prolog_chars: int = 64 * 1024
    huge_text: bool = False

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_depth", "max_elements", "max_prolog_chars"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"XmlLimits.{name} must be a positive integer, got {value!r}")
        if self.max_depth > 250:
            # libxml2 without huge_tree stops at 256 levels with a less helpful message.
            raise ValueError(f"XmlLimits.max_depth must be at most 250, got {self.max_depth}")


DEFAULT_LIMITS = XmlLimits()

# (leading bytes, codec, code unit width) per XML 1.0 Appendix F; longest signatures first.
_SNIFF: tuple[tuple[bytes, str, int], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le", 4),
    (codecs.BOM_UTF32_BE, "utf-32-be", 4),
    (b"<\x00\x00\x00", "utf-32-le", 4),
    (b"\x00\x00\x00<", "utf-32-be", 4),
    (codecs.BOM_UTF8, "utf-8", 1),
    (codecs.BOM_UTF16_LE, "utf-16-le", 2),
    (codecs.BOM_UTF16_BE, "utf-16-be", 2),
    (b"<\x00?\x00", "utf-16-le", 2),
    (b"\x00<\x00?", "utf-16-be", 2),
)


def _prolog_text(data: bytes, limits: XmlLimits) -> str:
    for signature, codec, width in _SNIFF:
        if data.startswith(signature):
            head = data[: limits.max_prolog_chars * width]
            head = head[: len(head) - len(head) % width]
            return head.decode(codec, errors="replace").lstrip("\ufeff")
    if data[:4] == b"\x4c\x6f\xa7\x94":
        raise XmlMalformed("EBCDIC encodings are not accepted")
    # ASCII-compatible encodings: the prolog's markup characters are ASCII bytes.
    return data[: limits.max_prolog_chars].decode("latin-1")


def _prolog_bytes(limits: XmlLimits) -> int:
    # Bytes _refuse_dtd reads at most: the prolog's characters in the widest encoding (UTF-32).
    return limits.max_prolog_chars * 4


def _refuse_dtd(data: bytes, limits: XmlLimits) -> None:
    text = _prolog_text(data, limits)
    truncated = len(data) > limits.max_prolog_chars
    position, end = 0, len(text)
    while position < end:
        while position < end and text[position] in " \t\r\n":
            position += 1
        if text.startswith("<?", position):
            closer = text.find("?>", position + 2)
            step = 2
        elif text.startswith("<!--", position):
            closer = text.find("-->", position + 4)
            step = 3
        elif text.startswith("<!", position):
            raise XmlRefused(Reason.DTD_REFUSED, "DTD and entity declarations are not accepted")
        else:
            return
        if closer < 0:
            if truncated:
                raise XmlRefused(Reason.TOO_LARGE, f"prolog longer than {limits.max_prolog_chars} characters")
            return
        position = closer + step


_local = threading.local()


def _parser(huge_text: bool) -> etree.XMLParser:
    # lxml parsers are not thread-safe but are reusable: one per thread and setting.
    name = "huge" if huge_text else "parser"
    parser: etree.XMLParser | None = getattr(_local, name, None)
    if parser is None:
        parser = _new_parser(huge_text)
        setattr(_local, name, parser)
    return parser


@lru_cache(maxsize=16)
def _too_deep(max_depth: int) -> etree.XPath:
    return etree.XPath("boolean(" + "/*" * (max_depth + 1) + ")")


_COUNT = etree.XPath("count(//*)")


def _new_parser(huge_text: bool) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=huge_text,
        remove_blank_text=False,
        collect_ids=False,
    )


def parse_xml(data: bytes, *, limits: XmlLimits = DEFAULT_LIMITS) -> etree._Element:
    """Parse untrusted XML bytes into an element tree, refusing anything unsafe.

    Raises:
        XmlRefused: DTD or entity declarations, undefined entities, or a size, depth or count limit.
        XmlMalformed: the bytes are not well-formed XML.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"parse_xml takes bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise XmlRefused(Reason.TOO_LARGE, f"{len(data)} bytes exceeds the limit of {limits.max_bytes}")
    _refuse_dtd(data, limits)
    try:
        root = etree.fromstring(data, parser=_parser(limits.huge_text))
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(str(exc)) from exc
    return _checked(root, limits)


def parse_xml_chunks(chunks: Iterable[bytes], *, limits: XmlLimits = DEFAULT_LIMITS) -> etree._Element:
    """Parse untrusted XML arriving in pieces, never joining them; refuses what ``parse_xml`` refuses.

    The prolog is checked for a DTD on the first bytes before any reach libxml2, and the document is
    refused as soon as it passes ``limits.max_bytes``.

    Raises:
        XmlRefused: DTD or entity declarations, undefined entities, or a size, depth or count limit.
        XmlMalformed: the bytes are not well-formed XML.
    """
    pieces = iter(chunks)
    collected = bytearray()
    size = 0
    for chunk in pieces:
        size += len(chunk)
        _refuse_size(size, limits)
        collected += chunk
        if len(collected) >= _prolog_bytes(limits):
            break
    else:
        return parse_xml(bytes(collected), limits=limits)  # all of it fits the head: libxml2's faster path
    head = bytes(collected)
    del collected
    _refuse_dtd(head, limits)
    parser = _new_parser(limits.huge_text)
    etree.clear_error_log()  # the push parser's error names the cause only in this thread's log
    try:
        parser.feed(head)
        del head
        for chunk in pieces:
            size += len(chunk)
            _refuse_size(size, limits)
            parser.feed(chunk)
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(_first_fatal(exc)) from exc
    return _checked(root, limits)


def _refuse_size(size: int, limits: XmlLimits) -> None:
    if size > limits.max_bytes:
        raise XmlRefused(Reason.TOO_LARGE, f"more than {limits.max_bytes} bytes")


def _first_fatal(exc: etree.XMLSyntaxError) -> str:
    # The push parser reports "no element found" for a document it gave up on; the log says why.
    for entry in cast(Iterable[Any], exc.error_log):
        if entry.level_name == "FATAL":
            return f"{entry.message}, line {entry.line}, column {entry.column}"
    return str(exc)


def _syntax_error(message: str) -> XmlRefused | XmlMalformed:
    if "Entity '" in message or "EntityRef" in message:
        return XmlRefused(Reason.ENTITY_REFUSED, message)
    if "Excessive depth" in message:
        return XmlRefused(Reason.TOO_DEEP, message)
    return XmlMalformed(message)


def _checked(root: etree._Element | None, limits: XmlLimits) -> etree._Element:
    if root is None:
        raise XmlMalformed("empty document")
    tree = root.getroottree()
    docinfo: Any = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise XmlRefused(Reason.DTD_REFUSED, "DTD and entity declarations are not accepted")
    # Cheap checks evaluated in C: any element below max_depth, and the element count.
    if _too_deep(limits.max_depth)(root):
        raise XmlRefused(Reason.TOO_DEEP, f"nesting exceeds {limits.max_depth} levels")
    count = _COUNT(root)
    if isinstance(count, float) and count > limits.max_elements:
        raise XmlRefused(Reason.TOO_MANY_ELEMENTS, f"{int(count)} elements exceeds {limits.max_elements}")
    return root
