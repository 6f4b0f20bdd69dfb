import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LinkState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINK_STATE_UNSPECIFIED: _ClassVar[LinkState]
    LINK_STATE_ONLINE: _ClassVar[LinkState]
    LINK_STATE_OFFLINE: _ClassVar[LinkState]
LINK_STATE_UNSPECIFIED: LinkState
LINK_STATE_ONLINE: LinkState
LINK_STATE_OFFLINE: LinkState

class GetEdgeStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CameraStatus(_message.Message):
    __slots__ = ("camera_id", "source", "frames_per_second", "active_tracks", "frames", "stopped", "windows", "windows_with_body_measures", "body_measures_off")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_TRACKS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_WITH_BODY_MEASURES_FIELD_NUMBER: _ClassVar[int]
    BODY_MEASURES_OFF_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    source: str
    frames_per_second: float
    active_tracks: int
    frames: int
    stopped: str
    windows: int
    windows_with_body_measures: int
    body_measures_off: str
    def __init__(self, camera_id: _Optional[str] = ..., source: _Optional[str] = ..., frames_per_second: _Optional[float] = ..., active_tracks: _Optional[int] = ..., frames: _Optional[int] = ..., stopped: _Optional[str] = ..., windows: _Optional[int] = ..., windows_with_body_measures: _Optional[int] = ..., body_measures_off: _Optional[str] = ...) -> None: ...

class HotCacheStatus(_message.Message):
    __slots__ = ("customers", "fetched_at", "expires_at", "windows_identified_offline")
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    FETCHED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_IDENTIFIED_OFFLINE_FIELD_NUMBER: _ClassVar[int]
    customers: int
    fetched_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    windows_identified_offline: int
    def __init__(self, customers: _Optional[int] = ..., fetched_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., windows_identified_offline: _Optional[int] = ...) -> None: ...

class GetEdgeStatusResponse(_message.Message):
    __slots__ = ("store_id", "link", "cameras", "queued_events", "since", "hot_cache", "tracks_merged_across_cameras")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    HOT_CACHE_FIELD_NUMBER: _ClassVar[int]
    TRACKS_MERGED_ACROSS_CAMERAS_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    link: LinkState
    cameras: _containers.RepeatedCompositeFieldContainer[CameraStatus]
    queued_events: int
    since: _timestamp_pb2.Timestamp
    hot_cache: HotCacheStatus
    tracks_merged_across_cameras: int
    def __init__(self, store_id: _Optional[str] = ..., link: _Optional[_Union[LinkState, str]] = ..., cameras: _Optional[_Iterable[_Union[CameraStatus, _Mapping]]] = ..., queued_events: _Optional[int] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hot_cache: _Optional[_Union[HotCacheStatus, _Mapping]] = ..., tracks_merged_across_cameras: _Optional[int] = ...) -> None: ...
