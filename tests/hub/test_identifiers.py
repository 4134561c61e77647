"""Identifiers: one parser/formatter with validation and clear errors."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import IdentifierError
from hub.identifiers import (
    MemberId,
    ServiceId,
    SubsystemId,
    encode_header,
    parse_client,
    resolve_service,
    split_rest_path,
)

PART = st.text(alphabet="ABCabc019'()+,-.=?_", min_size=1, max_size=12)


def test_service_id_parses_all_parts_and_formats_back() -> None:
    service = ServiceId.parse("VN/GOV/000.00.00.G06/population/citizen-lookup/v1")
    assert (service.instance, service.member_class, service.member_code) == ("VN", "GOV", "000.00.00.G06")
    assert (service.subsystem_code, service.service_code, service.version) == (
        "population",
        "citizen-lookup",
        "v1",
    )
    assert str(service) == "VN/GOV/000.00.00.G06/population/citizen-lookup/v1"
    assert service.provider == SubsystemId.parse("VN/GOV/000.00.00.G06/population")
    assert service.member == MemberId.parse("VN/GOV/000.00.00.G06")


def test_client_id_is_member_or_subsystem() -> None:
    assert isinstance(parse_client("VN/GOV/000.00.00.H40"), MemberId)
    assert isinstance(parse_client("VN/GOV/000.00.00.H40/one-stop"), SubsystemId)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("VN/GOV", "has 2 parts"),
        ("VN/GOV/H40/a/b/c/d", "has 7 parts"),
        ("VN//H40/one-stop", "member class is empty"),
        ("VN/GOV/H 40/one-stop", "character outside"),
        ("VN/GOV/H40/one/stop", "has 5 parts"),
    ],
)
def test_parse_client_refuses_malformed_with_a_reason(value: str, words: str) -> None:
    with pytest.raises(IdentifierError) as info:
        parse_client(value)
    assert words in str(info.value) and info.value.value == value


def test_service_id_refuses_a_member_level_service() -> None:
    with pytest.raises(IdentifierError, match="INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE"):
        ServiceId.parse("VN/GOV/000.00.00.G06/lookup")


def test_header_encoding_percent_encodes_parts_and_round_trips() -> None:
    client = SubsystemId("VN", "GOV", "000.00.00.H40", "one-stop")
    assert encode_header(client) == "VN/GOV/000.00.00.H40/one-stop"
    odd = SubsystemId("VN", "GOV", "a=b", "c?d")
    assert parse_client(encode_header(odd)) == odd


@given(st.tuples(PART, PART, PART, PART, PART), st.one_of(st.none(), PART))
def test_service_id_round_trips_any_valid_parts(parts: tuple[str, ...], version: str | None) -> None:
    service = ServiceId(*parts, version)  # type: ignore[misc]
    assert ServiceId.parse(str(service)) == service


def test_rest_path_resolves_versioned_then_plain_service() -> None:
    provider, tail = split_rest_path("VN/GOV/H40/backend/echo/v1/a/b")
    known = {ServiceId.parse("VN/GOV/H40/backend/echo/v1"), ServiceId.parse("VN/GOV/H40/backend/plain")}
    assert resolve_service(provider, tail, known) == (ServiceId.parse("VN/GOV/H40/backend/echo/v1"), "a/b")
    _, tail = split_rest_path("VN/GOV/H40/backend/plain/v1/x")
    assert resolve_service(provider, tail, known) == (ServiceId.parse("VN/GOV/H40/backend/plain"), "v1/x")
    _, tail = split_rest_path("VN/GOV/H40/backend/unknown")
    assert resolve_service(provider, tail, known) is None
    with pytest.raises(IdentifierError, match="must start with"):
        split_rest_path("VN/GOV/H40")
