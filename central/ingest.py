"""Decoding event batches so that one poison event cannot block a stream.

A payload on ``entrada/{site}/device/{id}/events`` is read in two steps:

1. the envelope (``v``, ``type``, ``device``, a list of 1..MAX_BATCH_EVENTS items) through
   :func:`entrada.protocol.decode`, which refuses payloads that are too large, not UTF-8,
   not JSON, of another schema version or of the wrong shape, each with a stable
   :class:`~entrada.codes.Rejection` code. A payload that is not even an envelope, or
   whose ``device`` is not the device of the topic (the broker's ACL vouches only for the
   topic), is quarantined whole;
2. each event on its own with :class:`entrada.protocol.Event`. An event that fails but
   whose ``stream`` and ``seq`` are readable is quarantined *as that event*: it counts as
   stored for the watermark, so the device is acknowledged and can delete it instead of
   re-sending it forever. Its good neighbours are stored as usual.

Everything here is pure: :func:`decode_events` returns what to store and what to
quarantine; the service decides when. :class:`entrada.logutil.ThrottledLog` keeps a flood of bad
payloads to a few log lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from central.store import QuarantineRecord
from entrada.codes import Rejection
from entrada.errors import ProtocolError
from entrada.protocol import (
    MAX_BATCH_EVENTS,
    MAX_PAYLOAD_BYTES,
    DeviceId,
    Event,
    Message,
    StreamName,
    decode,
    rejection_code,
)

#: A quarantined payload is kept whole up to this size (bigger ones are cut).
MAX_KEPT_BYTES = MAX_PAYLOAD_BYTES


class EventEnvelope(Message):
    """:class:`entrada.protocol.EventBatch` with the events left unread (step 1)."""

    type: Literal["events"] = "events"
    device: DeviceId
    events: list[Any] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


_STREAM = TypeAdapter(StreamName)
_SEQ = TypeAdapter(Annotated[int, Field(ge=1, strict=True)])


@dataclass(frozen=True)
class DecodedBatch:
    """What one events payload turned into."""

    device: str
    events: list[Event] = field(default_factory=list)
    quarantined: list[QuarantineRecord] = field(default_factory=list)
    #: set when the payload was refused whole: (code, reason)
    rejected: tuple[str, str] | None = None


def _summary(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()[:5]
    )


def _identity(raw: object) -> tuple[str | None, int | None]:
    """The (stream, seq) of a broken event, if both are readable and valid."""
    if not isinstance(raw, dict):
        return None, None
    try:
        stream = _STREAM.validate_python(raw.get("stream"))
        seq = _SEQ.validate_python(raw.get("seq"))
    except ValidationError:
        return None, None
    return stream, seq


def _raw_bytes(raw: object) -> bytes:
    try:
        return json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError):  # pragma: no cover - raw came from json.loads
        return repr(raw).encode("utf-8", "replace")


def decode_events(topic_device: str, topic: str, payload: bytes) -> DecodedBatch:
    """Split an events payload into good events and quarantine records."""
    try:
        envelope = decode(EventEnvelope, payload)
    except ProtocolError as err:
        code = rejection_code(err)
        reason = str(err).partition(": ")[2] or str(err)
        record = QuarantineRecord(
            topic_device, topic, bytes(payload[:MAX_KEPT_BYTES]), code, reason
        )
        return DecodedBatch(topic_device, quarantined=[record], rejected=(code, reason))
    if envelope.device != topic_device:
        reason = f"payload device {envelope.device!r} on the topic of {topic_device!r}"
        record = QuarantineRecord(
            topic_device, topic, bytes(payload), Rejection.WRONG_DEVICE, reason
        )
        return DecodedBatch(
            topic_device, quarantined=[record], rejected=(Rejection.WRONG_DEVICE, reason)
        )
    events: list[Event] = []
    quarantined: list[QuarantineRecord] = []
    for raw in envelope.events:
        try:
            events.append(Event.model_validate(raw))
        except ValidationError as err:
            stream, seq = _identity(raw)
            quarantined.append(
                QuarantineRecord(
                    topic_device,
                    topic,
                    _raw_bytes(raw),
                    Rejection.BAD_SHAPE,
                    _summary(err),
                    stream=stream,
                    seq=seq,
                )
            )
    return DecodedBatch(topic_device, events, quarantined)
