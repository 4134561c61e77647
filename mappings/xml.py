"""XML both ways: a safe-parsed element -> the dict the engine reads, and a dict -> XML via a template.

This module never parses bytes: callers parse untrusted XML with the project's safe parser and
hand over the element.

Dict shape (both directions): keys are local names; `@name` is an attribute, `#text` the text of an
element that also has attributes or children; a repeated element is a list; a leaf element is its
text (None when empty). Mixed-content tails are not kept.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lxml import etree

from mappings.errors import MappingError, SpecError

_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_NAME = re.compile(r"^(?:([A-Za-z_][\w.-]*):)?([A-Za-z_][\w.-]*)$")


def to_dict(element: etree._Element) -> dict[str, Any]:
    """The content of `element` (its attributes, children and text) as a dict; its own name is dropped."""
    content = _content(element)
    if isinstance(content, dict):
        return content
    return {} if content is None else {"#text": content}


def _content(element: etree._Element) -> Any:
    children = [child for child in element if isinstance(child.tag, str)]
    attributes = {f"@{etree.QName(k).localname}": v for k, v in element.attrib.items() if k != _XSI_NIL}
    text = element.text
    if text is not None and not children and not attributes:
        return text
    if not children and not attributes:
        return None
    out: dict[str, Any] = dict(attributes)
    if text is not None and text.strip():
        out["#text"] = text
    for child in children:
        name = etree.QName(child).localname
        value = _content(child)
        # _content never returns a list, so a list here can only come from a repeated element.
        if name not in out:
            out[name] = value
        elif isinstance(existing := out[name], list):
            existing.append(value)
        else:
            out[name] = [existing, value]
    return out


@dataclass(frozen=True)
class XmlTemplate:
    """How to build XML from a dict: root element, namespaces and the order of children.

    `root` and element keys may carry a prefix declared in `nsmap` (`dc:CongDan`); unprefixed elements
    take `namespace` (every element when `qualified`, else the root only). `order` maps a dotted
    element path below the root ("" is the root) to its children's order; unlisted children follow.

    Raises:
        SpecError: the root is not a valid name, or uses an undeclared prefix.
    """

    root: str
    namespace: str | None = None
    nsmap: Mapping[str | None, str] = field(default_factory=dict)
    qualified: bool = True
    order: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.qualify(self.root, is_root=True, where="template root")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, file: str, line: int | None = None) -> "XmlTemplate":
        """A template from a spec's `xml:` section.

        Raises:
            SpecError: a key is unknown or has the wrong type (names the file and line).
        """
        lines = getattr(data, "lines", {})
        known = {"root", "namespace", "nsmap", "qualified", "order"}
        for key in data:
            if key not in known:
                raise SpecError(
                    f"unknown key '{key}' (expected {', '.join(sorted(known))})",
                    file=file,
                    line=lines.get(key, line),
                    field=f"xml.{key}",
                )

        def fail(key: str, message: str) -> SpecError:
            return SpecError(message, file=file, line=lines.get(key, line), field=f"xml.{key}")

        root = data.get("root")
        if not isinstance(root, str):
            raise fail("root", "`root` is the root element's name")
        namespace = data.get("namespace")
        if namespace is not None and not isinstance(namespace, str):
            raise fail("namespace", "`namespace` is a namespace URI")
        nsmap = data.get("nsmap", {})
        if not isinstance(nsmap, Mapping) or not all(
            (k is None or isinstance(k, str)) and isinstance(v, str) for k, v in nsmap.items()
        ):
            raise fail("nsmap", "`nsmap` maps prefixes to namespace URIs")
        qualified = data.get("qualified", True)
        if not isinstance(qualified, bool):
            raise fail("qualified", "`qualified` is true or false")
        order = data.get("order", {})
        if not isinstance(order, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(n, str) for n in v)
            for k, v in order.items()
        ):
            raise fail("order", "`order` maps an element path to a list of child names")
        try:
            return cls(
                root=root,
                namespace=namespace,
                nsmap=dict(nsmap),
                qualified=qualified,
                order={k: tuple(v) for k, v in order.items()},
            )
        except SpecError as exc:
            raise fail("root", exc.reason) from exc

    def qualify(self, name: str, *, is_root: bool = False, where: str = "") -> str:
        match = _NAME.match(name)
        if match is None:
            raise SpecError(f"{name!r} is not a valid XML name", file=where or "<xml template>")
        prefix, local = match.groups()
        if prefix is not None:
            if prefix not in self.nsmap:
                raise SpecError(f"prefix '{prefix}' is not declared in nsmap", file=where or "<xml template>")
            return f"{{{self.nsmap[prefix]}}}{local}"
        if self.namespace and (is_root or self.qualified):
            return f"{{{self.namespace}}}{local}"
        return local


def from_dict(data: Mapping[str, Any], template: XmlTemplate) -> etree._Element:
    """Build the root element described by `template` with `data` as its content.

    Raises:
        MappingError: a key is not a valid XML name or a value cannot be written (carries the path).
    """
    nsmap = dict(template.nsmap)
    if template.namespace and template.namespace not in nsmap.values():
        # lxml cannot undeclare a default namespace (xmlns=""), so unqualified children need a prefix.
        nsmap[None if template.qualified else "ns0"] = template.namespace
    root = etree.Element(template.qualify(template.root, is_root=True), nsmap=nsmap)  # type: ignore[arg-type]
    _fill(root, data, template, "", "")
    return root


def _fill(element: etree._Element, data: Any, template: XmlTemplate, order_key: str, path: str) -> None:
    if data is None:
        return
    if not isinstance(data, Mapping):
        element.text = _text(data, path)
        return
    wanted = template.order.get(order_key, ())
    rank = {name: i for i, name in enumerate(wanted)}
    for key in sorted(data, key=lambda k: rank.get(k, len(rank))):
        value = data[key]
        here = f"{path}.{key}" if path else key
        if key == "#text":
            element.text = _text(value, here)
        elif key.startswith("@"):
            name = _qualify(template, key[1:], here, attribute=True)
            if value is not None:
                element.set(name, _text(value, here))
        else:
            tag = _qualify(template, key, here, attribute=False)
            local = key.rpartition(":")[2]
            child_key = f"{order_key}.{local}" if order_key else local
            items = value if isinstance(value, list) else [value]
            for index, item in enumerate(items):
                child = etree.SubElement(element, tag)
                _fill(
                    child, item, template, child_key, f"{here}[{index}]" if isinstance(value, list) else here
                )


def _qualify(template: XmlTemplate, name: str, path: str, *, attribute: bool) -> str:
    try:
        if attribute and ":" not in name:
            if _NAME.match(name) is None:
                raise SpecError(f"{name!r} is not a valid XML name", file="<xml>")
            return name
        return template.qualify(name)
    except SpecError as exc:
        raise MappingError(path=path, cause=exc.reason) from exc


def _text(value: Any, path: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    raise MappingError(path=path, cause=f"a {type(value).__name__} cannot be written as XML text")
