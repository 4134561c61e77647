"""X-Road style identifiers: the one place that parses and formats them.

A member is ``INSTANCE/CLASS/MEMBER`` (``VN/GOV/000.00.00.H40``), a subsystem adds ``/SUBSYSTEM``
(``VN/GOV/000.00.00.H40/one-stop``), a service is a subsystem plus ``/SERVICE_CODE[/VERSION]``
(``VN/GOV/000.00.00.G06/population/citizen-lookup/v1``). Services always belong to a subsystem, as in
X-Road's REST r1 URLs, which removes the ambiguity of a five-part service identifier. Each part may be
percent-encoded on the wire (X-Road-Client header); ``/`` is the separator and never part of a value.
"""

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from hub.errors import IdentifierError

# X-Road's allowed characters for identifier parts: A-Z a-z 0-9 ' ( ) + , - . = ?  (plus _ used by
# some Vietnamese LGSP system codes).
_PART = re.compile(r"^[A-Za-z0-9'()+,\-.=?_]{1,255}$")
_PART_NAMES = ("instance", "member class", "member code", "subsystem code", "service code", "version")


def _check(part: str, position: int, value: str) -> str:
    decoded = unquote(part)
    if not decoded:
        raise IdentifierError(f"identifier {value!r}: the {_PART_NAMES[position]} is empty", value=value)
    if not _PART.match(decoded):
        raise IdentifierError(
            f"identifier {value!r}: the {_PART_NAMES[position]} {decoded!r} has a character outside "
            "A-Z a-z 0-9 ' ( ) + , - . = ? _",
            value=value,
        )
    return decoded


def _split(value: str, minimum: int, maximum: int, kind: str) -> list[str]:
    if not isinstance(value, str) or not value:
        raise IdentifierError(f"{kind} identifier is empty", value=str(value))
    parts = value.strip("/").split("/") if value.strip() else []
    if not minimum <= len(parts) <= maximum:
        shape = {
            "member": "INSTANCE/CLASS/MEMBER",
            "client": "INSTANCE/CLASS/MEMBER[/SUBSYSTEM]",
            "subsystem": "INSTANCE/CLASS/MEMBER/SUBSYSTEM",
            "service": "INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/VERSION]",
        }[kind]
        raise IdentifierError(
            f"{kind} identifier {value!r} has {len(parts)} parts; expected {shape}", value=value
        )
    return [_check(p, i, value) for i, p in enumerate(parts)]


@dataclass(frozen=True, slots=True, order=True)
class MemberId:
    """A member (an organisation): instance, member class and member code."""

    instance: str
    member_class: str
    member_code: str

    @classmethod
    def parse(cls, value: str) -> "MemberId":
        """Parse ``INSTANCE/CLASS/MEMBER``.

        Raises:
            IdentifierError: the value is not a member identifier.
        """
        i, c, m = _split(value, 3, 3, "member")
        return cls(i, c, m)

    def __str__(self) -> str:
        return "/".join((self.instance, self.member_class, self.member_code))

    @property
    def member(self) -> "MemberId":
        return self


@dataclass(frozen=True, slots=True, order=True)
class SubsystemId:
    """A subsystem of a member (an information system of an organisation)."""

    instance: str
    member_class: str
    member_code: str
    subsystem_code: str

    @classmethod
    def parse(cls, value: str) -> "SubsystemId":
        """Parse ``INSTANCE/CLASS/MEMBER/SUBSYSTEM``.

        Raises:
            IdentifierError: the value is not a subsystem identifier.
        """
        i, c, m, s = _split(value, 4, 4, "subsystem")
        return cls(i, c, m, s)

    @property
    def member(self) -> MemberId:
        return MemberId(self.instance, self.member_class, self.member_code)

    def __str__(self) -> str:
        return "/".join((self.instance, self.member_class, self.member_code, self.subsystem_code))


ClientId = MemberId | SubsystemId


def parse_client(value: str) -> ClientId:
    """Parse a client identifier: a member or one of its subsystems (``X-Road-Client``).

    Raises:
        IdentifierError: the value is neither a member nor a subsystem identifier.
    """
    parts = _split(value, 3, 4, "client")
    if len(parts) == 3:
        return MemberId(*parts)
    return SubsystemId(*parts)


@dataclass(frozen=True, slots=True, order=True)
class ServiceId:
    """A service offered by a provider subsystem, with an optional version."""

    instance: str
    member_class: str
    member_code: str
    subsystem_code: str
    service_code: str
    version: str | None = None

    @classmethod
    def parse(cls, value: str) -> "ServiceId":
        """Parse ``INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/VERSION]``.

        Raises:
            IdentifierError: the value is not a service identifier.
        """
        parts = _split(value, 5, 6, "service")
        return cls(*parts)  # type: ignore[arg-type]

    @classmethod
    def from_parts(cls, provider: SubsystemId, service_code: str, version: str | None = None) -> "ServiceId":
        """Build a service identifier from its provider and code, validating each part."""
        text = f"{provider}/{service_code}" + (f"/{version}" if version else "")
        return cls.parse(text)

    @property
    def provider(self) -> SubsystemId:
        return SubsystemId(self.instance, self.member_class, self.member_code, self.subsystem_code)

    @property
    def member(self) -> MemberId:
        return MemberId(self.instance, self.member_class, self.member_code)

    def __str__(self) -> str:
        base = "/".join(
            (self.instance, self.member_class, self.member_code, self.subsystem_code, self.service_code)
        )
        return f"{base}/{self.version}" if self.version else base

    @property
    def routing_key(self) -> str:
        """The AMQP routing key: parts joined with dots would clash with organ codes, so '/' is kept."""
        return str(self)


def encode_header(identifier: MemberId | SubsystemId | ServiceId) -> str:
    """Format an identifier for an HTTP header, percent-encoding each part and keeping ``/``."""
    return "/".join(quote(p, safe="'()+,=?") for p in str(identifier).split("/"))


def split_rest_path(path: str) -> tuple[SubsystemId, list[str]]:
    """Split an X-Road REST r1 path (after ``/r1/``) into the provider subsystem and the rest.

    Raises:
        IdentifierError: fewer than four identifier parts, or a malformed part.
    """
    parts = path.strip("/").split("/") if path.strip("/") else []
    if len(parts) < 4:
        raise IdentifierError(
            f"REST path {'/r1/' + path!r} must start with /r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM", value=path
        )
    provider = SubsystemId.parse("/".join(parts[:4]))
    return provider, parts[4:]


def resolve_service(
    provider: SubsystemId, tail: list[str], known: "set[ServiceId] | frozenset[ServiceId]"
) -> tuple[ServiceId, str] | None:
    """Find the registered service a REST path names: ``SERVICE/VERSION/path`` first, then ``SERVICE/path``.

    Returns the service and the remaining sub-path, or None when no registered service matches.
    """
    if not tail:
        return None
    code = unquote(tail[0])
    if len(tail) >= 2:
        versioned = ServiceId(*_provider_parts(provider), code, unquote(tail[1]))
        if versioned in known:
            return versioned, "/".join(tail[2:])
    plain = ServiceId(*_provider_parts(provider), code)
    if plain in known:
        return plain, "/".join(tail[1:])
    return None


def _provider_parts(provider: SubsystemId) -> tuple[str, str, str, str]:
    return (provider.instance, provider.member_class, provider.member_code, provider.subsystem_code)


__all__ = [
    "ClientId",
    "MemberId",
    "ServiceId",
    "SubsystemId",
    "encode_header",
    "parse_client",
    "resolve_service",
    "split_rest_path",
]
