"""Prometheus metrics of the simulator service."""

from prometheus_client import Counter, Gauge

FRAMES_PUBLISHED = Counter(
    "pointillist_simulator_frames_published_total", "Camera frames published to the bus"
)
LOCALIZATIONS_PUBLISHED = Counter(
    "pointillist_simulator_localizations_published_total",
    "Simulated localizations published to the bus, by data kind",
    ["kind"],
)
ACQUISITIONS_ACTIVE = Gauge(
    "pointillist_simulator_acquisitions_active", "Acquisitions currently being streamed"
)
RUNS_FINISHED = Counter(
    "pointillist_simulator_runs_finished_total",
    "Simulator runs finished, by final state",
    ["state"],
)
