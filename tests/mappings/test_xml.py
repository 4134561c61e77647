"""XML both ways: safe-parsed element -> dict, dict -> namespace-aware XML through a template."""

from typing import Any

import pytest
from lxml import etree

from mappings import MappingError, SpecError, SpecLoader, XmlTemplate, from_dict, to_dict

from .conftest import WriteSpec

NS = "http://dancuquocgia.bca"
PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def parse(text: str) -> etree._Element:
    return etree.fromstring(text.encode("utf-8"), parser=PARSER)


def test_to_dict_reads_local_names_lists_text_and_attributes() -> None:
    # Given a C06-style response with attributes, a repeated element and namespaces
    element = parse(
        f'<r:CongdanCollection xmlns:r="http://www.mic.gov.vn/dancu/1.0" xmlns:d="{NS}" SoCongDan="2">'
        "<d:CongDan><d:SoDinhDanh>001096001005</d:SoDinhDanh>"
        "<d:HoVaTen><d:Ho>Nguyễn</d:Ho><d:ChuDem/><d:Ten>An</d:Ten></d:HoVaTen></d:CongDan>"
        "<!-- a comment --><d:CongDan><d:SoDinhDanh>001096001006</d:SoDinhDanh></d:CongDan>"
        '<d:GhiChu loai="1">ok</d:GhiChu></r:CongdanCollection>'
    )
    # When it is turned into a dict
    data = to_dict(element)
    # Then names are local, the repeated element is a list, an empty leaf is None
    assert data == {
        "@SoCongDan": "2",
        "CongDan": [
            {"SoDinhDanh": "001096001005", "HoVaTen": {"Ho": "Nguyễn", "ChuDem": None, "Ten": "An"}},
            {"SoDinhDanh": "001096001006"},
        ],
        "GhiChu": {"@loai": "1", "#text": "ok"},
    }


@pytest.mark.parametrize(("text", "expected"), [("<a>x</a>", {"#text": "x"}), ("<a/>", {})])
def test_to_dict_leaf_root_is_a_dict(text: str, expected: dict[str, Any]) -> None:
    assert to_dict(parse(text)) == expected


TEMPLATE = XmlTemplate(
    root="dc:TraCuuThongTinCongDan",
    namespace=NS,
    nsmap={"dc": NS},
    order={"": ("MaYeuCau", "SoDinhDanh", "NgayThangNamSinh"), "NgayThangNamSinh": ("Nam", "NgayThangNam")},
)


def test_from_dict_builds_namespaced_xml_in_template_order() -> None:
    data = {
        "NgayThangNamSinh": {"NgayThangNam": "19960501", "Nam": "1996"},
        "SoDinhDanh": "001",
        "MaYeuCau": "r1",
    }
    xml = etree.tostring(from_dict(data, TEMPLATE), encoding="unicode")
    assert xml == (
        f'<dc:TraCuuThongTinCongDan xmlns:dc="{NS}"><dc:MaYeuCau>r1</dc:MaYeuCau>'
        "<dc:SoDinhDanh>001</dc:SoDinhDanh><dc:NgayThangNamSinh><dc:Nam>1996</dc:Nam>"
        "<dc:NgayThangNam>19960501</dc:NgayThangNam></dc:NgayThangNamSinh></dc:TraCuuThongTinCongDan>"
    )


def test_from_dict_unqualified_children_and_default_namespace() -> None:
    template = XmlTemplate(root="Req", namespace=NS, qualified=False)
    xml = etree.tostring(from_dict({"@id": 7, "A": True, "B": None}, template), encoding="unicode")
    assert xml == f'<ns0:Req xmlns:ns0="{NS}" id="7"><A>true</A><B/></ns0:Req>'


def test_xml_round_trip_keeps_the_data() -> None:
    data = {"@id": "1", "CongDan": [{"SoDinhDanh": "1", "Ten": None}, {"SoDinhDanh": "2"}], "GhiChu": "x"}
    assert to_dict(parse(etree.tostring(from_dict(data, TEMPLATE)).decode())) == data


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"CongDan": [{"bad name": "x"}]}, "CongDan[0].bad name"),
        ({"A": {"x:B": "1"}}, "A.x:B"),
        ({"A": [{"B": {"k": object()}}]}, "A[0].B.k"),
    ],
)
def test_from_dict_invalid_data_carries_the_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(MappingError) as info:
        from_dict(data, TEMPLATE)
    assert info.value.path == path


def test_template_undeclared_prefix_is_refused() -> None:
    with pytest.raises(SpecError, match="prefix 'x' is not declared"):
        XmlTemplate(root="x:Root")


def test_spec_xml_section_becomes_a_template(loader: SpecLoader, write_spec: WriteSpec) -> None:
    spec = loader.load(
        write_spec(
            "mapping: x\nversion: 1\nfields: {A: {from: a}}\n"
            f"xml:\n  root: Req\n  namespace: '{NS}'\n  nsmap: {{dc: '{NS}'}}\n  order: {{'': [A]}}\n"
        )
    )
    assert spec.xml is not None
    xml = etree.tostring(from_dict(spec.apply({"a": 1}), spec.xml), encoding="unicode")
    assert xml == f'<dc:Req xmlns:dc="{NS}"><dc:A>1</dc:A></dc:Req>'


@pytest.mark.parametrize(
    ("section", "line", "message"),
    [
        ("xml:\n  root: 5\n", 5, "`root` is the root element's name"),
        ("xml:\n  root: R\n  colour: red\n", 6, "unknown key 'colour'"),
        ("xml:\n  root: x:R\n", 5, "prefix 'x' is not declared"),
        ("xml:\n  root: R\n  qualified: maybe\n", 6, "`qualified` is true or false"),
        ("xml:\n  root: R\n  order: {'': A}\n", 6, "`order` maps an element path"),
    ],
)
def test_spec_invalid_xml_section_names_the_line(
    loader: SpecLoader, write_spec: WriteSpec, section: str, line: int, message: str
) -> None:
    with pytest.raises(SpecError) as info:
        loader.load(write_spec("mapping: x\nversion: 1\nfields: {A: {from: a}}\n" + section))
    assert info.value.line == line and message in str(info.value)
