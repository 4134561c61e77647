"""The hub's SOAP face: every service over SOAP 1.1, X-Road SOAP 4.0 headers, WSDLs, mediation to JSON.

``POST /soap`` takes X-Road SOAP requests (the service is in ``xrd:service``);
``POST /soap/{service id}`` takes plain SOAP from software that cannot add X-Road headers;
``GET /soap/{service id}?wsdl`` serves the service's WSDL, vendored or generated from its models.
"""

from hub.soap_face.auth import authenticate_soap
from hub.soap_face.errors import (
    BadReply,
    InvalidBody,
    NoSoapFace,
    SoapFaceError,
    SoapProtocolError,
    UnknownService,
)
from hub.soap_face.extension import SoapFace

__all__ = [
    "BadReply",
    "InvalidBody",
    "NoSoapFace",
    "SoapFace",
    "SoapFaceError",
    "SoapProtocolError",
    "UnknownService",
    "authenticate_soap",
]
