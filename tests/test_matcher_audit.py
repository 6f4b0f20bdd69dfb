"""Which identifications the matcher sends to the audit trail, and that the sink never makes
identification wait: once per (track, customer), nothing for pending or strangers, a
deterministic request id (identity appends a resent record once), and a full queue drops
with a count instead of blocking."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from matcher.adapters.identity_audit import AuditMetrics, IdentityAuditSink
from matcher.domain.audit import IdentificationAudit, IdentificationRecord
from matcher.domain.identification import Decision, State
from matcher.domain.windows import TrackKey


class Collected:
    def __init__(self) -> None:
        self.records: list[IdentificationRecord] = []

    def submit(self, record: IdentificationRecord) -> None:
        self.records.append(record)


def decision(track: str, state: State, customer: str = "", fmp: float = 1e-6) -> Decision:
    return Decision(TrackKey("store-1", "door", track), 3, state, 3, "match", customer, 0.9, fmp)


def test_each_track_and_customer_is_recorded_once_without_biometrics():
    sink = Collected()
    audit = IdentificationAudit(sink)
    assert audit.observe(decision("t1", State.PENDING)) is None
    assert audit.observe(decision("t1", State.STRANGER)) is None
    first = audit.observe(decision("t1", State.IDENTIFIED, "cust-a"))
    assert first is not None and audit.observe(decision("t1", State.IDENTIFIED, "cust-a")) is None
    other = audit.observe(decision("t1", State.IDENTIFIED, "cust-b"))  # the track changed its mind
    assert other is not None and other.request_id != first.request_id
    assert [r.customer_id for r in sink.records] == ["cust-a", "cust-b"]
    assert first.attributes["store_id"] == "store-1" and first.attributes["track_id"] == "t1"
    assert first.attributes["false_match_probability"] == "1e-06"
    # The facts of the decision only: no embedding, no keypoints.
    assert set(first.attributes) == {"store_id", "camera_id", "track_id", "false_match_probability", "confidence",
                                     "windows_used", "reason"}
    # A matcher that restarts (or a second replica) derives the same id: identity appends once.
    again = IdentificationAudit(Collected()).observe(decision("t1", State.IDENTIFIED, "cust-a"))
    assert again is not None and again.request_id == first.request_id


def test_memory_of_recorded_tracks_is_bounded():
    sink = Collected()
    audit = IdentificationAudit(sink, remember=2)
    for track in ("t1", "t2", "t3"):
        audit.observe(decision(track, State.IDENTIFIED, "c"))
    assert audit.observe(decision("t1", State.IDENTIFIED, "c")) is not None  # forgotten, sent again (same id)
    assert len(sink.records) == 4 and sink.records[0].request_id == sink.records[3].request_id


def test_a_full_queue_drops_and_counts_rather_than_block():
    async def scenario() -> float:
        registry = CollectorRegistry()
        sink = IdentityAuditSink(lambda: None, AuditMetrics(registry), deadline_s=1, capacity=2)  # type: ignore[arg-type,return-value]
        for i in range(5):
            sink.submit(IdentificationRecord(str(i), "c"))
        return registry.get_sample_value("gaitpay_matcher_audit_records_total", {"outcome": "dropped"}) or 0.0

    assert asyncio.run(scenario()) == 3
