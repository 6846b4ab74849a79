from pointillist.v1 import table_pb2 as _table_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ParticleSet(_message.Message):
    __slots__ = ("run_id", "seq", "part", "part_count", "localizations", "truth", "dimensions", "kind")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    PART_COUNT_FIELD_NUMBER: _ClassVar[int]
    LOCALIZATIONS_FIELD_NUMBER: _ClassVar[int]
    TRUTH_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    seq: int
    part: int
    part_count: int
    localizations: _table_pb2.LocalizationBatch
    truth: _containers.RepeatedCompositeFieldContainer[_table_pb2.Column]
    dimensions: int
    kind: str
    def __init__(self, run_id: _Optional[str] = ..., seq: _Optional[int] = ..., part: _Optional[int] = ..., part_count: _Optional[int] = ..., localizations: _Optional[_Union[_table_pb2.LocalizationBatch, _Mapping]] = ..., truth: _Optional[_Iterable[_Union[_table_pb2.Column, _Mapping]]] = ..., dimensions: _Optional[int] = ..., kind: _Optional[str] = ...) -> None: ...
