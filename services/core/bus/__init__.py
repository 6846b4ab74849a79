"""NATS JetStream bus layer: connection, streams, typed publish/consume, registry."""
