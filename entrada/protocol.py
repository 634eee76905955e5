"""The MQTT contract between devices and the central service.

Both sides import this module and nothing else to agree on topics and payloads.
docs/protocol.md is the human reference (with mosquitto_pub/mosquitto_sub examples); keep
the two in step.

Every payload is a UTF-8 JSON object with a schema version ``v`` and a ``type``. Anything
that is not valid (not UTF-8, not JSON, too large, other version, wrong shape) is refused
by :func:`decode` with a :class:`~entrada.errors.ProtocolError` carrying a stable
:class:`~entrada.codes.Rejection` code; callers log it and carry on.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from entrada.codes import Rejection
from entrada.errors import ProtocolError

SCHEMA_VERSION = 1
ROOT = "entrada"

#: Largest payload any subscriber accepts; larger ones are refused before parsing.
MAX_PAYLOAD_BYTES = 1_048_576
#: Largest number of events in one batch.
MAX_BATCH_EVENTS = 1000
#: Largest number of catalog changes in one page.
MAX_PAGE_CHANGES = 5000

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)

DeviceId = Annotated[str, Field(pattern=ID_PATTERN)]
StreamName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
Uid = Annotated[str, Field(pattern=r"^[0-9A-F]{8,20}$")]


def valid_id(value: str) -> bool:
    """True when ``value`` may be used as a site or device id (and so as a topic level)."""
    return bool(_ID_RE.fullmatch(value))


# --------------------------------------------------------------------------- topics


class Topics:
    """Topic names for one site. Device-owned topics sit under ``device/{id}/`` so the
    broker's ACL can confine a device to its own subtree (its id is its MQTT username)."""

    def __init__(self, site: str) -> None:
        if not valid_id(site):
            raise ValueError(f"invalid site id {site!r}")
        self.site = site
        self.base = f"{ROOT}/{site}"

    def device(self, device: str, leaf: str) -> str:
        return f"{self.base}/device/{device}/{leaf}"

    def status(self, device: str) -> str:
        """Retained birth/will: :class:`Status`."""
        return self.device(device, "status")

    def events(self, device: str) -> str:
        """Device -> central, QoS 1: :class:`EventBatch`."""
        return self.device(device, "events")

    def ack(self, device: str) -> str:
        """Central -> device, retained: :class:`Ack` watermarks."""
        return self.device(device, "ack")

    def config_desired(self, device: str) -> str:
        return self.device(device, "config/desired")

    def config_reported(self, device: str) -> str:
        return self.device(device, "config/reported")

    def cmd_request(self, device: str) -> str:
        return self.device(device, "cmd/req")

    def cmd_response(self, device: str) -> str:
        return self.device(device, "cmd/res")

    def catalog_request(self, device: str) -> str:
        return self.device(device, "catalog/req")

    def catalog_page(self, device: str) -> str:
        return self.device(device, "catalog/page")

    @property
    def catalog_head(self) -> str:
        """Site-wide, retained: :class:`CatalogHead`."""
        return f"{self.base}/catalog/head"

    # wildcard subscriptions used by central
    def all_devices(self, leaf: str) -> str:
        return f"{self.base}/device/+/{leaf}"

    def parse_device_topic(self, topic: str) -> tuple[str, str] | None:
        """Split ``entrada/{site}/device/{id}/{leaf...}`` into ``(id, leaf)``."""
        prefix = f"{self.base}/device/"
        if not topic.startswith(prefix):
            return None
        rest = topic[len(prefix) :]
        device, _, leaf = rest.partition("/")
        if not valid_id(device) or not leaf:
            return None
        return device, leaf


# ------------------------------------------------------------------------- messages


#: Every model: unknown fields refused, no type coercion ("3" is not 3, true is not 1),
#: no NaN or infinity (SQLite would store them as NULL and an event would vanish).
STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Message(BaseModel):
    """Base of every payload: strict shape, unknown fields refused, schema version checked."""

    model_config = STRICT

    v: Literal[1] = 1
    type: str


class Versions(BaseModel):
    model_config = STRICT

    software: str
    config: int = Field(0, ge=0)
    catalog: int = Field(0, ge=0)


class Status(Message):
    """Liveness. Birth ``online`` on every connect, will ``offline`` with the same epoch.

    ``epoch`` is larger on every connect of the device (``max(last + 1, unix time)``, kept
    on the device), so a reader keeps the status with the highest epoch and a late will
    (older epoch) never overrides a newer birth.
    """

    type: Literal["status"] = "status"
    device: DeviceId
    role: str = Field(max_length=32)
    state: Literal["online", "offline"]
    epoch: int = Field(ge=1)
    ts: float
    versions: Versions | None = None
    outbox_depth: int = Field(0, ge=0)
    faults: list[str] = Field(default_factory=list, max_length=64)


class Event(BaseModel):
    """One durable event. ``(device, stream, seq)`` is its identity at central; ``id`` is
    unique at birth. ``seq`` starts at 1 and has no gaps within a stream."""

    model_config = STRICT

    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    stream: StreamName
    seq: int = Field(ge=1)
    kind: str = Field(pattern=r"^[a-z][a-z0-9_.]{0,63}$")
    ts: float
    data: dict[str, Any] = Field(default_factory=dict)


class EventBatch(Message):
    type: Literal["events"] = "events"
    device: DeviceId
    events: list[Event] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


class Ack(Message):
    """Watermark per stream: every event with ``seq <= streams[stream]`` is stored."""

    type: Literal["ack"] = "ack"
    device: DeviceId
    streams: dict[StreamName, Annotated[int, Field(ge=0)]]
    ts: float


class CatalogHead(Message):
    type: Literal["catalog_head"] = "catalog_head"
    version: int = Field(ge=0)
    ts: float


class CatalogRequest(Message):
    """A device asks for changes after ``since`` (its applied catalog version)."""

    type: Literal["catalog_request"] = "catalog_request"
    since: int = Field(ge=0)
    limit: int = Field(1000, ge=1, le=MAX_PAGE_CHANGES)


class WristbandData(BaseModel):
    model_config = STRICT

    status: Literal["active", "blocked", "lost", "expired"] = "active"
    holder: str | None = Field(None, max_length=200)
    valid_until: float | None = None


class CatalogChange(BaseModel):
    """One entry of the catalog change log. ``upsert`` carries the full new row."""

    model_config = STRICT

    version: int = Field(ge=1)
    entity: Literal["wristband"]
    op: Literal["upsert", "delete"]
    key: Uid
    data: WristbandData | None = None


class CatalogPage(Message):
    """Changes ``(from_version, to_version]`` in order; ``head`` is central's latest."""

    type: Literal["catalog_page"] = "catalog_page"
    from_version: int = Field(ge=0)
    to_version: int = Field(ge=0)
    head: int = Field(ge=0)
    changes: list[CatalogChange] = Field(max_length=MAX_PAGE_CHANGES)


class ConfigDesired(Message):
    """Central's wanted config for one device (retained). Signed from issue 5 on."""

    type: Literal["config_desired"] = "config_desired"
    device: DeviceId
    version: int = Field(ge=1)
    document: dict[str, Any]
    signature: str | None = None


class ConfigReported(Message):
    type: Literal["config_reported"] = "config_reported"
    device: DeviceId
    version: int = Field(ge=0)
    state: Literal["applied", "rejected", "rolled_back"]
    code: str | None = None
    reason: str | None = Field(None, max_length=2000)
    ts: float


class CommandRequest(Message):
    """Sent with MQTT 5 ResponseTopic (the device's ``cmd/res``), CorrelationData and
    MessageExpiryInterval. ``id`` de-duplicates redeliveries; ``expires`` (Unix time) lets a
    device refuse a stale command even when the broker kept it."""

    type: Literal["command"] = "command"
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    args: dict[str, Any] = Field(default_factory=dict)
    expires: float


class CommandResponse(Message):
    type: Literal["command_result"] = "command_result"
    id: str
    name: str
    ok: bool
    code: str
    duplicate: bool = False
    result: dict[str, Any] = Field(default_factory=dict)
    ts: float


M = TypeVar("M", bound=Message)


def encode(message: Message) -> bytes:
    """Serialise a message to compact UTF-8 JSON."""
    return message.model_dump_json(exclude_none=False).encode("utf-8")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def decode(model: type[M], payload: bytes | bytearray | memoryview | str) -> M:
    """Parse and validate ``payload`` as ``model`` or raise :class:`ProtocolError`."""
    try:
        raw = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    except UnicodeEncodeError as err:
        raise ProtocolError(f"{Rejection.NOT_UTF8}: {err}") from err
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"{Rejection.TOO_LARGE}: {len(raw)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ProtocolError(f"{Rejection.NOT_UTF8}: {err}") from err
    try:
        # NaN and Infinity are refused everywhere, free-form ``data`` included: encode()
        # would write them back as null and the stored event would differ from the sent one.
        obj = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
        raise ProtocolError(f"{Rejection.NOT_JSON}: {err}") from err
    if not isinstance(obj, dict):
        raise ProtocolError(f"{Rejection.BAD_SHAPE}: payload is not a JSON object")
    version = obj.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise ProtocolError(
            f"{Rejection.BAD_SCHEMA_VERSION}: v={version!r}, expected {SCHEMA_VERSION}"
        )
    if "\\u" in text:
        # an escaped lone surrogate parses, but could never be encoded again
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except (UnicodeEncodeError, RecursionError) as err:
            raise ProtocolError(f"{Rejection.NOT_UTF8}: {err}") from err
    try:
        return model.model_validate(obj)
    except (ValidationError, RecursionError) as err:
        detail = (
            "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
                for e in err.errors()[:10]
            )
            if isinstance(err, ValidationError)
            else "nested too deeply"
        )
        raise ProtocolError(f"{Rejection.BAD_SHAPE}: {detail}") from err


def rejection_code(err: ProtocolError) -> str:
    """The stable code at the start of a ProtocolError's message."""
    return str(err).split(":", 1)[0]
