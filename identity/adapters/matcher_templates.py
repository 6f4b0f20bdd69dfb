"""The matcher's template index, reached over gRPC (mTLS as identity, with deadlines)."""

from __future__ import annotations

from typing import Sequence

import grpc
import numpy as np

from gaitpay.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from identity.domain.ports import IndexTemplate
from mesh import body_measures
from mesh.errors import MeshError, Unavailable, error_info, rpc_code, status_from_rpc_error


class MatcherTemplates:
    def __init__(self, channel: grpc.Channel, timeout_s: float = 10.0) -> None:
        self._stub = matcher_pb2_grpc.MatcherServiceStub(channel)
        self._timeout = timeout_s

    def _call(self, what: str, fn, request):  # type: ignore[no-untyped-def]
        try:
            return fn(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            code = rpc_code(exc)
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(f"matcher unavailable during {what}") from None
            info = error_info(status_from_rpc_error(exc))
            if info is not None and info.reason == "MODEL_MISMATCH":  # the caller can act on this one
                raise MeshError(f"matcher refused {what}: its gait model is {info.metadata.get('matcher_model')!r}, "
                                f"these templates are {info.metadata.get('template_model')!r}",
                                reason="MODEL_MISMATCH", code=grpc.StatusCode.FAILED_PRECONDITION,
                                metadata=dict(info.metadata)) from None
            raise MeshError(f"matcher refused {what}: {code.name}", reason="DEPENDENCY_UNAVAILABLE",
                            code=grpc.StatusCode.FAILED_PRECONDITION) from None

    def upsert(self, request_id: str, customer_id: str, templates: list[IndexTemplate],
               store_ids: Sequence[str], keep_store_scopes: bool = False) -> int:
        request = matcher_pb2.UpsertTemplatesRequest(request_id=request_id, customer_id=customer_id,
                                                     store_ids=list(store_ids), keep_store_scopes=keep_store_scopes)
        for t in templates:
            body_measures.to_proto(t.body, request.templates.add(template_id=t.template_id, values=t.vector.tolist(),
                                                                 quality=t.quality, model_version=t.model_version[:64]))
        return int(self._call("template upsert", self._stub.UpsertTemplates, request).stored)

    def remove(self, request_id: str, customer_id: str) -> int:
        request = matcher_pb2.RemoveTemplatesRequest(request_id=request_id, customer_id=customer_id)
        return int(self._call("template removal", self._stub.RemoveTemplates, request).removed)
