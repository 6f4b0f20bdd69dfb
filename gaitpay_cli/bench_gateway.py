"""`gaitpay bench gateway`: the partner REST gateway's added latency over direct gRPC.

The same read (GetSession of one session) is timed both ways against the running stack,
interleaved so that both see the same machine noise: direct gRPC over mTLS as an operator,
and HTTP/JSON through the gateway with an API key (keep-alive connection, key cached)."""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass

import numpy as np
import requests

from gaitpay.billing.v1 import billing_pb2 as B, billing_pb2_grpc
from gaitpay.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from mesh import config
from mesh.client import open_sync_channel

STORE = "store-bench-gateway"


@dataclass(frozen=True)
class Timings:
    direct_ms: list[float]
    gateway_ms: list[float]

    def row(self, values: list[float]) -> tuple[float, float]:
        return statistics.median(values), float(np.percentile(values, 99))


def run(settings: config.Settings, env: dict[str, str], requests_per_run: int, runs: int) -> list[Timings]:
    billing_channel = open_sync_channel(settings, identity="operator", service="billing")
    edge_channel = open_sync_channel(settings, identity="edge", service="billing")
    admin_channel = open_sync_channel(settings, identity="operator", service="gateway")
    try:
        event = B.StoreEvent(event_id=str(uuid.uuid4()), kind=B.STORE_EVENT_KIND_ENTRY, store_id=STORE,
                             camera_id="door", track_id=str(uuid.uuid4()))
        event.occurred_at.GetCurrentTime()
        acks = list(billing_pb2_grpc.BillingServiceStub(edge_channel).StreamStoreEvents(
            iter([B.StreamStoreEventsRequest(event=event)]), timeout=10))
        session_id = acks[0].session_id
        secret = gateway_pb2_grpc.PartnerAdminServiceStub(admin_channel).CreateApiKey(
            gateway_pb2.CreateApiKeyRequest(request_id=str(uuid.uuid4()), retailer_id="bench", store_ids=[STORE],
                                            rate_per_s=10000, burst=20000), timeout=10).secret
        billing = billing_pb2_grpc.BillingServiceStub(billing_channel)
        http = requests.Session()
        url = f"http://{env['GAITPAY_GATEWAY_HTTP_ADDR']}/v1/stores/{STORE}/sessions/{session_id}"
        headers = {"Authorization": f"Bearer {secret}"}
        request = B.GetSessionRequest(store_id=STORE, session_id=session_id)

        def direct() -> None:
            billing.GetSession(request, timeout=10)

        def through_gateway() -> None:
            answer = http.get(url, headers=headers, timeout=10)
            answer.raise_for_status()

        for _ in range(50):  # warm both paths (connections, caches)
            direct()
            through_gateway()
        results = []
        for _ in range(runs):
            d, g = [], []
            for _ in range(requests_per_run):
                for fn, out in ((direct, d), (through_gateway, g)):
                    t0 = time.perf_counter()
                    fn()
                    out.append((time.perf_counter() - t0) * 1000)
            results.append(Timings(d, g))
        return results
    finally:
        for channel in (billing_channel, edge_channel, admin_channel):
            channel.close()
