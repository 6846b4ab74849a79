from google.protobuf import struct_pb2 as _struct_pb2
from pointillist.v1 import frames_pb2 as _frames_pb2
from pointillist.v1 import particles_pb2 as _particles_pb2
from pointillist.v1 import run_pb2 as _run_pb2
from pointillist.v1 import table_pb2 as _table_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SimulationRequest(_message.Message):
    __slots__ = ("params", "seed")
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    params: _struct_pb2.Struct
    seed: int
    def __init__(self, params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., seed: _Optional[int] = ...) -> None: ...

class AcquisitionRequest(_message.Message):
    __slots__ = ("run_id", "frames", "frame_rate_hz", "frames_per_batch", "publish_ground_truth")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FRAME_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_BATCH_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_GROUND_TRUTH_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    frames: SimulationRequest
    frame_rate_hz: float
    frames_per_batch: int
    publish_ground_truth: bool
    def __init__(self, run_id: _Optional[str] = ..., frames: _Optional[_Union[SimulationRequest, _Mapping]] = ..., frame_rate_hz: _Optional[float] = ..., frames_per_batch: _Optional[int] = ..., publish_ground_truth: _Optional[bool] = ...) -> None: ...

class DatasetRequest(_message.Message):
    __slots__ = ("run_id", "kind", "simulation")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    kind: str
    simulation: SimulationRequest
    def __init__(self, run_id: _Optional[str] = ..., kind: _Optional[str] = ..., simulation: _Optional[_Union[SimulationRequest, _Mapping]] = ...) -> None: ...

class RunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...
