"""Packages up to edocs.max_package_bytes, whatever the size of one attachment: accepted, stored in
pieces, served back as signed; over the limit refused; the safe parser's other limits still hold."""

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lxml import etree

from hub.edocs.edxml import NS, Attachment, parse_edxml, strip_hub_trace
from signing.safe_xml import XmlLimits
from signing.trust import RevocationMode, TrustStore
from signing.xmldsig import SignaturePolicy, verify_xml
from tests.edocs.harness import (
    PULL_A,
    SENDER,
    Pki,
    RunningEdocs,
    edocs_config,
    headers,
    package,
    running_edocs,
)

LIMIT = 50 * 1024 * 1024  # the default edocs.max_package_bytes
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return b"%PDF-1.7\n" + os.urandom(20 * 1024 * 1024)


@pytest.fixture(scope="module")
def big_package(pki: Pki, pdf: bytes) -> bytes:
    # One attachment whose base64 text (28 MB) is far over libxml2's 10,000,000-character text node cap.
    return package(
        pki, recipients=(PULL_A,), attachments=[Attachment("cid:1", "phu-luc.pdf", "application/pdf", pdf)]
    )


@pytest.fixture
async def edocs(pki: Pki, tmp_path: Path) -> AsyncIterator[RunningEdocs]:
    config = edocs_config(pki, broker_url="embedded://", store_url=f"sqlite+aiosqlite:///{tmp_path}/s.db")
    async with running_edocs(config, workers=False) as running:
        yield running


def _error(response) -> tuple[int, str, dict]:  # type: ignore[no-untyped-def,type-arg]
    body = response.json()
    return response.status_code, body["type"], body["detail"] or {}


def _sender_signature_verifies(data: bytes, pki: Pki) -> bool:
    root = parse_edxml(data)
    assert strip_hub_trace(root, "LGSP.H40")
    trust = TrustStore(anchors=[pki.ca.certificate], revocation=RevocationMode.OFF)
    policy = SignaturePolicy(
        trust=trust,
        location=f"./{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader/",
        limits=XmlLimits(max_bytes=LIMIT, huge_text=True),  # a recipient takes long attachments on purpose
    )
    return verify_xml(etree.tostring(root), policy).member_id == f"VN/GOV/{SENDER}"


async def test_large_package_with_one_big_attachment_is_stored_and_served_as_signed(
    edocs: RunningEdocs, pki: Pki, pdf: bytes, big_package: bytes
) -> None:
    # Given a signed package (28 MB) whose single attachment is a 20 MB PDF
    assert 25 * 1024 * 1024 < len(big_package) < LIMIT
    # When it is submitted
    response = await edocs.submit(big_package, timeout=300)
    # Then it is accepted with its attachment
    assert response.status_code == 201, response.text
    hub_id = response.json()["id"]
    assert response.json()["attachments"] == 1 and response.json()["signed"]
    # And the recipient gets the package back with the attachment's bytes as sent and the signature intact
    fetched = await edocs.http.get(f"/v1/edocs/{hub_id}", headers=headers(PULL_A), timeout=300)
    assert fetched.status_code == 200
    encoded = parse_edxml(fetched.content).findtext(f".//{{{NS}}}ContentTransferEncoded")
    assert encoded is not None and base64.b64decode(encoded) == pdf
    assert _sender_signature_verifies(fetched.content, pki)
    # And the decoded attachment is served as stored
    attachment = await edocs.http.get(
        f"/v1/edocs/{hub_id}/attachments/0", headers=headers(PULL_A), timeout=300
    )
    assert attachment.content == pdf
    assert attachment.headers["x-edoc-sha256"] == hashlib.sha256(pdf).hexdigest()


async def test_large_package_over_the_limit_is_refused_both_ways(
    edocs: RunningEdocs, big_package: bytes
) -> None:
    # Given a well-formed signed package padded to one byte over the 50 MB limit
    body = big_package + b"\n" * (LIMIT + 1 - len(big_package))
    assert len(body) == LIMIT + 1

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1024 * 1024):
            yield body[start : start + 1024 * 1024]

    # When it is submitted with its Content-Length, and streamed without one / Then both are refused
    assert _error(await edocs.submit(body, timeout=300))[:2] == (413, "Client.RequestTooLarge")
    response = await edocs.http.post("/v1/edocs", content=streamed(), headers=headers(SENDER), timeout=300)
    assert "content-length" not in response.request.headers
    assert _error(response)[:2] == (413, "Client.RequestTooLarge")


def _long_text(characters: int) -> bytes:
    return b"QUJD" * (characters // 4)


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><AttachmentEncoded>'
            + _long_text(12_000_000)
            + b"&x;</AttachmentEncoded></edXML>",
            "dtd refused",
        ),
        (
            b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
            + b"<a>" * 150
            + _long_text(12_000_000)
            + b"</a>" * 150
            + b"</edXML>",
            "document too deep",
        ),
        (
            b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><x>'
            + _long_text(12_000_000)
            + b"&ee;</x></edXML>",
            "entity refused",
        ),
    ],
    ids=["xxe", "depth", "entity"],
)
async def test_large_package_parser_limits_hold_next_to_a_long_text(
    edocs: RunningEdocs, attack: bytes, reason: str
) -> None:
    # Given a hostile package that also carries a text node over libxml2's default cap
    # When it is submitted / Then the safe parser refuses it for what it is
    assert _error(await edocs.submit(attack, timeout=300))[:3] == (
        400,
        "Client.BadRequest",
        {"reason": reason},
    )


@pytest.mark.slow
def test_large_package_submission_peak_memory_stays_under_three_times_its_size(
    pki: Pki, tmp_path: Path
) -> None:
    # Given a signed package of about 40 MB (one 29 MB attachment) on disk, and a small one to warm up with
    blob = os.urandom(29 * 1024 * 1024)
    big = package(
        pki, recipients=(PULL_A,), attachments=[Attachment("cid:1", "scan.pdf", "application/pdf", blob)]
    )
    del blob
    (tmp_path / "package.xml").write_bytes(big)
    (tmp_path / "warm.xml").write_bytes(package(pki, recipients=(PULL_A,)))
    size = len(big)
    del big
    # When a hub in a fresh process accepts it, streamed from the file
    command = [sys.executable, "-m", "tests.edocs.submit_process", str(pki.directory)]
    command += [str(tmp_path / "warm.xml"), str(tmp_path / "package.xml"), str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\npeak RSS growth while submitting {size} bytes: {result}")
    # Then it is accepted, and the process grew by less than three times the package (about twice, measured)
    assert result["status"] == 201
    assert result["growth_per_byte"] < 3.0
