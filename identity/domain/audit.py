"""The audit chain: canonical entry bytes, the link to the previous entry, verification.

Each entry's MAC covers the previous MAC and the entry's canonical bytes; the MAC key lives
in Vault (Transit HMAC), so rewriting history consistently is impossible without it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable

GENESIS = "genesis"


def canonical(sequence: int, at: datetime, action: str, customer_id: str, actor: str,
              attributes: dict[str, str]) -> bytes:
    body = {"seq": sequence, "at": at.astimezone(timezone.utc).isoformat(timespec="microseconds"), "action": action,
            "customer": customer_id, "actor": actor, "attributes": dict(sorted(attributes.items()))}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def link(prev_mac: str, entry: bytes) -> bytes:
    return prev_mac.encode() + b"|" + entry


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    entries: int
    first_broken_sequence: int = 0
    why: str = ""


def verify(batches: Iterable[list], macs: Callable[[list[bytes]], list[str]],
           anchor: tuple[int, str] | None = None) -> ChainReport:
    """Walk the chain in order; batches of AuditRow-like objects, MACs computed in batches.
    `anchor` is the head recorded outside the database after each append (sequence, MAC):
    without it, deleting the newest entries would leave a shorter chain that still links."""
    expected_prev, expected_seq, count = GENESIS, 1, 0
    for rows in batches:
        payloads = [link(r.prev_mac, canonical(r.sequence, r.at, r.action, r.customer_id, r.actor, r.attributes))
                    for r in rows]
        for row, mac in zip(rows, macs(payloads)):
            if row.sequence != expected_seq:
                return ChainReport(False, count, expected_seq, f"entry {expected_seq} is missing")
            if row.prev_mac != expected_prev:
                return ChainReport(False, count, row.sequence, "link to the previous entry does not match")
            if row.mac != mac:
                return ChainReport(False, count, row.sequence, "entry was altered after it was written")
            if anchor is not None and row.sequence == anchor[0] and row.mac != anchor[1]:
                return ChainReport(False, count, row.sequence, "entry differs from the anchored head")
            expected_prev, expected_seq, count = row.mac, expected_seq + 1, count + 1
    if anchor is not None and count < anchor[0]:
        return ChainReport(False, count, count + 1,
                           f"entries {count + 1}..{anchor[0]} were deleted (the anchored head is {anchor[0]})")
    return ChainReport(True, count)
