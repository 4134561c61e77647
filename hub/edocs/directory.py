"""The agencies directory: organ codes with names and parents, from the configuration and the store.

Configured agencies win over imported ones with the same code. ``lgsp agencies import FILE`` loads a
CSV (``code,name,parent[,endpoint]``, UTF-8, header row) into the store. Recipients must be known here;
an agency with an ``endpoint`` receives pushes, the others pull.
"""

import csv
import io
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.edocs.errors import DirectoryError, UnknownAgency
from hub.edocs.repository import EdocsRepository
from hub.edocs.settings import AgencySettings, check_organ_code


@dataclass(frozen=True, slots=True)
class Agency:
    code: str
    name: str
    parent: str | None = None
    endpoint: str | None = None

    @property
    def mode(self) -> str:
        return "push" if self.endpoint else "pull"


class AgencyDirectory:
    """Looks agencies up in the configuration, then in the store (cached for ``ttl`` seconds)."""

    def __init__(
        self,
        configured: Mapping[str, AgencySettings],
        repository: EdocsRepository,
        *,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._configured = {
            code: Agency(code, a.name, a.parent, a.endpoint) for code, a in configured.items()
        }
        self._repository = repository
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, Agency | None]] = {}

    async def lookup(self, codes: Iterable[str]) -> dict[str, Agency]:
        """The known agencies among ``codes``."""
        found: dict[str, Agency] = {}
        missing = []
        now = self._clock()
        for code in dict.fromkeys(codes):
            if code in self._configured:
                found[code] = self._configured[code]
                continue
            cached = self._cache.get(code)
            if cached is not None and now - cached[0] < self._ttl:
                if cached[1] is not None:
                    found[code] = cached[1]
                continue
            missing.append(code)
        if missing:
            rows = {r["code"]: _agency(r) for r in await self._repository.agencies(missing)}
            for code in missing:
                self._cache[code] = (now, rows.get(code))
                if code in rows:
                    found[code] = rows[code]
            if len(self._cache) > 50_000:
                self._cache.clear()
        return found

    async def require(self, codes: Iterable[str]) -> dict[str, Agency]:
        """The agencies for ``codes``.

        Raises:
            UnknownAgency: some are not in the directory (all of those are named).
        """
        wanted = list(dict.fromkeys(codes))
        found = await self.lookup(wanted)
        unknown = [c for c in wanted if c not in found]
        if unknown:
            raise UnknownAgency(
                f"unknown agency {', '.join(unknown)} (not in the agencies directory)", codes=unknown
            )
        return found

    async def all(self) -> list[Agency]:
        merged = {r["code"]: _agency(r) for r in await self._repository.agencies()}
        merged.update(self._configured)
        return [merged[code] for code in sorted(merged)]

    def forget(self) -> None:
        self._cache.clear()


def _agency(row: Mapping[str, Any]) -> Agency:
    return Agency(row["code"], row["name"], row["parent"], row["endpoint"])


def parse_agencies_csv(text: str) -> list[dict[str, Any]]:
    """Read ``code,name,parent[,endpoint]`` rows (header row required; empty parent = top level).

    Raises:
        DirectoryError: a missing column, a bad organ code or endpoint, or a repeated code (names the line).
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = {(name or "").strip().lower() for name in reader.fieldnames or ()}
    absent = {"code", "name"} - columns
    if absent:
        raise DirectoryError(f"line 1: the header lacks column(s) {', '.join(sorted(absent))}", line=1)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for record in reader:
        line = reader.line_num
        values = {(k or "").strip().lower(): (v or "").strip() for k, v in record.items() if k is not None}
        code, name = values.get("code", ""), values.get("name", "")
        parent, endpoint = values.get("parent") or None, values.get("endpoint") or None
        try:
            check_organ_code(code)
            if parent is not None:
                check_organ_code(parent)
        except ValueError as exc:
            raise DirectoryError(f"line {line}: {exc}", line=line) from None
        if not name:
            raise DirectoryError(f"line {line}: agency {code} has no name", line=line)
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise DirectoryError(f"line {line}: endpoint {endpoint!r} is not an http(s) URL", line=line)
        if code in seen:
            raise DirectoryError(f"line {line}: agency {code} appears twice", line=line)
        seen.add(code)
        rows.append({"code": code, "name": name[:512], "parent": parent, "endpoint": endpoint, "line": line})
    return rows


async def import_agencies(
    directory: AgencyDirectory, repository: EdocsRepository, rows: list[dict[str, Any]]
) -> tuple[int, int]:
    """Upsert parsed rows into the store; every parent must be in the file or already known.

    Raises:
        DirectoryError: a parent is unknown (names the line).
    """
    in_file = {r["code"] for r in rows}
    parents = {r["parent"] for r in rows if r["parent"] and r["parent"] not in in_file}
    known = await directory.lookup(parents)
    for row in rows:
        if row["parent"] and row["parent"] not in in_file and row["parent"] not in known:
            raise DirectoryError(
                f"line {row['line']}: parent {row['parent']} of {row['code']} is unknown", line=row["line"]
            )
    result = await repository.upsert_agencies([{k: v for k, v in r.items() if k != "line"} for r in rows])
    directory.forget()
    return result


__all__ = ["Agency", "AgencyDirectory", "import_agencies", "parse_agencies_csv"]
