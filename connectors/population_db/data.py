"""Deterministic synthetic population: any citizen is generated from (seed, index) on demand.

Nothing is stored. Citizens come in blocks of five, one block per household: index ``5f`` is the
husband and head of household ``f``, ``5f + 1`` his wife, ``5f + 2 .. 5f + 4`` their children. A
personal id is ``PPP`` (province) + century/sex digit + ``YY`` (birth year) + a 6-digit serial, and
the serial is an affine permutation of the index, so an id decodes to its index in O(1); the id is
then regenerated and compared, so an id that merely looks valid is not found. Name and address
pools come from Faker's ``vi_VN`` locale plus common names it lacks.
"""

import random
import unicodedata
from dataclasses import dataclass, replace
from datetime import date, timedelta

from faker.providers.address.vi_VN import Provider as _FakerAddress
from faker.providers.person.vi_VN import Provider as _FakerPerson

from connectors.population_db.codes import PROVINCES, century_digit

MAX_SIZE = 1_000_000
HOUSEHOLD_SIZE = 5
_SERIALS = 1_000_000
_LAST_BIRTH_YEAR = 2023
_MUNICIPALITIES = frozenset({"001", "031", "048", "079", "092"})


def _pool(*parts: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    # Sorted so the pool (and so every citizen) does not depend on set iteration order.
    return tuple(sorted({name for part in parts for name in part if " " not in name.strip()}))


_FAMILY_NAMES_COMMON = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng")
_FAMILY_NAMES = _pool(
    _FakerPerson.last_names,
    _FAMILY_NAMES_COMMON,
    ("Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trịnh", "Lương", "Mai", "Tô", "Cao", "Lâm"),
    ("Đoàn", "Tạ", "Hà", "Chu", "Triệu", "Vương", "Kiều", "Quách", "La", "Thái", "Lục", "Nông"),
)
_GIVEN_MALE = _pool(
    _FakerPerson.first_names_male,
    _FakerPerson.first_names_unisex,
    ("Tuấn", "Hùng", "Long", "Quân", "Thắng", "Hiếu", "Đạt", "Cường", "Sơn", "Tài", "Khánh", "Duy"),
    ("Lộc", "Phong", "Thịnh", "Toàn", "Việt", "Kiên", "Hậu", "Đông", "Hào", "Tiến", "Nghĩa", "Tâm"),
)
_GIVEN_FEMALE = _pool(
    _FakerPerson.first_names_female,
    _FakerPerson.first_names_unisex,
    ("Trang", "Hằng", "Nhung", "Thủy", "Hoa", "Vy", "Nhi", "Quỳnh", "Trâm", "Giang", "Loan", "Oanh"),
    ("Dung", "Thư", "Uyên", "Huyền", "Nga", "Hiền", "Thoa", "Diệp", "Tuyết", "Nhàn", "My", "Tâm"),
)
_MIDDLE_MALE = _pool(
    [m for m in _FakerPerson.middle_names if m not in {"Thị", "Mai"}],
    ("Minh", "Hữu", "Công", "Thanh", "Anh", "Tuấn", "Gia", "Ngọc", "Duy", "Trung", "Đình", "Quốc"),
)
_MIDDLE_FEMALE = _pool(
    ("Ngọc", "Thu", "Thanh", "Minh", "Hồng", "Kim", "Thùy", "Bảo", "Mỹ", "Phương", "Mai", "Diệu"),
    ("Hoài", "Khánh", "Lan", "Quỳnh", "Tuyết", "Xuân", "Bích", "Cẩm", "Thúy", "Vân", "Hải", "Như"),
)
_STREETS = tuple(sorted(set(_FakerAddress.streets)))
_COMMUNES = tuple(sorted(set(_FakerAddress.communes)))
_PROVINCE_CODES = tuple(sorted(PROVINCES))
# Most people are registered in the big cities; the weights are rough, not census figures.
_PROVINCE_WEIGHTS = tuple(
    8 if code in {"001", "079"} else 3 if code in _MUNICIPALITIES else 1 for code in _PROVINCE_CODES
)
_ETHNICITIES = ("01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "12", "17")
_ETHNICITY_WEIGHTS = (850, 19, 18, 8, 13, 15, 11, 12, 9, 5, 4, 2)
_RELIGIONS = ("00", "01", "02", "03", "04", "05")
_RELIGION_WEIGHTS = (820, 80, 60, 12, 14, 14)

_KIND_HOUSEHOLD = 0
_KIND_PERSON = 1
_KIND_SERIAL = 2


@dataclass(frozen=True, slots=True)
class Relative:
    """A reference to another citizen: the id and full name as that citizen's own record has them."""

    personal_id: str
    full_name: str


@dataclass(frozen=True, slots=True)
class Citizen:
    """One synthetic citizen as the national population DB would hold them."""

    index: int
    personal_id: str
    old_id_number: str | None
    family_name: str
    middle_name: str
    given_name: str
    birth_date: date
    sex: str
    ethnicity: str
    religion: str
    nationality: str
    hometown: str
    permanent_address: str
    current_address: str
    household_id: str
    household_head: Relative
    father: Relative | None = None
    mother: Relative | None = None
    spouse: Relative | None = None

    @property
    def full_name(self) -> str:
        """Family, middle and given names joined by single spaces."""
        return " ".join(part for part in (self.family_name, self.middle_name, self.given_name) if part)


@dataclass(frozen=True, slots=True)
class _Household:
    province: str
    husband_family_name: str
    wife_family_name: str
    husband_year: int
    wife_year: int
    child_years: tuple[int, int, int]
    ethnicity: str
    religion: str
    hometown: str
    wife_hometown: str
    address: str
    household_id: str


def normalize_name(name: str) -> str:
    """A name compared the way the national system compares names: NFC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


class Population:
    """A synthetic population of ``size`` citizens, the same for the same ``seed``.

    Raises:
        ValueError: seed negative or size outside 1..1,000,000.
    """

    def __init__(self, seed: int = 20240601, size: int = 100_000) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if not 1 <= size <= MAX_SIZE:
            raise ValueError(f"population size must be between 1 and {MAX_SIZE}, got {size}")
        self.seed = seed
        self.size = size
        rng = self._rng(_KIND_SERIAL, 0)
        # An odd multiplier not divisible by 5 is a unit modulo 10**6, so the map is a permutation.
        self._mul = rng.randrange(1, _SERIALS // 10) * 10 + rng.choice((1, 3, 7, 9))
        self._add = rng.randrange(_SERIALS)
        self._mul_inverse = pow(self._mul, -1, _SERIALS)

    def citizen(self, index: int) -> Citizen:
        """The citizen at ``index`` with parents, spouse and household head resolved.

        Raises:
            IndexError: index outside the population.
        """
        household = self._household(self._check(index) // HOUSEHOLD_SIZE)
        return self._resolve(self._core(index, household), household)

    def find(self, personal_id: str) -> Citizen | None:
        """The citizen with this personal id, or ``None``; O(1)."""
        index = self._decode(personal_id)
        if index is None:
            return None
        household = self._household(index // HOUSEHOLD_SIZE)
        core = self._core(index, household)
        return self._resolve(core, household) if core.personal_id == personal_id else None

    def index_of(self, personal_id: str) -> int | None:
        """Decode a personal id to its index, or ``None`` when no citizen has that id."""
        index = self._decode(personal_id)
        if index is None or self.personal_id(index) != personal_id:
            return None
        return index

    def personal_id(self, index: int) -> str:
        """The personal id of the citizen at ``index``.

        Raises:
            IndexError: index outside the population.
        """
        return self._core(index, self._household(self._check(index) // HOUSEHOLD_SIZE)).personal_id

    def _check(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise IndexError(f"citizen index {index} outside 0..{self.size - 1}")
        return index

    def _decode(self, personal_id: str) -> int | None:
        if len(personal_id) != 12 or not personal_id.isascii() or not personal_id.isdigit():
            return None
        index = (self._mul_inverse * (int(personal_id[6:]) - self._add)) % _SERIALS
        return index if index < self.size else None

    def _resolve(self, core: Citizen, household: _Household) -> Citizen:
        # One household is computed once per lookup and shared by every member resolved here.
        head_index = core.index - core.index % HOUSEHOLD_SIZE
        slot = core.index - head_index
        head = core if slot == 0 else self._core(head_index, household)
        father = mother = spouse = None
        if slot >= 2:
            father = _relative(head)
            mother = _relative(self._core(head_index + 1, household))
        elif head_index + 1 < self.size:
            spouse = _relative(self._core(head_index + 1 - slot, household))
        return replace(core, household_head=_relative(head), father=father, mother=mother, spouse=spouse)

    def _rng(self, kind: int, number: int) -> random.Random:
        return random.Random((self.seed << 22) | (kind << 20) | number)

    def _household(self, number: int) -> _Household:
        rng = self._rng(_KIND_HOUSEHOLD, number)
        province = rng.choices(_PROVINCE_CODES, _PROVINCE_WEIGHTS)[0]
        husband_year = rng.randint(1940, 1985)
        wife_year = min(husband_year + rng.randint(-2, 6), 1985)
        first_child = wife_year + rng.randint(19, 30)
        child_years = tuple(min(first_child + k * rng.randint(1, 5), _LAST_BIRTH_YEAR) for k in range(3))
        wife_province = province if rng.random() < 0.6 else rng.choice(_PROVINCE_CODES)
        return _Household(
            province=province,
            husband_family_name=_family_name(rng),
            wife_family_name=_family_name(rng),
            husband_year=husband_year,
            wife_year=wife_year,
            child_years=child_years,  # type: ignore[arg-type]
            ethnicity=rng.choices(_ETHNICITIES, _ETHNICITY_WEIGHTS)[0],
            religion=rng.choices(_RELIGIONS, _RELIGION_WEIGHTS)[0],
            hometown=_place(rng, province),
            wife_hometown=_place(rng, wife_province),
            address=_street_address(rng, province),
            household_id=f"{province}{(number * 7919 + self.seed) % 10**9:09d}",
        )

    def _core(self, index: int, household: _Household) -> Citizen:
        slot = index % HOUSEHOLD_SIZE
        rng = self._rng(_KIND_PERSON, index)
        if slot == 0:
            sex, year, family_name, hometown = (
                "1",
                household.husband_year,
                household.husband_family_name,
                household.hometown,
            )
        elif slot == 1:
            sex, year, family_name = "2", household.wife_year, household.wife_family_name
            hometown = household.wife_hometown
        else:
            sex = rng.choice(("1", "2"))
            year, family_name = household.child_years[slot - 2], household.husband_family_name
            hometown = household.hometown
        if sex == "1":
            middle = "Văn" if rng.random() < 0.35 else rng.choice(_MIDDLE_MALE)
            given = rng.choice(_GIVEN_MALE)
        else:
            middle = "Thị" if rng.random() < 0.45 else rng.choice(_MIDDLE_FEMALE)
            given = rng.choice(_GIVEN_FEMALE)
        if given in middle.split():
            pool = _GIVEN_MALE if sex == "1" else _GIVEN_FEMALE
            given = pool[(pool.index(given) + 1) % len(pool)]
        days = 366 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 365
        birth = date(year, 1, 1) + timedelta(days=rng.randrange(days))
        serial = (self._mul * index + self._add) % _SERIALS
        personal_id = f"{household.province}{century_digit(year, sex)}{year % 100:02d}{serial:06d}"
        old_id = f"{rng.randrange(10**8, 4 * 10**8):09d}" if year < 2000 else None
        current = household.address
        if slot != 4 and rng.random() < 0.15:
            current = _street_address(rng, rng.choice(("001", "079", "048", "031")))
        return Citizen(
            index=index,
            personal_id=personal_id,
            old_id_number=old_id,
            family_name=family_name,
            middle_name=middle,
            given_name=given,
            birth_date=birth,
            sex=sex,
            ethnicity=household.ethnicity,
            religion=household.religion,
            nationality="VN",
            hometown=hometown,
            permanent_address=household.address,
            current_address=current,
            household_id=household.household_id,
            household_head=Relative("", ""),  # resolved by citizen(), which knows the household
        )


def _relative(citizen: Citizen) -> Relative:
    return Relative(citizen.personal_id, citizen.full_name)


def _family_name(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return (
            rng.choice(_FAMILY_NAMES_COMMON[:3]) if rng.random() < 0.55 else rng.choice(_FAMILY_NAMES_COMMON)
        )
    return rng.choice(_FAMILY_NAMES)


def _province_name(code: str) -> str:
    prefix = "Thành phố" if code in _MUNICIPALITIES else "Tỉnh"
    return f"{prefix} {PROVINCES[code]}"


def _place(rng: random.Random, province: str) -> str:
    prefix = "Phường" if province in _MUNICIPALITIES and rng.random() < 0.7 else "Xã"
    return f"{prefix} {rng.choice(_COMMUNES)}, {_province_name(province)}"


def _street_address(rng: random.Random, province: str) -> str:
    number = rng.randint(1, 399)
    if rng.random() < 0.3:
        return f"Số {number}, ngõ {rng.randint(1, 199)} {rng.choice(_STREETS)}, {_place(rng, province)}"
    return f"Số {number} {rng.choice(_STREETS)}, {_place(rng, province)}"


__all__ = ["HOUSEHOLD_SIZE", "MAX_SIZE", "Citizen", "Population", "Relative", "normalize_name"]
