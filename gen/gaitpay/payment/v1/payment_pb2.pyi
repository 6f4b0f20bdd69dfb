import datetime

from buf.validate import validate_pb2 as _validate_pb2
from gaitpay.common.v1 import types_pb2 as _types_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PaymentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYMENT_STATE_UNSPECIFIED: _ClassVar[PaymentState]
    PAYMENT_STATE_PENDING: _ClassVar[PaymentState]
    PAYMENT_STATE_CAPTURED: _ClassVar[PaymentState]
    PAYMENT_STATE_DECLINED: _ClassVar[PaymentState]
    PAYMENT_STATE_UNKNOWN: _ClassVar[PaymentState]
    PAYMENT_STATE_REFUNDED: _ClassVar[PaymentState]
    PAYMENT_STATE_PARTIALLY_REFUNDED: _ClassVar[PaymentState]
    PAYMENT_STATE_REQUIRES_ACTION: _ClassVar[PaymentState]
PAYMENT_STATE_UNSPECIFIED: PaymentState
PAYMENT_STATE_PENDING: PaymentState
PAYMENT_STATE_CAPTURED: PaymentState
PAYMENT_STATE_DECLINED: PaymentState
PAYMENT_STATE_UNKNOWN: PaymentState
PAYMENT_STATE_REFUNDED: PaymentState
PAYMENT_STATE_PARTIALLY_REFUNDED: PaymentState
PAYMENT_STATE_REQUIRES_ACTION: PaymentState

class ChargeRequest(_message.Message):
    __slots__ = ("request_id", "idempotency_key", "session_id", "customer_id", "amount", "payment_method_id", "gateway")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    idempotency_key: str
    session_id: str
    customer_id: str
    amount: _types_pb2.Money
    payment_method_id: str
    gateway: str
    def __init__(self, request_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., session_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., amount: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., payment_method_id: _Optional[str] = ..., gateway: _Optional[str] = ...) -> None: ...

class Payment(_message.Message):
    __slots__ = ("payment_id", "session_id", "state", "amount", "refunded", "gateway", "gateway_reference", "created_at", "captured_at")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    session_id: str
    state: PaymentState
    amount: _types_pb2.Money
    refunded: _types_pb2.Money
    gateway: str
    gateway_reference: str
    created_at: _timestamp_pb2.Timestamp
    captured_at: _timestamp_pb2.Timestamp
    def __init__(self, payment_id: _Optional[str] = ..., session_id: _Optional[str] = ..., state: _Optional[_Union[PaymentState, str]] = ..., amount: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., refunded: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., gateway: _Optional[str] = ..., gateway_reference: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., captured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ChargeResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: Payment
    def __init__(self, payment: _Optional[_Union[Payment, _Mapping]] = ...) -> None: ...

class GetPaymentRequest(_message.Message):
    __slots__ = ("payment_id",)
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    def __init__(self, payment_id: _Optional[str] = ...) -> None: ...

class GetPaymentResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: Payment
    def __init__(self, payment: _Optional[_Union[Payment, _Mapping]] = ...) -> None: ...

class RefundPaymentRequest(_message.Message):
    __slots__ = ("request_id", "payment_id", "amount", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    payment_id: str
    amount: _types_pb2.Money
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., payment_id: _Optional[str] = ..., amount: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class RefundPaymentResponse(_message.Message):
    __slots__ = ("payment", "refund_id")
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    payment: Payment
    refund_id: str
    def __init__(self, payment: _Optional[_Union[Payment, _Mapping]] = ..., refund_id: _Optional[str] = ...) -> None: ...
