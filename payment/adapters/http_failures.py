"""Whether a failed HTTP call can have reached the gateway. Only a refused or timed-out
connection proves the request was never sent; anything later (a read timeout, a reset
mid-response) may have captured money."""

from __future__ import annotations

import requests
import urllib3


def never_sent(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return True
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return False
        if isinstance(exc, requests.exceptions.ConnectionError):
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))
        exc = exc.__cause__
    return False
