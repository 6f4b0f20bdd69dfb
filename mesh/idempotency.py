"""The fingerprint of a mutating request: a request id reused with another request is
refused, a retry of the same one replays its first outcome. One definition for every core,
so stored fingerprints stay comparable."""

from __future__ import annotations

import hashlib
import json


def request_fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()
