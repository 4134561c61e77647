"""Input checks run before anything leaves the hub; each refusal names the field it is about."""

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

from connectors.population_db.codes import CENTURY_DIGITS, PROVINCES
from hub.errors import InvalidInput

QUERY_FIELDS = ("personal_id", "full_name", "birth_date")
_ID = re.compile(r"[0-9]{12}")
_YEAR = re.compile(r"[0-9]{4}")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_NAME_PUNCTUATION = frozenset(" '-.")
_MAX_NAME = 150


def check_personal_id(value: Any, *, field: str = "personal_id", today: date | None = None) -> str:
    """A 12-digit personal id with a known province code and a plausible century/birth year.

    Raises:
        InvalidInput: the id is malformed (``field`` names it).
    """
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidInput(f"{field} must be 12 digits", field=field)
    if value[:3] not in PROVINCES:
        raise InvalidInput(f"{field} starts with {value[:3]}, which is not a province code", field=field)
    century, _ = CENTURY_DIGITS[value[3]]
    year = century + int(value[4:6])
    today = today or date.today()
    if not 1900 <= year <= today.year:
        raise InvalidInput(
            f"{field} encodes birth year {year} (century digit {value[3]}), which is not possible",
            field=field,
        )
    return value


def check_birth_date(value: Any, *, field: str = "birth_date", today: date | None = None) -> str:
    """A real date ``YYYY-MM-DD`` or a year ``YYYY``, not in the future and not before 1900.

    Raises:
        InvalidInput: not a real date or year (``field`` names it).
    """
    today = today or date.today()
    if isinstance(value, str) and _YEAR.fullmatch(value):
        if not 1900 <= int(value) <= today.year:
            raise InvalidInput(f"{field} year {value} is outside 1900..{today.year}", field=field)
        return value
    match = _DATE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidInput(f"{field} must be YYYY-MM-DD or YYYY", field=field)
    try:
        born = date(*(int(part) for part in match.groups()))
    except ValueError as exc:
        raise InvalidInput(f"{field} {value} is not a real date", field=field) from exc
    if not date(1900, 1, 1) <= born <= today:
        raise InvalidInput(f"{field} {value} is outside 1900-01-01..{today.isoformat()}", field=field)
    return value


def check_full_name(value: Any, *, field: str = "full_name") -> str:
    """A non-empty name of letters (any script, with diacritics), spaces, apostrophes and hyphens; NFC.

    Raises:
        InvalidInput: empty, too long or holding other characters (``field`` names it).
    """
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    name = " ".join(unicodedata.normalize("NFC", value).split())
    if not name:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(name) > _MAX_NAME:
        raise InvalidInput(f"{field} is longer than {_MAX_NAME} characters", field=field)
    bad = next((ch for ch in name if not (ch.isalpha() or ch in _NAME_PUNCTUATION or _is_mark(ch))), None)
    if bad is not None:
        raise InvalidInput(f"{field} holds the character {bad!r}, which is not part of a name", field=field)
    return name


def check_citizen_query(
    document: Any, *, identity_required: bool, today: date | None = None
) -> dict[str, str]:
    """Check a canonical citizen query ``{personal_id, full_name?, birth_date?}``; returns it normalised.

    ``identity_required`` (verification) makes ``full_name`` and ``birth_date`` mandatory.

    Raises:
        InvalidInput: a field is missing, unknown or invalid (``field`` names it).
    """
    if not isinstance(document, Mapping):
        raise InvalidInput("the request body must be a JSON object", field="body")
    unknown = sorted(set(document) - set(QUERY_FIELDS))
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r}; expected {', '.join(QUERY_FIELDS)}", field=unknown[0]
        )
    query = {"personal_id": check_personal_id(document.get("personal_id"), today=today)}
    if identity_required:
        missing = next((name for name in ("full_name", "birth_date") if document.get(name) is None), None)
        if missing is not None:
            raise InvalidInput(f"{missing} is required to verify a citizen", field=missing)
    if document.get("full_name") is not None:
        query["full_name"] = check_full_name(document["full_name"])
    if document.get("birth_date") is not None:
        query["birth_date"] = check_birth_date(document["birth_date"], today=today)
    return query


def _is_mark(ch: str) -> bool:
    # Combining marks appear when a name arrives decomposed and NFC cannot compose it.
    return unicodedata.category(ch).startswith("M")


__all__ = ["QUERY_FIELDS", "check_birth_date", "check_citizen_query", "check_full_name", "check_personal_id"]
