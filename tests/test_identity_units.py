"""Pure parts of identity: the audit chain's verification and the template transform."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
from hypothesis import given, settings, strategies as st

from gait.protection import CancelableTransform
from identity.domain import audit
from identity.domain.ports import AuditRow

KEY = b"k" * 32


def macs(payloads: list[bytes]) -> list[str]:
    return [hmac.new(KEY, p, hashlib.sha256).hexdigest() for p in payloads]


def chain(n: int) -> list[AuditRow]:
    rows, prev = [], audit.GENESIS
    t0 = datetime(2026, 11, 25, tzinfo=timezone.utc)
    for seq in range(1, n + 1):
        at = t0 + timedelta(seconds=seq)
        attrs = {"n": str(seq)}
        mac = macs([audit.link(prev, audit.canonical(seq, at, "enrolment", f"c{seq % 3}", "identity", attrs))])[0]
        rows.append(AuditRow(seq, at, "enrolment", f"c{seq % 3}", "identity", attrs, prev, mac))
        prev = mac
    return rows


def test_an_untouched_chain_verifies_across_batches() -> None:
    rows = chain(25)
    report = audit.verify([rows[:10], rows[10:20], rows[20:]], macs)
    assert report.intact and report.entries == 25


@settings(max_examples=60, deadline=None)
@given(victim=st.integers(1, 20), kind=st.sampled_from(["edit", "delete", "reorder", "recompute-without-key"]))
def test_any_edit_or_deletion_is_found_at_the_right_entry(victim: int, kind: str) -> None:
    rows = chain(20)
    head = (20, rows[-1].mac)  # anchored outside the database after the last append
    i = victim - 1
    if kind == "edit":
        rows[i] = replace(rows[i], attributes={"n": "forged"})
    elif kind == "delete":
        del rows[i]
    elif kind == "reorder" and i + 1 < len(rows):
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
    elif kind == "recompute-without-key":  # a forger re-links with a key of their own
        forged = replace(rows[i], action="refund")
        fake = hmac.new(b"guess", audit.link(forged.prev_mac, audit.canonical(
            forged.sequence, forged.at, forged.action, forged.customer_id, forged.actor, forged.attributes)),
            hashlib.sha256).hexdigest()
        rows[i] = replace(forged, mac=fake)
    else:
        return
    report = audit.verify([rows], macs, anchor=head)
    assert not report.intact and report.first_broken_sequence == victim


def test_the_entry_time_is_canonical_whatever_the_timezone_it_is_read_in() -> None:
    at = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
    ist = at.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert audit.canonical(1, at, "a", "c", "x", {}) == audit.canonical(1, ist, "a", "c", "x", {})


def test_the_transform_preserves_every_score_and_hides_the_vectors() -> None:
    rng = np.random.default_rng(0)
    e = rng.normal(size=(200, 128)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    t = CancelableTransform(b"s" * 32, version=1)
    p = t.apply(e)
    assert np.abs(p @ p.T - e @ e.T).max() < 1e-5  # cosine scores unchanged: accuracy cost nil
    assert np.abs(np.sum(p * e, axis=1)).mean() < 0.15  # a protected vector does not resemble its source
    other = CancelableTransform(b"t" * 32, version=2).apply(e)
    assert np.abs(np.sum(other * p, axis=1)).mean() < 0.15  # re-issued: old protected templates match nothing
    assert np.allclose(CancelableTransform(b"s" * 32, version=1).apply(e), p)  # same secret, same space
