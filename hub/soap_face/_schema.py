"""Pydantic models as XSD, and XML to and from the JSON those models describe.

One walk over a model gives its `Shape`: every field as an XML element with an XSD type. The
same shape writes the schema, reads a request wrapper into a dict for ``model_validate`` and
writes a validated answer as XML, so the WSDL and the mediation cannot disagree.

Types: str, int, float, Decimal, bool, date, datetime, time, UUID, Enum and Literal (an
enumeration), nested models (a named complexType), ``list[X]`` (a repeated element), ``X | None``
(nillable). Anything else is refused with the field's path.
"""

import datetime as dt
import decimal
import enum
import math
import re
import types
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from lxml import etree
from pydantic import BaseModel, ValidationError

from hub.soap_face.errors import BadReply, InvalidBody

XS = "http://www.w3.org/2001/XMLSchema"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

_SCALARS: tuple[tuple[type, str], ...] = (
    # bool before int, datetime before date: subclasses first.
    (bool, "boolean"),
    (int, "integer"),
    (float, "double"),
    (decimal.Decimal, "decimal"),
    (dt.datetime, "dateTime"),
    (dt.date, "date"),
    (dt.time, "time"),
    (uuid.UUID, "string"),
    (str, "string"),
)
_SEQUENCES = (list, tuple, set, frozenset, Sequence)
_NCNAME = re.compile(r"[^A-Za-z0-9_.\-]")


class UnsupportedModel(Exception):
    """A model has a field the SOAP face cannot describe in XSD; `path` names it."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True, slots=True)
class Enumeration:
    """An XSD simpleType restricting xs:string or xs:integer to a set of values."""

    name: str | None  # None: anonymous (a Literal)
    base: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Element:
    """One model field as an XML element."""

    attribute: str
    name: str
    required: bool  # minOccurs 1
    model_required: bool  # the model has no default for it
    nillable: bool
    repeated: bool
    scalar: str | None = None  # the xs: type of a plain leaf
    enumeration: Enumeration | None = None
    shape: "Shape | None" = None  # a nested model


@dataclass(eq=False, slots=True)
class Shape:
    """A model as an XSD complexType: its name and its fields in declaration order."""

    model: type[BaseModel]
    type_name: str
    elements: list[Element] = field(default_factory=list)

    def element(self, name: str) -> Element | None:
        return next((e for e in self.elements if e.name == name), None)


class ShapeBook:
    """Every named type met while describing some models (names made unique within one schema)."""

    def __init__(self) -> None:
        self.shapes: dict[type[BaseModel], Shape] = {}
        self.enumerations: dict[type[enum.Enum], Enumeration] = {}
        self._names: set[str] = set()

    def describe(self, model: type[BaseModel], path: str = "") -> Shape:
        """The shape of `model` (and, recorded here, of every model and enum it uses).

        Raises:
            UnsupportedModel: a field's type has no XSD counterpart here.
        """
        known = self.shapes.get(model)
        if known is not None:
            return known
        shape = Shape(model, self._name(model.__name__))
        self.shapes[model] = shape  # before the fields: a model may contain itself
        for attribute, info in model.model_fields.items():
            name = info.alias or attribute
            where = f"{path}.{name}" if path else name
            shape.elements.append(self._element(attribute, name, info.annotation, info.is_required(), where))
        return shape

    def _name(self, wanted: str) -> str:
        base = _NCNAME.sub("_", wanted) or "Type"
        if not (base[0].isalpha() or base[0] == "_"):
            base = f"T{base}"
        name, counter = base, 2
        while name in self._names:
            name, counter = f"{base}{counter}", counter + 1
        self._names.add(name)
        return name

    def _element(self, attribute: str, name: str, annotation: Any, required: bool, where: str) -> Element:
        inner, nullable = _strip_optional(annotation, where)
        repeated = False
        origin = get_origin(inner)
        if inner in _SEQUENCES or origin in _SEQUENCES:
            args = [a for a in get_args(inner) if a is not Ellipsis]
            if len(args) != 1:
                raise UnsupportedModel(f"{where}: a sequence needs one item type", path=where)
            repeated = True
            inner, item_nullable = _strip_optional(args[0], where)
            if item_nullable:
                raise UnsupportedModel(f"{where}: list items cannot be None in XML", path=where)
        shape: Shape | None = None
        enumeration: Enumeration | None = None
        scalar: str | None = None
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            shape = self.describe(inner, where)
        elif isinstance(inner, type) and issubclass(inner, enum.Enum):
            enumeration = self._enum(inner, where)
        elif get_origin(inner) is Literal:
            enumeration = _enumeration(None, get_args(inner), where)
        else:
            scalar = next((x for p, x in _SCALARS if isinstance(inner, type) and issubclass(inner, p)), None)
            if scalar is None:
                raise UnsupportedModel(f"{where}: type {inner!r} has no XSD counterpart", path=where)
        return Element(
            attribute=attribute,
            name=name,
            # a repeated element may occur zero times; a missing list is read as []
            required=required and not nullable and not repeated,
            model_required=required,
            nillable=nullable,
            repeated=repeated,
            scalar=scalar,
            enumeration=enumeration,
            shape=shape,
        )

    def _enum(self, kind: type[enum.Enum], where: str) -> Enumeration:
        known = self.enumerations.get(kind)
        if known is None:
            values = tuple(member.value for member in kind)
            known = self.enumerations[kind] = _enumeration(self._name(kind.__name__), values, where)
        return known


def _strip_optional(annotation: Any, where: str) -> tuple[Any, bool]:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise UnsupportedModel(f"{where}: a union of several types has no XSD counterpart", path=where)
        inner, _ = _strip_optional(args[0], where)
        return inner, len(args) != len(get_args(annotation))
    return annotation, False


def _enumeration(name: str | None, values: Sequence[Any], where: str) -> Enumeration:
    if all(isinstance(v, str) for v in values):
        return Enumeration(name, "string", tuple(values))
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return Enumeration(name, "integer", tuple(str(v) for v in values))
    raise UnsupportedModel(f"{where}: an enumeration must be all strings or all integers", path=where)


# ---- XSD ----------------------------------------------------------------------------------------


def schema_types(book: ShapeBook, schema: etree._Element, prefix: str) -> None:
    """Append every named complexType and simpleType of `book` to an xs:schema element."""
    for enumeration in book.enumerations.values():
        schema.append(_simple_type(enumeration))
    for shape in book.shapes.values():
        complex_type = etree.SubElement(schema, f"{{{XS}}}complexType", name=shape.type_name)
        complex_type.append(_sequence(shape, prefix))


def _sequence(shape: Shape, prefix: str) -> etree._Element:
    """The xs:sequence of a shape's elements."""
    node = etree.Element(f"{{{XS}}}sequence")
    for item in shape.elements:
        child = etree.SubElement(node, f"{{{XS}}}element", name=item.name)
        if item.shape is not None:
            child.set("type", f"{prefix}:{item.shape.type_name}")
        elif item.enumeration is not None and item.enumeration.name is not None:
            child.set("type", f"{prefix}:{item.enumeration.name}")
        elif item.enumeration is not None:
            child.append(_simple_type(item.enumeration))
        else:
            child.set("type", f"xs:{item.scalar}")
        if not item.required:
            child.set("minOccurs", "0")
        if item.repeated:
            child.set("maxOccurs", "unbounded")
        if item.nillable:
            child.set("nillable", "true")
    return node


def _simple_type(enumeration: Enumeration) -> etree._Element:
    node = etree.Element(f"{{{XS}}}simpleType")
    if enumeration.name is not None:
        node.set("name", enumeration.name)
    restriction = etree.SubElement(node, f"{{{XS}}}restriction", base=f"xs:{enumeration.base}")
    for value in enumeration.values:
        etree.SubElement(restriction, f"{{{XS}}}enumeration", value=value)
    return node


# ---- XML -> dict (requests) ---------------------------------------------------------------------


def read_request(wrapper: etree._Element, shape: Shape) -> BaseModel:
    """Read a request wrapper element into a validated instance of the shape's model.

    Raises:
        InvalidBody: an unknown, repeated or misplaced element, or a value the model refuses (names the field).
    """
    document = _read(wrapper, shape, "")
    try:
        return shape.model.model_validate(document)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = _path(problem["loc"]) or etree.QName(wrapper).localname
        raise InvalidBody(f"{where}: {problem['msg']}", field=where) from exc


def _read(node: etree._Element, shape: Shape, path: str) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for child in node:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        where = f"{path}.{name}" if path else name
        element = shape.element(name)
        if element is None:
            raise InvalidBody(f"{where}: no such element in {shape.type_name}", field=where)
        value = _value(child, element, where)
        if element.repeated:
            items = document.setdefault(name, [])
            items.append(value)
        elif name in document:
            raise InvalidBody(f"{where}: the element appears more than once", field=where)
        else:
            document[name] = value
    for element in shape.elements:
        if element.name not in document and element.model_required:
            # XSD lets these be absent; the model wants them said: an empty list, or None
            if element.repeated:
                document[element.name] = []
            elif element.nillable:
                document[element.name] = None
    return document


def _value(node: etree._Element, element: Element, where: str) -> Any:
    if node.get(XSI_NIL) in ("true", "1"):
        return None
    if element.shape is not None:
        return _read(node, element.shape, where)
    if any(isinstance(child.tag, str) for child in node):
        raise InvalidBody(f"{where}: expected text, found child elements", field=where)
    text = node.text or ""
    if element.scalar != "string" and not text.strip():
        return None if element.nillable else text
    return text


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ---- dict -> XML (responses) --------------------------------------------------------------------


def write_response(document: Any, shape: Shape, tag: str, namespace: str) -> etree._Element:
    """Validate a JSON answer with the shape's model and write it as the `tag` element.

    Raises:
        BadReply: the answer does not match the response model (names the field).
    """
    try:
        instance = shape.model.model_validate(document)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = _path(problem["loc"]) or "(answer)"
        raise BadReply(
            f"the service's answer does not match its response model: {where}: {problem['msg']}", field=where
        ) from exc
    root = etree.Element(f"{{{namespace}}}{tag}", nsmap={"tns": namespace})
    _write(root, instance.model_dump(mode="json", by_alias=False), shape, namespace)
    return root


def _write(node: etree._Element, data: Mapping[str, Any], shape: Shape, namespace: str) -> None:
    for element in shape.elements:
        value = data.get(element.attribute)
        if value is None:
            continue  # every nullable element is optional (minOccurs 0)
        for item in value if element.repeated else [value]:
            child = etree.SubElement(node, f"{{{namespace}}}{element.name}")
            if element.shape is not None:
                _write(child, item, element.shape, namespace)
            else:
                child.text = _lexical(item)


def _lexical(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "INF" if value > 0 else "-INF"
        return repr(value)
    return str(value)


def pascal(name: str) -> str:
    """``enterprise-lookup`` → ``EnterpriseLookup`` (a valid XML name)."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    joined = "".join(w[0].upper() + w[1:] for w in words) or "Operation"
    return joined if joined[0].isalpha() else f"Op{joined}"


__all__ = [
    "XS",
    "Element",
    "Enumeration",
    "Shape",
    "ShapeBook",
    "UnsupportedModel",
    "pascal",
    "read_request",
    "schema_types",
    "write_response",
]
