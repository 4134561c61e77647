"""The stored skeleton is taken before verification, so taking it must leave the package as received."""

import os
import re

import pytest
from lxml import etree

from hub.edocs.edxml import Attachment, append_trace, parse_edxml
from hub.edocs.ingest import make_skeleton
from tests.edocs.harness import Pki, package

HUB = "LGSP.H40"
WHEN = "2024/05/02 10:00:00"


def _variants(data: bytes) -> dict[str, bytes]:
    return {
        "as built": data,
        "indented trace list": data.replace(b"<TraceHeaderList>", b"<TraceHeaderList>\n    ").replace(
            b"</TraceHeader>", b"</TraceHeader>\n    "
        ),
        "no trace list": re.sub(rb"<TraceHeaderList>.*?</TraceHeaderList>", b"", data, flags=re.S),
        "comment in an attachment": data.replace(
            b"<ContentTransferEncoded>", b"<ContentTransferEncoded><!--c-->", 1
        ),
    }


@pytest.mark.parametrize(
    "variant", ["as built", "indented trace list", "no trace list", "comment in an attachment"]
)
def test_skeleton_leaves_the_package_as_received(pki: Pki, variant: str) -> None:
    # Given a signed package with a long and an empty attachment, laid out in one of several ways
    attachments = [Attachment("cid:1", "a.pdf", "application/pdf", os.urandom(100_000))]
    attachments.append(Attachment("cid:2", "b.txt", "text/plain", b""))
    root = parse_edxml(_variants(package(pki, attachments=attachments))[variant])
    before = etree.tostring(root)
    # When the skeleton is taken
    skeleton, markers = make_skeleton(root, HUB, WHEN)
    # Then the tree is byte for byte what it was, and the skeleton is the package with markers and the trace
    assert etree.tostring(root) == before
    expected = parse_edxml(before)
    for node, marker in zip(expected.iter("{*}ContentTransferEncoded"), markers, strict=True):
        for child in list(node):
            node.remove(child)
        node.text = marker
    append_trace(expected, HUB, WHEN)
    assert etree.tostring(parse_edxml(skeleton)) == etree.tostring(expected)
