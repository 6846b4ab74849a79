from pointillist.v1 import table_pb2 as _table_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CameraModel(_message.Message):
    __slots__ = ("kind", "baseline_adu", "e_per_adu", "em_gain", "quantum_efficiency", "read_noise_e", "pixel_size_nm")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[CameraModel.Kind]
        KIND_EMCCD: _ClassVar[CameraModel.Kind]
        KIND_SCMOS: _ClassVar[CameraModel.Kind]
        KIND_CCD: _ClassVar[CameraModel.Kind]
    KIND_UNSPECIFIED: CameraModel.Kind
    KIND_EMCCD: CameraModel.Kind
    KIND_SCMOS: CameraModel.Kind
    KIND_CCD: CameraModel.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    BASELINE_ADU_FIELD_NUMBER: _ClassVar[int]
    E_PER_ADU_FIELD_NUMBER: _ClassVar[int]
    EM_GAIN_FIELD_NUMBER: _ClassVar[int]
    QUANTUM_EFFICIENCY_FIELD_NUMBER: _ClassVar[int]
    READ_NOISE_E_FIELD_NUMBER: _ClassVar[int]
    PIXEL_SIZE_NM_FIELD_NUMBER: _ClassVar[int]
    kind: CameraModel.Kind
    baseline_adu: float
    e_per_adu: float
    em_gain: float
    quantum_efficiency: float
    read_noise_e: float
    pixel_size_nm: float
    def __init__(self, kind: _Optional[_Union[CameraModel.Kind, str]] = ..., baseline_adu: _Optional[float] = ..., e_per_adu: _Optional[float] = ..., em_gain: _Optional[float] = ..., quantum_efficiency: _Optional[float] = ..., read_noise_e: _Optional[float] = ..., pixel_size_nm: _Optional[float] = ...) -> None: ...

class Tile(_message.Message):
    __slots__ = ("row_start", "rows", "index", "count")
    ROW_START_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    row_start: int
    rows: int
    index: int
    count: int
    def __init__(self, row_start: _Optional[int] = ..., rows: _Optional[int] = ..., index: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class FrameBatch(_message.Message):
    __slots__ = ("run_id", "seq", "first_frame", "n_frames", "height", "width", "dtype", "data", "camera", "tile", "tile_refs", "tile_stream")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FIRST_FRAME_FIELD_NUMBER: _ClassVar[int]
    N_FRAMES_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    TILE_FIELD_NUMBER: _ClassVar[int]
    TILE_REFS_FIELD_NUMBER: _ClassVar[int]
    TILE_STREAM_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    seq: int
    first_frame: int
    n_frames: int
    height: int
    width: int
    dtype: _table_pb2.DType
    data: bytes
    camera: CameraModel
    tile: Tile
    tile_refs: _containers.RepeatedScalarFieldContainer[int]
    tile_stream: str
    def __init__(self, run_id: _Optional[str] = ..., seq: _Optional[int] = ..., first_frame: _Optional[int] = ..., n_frames: _Optional[int] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., dtype: _Optional[_Union[_table_pb2.DType, str]] = ..., data: _Optional[bytes] = ..., camera: _Optional[_Union[CameraModel, _Mapping]] = ..., tile: _Optional[_Union[Tile, _Mapping]] = ..., tile_refs: _Optional[_Iterable[int]] = ..., tile_stream: _Optional[str] = ...) -> None: ...
