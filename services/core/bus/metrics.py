"""Prometheus metrics of the bus layer (default registry), labelled by data kind."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PUBLISHED_MESSAGES = Counter(
    "pointillist_bus_published_messages",
    "Messages stored by JetStream (parts and tiles count one each), by kind.",
    ["kind"],
)
PUBLISHED_BYTES = Counter(
    "pointillist_bus_published_bytes",
    "Payload bytes stored by JetStream, by kind.",
    ["kind"],
)
PUBLISHED_ITEMS = Counter(
    "pointillist_bus_published_items",
    "Items published: localization rows, frames, or 1 per event, by kind.",
    ["kind"],
)
PUBLISH_DUPLICATES = Counter(
    "pointillist_bus_publish_duplicates",
    "Publishes JetStream recognised as duplicates by Nats-Msg-Id (and did not store again).",
    ["kind"],
)
PUBLISH_BACKPRESSURE = Counter(
    "pointillist_bus_publish_backpressure",
    "Publishes held back because the stream was full (each held message counts once).",
    ["kind"],
)
PUBLISH_BACKPRESSURE_SECONDS = Counter(
    "pointillist_bus_publish_backpressure_seconds",
    "Seconds publishers spent waiting for room in a full stream.",
    ["kind"],
)
PUBLISH_RETRIES = Counter(
    "pointillist_bus_publish_retries",
    "Publish attempts repeated after a timeout or a missing stream response.",
    ["kind"],
)
CONSUMED_MESSAGES = Counter(
    "pointillist_bus_consumed_messages",
    "Messages taken from a consumer, by kind and outcome (ok, duplicate, dead, retry).",
    ["kind", "outcome"],
)
CONSUMED_ITEMS = Counter(
    "pointillist_bus_consumed_items",
    "Items (rows, frames) in messages handled successfully, by kind.",
    ["kind"],
)
DEAD_LETTERS = Counter(
    "pointillist_bus_dead_letters",
    "Messages sent to pnt.<run>.dead, by kind and cause (invalid, handler, max_deliver).",
    ["kind", "cause"],
)
SEQ_GAPS = Counter(
    "pointillist_bus_seq_gaps",
    "Sequence numbers skipped when a higher seq arrived first (informational: replicas "
    "share a consumer, so each sees a subset).",
    ["kind"],
)
HANDLER_SECONDS = Histogram(
    "pointillist_bus_handler_seconds",
    "Time a consumer's handler took per message, by kind.",
    ["kind"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0),
)
CONSUMER_PENDING = Gauge(
    "pointillist_bus_consumer_pending",
    "Messages in the stream not yet delivered to this durable consumer (queue lag).",
    ["kind", "durable"],
)
CONSUMER_ACK_PENDING = Gauge(
    "pointillist_bus_consumer_ack_pending",
    "Messages delivered to this durable consumer (any replica) and not yet acked.",
    ["kind", "durable"],
)
