"""Billing and payment, reached over gRPC as identity, to unlink an erased customer from
their sessions and payments (amounts stay: tax records)."""

from __future__ import annotations

import grpc

from gaitpay.billing.v1 import billing_pb2, billing_pb2_grpc
from gaitpay.payment.v1 import payment_pb2, payment_pb2_grpc
from mesh.errors import Unavailable, rpc_code


class MeshTransactionRecords:
    def __init__(self, billing: grpc.Channel, payment: grpc.Channel, timeout_s: float) -> None:
        self._billing = billing_pb2_grpc.BillingServiceStub(billing)
        self._payment = payment_pb2_grpc.PaymentServiceStub(payment)
        self._timeout = timeout_s

    def anonymise(self, request_id: str, customer_id: str) -> int:
        try:
            sessions = self._billing.AnonymiseCustomer(
                billing_pb2.AnonymiseCustomerRequest(request_id=request_id, customer_id=customer_id),
                timeout=self._timeout).sessions_anonymised
            payments = self._payment.AnonymiseCustomer(
                payment_pb2.AnonymiseCustomerRequest(request_id=request_id, customer_id=customer_id),
                timeout=self._timeout).payments_anonymised
        except grpc.RpcError as exc:
            code = rpc_code(exc)
            raise Unavailable(f"erasure could not unlink billing/payment records ({code.name}); retry the "
                              "erasure with the same request_id") from None
        return int(sessions) + int(payments)
