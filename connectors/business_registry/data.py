"""A deterministic synthetic business registry, generated on demand from an index.

Nothing is stored: enterprise ``i`` of a registry built from ``seed`` is always the same, its code is
computed from ``i`` and ``i`` from its code in O(1). Codes are Vietnamese tax codes (MST): a
two-digit province prefix, seven digits and a check digit computed and validated with
``stdnum.vn.mst``; branches append ``-001``, ``-002``, ... Only the name index behind the search is
built, lazily and over at most ``search_limit`` enterprises.
"""

import random
import unicodedata
from array import array
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from math import gcd
from threading import Lock

from faker import Faker
from stdnum.vn import mst

# Province prefixes of tax codes (first two digits); enterprises are spread over them in turn.
_PREFIXES = ("01", "02", "03", "04", "10", "18", "23", "27", "31", "36", "40", "44", "56", "58", "63", "79")
_SLOTS = 8  # last digits used per 8-digit stem: every stem has at least 8 with a one-digit check digit
_SPACE = 10**6  # six free digits per stem

STATUSES: tuple[tuple[str, str, float], ...] = (
    ("active", "Đang hoạt động", 0.80),
    ("suspended", "Tạm ngừng kinh doanh", 0.07),
    ("dissolving", "Đang làm thủ tục giải thể", 0.04),
    ("dissolved", "Đã giải thể", 0.07),
    ("bankrupt", "Phá sản", 0.02),
)
STATUS_NAMES = {key: name for key, name, _ in STATUSES}

# (type name, name prefix, English suffix, abbreviation, representative's position)
_TYPES = (
    (
        "Công ty trách nhiệm hữu hạn một thành viên",
        "CÔNG TY TNHH MỘT THÀNH VIÊN",
        "ONE MEMBER COMPANY LIMITED",
        "CO., LTD",
        "Giám đốc",
    ),
    (
        "Công ty trách nhiệm hữu hạn hai thành viên trở lên",
        "CÔNG TY TNHH",
        "COMPANY LIMITED",
        "CO., LTD",
        "Chủ tịch Hội đồng thành viên",
    ),
    ("Công ty cổ phần", "CÔNG TY CỔ PHẦN", "JOINT STOCK COMPANY", "JSC", "Tổng giám đốc"),
    ("Doanh nghiệp tư nhân", "DOANH NGHIỆP TƯ NHÂN", "PRIVATE ENTERPRISE", "", "Chủ doanh nghiệp"),
    ("Công ty hợp danh", "CÔNG TY HỢP DANH", "PARTNERSHIP", "", "Thành viên hợp danh"),
)
_TYPE_WEIGHTS = (0.34, 0.30, 0.26, 0.08, 0.02)

# (Vietnamese word, English word, VSIC codes of matching business lines)
_FIELDS = (
    ("THƯƠNG MẠI", "TRADING", ("4610", "4632", "4659")),
    ("DỊCH VỤ", "SERVICES", ("8299", "7020")),
    ("XÂY DỰNG", "CONSTRUCTION", ("4101", "4102", "4212")),
    ("ĐẦU TƯ", "INVESTMENT", ("6810", "7020")),
    ("CÔNG NGHỆ", "TECHNOLOGY", ("6201", "6202")),
    ("VẬN TẢI", "TRANSPORT", ("4933",)),
    ("XUẤT NHẬP KHẨU", "IMPORT EXPORT", ("4610", "4659")),
    ("SẢN XUẤT", "MANUFACTURING", ("2511", "1079")),
    ("NÔNG NGHIỆP", "AGRICULTURE", ("0118", "4620")),
    ("DU LỊCH", "TOURISM", ("7912", "5510")),
    ("THỰC PHẨM", "FOOD", ("1079", "4632", "5610")),
    ("BẤT ĐỘNG SẢN", "REAL ESTATE", ("6810",)),
    ("TƯ VẤN", "CONSULTING", ("7020", "7110")),
    ("CƠ KHÍ", "MECHANICAL ENGINEERING", ("2511",)),
    ("MAY MẶC", "GARMENT", ("1410",)),
)

VSIC: dict[str, str] = {
    "0118": "Trồng rau, đậu các loại và trồng hoa",
    "1079": "Sản xuất thực phẩm khác chưa được phân vào đâu",
    "1410": "May trang phục (trừ trang phục từ da lông thú)",
    "2511": "Sản xuất các cấu kiện kim loại",
    "4101": "Xây dựng nhà để ở",
    "4102": "Xây dựng nhà không để ở",
    "4212": "Xây dựng công trình đường bộ",
    "4610": "Đại lý, môi giới, đấu giá hàng hóa",
    "4620": "Bán buôn nông, lâm sản nguyên liệu (trừ gỗ, tre, nứa) và động vật sống",
    "4632": "Bán buôn thực phẩm",
    "4659": "Bán buôn máy móc, thiết bị và phụ tùng máy khác",
    "4933": "Vận tải hàng hóa bằng đường bộ",
    "5510": "Dịch vụ lưu trú ngắn ngày",
    "5610": "Nhà hàng và các dịch vụ ăn uống phục vụ lưu động",
    "6201": "Lập trình máy vi tính",
    "6202": "Tư vấn máy vi tính và quản trị hệ thống máy vi tính",
    "6810": "Kinh doanh bất động sản, quyền sử dụng đất thuộc chủ sở hữu, chủ sử dụng hoặc đi thuê",
    "7020": "Hoạt động tư vấn quản lý",
    "7110": "Hoạt động kiến trúc và tư vấn kỹ thuật có liên quan",
    "7912": "Điều hành tua du lịch",
    "8299": "Hoạt động dịch vụ hỗ trợ kinh doanh khác còn lại chưa được phân vào đâu",
}

_BRAND = (
    "AN", "BÌNH", "MINH", "PHÁT", "HƯNG", "THỊNH", "LONG", "HOÀNG", "PHÚ", "QUANG", "THÀNH", "ĐẠT",
    "VIỆT", "NAM", "SAO", "MAI", "HÒA", "TÂN", "TRƯỜNG", "SƠN", "HẢI", "ĐỨC", "KHANG", "GIA", "BẢO",
    "NGỌC", "THIÊN", "PHƯỚC", "LỘC", "TÀI", "HỒNG", "KIM", "TRUNG", "ÁNH", "DƯƠNG", "XUÂN",
)  # fmt: skip
_CAPITALS = (100, 500, 1_000, 2_000, 3_000, 5_000, 10_000, 20_000, 50_000, 100_000, 500_000)  # millions
_FIRST_DAY = date(1995, 1, 1)
_DAYS = (date(2024, 12, 31) - _FIRST_DAY).days


def fold(text: str) -> str:
    """Lower-case ``text`` and strip Vietnamese diacritics (``Đ`` → ``d``) for matching."""
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


@dataclass(frozen=True, slots=True)
class Person:
    """A legal representative or head of branch."""

    full_name: str
    position: str
    id_number: str


@dataclass(frozen=True, slots=True)
class Branch:
    """A dependent unit with a 10-3 code."""

    code: str
    parent_code: str
    name: str
    address: str
    status: str
    founding_date: date
    head: Person

    @property
    def status_name(self) -> str:
        return STATUS_NAMES[self.status]


@dataclass(frozen=True, slots=True)
class Enterprise:
    """One registered enterprise (head office)."""

    index: int
    code: str
    name: str
    foreign_name: str
    short_name: str
    enterprise_type: str
    status: str
    founding_date: date
    address: str
    representative: Person
    capital: int
    business_line: str
    branches: tuple[Branch, ...]

    @property
    def status_name(self) -> str:
        return STATUS_NAMES[self.status]

    @property
    def business_line_name(self) -> str:
        return VSIC[self.business_line]


@dataclass(frozen=True, slots=True)
class _Names:
    name: str
    foreign_name: str
    short_name: str
    type_index: int
    field_index: int


@lru_cache(maxsize=65_536)
def _valid_last_digits(stem: str) -> tuple[str, ...]:
    out = []
    for digit in "0123456789":
        nine = stem + digit
        check = mst.calc_check_digit(nine)
        if len(check) == 1 and mst.is_valid(nine + check):
            out.append(digit)
    return tuple(out[:_SLOTS])


class Registry:
    """``size`` enterprises generated from ``seed``; lookups by code and a bounded name search."""

    def __init__(self, seed: int = 7, size: int = 50_000, *, search_limit: int = 200_000) -> None:
        if size < 1 or size > len(_PREFIXES) * _SLOTS * _SPACE:
            raise ValueError(f"size {size} is out of range")
        self.seed = seed
        self.size = size
        self.search_limit = min(search_limit, size)
        rng = random.Random(seed)
        # An affine permutation of the six free digits scatters codes while staying invertible.
        self._mul = rng.randrange(100_001, 999_999, 2)
        self._mul += 2 if self._mul % 5 == 0 else 0
        # A second permutation, over indices, so that neighbours in the index are not neighbours in code.
        self._shuffle = next(
            m for m in range(rng.randrange(1, size + 1) | 1, 10 * size + 3) if gcd(m, size) == 1
        )
        self._unshuffle = pow(self._shuffle, -1, size) if size > 1 else 0
        self._add = rng.randrange(_SPACE)
        self._inv = pow(self._mul, -1, _SPACE)
        self._prefix_index = {p: i for i, p in enumerate(_PREFIXES)}
        self._cache: OrderedDict[int, Enterprise] = OrderedDict()
        self._cache_size = 4096
        self._lock = Lock()
        self._fake = Faker("vi_VN")
        self._fake_lock = Lock()
        self._postings: dict[str, array[int]] | None = None

    def __len__(self) -> int:
        return self.size

    # -- codes -----------------------------------------------------------------------------------

    def code_of(self, index: int) -> str:
        """The 10-digit tax code of enterprise ``index``."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        scattered = (index * self._shuffle) % self.size
        prefix = _PREFIXES[scattered % len(_PREFIXES)]
        rest = scattered // len(_PREFIXES)
        stem_number, slot = divmod(rest, _SLOTS)
        stem = prefix + f"{(self._mul * stem_number + self._add) % _SPACE:06d}"
        nine = stem + _valid_last_digits(stem)[slot]
        return mst.validate(nine + mst.calc_check_digit(nine))

    def index_of(self, code: str) -> int | None:
        """The index of the enterprise with 10-digit ``code``, or None when the registry has none."""
        if len(code) != 10 or not mst.is_valid(code):
            return None
        position = self._prefix_index.get(code[:2])
        if position is None:
            return None
        stem = code[:8]
        digits = _valid_last_digits(stem)
        if code[8] not in digits:
            return None
        stem_number = ((int(code[2:8]) - self._add) * self._inv) % _SPACE
        scattered = (stem_number * _SLOTS + digits.index(code[8])) * len(_PREFIXES) + position
        return (scattered * self._unshuffle) % self.size if scattered < self.size else None

    # -- records ---------------------------------------------------------------------------------

    def enterprise(self, index: int) -> Enterprise:
        """Enterprise ``index`` (0 ≤ index < size)."""
        with self._lock:
            cached = self._cache.get(index)
            if cached is not None:
                self._cache.move_to_end(index)
                return cached
        built = self._build(index)
        with self._lock:
            self._cache[index] = built
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return built

    def lookup(self, code: str) -> Enterprise | Branch | None:
        """The enterprise (10 digits) or branch (10-3) with ``code``, or None."""
        head, _, suffix = code.partition("-")
        index = self.index_of(head)
        if index is None:
            return None
        enterprise = self.enterprise(index)
        if not suffix:
            return enterprise
        return next((b for b in enterprise.branches if b.code == code), None)

    def __iter__(self) -> Iterator[Enterprise]:
        return (self.enterprise(i) for i in range(self.size))

    def _rng(self, index: int, salt: int) -> random.Random:
        return random.Random((self.seed * 1_000_003 + index) * 7 + salt)

    def _names(self, index: int) -> _Names:
        rng = self._rng(index, 1)
        type_index = rng.choices(range(len(_TYPES)), _TYPE_WEIGHTS)[0]
        fields = rng.sample(range(len(_FIELDS)), rng.choice((1, 1, 2)))
        brand = " ".join(rng.sample(_BRAND, 2))
        _, prefix, suffix, abbreviation, _ = _TYPES[type_index]
        vietnamese = " ".join(_FIELDS[f][0] for f in fields)
        english = " ".join(_FIELDS[f][1] for f in fields)
        brand_ascii = fold(brand).upper()
        return _Names(
            name=f"{prefix} {vietnamese} {brand}",
            foreign_name=f"{brand_ascii} {english} {suffix}",
            short_name=f"{brand_ascii.replace(' ', '')} {abbreviation}".strip(),
            type_index=type_index,
            field_index=fields[0],
        )

    def _build(self, index: int) -> Enterprise:
        code = self.code_of(index)
        names = self._names(index)
        rng = self._rng(index, 2)
        type_name, _, _, _, position = _TYPES[names.type_index]
        status = rng.choices([s[0] for s in STATUSES], [s[2] for s in STATUSES])[0]
        founded = _FIRST_DAY + timedelta(days=rng.randrange(_DAYS))
        branch_count = rng.choices((0, 1, 2, 3), (0.6, 0.2, 0.12, 0.08))[0]
        with self._fake_lock:  # one Faker per registry: building one costs far more than a record
            self._fake.seed_instance(self.seed * 1_000_003 + index)
            address = _address(self._fake)
            representative = _person(self._fake, rng, position)
            branch_places = [
                (_address(self._fake), _person(self._fake, rng, "Người đứng đầu chi nhánh"))
                for _ in range(branch_count)
            ]
        branches = tuple(
            Branch(
                code=f"{code}-{n:03d}",
                parent_code=code,
                name=f"CHI NHÁNH {n} - {names.name}",
                address=branch_address,
                status=status if status != "active" else rng.choice(("active",) * 9 + ("suspended",)),
                founding_date=founded + timedelta(days=rng.randrange(1, 3000)),
                head=head,
            )
            for n, (branch_address, head) in enumerate(branch_places, start=1)
        )
        return Enterprise(
            index=index,
            code=code,
            name=names.name,
            foreign_name=names.foreign_name,
            short_name=names.short_name,
            enterprise_type=type_name,
            status=status,
            founding_date=founded,
            address=address,
            representative=representative,
            capital=rng.choice(_CAPITALS) * 1_000_000,
            business_line=rng.choice(_FIELDS[names.field_index][2]),
            branches=branches,
        )

    # -- search ----------------------------------------------------------------------------------

    def search(self, name: str, page: int = 1, page_size: int = 20) -> tuple[int, list[Enterprise]]:
        """Enterprises whose name holds every word of ``name`` (diacritics ignored), one page of them.

        Only the first ``search_limit`` enterprises are indexed. Returns (total matches, page items).
        """
        tokens = fold(name).split()
        if not tokens:
            return 0, []
        postings = self._index()
        lists = sorted((postings.get(t, array("I")) for t in tokens), key=len)
        matches: list[int] = list(lists[0])
        for other in lists[1:]:
            members = set(other)
            matches = [i for i in matches if i in members]
        start = (page - 1) * page_size
        return len(matches), [self.enterprise(i) for i in matches[start : start + page_size]]

    def _index(self) -> "dict[str, array[int]]":
        with self._lock:
            if self._postings is None:
                postings: dict[str, array[int]] = {}
                for i in range(self.search_limit):
                    names = self._names(i)
                    for token in set(fold(names.name).split()):
                        postings.setdefault(token, array("I")).append(i)
                self._postings = postings
            return self._postings


def _person(fake: Faker, rng: random.Random, position: str) -> Person:
    male = rng.random() < 0.6
    given = fake.first_name_male() if male else fake.first_name_female()
    middle = ("Văn", "Đức", "Hữu", "Minh", "Quốc") if male else ("Thị", "Ngọc", "Thu", "Thanh", "Kim")
    birth_year = rng.randrange(1955, 2000)
    century_gender = (0 if male else 1) + (2 if birth_year >= 2000 else 0)
    id_number = f"{rng.randrange(1, 96):03d}{century_gender}{birth_year % 100:02d}{rng.randrange(10**6):06d}"
    return Person(f"{fake.last_name()} {rng.choice(middle)} {given}", position, id_number)


def _address(fake: Faker) -> str:
    return f"{fake.street_address()}, {fake.commune()}, {fake.province()}"


__all__ = ["STATUSES", "STATUS_NAMES", "VSIC", "Branch", "Enterprise", "Person", "Registry", "fold"]
