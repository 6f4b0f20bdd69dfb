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

class StoreEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STORE_EVENT_KIND_UNSPECIFIED: _ClassVar[StoreEventKind]
    STORE_EVENT_KIND_ENTRY: _ClassVar[StoreEventKind]
    STORE_EVENT_KIND_EXIT: _ClassVar[StoreEventKind]
    STORE_EVENT_KIND_ZONE: _ClassVar[StoreEventKind]
    STORE_EVENT_KIND_IDENTIFIED: _ClassVar[StoreEventKind]

class SessionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATE_UNSPECIFIED: _ClassVar[SessionState]
    SESSION_STATE_OPEN: _ClassVar[SessionState]
    SESSION_STATE_AWAITING_CONFIRMATION: _ClassVar[SessionState]
    SESSION_STATE_CHARGING: _ClassVar[SessionState]
    SESSION_STATE_PAID: _ClassVar[SessionState]
    SESSION_STATE_STAFF_CHECKOUT: _ClassVar[SessionState]
    SESSION_STATE_CANCELLED: _ClassVar[SessionState]
    SESSION_STATE_PAYMENT_LINK: _ClassVar[SessionState]
STORE_EVENT_KIND_UNSPECIFIED: StoreEventKind
STORE_EVENT_KIND_ENTRY: StoreEventKind
STORE_EVENT_KIND_EXIT: StoreEventKind
STORE_EVENT_KIND_ZONE: StoreEventKind
STORE_EVENT_KIND_IDENTIFIED: StoreEventKind
SESSION_STATE_UNSPECIFIED: SessionState
SESSION_STATE_OPEN: SessionState
SESSION_STATE_AWAITING_CONFIRMATION: SessionState
SESSION_STATE_CHARGING: SessionState
SESSION_STATE_PAID: SessionState
SESSION_STATE_STAFF_CHECKOUT: SessionState
SESSION_STATE_CANCELLED: SessionState
SESSION_STATE_PAYMENT_LINK: SessionState

class StoreEvent(_message.Message):
    __slots__ = ("event_id", "kind", "store_id", "camera_id", "track_id", "occurred_at", "customer_id", "identification_confidence", "false_match_probability", "zone", "identified_at_edge")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFICATION_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    FALSE_MATCH_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIED_AT_EDGE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    kind: StoreEventKind
    store_id: str
    camera_id: str
    track_id: str
    occurred_at: _timestamp_pb2.Timestamp
    customer_id: str
    identification_confidence: float
    false_match_probability: float
    zone: str
    identified_at_edge: bool
    def __init__(self, event_id: _Optional[str] = ..., kind: _Optional[_Union[StoreEventKind, str]] = ..., store_id: _Optional[str] = ..., camera_id: _Optional[str] = ..., track_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., customer_id: _Optional[str] = ..., identification_confidence: _Optional[float] = ..., false_match_probability: _Optional[float] = ..., zone: _Optional[str] = ..., identified_at_edge: _Optional[bool] = ...) -> None: ...

class StreamStoreEventsRequest(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: StoreEvent
    def __init__(self, event: _Optional[_Union[StoreEvent, _Mapping]] = ...) -> None: ...

class StreamStoreEventsResponse(_message.Message):
    __slots__ = ("event_id", "duplicate", "session_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    duplicate: bool
    session_id: str
    def __init__(self, event_id: _Optional[str] = ..., duplicate: _Optional[bool] = ..., session_id: _Optional[str] = ...) -> None: ...

class CartLine(_message.Message):
    __slots__ = ("sku", "name", "quantity", "unit_price", "line_total")
    SKU_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    LINE_TOTAL_FIELD_NUMBER: _ClassVar[int]
    sku: str
    name: str
    quantity: int
    unit_price: _types_pb2.Money
    line_total: _types_pb2.Money
    def __init__(self, sku: _Optional[str] = ..., name: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., line_total: _Optional[_Union[_types_pb2.Money, _Mapping]] = ...) -> None: ...

class Bill(_message.Message):
    __slots__ = ("lines", "subtotal", "discount", "tax", "total")
    LINES_FIELD_NUMBER: _ClassVar[int]
    SUBTOTAL_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    TAX_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[CartLine]
    subtotal: _types_pb2.Money
    discount: _types_pb2.Money
    tax: _types_pb2.Money
    total: _types_pb2.Money
    def __init__(self, lines: _Optional[_Iterable[_Union[CartLine, _Mapping]]] = ..., subtotal: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., discount: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., tax: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., total: _Optional[_Union[_types_pb2.Money, _Mapping]] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("session_id", "store_id", "customer_id", "state", "bill", "entered_at", "exited_at", "payment_id", "decision_reason", "confirmation_deadline", "false_match_probability")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BILL_FIELD_NUMBER: _ClassVar[int]
    ENTERED_AT_FIELD_NUMBER: _ClassVar[int]
    EXITED_AT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_REASON_FIELD_NUMBER: _ClassVar[int]
    CONFIRMATION_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    FALSE_MATCH_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    store_id: str
    customer_id: str
    state: SessionState
    bill: Bill
    entered_at: _timestamp_pb2.Timestamp
    exited_at: _timestamp_pb2.Timestamp
    payment_id: str
    decision_reason: str
    confirmation_deadline: _timestamp_pb2.Timestamp
    false_match_probability: float
    def __init__(self, session_id: _Optional[str] = ..., store_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., bill: _Optional[_Union[Bill, _Mapping]] = ..., entered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., exited_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payment_id: _Optional[str] = ..., decision_reason: _Optional[str] = ..., confirmation_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., false_match_probability: _Optional[float] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("store_id", "session_id")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    session_id: str
    def __init__(self, store_id: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class GetSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("store_id", "page_size", "page_token")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    page_size: int
    page_token: str
    def __init__(self, store_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions", "next_page_token")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    next_page_token: str
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CartChange(_message.Message):
    __slots__ = ("sku", "quantity_delta")
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_DELTA_FIELD_NUMBER: _ClassVar[int]
    sku: str
    quantity_delta: int
    def __init__(self, sku: _Optional[str] = ..., quantity_delta: _Optional[int] = ...) -> None: ...

class UpdateCartRequest(_message.Message):
    __slots__ = ("request_id", "store_id", "session_id", "changes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    store_id: str
    session_id: str
    changes: _containers.RepeatedCompositeFieldContainer[CartChange]
    def __init__(self, request_id: _Optional[str] = ..., store_id: _Optional[str] = ..., session_id: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[CartChange, _Mapping]]] = ...) -> None: ...

class UpdateCartResponse(_message.Message):
    __slots__ = ("bill",)
    BILL_FIELD_NUMBER: _ClassVar[int]
    bill: Bill
    def __init__(self, bill: _Optional[_Union[Bill, _Mapping]] = ...) -> None: ...

class GetReceiptRequest(_message.Message):
    __slots__ = ("store_id", "session_id")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    session_id: str
    def __init__(self, store_id: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class GetReceiptResponse(_message.Message):
    __slots__ = ("media_type", "document")
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    media_type: str
    document: bytes
    def __init__(self, media_type: _Optional[str] = ..., document: _Optional[bytes] = ...) -> None: ...

class ConfirmChargeRequest(_message.Message):
    __slots__ = ("request_id", "session_id", "customer_id", "approve")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    session_id: str
    customer_id: str
    approve: bool
    def __init__(self, request_id: _Optional[str] = ..., session_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., approve: _Optional[bool] = ...) -> None: ...

class ConfirmChargeResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class CatalogueItem(_message.Message):
    __slots__ = ("sku", "name", "unit_price", "gst_rate_bp", "discount_bp")
    SKU_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    GST_RATE_BP_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_BP_FIELD_NUMBER: _ClassVar[int]
    sku: str
    name: str
    unit_price: _types_pb2.Money
    gst_rate_bp: int
    discount_bp: int
    def __init__(self, sku: _Optional[str] = ..., name: _Optional[str] = ..., unit_price: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., gst_rate_bp: _Optional[int] = ..., discount_bp: _Optional[int] = ...) -> None: ...

class UpsertCatalogueRequest(_message.Message):
    __slots__ = ("request_id", "store_id", "items")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    store_id: str
    items: _containers.RepeatedCompositeFieldContainer[CatalogueItem]
    def __init__(self, request_id: _Optional[str] = ..., store_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[CatalogueItem, _Mapping]]] = ...) -> None: ...

class UpsertCatalogueResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: int
    def __init__(self, items: _Optional[int] = ...) -> None: ...

class AnonymiseCustomerRequest(_message.Message):
    __slots__ = ("request_id", "customer_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class AnonymiseCustomerResponse(_message.Message):
    __slots__ = ("sessions_anonymised",)
    SESSIONS_ANONYMISED_FIELD_NUMBER: _ClassVar[int]
    sessions_anonymised: int
    def __init__(self, sessions_anonymised: _Optional[int] = ...) -> None: ...

class SessionEvent(_message.Message):
    __slots__ = ("event_id", "type", "store_id", "occurred_at", "session", "cursor")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    type: str
    store_id: str
    occurred_at: _timestamp_pb2.Timestamp
    session: Session
    cursor: str
    def __init__(self, event_id: _Optional[str] = ..., type: _Optional[str] = ..., store_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., session: _Optional[_Union[Session, _Mapping]] = ..., cursor: _Optional[str] = ...) -> None: ...

class ListSessionEventsRequest(_message.Message):
    __slots__ = ("after", "page_size")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    after: str
    page_size: int
    def __init__(self, after: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListSessionEventsResponse(_message.Message):
    __slots__ = ("events", "next_cursor")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[SessionEvent]
    next_cursor: str
    def __init__(self, events: _Optional[_Iterable[_Union[SessionEvent, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...
