"""PartnerAdminService: proto <-> PartnerKeys, nothing more (operators only, by mTLS)."""

from __future__ import annotations

import asyncio

import grpc

from gaitpay.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from gateway.domain.keys import ApiKey, PartnerKeys


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
