"""The safe parser refuses hostile XML with the right reason before any expansion."""

import pytest

from signing.errors import Reason, XmlMalformed, XmlRefused
from signing.safe_xml import DEFAULT_LIMITS, XmlLimits, parse_xml
from tests.shared_data import TESTDATA

DEFUSED = TESTDATA / "xmldsig/signxml/test/defusedxml-test-data"


@pytest.mark.parametrize(
    "name",
    [
        "cyclic.xml",
        "dtd.xml",
        "external.xml",
        "external_file.xml",
        "quadratic.xml",
        "xmlbomb.xml",
        "xmlbomb2.xml",
    ],
)
def test_parse_xml_refuses_defusedxml_attacks_as_dtd(name: str) -> None:
    # Given a defusedxml attack file
    data = (DEFUSED / name).read_bytes()
    # When it is parsed / Then it is refused as a DTD, before libxml2 expands anything
    with pytest.raises(XmlRefused) as caught:
        parse_xml(data)
    assert caught.value.reason is Reason.DTD_REFUSED


@pytest.mark.parametrize("name", ["simple.xml", "simple-ns.xml"])
def test_parse_xml_accepts_benign_documents(name: str) -> None:
    root = parse_xml((DEFUSED / name).read_bytes())
    assert root.tag.endswith("root")
    assert len(root) == 3


def test_parse_xml_refuses_dtd_in_utf16_after_comment_and_pi() -> None:
    data = '<?xml version="1.0" encoding="UTF-16"?><?pi x?><!-- c --><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'
    with pytest.raises(XmlRefused) as caught:
        parse_xml(data.encode("utf-16"))
    assert caught.value.reason is Reason.DTD_REFUSED


def test_parse_xml_refuses_undefined_entity_reference() -> None:
    with pytest.raises(XmlRefused) as caught:
        parse_xml(b"<a>&ee;</a>")
    assert caught.value.reason is Reason.ENTITY_REFUSED
    assert "ee" in caught.value.detail


def test_parse_xml_keeps_predefined_and_character_references() -> None:
    assert parse_xml(b"<r>&amp;&#65;&lt;</r>").text == "&A<"


def test_parse_xml_refuses_oversized_document_before_parsing() -> None:
    limits = XmlLimits(max_bytes=100)
    with pytest.raises(XmlRefused) as caught:
        parse_xml(b"<a>" + b"x" * 200 + b"</a>", limits=limits)
    assert caught.value.reason is Reason.TOO_LARGE
    assert "100" in caught.value.detail


def test_parse_xml_refuses_nesting_deeper_than_limit() -> None:
    depth = DEFAULT_LIMITS.max_depth + 1
    with pytest.raises(XmlRefused) as caught:
        parse_xml(b"<a>" * depth + b"</a>" * depth)
    assert caught.value.reason is Reason.TOO_DEEP


def test_parse_xml_accepts_nesting_at_limit() -> None:
    depth = DEFAULT_LIMITS.max_depth
    assert parse_xml(b"<a>" * depth + b"</a>" * depth).tag == "a"


def test_parse_xml_refuses_nesting_beyond_libxml2_cap_as_too_deep() -> None:
    with pytest.raises(XmlRefused) as caught:
        parse_xml(b"<a>" * 300 + b"</a>" * 300)
    assert caught.value.reason is Reason.TOO_DEEP


def test_parse_xml_refuses_too_many_elements() -> None:
    with pytest.raises(XmlRefused) as caught:
        parse_xml(b"<r>" + b"<e/>" * 11 + b"</r>", limits=XmlLimits(max_elements=10))
    assert caught.value.reason is Reason.TOO_MANY_ELEMENTS


def test_parse_xml_refuses_overlong_unterminated_prolog() -> None:
    data = b"<!--" + b"x" * 200 + b"--><a/>"
    with pytest.raises(XmlRefused) as caught:
        parse_xml(data, limits=XmlLimits(max_prolog_chars=50))
    assert caught.value.reason is Reason.TOO_LARGE


@pytest.mark.parametrize("data", [b"", b"<a>", b"<a></b>", b"not xml"])
def test_parse_xml_reports_malformed_input(data: bytes) -> None:
    with pytest.raises(XmlMalformed) as caught:
        parse_xml(data)
    assert caught.value.reason is Reason.MALFORMED


def test_xml_limits_reject_nonpositive_values() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        XmlLimits(max_depth=0)


def test_parse_xml_refuses_text_input() -> None:
    with pytest.raises(TypeError, match="bytes"):
        parse_xml("<a/>")  # type: ignore[arg-type]
