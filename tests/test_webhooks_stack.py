"""Partner webhooks inside the stack `gaitpay up` starts: a partner registers an endpoint over
the REST gateway, a shopper's visit happens, and the partner's receiver gets every session
and payment event, signed, retried after a failure, without internal fields; URLs into the
network are refused (SSRF); another retailer cannot see or remove the endpoint."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from gaitpay.billing.v1 import billing_pb2 as B
from gateway.domain.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, verify_signature
from test_billing_stack import OTHER_STORE, STORE, event, rid, shop  # noqa: F401 - shop is a fixture
from test_gateway_stack import leaked, partners, reason  # noqa: F401 - partners is a fixture

pytestmark = pytest.mark.stack


class Receiver:
    """A partner's webhook receiver on this machine: records every request, and answers 500 to
    the first attempt of one chosen event type."""

    def __init__(self, fail_first: str) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_first, self._failed = fail_first, False
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.received.append(({k: v for k, v in self.headers.items()}, body))
                    fail = json.loads(body).get("type") == receiver.fail_first and not receiver._failed
                    receiver._failed = receiver._failed or fail
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/gaitpay/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events_for(self, object_id: str) -> list[tuple[dict[str, str], bytes, dict]]:
        with self._lock:
            found = []
            for headers, body in self.received:
                data = json.loads(body)
                (kind, obj), = data["data"].items()
                if obj.get(f"{kind}Id") == object_id:  # a payment names its session too: not that
                    found.append((headers, body, data))
            return found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first="session.exited")
    yield r
    r.server.shutdown()


def wait_for(predicate, timeout_s: float = 40.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_a_visit_reaches_the_partner_as_signed_retried_webhooks(partners, shop, receiver):  # noqa: F811
    _, secret = partners.key("hooks-retailer", [STORE])
    key = str(uuid.uuid4())
    body = {"url": receiver.url, "eventTypes": []}
    created = partners.call("POST", f"/v1/stores/{STORE}/webhook-endpoints", secret, body,
                            headers={"Idempotency-Key": key})
    assert created.status_code == 200, created.text
    endpoint, signing_secret = created.json()["endpoint"], created.json()["signingSecret"]
    assert signing_secret.startswith("whsec_") and endpoint["url"] == receiver.url
    replay = partners.call("POST", f"/v1/stores/{STORE}/webhook-endpoints", secret, body,
                           headers={"Idempotency-Key": key})
    assert replay.json()["endpoint"]["endpointId"] == endpoint["endpointId"] and replay.json()["signingSecret"] == ""

    customer, track = shop.customer(), rid()
    session_id = shop.events(event(B.STORE_EVENT_KIND_ENTRY, track), event(
        B.STORE_EVENT_KIND_IDENTIFIED, track, customer_id=customer, false_match_probability=1e-6))[0].session_id
    shop.cart(session_id, TEA=1)
    shop.events(event(B.STORE_EVENT_KIND_EXIT, track))
    paid = shop.session(session_id)
    assert paid.state == B.SESSION_STATE_PAID, paid

    wanted = ["session.opened", "session.cart_updated", "session.exited", "session.paid"]
    session_types = lambda: sorted({d["type"] for _, _, d in receiver.events_for(session_id)})  # noqa: E731
    assert wait_for(lambda: session_types() == sorted(wanted)), session_types()
    assert wait_for(lambda: receiver.events_for(paid.payment_id)), "no payment event"
    exits_seen = lambda: [d for _, _, d in receiver.events_for(session_id) if d["type"] == "session.exited"]  # noqa: E731
    assert wait_for(lambda: len(exits_seen()) >= 2), "the exit answered 500 was not sent again"

    deliveries = receiver.events_for(session_id) + receiver.events_for(paid.payment_id)
    now = time.time()
    for headers, raw, data in deliveries:
        assert verify_signature(signing_secret, headers[SIGNATURE_HEADER], raw, now=now), headers
        assert headers[EVENT_ID_HEADER] == data["id"] and data["storeId"] == STORE
        assert "traceparent" in headers  # the partner may join the SRE's trace
    assert not leaked([d for _, _, d in deliveries]) and customer not in json.dumps([d for _, _, d in deliveries])
    by_type = {d["type"]: d for _, _, d in deliveries}
    assert by_type["session.paid"]["data"]["session"]["state"] == "SESSION_STATE_PAID"
    assert by_type["session.opened"]["data"]["session"]["state"] == "SESSION_STATE_OPEN"  # as it was then
    assert by_type["payment.captured"]["data"]["payment"]["paymentId"] == paid.payment_id

    # The exit was answered 500 once: sent again, the same event with the same bytes.
    exits = [(raw, d["id"]) for _, raw, d in deliveries if d["type"] == "session.exited"]
    assert len(exits) == 2 and exits[0] == exits[1]
    listed = partners.call("GET", f"/v1/stores/{STORE}/webhook-endpoints/{endpoint['endpointId']}/deliveries",
                           secret).json()["deliveries"]
    exit_delivery = next(d for d in listed if d["eventId"] == exits[0][1])
    assert exit_delivery["state"] == "WEBHOOK_DELIVERY_STATE_DELIVERED" and exit_delivery["attempts"] == 2
    assert all(d["state"] == "WEBHOOK_DELIVERY_STATE_DELIVERED" for d in listed
               if d["eventId"] in {x["id"] for _, _, x in deliveries})

    deleted = partners.call("DELETE", f"/v1/stores/{STORE}/webhook-endpoints/{endpoint['endpointId']}", secret)
    assert deleted.status_code == 200
    remaining = partners.call("GET", f"/v1/stores/{STORE}/webhook-endpoints", secret).json()["endpoints"]
    assert endpoint["endpointId"] not in {e["endpointId"] for e in remaining}


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
    "https://10.0.0.7/hook",
    "https://[::1]:8443/hook",
    "https://[::ffff:a9fe:a9fe]/hook",  # 169.254.169.254 in IPv6 clothing
    "https://user:secret@hooks.partner.example/hook",
    "https://does-not-resolve.invalid/hook",
])
def test_urls_into_the_network_are_refused(partners, url):  # noqa: F811
    _, secret = partners.key("ssrf-retailer", [STORE])
    refused = partners.call("POST", f"/v1/stores/{STORE}/webhook-endpoints", secret,
                            {"requestId": rid(), "url": url})
    assert refused.status_code == 400, refused.text
    assert reason(refused) == "WEBHOOK_URL_NOT_ALLOWED"


def test_another_retailer_can_neither_see_nor_remove_an_endpoint(partners, receiver):  # noqa: F811
    _, mine = partners.key("hooks-a", [STORE])
    _, theirs = partners.key("hooks-b", [OTHER_STORE])
    created = partners.call("POST", f"/v1/stores/{STORE}/webhook-endpoints", mine,
                            {"requestId": rid(), "url": receiver.url, "eventTypes": ["payment.refunded"]})
    endpoint_id = created.json()["endpoint"]["endpointId"]
    forbidden = partners.call("GET", f"/v1/stores/{STORE}/webhook-endpoints", theirs)
    assert forbidden.status_code == 403 and reason(forbidden) == "STORE_NOT_ALLOWED"
    # Named under their own store, my endpoint does not exist for them.
    gone = partners.call("DELETE", f"/v1/stores/{OTHER_STORE}/webhook-endpoints/{endpoint_id}", theirs)
    assert gone.status_code == 404
    assert partners.call("GET", f"/v1/stores/{OTHER_STORE}/webhook-endpoints/{endpoint_id}/deliveries",
                         theirs).status_code == 404
    assert endpoint_id in {e["endpointId"] for e in partners.call(
        "GET", f"/v1/stores/{STORE}/webhook-endpoints", mine).json()["endpoints"]}
    unknown_type = partners.call("POST", f"/v1/stores/{STORE}/webhook-endpoints", mine,
                                 {"requestId": rid(), "url": receiver.url, "eventTypes": ["session.teleported"]})
    assert unknown_type.status_code == 400 and reason(unknown_type) == "VALIDATION_FAILED"
