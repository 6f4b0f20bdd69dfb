"""Gateway failures, classified by the one thing that matters: could money have moved?"""

from __future__ import annotations


class TechnicalFailure(Exception):
    """The gateway did not process the request (refused connection, 5xx before processing,
    a failure while preparing, where nothing can capture). Safe to retry or fail over."""


class OutcomeUnknown(Exception):
    """The request may have reached the gateway and captured: never retried, never failed
    over; the reconciler finds out."""


class GatewayDeclined(Exception):
    """The gateway refused a refund (e.g. beyond what it captured)."""
