from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Money(_message.Message):
    __slots__ = ("currency_code", "minor_units")
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    MINOR_UNITS_FIELD_NUMBER: _ClassVar[int]
    currency_code: str
    minor_units: int
    def __init__(self, currency_code: _Optional[str] = ..., minor_units: _Optional[int] = ...) -> None: ...

class KeypointTensor(_message.Message):
    __slots__ = ("frames", "joints", "xyc", "fps")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    JOINTS_FIELD_NUMBER: _ClassVar[int]
    XYC_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    frames: int
    joints: int
    xyc: _containers.RepeatedScalarFieldContainer[float]
    fps: float
    def __init__(self, frames: _Optional[int] = ..., joints: _Optional[int] = ..., xyc: _Optional[_Iterable[float]] = ..., fps: _Optional[float] = ...) -> None: ...

class BodyMeasures(_message.Message):
    __slots__ = ("shoulder_height_m", "hip_height_m")
    SHOULDER_HEIGHT_M_FIELD_NUMBER: _ClassVar[int]
    HIP_HEIGHT_M_FIELD_NUMBER: _ClassVar[int]
    shoulder_height_m: float
    hip_height_m: float
    def __init__(self, shoulder_height_m: _Optional[float] = ..., hip_height_m: _Optional[float] = ...) -> None: ...
