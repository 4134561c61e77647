"""Generic REST connector: any existing HTTP backend becomes a hub service from configuration alone."""

from connectors.rest.connector import RestConnector, RestSettings

__all__ = ["RestConnector", "RestSettings"]
