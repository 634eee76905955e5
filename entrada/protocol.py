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
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from entrada.codes import Rejection
from entrada.errors import ProtocolError

SCHEMA_VERSION = 1
ROOT = "entrada"

#: Largest payload any subscriber accepts; larger ones are refused before parsing.
MAX_PAYLOAD_BYTES = 1_048_576
#: Largest number of events in one batch.
MAX_BATCH_EVENTS = 1000
#: Largest number of catalog changes (or snapshot rows) in one page.
MAX_PAGE_CHANGES = 5000
#: Largest number of passages in one presence message.
MAX_PRESENCE_PASSAGES = 500

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)

DeviceId = Annotated[str, Field(pattern=ID_PATTERN)]
StreamName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
Uid = Annotated[str, Field(pattern=r"^[0-9A-F]{8,20}$")]
#: Ids of catalog things (entitlements, tariffs, zones, postings): also dots and colons.
EntityId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
#: Money in integer minor units of the site's currency (never a float).
Minor = Annotated[int, Field(ge=0, le=10**12)]


def _real_date(value: str) -> str:
    date.fromisoformat(value)  # ValueError -> a validation error naming the field
    return value


#: A calendar date, ``YYYY-MM-DD`` (a site-local date).
IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$"), AfterValidator(_real_date)]


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

    @property
    def central_status(self) -> str:
        """Site-wide, retained: :class:`CentralStatus` (birth, and will via the broker)."""
        return f"{self.base}/central/status"

    def presence(self, device: str) -> str:
        """A gate's passages for its peers: :class:`PresenceBatch` (QoS 1, not retained)."""
        return f"{self.base}/presence/{device}"

    @property
    def all_presence(self) -> str:
        return f"{self.base}/presence/+"

    def parse_presence_topic(self, topic: str) -> str | None:
        """The device id of ``entrada/{site}/presence/{id}``."""
        prefix = f"{self.base}/presence/"
        if not topic.startswith(prefix):
            return None
        device = topic[len(prefix) :]
        return device if valid_id(device) else None

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


class WristbandData(BaseModel):
    """A wristband (or card) as the catalog knows it. ``uid_only`` media can be cloned, so
    they never carry a tab; ``deposit_minor`` is paid back by a collecting exit gate."""

    model_config = STRICT

    status: Literal["active", "blocked", "lost", "expired"] = "active"
    holder: str | None = Field(None, max_length=200)
    valid_until: float | None = None
    assurance: Literal["secure", "uid_only"] = "secure"
    deposit_minor: Minor = 0
    #: Most the open tab may owe (postings less payments); None: no limit.
    tab_limit_minor: Minor | None = None


class EntitlementData(BaseModel):
    """A product held by a wristband: a ticket or a pass of tariff ``tariff_id``.

    The usage fields are a baseline (e.g. a pass partly used before it was imported);
    gates add the entries they and their peers recorded since."""

    model_config = STRICT

    uid: Uid
    tariff_id: EntityId
    concession: Literal["adult", "child", "senior", "student", "disabled"] = "adult"
    valid_from: IsoDate | None = None
    valid_to: IsoDate | None = None
    entries_used: int = Field(0, ge=0, le=1_000_000)
    first_used: IsoDate | None = None
    days_used: list[IsoDate] = Field(default_factory=list, max_length=3660)


class PostingData(BaseModel):
    """A charge a point of sale (bar, locker, rental) posted to a wristband's open tab."""

    model_config = STRICT

    uid: Uid
    amount_minor: Minor
    description: str = Field("", max_length=200)
    ts: float


class PaymentData(BaseModel):
    """Money paid towards a wristband's visit (at a kiosk or a cashier)."""

    model_config = STRICT

    uid: Uid
    amount_minor: Minor
    method: str = Field("", max_length=32)
    ts: float


class TimeStopData(BaseModel):
    """A tap at a kiosk at ``at`` (Unix time): the stay clock stops for the tariff's
    ``time_stop_minutes`` while the visitor queues to pay."""

    model_config = STRICT

    uid: Uid
    at: float


class RulesData(BaseModel):
    """The site's rules: time zone, currency, holidays, zones and tariffs. The shape is
    ``controller.rules.catalog_schema`` (without ``version``); both sides check it."""

    model_config = STRICT

    document: dict[str, Any]


class _Change(BaseModel):
    model_config = STRICT

    version: int = Field(ge=1)
    op: Literal["upsert", "delete"]

    @model_validator(mode="after")
    def _upsert_has_data(self) -> _Change:
        if self.op == "upsert" and getattr(self, "data", None) is None:
            raise ValueError("an upsert carries data")
        if self.op == "delete" and getattr(self, "data", None) is not None:
            raise ValueError("a delete carries no data")
        return self


class WristbandChange(_Change):
    entity: Literal["wristband"]
    key: Uid
    data: WristbandData | None = None


class EntitlementChange(_Change):
    entity: Literal["entitlement"]
    key: EntityId
    data: EntitlementData | None = None


class PostingChange(_Change):
    entity: Literal["posting"]
    key: EntityId
    data: PostingData | None = None


class PaymentChange(_Change):
    entity: Literal["payment"]
    key: EntityId
    data: PaymentData | None = None


class TimeStopChange(_Change):
    entity: Literal["timestop"]
    key: EntityId
    data: TimeStopData | None = None


class RulesChange(_Change):
    entity: Literal["rules"]
    key: Literal["site"]
    data: RulesData | None = None


#: One entry of the catalog change log; ``upsert`` carries the full new row, ``delete`` none.
CatalogChange = Annotated[
    WristbandChange
    | EntitlementChange
    | PostingChange
    | PaymentChange
    | TimeStopChange
    | RulesChange,
    Field(discriminator="entity"),
]
CATALOG_CHANGE: TypeAdapter[CatalogChange] = TypeAdapter(CatalogChange)
CATALOG_ENTITIES = ("wristband", "entitlement", "posting", "payment", "timestop", "rules")
EntityData = WristbandData | EntitlementData | PostingData | PaymentData | TimeStopData | RulesData
#: The data model of each entity, for stores that keep a row's data as JSON text.
ENTITY_DATA: dict[str, type[BaseModel]] = {
    "wristband": WristbandData,
    "entitlement": EntitlementData,
    "posting": PostingData,
    "payment": PaymentData,
    "timestop": TimeStopData,
    "rules": RulesData,
}


class SnapshotCursor(BaseModel):
    """Where a device is in a snapshot: rows after ``after`` of the snapshot ``as_of``."""

    model_config = STRICT

    as_of: int = Field(ge=0)
    after: str | None = Field(None, max_length=300)


class CatalogRequest(Message):
    """A device asks for changes after ``since`` (its applied catalog version), or for the
    next page of the snapshot it is taking (``snapshot``)."""

    type: Literal["catalog_request"] = "catalog_request"
    since: int = Field(ge=0)
    limit: int = Field(1000, ge=1, le=MAX_PAGE_CHANGES)
    snapshot: SnapshotCursor | None = None


class CatalogPage(Message):
    """Changes ``(from_version, to_version]`` in order; ``head`` is central's latest."""

    type: Literal["catalog_page"] = "catalog_page"
    from_version: int = Field(ge=0)
    to_version: int = Field(ge=0)
    head: int = Field(ge=0)
    changes: list[CatalogChange] = Field(max_length=MAX_PAGE_CHANGES)


class CatalogSnapshot(Message):
    """One page of the whole catalog as of version ``as_of``, for a device too far behind
    for the change log. Rows (all ``upsert``) come in (entity, key) order after
    ``after``; ``next`` continues it, ``None`` on the last page. The device applies the
    whole snapshot at once, then follows the change log from ``as_of`` (rows changed while
    it paged may be newer than ``as_of``; replaying the log from there puts them right)."""

    type: Literal["catalog_snapshot"] = "catalog_snapshot"
    as_of: int = Field(ge=0)
    head: int = Field(ge=0)
    after: str | None = Field(None, max_length=300)
    next: str | None = Field(None, max_length=300)
    rows: list[CatalogChange] = Field(max_length=MAX_PAGE_CHANGES)


class CentralStatus(Message):
    """Central's liveness (retained): birth ``online``, will ``offline``. A gate counts its
    minutes without central from this (a tariff's offline policy depends on it)."""

    type: Literal["central_status"] = "central_status"
    state: Literal["online", "offline"]
    epoch: int = Field(ge=1)
    ts: float


class PeerPassage(BaseModel):
    """A passage through a gate, as its peers need it for anti-passback, entry counters,
    zone occupancy and the open tab while central is away. ``id`` is drawn by the gate for
    the passage (a UUID; the ``gate.passage`` event carries the passage under it), so a
    passage heard twice counts once."""

    model_config = STRICT

    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    uid: Uid
    at: float
    zone_from: EntityId | None
    zone_to: EntityId | None
    direction: Literal["in", "out"]
    entitlement_id: EntityId | None = None
    tariff_id: EntityId | None = None
    consumed: bool = False
    offline: bool = False
    gate: DeviceId
    #: Charged to the tab by this passage (leaving an inner zone, e.g. the sauna's stay).
    tab_minor: Minor = 0
    #: A final exit that settled the visit: the tab starts afresh after it.
    settled: bool = False


class PresenceBatch(Message):
    """Passages a gate shares with its peers (sent at once, and again after a reconnect)."""

    type: Literal["presence"] = "presence"
    device: DeviceId
    passages: list[PeerPassage] = Field(min_length=1, max_length=MAX_PRESENCE_PASSAGES)


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


def decode_one_of(
    models: tuple[type[Message], ...], payload: bytes | bytearray | memoryview | str
) -> Message:
    """Like :func:`decode`, for a topic that carries several message types: the payload's
    ``type`` picks the model (an unknown type is refused as ``reject.shape``)."""
    by_type = {m.model_fields["type"].default: m for m in models}
    obj = _parsed_object(payload)
    return _validated(by_type.get(obj.get("type"), models[0]), obj)


def decode(model: type[M], payload: bytes | bytearray | memoryview | str) -> M:
    """Parse and validate ``payload`` as ``model`` or raise :class:`ProtocolError`."""
    return _validated(model, _parsed_object(payload))


def _parsed_object(payload: bytes | bytearray | memoryview | str) -> dict[str, Any]:
    """The payload as a JSON object of our schema version, or ProtocolError."""
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
    return obj


def _validated(model: type[M], obj: dict[str, Any]) -> M:
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
