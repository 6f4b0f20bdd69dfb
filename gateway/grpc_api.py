"""PartnerAdminService (operators only, by mTLS) and PartnerWebhookService: proto <-> the
gateway's domain, nothing more."""

from __future__ import annotations

import asyncio

import grpc

from gaitpay.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from gateway.domain.keys import ApiKey, PartnerKeys
from gateway.domain.webhooks import DELIVERED, FAILED, PENDING, Delivery, Endpoint, PartnerWebhooks


def key_message(key: ApiKey) -> gateway_pb2.ApiKey:
    msg = gateway_pb2.ApiKey(key_id=key.key_id, retailer_id=key.retailer_id, store_ids=sorted(key.store_ids),
                             revoked=key.revoked, rate_per_s=key.rate_per_s, burst=key.burst,
                             replaced_by=key.replaced_by)
    msg.created_at.FromDatetime(key.created_at)
    if key.expires_at is not None:
        msg.expires_at.FromDatetime(key.expires_at)
    return msg


class PartnerAdminServicer(gateway_pb2_grpc.PartnerAdminServiceServicer):
    def __init__(self, keys: PartnerKeys) -> None:
        self._keys = keys

    async def CreateApiKey(self, request: gateway_pb2.CreateApiKeyRequest,
                           context: grpc.aio.ServicerContext) -> gateway_pb2.CreateApiKeyResponse:
        key, secret = await asyncio.to_thread(self._keys.create, request.request_id, request.retailer_id,
                                              list(request.store_ids), request.rate_per_s, request.burst)
        return gateway_pb2.CreateApiKeyResponse(api_key=key_message(key), secret=secret)

    async def RotateApiKey(self, request: gateway_pb2.RotateApiKeyRequest,
                           context: grpc.aio.ServicerContext) -> gateway_pb2.RotateApiKeyResponse:
        new, secret, old = await asyncio.to_thread(self._keys.rotate, request.request_id, request.key_id,
                                                   request.grace_s)
        return gateway_pb2.RotateApiKeyResponse(api_key=key_message(new), secret=secret, previous=key_message(old))

    async def RevokeApiKey(self, request: gateway_pb2.RevokeApiKeyRequest,
                           context: grpc.aio.ServicerContext) -> gateway_pb2.RevokeApiKeyResponse:
        key = await asyncio.to_thread(self._keys.revoke, request.key_id)
        return gateway_pb2.RevokeApiKeyResponse(api_key=key_message(key))

    async def ListApiKeys(self, request: gateway_pb2.ListApiKeysRequest,
                          context: grpc.aio.ServicerContext) -> gateway_pb2.ListApiKeysResponse:
        keys = await asyncio.to_thread(self._keys.list, request.retailer_id)
        return gateway_pb2.ListApiKeysResponse(api_keys=[key_message(k) for k in keys])


def endpoint_message(endpoint: Endpoint) -> gateway_pb2.WebhookEndpoint:
    msg = gateway_pb2.WebhookEndpoint(endpoint_id=endpoint.endpoint_id, store_id=endpoint.store_id, url=endpoint.url,
                                      event_types=list(endpoint.event_types))
    msg.created_at.FromDatetime(endpoint.created_at)
    return msg


_DELIVERY_STATES = {PENDING: gateway_pb2.WEBHOOK_DELIVERY_STATE_PENDING,
                    DELIVERED: gateway_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED,
                    FAILED: gateway_pb2.WEBHOOK_DELIVERY_STATE_FAILED}


def delivery_message(d: Delivery) -> gateway_pb2.WebhookDelivery:
    msg = gateway_pb2.WebhookDelivery(delivery_id=d.delivery_id, event_id=d.event_id, event_type=d.event_type,
                                      state=_DELIVERY_STATES[d.state], attempts=d.attempts, last_status=d.last_status,
                                      last_error=d.last_error)
    for field, value in (("created_at", d.created_at), ("next_attempt_at", d.next_attempt_at),
                         ("delivered_at", d.delivered_at)):
        if value is not None:
            getattr(msg, field).FromDatetime(value)
    return msg


class PartnerWebhookServicer(gateway_pb2_grpc.PartnerWebhookServiceServicer):
    """Served to partners through the REST gateway (which checked the key's store) and to
    operators directly."""

    def __init__(self, webhooks: PartnerWebhooks) -> None:
        self._webhooks = webhooks

    async def CreateWebhookEndpoint(self, request: gateway_pb2.CreateWebhookEndpointRequest,
                                    context: grpc.aio.ServicerContext) -> gateway_pb2.CreateWebhookEndpointResponse:
        retailer = dict(context.invocation_metadata() or ()).get("x-gaitpay-partner", "operator")
        endpoint, secret = await asyncio.to_thread(self._webhooks.create_endpoint, request.request_id,
                                                   request.store_id, str(retailer), request.url,
                                                   list(request.event_types))
        return gateway_pb2.CreateWebhookEndpointResponse(endpoint=endpoint_message(endpoint), signing_secret=secret)

    async def ListWebhookEndpoints(self, request: gateway_pb2.ListWebhookEndpointsRequest,
                                   context: grpc.aio.ServicerContext) -> gateway_pb2.ListWebhookEndpointsResponse:
        endpoints = await asyncio.to_thread(self._webhooks.endpoints, request.store_id)
        return gateway_pb2.ListWebhookEndpointsResponse(endpoints=[endpoint_message(e) for e in endpoints])

    async def DeleteWebhookEndpoint(self, request: gateway_pb2.DeleteWebhookEndpointRequest,
                                    context: grpc.aio.ServicerContext) -> gateway_pb2.DeleteWebhookEndpointResponse:
        await asyncio.to_thread(self._webhooks.delete_endpoint, request.store_id, request.endpoint_id)
        return gateway_pb2.DeleteWebhookEndpointResponse()

    async def ListWebhookDeliveries(self, request: gateway_pb2.ListWebhookDeliveriesRequest,
                                    context: grpc.aio.ServicerContext) -> gateway_pb2.ListWebhookDeliveriesResponse:
        deliveries = await asyncio.to_thread(self._webhooks.deliveries, request.store_id, request.endpoint_id,
                                             request.page_size or 50)
        return gateway_pb2.ListWebhookDeliveriesResponse(deliveries=[delivery_message(d) for d in deliveries])
