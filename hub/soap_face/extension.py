"""The SOAP face as a hub extension: its routes join the gateway; it needs no topology of its own."""

from typing import TYPE_CHECKING

from fastapi import APIRouter

from hub.extension import Extension
from hub.settings import Settings
from hub.soap_face._router import soap_router
from hub.soap_face._wsdl import Faces

if TYPE_CHECKING:
    from hub.runtime import Hub


class SoapFace(Extension):
    """``POST /soap`` (X-Road SOAP 4.0), ``POST /soap/{service}`` and ``GET /soap/{service}?wsdl``."""

    name = "soap-face"

    def __init__(self, hub: "Hub") -> None:
        super().__init__(hub)
        self.faces = Faces(hub.settings, hub.registry)

    @staticmethod
    def enabled(settings: Settings) -> bool:
        """Every gateway offers the SOAP face."""
        return True

    def routers(self) -> list[APIRouter]:
        return [soap_router(self.hub, self.faces)]


__all__ = ["SoapFace"]
