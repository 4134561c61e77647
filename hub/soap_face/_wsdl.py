"""Each service's SOAP face: its vendored WSDL (native SOAP) or one generated from its models, cached.

A connector type with a ``wsdl_path`` speaks SOAP itself: its WSDL is served with every
``soap:address`` pointing at the hub and every relative import served by the hub too
(``?xsd=NAME``). A type whose operation declares ``request_model`` and ``response_model`` gets a
generated document/literal-wrapped WSDL 1.1 with an embedded XSD. Documents are built once per
service with a placeholder address; each request fills in its own base URL.
"""

import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from lxml import etree

from hub.connector import ANY_OPERATION
from hub.errors import HubError
from hub.identifiers import ServiceId
from hub.registry import ConnectorRegistry, operation_for
from hub.settings import Settings
from hub.soap_face._schema import XS, Shape, ShapeBook, UnsupportedModel, pascal, schema_types
from hub.soap_face.errors import NoSoapFace
from signing import XmlError, parse_xml

WSDL = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"
_ADDRESS = "urn:lgsp-hub:soap-face:address"
_IMPORTS = (
    (f"{{{XS}}}import", "schemaLocation"),
    (f"{{{XS}}}include", "schemaLocation"),
    (f"{{{XS}}}redefine", "schemaLocation"),
    (f"{{{WSDL}}}import", "location"),
)


@dataclass(frozen=True, slots=True)
class ModelFace:
    """A REST/JSON service offered over SOAP through its operation's models."""

    service: ServiceId
    operation: str
    namespace: str
    request: Shape
    response: Shape
    request_tag: str
    response_tag: str
    wsdl: bytes


@dataclass(frozen=True, slots=True)
class NativeFace:
    """A service whose connector speaks SOAP itself; `documents` are the WSDL's imports by name."""

    service: ServiceId
    operation: str
    wsdl: bytes
    documents: Mapping[str, bytes]


Face = ModelFace | NativeFace


def addressed(document: bytes, endpoint: str) -> bytes:
    """A cached document with the placeholder address replaced by `endpoint`."""
    return document.replace(_ADDRESS.encode(), html.escape(endpoint, quote=True).encode())


def namespace_of(service: ServiceId) -> str:
    """The target namespace of a generated WSDL: a URN made of the service id's parts."""
    parts = [
        service.instance,
        service.member_class,
        service.member_code,
        service.subsystem_code,
        service.service_code,
    ]
    if service.version:
        parts.append(service.version)
    return "urn:lgsp-hub:service:" + ":".join(quote(p, safe="'()+,=") for p in parts)


class Faces:
    """The SOAP face of every configured service, built on first use and cached."""

    def __init__(self, settings: Settings, registry: ConnectorRegistry) -> None:
        self._settings = settings
        self._registry = registry
        self._services = settings.service_ids()
        self._cache: dict[ServiceId, Face | NoSoapFace] = {}

    def get(self, service: ServiceId) -> Face:
        """The face of a configured service.

        Raises:
            NoSoapFace: the connector type has neither a WSDL nor models for the service's operation.
        """
        found = self._cache.get(service)
        if found is None:
            try:
                found = self._build(service)
            except NoSoapFace as exc:
                found = exc
            self._cache[service] = found
        if isinstance(found, NoSoapFace):
            raise found
        return found

    def _build(self, service: ServiceId) -> Face:
        label = str(service)
        configured = self._services[service]
        instance = self._settings.connectors[configured.connector]
        operation = operation_for(service, configured.operation)
        try:
            kind = self._registry.get(instance.type)
        except HubError as exc:
            raise NoSoapFace(f"service {label} has no SOAP face here: {exc}", service=label) from exc
        wsdl_path = getattr(kind, "wsdl_path", None)
        if wsdl_path is not None:
            return _native(service, operation, Path(wsdl_path))
        declared = kind.operations.get(operation) or kind.operations.get(ANY_OPERATION)
        if declared is None or declared.request_model is None or declared.response_model is None:
            raise NoSoapFace(
                f"service {label} has no SOAP face: its connector type {instance.type!r} ships no WSDL "
                f"and its operation {operation!r} declares no request and response models",
                service=label,
            )
        try:
            return _generated(service, operation, declared.request_model, declared.response_model)
        except UnsupportedModel as exc:
            raise NoSoapFace(
                f"service {label} has no SOAP face: its models cannot be described in XSD ({exc})",
                service=label,
            ) from exc


def _generated(service: ServiceId, operation: str, request: type, response: type) -> ModelFace:
    book = ShapeBook()
    request_shape = book.describe(request)
    response_shape = book.describe(response)
    namespace = namespace_of(service)
    tag = pascal(operation)
    name = pascal(service.service_code) + (pascal(service.version) if service.version else "")
    definitions = etree.Element(
        f"{{{WSDL}}}definitions",
        nsmap={"wsdl": WSDL, "soap": WSDL_SOAP, "xs": XS, "tns": namespace},
        targetNamespace=namespace,
        name=name,
    )
    etree.SubElement(
        definitions, f"{{{WSDL}}}documentation"
    ).text = f"{service}: operation {operation}, generated by lgsp-hub from its request and response models"
    schema = etree.SubElement(
        etree.SubElement(definitions, f"{{{WSDL}}}types"),
        f"{{{XS}}}schema",
        targetNamespace=namespace,
        elementFormDefault="qualified",
    )
    for element_name, shape in ((tag, request_shape), (f"{tag}Response", response_shape)):
        etree.SubElement(schema, f"{{{XS}}}element", name=element_name, type=f"tns:{shape.type_name}")
    schema_types(book, schema, "tns")
    for suffix, element_name in (("Request", tag), ("Response", f"{tag}Response")):
        message = etree.SubElement(definitions, f"{{{WSDL}}}message", name=f"{tag}{suffix}")
        etree.SubElement(message, f"{{{WSDL}}}part", name="parameters", element=f"tns:{element_name}")
    port_type = etree.SubElement(definitions, f"{{{WSDL}}}portType", name=f"{name}PortType")
    abstract = etree.SubElement(port_type, f"{{{WSDL}}}operation", name=tag)
    etree.SubElement(abstract, f"{{{WSDL}}}input", message=f"tns:{tag}Request")
    etree.SubElement(abstract, f"{{{WSDL}}}output", message=f"tns:{tag}Response")
    binding = etree.SubElement(
        definitions, f"{{{WSDL}}}binding", name=f"{name}Binding", type=f"tns:{name}PortType"
    )
    etree.SubElement(binding, f"{{{WSDL_SOAP}}}binding", style="document", transport=HTTP_TRANSPORT)
    concrete = etree.SubElement(binding, f"{{{WSDL}}}operation", name=tag)
    etree.SubElement(concrete, f"{{{WSDL_SOAP}}}operation", soapAction="", style="document")
    for direction in ("input", "output"):
        etree.SubElement(
            etree.SubElement(concrete, f"{{{WSDL}}}{direction}"), f"{{{WSDL_SOAP}}}body", use="literal"
        )
    port = etree.SubElement(
        etree.SubElement(definitions, f"{{{WSDL}}}service", name=f"{name}Service"),
        f"{{{WSDL}}}port",
        name=f"{name}Port",
        binding=f"tns:{name}Binding",
    )
    etree.SubElement(port, f"{{{WSDL_SOAP}}}address", location=_ADDRESS)
    return ModelFace(
        service=service,
        operation=operation,
        namespace=namespace,
        request=request_shape,
        response=response_shape,
        request_tag=tag,
        response_tag=f"{tag}Response",
        wsdl=etree.tostring(definitions, encoding="utf-8", xml_declaration=True, pretty_print=True),
    )


def _native(service: ServiceId, operation: str, wsdl_path: Path) -> NativeFace:
    label = str(service)
    root_dir = wsdl_path.resolve().parent
    documents: dict[str, bytes] = {}
    pending: list[tuple[str, Path]] = []
    seen: set[str] = set()

    def load(path: Path) -> etree._Element:
        try:
            return parse_xml(path.read_bytes())
        except (OSError, XmlError) as exc:
            raise NoSoapFace(
                f"service {label}: cannot read its WSDL {path.name} ({exc})", service=label
            ) from exc

    def rewrite(root: etree._Element, here: Path) -> None:
        for tag, attribute in _IMPORTS:
            for node in root.iter(tag):
                location = node.get(attribute)
                if not location or urlsplit(location).scheme or location.startswith("/"):
                    continue
                target = (here / location).resolve()
                if not target.is_relative_to(root_dir) or not target.is_file():
                    raise NoSoapFace(
                        f"service {label}: its WSDL imports {location!r}, which is not a file beside it",
                        service=label,
                    )
                name = target.relative_to(root_dir).as_posix()
                node.set(attribute, f"{_ADDRESS}?xsd={quote(name)}")
                if name not in seen:
                    seen.add(name)
                    pending.append((name, target))

    wsdl = load(wsdl_path)
    for address in (*wsdl.iter(f"{{{WSDL_SOAP}}}address"), *wsdl.iter(f"{{{WSDL_SOAP12}}}address")):
        address.set("location", _ADDRESS)
    rewrite(wsdl, wsdl_path.resolve().parent)
    while pending:
        name, path = pending.pop()
        document = load(path)
        rewrite(document, path.parent)
        documents[name] = etree.tostring(document, encoding="utf-8", xml_declaration=True)
    return NativeFace(
        service=service,
        operation=operation,
        wsdl=etree.tostring(wsdl, encoding="utf-8", xml_declaration=True),
        documents=documents,
    )


__all__ = ["Face", "Faces", "ModelFace", "NativeFace", "addressed", "namespace_of"]
