import datetime

from buf.validate import validate_pb2 as _validate_pb2
from gaitpay.common.v1 import types_pb2 as _types_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PaymentMethodKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYMENT_METHOD_KIND_UNSPECIFIED: _ClassVar[PaymentMethodKind]
    PAYMENT_METHOD_KIND_CARD: _ClassVar[PaymentMethodKind]
    PAYMENT_METHOD_KIND_UPI_MANDATE: _ClassVar[PaymentMethodKind]
PAYMENT_METHOD_KIND_UNSPECIFIED: PaymentMethodKind
PAYMENT_METHOD_KIND_CARD: PaymentMethodKind
PAYMENT_METHOD_KIND_UPI_MANDATE: PaymentMethodKind

class Consent(_message.Message):
    __slots__ = ("policy_version", "purposes", "retention_days", "given_at", "jurisdiction")
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    GIVEN_AT_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    policy_version: str
    purposes: _containers.RepeatedScalarFieldContainer[str]
    retention_days: int
    given_at: _timestamp_pb2.Timestamp
    jurisdiction: str
    def __init__(self, policy_version: _Optional[str] = ..., purposes: _Optional[_Iterable[str]] = ..., retention_days: _Optional[int] = ..., given_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., jurisdiction: _Optional[str] = ...) -> None: ...

class CreateCustomerRequest(_message.Message):
    __slots__ = ("request_id", "display_name", "phone_e164", "email", "consent", "home_region")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PHONE_E164_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    HOME_REGION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    display_name: str
    phone_e164: str
    email: str
    consent: Consent
    home_region: str
    def __init__(self, request_id: _Optional[str] = ..., display_name: _Optional[str] = ..., phone_e164: _Optional[str] = ..., email: _Optional[str] = ..., consent: _Optional[_Union[Consent, _Mapping]] = ..., home_region: _Optional[str] = ...) -> None: ...

class CreateCustomerResponse(_message.Message):
    __slots__ = ("customer",)
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ...) -> None: ...

class Customer(_message.Message):
    __slots__ = ("customer_id", "display_name", "phone_hint", "biometric_consent", "templates", "created_at")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PHONE_HINT_FIELD_NUMBER: _ClassVar[int]
    BIOMETRIC_CONSENT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    display_name: str
    phone_hint: str
    biometric_consent: bool
    templates: int
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., display_name: _Optional[str] = ..., phone_hint: _Optional[str] = ..., biometric_consent: _Optional[bool] = ..., templates: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetCustomerRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class GetCustomerResponse(_message.Message):
    __slots__ = ("customer",)
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ...) -> None: ...

class Walk(_message.Message):
    __slots__ = ("keypoints", "source", "body")
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    keypoints: _types_pb2.KeypointTensor
    source: str
    body: _types_pb2.BodyMeasures
    def __init__(self, keypoints: _Optional[_Union[_types_pb2.KeypointTensor, _Mapping]] = ..., source: _Optional[str] = ..., body: _Optional[_Union[_types_pb2.BodyMeasures, _Mapping]] = ...) -> None: ...

class EnrollWalksRequest(_message.Message):
    __slots__ = ("request_id", "customer_id", "walks", "store_ids")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    WALKS_FIELD_NUMBER: _ClassVar[int]
    STORE_IDS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    walks: _containers.RepeatedCompositeFieldContainer[Walk]
    store_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., walks: _Optional[_Iterable[_Union[Walk, _Mapping]]] = ..., store_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RejectedWalk(_message.Message):
    __slots__ = ("index", "reason", "quality")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    index: int
    reason: str
    quality: float
    def __init__(self, index: _Optional[int] = ..., reason: _Optional[str] = ..., quality: _Optional[float] = ...) -> None: ...

class EnrollWalksResponse(_message.Message):
    __slots__ = ("accepted", "rejected", "template_quality")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_QUALITY_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedWalk]
    template_quality: float
    def __init__(self, accepted: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedWalk, _Mapping]]] = ..., template_quality: _Optional[float] = ...) -> None: ...

class RotateCustomerKeyRequest(_message.Message):
    __slots__ = ("request_id", "customer_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class RotateCustomerKeyResponse(_message.Message):
    __slots__ = ("key_version",)
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    key_version: int
    def __init__(self, key_version: _Optional[int] = ...) -> None: ...

class ReprotectTemplatesRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class ReprotectTemplatesResponse(_message.Message):
    __slots__ = ("customers", "templates", "transform_version")
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_VERSION_FIELD_NUMBER: _ClassVar[int]
    customers: int
    templates: int
    transform_version: int
    def __init__(self, customers: _Optional[int] = ..., templates: _Optional[int] = ..., transform_version: _Optional[int] = ...) -> None: ...

class WithdrawConsentRequest(_message.Message):
    __slots__ = ("request_id", "customer_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class WithdrawConsentResponse(_message.Message):
    __slots__ = ("templates_destroyed",)
    TEMPLATES_DESTROYED_FIELD_NUMBER: _ClassVar[int]
    templates_destroyed: int
    def __init__(self, templates_destroyed: _Optional[int] = ...) -> None: ...

class EraseCustomerRequest(_message.Message):
    __slots__ = ("request_id", "customer_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class EraseCustomerResponse(_message.Message):
    __slots__ = ("erased_at", "transactions_anonymised")
    ERASED_AT_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_ANONYMISED_FIELD_NUMBER: _ClassVar[int]
    erased_at: _timestamp_pb2.Timestamp
    transactions_anonymised: int
    def __init__(self, erased_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., transactions_anonymised: _Optional[int] = ...) -> None: ...

class AddPaymentMethodRequest(_message.Message):
    __slots__ = ("request_id", "customer_id", "kind", "gateway", "gateway_token", "last4", "brand", "upi_handle_masked", "gateway_customer")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LAST4_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    UPI_HANDLE_MASKED_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    kind: PaymentMethodKind
    gateway: str
    gateway_token: str
    last4: str
    brand: str
    upi_handle_masked: str
    gateway_customer: str
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[_Union[PaymentMethodKind, str]] = ..., gateway: _Optional[str] = ..., gateway_token: _Optional[str] = ..., last4: _Optional[str] = ..., brand: _Optional[str] = ..., upi_handle_masked: _Optional[str] = ..., gateway_customer: _Optional[str] = ...) -> None: ...

class AddPaymentMethodResponse(_message.Message):
    __slots__ = ("payment_method_id",)
    PAYMENT_METHOD_ID_FIELD_NUMBER: _ClassVar[int]
    payment_method_id: str
    def __init__(self, payment_method_id: _Optional[str] = ...) -> None: ...

class GetChargeProfileRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class GetChargeProfileResponse(_message.Message):
    __slots__ = ("customer_id", "payment_method_id", "gateway", "gateway_token", "per_visit_limit", "daily_limit", "routes")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PER_VISIT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    DAILY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    payment_method_id: str
    gateway: str
    gateway_token: str
    per_visit_limit: _types_pb2.Money
    daily_limit: _types_pb2.Money
    routes: _containers.RepeatedCompositeFieldContainer[ChargeRoute]
    def __init__(self, customer_id: _Optional[str] = ..., payment_method_id: _Optional[str] = ..., gateway: _Optional[str] = ..., gateway_token: _Optional[str] = ..., per_visit_limit: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., daily_limit: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., routes: _Optional[_Iterable[_Union[ChargeRoute, _Mapping]]] = ...) -> None: ...

class GetContactRequest(_message.Message):
    __slots__ = ("customer_id", "purpose")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    purpose: str
    def __init__(self, customer_id: _Optional[str] = ..., purpose: _Optional[str] = ...) -> None: ...

class GetContactResponse(_message.Message):
    __slots__ = ("customer_id", "display_name", "email", "phone_e164")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_E164_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    display_name: str
    email: str
    phone_e164: str
    def __init__(self, customer_id: _Optional[str] = ..., display_name: _Optional[str] = ..., email: _Optional[str] = ..., phone_e164: _Optional[str] = ...) -> None: ...

class ChargeRoute(_message.Message):
    __slots__ = ("payment_method_id", "gateway", "gateway_customer", "gateway_token")
    PAYMENT_METHOD_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    payment_method_id: str
    gateway: str
    gateway_customer: str
    gateway_token: str
    def __init__(self, payment_method_id: _Optional[str] = ..., gateway: _Optional[str] = ..., gateway_customer: _Optional[str] = ..., gateway_token: _Optional[str] = ...) -> None: ...

class AppendAuditEventRequest(_message.Message):
    __slots__ = ("request_id", "action", "customer_id", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    action: str
    customer_id: str
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, request_id: _Optional[str] = ..., action: _Optional[str] = ..., customer_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AppendAuditEventResponse(_message.Message):
    __slots__ = ("sequence",)
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    def __init__(self, sequence: _Optional[int] = ...) -> None: ...

class VerifyAuditChainRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyAuditChainResponse(_message.Message):
    __slots__ = ("intact", "entries", "first_broken_sequence", "problem")
    INTACT_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    FIRST_BROKEN_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    intact: bool
    entries: int
    first_broken_sequence: int
    problem: str
    def __init__(self, intact: _Optional[bool] = ..., entries: _Optional[int] = ..., first_broken_sequence: _Optional[int] = ..., problem: _Optional[str] = ...) -> None: ...
