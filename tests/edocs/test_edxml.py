"""The edXML library: build, sign, parse safely, validate against the vendored XSD, read; the attachment
layout survives storage so the sender's signature still verifies."""

import asyncio
import base64
import os
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from lxml import etree

from hub.edocs.edxml import (
    NS,
    TIMESTAMP_FORMAT,
    VN_TIME,
    Attachment,
    Business,
    BusinessDocType,
    EdxmlSchema,
    ManifestReference,
    Organization,
    PackageHeader,
    ResponseFor,
    StaffInfo,
    StatusCode,
    StatusMessage,
    TraceEntry,
    append_trace,
    build_package,
    build_status,
    format_date,
    format_timestamp,
    kind_of,
    load_message,
    parse_edxml,
    parse_timestamp,
    read_package,
    read_status,
    sign_package,
    strip_hub_trace,
)
from hub.edocs.errors import PackageInvalid, PackageMalformed, PackageTooLarge
from hub.edocs.ingest import (
    STORE_CHUNK,
    AttachmentExtractor,
    assemble,
    attachment_parser,
    attachment_texts_held,
    encode_attachment,
    make_skeleton,
)
from signing.trust import RevocationMode, TrustStore
from signing.xmldsig import SignaturePolicy, verify_xml
from tests.edocs.harness import PULL_A, PULL_B, SENDER, Pki, package

SCHEMA = EdxmlSchema()
DATA = Path(__file__).parents[1] / "signing" / "data"


def _policy(pki: Pki) -> SignaturePolicy:
    trust = TrustStore(anchors=[pki.ca.certificate], revocation=RevocationMode.OFF)
    return SignaturePolicy(
        trust=trust, location=f"./{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader/", excise_empty_xmlns=True
    )


def test_edxml_package_round_trip_reads_every_header_field(pki: Pki) -> None:
    # Given a signed package built by the library
    data = package(pki, recipients=(PULL_A, PULL_B), business=Business(BusinessDocType.NEW, paper=1))
    # When it is parsed safely and validated
    message = load_message(data, SCHEMA)
    header = read_package(message.root)
    # Then the header reads back and the signature sits, default-namespaced, last in edXMLHeader
    assert message.kind == "package" and message.signed
    assert header.sender.organ_id == SENDER and header.sender.organ_name == "UBND tỉnh"
    assert [r.organ_id for r in header.recipients] == [PULL_A, PULL_B]
    assert header.code == f"{header.code_number}/UBND-VP" and header.promulgation_date == "2024/05/02"
    assert header.business.paper == 1 and header.traces[0].organ_id == SENDER
    assert b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">' in data
    head = message.root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    assert head is not None and etree.QName(head[-1]).localname == "Signature"
    assert verify_xml(data, _policy(pki)).member_id == f"VN/GOV/{SENDER}"


def test_edxml_package_header_with_every_field_reads_back_equal() -> None:
    # Given a header with every field the builder writes, two of each repeatable group
    def organization(organ_id: str, n: int) -> Organization:
        return Organization(
            organ_id,
            f"Phụ trách {n}",
            f"Cơ quan {n}",
            f"Địa chỉ {n}",
            f"a{n}@gov.vn",
            f"02{n}",
            f"03{n}",
            f"w{n}",
        )

    header = PackageHeader(
        sender=organization(SENDER, 0),
        recipients=(organization(PULL_A, 1), organization(PULL_B, 2)),
        document_id=f"{SENDER},2024/05/02,7/UBND-VP",
        subject="  Về việc thử  ",
        code_number="7",
        code_notation="UBND-VP",
        place="Hà Nội",
        promulgation_date="2024/05/02",
        doc_type=1,
        type_detail=2,
        type_name="Công văn",
        content="Nội dung dài " * 50,
        signer_competence="TM. UBND",
        signer_position="Chủ tịch",
        signer_full_name="Nguyễn Văn A",
        due_date="2024/06/01",
        priority=3,
        response_for=(
            ResponseFor(PULL_A, f"{PULL_A},2024/04/01,1/SO", "1/SO", "2024/04/01"),
            ResponseFor(PULL_B, f"{PULL_B},2024/04/02,2/SO", "2/SO", "2024/04/02"),
        ),
        steering_type=1,
        to_places=("Nơi nhận 1", "Nơi nhận 2"),
        business=Business(BusinessDocType.UPDATE, f"{SENDER},2024/05/01,6/UBND-VP", "sửa lỗi", 2),
        traces=(TraceEntry(SENDER, "2024/05/02 08:00:00"),),
        manifest=(ManifestReference("cid:1", "application/pdf", "Phụ lục", "phu-luc.pdf"),),
    )
    attachment = Attachment("cid:1", "phu-luc.pdf", "application/pdf", b"%PDF", "Phụ lục")
    root = parse_edxml(build_package(header, [attachment], traces=header.traces))
    SCHEMA.validate(root)

    # When it is read back, with and without Content
    full = read_package(root)
    lean = read_package(root, content=False)

    # Then every field equals what was built (texts stripped), and only Content is left out of the lean read
    assert full == replace(header, subject="Về việc thử", content=header.content.strip())
    assert lean == replace(full, content="")


def test_edxml_status_message_round_trip() -> None:
    # Given a status message with staff information
    status = StatusMessage(
        sender=Organization(PULL_A, organ_name="Sở Tư pháp"),
        response_for=ResponseFor(SENDER, "000.00.00.H40,2024/05/02,1/UBND-VP", code="1/UBND-VP"),
        code=StatusCode.ACCEPTED,
        timestamp="2024/05/03 08:30:00",
        description="Tiếp nhận vào sổ văn bản đến",
        staff=StaffInfo(department="Văn thư", staff="Trần Thị B"),
    )
    # When built and read back
    message = load_message(build_status(status), SCHEMA)
    # Then it is a status and every field survives
    assert message.kind == "status" and not message.signed
    assert read_status(message.root) == status


@pytest.mark.parametrize(
    ("edit", "element"),
    [
        (lambda x: x.replace(b"<Subject>", b"<Subjekt>").replace(b"</Subject>", b"</Subjekt>"), "Subjekt"),
        (
            lambda x: x.replace(b"<PromulgationDate>2024/05/02<", b"<PromulgationDate>02-05-2024<"),
            "PromulgationDate",
        ),
        (lambda x: x.replace(b"<BussinessDocType>0<", b"<BussinessDocType>7<"), "BussinessDocType"),
        (lambda x: x.replace(b"<OrganId>H40.12</OrganId>", b"<OrganId>H40 12</OrganId>"), "OrganId"),
    ],
)
def test_edxml_schema_errors_name_the_element(edit, element: str) -> None:  # type: ignore[no-untyped-def]
    # Given an unsigned package broken in one place
    data = edit(package(None))
    # When validated / Then the error names the element and its line
    with pytest.raises(PackageInvalid) as caught:
        load_message(data, SCHEMA)
    assert caught.value.element == element
    assert caught.value.line is not None and element in str(caught.value)


def test_edxml_status_code_outside_the_nine_is_invalid() -> None:
    data = build_status(
        StatusMessage(Organization(PULL_A), ResponseFor(SENDER, "d"), StatusCode.DONE, "2024/05/03 08:30:00")
    ).replace(b"<StatusCode>06<", b"<StatusCode>07<")
    with pytest.raises(PackageInvalid) as caught:
        load_message(data, SCHEMA)
    assert caught.value.element == "StatusCode"


@pytest.mark.parametrize(
    "attack",
    [
        b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]><edXML>&x;</edXML>',
        b'<!DOCTYPE edXML [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><edXML>&b;</edXML>',
        b'<!DOCTYPE edXML SYSTEM "http://127.0.0.1:9/evil.dtd"><edXML/>',
    ],
)
def test_edxml_parser_refuses_dtd_and_entities(attack: bytes) -> None:
    with pytest.raises(PackageMalformed) as caught:
        parse_edxml(attack)
    assert caught.value.reason == "dtd refused"


def test_edxml_parser_refuses_oversized_before_parsing() -> None:
    with pytest.raises(PackageTooLarge) as caught:
        parse_edxml(b"<edXML>" + b" " * 2000 + b"</edXML>", max_bytes=1000)
    assert caught.value.limit == 1000


def test_edxml_hub_trace_appended_and_stripped_restores_the_signed_content(pki: Pki) -> None:
    # Given a signed package with pretty-printed whitespace
    pretty = etree.tostring(etree.fromstring(package(None)), pretty_print=True)
    issued = pki.members[SENDER]
    signed = sign_package(pretty, issued.key, [issued.certificate])
    root = parse_edxml(signed)
    # When the hub appends its TraceHeader / Then the sender's signature no longer covers the document
    append_trace(root, "LGSP.H40", "2024/05/02 10:00:00")
    with_trace = etree.tostring(root)
    assert b"<OrganId>LGSP.H40</OrganId>" in with_trace
    with pytest.raises(Exception, match="digest mismatch"):
        verify_xml(with_trace, _policy(pki))
    # When a recipient strips it again / Then the signature verifies
    stripped = etree.fromstring(with_trace)
    assert strip_hub_trace(stripped, "LGSP.H40")
    assert verify_xml(etree.tostring(stripped), _policy(pki)).member_id == f"VN/GOV/{SENDER}"


def _relayout(data: bytes) -> bytes:
    root = etree.fromstring(data)
    texts = root.findall(f".//{{{NS}}}ContentTransferEncoded")
    wrapped = texts[0].text or ""
    texts[0].text = "\n  " + "\n".join(wrapped[i : i + 76] for i in range(0, len(wrapped), 76)) + "\n"
    irregular = texts[1].text or ""
    texts[1].text = irregular[:8] + " \t" + irregular[8:40] + "\r\n" + irregular[40:]
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_edxml_attachments_stream_out_and_back_in_their_layout(pki: Pki) -> None:
    # Given a signed package whose attachments are base64-wrapped in odd ways
    payloads = [os.urandom(200_001), os.urandom(1000), b""]
    attachments = [
        Attachment(f"cid:{i}", f"f{i}.bin", "application/octet-stream", p) for i, p in enumerate(payloads)
    ]
    issued = pki.members[SENDER]
    signed = sign_package(_relayout(package(None, attachments=attachments)), issued.key, [issued.certificate])
    root = load_message(signed, SCHEMA).root
    # When the skeleton is taken and the attachments are decoded by the streaming pass, 4 KiB at a time
    skeleton, markers = make_skeleton(root, "LGSP.H40", "2024/05/02 10:00:00")
    extractor = AttachmentExtractor()
    parser = attachment_parser(extractor)
    chunks: dict[int, list[bytes]] = {}
    for start in range(0, len(signed), 4096):
        parser.feed(signed[start : start + 4096])
    records = parser.close()
    for position, _, data in extractor.pending:
        chunks.setdefault(position, []).append(data)
    # Then each attachment decodes to its bytes
    assert [b"".join(chunks.get(r.position, [])) for r in records] == payloads
    assert records[0].layout["line"] == 76 and "runs" in records[1].layout

    # And the reassembled package verifies once the hub's TraceHeader is stripped
    async def attachment(position: int):  # type: ignore[no-untyped-def]
        async def stored():  # type: ignore[no-untyped-def]
            for piece in chunks.get(position, []):
                yield piece

        async for piece in encode_attachment(records[position].layout, stored()):
            yield piece

    async def collect() -> bytes:
        return b"".join([piece async for piece in assemble(skeleton, markers, attachment)])

    out = etree.fromstring(asyncio.run(collect()))
    assert strip_hub_trace(out, "LGSP.H40")
    assert verify_xml(etree.tostring(out), _policy(pki)).member_id == f"VN/GOV/{SENDER}"


def test_edxml_non_canonical_base64_is_refused() -> None:
    # Given an attachment whose last quantum has padding bits set ("QR==" decodes like "QQ==")
    data = package(None, attachments=[Attachment("cid:1", "a", "text/plain", b"A")])
    data = data.replace(base64.b64encode(b"A"), b"QR==")
    extractor = AttachmentExtractor()
    parser = attachment_parser(extractor)
    # When it is decoded / Then it is refused (re-encoding could not reproduce the signed text)
    with pytest.raises(PackageInvalid, match="not canonical"):
        parser.feed(data)
        parser.close()


def test_edxml_kind_of_real_xmlsec1_package_is_a_package() -> None:
    # Given the edXML package another implementation (xmlsec1) signed
    root = parse_edxml((DATA / "edxml-signed-xmlsec1.xml").read_bytes())
    # When its kind is asked / Then it is a package (its body is not the schema's, so it is not validated)
    assert kind_of(root) == "package"
    assert SCHEMA.errors(root)[0].element == "DocumentContent"


def _decode(data: bytes, piece: int) -> tuple[list[object], list[tuple[int, int, bytes]]]:
    extractor = AttachmentExtractor()
    parser = attachment_parser(extractor)
    for start in range(0, len(data), piece):
        parser.feed(data[start : start + piece])
    records = parser.close()
    return [(r.position, r.size, r.sha256, r.chunks, r.layout) for r in records], extractor.pending


def test_edxml_attachment_decoding_does_not_depend_on_how_the_text_arrives() -> None:
    # Given a package with a wrapped, an irregular and a single-line attachment, over a stored chunk each
    payloads = [os.urandom(300_001), os.urandom(270_000), os.urandom(STORE_CHUNK * 2)]
    attachments = [
        Attachment(f"cid:{i}", f"f{i}.bin", "application/octet-stream", p) for i, p in enumerate(payloads)
    ]
    data = _relayout(package(None, attachments=attachments))
    # When it is decoded fed 7 bytes at a time, and all at once
    small, small_chunks = _decode(data, 7)
    whole, whole_chunks = _decode(data, len(data))
    # Then the records, layouts and chunks are the same, every chunk but an attachment's last is full-size
    assert small == whole and small_chunks == whole_chunks
    for position, payload in enumerate(payloads):
        pieces = [d for p, _, d in whole_chunks if p == position]
        assert b"".join(pieces) == payload
        assert all(len(p) == STORE_CHUNK for p in pieces[:-1]) and 0 < len(pieces[-1]) <= STORE_CHUNK
    assert [r[4].get("line") for r in whole] == [76, None, 0] and "runs" in whole[1][4]  # type: ignore[index,union-attr]


def test_edxml_attachment_texts_held_are_put_back() -> None:
    # Given a package with an attachment of plain text and one with a comment inside its text
    data = package(None, attachments=[Attachment("cid:1", "a", "text/plain", b"ABCDEF")] * 2)
    root = etree.fromstring(data)
    _, commented = root.iterfind(".//{*}ContentTransferEncoded")
    commented.text = "QUJD"
    commented.append(etree.Comment("c"))
    commented[0].tail = "REVG"
    before = etree.tostring(root)
    # When the attachment texts are held out
    with attachment_texts_held(root) as taken:
        # Then only the plain one is emptied, and the tree is whole again afterwards
        texts = [n.text for n in root.iterfind(".//{*}ContentTransferEncoded")]
        assert taken == 1 and not texts[0] and texts[1] == "QUJD"
    assert etree.tostring(root) == before


def test_edxml_skeleton_keeps_each_attachment_element_as_written() -> None:
    # Given attachments written plainly, with a prefix of their own, and declaring a namespace
    encoded = base64.b64encode(b"ABCDEF")
    data = package(None, attachments=[Attachment("cid:1", "a", "text/plain", b"ABCDEF")] * 3)
    head, plain, prefixed, declaring = data.split(b"<ContentTransferEncoded>")
    data = (
        head
        + b"<ContentTransferEncoded>"
        + plain
        + f'<x:ContentTransferEncoded xmlns:x="{NS}">'.encode()
        + prefixed.replace(b"</ContentTransferEncoded>", b"</x:ContentTransferEncoded>", 1)
        + b'<ContentTransferEncoded xmlns:y="urn:y">'
        + declaring
    )
    root = etree.fromstring(data)
    # When the skeleton is taken (and, for the schema, the texts held out)
    skeleton, markers = make_skeleton(root, "LGSP.H40", "2024/05/02 10:00:00")
    with attachment_texts_held(root) as held:
        assert held == 3 and not any(n.text for n in root.iterfind(".//{*}ContentTransferEncoded"))
    # Then the tree is as it was, and the skeleton with the texts put back is the package, canonically
    assert etree.tostring(root) == etree.tostring(etree.fromstring(data))
    for marker in markers:
        skeleton = skeleton.replace(marker.encode(), encoded)
    rebuilt = etree.fromstring(skeleton)
    assert strip_hub_trace(rebuilt, "LGSP.H40")
    assert etree.tostring(rebuilt, method="c14n") == etree.tostring(etree.fromstring(data), method="c14n")


def test_edxml_dates_and_timestamps_are_written_in_vietnam_time() -> None:
    # Given moments on both sides of a day boundary in Vietnam (UTC+7), and a plain date
    late_utc = datetime(2024, 12, 31, 17, 5, 9, tzinfo=UTC)  # 2025/01/01 00:05:09 in Hanoi
    early_utc = datetime(2024, 3, 1, 16, 59, 59, tzinfo=UTC)  # still 2024/03/01 in Hanoi

    # Then they are written yyyy/MM/dd HH:mm:ss in Hanoi time, as strftime would, and read back equal
    assert format_timestamp(late_utc) == "2025/01/01 00:05:09"
    assert format_date(late_utc) == "2025/01/01"
    assert format_timestamp(early_utc) == "2024/03/01 23:59:59"
    assert format_date(date(2024, 5, 2)) == "2024/05/02"
    for moment in (late_utc, early_utc, datetime(1999, 1, 2, 3, 4, 5, tzinfo=UTC)):
        assert format_timestamp(moment) == moment.astimezone(VN_TIME).strftime(TIMESTAMP_FORMAT)
        assert parse_timestamp(format_timestamp(moment)) == moment
