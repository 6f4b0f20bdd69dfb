"""Domain errors and their gRPC form: google.rpc.Status with an ErrorInfo reason.

Domain cores raise MeshError subclasses (they know nothing of gRPC); the server layer
turns them into a Status with ErrorInfo(domain="gaitpay.app", reason=...) from the
catalogue in protos/gaitpay/common/v1/errors.proto (docs/errors.md).
"""

from __future__ import annotations

from typing import Iterable, Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from gaitpay.common.v1 import errors_pb2

DOMAIN = "gaitpay.app"

_REASONS = {
    value.name.removeprefix("ERROR_REASON_")
    for value in errors_pb2.ErrorReason.DESCRIPTOR.values
    if value.number != 0
}


class MeshError(Exception):
    """An error with a gRPC code and a catalogued reason. Messages must not contain
    biometric or card data: they travel to callers and into logs."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        code: grpc.StatusCode | None = None,
        metadata: Mapping[str, str] | None = None,
        field_violations: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        if code is not None:
            self.code = code
        if self.reason not in _REASONS:
            raise ValueError(f"reason {self.reason!r} is not in the error catalogue")
        self.metadata = dict(metadata or {})
        self.field_violations = list(field_violations)

    def to_status(self) -> status_pb2.Status:
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata)
        details = [_pack(info)]
        if self.field_violations:
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in self.field_violations
                ]
            )
            details.append(_pack(bad))
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=details)


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


class InvalidArgument(MeshError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "VALIDATION_FAILED"


class NotFound(MeshError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class FailedPrecondition(MeshError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class AlreadyExists(MeshError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "IDEMPOTENCY_KEY_REUSED"


class Unavailable(MeshError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "DEPENDENCY_UNAVAILABLE"


class PermissionDenied(MeshError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "CALLER_NOT_ALLOWED"


def status_of(exc: BaseException) -> status_pb2.Status:
    """The Status for any exception; unexpected ones disclose nothing."""
    if isinstance(exc, MeshError):
        return exc.to_status()
    return MeshError("internal error", reason="INTERNAL", code=grpc.StatusCode.INTERNAL).to_status()


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo inside a Status, if any (for clients and tests)."""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def rpc_code(error: grpc.RpcError) -> grpc.StatusCode:
    """The status code of a failed call (UNKNOWN for an RpcError that carries none)."""
    return error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN


def status_from_rpc_error(error: grpc.aio.AioRpcError | grpc.RpcError) -> status_pb2.Status:
    """Decode the rich Status a GaitPay server attached to an RpcError."""
    from grpc_status import rpc_status

    if isinstance(error, grpc.aio.AioRpcError):
        for key, value in error.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                return status_pb2.Status.FromString(value)
        return status_pb2.Status(code=error.code().value[0], message=error.details() or "")
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    return status or status_pb2.Status(code=code_pb2.UNKNOWN)
