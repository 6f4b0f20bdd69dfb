"""The identity service's gRPC layer: proto <-> the identity core, nothing more. The core is
synchronous (psycopg pool, Vault, the matcher's blocking client) and runs on worker threads."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any, Callable

import grpc
import numpy as np

from gaitpay.common.v1 import types_pb2
from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
from identity.domain.service import ChargeProfile, ConsentInput, CustomerView, IdentityCore, WalkInput
from matcher.domain.windows import MalformedWindow, check_keypoints
from mesh import body_measures
from mesh.errors import InvalidArgument
from mesh.server import caller_identity

_KINDS = {identity_pb2.PAYMENT_METHOD_KIND_CARD: "card", identity_pb2.PAYMENT_METHOD_KIND_UPI_MANDATE: "upi_mandate"}


def _customer(view: CustomerView) -> identity_pb2.Customer:
    msg = identity_pb2.Customer(customer_id=view.customer_id, display_name=view.display_name,
                                phone_hint=view.phone_hint, biometric_consent=view.biometric_consent,
                                templates=view.templates)
    if view.created_at:
        msg.created_at.FromDatetime(datetime.fromisoformat(view.created_at))
    return msg


def _walks(request: identity_pb2.EnrollWalksRequest) -> list[WalkInput]:
    walks = []
    for i, walk in enumerate(request.walks):
        kp = walk.keypoints
        xyc = np.asarray(kp.xyc, dtype=np.float32).reshape(kp.frames, kp.joints, 3)
        try:
            check_keypoints(xyc)
        except MalformedWindow as exc:
            raise InvalidArgument(f"walks[{i}] is malformed: {exc}",
                                  field_violations=[(f"walks[{i}].keypoints", str(exc))]) from None
        walks.append(WalkInput(xyc, kp.fps, walk.source, body_measures.from_proto(walk)))
    return walks


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, core: IdentityCore) -> None:
        self._core = core

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def CreateCustomer(self, request: identity_pb2.CreateCustomerRequest, context: grpc.aio.ServicerContext) \
            -> identity_pb2.CreateCustomerResponse:
        c = request.consent
        consent = ConsentInput(c.policy_version, tuple(c.purposes), c.retention_days,
                               c.given_at.ToDatetime(tzinfo=timezone.utc), c.jurisdiction)
        view = await self._run(self._core.create_customer, request.request_id, request.display_name,
                               request.phone_e164, request.email, consent, request.home_region,
                               actor=caller_identity(context) or "")
        return identity_pb2.CreateCustomerResponse(customer=_customer(view))

    async def GetCustomer(self, request: identity_pb2.GetCustomerRequest, context: grpc.aio.ServicerContext) \
            -> identity_pb2.GetCustomerResponse:
        view = await self._run(self._core.get_customer, request.customer_id, actor=caller_identity(context) or "")
        return identity_pb2.GetCustomerResponse(customer=_customer(view))

    async def EnrollWalks(self, request: identity_pb2.EnrollWalksRequest, context: grpc.aio.ServicerContext) \
            -> identity_pb2.EnrollWalksResponse:
        result = await self._run(self._core.enrol_walks, request.request_id, request.customer_id, _walks(request),
                                 list(request.store_ids), actor=caller_identity(context) or "")
        return identity_pb2.EnrollWalksResponse(
            accepted=result.accepted, template_quality=result.template_quality,
            rejected=[identity_pb2.RejectedWalk(index=r.index, reason=r.reason, quality=r.quality)
                      for r in result.rejected])

    async def RotateCustomerKey(self, request: identity_pb2.RotateCustomerKeyRequest,
                                context: grpc.aio.ServicerContext) -> identity_pb2.RotateCustomerKeyResponse:
        version = await self._run(self._core.rotate_key, request.request_id, request.customer_id,
                                  actor=caller_identity(context) or "")
        return identity_pb2.RotateCustomerKeyResponse(key_version=version)

    async def ReprotectTemplates(self, request: identity_pb2.ReprotectTemplatesRequest,
                                 context: grpc.aio.ServicerContext) -> identity_pb2.ReprotectTemplatesResponse:
        customers, templates, version = await self._run(self._core.reprotect_templates, request.request_id,
                                                        caller_identity(context) or "")
        return identity_pb2.ReprotectTemplatesResponse(customers=customers, templates=templates,
                                                       transform_version=version)

    async def WithdrawConsent(self, request: identity_pb2.WithdrawConsentRequest,
                              context: grpc.aio.ServicerContext) -> identity_pb2.WithdrawConsentResponse:
        destroyed = await self._run(self._core.withdraw_consent, request.request_id, request.customer_id,
                                    actor=caller_identity(context) or "")
        return identity_pb2.WithdrawConsentResponse(templates_destroyed=destroyed)

    async def EraseCustomer(self, request: identity_pb2.EraseCustomerRequest, context: grpc.aio.ServicerContext) \
            -> identity_pb2.EraseCustomerResponse:
        erased_at, anonymised = await self._run(self._core.erase, request.request_id, request.customer_id,
                                                actor=caller_identity(context) or "")
        response = identity_pb2.EraseCustomerResponse(transactions_anonymised=anonymised)
        response.erased_at.FromDatetime(datetime.fromisoformat(erased_at))
        return response

    async def AddPaymentMethod(self, request: identity_pb2.AddPaymentMethodRequest,
                               context: grpc.aio.ServicerContext) -> identity_pb2.AddPaymentMethodResponse:
        pm_id = await self._run(self._core.add_payment_method, request.request_id, request.customer_id,
                                _KINDS[request.kind], request.gateway, request.gateway_token, request.last4,
                                request.brand, request.upi_handle_masked, actor=caller_identity(context) or "",
                                gateway_customer=request.gateway_customer)
        return identity_pb2.AddPaymentMethodResponse(payment_method_id=pm_id)

    async def GetChargeProfile(self, request: identity_pb2.GetChargeProfileRequest,
                               context: grpc.aio.ServicerContext) -> identity_pb2.GetChargeProfileResponse:
        p: ChargeProfile = await self._run(self._core.charge_profile, request.customer_id,
                                           actor=caller_identity(context) or "")
        return identity_pb2.GetChargeProfileResponse(
            customer_id=p.customer_id, payment_method_id=p.payment_method_id, gateway=p.gateway,
            gateway_token=p.gateway_token,
            per_visit_limit=types_pb2.Money(currency_code="INR", minor_units=p.per_visit_limit_paise),
            daily_limit=types_pb2.Money(currency_code="INR", minor_units=p.daily_limit_paise),
            routes=[identity_pb2.ChargeRoute(payment_method_id=r.payment_method_id, gateway=r.gateway,
                                             gateway_customer=r.gateway_customer, gateway_token=r.gateway_token)
                    for r in p.routes])

    async def GetContact(self, request: identity_pb2.GetContactRequest,
                         context: grpc.aio.ServicerContext) -> identity_pb2.GetContactResponse:
        c = await self._run(self._core.contact, request.customer_id, request.purpose,
                            actor=caller_identity(context) or "")
        return identity_pb2.GetContactResponse(customer_id=c.customer_id, display_name=c.display_name,
                                               email=c.email, phone_e164=c.phone_e164)

    async def AppendAuditEvent(self, request: identity_pb2.AppendAuditEventRequest,
                               context: grpc.aio.ServicerContext) -> identity_pb2.AppendAuditEventResponse:
        sequence = await self._run(self._core.append_audit, request.request_id, request.action, request.customer_id,
                                   dict(request.attributes), actor=caller_identity(context) or "")
        return identity_pb2.AppendAuditEventResponse(sequence=sequence)

    async def VerifyAuditChain(self, request: identity_pb2.VerifyAuditChainRequest,
                               context: grpc.aio.ServicerContext) -> identity_pb2.VerifyAuditChainResponse:
        report = await self._run(self._core.verify_audit)
        return identity_pb2.VerifyAuditChainResponse(intact=report.intact, entries=report.entries,
                                                     first_broken_sequence=report.first_broken_sequence,
                                                     problem=report.why)
