"""Code tables: provincial code -> national code, read from CSV or YAML, with a policy for unknown codes."""

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from mappings._yaml import Located, load_yaml
from mappings.errors import SpecError, TransformError

_MISSING: Any = object()


class Unknown(StrEnum):
    """What a lookup does with a code the table does not have."""

    ERROR = "error"
    DEFAULT = "default"
    PASS = "pass"


@dataclass(frozen=True)
class CodeTable:
    """One loaded code table; `lookup` is the pure function the `code` transform calls."""

    name: str
    codes: Mapping[str, Any]
    unknown: Unknown = Unknown.ERROR
    default: Any = None
    file: str = ""
    _codes: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_codes", dict(self.codes))

    def lookup(self, value: Any) -> Any:
        """The national code for `value` (ints are looked up as their decimal string).

        Raises:
            TransformError: the code is unknown and the policy is `error`.
        """
        found = self._codes.get(value if type(value) is str else _as_key(value), _MISSING)
        if found is not _MISSING:
            return found
        if self.unknown is Unknown.DEFAULT:
            return self.default
        if self.unknown is Unknown.PASS:
            return value
        raise TransformError(f"unknown code {value!r} in code table '{self.name}'")


def _as_key(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TransformError(f"a code must be a string or an integer, not {type(value).__name__}")
    return str(value)


def read_code_table(
    path: Path, *, key: str | None = None, value: str | None = None, invert: bool = False
) -> dict[str, Any]:
    """Read a CSV or YAML code table into {code: national code}.

    CSV: a header row, then one row per code; `key`/`value` name the columns (default: the first
    two); blank lines and lines starting with `#` are comments. YAML: `codes: {code: value}`.

    Raises:
        SpecError: unreadable file, unknown column, or a code listed twice (names the line).
    """
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read code table: {exc}", file=file) from exc
    if path.suffix == ".csv":
        rows = _csv_rows(text, file, key, value)
    elif path.suffix in (".yaml", ".yml"):
        if key is not None or value is not None:
            raise SpecError("`key`/`value` columns apply to CSV code tables only", file=file)
        rows = _yaml_rows(text, file)
    else:
        raise SpecError("a code table is a .csv, .yaml or .yml file", file=file)
    if invert:
        rows = [(_text(v), k, line) for k, v, line in rows]
    codes: dict[str, Any] = {}
    first: dict[str, int] = {}
    for code, national, line in rows:
        if code in codes:
            what = "value" if invert else "code"
            raise SpecError(
                f"{what} '{code}' is listed twice (first at line {first[code]})", file=file, line=line
            )
        codes[code] = national
        first[code] = line
    return codes


def _csv_rows(text: str, file: str, key: str | None, value: str | None) -> list[tuple[str, Any, int]]:
    # One physical line per row (no quoted newlines), so that every row has its line number.
    numbered = [
        (n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")
    ]
    if not numbered:
        raise SpecError("empty code table: a header row is required", file=file)
    header_line, header_text = numbered[0]
    header = [h.strip() for h in next(csv.reader([header_text]))]
    if len(header) < 2:
        raise SpecError("a CSV code table needs at least two columns", file=file, line=header_line)
    columns = []
    for wanted, fallback in ((key, 0), (value, 1)):
        if wanted is None:
            columns.append(fallback)
        elif wanted in header:
            columns.append(header.index(wanted))
        else:
            raise SpecError(
                f"no column '{wanted}' (columns: {', '.join(header)})", file=file, line=header_line
            )
    k, v = columns
    rows = []
    for n, line in numbered[1:]:
        cells = next(csv.reader([line]))
        if len(cells) != len(header):
            raise SpecError(f"expected {len(header)} cells, found {len(cells)}", file=file, line=n)
        rows.append((cells[k].strip(), cells[v].strip(), n))
    return rows


def _yaml_rows(text: str, file: str) -> list[tuple[str, Any, int]]:
    data = load_yaml(text, file=file)
    if not isinstance(data, Located) or not isinstance(data.get("codes"), Located):
        raise SpecError("a YAML code table is a mapping with a `codes:` mapping", file=file)
    unknown = set(data) - {"table", "description", "codes"}
    if unknown:
        name = sorted(map(str, unknown))[0]
        raise SpecError(
            f"unknown key '{name}' (expected table, description, codes)", file=file, line=data.line_of(name)
        )
    codes: Located = data["codes"]
    rows = []
    for code, national in codes.items():
        if isinstance(national, dict | list):
            raise SpecError("a code maps to a scalar", file=file, line=codes.line_of(code), field=str(code))
        rows.append((_text(code), national, codes.line_of(code)))
    return rows


def _text(code: Any) -> str:
    return code if isinstance(code, str) else str(code)
