"""The built-in transforms. Each is pure; bad input raises TransformError, bad arguments ValueError."""

import base64
import binascii
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mappings.codes import CodeTable
from mappings.errors import TransformError

VIETNAM = "Asia/Ho_Chi_Minh"

Unary = Callable[[Any], Any]


def _str(value: Any, what: str) -> str:
    if type(value) is not str:
        raise TransformError(f"{what} expects a string, not {type(value).__name__}")
    return value


def trim(value: Any) -> str:
    return _str(value, "trim").strip()


def upper(value: Any) -> str:
    return _str(value, "upper").upper()


def lower(value: Any) -> str:
    return _str(value, "lower").lower()


def nfc(value: Any) -> str:
    if type(value) is str:  # the hot path: one check, no helper call
        return unicodedata.normalize("NFC", value)
    return unicodedata.normalize("NFC", _str(value, "nfc"))


# --- dates and times ---------------------------------------------------------------------------
# Naive formats are wall-clock time in the zone (Asia/Ho_Chi_Minh unless `tz` says otherwise).
_PATTERNS: dict[str, tuple[re.Pattern[str], bool]] = {
    "yyyyMMddHHmmss": (re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})"), True),
    "yyyyMMdd": (re.compile(r"(\d{4})(\d{2})(\d{2})"), False),
    "dd/MM/yyyy": (re.compile(r"(\d{2})/(\d{2})/(\d{4})"), False),
    "dd/MM/yyyy HH:mm:ss": (re.compile(r"(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2})"), True),
    "yyyy/MM/dd HH:mm:ss": (re.compile(r"(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})"), True),
    "yyyy-MM-dd": (re.compile(r"(\d{4})-(\d{2})-(\d{2})"), False),
}
DATE_FORMATS = ("iso", "iso_date", *_PATTERNS)


def _parser(name: str, zone: ZoneInfo) -> Callable[[str], datetime]:
    if name == "iso":

        def parse_iso(text: str) -> datetime:
            moment = datetime.fromisoformat(text)
            return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)

        return parse_iso
    pattern, _ = _PATTERNS["yyyy-MM-dd" if name == "iso_date" else name]
    day_first = name.startswith("dd")

    def parse_fixed(text: str) -> datetime:
        match = pattern.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not {name}")
        parts = [int(p) for p in match.groups()]
        if day_first:
            parts[0], parts[2] = parts[2], parts[0]
        year, month, day, hour, minute, second = (*parts, 0, 0, 0)[:6]
        return datetime(year, month, day, hour, minute, second, tzinfo=zone)

    return parse_fixed


def _formatter(name: str, zone: ZoneInfo) -> Callable[[datetime], str]:
    # f-strings, not strftime: strftime does not zero-pad years below 1000 on every platform.
    formats: dict[str, Callable[[datetime], str]] = {
        "iso": lambda d: d.isoformat(),
        "iso_date": lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}",
        "yyyy-MM-dd": lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}",
        "yyyyMMddHHmmss": lambda d: (
            f"{d.year:04d}{d.month:02d}{d.day:02d}{d.hour:02d}{d.minute:02d}{d.second:02d}"
        ),
        "yyyyMMdd": lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}",
        "dd/MM/yyyy": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year:04d}",
        "dd/MM/yyyy HH:mm:ss": lambda d: (
            f"{d.day:02d}/{d.month:02d}/{d.year:04d} {d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        ),
        "yyyy/MM/dd HH:mm:ss": lambda d: (
            f"{d.year:04d}/{d.month:02d}/{d.day:02d} {d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        ),
    }
    return formats[name]


def date(from_: str = "iso", to: str = "iso", tz: str = VIETNAM) -> Unary:
    """Convert a date/time string between formats (see DATE_FORMATS), through the zone `tz`."""
    for name in (from_, to):
        if name not in DATE_FORMATS:
            raise ValueError(f"unknown date format '{name}' (known: {', '.join(DATE_FORMATS)})")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone '{tz}'") from exc
    parse, render = _parser(from_, zone), _formatter(to, zone)
    label = f"{from_} -> {to}"

    def convert(value: Any) -> str:
        try:
            return render(parse(_str(value, "date")))
        except (ValueError, OverflowError) as exc:
            raise TransformError(f"date {label}: {value!r} is not a valid {from_} date ({exc})") from exc

    return convert


# --- code tables -------------------------------------------------------------------------------
def code(table: CodeTable) -> Unary:
    """Look the value up in a code table (the spec names the table; the loader resolves it)."""
    if not isinstance(table, CodeTable):
        raise ValueError("`code` takes the name of a code table declared under `code_tables:`")
    return table.lookup


# --- Vietnamese names --------------------------------------------------------------------------
def split_name(value: Any) -> dict[str, str]:
    """`Nguyễn Văn An` -> {Ho: Nguyễn, ChuDem: Văn, Ten: An}; one word is the given name only."""
    words = _str(value, "split_name").split()
    if not words:
        raise TransformError("split_name: the name is empty")
    if len(words) == 1:
        return {"Ho": "", "ChuDem": "", "Ten": words[0]}
    return {"Ho": words[0], "ChuDem": " ".join(words[1:-1]), "Ten": words[-1]}


def join_name(value: Any) -> str:
    """{Ho, ChuDem, Ten} -> `Ho ChuDem Ten`, skipping empty parts."""
    if not isinstance(value, dict):
        raise TransformError(f"join_name expects an object with Ho, ChuDem, Ten, not {type(value).__name__}")
    parts = (value.get("Ho"), value.get("ChuDem"), value.get("Ten"))
    for part in parts:
        if part is not None and not isinstance(part, str):
            raise TransformError(f"join_name: name parts are strings, not {type(part).__name__}")
    joined = " ".join(p for p in parts if p)
    if not joined:
        raise TransformError("join_name: every name part is empty")
    return joined


# --- numbers and amounts -----------------------------------------------------------------------
def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise TransformError(f"{what} expects a number or a numeric string, not {type(value).__name__}")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation as exc:
        raise TransformError(f"{what}: {value!r} is not a number") from exc
    if not number.is_finite():
        raise TransformError(f"{what}: {value!r} is not a finite number")
    return number


def vnd(value: Any) -> int:
    """An amount in đồng as an integer: 50000, "50000", "50000.00" -> 50000; fractions refused."""
    if type(value) is int and value >= 0:
        return value
    number = _decimal(value, "vnd")
    if number != number.to_integral_value():
        raise TransformError(f"vnd: {value!r} has a fraction of a đồng")
    if number < 0:
        raise TransformError(f"vnd: {value!r} is negative")
    return int(number)


def decimal(places: int = 0) -> Unary:
    """A number as a plain decimal string with exactly `places` decimals; never rounds silently."""
    if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 18:
        raise ValueError("`places` is an integer from 0 to 18")
    quantum = Decimal(1).scaleb(-places)

    def render(value: Any) -> str:
        number = _decimal(value, "decimal")
        rounded = number.quantize(quantum)
        if rounded != number:
            raise TransformError(f"decimal: {value!r} has more than {places} decimals")
        return f"{rounded:f}"

    return render


def to_str(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Decimal):
        return str(value)
    raise TransformError(f"to_str expects a scalar, not {type(value).__name__}")


def to_int(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise TransformError("to_int does not take a boolean")
    number = _decimal(value, "to_int")
    if number != number.to_integral_value():
        raise TransformError(f"to_int: {value!r} is not a whole number")
    return int(number)


_TRUE = frozenset({"true", "1", "yes", "y"})
_FALSE = frozenset({"false", "0", "no", "n"})


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise TransformError(f"to_bool: {value!r} is not a boolean")


# --- text --------------------------------------------------------------------------------------
def base64_encode(value: Any) -> str:
    data = value if isinstance(value, bytes) else _str(value, "base64_encode").encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def base64_decode(value: Any) -> str:
    try:
        return base64.b64decode(_str(value, "base64_decode"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise TransformError(f"base64_decode: not base64 of UTF-8 text ({exc})") from exc


def concat(sep: str = " ") -> Unary:
    """Join a list (a JMESPath multi-select such as `[a, b]`) with `sep`, skipping nulls and ""."""
    if not isinstance(sep, str):
        raise ValueError("`sep` is a string")

    def join(value: Any) -> str:
        if not isinstance(value, list):
            raise TransformError(f"concat expects a list, not {type(value).__name__}")
        return sep.join(v if isinstance(v, str) else to_str(v) for v in value if v is not None and v != "")

    return join


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "trim": trim,
    "upper": upper,
    "lower": lower,
    "nfc": nfc,
    "split_name": split_name,
    "join_name": join_name,
    "vnd": vnd,
    "to_str": to_str,
    "to_int": to_int,
    "to_bool": to_bool,
    "base64_encode": base64_encode,
    "base64_decode": base64_decode,
}

FACTORIES: dict[str, Callable[..., Unary]] = {
    "date": date,
    "code": code,
    "decimal": decimal,
    "concat": concat,
}
