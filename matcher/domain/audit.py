"""Which identifications go to the audit trail (identity keeps it, hash-chained): the first
time a track is identified as a customer, once, with the facts of the decision and nothing
biometric. Later windows of the same track confirm the same decision and are not repeated;
a track re-identified as someone else is recorded again."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from matcher.domain.identification import Decision, State

ACTION = "identification"
# Request ids are derived from what is recorded, so a record sent twice (a retry after a lost
# answer, two matcher replicas seeing the same track) is appended once by identity.
_NAMESPACE = uuid.UUID("6f1c0d56-0b7e-4a53-9a57-0c3d8f0e4a11")


@dataclass(frozen=True)
class IdentificationRecord:
    request_id: str
    customer_id: str
    attributes: dict[str, str] = field(default_factory=dict)


class AuditSink(Protocol):
    def submit(self, record: IdentificationRecord) -> None: ...  # must not block identification


class IdentificationAudit:
    def __init__(self, sink: AuditSink, remember: int = 100_000) -> None:
        self._sink = sink
        self._remember = remember
        self._recorded: OrderedDict[tuple[str, str, str, str], None] = OrderedDict()

    def observe(self, decision: Decision) -> IdentificationRecord | None:
        """The record submitted for this decision, or None when there is nothing new to record."""
        if decision.state is not State.IDENTIFIED or not decision.customer_id:
            return None
        track = decision.track
        key = (track.store_id, track.camera_id, track.track_id, decision.customer_id)
        if key in self._recorded:
            self._recorded.move_to_end(key)
            return None
        self._recorded[key] = None
        if len(self._recorded) > self._remember:
            self._recorded.popitem(last=False)
        record = IdentificationRecord(
            request_id=str(uuid.uuid5(_NAMESPACE, "/".join(key))), customer_id=decision.customer_id,
            attributes={"store_id": track.store_id, "camera_id": track.camera_id, "track_id": track.track_id,
                        "false_match_probability": f"{decision.false_match_probability:.3g}",
                        "confidence": f"{decision.confidence:.3f}", "windows_used": str(decision.windows_used),
                        "reason": decision.reason})
        self._sink.submit(record)
        return record
