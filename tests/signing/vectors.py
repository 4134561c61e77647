"""The shared XML-DSig vectors the safe parser accepts, once each, as (row id, bytes)."""

import base64
from collections.abc import Iterator
from pathlib import Path

from signing.errors import SigningError
from signing.safe_xml import parse_xml
from tests.signing.conformance import rows


def parsable_documents() -> Iterator[tuple[str, bytes]]:
    seen: set[Path] = set()
    for row in rows():
        if row.path in seen:
            continue
        seen.add(row.path)
        data = row.path.read_bytes()
        if row.file.endswith(".base64"):
            data = base64.b64decode(data)
        try:
            parse_xml(data)
        except SigningError:
            continue
        yield row.id, data
