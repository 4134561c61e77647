"""Submission through the gateway: what is accepted, and each refusal with its reason and status;
a refused package stores and queues nothing."""

import base64
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from lxml import etree
from signxml import XMLSigner

from hub.edocs import tables
from hub.edocs.edxml import NS, Attachment, sign_package
from signing.xmldsig import DS_NS
from tests.edocs.harness import (
    LEGACY,
    PULL_A,
    PULL_B,
    PUSHED,
    SENDER,
    STRANGER,
    UNSIGNED,
    Pki,
    RunningEdocs,
    edocs_config,
    headers,
    package,
    running_edocs,
)


@pytest.fixture
async def edocs(pki: Pki, tmp_path: Path) -> AsyncIterator[RunningEdocs]:
    config = edocs_config(
        pki,
        broker_url="embedded://",
        store_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
        max_package_bytes=64 * 1024,
    )
    async with running_edocs(config) as running:
        yield running


async def _counts(running: RunningEdocs) -> tuple[int, int]:
    async with running.hub.store.engine.connect() as connection:
        documents = await connection.scalar(sa.select(sa.func.count()).select_from(tables.documents))
        deliveries = await connection.scalar(sa.select(sa.func.count()).select_from(tables.deliveries))
    return int(documents or 0), int(deliveries or 0)


def _error(response) -> tuple[int, str, dict]:  # type: ignore[no-untyped-def,type-arg]
    body = response.json()
    assert set(body) == {"type", "message", "detail"}, body
    return response.status_code, body["type"], body["detail"] or {}


class _LegacySigner(XMLSigner):
    def check_deprecated_methods(self) -> None:  # an old edXML sender: RSA-SHA1 on purpose
        return None


def legacy_sign(data: bytes, pki: Pki, organ: str) -> bytes:
    root = etree.fromstring(data)
    head = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    assert head is not None
    etree.SubElement(head, f"{{{DS_NS}}}Signature", Id="placeholder", nsmap={None: DS_NS})  # type: ignore[dict-item]
    issued = pki.members[organ]
    signer = _LegacySigner(signature_algorithm="rsa-sha1", digest_algorithm="sha1")
    pem = issued.certificate.public_bytes(Encoding.PEM).decode()
    return etree.tostring(signer.sign(root, key=issued.key, cert=[pem]))


async def test_submission_accepts_a_signed_package_and_names_its_recipients(
    edocs: RunningEdocs, pki: Pki
) -> None:
    # When a member submits a package signed by its organ's certificate
    response = await edocs.submit(package(pki))
    # Then it is accepted, verified, and one delivery per recipient is queued
    assert response.status_code == 201, response.text
    body = response.json()
    assert (
        body["signed"] and body["signer"] == f"VN/GOV/{SENDER}" and body["algorithm"].endswith("rsa-sha256")
    )
    assert [(r["organ_id"], r["mode"]) for r in body["recipients"]] == [
        (PULL_A, "pull"),
        (PULL_B, "pull"),
        (PUSHED, "push"),
    ]
    assert response.headers["location"] == f"/v1/edocs/{body['id']}"
    assert await _counts(edocs) == (1, 3)


async def test_submission_duplicate_gives_the_same_answer_and_no_second_delivery(
    edocs: RunningEdocs, pki: Pki
) -> None:
    # Given an accepted package
    data = package(pki)
    first = await edocs.submit(data)
    # When the same DocumentId comes again from the same sender (re-signed: other bytes, same key)
    again = await edocs.submit(data)
    resigned = await edocs.submit(package(pki, doc_id=first.json()["document_id"]))
    # Then each answer is the first one, marked as a replay, and nothing more is queued
    assert first.status_code == again.status_code == resigned.status_code == 201
    assert again.json() == first.json() == resigned.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert await _counts(edocs) == (1, 3)


async def test_submission_tampered_package_is_refused_naming_the_reason(
    edocs: RunningEdocs, pki: Pki
) -> None:
    # Given a signed package altered after signing
    tampered = package(pki).replace("triển khai".encode(), "huỷ bỏ".encode(), 1)
    # When submitted / Then the signature fails, the reason is named, and nothing is stored
    status, kind, detail = _error(await edocs.submit(tampered))
    assert (status, kind, detail["reason"]) == (403, "Client.InvalidSignature", "digest mismatch")
    assert await _counts(edocs) == (0, 0)


async def test_submission_unsigned_is_refused_where_the_member_must_sign(edocs: RunningEdocs) -> None:
    status, kind, detail = _error(await edocs.submit(package(None)))
    assert (status, kind, detail["reason"]) == (403, "Client.InvalidSignature", "no signature")
    # And a member whose policy allows unsigned packages may send one
    allowed = await edocs.submit(package(None, sender=UNSIGNED, recipients=(PULL_A,)), organ=UNSIGNED)
    assert allowed.status_code == 201 and allowed.json()["signed"] is False


@pytest.mark.parametrize(
    ("signer", "reason"),
    [("rogue", "untrusted signer"), ("other", "signer is not the claimed member")],
)
async def test_submission_signer_must_chain_to_an_anchor_and_be_the_sender(
    edocs: RunningEdocs, pki: Pki, signer: str, reason: str
) -> None:
    # Given a package from H40 signed by an untrusted CA's certificate / by another organ's certificate
    issued = pki.rogue if signer == "rogue" else pki.members[PULL_B]
    # When submitted / Then it is refused with that reason
    status, _, detail = _error(await edocs.submit(package(pki, signer=issued)))
    assert (status, detail["reason"]) == (403, reason)


async def test_submission_rsa_sha1_only_for_a_member_whose_policy_allows_it(
    edocs: RunningEdocs, pki: Pki
) -> None:
    # Given RSA-SHA1 signed packages from a legacy member and from a member without the legacy policy
    legacy = legacy_sign(package(None, sender=LEGACY, recipients=(PULL_A,)), pki, LEGACY)
    modern = legacy_sign(package(None, recipients=(PULL_A,)), pki, SENDER)
    # When submitted / Then only the legacy member's is accepted
    accepted = await edocs.submit(legacy, organ=LEGACY)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["algorithm"].endswith("rsa-sha1")
    status, _, detail = _error(await edocs.submit(modern))
    assert (status, detail["reason"]) == (403, "weak algorithm")


@pytest.mark.parametrize(
    "attack",
    [
        b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&x;</edXML>',
        b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><edXML>&lol2;</edXML>',
    ],
)
async def test_submission_xxe_and_dtd_are_refused_before_anything_else(
    edocs: RunningEdocs, attack: bytes
) -> None:
    status, kind, detail = _error(await edocs.submit(attack))
    assert (status, kind, detail["reason"]) == (400, "Client.BadRequest", "dtd refused")
    assert await _counts(edocs) == (0, 0)


async def test_submission_oversized_is_refused_while_streaming(edocs: RunningEdocs, pki: Pki) -> None:
    # Given a package over the 64 KiB limit of this hub, sent with and without a Content-Length
    big = package(pki, subject="x" * 400) + b" " * (70 * 1024)

    async def chunked():  # type: ignore[no-untyped-def]
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    # When submitted / Then 413 both ways, and nothing is stored
    assert _error(await edocs.submit(big))[:2] == (413, "Client.RequestTooLarge")
    streamed = await edocs.http.post("/v1/edocs", content=chunked(), headers=headers(SENDER))
    assert "content-length" not in streamed.request.headers
    assert _error(streamed)[:2] == (413, "Client.RequestTooLarge")
    assert await _counts(edocs) == (0, 0)


async def test_submission_unknown_recipient_is_named(edocs: RunningEdocs, pki: Pki) -> None:
    status, kind, detail = _error(await edocs.submit(package(pki, recipients=(PULL_A, STRANGER, "H40.98"))))
    assert (status, kind, detail["codes"]) == (400, "Client.UnknownRecipient", [STRANGER, "H40.98"])
    assert await _counts(edocs) == (0, 0)


async def test_submission_schema_error_names_the_element(edocs: RunningEdocs) -> None:
    broken = package(None).replace(b"<Subject>", b"<Subjec>").replace(b"</Subject>", b"</Subjec>")
    status, kind, detail = _error(await edocs.submit(broken))
    assert (status, kind, detail["element"]) == (400, "Client.InvalidRequest", "Subjec")


def _signed(data: bytes, pki: Pki) -> bytes:
    issued = pki.members[SENDER]
    return sign_package(data, issued.key, [issued.certificate])


@pytest.mark.parametrize("text", [b"not base64!", b"QUJD=REVG", b"QUJDR", b"QR=="])
async def test_submission_attachment_that_is_not_base64_is_refused_and_nothing_stored(
    edocs: RunningEdocs, pki: Pki, text: bytes
) -> None:
    # Given a package signed by its sender whose attachment's text is not (canonical) base64
    attachment = Attachment("cid:1", "a.txt", "text/plain", b"A")
    data = package(None, attachments=[attachment]).replace(base64.b64encode(b"A"), text)
    # When submitted
    status, kind, detail = _error(await edocs.submit(_signed(data, pki)))
    # Then the attachment is named, and no document, attachment or delivery is stored
    assert (status, kind, detail["element"]) == (400, "Client.InvalidRequest", "ContentTransferEncoded")
    assert await _counts(edocs) == (0, 0)
    async with edocs.hub.store.engine.connect() as connection:
        assert not await connection.scalar(sa.select(sa.func.count()).select_from(tables.attachment_chunks))


async def test_submission_attachment_with_an_element_inside_fails_the_schema(
    edocs: RunningEdocs, pki: Pki
) -> None:
    # Given an attachment whose base64 text holds an element (valid base64 on each side of it)
    attachment = Attachment("cid:1", "a.txt", "text/plain", b"ABCDEF")
    encoded = base64.b64encode(b"ABCDEF")
    data = package(None, attachments=[attachment]).replace(encoded, encoded[:4] + b"<x/>" + encoded[4:])
    # When submitted / Then the schema refuses it, naming the element
    status, kind, _ = _error(await edocs.submit(_signed(data, pki)))
    assert (status, kind) == (400, "Client.InvalidRequest")
    assert await _counts(edocs) == (0, 0)


async def test_submission_attachment_is_stored_and_served_as_sent(edocs: RunningEdocs, pki: Pki) -> None:
    # Given a signed package with two attachments
    payloads = [os.urandom(30_000), b"hello"]
    attachments = [
        Attachment(f"cid:{i}", f"f{i}.bin", "application/octet-stream", p) for i, p in enumerate(payloads)
    ]
    response = await edocs.submit(package(pki, attachments=attachments))
    # When it is accepted / Then each attachment reads back as sent
    assert response.status_code == 201, response.text
    hub_id = response.json()["id"]
    for position, payload in enumerate(payloads):
        got = await edocs.http.get(f"/v1/edocs/{hub_id}/attachments/{position}", headers=headers(SENDER))
        assert got.status_code == 200 and got.content == payload


async def test_submission_as_another_organ_is_denied(edocs: RunningEdocs, pki: Pki) -> None:
    # Given H40.12's credentials and a package whose From is H40 (signed by H40)
    response = await edocs.submit(package(pki), organ=PULL_A)
    status, kind, _ = _error(response)
    assert (status, kind) == (403, "Client.AccessDenied") and SENDER in response.json()["message"]


async def test_submission_credentials_are_checked(edocs: RunningEdocs, pki: Pki) -> None:
    wrong = await edocs.http.post(
        "/v1/edocs", content=package(pki), headers=headers(SENDER, **{"X-Api-Key": "nope"})
    )
    missing = await edocs.http.post("/v1/edocs", content=package(pki))
    assert _error(wrong)[:2] == (401, "Client.Unauthenticated")
    assert _error(missing)[:2] == (400, "Client.BadRequest")


async def test_submission_multipart_with_the_edxml_part(edocs: RunningEdocs, pki: Pki) -> None:
    # Given a multipart body with a text field and the package as the edxml part
    files = {"edxml": ("cong-van.edxml", package(pki), "application/xml")}
    # When submitted / Then it is accepted like a raw body
    response = await edocs.http.post("/v1/edocs", files=files, data={"note": "x"}, headers=headers(SENDER))
    assert response.status_code == 201, response.text
    # And a multipart body without any file part is refused naming the part
    empty = await edocs.http.post("/v1/edocs", files={"note": (None, "x")}, headers=headers(SENDER))
    status, _, detail = _error(empty)
    assert (status, detail["element"]) == (400, "edxml")


XMLSEC1 = shutil.which("xmlsec1")
_REAL_SIGNATURE = (
    b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo>'
    b'<CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>'
    b'<SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/>'
    b'<Reference URI=""><Transforms><Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
    b'<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></Transforms>'
    b'<DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/><DigestValue/></Reference>'
    b"</SignedInfo><SignatureValue/><KeyInfo><X509Data><X509Certificate/></X509Data></KeyInfo></Signature>"
)


def xmlsec1_sign(data: bytes, pki: Pki, organ: str, tmp_path: Path) -> bytes:
    """Sign as real edXML senders do: xmlsec1, RSA-SHA1, inclusive c14n, default-namespace Signature."""
    if XMLSEC1 is None:
        if os.environ.get("CI") == "true":
            pytest.fail("xmlsec1 is required in CI (apt-get install xmlsec1)")
        pytest.skip("xmlsec1 not installed")
    issued = pki.members[organ]
    key, cert, template, out = (tmp_path / n for n in ("key.pem", "cert.pem", "template.xml", "signed.xml"))
    key.write_bytes(issued.key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()))
    cert.write_bytes(issued.certificate.public_bytes(Encoding.PEM))
    template.write_bytes(data.replace(b"</edXMLHeader>", _REAL_SIGNATURE + b"</edXMLHeader>", 1))
    command = [XMLSEC1, "--sign", "--privkey-pem", f"{key},{cert}", "--output", str(out), str(template)]
    subprocess.run(command, check=True, capture_output=True, timeout=30)
    return out.read_bytes()


async def test_submission_real_sender_shape_xmlsec1_rsa_sha1_inclusive_c14n(
    edocs: RunningEdocs, pki: Pki, tmp_path: Path
) -> None:
    # Given a package signed the way existing edXML software signs (xmlsec1, RSA-SHA1, inclusive c14n)
    signed = xmlsec1_sign(package(None, sender=LEGACY, recipients=(PULL_A,)), pki, LEGACY, tmp_path)
    assert b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">' in signed
    # When its legacy sender submits it / Then it verifies and is bound to the sender
    accepted = await edocs.submit(signed, organ=LEGACY)
    assert accepted.status_code == 201, accepted.text
    assert (accepted.json()["signer"], accepted.json()["algorithm"]) == (
        f"VN/GOV/{LEGACY}",
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    )
