"""Identity (charge profiles, contacts, the audit trail) and payment (charges), reached over
gRPC with mTLS as billing, each call with a deadline."""

from __future__ import annotations

import json
import uuid

import grpc

from billing.domain.model import ChargeProfile, PaymentOutcome, Route, Session
from billing.domain.notifications import Contact, DeliveryFailed, Notification
from billing.domain.service import payment_key
from gaitpay.common.v1 import types_pb2
from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
from gaitpay.payment.v1 import payment_pb2, payment_pb2_grpc
from mesh.errors import FailedPrecondition, Unavailable, error_info, rpc_code, status_from_rpc_error

_PAYMENT_STATES = {payment_pb2.PAYMENT_STATE_CAPTURED: "captured", payment_pb2.PAYMENT_STATE_DECLINED: "declined",
                   payment_pb2.PAYMENT_STATE_REQUIRES_ACTION: "requires_action",
                   payment_pb2.PAYMENT_STATE_UNKNOWN: "unknown", payment_pb2.PAYMENT_STATE_PENDING: "pending",
                   payment_pb2.PAYMENT_STATE_FAILED: "failed"}


class IdentityProfiles:
    def __init__(self, channel: grpc.Channel, timeout_s: float) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(channel)
        self._timeout = timeout_s

    def charge_profile(self, customer_id: str) -> ChargeProfile:
        try:
            answer = self._stub.GetChargeProfile(identity_pb2.GetChargeProfileRequest(customer_id=customer_id),
                                                 timeout=self._timeout)
        except grpc.RpcError as exc:
            code = rpc_code(exc)
            if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                raise FailedPrecondition(f"customer cannot be charged: {exc.details()}") from None
            raise Unavailable(f"identity unavailable: {code.name}") from None
        routes = tuple(Route(r.gateway, r.gateway_customer, r.gateway_token) for r in answer.routes
                       if r.gateway_customer and r.gateway_token)
        if not routes:
            raise FailedPrecondition("customer has no chargeable payment method")
        return ChargeProfile(routes, answer.per_visit_limit.minor_units, answer.daily_limit.minor_units,
                             answer.payment_method_id)


class IdentityAudit:
    """The audit channel: AppendAuditEvent as billing, with a request id derived from the
    notification, so a resend (a crash before the commit) is appended once by identity."""

    needs_contact = False
    _NAMESPACE = uuid.UUID("a3f0c1e2-5b6d-4e7f-8a9b-0c1d2e3f4a5b")

    def __init__(self, channel: grpc.Channel, timeout_s: float) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(channel)
        self._timeout = timeout_s

    def send(self, notification: Notification, contact: Contact | None) -> None:
        request = identity_pb2.AppendAuditEventRequest(
            request_id=str(uuid.uuid5(self._NAMESPACE, f"billing-outbox/{notification.notification_id}")),
            action=notification.subject, customer_id=notification.customer_id or "",
            attributes=json.loads(notification.body))
        try:
            self._stub.AppendAuditEvent(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            code = rpc_code(exc)
            permanent = code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS)
            raise DeliveryFailed(f"identity refused the audit record: {code.name}", permanent=permanent) from None


class IdentityContacts:
    def __init__(self, channel: grpc.Channel, timeout_s: float) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(channel)
        self._timeout = timeout_s

    def contact(self, customer_id: str, purpose: str) -> Contact:
        try:
            c = self._stub.GetContact(identity_pb2.GetContactRequest(customer_id=customer_id, purpose=purpose),
                                      timeout=self._timeout)
        except grpc.RpcError as exc:
            code = rpc_code(exc)
            if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                raise DeliveryFailed(f"customer cannot be reached: {exc.details()}", permanent=True) from None
            raise DeliveryFailed(f"identity unavailable: {code.name}") from None
        return Contact(c.display_name, c.email, c.phone_e164)


class PaymentClient:
    def __init__(self, channel: grpc.Channel, timeout_s: float) -> None:
        self._stub = payment_pb2_grpc.PaymentServiceStub(channel)
        self._timeout = timeout_s

    def charge(self, session: Session, amount_minor: int, profile: ChargeProfile) -> PaymentOutcome:
        assert session.customer_id
        request = payment_pb2.ChargeRequest(
            request_id=str(uuid.uuid4()), idempotency_key=payment_key(session.session_id),
            session_id=session.session_id, customer_id=session.customer_id, store_id=session.store_id,
            amount=types_pb2.Money(currency_code="INR", minor_units=amount_minor),
            payment_method_id=profile.payment_method_id,
            routes=[payment_pb2.PaymentRoute(gateway=r.gateway, customer_reference=r.customer_reference, token=r.token)
                    for r in profile.routes])
        try:
            payment = self._stub.Charge(request, timeout=self._timeout).payment
        except grpc.RpcError as exc:
            info = error_info(status_from_rpc_error(exc))
            if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                              grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.PERMISSION_DENIED):
                return PaymentOutcome("", "rejected", info.reason if info else exc.code().name)
            # Timed out or unreachable: payment may have captured; asking again with the same
            # key later is safe, charging anew is not.
            return PaymentOutcome("", "unknown", info.reason if info else exc.code().name)
        return PaymentOutcome(payment.payment_id, _PAYMENT_STATES.get(payment.state, "unknown"),
                              payment.failure_reason)
