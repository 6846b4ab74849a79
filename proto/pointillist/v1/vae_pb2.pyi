from google.protobuf import struct_pb2 as _struct_pb2
from pointillist.v1 import particles_pb2 as _particles_pb2
from pointillist.v1 import table_pb2 as _table_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SkippedParticle(_message.Message):
    __slots__ = ("particle", "reason")
    PARTICLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    particle: int
    reason: str
    def __init__(self, particle: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class EpochLoss(_message.Message):
    __slots__ = ("epoch", "loss", "reconstruction", "kld", "beta", "seconds")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    RECONSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    KLD_FIELD_NUMBER: _ClassVar[int]
    BETA_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    loss: float
    reconstruction: float
    kld: float
    beta: float
    seconds: float
    def __init__(self, epoch: _Optional[int] = ..., loss: _Optional[float] = ..., reconstruction: _Optional[float] = ..., kld: _Optional[float] = ..., beta: _Optional[float] = ..., seconds: _Optional[float] = ...) -> None: ...

class FitRequest(_message.Message):
    __slots__ = ("particles", "params", "analyze", "name")
    PARTICLES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    ANALYZE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    particles: _particles_pb2.ParticleSet
    params: _struct_pb2.Struct
    analyze: bool
    name: str
    def __init__(self, particles: _Optional[_Union[_particles_pb2.ParticleSet, _Mapping]] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., analyze: _Optional[bool] = ..., name: _Optional[str] = ...) -> None: ...

class FitResponse(_message.Message):
    __slots__ = ("latent", "model_artefact", "report_artefacts", "skipped", "history", "seconds", "device")
    LATENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_ARTEFACT_FIELD_NUMBER: _ClassVar[int]
    REPORT_ARTEFACTS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    latent: _table_pb2.LocalizationBatch
    model_artefact: str
    report_artefacts: _containers.RepeatedScalarFieldContainer[str]
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedParticle]
    history: _containers.RepeatedCompositeFieldContainer[EpochLoss]
    seconds: float
    device: str
    def __init__(self, latent: _Optional[_Union[_table_pb2.LocalizationBatch, _Mapping]] = ..., model_artefact: _Optional[str] = ..., report_artefacts: _Optional[_Iterable[str]] = ..., skipped: _Optional[_Iterable[_Union[SkippedParticle, _Mapping]]] = ..., history: _Optional[_Iterable[_Union[EpochLoss, _Mapping]]] = ..., seconds: _Optional[float] = ..., device: _Optional[str] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("particles", "model_artefact")
    PARTICLES_FIELD_NUMBER: _ClassVar[int]
    MODEL_ARTEFACT_FIELD_NUMBER: _ClassVar[int]
    particles: _particles_pb2.ParticleSet
    model_artefact: str
    def __init__(self, particles: _Optional[_Union[_particles_pb2.ParticleSet, _Mapping]] = ..., model_artefact: _Optional[str] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("latent", "skipped")
    LATENT_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    latent: _table_pb2.LocalizationBatch
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedParticle]
    def __init__(self, latent: _Optional[_Union[_table_pb2.LocalizationBatch, _Mapping]] = ..., skipped: _Optional[_Iterable[_Union[SkippedParticle, _Mapping]]] = ...) -> None: ...
