"""Canonical JSON bodies of the population operations (English field names); they describe, the
mapping specs in ``mappings/specs/population_db/`` convert."""

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CitizenQuery(_Model):
    """Look a citizen up by personal id; name and birth date, when given, must match too."""

    personal_id: str = Field(description="12-digit personal id (CCCD)", examples=["001096001005"])
    full_name: str | None = Field(None, description="full name, e.g. 'Nguyễn Văn An'")
    birth_date: str | None = Field(None, description="YYYY-MM-DD, or YYYY when only the year is known")


class CitizenVerifyQuery(_Model):
    """Ask whether a name and birth date match a personal id."""

    personal_id: str = Field(description="12-digit personal id (CCCD)")
    full_name: str = Field(description="full name")
    birth_date: str = Field(description="YYYY-MM-DD or YYYY")


class PersonRef(_Model):
    """Another citizen, by id and name."""

    personal_id: str
    full_name: str


class CitizenRecord(_Model):
    """A citizen as the national population DB holds them."""

    personal_id: str
    old_id_number: str | None = Field(None, description="9-digit identity card number (CMND), if any")
    full_name: str
    family_name: str
    middle_name: str
    given_name: str
    birth_date: str | None = Field(None, description="YYYY-MM-DD")
    gender: str = Field(description="male | female | unknown")
    ethnicity: str | None = None
    religion: str | None = None
    nationality: str | None = Field(None, description="country code, e.g. VN")
    hometown: str | None = None
    permanent_address: str | None = None
    current_address: str | None = None
    father: PersonRef | None = None
    mother: PersonRef | None = None
    spouse: PersonRef | None = None
    household_head: PersonRef | None = None
    household_id: str | None = None


class CitizenVerifyResult(_Model):
    """Whether the name and birth date match the personal id."""

    exists: bool


__all__ = ["CitizenQuery", "CitizenRecord", "CitizenVerifyQuery", "CitizenVerifyResult", "PersonRef"]
