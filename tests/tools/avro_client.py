#!/usr/bin/env python3
"""A team's producer and consumer, as they would write them: confluent-kafka
with its stock AvroSerializer / AvroDeserializer and SchemaRegistryClient.
The system tests use it to check that refstream interoperates with them
(docs/events.md §2). Run with the interpreter of scripts/pyenv.sh.

    avro_client.py serialize --registry URL [--auth U:P] --topic T --schema FILE
                             --out DIR < records.jsonl
        One file per JSON line (DIR/0, DIR/1, ...): the record serialized with
        the writer schema FILE (registered under "<T>-value" by the
        serializer, as auto.register.schemas does). Prints the schema id.
    avro_client.py consume --brokers B --registry URL [--auth U:P] --topic T
                           --count N [--timeout S]
        Reads N records from the beginning of T and prints each value decoded
        by AvroDeserializer as one JSON line (timestamps as epoch
        milliseconds), with the writer's schema id under "_schema_id".
"""

import argparse
import datetime
import json
import struct
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def registry(args):
    """The stock registry client for the arguments."""
    conf = {"url": args.registry}
    if args.auth:
        conf["basic.auth.user.info"] = args.auth
    return SchemaRegistryClient(conf)


def serialize(args):
    """Serializes stdin's JSON lines into files of args.out."""
    schema = Path(args.schema).read_text(encoding="utf-8")
    ser = AvroSerializer(registry(args), schema)
    ctx = SerializationContext(args.topic, MessageField.VALUE)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    schema_id = None
    for i, line in enumerate(sys.stdin):
        data = ser(json.loads(line), ctx)
        (out / str(i)).write_bytes(data)
        schema_id = struct.unpack(">I", data[1:5])[0]
    print(schema_id)


def plain(value):
    """JSON-able form of a deserialized value."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def consume(args):
    """Prints args.count decoded records of args.topic."""
    de = AvroDeserializer(registry(args))
    c = Consumer({"bootstrap.servers": args.brokers, "group.id": f"avro-client-{time.time_ns()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([args.topic])
    seen, deadline = 0, time.monotonic() + args.timeout
    try:
        while seen < args.count and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            value = plain(de(m.value(), SerializationContext(args.topic, MessageField.VALUE)))
            value["_schema_id"] = struct.unpack(">I", m.value()[1:5])[0]
            print(json.dumps(value, sort_keys=True))
            seen += 1
    finally:
        c.close()
    if seen < args.count:
        sys.exit(f"avro_client: {seen} of {args.count} records of {args.topic} "
                 f"within {args.timeout} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serialize")
    c = sub.add_parser("consume")
    for p in (s, c):
        p.add_argument("--registry", required=True)
        p.add_argument("--auth")
        p.add_argument("--topic", required=True)
    s.add_argument("--schema", required=True)
    s.add_argument("--out", required=True)
    c.add_argument("--brokers", required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--timeout", type=float, default=30)
    args = ap.parse_args()
    (serialize if args.cmd == "serialize" else consume)(args)


if __name__ == "__main__":
    main()
