"""Generic SOAP connector: forward a SOAP envelope to a configured endpoint."""

from connectors.soap.connector import SoapConnector, SoapSettings

__all__ = ["SoapConnector", "SoapSettings"]
