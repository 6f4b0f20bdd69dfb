import datetime

from buf.validate import validate_pb2 as _validate_pb2
from gaitpay.common.v1 import types_pb2 as _types_pb2
from gaitpay.common.v1 import visibility_pb2 as _visibility_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
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
    PAYMENT_STATE_DISPUTED: _ClassVar[PaymentState]
    PAYMENT_STATE_FAILED: _ClassVar[PaymentState]
PAYMENT_STATE_UNSPECIFIED: PaymentState
PAYMENT_STATE_PENDING: PaymentState
PAYMENT_STATE_CAPTURED: PaymentState
PAYMENT_STATE_DECLINED: PaymentState
PAYMENT_STATE_UNKNOWN: PaymentState
PAYMENT_STATE_REFUNDED: PaymentState
PAYMENT_STATE_PARTIALLY_REFUNDED: PaymentState
PAYMENT_STATE_REQUIRES_ACTION: PaymentState
PAYMENT_STATE_DISPUTED: PaymentState
PAYMENT_STATE_FAILED: PaymentState

class PaymentRoute(_message.Message):
    __slots__ = ("gateway", "customer_reference", "token")
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    gateway: str
    customer_reference: str
    token: str
    def __init__(self, gateway: _Optional[str] = ..., customer_reference: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class ChargeRequest(_message.Message):
    __slots__ = ("request_id", "idempotency_key", "session_id", "customer_id", "amount", "payment_method_id", "gateway", "routes", "store_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    idempotency_key: str
    session_id: str
    customer_id: str
    amount: _types_pb2.Money
    payment_method_id: str
    gateway: str
    routes: _containers.RepeatedCompositeFieldContainer[PaymentRoute]
    store_id: str
    def __init__(self, request_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., session_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., amount: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., payment_method_id: _Optional[str] = ..., gateway: _Optional[str] = ..., routes: _Optional[_Iterable[_Union[PaymentRoute, _Mapping]]] = ..., store_id: _Optional[str] = ...) -> None: ...

class Payment(_message.Message):
    __slots__ = ("payment_id", "session_id", "state", "amount", "refunded", "gateway", "gateway_reference", "created_at", "captured_at", "failure_reason", "attempts", "store_id")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    session_id: str
    state: PaymentState
    amount: _types_pb2.Money
    refunded: _types_pb2.Money
    gateway: str
    gateway_reference: str
    created_at: _timestamp_pb2.Timestamp
    captured_at: _timestamp_pb2.Timestamp
    failure_reason: str
    attempts: _containers.RepeatedCompositeFieldContainer[PaymentAttempt]
    store_id: str
    def __init__(self, payment_id: _Optional[str] = ..., session_id: _Optional[str] = ..., state: _Optional[_Union[PaymentState, str]] = ..., amount: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., refunded: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., gateway: _Optional[str] = ..., gateway_reference: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., captured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure_reason: _Optional[str] = ..., attempts: _Optional[_Iterable[_Union[PaymentAttempt, _Mapping]]] = ..., store_id: _Optional[str] = ...) -> None: ...

class PaymentAttempt(_message.Message):
    __slots__ = ("gateway", "outcome", "detail")
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    gateway: str
    outcome: str
    detail: str
    def __init__(self, gateway: _Optional[str] = ..., outcome: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ChargeResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: Payment
    def __init__(self, payment: _Optional[_Union[Payment, _Mapping]] = ...) -> None: ...

class GetPaymentRequest(_message.Message):
    __slots__ = ("payment_id", "store_id")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    store_id: str
    def __init__(self, payment_id: _Optional[str] = ..., store_id: _Optional[str] = ...) -> None: ...

class GetPaymentResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: Payment
    def __init__(self, payment: _Optional[_Union[Payment, _Mapping]] = ...) -> None: ...

class RefundPaymentRequest(_message.Message):
    __slots__ = ("request_id", "payment_id", "amount", "reason", "store_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    payment_id: str
    amount: _types_pb2.Money
    reason: str
    store_id: str
    def __init__(self, request_id: _Optional[str] = ..., payment_id: _Optional[str] = ..., amount: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., reason: _Optional[str] = ..., store_id: _Optional[str] = ...) -> None: ...

class RefundPaymentResponse(_message.Message):
    __slots__ = ("payment", "refund_id")
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    payment: Payment
    refund_id: str
    def __init__(self, payment: _Optional[_Union[Payment, _Mapping]] = ..., refund_id: _Optional[str] = ...) -> None: ...

class ReconcilePaymentsRequest(_message.Message):
    __slots__ = ("older_than_s", "request_id")
    OLDER_THAN_S_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    older_than_s: int
    request_id: str
    def __init__(self, older_than_s: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class ReconcilePaymentsResponse(_message.Message):
    __slots__ = ("examined", "captured", "not_captured", "still_unknown")
    EXAMINED_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_FIELD_NUMBER: _ClassVar[int]
    NOT_CAPTURED_FIELD_NUMBER: _ClassVar[int]
    STILL_UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    examined: int
    captured: int
    not_captured: int
    still_unknown: int
    def __init__(self, examined: _Optional[int] = ..., captured: _Optional[int] = ..., not_captured: _Optional[int] = ..., still_unknown: _Optional[int] = ...) -> None: ...

class GetLedgerBalanceRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LedgerAccount(_message.Message):
    __slots__ = ("account", "debit_minor", "credit_minor")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    DEBIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CREDIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    account: str
    debit_minor: int
    credit_minor: int
    def __init__(self, account: _Optional[str] = ..., debit_minor: _Optional[int] = ..., credit_minor: _Optional[int] = ...) -> None: ...

class GetLedgerBalanceResponse(_message.Message):
    __slots__ = ("accounts", "total_debit_minor", "total_credit_minor", "balanced", "unbalanced_transactions")
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DEBIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CREDIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    BALANCED_FIELD_NUMBER: _ClassVar[int]
    UNBALANCED_TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    accounts: _containers.RepeatedCompositeFieldContainer[LedgerAccount]
    total_debit_minor: int
    total_credit_minor: int
    balanced: bool
    unbalanced_transactions: int
    def __init__(self, accounts: _Optional[_Iterable[_Union[LedgerAccount, _Mapping]]] = ..., total_debit_minor: _Optional[int] = ..., total_credit_minor: _Optional[int] = ..., balanced: _Optional[bool] = ..., unbalanced_transactions: _Optional[int] = ...) -> None: ...

class AnonymiseCustomerRequest(_message.Message):
    __slots__ = ("request_id", "customer_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class AnonymiseCustomerResponse(_message.Message):
    __slots__ = ("payments_anonymised",)
    PAYMENTS_ANONYMISED_FIELD_NUMBER: _ClassVar[int]
    payments_anonymised: int
    def __init__(self, payments_anonymised: _Optional[int] = ...) -> None: ...

class PaymentEvent(_message.Message):
    __slots__ = ("event_id", "type", "store_id", "occurred_at", "payment", "cursor")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    type: str
    store_id: str
    occurred_at: _timestamp_pb2.Timestamp
    payment: Payment
    cursor: str
    def __init__(self, event_id: _Optional[str] = ..., type: _Optional[str] = ..., store_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payment: _Optional[_Union[Payment, _Mapping]] = ..., cursor: _Optional[str] = ...) -> None: ...

class ListPaymentEventsRequest(_message.Message):
    __slots__ = ("after", "page_size")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    after: str
    page_size: int
    def __init__(self, after: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListPaymentEventsResponse(_message.Message):
    __slots__ = ("events", "next_cursor")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[PaymentEvent]
    next_cursor: str
    def __init__(self, events: _Optional[_Iterable[_Union[PaymentEvent, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...
