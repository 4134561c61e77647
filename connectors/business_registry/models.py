"""Canonical (English) request and response models of the business registry operations."""

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from stdnum.exceptions import InvalidChecksum
from stdnum.exceptions import ValidationError as StdnumValidationError
from stdnum.vn import mst

from hub.errors import InvalidInput

Status = Literal["active", "suspended", "dissolving", "dissolved", "bankrupt"]

_SHAPE = re.compile(r"^\d{10}(-\d{3})?$")


def check_enterprise_code(value: str) -> str:
    """``value`` when it is 10 digits with a valid tax-code check digit, or that plus ``-NNN`` (a branch).

    Raises:
        InvalidInput: any other value (field ``enterprise_code``).
    """
    code = value.strip()
    if not _SHAPE.match(code):
        raise InvalidInput(
            f"enterprise_code {value!r} must be 10 digits, or 10 digits, '-' and 3 digits for a branch",
            field="enterprise_code",
            detail={"reason": "format"},
        )
    try:
        mst.validate(code)
    except StdnumValidationError as exc:
        reason = "check_digit" if isinstance(exc, InvalidChecksum) else "component"
        raise InvalidInput(
            f"enterprise_code {value!r} is not a valid tax code ({exc})",
            field="enterprise_code",
            detail={"reason": reason},
        ) from exc
    return code


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EnterpriseLookupRequest(_Model):
    """Look an enterprise (10 digits) or a branch (10-3) up by its code."""

    enterprise_code: str = Field(
        description="10-digit enterprise code (tax code) or 10-3 branch code",
        examples=["0100233488", "0100233488-001"],
        max_length=20,
    )


class EnterpriseSearchRequest(_Model):
    """Search enterprises by name, one page at a time (pages count from 1)."""

    name: str = Field(min_length=2, max_length=200, description="every word must occur in the name")
    page: int = Field(1, ge=1, le=10_000)
    page_size: int = Field(20, ge=1, le=100)


class LegalRepresentative(_Model):
    """The person who represents the enterprise at law (or heads the branch)."""

    full_name: str | None = None
    position: str | None = None
    id_number: str | None = None


class BusinessLine(_Model):
    """A line of business by VSIC code."""

    code: str
    name: str | None = None


class BranchSummary(_Model):
    """A branch as listed under its enterprise."""

    code: str
    name: str | None = None
    address: str | None = None
    status: Status | None = None
    status_name: str | None = None


class Enterprise(_Model):
    """An enterprise or a branch as the national business registry describes it."""

    enterprise_code: str
    parent_enterprise_code: str | None = Field(None, description="set for a branch: its enterprise")
    name: str
    foreign_name: str | None = None
    short_name: str | None = None
    tax_code: str | None = None
    enterprise_type: str | None = None
    status: Status | None = Field(
        None, description="None when the registry reports a status not in the table"
    )
    status_name: str | None = Field(None, description="the registry's own wording of the status")
    founding_date: date | None = None
    head_office_address: str | None = None
    legal_representative: LegalRepresentative | None = None
    charter_capital: int | None = Field(None, description="VND")
    main_business_line: BusinessLine | None = None
    branches: list[BranchSummary] = Field(default_factory=list)


class EnterpriseSummary(_Model):
    """One search hit."""

    enterprise_code: str
    name: str
    foreign_name: str | None = None
    status: Status | None = None
    status_name: str | None = None
    head_office_address: str | None = None


class EnterpriseSearchResult(_Model):
    """One page of search hits and the total number of hits."""

    total: int = Field(ge=0)
    page: int = Field(ge=1)
    page_size: int = Field(ge=1)
    items: list[EnterpriseSummary] = Field(default_factory=list)


__all__ = [
    "BranchSummary",
    "BusinessLine",
    "Enterprise",
    "EnterpriseLookupRequest",
    "EnterpriseSearchRequest",
    "EnterpriseSearchResult",
    "EnterpriseSummary",
    "LegalRepresentative",
    "Status",
    "check_enterprise_code",
]
