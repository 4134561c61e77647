"""The shared XML-DSig vectors the safe parser accepts, once each, as (row id, bytes); paths into trees."""

import base64
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

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


def path_to(root: etree._Element, node: etree._Element) -> list[int]:
    """Child indexes from ``root`` down to ``node`` (to find the same node in a copy of the tree)."""
    path = []
    while node is not root:
        parent = node.getparent()
        assert parent is not None
        path.append(parent.index(node))
        node = parent
    return path[::-1]


def follow(root: etree._Element, path: list[int]) -> etree._Element:
    """The node at ``path`` (from :func:`path_to`) below ``root``."""
    for index in path:
        root = root[index]
    return root
