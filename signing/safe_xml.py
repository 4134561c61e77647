"""The one parser for untrusted XML: no DTD, no entities, no network, bounded size, depth and element count.

The prolog is scanned for ``<!DOCTYPE`` before libxml2 sees a byte, so a DTD or entity attack is refused
with :attr:`Reason.DTD_REFUSED` before any expansion, lookup or crypto can run.
"""

import codecs
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lxml import etree

from signing.errors import Reason, XmlMalformed, XmlRefused

MIB = 1024 * 1024

__all__ = ["DEFAULT_LIMITS", "XmlLimits", "parse_xml"]


@dataclass(frozen=True, slots=True)
class XmlLimits:
    """Bounds for one untrusted document; every bound is on by default."""

    max_bytes: int = 50 * MIB
    max_depth: int = 100
    max_elements: int = 1_000_000
    max_prolog_chars: int = 64 * 1024

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


def _parser() -> etree.XMLParser:
    # lxml parsers are not thread-safe but are reusable: one per thread.
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser()
    return parser


@lru_cache(maxsize=16)
def _too_deep(max_depth: int) -> etree.XPath:
    return etree.XPath("boolean(" + "/*" * (max_depth + 1) + ")")


_COUNT = etree.XPath("count(//*)")


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
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
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        message = str(exc)
        if "Entity '" in message or "EntityRef" in message:
            raise XmlRefused(Reason.ENTITY_REFUSED, message) from exc
        if "Excessive depth" in message:
            raise XmlRefused(Reason.TOO_DEEP, message) from exc
        raise XmlMalformed(message) from exc
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
