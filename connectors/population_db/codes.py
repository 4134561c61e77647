"""Code tables of the national population DB: provinces (personal id prefix), sex, ethnicity, religion.

Province codes are the 63 codes printed in the first three digits of a 12-digit personal id (CCCD).
Ethnicity and religion codes follow the national code lists (⚠ inferred; only the groups the
synthetic population uses are listed). Sex: ``1`` male, ``2`` female (⚠ inferred).
"""

from collections.abc import Mapping
from types import MappingProxyType

PROVINCES: Mapping[str, str] = MappingProxyType(
    {
        "001": "Hà Nội",
        "002": "Hà Giang",
        "004": "Cao Bằng",
        "006": "Bắc Kạn",
        "008": "Tuyên Quang",
        "010": "Lào Cai",
        "011": "Điện Biên",
        "012": "Lai Châu",
        "014": "Sơn La",
        "015": "Yên Bái",
        "017": "Hòa Bình",
        "019": "Thái Nguyên",
        "020": "Lạng Sơn",
        "022": "Quảng Ninh",
        "024": "Bắc Giang",
        "025": "Phú Thọ",
        "026": "Vĩnh Phúc",
        "027": "Bắc Ninh",
        "030": "Hải Dương",
        "031": "Hải Phòng",
        "033": "Hưng Yên",
        "034": "Thái Bình",
        "035": "Hà Nam",
        "036": "Nam Định",
        "037": "Ninh Bình",
        "038": "Thanh Hóa",
        "040": "Nghệ An",
        "042": "Hà Tĩnh",
        "044": "Quảng Bình",
        "045": "Quảng Trị",
        "046": "Thừa Thiên Huế",
        "048": "Đà Nẵng",
        "049": "Quảng Nam",
        "051": "Quảng Ngãi",
        "052": "Bình Định",
        "054": "Phú Yên",
        "056": "Khánh Hòa",
        "058": "Ninh Thuận",
        "060": "Bình Thuận",
        "062": "Kon Tum",
        "064": "Gia Lai",
        "066": "Đắk Lắk",
        "067": "Đắk Nông",
        "068": "Lâm Đồng",
        "070": "Bình Phước",
        "072": "Tây Ninh",
        "074": "Bình Dương",
        "075": "Đồng Nai",
        "077": "Bà Rịa - Vũng Tàu",
        "079": "Hồ Chí Minh",
        "080": "Long An",
        "082": "Tiền Giang",
        "083": "Bến Tre",
        "084": "Trà Vinh",
        "086": "Vĩnh Long",
        "087": "Đồng Tháp",
        "089": "An Giang",
        "091": "Kiên Giang",
        "092": "Cần Thơ",
        "093": "Hậu Giang",
        "094": "Sóc Trăng",
        "095": "Bạc Liêu",
        "096": "Cà Mau",
    }
)

# Century/sex digit of a personal id: (century start, sex code).
CENTURY_DIGITS: Mapping[str, tuple[int, str]] = MappingProxyType(
    {
        "0": (1900, "1"),
        "1": (1900, "2"),
        "2": (2000, "1"),
        "3": (2000, "2"),
        "4": (2100, "1"),
        "5": (2100, "2"),
        "6": (2200, "1"),
        "7": (2200, "2"),
        "8": (1800, "1"),
        "9": (1800, "2"),
    }
)

SEXES: Mapping[str, str] = MappingProxyType({"1": "Nam", "2": "Nữ"})

ETHNICITIES: Mapping[str, str] = MappingProxyType(
    {
        "01": "Kinh",
        "02": "Tày",
        "03": "Thái",
        "04": "Hoa",
        "05": "Khơ-me",
        "06": "Mường",
        "07": "Nùng",
        "08": "HMông",
        "09": "Dao",
        "10": "Gia-rai",
        "11": "Ngái",
        "12": "Ê-đê",
        "13": "Ba-na",
        "14": "Xơ-đăng",
        "15": "Sán Chay",
        "16": "Cơ-ho",
        "17": "Chăm",
    }
)

RELIGIONS: Mapping[str, str] = MappingProxyType(
    {
        "00": "Không",
        "01": "Phật giáo",
        "02": "Công giáo",
        "03": "Tin lành",
        "04": "Cao Đài",
        "05": "Phật giáo Hòa Hảo",
        "06": "Hồi giáo",
    }
)


def century_digit(year: int, sex: str) -> str:
    """The century/sex digit for a birth year and a sex code (``1`` male, ``2`` female)."""
    for digit, (start, code) in CENTURY_DIGITS.items():
        if start <= year < start + 100 and code == sex:
            return digit
    raise ValueError(f"no century digit for year {year} and sex {sex!r}")


__all__ = ["CENTURY_DIGITS", "ETHNICITIES", "PROVINCES", "RELIGIONS", "SEXES", "century_digit"]
