"""The business registry sandbox over HTTP: the platform's paths, envelope, auth header and faults."""

import base64
import json

import httpx
import pytest

from connectors.business_registry.sandbox import SANDBOX_CREDENTIALS, create_app, encode_credentials
from hub.errors import ConfigError
from tests.connectors.business_registry.conftest import Sandbox

AUTH = {"Authorization": encode_credentials(SANDBOX_CREDENTIALS)}
ENVELOPE = {"StatusCode", "Status", "Description", "ThrowException", "ResultObject"}


def _get(
    sandbox: Sandbox, path: str, params: dict[str, object], headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.get(
        sandbox.url + path, params=params, headers=AUTH if headers is None else headers, timeout=5
    )


def test_lookup_answers_the_platform_envelope(sandbox: Sandbox) -> None:
    # Given an enterprise of the registry
    record = sandbox.registry.enterprise(0)
    # When it is looked up with valid credentials
    response = _get(sandbox, "/TraCuuThongTinDoanhNghiep", {"MaSoDoanhNghiep": record.code})
    # Then the platform's envelope carries the record with the platform's field names
    body = response.json()
    assert response.status_code == 200 and set(body) == ENVELOPE
    assert (body["StatusCode"], body["Status"], body["ThrowException"]) == (200, "SUCCESS", False)
    result = body["ResultObject"]
    assert result["ENTERPRISE_GDT_CODE"] == result["ENTERPRISE_CODE"] == record.code
    assert result["NAME"] == record.name
    assert result["ENTERPRISE_STATUS_NAME"] == record.status_name
    assert set(result["LEGAL_REPRESENTATIVE"]) == {"FULL_NAME", "POSITION", "ID_NUMBER"}
    assert set(result["MAIN_BUSINESS_LINE"]) == {"CODE", "NAME"}
    assert isinstance(result["BRANCHES"], list)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "not base64 at all!",
        base64.b64encode(b"[1, 2]").decode(),
        encode_credentials({**SANDBOX_CREDENTIALS, "SecretKey": "wrong"}),
        encode_credentials({k: v for k, v in SANDBOX_CREDENTIALS.items() if k != "PartnerCode"}),
    ],
)
def test_lookup_bad_credentials_answer_401_envelope(sandbox: Sandbox, header: str | None) -> None:
    # Given a missing, malformed or wrong Authorization header
    headers = {} if header is None else {"Authorization": header}
    # When a look-up is made
    response = _get(sandbox, "/TraCuuThongTinDoanhNghiep", {"MaSoDoanhNghiep": "0100233488"}, headers)
    # Then the answer is 401 in the platform's shape
    body = response.json()
    assert response.status_code == 401
    assert (body["StatusCode"], body["Status"], body["ResultObject"]) == (401, "UNAUTHORIZED", None)


def test_lookup_unknown_code_answers_404_envelope(sandbox: Sandbox) -> None:
    response = _get(sandbox, "/TraCuuThongTinDoanhNghiep", {"MaSoDoanhNghiep": "0100233488"})
    body = response.json()
    assert response.status_code == 404
    assert (body["StatusCode"], body["Status"], body["ResultObject"]) == (404, "NOT_FOUND", None)
    assert "0100233488" in body["Description"]


def test_lookup_invalid_code_answers_400_envelope(sandbox: Sandbox) -> None:
    response = _get(sandbox, "/TraCuuThongTinDoanhNghiep", {"MaSoDoanhNghiep": "0100233480"})
    assert response.status_code == 400 and response.json()["Status"] == "BAD_REQUEST"


def test_lookup_branch_code_answers_the_branch(sandbox: Sandbox) -> None:
    record = next(e for e in sandbox.registry if e.branches)
    branch = record.branches[-1]
    result = _get(sandbox, "/TraCuuThongTinDoanhNghiep", {"MaSoDoanhNghiep": branch.code}).json()[
        "ResultObject"
    ]
    assert result["ENTERPRISE_GDT_CODE"] == branch.code
    assert result["PARENT_ENTERPRISE_CODE"] == record.code
    missing = f"{record.code}-{len(record.branches) + 1:03d}"
    assert _get(sandbox, "/TraCuuThongTinDoanhNghiep", {"MaSoDoanhNghiep": missing}).status_code == 404


def test_search_pages_through_matches(sandbox: Sandbox) -> None:
    # Given a search with diacritics
    params = {"TenDoanhNghiep": "Minh Phát", "PageIndex": 1, "PageSize": 4}
    # When the first page is fetched
    result = _get(sandbox, "/TimKiemDoanhNghiep", params).json()["ResultObject"]
    # Then it holds PageSize items out of TOTAL_COUNT, each matching
    assert (result["PAGE_INDEX"], result["PAGE_SIZE"], len(result["DATA"])) == (1, 4, 4)
    assert result["TOTAL_COUNT"] > 4
    assert all("MINH" in item["NAME"] and "PHÁT" in item["NAME"] for item in result["DATA"])


@pytest.mark.parametrize(
    "params",
    [
        {"TenDoanhNghiep": "a"},
        {"TenDoanhNghiep": "minh", "PageSize": 101},
        {"TenDoanhNghiep": "minh", "PageIndex": "x"},
    ],
)
def test_search_bad_parameters_answer_400(sandbox: Sandbox, params: dict[str, object]) -> None:
    response = _get(sandbox, "/TimKiemDoanhNghiep", params)
    assert response.status_code == 400 and response.json()["Status"] == "BAD_REQUEST"


def test_rate_limit_answers_429_with_retry_after(sandbox: Sandbox) -> None:
    # Given a quota of 2 calls per second
    sandbox.state.rate_limit = 2
    code = sandbox.registry.code_of(0)
    # When 3 calls arrive at once
    statuses = [
        _get(sandbox, "/TraCuuThongTinDoanhNghiep", {"MaSoDoanhNghiep": code}).status_code for _ in range(3)
    ]
    # Then the third is 429 with a Retry-After in whole seconds
    assert statuses == [200, 200, 429]
    response = _get(sandbox, "/TraCuuThongTinDoanhNghiep", {"MaSoDoanhNghiep": code})
    assert response.json()["Status"] == "TOO_MANY_REQUESTS"
    assert int(response.headers["Retry-After"]) >= 1


def test_faults_endpoint_changes_behaviour_at_run_time(sandbox: Sandbox) -> None:
    # Given the platform taken down through the control endpoint
    assert httpx.put(sandbox.url + "/_sandbox/faults", json={"down": True}, timeout=5).status_code == 200
    # When a look-up is made, Then it answers 503 in the platform's shape
    response = _get(sandbox, "/TraCuuThongTinDoanhNghiep", {"MaSoDoanhNghiep": sandbox.registry.code_of(0)})
    assert response.status_code == 503 and response.json()["Status"] == "SERVICE_UNAVAILABLE"
    stats = httpx.get(sandbox.url + "/_sandbox/stats", timeout=5).json()
    assert stats["by_outcome"] == {"503": 1} and stats["faults"]["down"] is True


def test_faults_endpoint_refuses_unknown_fields(sandbox: Sandbox) -> None:
    response = httpx.put(sandbox.url + "/_sandbox/faults", json={"explode": True}, timeout=5)
    assert response.status_code == 422


def test_openapi_document_is_served(sandbox: Sandbox) -> None:
    document = httpx.get(sandbox.url + "/openapi.json", timeout=5).json()
    assert document["openapi"].startswith("3.")
    assert {"/TraCuuThongTinDoanhNghiep", "/TimKiemDoanhNghiep"} <= set(document["paths"])
    assert "lgspAccessKey" in document["components"]["securitySchemes"]


def test_create_app_unknown_option_raises_config_error_naming_it() -> None:
    with pytest.raises(ConfigError) as caught:
        create_app(sead=1)
    assert caught.value.key == "sead"


def test_create_app_incomplete_credentials_raise_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        create_app(credentials={"AccessKey": "a"})
    assert caught.value.key == "credentials"


def test_encode_credentials_is_base64_of_the_json() -> None:
    assert json.loads(base64.b64decode(encode_credentials(SANDBOX_CREDENTIALS))) == SANDBOX_CREDENTIALS
