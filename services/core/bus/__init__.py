"""NATS JetStream bus layer: connection, streams, typed publish/consume, run registry.

>>> bus = await connect(url)                                   # doctest: +SKIP
>>> await bus.publish_locs("run1", table, seq=0)                # split to fit max_payload
>>> async with bus.consumer("locs", "clusterer") as consumer:  # shared by replicas
...     await consumer.run(handle, until_complete="run1")

Subjects ``pnt.<run>.<kind>``, one stream per kind (`subjects`); splitting, tiling and
validation (`codec`); publishing with backpressure (`connection`); durable consumers
with dead letters and dedupe (`consumer`); KV run registry and artefacts (`registry`).
"""

from pointillist.core.bus.codec import (
    assemble_tiles,
    frames_from_proto,
    frames_to_proto,
    particles_from_proto,
    particles_to_proto,
    parts_complete,
)
from pointillist.core.bus.connection import (
    Bus,
    Pipeline,
    PublishResult,
    connect,
    derive_msg_id,
)
from pointillist.core.bus.consumer import Consumer, ConsumerStats, Delivery, SeqTracker
from pointillist.core.bus.registry import ArtefactInfo, ArtefactStore, RunRegistry
from pointillist.core.bus.subjects import (
    KINDS,
    BusConfig,
    StreamLimits,
    parse_subject,
    stream_name,
    subject,
    validate_run_id,
)

__all__ = [
    "KINDS",
    "ArtefactInfo",
    "ArtefactStore",
    "Bus",
    "BusConfig",
    "Consumer",
    "ConsumerStats",
    "Delivery",
    "Pipeline",
    "PublishResult",
    "RunRegistry",
    "SeqTracker",
    "StreamLimits",
    "assemble_tiles",
    "connect",
    "derive_msg_id",
    "frames_from_proto",
    "frames_to_proto",
    "parse_subject",
    "particles_from_proto",
    "particles_to_proto",
    "parts_complete",
    "stream_name",
    "subject",
    "validate_run_id",
]
