from google.protobuf import struct_pb2 as _struct_pb2
from pointillist.v1 import table_pb2 as _table_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClusterRequest(_message.Message):
    __slots__ = ("localizations", "method", "params")
    LOCALIZATIONS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    localizations: _table_pb2.LocalizationBatch
    method: str
    params: _struct_pb2.Struct
    def __init__(self, localizations: _Optional[_Union[_table_pb2.LocalizationBatch, _Mapping]] = ..., method: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ClusterResponse(_message.Message):
    __slots__ = ("localizations", "clusters", "n_clusters", "method", "class_names", "seconds")
    LOCALIZATIONS_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    N_CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    localizations: _table_pb2.LocalizationBatch
    clusters: _table_pb2.LocalizationBatch
    n_clusters: int
    method: str
    class_names: _containers.RepeatedScalarFieldContainer[str]
    seconds: float
    def __init__(self, localizations: _Optional[_Union[_table_pb2.LocalizationBatch, _Mapping]] = ..., clusters: _Optional[_Union[_table_pb2.LocalizationBatch, _Mapping]] = ..., n_clusters: _Optional[int] = ..., method: _Optional[str] = ..., class_names: _Optional[_Iterable[str]] = ..., seconds: _Optional[float] = ...) -> None: ...
