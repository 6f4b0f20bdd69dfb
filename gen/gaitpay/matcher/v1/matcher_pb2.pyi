import datetime

from buf.validate import validate_pb2 as _validate_pb2
from gaitpay.common.v1 import types_pb2 as _types_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DecisionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_STATE_UNSPECIFIED: _ClassVar[DecisionState]
    DECISION_STATE_PENDING: _ClassVar[DecisionState]
    DECISION_STATE_IDENTIFIED: _ClassVar[DecisionState]
    DECISION_STATE_STRANGER: _ClassVar[DecisionState]
DECISION_STATE_UNSPECIFIED: DecisionState
DECISION_STATE_PENDING: DecisionState
DECISION_STATE_IDENTIFIED: DecisionState
DECISION_STATE_STRANGER: DecisionState

class TrackRef(_message.Message):
    __slots__ = ("store_id", "camera_id", "track_id")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    camera_id: str
    track_id: str
    def __init__(self, store_id: _Optional[str] = ..., camera_id: _Optional[str] = ..., track_id: _Optional[str] = ...) -> None: ...

class KeypointWindow(_message.Message):
    __slots__ = ("track", "sequence", "start_time", "end_time", "keypoints", "features", "quality", "body")
    TRACK_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    track: TrackRef
    sequence: int
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    keypoints: _types_pb2.KeypointTensor
    features: FeatureVector
    quality: float
    body: _types_pb2.BodyMeasures
    def __init__(self, track: _Optional[_Union[TrackRef, _Mapping]] = ..., sequence: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., keypoints: _Optional[_Union[_types_pb2.KeypointTensor, _Mapping]] = ..., features: _Optional[_Union[FeatureVector, _Mapping]] = ..., quality: _Optional[float] = ..., body: _Optional[_Union[_types_pb2.BodyMeasures, _Mapping]] = ...) -> None: ...

class FeatureVector(_message.Message):
    __slots__ = ("values", "model_version")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    model_version: str
    def __init__(self, values: _Optional[_Iterable[float]] = ..., model_version: _Optional[str] = ...) -> None: ...

class StreamIdentifyRequest(_message.Message):
    __slots__ = ("window",)
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    window: KeypointWindow
    def __init__(self, window: _Optional[_Union[KeypointWindow, _Mapping]] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("customer_id", "similarity")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    similarity: float
    def __init__(self, customer_id: _Optional[str] = ..., similarity: _Optional[float] = ...) -> None: ...

class TrackDecision(_message.Message):
    __slots__ = ("track", "window_sequence", "state", "customer_id", "confidence", "false_match_probability", "alternatives", "windows_used", "reason", "probable_customer_id")
    TRACK_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    FALSE_MATCH_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_USED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROBABLE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    track: TrackRef
    window_sequence: int
    state: DecisionState
    customer_id: str
    confidence: float
    false_match_probability: float
    alternatives: _containers.RepeatedCompositeFieldContainer[Candidate]
    windows_used: int
    reason: str
    probable_customer_id: str
    def __init__(self, track: _Optional[_Union[TrackRef, _Mapping]] = ..., window_sequence: _Optional[int] = ..., state: _Optional[_Union[DecisionState, str]] = ..., customer_id: _Optional[str] = ..., confidence: _Optional[float] = ..., false_match_probability: _Optional[float] = ..., alternatives: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., windows_used: _Optional[int] = ..., reason: _Optional[str] = ..., probable_customer_id: _Optional[str] = ...) -> None: ...

class TrackError(_message.Message):
    __slots__ = ("track", "window_sequence", "status")
    TRACK_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    track: TrackRef
    window_sequence: int
    status: _status_pb2.Status
    def __init__(self, track: _Optional[_Union[TrackRef, _Mapping]] = ..., window_sequence: _Optional[int] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class StreamIdentifyResponse(_message.Message):
    __slots__ = ("decision", "error")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    decision: TrackDecision
    error: TrackError
    def __init__(self, decision: _Optional[_Union[TrackDecision, _Mapping]] = ..., error: _Optional[_Union[TrackError, _Mapping]] = ...) -> None: ...

class IdentifyRequest(_message.Message):
    __slots__ = ("window", "all_stores")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    ALL_STORES_FIELD_NUMBER: _ClassVar[int]
    window: KeypointWindow
    all_stores: bool
    def __init__(self, window: _Optional[_Union[KeypointWindow, _Mapping]] = ..., all_stores: _Optional[bool] = ...) -> None: ...

class IdentifyResponse(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: TrackDecision
    def __init__(self, decision: _Optional[_Union[TrackDecision, _Mapping]] = ...) -> None: ...

class ProtectedTemplate(_message.Message):
    __slots__ = ("template_id", "values", "model_version", "quality", "body")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    values: _containers.RepeatedScalarFieldContainer[float]
    model_version: str
    quality: float
    body: _types_pb2.BodyMeasures
    def __init__(self, template_id: _Optional[str] = ..., values: _Optional[_Iterable[float]] = ..., model_version: _Optional[str] = ..., quality: _Optional[float] = ..., body: _Optional[_Union[_types_pb2.BodyMeasures, _Mapping]] = ...) -> None: ...

class UpsertTemplatesRequest(_message.Message):
    __slots__ = ("request_id", "customer_id", "store_ids", "templates", "keep_store_scopes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_IDS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    KEEP_STORE_SCOPES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    store_ids: _containers.RepeatedScalarFieldContainer[str]
    templates: _containers.RepeatedCompositeFieldContainer[ProtectedTemplate]
    keep_store_scopes: bool
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., store_ids: _Optional[_Iterable[str]] = ..., templates: _Optional[_Iterable[_Union[ProtectedTemplate, _Mapping]]] = ..., keep_store_scopes: _Optional[bool] = ...) -> None: ...

class UpsertTemplatesResponse(_message.Message):
    __slots__ = ("stored",)
    STORED_FIELD_NUMBER: _ClassVar[int]
    stored: int
    def __init__(self, stored: _Optional[int] = ...) -> None: ...

class RemoveTemplatesRequest(_message.Message):
    __slots__ = ("request_id", "customer_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class RemoveTemplatesResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class ExportHotCacheRequest(_message.Message):
    __slots__ = ("store_id", "max_customers", "recipient_public_key")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    max_customers: int
    recipient_public_key: bytes
    def __init__(self, store_id: _Optional[str] = ..., max_customers: _Optional[int] = ..., recipient_public_key: _Optional[bytes] = ...) -> None: ...

class ExportHotCacheResponse(_message.Message):
    __slots__ = ("sealed_templates", "customers", "expires_at", "ephemeral_public_key")
    SEALED_TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    sealed_templates: bytes
    customers: int
    expires_at: _timestamp_pb2.Timestamp
    ephemeral_public_key: bytes
    def __init__(self, sealed_templates: _Optional[bytes] = ..., customers: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ephemeral_public_key: _Optional[bytes] = ...) -> None: ...

class HotCache(_message.Message):
    __slots__ = ("store_id", "customers", "expires_at", "query_transform_secret", "model_version", "cameras")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    QUERY_TRANSFORM_SECRET_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    customers: _containers.RepeatedCompositeFieldContainer[HotCacheCustomer]
    expires_at: _timestamp_pb2.Timestamp
    query_transform_secret: bytes
    model_version: str
    cameras: _containers.RepeatedCompositeFieldContainer[CameraState]
    def __init__(self, store_id: _Optional[str] = ..., customers: _Optional[_Iterable[_Union[HotCacheCustomer, _Mapping]]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., query_transform_secret: _Optional[bytes] = ..., model_version: _Optional[str] = ..., cameras: _Optional[_Iterable[_Union[CameraState, _Mapping]]] = ...) -> None: ...

class CameraState(_message.Message):
    __slots__ = ("camera_id", "drift_mean", "drift_walkers", "drift_adapted", "statistics_mean", "statistics_variance", "statistics_windows", "statistics_walkers")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    DRIFT_MEAN_FIELD_NUMBER: _ClassVar[int]
    DRIFT_WALKERS_FIELD_NUMBER: _ClassVar[int]
    DRIFT_ADAPTED_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_MEAN_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_VARIANCE_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_WALKERS_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    drift_mean: _containers.RepeatedScalarFieldContainer[float]
    drift_walkers: int
    drift_adapted: bool
    statistics_mean: _containers.RepeatedScalarFieldContainer[float]
    statistics_variance: _containers.RepeatedScalarFieldContainer[float]
    statistics_windows: int
    statistics_walkers: int
    def __init__(self, camera_id: _Optional[str] = ..., drift_mean: _Optional[_Iterable[float]] = ..., drift_walkers: _Optional[int] = ..., drift_adapted: _Optional[bool] = ..., statistics_mean: _Optional[_Iterable[float]] = ..., statistics_variance: _Optional[_Iterable[float]] = ..., statistics_windows: _Optional[int] = ..., statistics_walkers: _Optional[int] = ...) -> None: ...

class HotCacheCustomer(_message.Message):
    __slots__ = ("customer_id", "templates", "identifications")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    IDENTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    templates: _containers.RepeatedCompositeFieldContainer[ProtectedTemplate]
    identifications: int
    def __init__(self, customer_id: _Optional[str] = ..., templates: _Optional[_Iterable[_Union[ProtectedTemplate, _Mapping]]] = ..., identifications: _Optional[int] = ...) -> None: ...
