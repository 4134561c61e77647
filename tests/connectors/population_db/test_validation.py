"""Input checks before anything leaves the hub: each refusal names its field."""

from datetime import date
from typing import Any

import pytest

from connectors.population_db.validation import check_citizen_query
from hub.errors import InvalidInput

TODAY = date(2024, 6, 1)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"personal_id": "00109600100"}, "personal_id"),
        ({"personal_id": "0010960010055"}, "personal_id"),
        ({"personal_id": "00109600100a"}, "personal_id"),
        ({"personal_id": 1096001005}, "personal_id"),
        ({}, "personal_id"),
        ({"personal_id": "003096001005"}, "personal_id"),  # 003 is not a province code
        ({"personal_id": "001225001005"}, "personal_id"),  # born in 2025, after TODAY
        ({"personal_id": "001896001005"}, "personal_id"),  # century digit 8: the 1800s
        ({"personal_id": "001096001005", "birth_date": "1996-02-30"}, "birth_date"),
        ({"personal_id": "001096001005", "birth_date": "15/01/1996"}, "birth_date"),
        ({"personal_id": "001096001005", "birth_date": "2030"}, "birth_date"),
        ({"personal_id": "001096001005", "full_name": "   "}, "full_name"),
        ({"personal_id": "001096001005", "full_name": "Nguyễn V4n An"}, "full_name"),
        ({"personal_id": "001096001005", "nickname": "An"}, "nickname"),
    ],
)
def test_check_citizen_query_refuses_and_names_the_field(document: dict[str, Any], field: str) -> None:
    # Given a malformed query
    # When it is checked
    # Then InvalidInput names the field
    with pytest.raises(InvalidInput) as caught:
        check_citizen_query(document, identity_required=False, today=TODAY)
    assert caught.value.field == field


@pytest.mark.parametrize("missing", ["full_name", "birth_date"])
def test_check_citizen_query_verify_requires_name_and_birth_date(missing: str) -> None:
    # Given a verification query without one of its identity fields
    document = {"personal_id": "001096001005", "full_name": "Nguyễn Văn An", "birth_date": "1996"}
    del document[missing]
    # When it is checked
    # Then the missing field is named
    with pytest.raises(InvalidInput) as caught:
        check_citizen_query(document, identity_required=True, today=TODAY)
    assert caught.value.field == missing


def test_check_citizen_query_accepts_and_normalises() -> None:
    # Given a decomposed, oddly spaced name and a year-only birth date
    document = {
        "personal_id": "079203004567",
        "full_name": " Tra\u0302\u0300n  Thị Bích ",
        "birth_date": "2003",
    }
    # When it is checked
    query = check_citizen_query(document, identity_required=True, today=TODAY)
    # Then the name is NFC with single spaces and the rest is unchanged
    assert query == {"personal_id": "079203004567", "full_name": "Trần Thị Bích", "birth_date": "2003"}
