"""Sending partner webhooks over HTTP (aiohttp), with the SSRF rules enforced where the
connection is made: every address a host resolves to is checked by the UrlPolicy inside the
resolver aiohttp connects through, so the address checked is the address used (no window
for DNS rebinding). No redirects are followed, no proxy from the environment is used."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.domain.webhooks import SendResult, Target, UrlNotAllowed, UrlPolicy


_LOOKUPS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")


def resolve_host(host: str, port: int, timeout_s: float = 3.0) -> list[str]:
    """Every address of host (a literal is its own), for the check at registration; a DNS
    server that does not answer costs at most timeout_s (the lookup itself cannot be cut
    short, so it finishes on a small pool of its own)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    lookup = _LOOKUPS.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout=timeout_s)
    except TimeoutError:
        raise OSError(errno.ETIMEDOUT, f"no DNS answer within {timeout_s:g} s") from None
    return sorted({info[4][0] for info in infos})


class GuardedResolver(AbstractResolver):
    def __init__(self, policy: UrlPolicy, insecure: bool) -> None:
        self._policy, self._insecure = policy, insecure
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) \
            -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        target = Target("", host, port, self._insecure)
        try:
            self._policy.check_addresses(target, [r["host"] for r in results])
        except UrlNotAllowed as exc:
            # aiohttp reports an OSError's strerror in its ClientConnectorError: say why there.
            raise OSError(errno.EACCES, f"refused: {exc}") from None
        return results

    async def close(self) -> None:
        await self._inner.close()


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


class HttpWebhookSender:
    def __init__(self, policy: UrlPolicy, timeout_s: float = 10.0) -> None:
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._sessions: dict[bool, aiohttp.ClientSession] = {}

    def _session(self, insecure: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(insecure)
        if session is None:  # made in the running loop, on first use
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._policy, insecure), limit=64,
                                             ttl_dns_cache=None, use_dns_cache=False)
            session = self._sessions[insecure] = aiohttp.ClientSession(connector=connector, trust_env=False,
                                                                       timeout=self._timeout)
        return session

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        try:
            target = self._policy.target(url)
            try:  # aiohttp connects to a literal address without asking the resolver
                literal = str(ipaddress.ip_address(target.host))
            except ValueError:
                literal = ""
            if literal:
                self._policy.check_addresses(target, [literal])
            async with self._session(target.insecure).post(url, data=body, headers=headers,
                                                           allow_redirects=False) as response:
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
            return SendResult(status, "" if 200 <= status < 300 else f"HTTP {status}", retry_after)
        except UrlNotAllowed as exc:
            return SendResult(error=f"refused: {exc}")
        except asyncio.TimeoutError:
            return SendResult(error=f"no answer within {self._timeout.total:g} s")
        except aiohttp.ClientError as exc:
            return SendResult(error=f"{type(exc).__name__}: {exc}"[:300])

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
