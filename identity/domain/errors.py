"""The identity core's errors, each with its catalogued reason (docs/errors.md)."""

from __future__ import annotations

import grpc

from mesh.errors import FailedPrecondition, InvalidArgument, MeshError, NotFound


class CustomerNotFound(NotFound):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"no customer {customer_id}", metadata={"customer_id": customer_id})


class CustomerErased(FailedPrecondition):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"customer {customer_id} has been erased", metadata={"customer_id": customer_id})


class ConsentRequired(MeshError):
    reason = "CONSENT_REQUIRED"
    code = grpc.StatusCode.FAILED_PRECONDITION


class DuplicateCustomer(MeshError):
    reason = "DUPLICATE_CUSTOMER"
    code = grpc.StatusCode.ALREADY_EXISTS


class PoorWalks(InvalidArgument):
    reason = "POOR_WALK_QUALITY"


class NoPaymentMethod(FailedPrecondition):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"customer {customer_id} has no payment method", metadata={"customer_id": customer_id})
