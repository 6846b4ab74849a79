"""Prometheus metrics of the localizer service."""

from prometheus_client import Counter, Histogram

FRAMES = Counter(
    "pointillist_localizer_frames_total", "Camera frames localized", ["method", "path"]
)
LOCALIZATIONS = Counter(
    "pointillist_localizer_localizations_total", "Localizations produced", ["method", "path"]
)
BATCH_SECONDS = Histogram(
    "pointillist_localizer_batch_seconds",
    "Time to localize one frame batch (decode + localize + encode)",
    ["method", "path"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REJECTED = Counter(
    "pointillist_localizer_rejected_total", "Frame batches rejected as invalid", ["path"]
)
