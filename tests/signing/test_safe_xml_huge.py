"""Long text nodes on request (huge_text) and parsing in pieces (parse_xml_chunks), with every protection kept."""

from collections.abc import Callable, Iterator

import pytest
from lxml import etree

from signing.errors import Reason, XmlError, XmlMalformed, XmlRefused
from signing.safe_xml import DEFAULT_LIMITS, XmlLimits, parse_xml, parse_xml_chunks
from tests.shared_data import TESTDATA
from tests.signing.vectors import parsable_documents

DEFUSED = TESTDATA / "xmldsig/signxml/test/defusedxml-test-data"
ATTACKS = [
    "cyclic.xml",
    "dtd.xml",
    "external.xml",
    "external_file.xml",
    "quadratic.xml",
    "xmlbomb.xml",
    "xmlbomb2.xml",
]
HUGE = XmlLimits(huge_text=True)
LONG_TEXT = b"<a>" + b"QUJD" * 3_000_000 + b"</a>"  # 12,000,000 characters in one text node
# A small prolog head (4 bytes a character) makes parse_xml_chunks feed libxml2 piece by piece from the
# first kilobyte on; shorter documents are parsed whole, as parse_xml does.
FED = XmlLimits(huge_text=True, max_prolog_chars=256)


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _parse(data: bytes, limits: XmlLimits, way: str) -> etree._Element:
    if way == "bytes":
        return parse_xml(data, limits=limits)
    return parse_xml_chunks(_pieces(data, 7 if len(data) < 100_000 else 65_536), limits=limits)


@pytest.mark.parametrize("way", ["bytes", "chunks"])
def test_safe_xml_default_parser_still_refuses_a_huge_text_node(way: str) -> None:
    # Given one text node over libxml2's 10,000,000-character cap / When parsed without huge_text
    with pytest.raises(XmlMalformed) as caught:
        _parse(LONG_TEXT, DEFAULT_LIMITS, way)
    # Then it is refused
    assert "huge" in caught.value.detail.lower() or "too long" in caught.value.detail.lower()


@pytest.mark.parametrize("way", ["bytes", "chunks"])
def test_safe_xml_huge_text_accepts_a_long_text_node(way: str) -> None:
    root = _parse(LONG_TEXT, HUGE, way)
    assert root.text is not None and len(root.text) == 12_000_000


@pytest.mark.parametrize("way", ["bytes", "chunks"])
@pytest.mark.parametrize("limits", [HUGE, FED], ids=["huge", "fed"])
@pytest.mark.parametrize("name", ATTACKS)
def test_safe_xml_huge_text_still_refuses_dtd_and_entities(name: str, limits: XmlLimits, way: str) -> None:
    # Given a defusedxml attack file / When parsed with huge_text on / Then it is refused as a DTD
    with pytest.raises(XmlRefused) as caught:
        _parse((DEFUSED / name).read_bytes(), limits, way)
    assert caught.value.reason is Reason.DTD_REFUSED


@pytest.mark.parametrize("way", ["bytes", "chunks"])
def test_safe_xml_huge_text_refuses_xxe_next_to_a_long_text(way: str) -> None:
    # Given an external entity declared in front of a long text node
    attack = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + LONG_TEXT[:-4]
    attack += b"&x;</a>"
    # When parsed with huge_text on / Then the DTD is refused before libxml2 reads a byte
    with pytest.raises(XmlRefused) as caught:
        _parse(attack, HUGE, way)
    assert caught.value.reason is Reason.DTD_REFUSED


@pytest.mark.parametrize("way", ["bytes", "chunks"])
@pytest.mark.parametrize("limits", [HUGE, FED], ids=["huge", "fed"])
def test_safe_xml_huge_text_refuses_undefined_entities(limits: XmlLimits, way: str) -> None:
    with pytest.raises(XmlRefused) as caught:
        _parse(b"<a>&ee;</a>", limits, way)
    assert caught.value.reason is Reason.ENTITY_REFUSED
    assert "ee" in caught.value.detail


@pytest.mark.parametrize("way", ["bytes", "chunks"])
@pytest.mark.parametrize("levels", [HUGE.max_depth + 1, 300, 5000])
def test_safe_xml_huge_text_keeps_the_depth_limit(levels: int, way: str) -> None:
    # Given nesting past the limit, past libxml2's own cap without huge_tree, and past its cap with it
    data = b"<a>" * levels + b"</a>" * levels
    # When parsed with huge_text on / Then it is too deep
    with pytest.raises(XmlRefused) as caught:
        _parse(data, HUGE, way)
    assert caught.value.reason is Reason.TOO_DEEP


@pytest.mark.parametrize("way", ["bytes", "chunks"])
def test_safe_xml_huge_text_keeps_the_element_limit(way: str) -> None:
    with pytest.raises(XmlRefused) as caught:
        _parse(b"<r>" + b"<e/>" * 11 + b"</r>", XmlLimits(huge_text=True, max_elements=10), way)
    assert caught.value.reason is Reason.TOO_MANY_ELEMENTS


def test_safe_xml_chunks_refuse_an_oversized_document_without_reading_on() -> None:
    # Given a body of endless pieces
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        yield b"<a>"
        while True:
            pulled += 1
            yield b"x" * 1000

    # When it is parsed under a 50,000-byte limit / Then it is refused as soon as it passes it
    with pytest.raises(XmlRefused) as caught:
        parse_xml_chunks(endless(), limits=XmlLimits(max_bytes=50_000, huge_text=True))
    assert caught.value.reason is Reason.TOO_LARGE
    assert pulled == 50


def test_safe_xml_chunks_find_a_dtd_behind_a_prolog_split_across_pieces() -> None:
    # Given a DTD behind a comment and a processing instruction, in UTF-16, cut into 3-byte pieces
    data = '<?xml version="1.0" encoding="UTF-16"?><?pi x?><!-- c --><!DOCTYPE a [<!ENTITY e "x">]><a>&e;'
    data += "x" * 2000 + "</a>"
    # When parsed in pieces / Then the DTD is refused
    with pytest.raises(XmlRefused) as caught:
        parse_xml_chunks(_pieces(data.encode("utf-16"), 3), limits=FED)
    assert caught.value.reason is Reason.DTD_REFUSED


def test_safe_xml_chunks_refuse_an_overlong_unterminated_prolog() -> None:
    data = b"<!--" + b"x" * 200 + b"--><a/>"
    with pytest.raises(XmlRefused) as caught:
        parse_xml_chunks(_pieces(data, 5), limits=XmlLimits(max_prolog_chars=50))
    assert caught.value.reason is Reason.TOO_LARGE


@pytest.mark.parametrize("data", [b"", b"<a>", b"<a></b>", b"not xml"])
def test_safe_xml_chunks_report_malformed_input(data: bytes) -> None:
    with pytest.raises(XmlMalformed):
        parse_xml_chunks(_pieces(data, 2), limits=FED)


def _outcome(parse: Callable[[], etree._Element]) -> object:
    try:
        return etree.tostring(parse().getroottree())
    except XmlError as exc:
        return type(exc), exc.reason


def test_safe_xml_chunks_parse_every_vector_as_parse_xml_does() -> None:
    # Given every shared XML-DSig document / When parsed whole and fed in 13-byte pieces
    fed = 0
    for name, data in parsable_documents():
        whole = _outcome(lambda data=data: parse_xml(data, limits=FED))  # type: ignore[misc]
        pieces = _outcome(lambda data=data: parse_xml_chunks(_pieces(data, 13), limits=FED))  # type: ignore[misc]
        # Then both serialise alike, top-level comments included, or are refused for the same reason
        assert pieces == whole, name
        fed += len(data) > 4 * FED.max_prolog_chars and isinstance(whole, bytes)
    assert fed >= 200
