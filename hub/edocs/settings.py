"""Settings of the document exchange (the `edocs:` section of the configuration)."""

from pydantic import BaseModel, ConfigDict


class EdocsSettings(BaseModel):
    """Document exchange between agencies; disabled unless `enabled: true`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
