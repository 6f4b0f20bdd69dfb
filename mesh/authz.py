"""Who may call whom: the mesh's authorisation policy, by mTLS identity.

Each service accepts calls only from the identities that have business calling it. The
same table drives the Kubernetes NetworkPolicies (issue: deployment) so the two never
disagree. `operator` is the CLI of an SRE holding an operator certificate.
"""

from __future__ import annotations

from typing import Mapping

OPERATOR = "operator"
GATEWAY = "gateway"

ALLOWED_CALLERS: Mapping[str, frozenset[str]] = {
    # The edge box is driven by operators only.
    "edge": frozenset({OPERATOR}),
    # Edge streams windows; identity stores and removes templates.
    "matcher": frozenset({"edge", "identity", OPERATOR}),
    # Matcher appends identification audit events; billing reads charge profiles.
    "identity": frozenset({"matcher", "billing", GATEWAY, OPERATOR}),
    # Edge streams store events; partners come through the gateway; identity erases.
    "billing": frozenset({"edge", "identity", GATEWAY, OPERATOR}),
    # Only billing charges; partners refund through the gateway; identity erases.
    "payment": frozenset({"billing", "identity", GATEWAY, OPERATOR}),
    # Partner API keys are managed by operators only; partner webhook endpoints are served to
    # partners by the gateway's HTTP layer, which calls its own gRPC port.
    "gateway": frozenset({GATEWAY, OPERATOR}),
}

# Narrower rules for single RPCs ("package.Service/Method"), within the service's callers:
# least privilege where one caller's business is only part of a service.
METHOD_CALLERS: Mapping[str, frozenset[str]] = {
    "gaitpay.matcher.v1.MatcherService/StreamIdentify": frozenset({"edge", OPERATOR}),
    "gaitpay.matcher.v1.MatcherService/ExportHotCache": frozenset({"edge", OPERATOR}),
    "gaitpay.matcher.v1.MatcherService/UpsertTemplates": frozenset({"identity", OPERATOR}),
    "gaitpay.matcher.v1.MatcherService/RemoveTemplates": frozenset({"identity", OPERATOR}),
    "gaitpay.payment.v1.PaymentService/Charge": frozenset({"billing", OPERATOR}),
    "gaitpay.payment.v1.PaymentService/GetPayment": frozenset({"billing", GATEWAY, OPERATOR}),
    "gaitpay.payment.v1.PaymentService/RefundPayment": frozenset({"billing", GATEWAY, OPERATOR}),
    "gaitpay.payment.v1.PaymentService/ReconcilePayments": frozenset({OPERATOR}),
    "gaitpay.payment.v1.PaymentService/GetLedgerBalance": frozenset({GATEWAY, OPERATOR}),
    "gaitpay.payment.v1.PaymentService/AnonymiseCustomer": frozenset({"identity", OPERATOR}),
    "gaitpay.billing.v1.BillingService/StreamStoreEvents": frozenset({"edge", OPERATOR}),
    "gaitpay.billing.v1.BillingService/AnonymiseCustomer": frozenset({"identity", OPERATOR}),
    "gaitpay.billing.v1.BillingService/UpsertCatalogue": frozenset({GATEWAY, OPERATOR}),
    "gaitpay.billing.v1.BillingService/ConfirmCharge": frozenset({GATEWAY, OPERATOR}),
    "gaitpay.identity.v1.IdentityService/ReprotectTemplates": frozenset({OPERATOR}),
    "gaitpay.identity.v1.IdentityService/GetContact": frozenset({"billing", OPERATOR}),
    "gaitpay.billing.v1.BillingService/ListSessionEvents": frozenset({GATEWAY, OPERATOR}),
    "gaitpay.payment.v1.PaymentService/ListPaymentEvents": frozenset({GATEWAY, OPERATOR}),
    "gaitpay.gateway.v1.PartnerAdminService/CreateApiKey": frozenset({OPERATOR}),
    "gaitpay.gateway.v1.PartnerAdminService/RotateApiKey": frozenset({OPERATOR}),
    "gaitpay.gateway.v1.PartnerAdminService/RevokeApiKey": frozenset({OPERATOR}),
    "gaitpay.gateway.v1.PartnerAdminService/ListApiKeys": frozenset({OPERATOR}),
}

# Infrastructure RPCs every mesh identity may call (health probes, reflection).
OPEN_SERVICES = frozenset({"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                           "grpc.reflection.v1.ServerReflection"})


def is_allowed(service: str, caller: str | None, rpc_service: str, rpc_method: str = "") -> bool:
    if caller is None:
        return False
    if rpc_service in OPEN_SERVICES:
        return True
    if caller not in ALLOWED_CALLERS.get(service, frozenset()):
        return False
    narrower = METHOD_CALLERS.get(rpc_method)
    return narrower is None or caller in narrower
