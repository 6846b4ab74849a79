"""Generated protobuf/gRPC code for the pointillist.v1 schemas (scripts/gen_proto.py)."""
