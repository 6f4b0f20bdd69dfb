"""What the gateway's domain needs from the outside world."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.domain.keys import ApiKey


class KeyTransaction(Protocol):
    def get(self, key_id: str, lock: bool) -> "ApiKey | None": ...
    def key_for_request(self, request_id: str) -> "ApiKey | None": ...
    def insert(self, key: "ApiKey") -> None: ...
    def update(self, key: "ApiKey") -> None: ...
    def list(self, retailer_id: str) -> "list[ApiKey]": ...


class KeyStore(Protocol):
    def transaction(self) -> AbstractContextManager[KeyTransaction]: ...
