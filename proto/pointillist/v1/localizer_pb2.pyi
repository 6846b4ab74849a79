from pointillist.v1 import frames_pb2 as _frames_pb2
from pointillist.v1 import table_pb2 as _table_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
