"""The Sparkplug B payload messages citytel reads, described to the protobuf runtime.

Written here from the Eclipse Sparkplug 3.0 specification's description of the payload
(message, field numbers and types), not from a vendor's ``.proto``: only what citytel
needs. Fields left out -- metric metadata (8), properties (9), DataSet (17), Template
(18), extensions -- are skipped by the runtime as unknown fields, so such metrics simply
have no value here. In ``.proto`` form::

    syntax = "proto2";
    package citytel.sparkplug_b;
    message Payload {
      optional uint64 timestamp = 1;
      repeated Metric metrics = 2;
      optional uint64 seq = 3;
      optional string uuid = 4;
      optional bytes body = 5;
      message Metric {
        optional string name = 1;
        optional uint64 alias = 2;
        optional uint64 timestamp = 3;
        optional uint32 datatype = 4;
        optional bool is_historical = 5;
        optional bool is_transient = 6;
        optional bool is_null = 7;
        oneof value {
          uint32 int_value = 10;
          uint64 long_value = 11;
          float float_value = 12;
          double double_value = 13;
          bool boolean_value = 14;
          string string_value = 15;
          bytes bytes_value = 16;
        }
      }
    }
"""

from __future__ import annotations

from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

_PAYLOAD_FIELDS: Final = (
    ("timestamp", 1, _F.TYPE_UINT64),
    ("metrics", 2, _F.TYPE_MESSAGE),
    ("seq", 3, _F.TYPE_UINT64),
    ("uuid", 4, _F.TYPE_STRING),
    ("body", 5, _F.TYPE_BYTES),
)
_METRIC_FIELDS: Final = (
    ("name", 1, _F.TYPE_STRING),
    ("alias", 2, _F.TYPE_UINT64),
    ("timestamp", 3, _F.TYPE_UINT64),
    ("datatype", 4, _F.TYPE_UINT32),
    ("is_historical", 5, _F.TYPE_BOOL),
    ("is_transient", 6, _F.TYPE_BOOL),
    ("is_null", 7, _F.TYPE_BOOL),
)
_VALUE_FIELDS: Final = (
    ("int_value", 10, _F.TYPE_UINT32),
    ("long_value", 11, _F.TYPE_UINT64),
    ("float_value", 12, _F.TYPE_FLOAT),
    ("double_value", 13, _F.TYPE_DOUBLE),
    ("boolean_value", 14, _F.TYPE_BOOL),
    ("string_value", 15, _F.TYPE_STRING),
    ("bytes_value", 16, _F.TYPE_BYTES),
)

PACKAGE: Final = "citytel.sparkplug_b"


def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="citytel/sparkplug_b.proto", package=PACKAGE, syntax="proto2"
    )
    payload = file.message_type.add(name="Payload")
    for name, number, kind in _PAYLOAD_FIELDS:
        label = _REPEATED if name == "metrics" else _OPTIONAL
        field = payload.field.add(name=name, number=number, type=kind, label=label)
        if kind == _F.TYPE_MESSAGE:
            field.type_name = f".{PACKAGE}.Payload.Metric"
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    for name, number, kind in _METRIC_FIELDS:
        metric.field.add(name=name, number=number, type=kind, label=_OPTIONAL)
    for name, number, kind in _VALUE_FIELDS:
        metric.field.add(name=name, number=number, type=kind, label=_OPTIONAL, oneof_index=0)
    return file


def _classes() -> tuple[type[Any], type[Any]]:
    # A private pool: no clash with any other Sparkplug description loaded in the process.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file())
    payload = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Payload"))
    metric = message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{PACKAGE}.Payload.Metric")
    )
    return payload, metric


Payload, Metric = _classes()
"""The message classes: ``Payload.FromString(buf)``, ``Payload(metrics=[...])``."""


class DataType:
    """Sparkplug B metric datatypes (specification, "Datatypes")."""

    INT8, INT16, INT32, INT64 = 1, 2, 3, 4
    UINT8, UINT16, UINT32, UINT64 = 5, 6, 7, 8
    FLOAT, DOUBLE, BOOLEAN, STRING = 9, 10, 11, 12
    DATETIME, TEXT = 13, 14


SIGNED_BITS: Final = {DataType.INT8: 8, DataType.INT16: 16, DataType.INT32: 32, DataType.INT64: 64}
NUMERIC: Final = frozenset(range(1, 12))
"""Int8 .. Boolean: the datatypes whose values are numbers citytel can store."""
