"""The gateway's parts without a stack: path templates, transcoding, internal fields, the
status mapping, the OpenAPI document, token buckets and API keys over an in-memory store."""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from hypothesis import given, settings, strategies as st

from gaitpay.billing.v1 import billing_pb2 as B
from gaitpay.payment.v1 import payment_pb2 as P
from gateway.bootstrap import partner_services
from gateway.domain.keys import ApiKey, InvalidApiKey, PartnerKeys, hash_secret
from gateway.domain.rate_limit import RateLimiter, TokenBucket
from gateway.http_api import PartnerHttpApi, TenantScopeError
from gateway.transcoding import openapi
from gateway.transcoding.routes import Route, RouteError, parse_template, routes_of
from gateway.transcoding.status import http_status
from gateway.transcoding.transcode import BadRequest, build_request, render_response
from mesh.errors import AlreadyExists

ROUTES = {r.method.name: r for r in routes_of(partner_services())}
SESSION = str(uuid.uuid4())


def test_templates_bind_fields_and_refuse_what_they_cannot_serve():
    t = parse_template("/v1/stores/{store_id}/sessions/{session_id}:close")
    assert t.match("/v1/stores/s-1/sessions/abc:close") == {"store_id": "s-1", "session_id": "abc"}
    assert t.match("/v1/stores/s-1/sessions/abc") is None and t.match("/v1/stores/a/b/sessions/c:close") is None
    assert parse_template("/v1/{name=shelves/*/books/*}").match("/v1/shelves/1/books/2") == {"name": "shelves/1/books/2"}
    assert parse_template("/v1/files/{path=**}").match("/v1/files/a/b/c") == {"path": "a/b/c"}
    assert t.openapi_path == "/v1/stores/{store_id}/sessions/{session_id}:close"
    for bad in ("v1/no-slash", "/v1/{a=x*y}", "/v1/{a}}"):
        with pytest.raises(RouteError):
            parse_template(bad)


def test_every_partner_route_comes_from_an_annotation_and_is_scoped_to_a_store():
    assert set(ROUTES) == {"GetSession", "ListSessions", "UpdateCart", "GetReceipt", "UpsertCatalogue",
                           "GetPayment", "RefundPayment", "CreateWebhookEndpoint", "ListWebhookEndpoints",
                           "DeleteWebhookEndpoint", "ListWebhookDeliveries"}
    assert all("store_id" in r.template.variables for r in ROUTES.values())
    unscoped = Route("GET", parse_template("/v1/payments/{payment_id}"), "", "", ROUTES["GetPayment"].method)
    with pytest.raises(TenantScopeError):
        PartnerHttpApi([unscoped], None, RateLimiter(), None, None, deadline_s=1)  # type: ignore[arg-type]


def test_requests_take_path_body_query_and_idempotency_key():
    route = ROUTES["UpdateCart"]
    key = str(uuid.uuid4())
    body = json.dumps({"changes": [{"sku": "TEA", "quantityDelta": -2}]}).encode()
    request = build_request(route, {"store_id": "s1", "session_id": SESSION}, [], body, idempotency_key=key)
    assert request == B.UpdateCartRequest(request_id=key, store_id="s1", session_id=SESSION,
                                          changes=[B.CartChange(sku="TEA", quantity_delta=-2)])
    # The same store in the body is harmless; another one is refused (the path is what was authorised).
    same = json.dumps({"storeId": "s1", "changes": [{"sku": "TEA", "quantityDelta": 1}]}).encode()
    assert build_request(route, {"store_id": "s1", "session_id": SESSION}, [], same).store_id == "s1"
    other = json.dumps({"store_id": "s2", "changes": [{"sku": "TEA", "quantityDelta": 1}]}).encode()
    with pytest.raises(BadRequest) as refused:
        build_request(route, {"store_id": "s1", "session_id": SESSION}, [], other)
    assert refused.value.field == "store_id"
    listing = build_request(ROUTES["ListSessions"], {"store_id": "s1"}, [("pageSize", "20"), ("page_token", "t")], b"")
    assert listing == B.ListSessionsRequest(store_id="s1", page_size=20, page_token="t")
    for query in ([("nope", "1")], [("store_id", "s2")], [("pageSize", "many")]):
        with pytest.raises(BadRequest):
            build_request(ROUTES["ListSessions"], {"store_id": "s1"}, query, b"")
    with pytest.raises(BadRequest):
        build_request(route, {"store_id": "s1", "session_id": SESSION}, [], b"[1]")
    with pytest.raises(BadRequest):
        build_request(ROUTES["GetSession"], {"store_id": "s1", "session_id": SESSION}, [], b'{"a": 1}')


def test_internal_fields_are_neither_read_nor_written():
    route = ROUTES["GetSession"]
    session = B.Session(session_id=SESSION, store_id="s1", customer_id=str(uuid.uuid4()),
                        false_match_probability=1e-6, state=B.SESSION_STATE_PAID, payment_id="p")
    shown = render_response(route, B.GetSessionResponse(session=session))
    assert shown["session"]["paymentId"] == "p" and shown["session"]["state"] == "SESSION_STATE_PAID"
    assert "customerId" not in shown["session"] and "falseMatchProbability" not in shown["session"]
    listing = render_response(ROUTES["ListSessions"], B.ListSessionsResponse(sessions=[session, session]))
    assert all("customerId" not in s for s in listing["sessions"])
    payment = P.Payment(payment_id="p", gateway="stripe", gateway_reference="pi_123",
                        attempts=[P.PaymentAttempt(gateway="stripe", outcome="captured", detail="x")])
    shown_payment = render_response(ROUTES["GetPayment"], P.GetPaymentResponse(payment=payment))["payment"]
    assert shown_payment["gateway"] == "stripe" and not {"gatewayReference", "attempts"} & set(shown_payment)
    with pytest.raises(BadRequest):  # writing one is as unknown as any other field
        build_request(ROUTES["UpdateCart"], {"store_id": "s1", "session_id": SESSION}, [],
                      json.dumps({"customerId": "c", "changes": [{"sku": "A", "quantityDelta": 1}]}).encode())


def test_status_mapping_is_the_standard_one():
    expected = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.UNAUTHENTICATED: 401,
                grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404,
                grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.FAILED_PRECONDITION: 400,
                grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.UNAVAILABLE: 503,
                grpc.StatusCode.DEADLINE_EXCEEDED: 504, grpc.StatusCode.INTERNAL: 500,
                grpc.StatusCode.UNIMPLEMENTED: 501, grpc.StatusCode.CANCELLED: 499}
    assert {code: http_status(code.value[0]) for code in expected} == expected
    assert http_status(99) == 500


def test_openapi_document_is_valid_and_carries_the_contract_rules():
    from openapi_spec_validator import validate

    doc = openapi.document(ROUTES.values(), title="t", version="v1")
    validate(doc)
    cart = doc["paths"]["/v1/stores/{store_id}/sessions/{session_id}/cart"]["post"]
    body = doc["components"]["schemas"]["UpdateCartBody"]
    assert "storeId" not in body["properties"] and body["required"] == ["changes"]
    assert body["properties"]["changes"] == {"type": "array", "minItems": 1, "maxItems": 200,
                                             "items": {"$ref": "#/components/schemas/CartChangeInput"}}
    change = doc["components"]["schemas"]["CartChangeInput"]["properties"]["quantityDelta"]
    assert (change["minimum"], change["maximum"]) == (-1000, 1000)
    assert {p["name"] for p in cart["parameters"]} == {"store_id", "session_id", "Idempotency-Key"}
    assert set(doc["components"]["schemas"]["Session"]["properties"]).isdisjoint({"customerId", "falseMatchProbability"})
    assert doc["components"]["schemas"]["Session"]["additionalProperties"] is False
    scoped = openapi.scoped_to_stores(doc, "store_id", ["a", "b"])
    assert scoped["paths"]["/v1/stores/{store_id}/sessions"]["get"]["parameters"][0]["schema"]["enum"] == ["a", "b"]
    assert "enum" not in doc["paths"]["/v1/stores/{store_id}/sessions"]["get"]["parameters"][0]["schema"]


def test_token_bucket_allows_the_burst_then_the_rate():
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.retry_after("k", 2, 3) for _ in range(3)] == [0, 0, 0]
    assert limiter.retry_after("k", 2, 3) == 1  # half a second to the next token, rounded up
    assert limiter.retry_after("other", 2, 3) == 0  # buckets are per key
    now[0] = 0.5
    assert limiter.retry_after("k", 2, 3) == 0


@settings(max_examples=60, deadline=None)
@given(st.floats(0.5, 50), st.integers(1, 20), st.lists(st.floats(0, 0.5), min_size=1, max_size=200))
def test_token_bucket_never_admits_more_than_burst_plus_rate_times_time(rate, burst, gaps):
    bucket, now, admitted = TokenBucket(rate, burst, burst, 0.0), 0.0, 0
    for gap in gaps:
        now += gap
        admitted += bucket.take(now) == 0
    assert admitted <= burst + rate * now + 1e-9


class MemoryKeys:
    """An in-memory KeyStore for the domain's unit tests."""

    def __init__(self) -> None:
        self.rows: dict[str, ApiKey] = {}

    @contextmanager
    def transaction(self):  # type: ignore[no-untyped-def]
        store = self

        class Tx:
            def get(self, key_id, lock):  # type: ignore[no-untyped-def]
                return store.rows.get(key_id)

            def key_for_request(self, request_id):  # type: ignore[no-untyped-def]
                return next((k for k in store.rows.values() if k.request_id == request_id), None)

            def insert(self, key):  # type: ignore[no-untyped-def]
                store.rows[key.key_id] = key

            def update(self, key):  # type: ignore[no-untyped-def]
                store.rows[key.key_id] = key

            def list(self, retailer_id):  # type: ignore[no-untyped-def]
                return [k for k in store.rows.values() if not retailer_id or k.retailer_id == retailer_id]

        yield Tx()


def test_keys_authenticate_rotate_with_grace_and_revoke():
    now = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    memory = MemoryKeys()
    keys = PartnerKeys(memory, clock=lambda: now[0])
    request_id = str(uuid.uuid4())
    key, secret = keys.create(request_id, "acme", ["s1", "s2"])
    assert keys.authenticate(secret).store_ids == {"s1", "s2"} and key.rate_per_s == 20 and key.burst == 40
    assert memory.rows[key.key_id].secret_hash == hash_secret(secret) and secret not in repr(memory.rows)
    replay, no_secret = keys.create(request_id, "acme", ["s2", "s1"])
    assert replay.key_id == key.key_id and no_secret == ""
    with pytest.raises(AlreadyExists):
        keys.create(request_id, "other", ["s1"])
    for forged in ("", "gpk_nothing", secret[:-1] + ("A" if secret[-1] != "A" else "B"), secret + "x"):
        with pytest.raises(InvalidApiKey):
            keys.authenticate(forged)
    new, new_secret, old = keys.rotate(str(uuid.uuid4()), key.key_id, grace_s=3600)
    assert old.replaced_by == new.key_id and new.store_ids == key.store_ids
    assert keys.authenticate(secret) and keys.authenticate(new_secret)  # both during the grace period
    now[0] += timedelta(seconds=3601)
    with pytest.raises(InvalidApiKey):
        keys.authenticate(secret)
    assert keys.authenticate(new_secret).key_id == new.key_id
    keys.revoke(new.key_id)
    with pytest.raises(InvalidApiKey):
        keys.authenticate(new_secret)
    assert memory.rows[new.key_id].revoked
