"""Rules the contracts must keep, checked on the generated descriptors."""

from __future__ import annotations

import grpc
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor

from gaitpay.billing.v1 import billing_pb2
from gaitpay.common.v1 import errors_pb2
from gaitpay.edge.v1 import edge_pb2
from gaitpay.identity.v1 import identity_pb2
from gaitpay.matcher.v1 import matcher_pb2
from gaitpay.payment.v1 import payment_pb2
from mesh.errors import MeshError, error_info

FILES = [edge_pb2, matcher_pb2, identity_pb2, billing_pb2, payment_pb2]
READ_ONLY_PREFIXES = ("Get", "List", "Verify", "Identify", "Export", "Stream")
# The calls a partner retailer makes through the REST gateway.
PARTNER_RPCS = {
    "gaitpay.billing.v1.BillingService": {"GetSession", "ListSessions", "UpdateCart", "GetReceipt",
                                          "UpsertCatalogue"},
    "gaitpay.payment.v1.PaymentService": {"GetPayment", "RefundPayment"},
}


def services() -> list[descriptor.ServiceDescriptor]:
    return [svc for module in FILES for svc in module.DESCRIPTOR.services_by_name.values()]


def test_each_service_lives_in_a_versioned_package() -> None:
    names = {svc.full_name for svc in services()}
    assert names == {
        "gaitpay.edge.v1.EdgeService", "gaitpay.matcher.v1.MatcherService", "gaitpay.identity.v1.IdentityService",
        "gaitpay.billing.v1.BillingService", "gaitpay.payment.v1.PaymentService",
    }


@pytest.mark.parametrize("method", [m for s in services() for m in s.methods], ids=lambda m: m.full_name)
def test_mutating_calls_carry_a_request_id(method: descriptor.MethodDescriptor) -> None:
    if method.name.startswith(READ_ONLY_PREFIXES):
        return
    assert "request_id" in method.input_type.fields_by_name, f"{method.full_name} mutates but has no request_id"


def test_partner_calls_have_http_annotations() -> None:
    for svc in services():
        for method in svc.methods:
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            has_rule = rule.WhichOneof("pattern") is not None
            assert has_rule == (method.name in PARTNER_RPCS.get(svc.full_name, set())), method.full_name


def test_the_identification_stream_is_bidirectional() -> None:
    method = matcher_pb2.DESCRIPTOR.services_by_name["MatcherService"].methods_by_name["StreamIdentify"]
    assert method.client_streaming and method.server_streaming
    events = billing_pb2.DESCRIPTOR.services_by_name["BillingService"].methods_by_name["StreamStoreEvents"]
    assert events.client_streaming and events.server_streaming


def test_error_reasons_come_from_the_catalogue() -> None:
    with pytest.raises(ValueError, match="not in the error catalogue"):
        MeshError("x", reason="SOMETHING_MADE_UP")
    err = MeshError("gone", reason="NOT_FOUND", code=grpc.StatusCode.NOT_FOUND, metadata={"what": "session"})
    status = err.to_status()
    info = error_info(status)
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert info is not None and info.reason == "NOT_FOUND" and info.domain == "gaitpay.app"
    assert dict(info.metadata) == {"what": "session"}
    catalogue = {v.name for v in errors_pb2.ErrorReason.DESCRIPTOR.values}
    assert "ERROR_REASON_MALFORMED_WINDOW" in catalogue
