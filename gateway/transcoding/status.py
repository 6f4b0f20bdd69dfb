"""gRPC status to HTTP: the standard mapping (google/rpc/code.proto, as grpc-gateway uses it)
and the error body, a google.rpc.Status in JSON with its details (ErrorInfo, BadRequest)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import status_pb2

HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def grpc_code(number: int) -> grpc.StatusCode:
    """The grpc.StatusCode of a google.rpc.Code number (UNKNOWN for a number outside it)."""
    return _BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def http_status(code: int) -> int:
    return HTTP_STATUS.get(grpc_code(code), 500)


def error_body(status: status_pb2.Status) -> dict[str, Any]:
    """{"code": <gRPC code number>, "message": ..., "details": [{"@type": ..., ...}]}."""
    return json_format.MessageToDict(status, always_print_fields_with_no_presence=True)
