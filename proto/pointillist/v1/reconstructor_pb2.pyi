from google.protobuf import struct_pb2 as _struct_pb2
from pointillist.v1 import particles_pb2 as _particles_pb2
from pointillist.v1 import run_pb2 as _run_pb2
from pointillist.v1 import simulator_pb2 as _simulator_pb2
from pointillist.v1 import table_pb2 as _table_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReconstructRequest(_message.Message):
    __slots__ = ("particles", "params", "truth", "name")
    PARTICLES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TRUTH_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    particles: _particles_pb2.ParticleSet
    params: _struct_pb2.Struct
    truth: _table_pb2.LocalizationBatch
    name: str
    def __init__(self, particles: _Optional[_Union[_particles_pb2.ParticleSet, _Mapping]] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., truth: _Optional[_Union[_table_pb2.LocalizationBatch, _Mapping]] = ..., name: _Optional[str] = ...) -> None: ...

class ReconEpoch(_message.Message):
    __slots__ = ("run", "runs", "epoch", "epochs", "done", "total", "loss", "sigma_in_nm", "sigma_out_nm", "images", "seconds", "images_per_s")
    RUN_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    SIGMA_IN_NM_FIELD_NUMBER: _ClassVar[int]
    SIGMA_OUT_NM_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    IMAGES_PER_S_FIELD_NUMBER: _ClassVar[int]
    run: int
    runs: int
    epoch: int
    epochs: int
    done: int
    total: int
    loss: float
    sigma_in_nm: float
    sigma_out_nm: float
    images: int
    seconds: float
    images_per_s: float
    def __init__(self, run: _Optional[int] = ..., runs: _Optional[int] = ..., epoch: _Optional[int] = ..., epochs: _Optional[int] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., loss: _Optional[float] = ..., sigma_in_nm: _Optional[float] = ..., sigma_out_nm: _Optional[float] = ..., images: _Optional[int] = ..., seconds: _Optional[float] = ..., images_per_s: _Optional[float] = ...) -> None: ...

class ReconEvaluation(_message.Message):
    __slots__ = ("rmsd_nm", "mirrored", "baseline_rmsd_nm", "baseline_sd_nm", "ratio")
    RMSD_NM_FIELD_NUMBER: _ClassVar[int]
    MIRRORED_FIELD_NUMBER: _ClassVar[int]
    BASELINE_RMSD_NM_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SD_NM_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    rmsd_nm: float
    mirrored: bool
    baseline_rmsd_nm: float
    baseline_sd_nm: float
    ratio: float
    def __init__(self, rmsd_nm: _Optional[float] = ..., mirrored: _Optional[bool] = ..., baseline_rmsd_nm: _Optional[float] = ..., baseline_sd_nm: _Optional[float] = ..., ratio: _Optional[float] = ...) -> None: ...

class ReconRun(_message.Message):
    __slots__ = ("run", "seed", "history", "evaluation", "seconds", "stopped_early", "device")
    RUN_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    STOPPED_EARLY_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    run: int
    seed: int
    history: _containers.RepeatedCompositeFieldContainer[ReconEpoch]
    evaluation: ReconEvaluation
    seconds: float
    stopped_early: bool
    device: str
    def __init__(self, run: _Optional[int] = ..., seed: _Optional[int] = ..., history: _Optional[_Iterable[_Union[ReconEpoch, _Mapping]]] = ..., evaluation: _Optional[_Union[ReconEvaluation, _Mapping]] = ..., seconds: _Optional[float] = ..., stopped_early: _Optional[bool] = ..., device: _Optional[str] = ...) -> None: ...

class ReconConsensus(_message.Message):
    __slots__ = ("medoid", "spread_nm", "outliers", "pairwise_rmsd_nm", "best")
    MEDOID_FIELD_NUMBER: _ClassVar[int]
    SPREAD_NM_FIELD_NUMBER: _ClassVar[int]
    OUTLIERS_FIELD_NUMBER: _ClassVar[int]
    PAIRWISE_RMSD_NM_FIELD_NUMBER: _ClassVar[int]
    BEST_FIELD_NUMBER: _ClassVar[int]
    medoid: int
    spread_nm: float
    outliers: _containers.RepeatedScalarFieldContainer[int]
    pairwise_rmsd_nm: _containers.RepeatedScalarFieldContainer[float]
    best: int
    def __init__(self, medoid: _Optional[int] = ..., spread_nm: _Optional[float] = ..., outliers: _Optional[_Iterable[int]] = ..., pairwise_rmsd_nm: _Optional[_Iterable[float]] = ..., best: _Optional[int] = ...) -> None: ...

class SkippedView(_message.Message):
    __slots__ = ("particle", "reason")
    PARTICLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    particle: int
    reason: str
    def __init__(self, particle: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ReconResult(_message.Message):
    __slots__ = ("points", "poses", "n_views", "runs", "consensus", "skipped", "artefacts", "seconds", "device", "summary")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    POSES_FIELD_NUMBER: _ClassVar[int]
    N_VIEWS_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    CONSENSUS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    ARTEFACTS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    points: _table_pb2.LocalizationBatch
    poses: _containers.RepeatedCompositeFieldContainer[_table_pb2.Column]
    n_views: int
    runs: _containers.RepeatedCompositeFieldContainer[ReconRun]
    consensus: ReconConsensus
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedView]
    artefacts: _containers.RepeatedScalarFieldContainer[str]
    seconds: float
    device: str
    summary: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, points: _Optional[_Union[_table_pb2.LocalizationBatch, _Mapping]] = ..., poses: _Optional[_Iterable[_Union[_table_pb2.Column, _Mapping]]] = ..., n_views: _Optional[int] = ..., runs: _Optional[_Iterable[_Union[ReconRun, _Mapping]]] = ..., consensus: _Optional[_Union[ReconConsensus, _Mapping]] = ..., skipped: _Optional[_Iterable[_Union[SkippedView, _Mapping]]] = ..., artefacts: _Optional[_Iterable[str]] = ..., seconds: _Optional[float] = ..., device: _Optional[str] = ..., summary: _Optional[_Iterable[str]] = ...) -> None: ...

class ReconstructUpdate(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: ReconEpoch
    result: ReconResult
    def __init__(self, progress: _Optional[_Union[ReconEpoch, _Mapping]] = ..., result: _Optional[_Union[ReconResult, _Mapping]] = ...) -> None: ...
