"""Signed requests at the gateway (REST X-Road-Signature, SOAP XML-DSig) and signed responses, end to end."""

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from signing import TrustStore, sign_soap, verify_jws
from signing.gateway import sign_request
from signing.pki import DevPki
from signing.trust import RevocationMode, certificate_kid
from signing.xmldsig import load_private_key
from tests.hub.harness import CLIENT, KEY, PROVIDER, RunningHub, hub_config, running_backend, running_hub
from tests.soap_face.support import PEOPLE, registry, running_backends, xroad_envelope
from tests.soap_face.support import config as soap_config

ECHO = f"/r1/{PROVIDER}/echo/v1/doc"
MEMBER = "VN/GOV/000.00.00.H40"
STRANGER = "VN/GOV/000.00.00.H99"


@dataclass
class Pki:
    directory: Path
    pki: DevPki
    key: Any
    cert: x509.Certificate
    kid: str
    stranger_key: Any
    stranger_kid: str
    serial: int


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    dev = DevPki(tmp_path / "pki")
    dev.init()
    issued = dev.issue(MEMBER)
    stranger = dev.issue(STRANGER)
    return Pki(
        tmp_path / "pki",
        dev,
        issued.key,
        issued.certificate,
        certificate_kid(issued.certificate),
        stranger.key,
        certificate_kid(stranger.certificate),
        issued.certificate.serial_number,
    )


def signing_config(pki: Pki, data: dict[str, Any], *, require: bool = True) -> dict[str, Any]:
    _, member_cert = pki.pki.member_paths(MEMBER)
    _, stranger_cert = pki.pki.member_paths(STRANGER)
    data["signing"] = {
        "trust_anchors": [str(pki.pki.ca_cert_path)],
        "crls": [str(pki.pki.crl_path)],
        "hub_key": str(pki.pki.hub_key_path),
        "hub_certificate": str(pki.pki.hub_cert_path),
    }
    data["members"][CLIENT] = {
        "api_keys": [KEY],
        "require_signature": require,
        "certificates": [str(member_cert), str(stranger_cert)],
    }
    return data


def signed_headers(
    pki: Pki,
    body: bytes,
    *,
    path: str = ECHO,
    key: Any = None,
    kid: str | None = None,
    message_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    message_id = message_id or str(uuid.uuid4())
    signature = sign_request(
        body,
        key or pki.key,
        kid=kid or pki.kid,
        method="POST",
        path=path,
        client=CLIENT,
        message_id=message_id,
        now=now,
    )
    return {"X-Road-Client": CLIENT, "X-Road-Id": message_id, "X-Road-Signature": signature}


@pytest.fixture
async def signed_hub(pki: Pki, tmp_path: Path) -> AsyncIterator[RunningHub]:
    async with running_backend() as backend:
        data = signing_config(
            pki,
            hub_config(
                backend.url, broker_url="embedded://", store_url=f"sqlite+aiosqlite:///{tmp_path}/h.db"
            ),
        )
        async with running_hub(data) as running:
            yield running


async def test_signed_rest_request_is_accepted_and_the_response_is_signed_by_the_hub(
    signed_hub: RunningHub, pki: Pki
) -> None:
    # Given a member's request signed over its exact body
    body = b'{"so_dinh_danh": "001096001005"}'
    headers = signed_headers(pki, body)
    # When it goes through the gateway
    response = await signed_hub.http.post(ECHO, content=body, headers=headers)
    # Then it is answered, and the answer carries the hub's signature over the response body
    assert response.status_code == 200, response.text
    trust = TrustStore(
        pinned=[x509.load_pem_x509_certificate(pki.pki.hub_cert_path.read_bytes())],
        revocation=RevocationMode.OFF,
    )
    verified = verify_jws(response.headers["x-road-signature"], trust, payload=response.content)
    assert verified.header["xid"] == headers["X-Road-Id"] and verified.header["xrc"] == CLIENT


async def test_signed_rest_request_refusals_name_the_reason(signed_hub: RunningHub, pki: Pki) -> None:
    http = signed_hub.http
    body = b'{"a": 1}'
    cases = {
        "tampered body": (b'{"a": 2}', signed_headers(pki, body), "DIGEST_MISMATCH|BAD_SIGNATURE"),
        "stale timestamp": (
            body,
            signed_headers(pki, body, now=datetime.now(UTC) - timedelta(hours=1)),
            "STALE_TIMESTAMP",
        ),
        "signer of another member": (
            body,
            signed_headers(pki, body, key=pki.stranger_key, kid=pki.stranger_kid),
            "WRONG_MEMBER",
        ),
        "other path": (
            body,
            signed_headers(pki, body, path=f"/r1/{PROVIDER}/echo/v1/other"),
            "BINDING_MISMATCH",
        ),
        "unknown key id": (body, signed_headers(pki, body, kid="nope"), "UNKNOWN_KEY|UNTRUSTED"),
    }
    for name, (sent, headers, reason) in cases.items():
        response = await http.post(ECHO, content=sent, headers=headers)
        assert response.status_code == 401, name
        assert response.json()["type"] == "Client.Unauthenticated", name
        assert re.search(reason, response.json()["message"]), (name, response.json()["message"])
    # And an API key no longer opens the door for a member that must sign
    response = await http.post(ECHO, content=body, headers={"X-Road-Client": CLIENT, "X-Api-Key": KEY})
    assert response.status_code == 401 and "must sign" in response.json()["message"]
    # And a signed request without X-Road-Id is malformed
    headers = signed_headers(pki, body)
    del headers["X-Road-Id"]
    assert (await http.post(ECHO, content=body, headers=headers)).status_code == 400


async def test_signed_rest_replay_is_refused_even_after_a_restart(pki: Pki, tmp_path: Path) -> None:
    body = b"{}"
    headers = signed_headers(pki, body)
    async with running_backend() as backend:
        data = signing_config(
            pki,
            hub_config(
                backend.url, broker_url="embedded://", store_url=f"sqlite+aiosqlite:///{tmp_path}/h.db"
            ),
        )
        async with running_hub(data) as running:
            assert (await running.http.post(ECHO, content=body, headers=headers)).status_code == 200
            replay = await running.http.post(ECHO, content=body, headers=headers)
            assert (replay.status_code, replay.json()["type"]) == (409, "Client.Replayed")
        # When the hub restarts on the same store
        async with running_hub(data) as running:
            replay = await running.http.post(ECHO, content=body, headers=headers)
            assert (replay.status_code, replay.json()["type"]) == (409, "Client.Replayed")
            assert len(backend.calls) == 1


async def test_signed_rest_request_from_a_revoked_certificate_is_refused(pki: Pki, tmp_path: Path) -> None:
    pki.pki.revoke(pki.serial)
    async with running_backend() as backend:
        data = signing_config(
            pki,
            hub_config(
                backend.url, broker_url="embedded://", store_url=f"sqlite+aiosqlite:///{tmp_path}/h.db"
            ),
        )
        async with running_hub(data) as running:
            body = b"{}"
            response = await running.http.post(ECHO, content=body, headers=signed_headers(pki, body))
            assert response.status_code == 401 and "REVOKED" in response.json()["message"]
            assert not backend.calls


async def test_signed_soap_request_is_accepted_and_tampering_refused(pki: Pki, tmp_path: Path) -> None:
    async with running_backends() as backends:
        data = signing_config(
            pki,
            soap_config(backends, broker_url="embedded://", store_url=f"sqlite+aiosqlite:///{tmp_path}/h.db"),
        )
        async with running_hub(data, registry=registry()) as running:
            tns = "urn:lgsp-hub:service:VN:GOV:000.00.00.H40:backend:person-lookup:v1"
            lookup = f'<p:PersonLookup xmlns:p="{tns}"><p:personal_id>001096001005</p:personal_id></p:PersonLookup>'
            envelope = xroad_envelope(lookup, service=PEOPLE, message_id=str(uuid.uuid4()))
            signed = sign_soap(
                envelope,
                load_private_key((pki.directory / "members" / "VN_GOV_000.00.00.H40.key").read_bytes()),
                pki.cert,
            )
            headers = {"Content-Type": "text/xml; charset=utf-8"}
            response = await running.http.post("/soap", content=signed, headers=headers)
            assert response.status_code == 200, response.text
            # Replayed
            again = await running.http.post("/soap", content=signed, headers=headers)
            assert again.status_code == 500 and b"Client.Replayed" in again.content
            # Tampered body under an intact signature
            tampered = sign_soap(
                xroad_envelope(lookup, service=PEOPLE, message_id=str(uuid.uuid4())), pki.key, pki.cert
            ).replace(b"001096001005", b"001096001006")
            refused = await running.http.post("/soap", content=tampered, headers=headers)
            assert refused.status_code == 500 and b"Client.Unauthenticated" in refused.content
            assert b"DIGEST_MISMATCH" in refused.content or b"BAD_SIGNATURE" in refused.content
