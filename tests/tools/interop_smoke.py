#!/usr/bin/env python3
"""Interoperability smoke test of the test Schema Registry (schema_registry.py)
with confluent-kafka-python's SchemaRegistryClient, AvroSerializer and
AvroDeserializer. No Kafka needed.

Run with the interpreter of scripts/pyenv.sh (tests/requirements.txt):
    "$(scripts/pyenv.sh)" tests/tools/interop_smoke.py
Starts the fixture with basic auth, serializes a PaymentEvent (the serializer
registers the schema under "<topic>-value"), decodes it back with and without
a reader schema that has an extra field, and checks the registry's errors
reach the client. Exits 0 if every check passed, 1 otherwise.
"""

import base64
import datetime
import json
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

TOOLS = Path(__file__).resolve().parent
SCHEMA_FILE = TOOLS.parent.parent / "schemas" / "PaymentEvent.avsc"
TOPIC = "payments"
USER_INFO = "smoke:s3cret"


class Fixture:
    """The registry fixture as a subprocess (context manager)."""

    def __init__(self, workdir):
        self.log_path = Path(workdir) / "registry.log"
        port_file = Path(workdir) / "port"
        control_file = Path(workdir) / "control"
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(TOOLS / "schema_registry.py"), "--port-file",
                 str(port_file), "--control-port-file", str(control_file),
                 "--basic-auth", USER_INFO], stderr=log)
        deadline = time.monotonic() + 10
        while not control_file.exists():  # written last
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("the registry fixture did not start: " + self.log_text())
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"
        self.control = f"http://127.0.0.1:{int(control_file.read_text())}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def get(self, path):
        """GET of an API path with the credentials, as JSON."""
        req = urllib.request.Request(self.url + path, headers={
            "Authorization": "Basic " + base64.b64encode(USER_INFO.encode()).decode()})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.load(resp)

    def stats(self):
        """The control listener's request counts."""
        with urllib.request.urlopen(self.control + "/stats", timeout=5) as resp:
            return json.load(resp)

    def log_text(self):
        """What the fixture logged so far."""
        return self.log_path.read_text(encoding="utf-8")


class Checks:
    """Counts and reports checks."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        """Records one check."""
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAILED: {what}")
        return ok


def sample_record(schema):
    """A PaymentEvent for `schema` (fields beyond the known ones take their
    default)."""
    known = {
        "event_id": "evt-1", "occurred_at": 1_700_000_000_123, "user_id": "u-1",
        "payment_id": "p-1", "amount_minor": 1999, "currency": "EUR", "kind": "CHARGE",
        "refund_of": None,
    }
    return {f["name"]: known[f["name"]] if f["name"] in known else f["default"]
            for f in schema["fields"]}


def decoded_form(record):
    """`record` as the deserializer returns it (timestamp-millis as datetime)."""
    out = dict(record)
    out["occurred_at"] = datetime.datetime.fromtimestamp(
        record["occurred_at"] / 1000, tz=datetime.timezone.utc)
    return out


def run(fx, c):
    """The checks against a running fixture `fx`."""
    writer = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    record = sample_record(writer)
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    conf = {"url": fx.url, "basic.auth.user.info": USER_INFO}

    data = AvroSerializer(SchemaRegistryClient(conf), json.dumps(writer))(record, ctx)
    c.check(data[:1] == b"\0", "Confluent framing: magic byte 0")
    (schema_id,) = struct.unpack(">I", data[1:5])
    latest = fx.get(f"/subjects/{TOPIC}-value/versions/latest")
    c.check(latest["id"] == schema_id and latest["version"] == 1,
            f"auto-registered under {TOPIC}-value as version 1 with the framed id: {latest}")

    again = AvroSerializer(SchemaRegistryClient(conf), json.dumps(writer))(record, ctx)
    c.check(again == data, "a second serializer gets the same id (no new version)")
    c.check(fx.get(f"/subjects/{TOPIC}-value/versions") == [1], "still one version")

    no_register = {"auto.register.schemas": False}
    looked_up = AvroSerializer(SchemaRegistryClient(conf), json.dumps(writer),
                               conf=no_register)(record, ctx)
    c.check(looked_up == data, "a serializer that looks the schema up gets the same id")
    try:
        AvroSerializer(SchemaRegistryClient(conf), json.dumps(writer), conf=no_register)(
            record, SerializationContext("unknown-topic", MessageField.VALUE))
        c.check(False, "looking up an unknown subject is an error")
    except SchemaRegistryError as e:
        c.check(e.http_status_code == 404 and e.error_code == 40401,
                f"looking up an unknown subject is 404/40401: {e}")
    latest_conf = {"auto.register.schemas": False, "use.latest.version": True}
    c.check(AvroSerializer(SchemaRegistryClient(conf), json.dumps(writer),
                           conf=latest_conf)(record, ctx) == data,
            "a serializer using the latest version gets the same id")

    decoded = AvroDeserializer(SchemaRegistryClient(conf))(data, ctx)
    c.check(decoded == decoded_form(record), f"decoded with the writer schema: {decoded}")

    reader = dict(writer, fields=writer["fields"] + [
        {"name": "smoke_extra", "type": "string", "default": "absent"}])
    decoded = AvroDeserializer(SchemaRegistryClient(conf), json.dumps(reader))(data, ctx)
    c.check(decoded == dict(decoded_form(record), smoke_extra="absent"),
            f"decoded with a reader schema with an extra field: {decoded}")

    incompatible = dict(writer, fields=writer["fields"] + [
        {"name": "smoke_required", "type": "string"}])
    try:
        AvroSerializer(SchemaRegistryClient(conf), json.dumps(incompatible))(
            dict(record, smoke_required="x"), ctx)
        c.check(False, "an incompatible schema is refused")
    except SchemaRegistryError as e:
        c.check(e.http_status_code == 409 and e.error_code == 409,
                f"an incompatible schema is refused with 409: {e}")

    bad_conf = dict(conf, **{"basic.auth.user.info": "smoke:wrong"})
    try:
        AvroDeserializer(SchemaRegistryClient(bad_conf))(data, ctx)
        c.check(False, "wrong credentials are refused")
    except SchemaRegistryError as e:
        c.check(e.http_status_code == 401 and e.error_code == 40101,
                f"wrong credentials are refused with 401/40101: {e}")

    try:
        AvroDeserializer(SchemaRegistryClient(conf))(b"\0\0\0\x03\xe7" + data[5:], ctx)
        c.check(False, "an unknown schema id is an error")
    except SchemaRegistryError as e:
        c.check(e.http_status_code == 404 and e.error_code == 40403,
                f"an unknown schema id is 404/40403: {e}")

    print("registry requests:", json.dumps(fx.stats()["requests"], sort_keys=True))


def main():
    """Runs the checks; returns the exit status."""
    c = Checks()
    with tempfile.TemporaryDirectory() as tmp, Fixture(tmp) as fx:
        try:
            run(fx, c)
        except Exception as e:  # report any failure as one failed check
            c.check(False, f"unexpected {type(e).__name__}: {e}")
        if c.failed:
            print("registry log:\n" + fx.log_text())
    print(f"interop_smoke: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
