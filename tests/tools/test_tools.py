#!/usr/bin/env python3
"""Tests of the test tools: the Avro compatibility checker (avro_compat.py)
and the Schema Registry fixture (schema_registry.py), and the repository's
schema history check. Stdlib only:

    python3 tests/tools/test_tools.py
"""

import base64
import contextlib
import http.client
import json
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent.parent
sys.path.insert(0, str(TOOLS))

import avro_compat  # noqa: E402 (after the path is set)
from avro_compat import SchemaError, can_read, parse  # noqa: E402

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


def schema(value):
    """A parsed schema from a JSON value."""
    return parse(json.dumps(value))


def record(name, *fields, **attrs):
    """A record schema (JSON value) with (name, type[, default]) fields."""
    out = {"type": "record", "name": name, "fields": []}
    for f in fields:
        field = {"name": f[0], "type": f[1]}
        if len(f) > 2:
            field["default"] = f[2]
        out["fields"].append(field)
    out.update(attrs)
    return out


class ParseTest(unittest.TestCase):
    """avro_compat.parse accepts valid schemas and rejects invalid ones."""

    def invalid(self, value, fragment):
        text = value if isinstance(value, str) else json.dumps(value)
        with self.assertRaises(SchemaError) as cm:
            parse(text)
        self.assertIn(fragment, str(cm.exception))

    def test_primitives_and_logical_types(self):
        for name in avro_compat.PRIMITIVES:
            self.assertEqual(schema(name).type, name)
            self.assertEqual(schema({"type": name}).type, name)
        s = schema({"type": "long", "logicalType": "timestamp-millis"})
        self.assertIsInstance(s, avro_compat.Primitive)
        self.assertEqual(s.type, "long")

    def test_named_types_and_namespaces(self):
        s = schema({
            "type": "record", "name": "Outer", "namespace": "a.b", "fields": [
                {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["X", "Y"]}},
                {"name": "e2", "type": "E"},
                {"name": "e3", "type": "a.b.E"},
                {"name": "f", "type": {"type": "fixed", "name": "c.F", "size": 4}},
                {"name": "f2", "type": "c.F"},
                {"name": "g", "type": {"type": "fixed", "name": "G", "namespace": "", "size": 1}},
                {"name": "g2", "type": "G"},
                {"name": "arr", "type": {"type": "array", "items": "E"}},
            ]})
        self.assertEqual(s.fullname, "a.b.Outer")
        by_name = {f.name: f.schema for f in s.fields}
        self.assertEqual(by_name["e"].fullname, "a.b.E")
        self.assertIs(by_name["e2"], by_name["e"])
        self.assertIs(by_name["e3"], by_name["e"])
        self.assertEqual(by_name["f"].fullname, "c.F")
        self.assertIs(by_name["f2"], by_name["f"])
        self.assertEqual(by_name["g"].fullname, "G")
        self.assertIs(by_name["g2"], by_name["g"])
        self.assertIs(by_name["arr"].items, by_name["e"])

    def test_nested_definition_inherits_enclosing_namespace(self):
        s = schema(record("x.Outer", ("inner", record("Inner", ("v", "int"))),
                          ("again", "x.Inner")))
        self.assertEqual(s.fields[0].schema.fullname, "x.Inner")
        self.assertIs(s.fields[1].schema, s.fields[0].schema)

    def test_recursive_type(self):
        s = schema(record("Node", ("value", "int"), ("next", ["null", "Node"], None)))
        self.assertIs(s.fields[1].schema.branches[1], s)

    def test_aliases_are_full_names(self):
        s = schema({"type": "record", "name": "R", "namespace": "n", "aliases": ["Old", "o.P"],
                    "fields": [{"name": "a", "type": "int", "aliases": ["b"]}]})
        self.assertEqual(s.aliases, ["n.Old", "o.P"])
        self.assertEqual(s.fields[0].aliases, ["b"])

    def test_names_from_other_schemas(self):
        names = {}
        parse(json.dumps({"type": "fixed", "name": "m.Money", "size": 8}), names)
        s = parse(json.dumps(record("m.Payment", ("amount", "Money"))), names)
        self.assertEqual(s.fields[0].schema.fullname, "m.Money")
        self.assertIn("m.Payment", names)
        with self.assertRaises(SchemaError):
            parse(json.dumps(record("m.Payment", ("amount", "Money"))))

    def test_valid_defaults(self):
        fields = [
            ("n", "null", None), ("b", "boolean", True), ("i", "int", -2**31),
            ("l", "long", 2**63 - 1), ("f", "float", 1), ("d", "double", 1.5),
            ("s", "string", "x"), ("y", "bytes", "\u00ff\u0000"),
            ("e", {"type": "enum", "name": "E", "symbols": ["A", "B"]}, "B"),
            ("x", {"type": "fixed", "name": "F", "size": 2}, "ab"),
            ("a", {"type": "array", "items": "int"}, [1, 2]),
            ("m", {"type": "map", "values": "string"}, {"k": "v"}),
            ("u", ["null", "string"], None), ("u2", ["string", "null"], "x"),
            ("r", record("Sub", ("p", "int"), ("q", "int", 0)), {"p": 1}),
            ("t", {"type": "long", "logicalType": "timestamp-millis"}, 0),
        ]
        s = schema(record("AllDefaults", *fields))
        self.assertTrue(all(f.has_default for f in s.fields))

    def test_invalid_defaults(self):
        cases = [
            ("null", 0), ("boolean", 1), ("int", 2**31), ("int", 1.5), ("int", True),
            ("long", 2**63), ("long", "1"), ("float", "1.0"), ("double", None),
            ("string", None), ("bytes", "\u0100"),
            ({"type": "enum", "name": "E", "symbols": ["A"]}, "B"),
            ({"type": "fixed", "name": "F", "size": 2}, "abc"),
            ({"type": "array", "items": "int"}, ["x"]),
            ({"type": "array", "items": "int"}, 1),
            ({"type": "map", "values": "int"}, {"k": "v"}),
            (["null", "string"], "x"),  # a union's default is of its first branch
            (["string", "null"], None),
            (record("Sub", ("p", "int")), {}),
            (record("Sub", ("p", "int")), {"p": "x"}),
        ]
        for type_, default in cases:
            with self.subTest(type=type_, default=default):
                self.invalid(record("R", ("f", type_, default)), "invalid default")

    def test_invalid_schemas(self):
        cases = [
            ("{", "not valid JSON"),
            ("42", "must be a string, an array or an object"),
            ({"type": "nothing"}, "unknown type 'nothing'"),
            ({"name": "X"}, "needs a string 'type'"),
            (record("R", ("a", "Later")), "unknown type 'Later'"),
            (record("R", ("a", "int"), ("a", "long")), "two fields 'a'"),
            (record("R", ("a", record("R", ("b", "int")))), "defined twice"),
            (record("1R"), "invalid name"),
            (record("R", namespace="a..b"), "invalid namespace"),
            (record("int"), "may not be called 'int'"),
            (record("ns.string"), "may not be called 'string'"),
            ({"type": "record", "name": "R"}, "needs a 'fields' list"),
            ({"type": "record", "name": "R", "fields": [{"name": "a"}]}, "needs a 'type'"),
            ({"type": "record", "name": "R", "fields": [{"name": "a-b", "type": "int"}]},
             "invalid name"),
            ({"type": "record", "name": "R",
              "fields": [{"name": "a", "type": "int", "order": "up"}]}, "invalid 'order'"),
            ({"type": "enum", "name": "E", "symbols": ["A", "A"]}, "duplicate symbol"),
            ({"type": "enum", "name": "E", "symbols": ["A", "1"]}, "list of names"),
            ({"type": "enum", "name": "E", "symbols": ["A"], "default": "B"}, "not a symbol"),
            ({"type": "fixed", "name": "F", "size": -1}, "non-negative integer 'size'"),
            ({"type": "fixed", "name": "F"}, "non-negative integer 'size'"),
            ({"type": "array"}, "needs 'items'"),
            ({"type": "map"}, "needs 'values'"),
            (["null", ["int"]], "may not immediately contain a union"),
            (["int", "string", "int"], "contain 'int' twice"),
            (["null", {"type": "array", "items": "int"}, {"type": "array", "items": "long"}],
             "contain 'array' twice"),
            ([record("A"), "A"], "contain 'A' twice"),
        ]
        for value, fragment in cases:
            with self.subTest(schema=value):
                self.invalid(value, fragment)

    def test_named_types_of_different_names_in_one_union(self):
        s = schema([record("A"), record("B"), {"type": "enum", "name": "C", "symbols": ["X"]}])
        self.assertEqual([b.fullname for b in s.branches], ["A", "B", "C"])

    def test_repository_schemas_parse(self):
        files = sorted((REPO / "schemas").glob("**/*.avsc"))
        self.assertTrue(files)
        for path in files:
            with self.subTest(path=path.name):
                self.assertIsInstance(avro_compat.parse_file(path), avro_compat.Record)


class CanReadTest(unittest.TestCase):
    """avro_compat.can_read follows Avro's schema resolution rules; each rule
    is tried in both directions."""

    def readable(self, reader, writer):
        problems = can_read(schema(reader), schema(writer))
        self.assertEqual(problems, [], f"{reader} should read {writer}")

    def unreadable(self, reader, writer, fragment):
        problems = can_read(schema(reader), schema(writer))
        self.assertTrue(problems, f"{reader} should not read {writer}")
        self.assertTrue(any(fragment in p for p in problems), problems)

    def test_same_primitive(self):
        for name in avro_compat.PRIMITIVES:
            self.readable(name, name)
        self.unreadable("int", "string", "reader type int cannot read writer type string")
        self.unreadable("string", "int", "reader type string cannot read writer type int")
        self.unreadable("boolean", "int", "cannot read")
        self.unreadable("null", "string", "cannot read")

    def test_promotions(self):
        promotions = [("long", "int"), ("float", "int"), ("double", "int"),
                      ("float", "long"), ("double", "long"), ("double", "float")]
        for reader, writer in promotions:
            with self.subTest(reader=reader, writer=writer):
                self.readable(reader, writer)
                self.unreadable(writer, reader, "cannot read")
        self.readable("bytes", "string")
        self.readable("string", "bytes")
        self.unreadable("int", "double", "cannot read")

    def test_record_fields(self):
        v1 = record("R", ("a", "int"))
        with_default = record("R", ("a", "int"), ("b", "string", "x"))
        without_default = record("R", ("a", "int"), ("b", "string"))
        self.readable(with_default, v1)      # a reader-only field with a default
        self.readable(v1, with_default)      # a writer-only field is skipped
        self.unreadable(without_default, v1, "R.b: the reader's field has no default")
        self.readable(v1, without_default)
        self.readable(record("R"), v1)       # every field removed
        self.unreadable(v1, record("R"), "R.a")

    def test_record_field_types(self):
        self.readable(record("R", ("a", "long")), record("R", ("a", "int")))
        self.unreadable(record("R", ("a", "int")), record("R", ("a", "long")),
                        "R.a: reader type int cannot read writer type long")

    def test_record_names(self):
        self.readable(record("x.R", ("a", "int")), record("y.R", ("a", "int")))
        self.unreadable(record("R", ("a", "int")), record("S", ("a", "int")), "names differ")
        self.unreadable(record("S", ("a", "int")), record("R", ("a", "int")), "names differ")
        renamed = record("S", ("a", "int"), aliases=["old.R"])
        self.readable(renamed, record("R", ("a", "int")))
        self.unreadable(record("R", ("a", "int")), renamed, "names differ")

    def test_field_aliases(self):
        old = record("R", ("old_name", "int"))
        new = {"type": "record", "name": "R",
               "fields": [{"name": "new_name", "type": "int", "aliases": ["old_name"]}]}
        self.readable(new, old)
        self.unreadable(old, new, "R.old_name")
        self.unreadable(record("R", ("new_name", "int")), old, "R.new_name")

    def test_enums(self):
        ab = {"type": "enum", "name": "E", "symbols": ["A", "B"]}
        abc = {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}
        ab_default = dict(ab, default="A")
        self.readable(abc, ab)
        self.unreadable(ab, abc, "symbols ['C'] of writer enum E are not in the reader's enum")
        self.readable(ab_default, abc)  # C is read as the default
        self.readable(abc, ab_default)
        self.readable(dict(ab, namespace="other"), ab)
        self.unreadable(dict(ab, name="F"), ab, "names differ")
        self.unreadable(ab, dict(ab, name="F"), "names differ")

    def test_fixed(self):
        f4 = {"type": "fixed", "name": "F", "size": 4}
        self.readable(f4, dict(f4))
        self.unreadable(f4, dict(f4, size=8), "has size 4, the writer's has size 8")
        self.unreadable(dict(f4, size=8), f4, "has size 8, the writer's has size 4")
        self.unreadable(dict(f4, name="G"), f4, "names differ")
        self.unreadable(f4, "bytes", "cannot read")

    def test_arrays_and_maps(self):
        self.readable({"type": "array", "items": "long"}, {"type": "array", "items": "int"})
        self.unreadable({"type": "array", "items": "int"}, {"type": "array", "items": "long"},
                        "[]: reader type int")
        self.readable({"type": "map", "values": "double"}, {"type": "map", "values": "float"})
        self.unreadable({"type": "map", "values": "float"}, {"type": "map", "values": "double"},
                        "{}: reader type float")
        self.unreadable({"type": "map", "values": "int"}, {"type": "array", "items": "int"},
                        "cannot read")
        self.unreadable({"type": "array", "items": "int"}, {"type": "map", "values": "int"},
                        "cannot read")

    def test_writer_unions(self):
        self.readable(["null", "string"], ["null", "string"])
        self.readable(["string", "null"], ["null", "string"])   # order does not matter
        self.readable(["null", "string", "int"], ["null", "string"])
        self.unreadable(["null", "string"], ["null", "string", "int"],
                        "no branch of the reader's union [null, string] can read writer type int")
        self.unreadable("string", ["null", "string"], "reader type string cannot read writer "
                        "type null")
        self.readable("double", ["int", "long", "float"])
        self.unreadable("long", ["int", "long", "float"], "writer type float")

    def test_reader_unions(self):
        self.readable(["null", "string"], "string")
        self.unreadable("string", ["null", "string"], "cannot read writer type null")
        self.readable(["null", "long"], "int")
        self.unreadable(["null", "string"], "int", "no branch")
        self.readable(["null", record("R", ("a", "int"))], record("R", ("a", "int")))
        # The only branch of the writer's kind and name gives the reasons.
        self.unreadable(["null", record("R", ("a", "int"), ("b", "int"))],
                        record("R", ("a", "int")), "R.b: the reader's field has no default")

    def test_nested_paths(self):
        reader = record("Outer", ("inner", record("Inner", ("v", "int"))))
        writer = record("Outer", ("inner", record("Inner", ("v", "string"))))
        self.unreadable(reader, writer, "Outer.inner.v: reader type int cannot read writer "
                        "type string")

    def test_recursive_types(self):
        def node(*extra):
            return record("Node", ("value", "int"), ("next", ["null", "Node"], None), *extra)
        self.readable(node(), node())
        self.readable(node(("label", "string", "")), node())
        self.unreadable(node(("label", "string")), node(), "Node.label")
        string_node = record("Node", ("value", "string"), ("next", ["null", "Node"], None))
        self.unreadable(node(), string_node, "Node.value")
        self.unreadable(string_node, node(), "Node.value")

    def test_mutually_recursive_types(self):
        def tree(leaf_type):
            return record("Tree", ("children", {"type": "array", "items": record(
                "Branch", ("tree", "Tree"), ("leaf", leaf_type))}))
        self.readable(tree("long"), tree("int"))
        self.unreadable(tree("int"), tree("long"), "Tree.children[].leaf")

    def test_payment_event_evolution(self):
        current = avro_compat.parse_file(REPO / "schemas" / "PaymentEvent.avsc")
        doc = json.loads((REPO / "schemas" / "PaymentEvent.avsc").read_text())
        no_refund = [f for f in doc["fields"] if f["name"] == "kind"][0]["type"]
        no_refund["symbols"] = ["CHARGE"]
        narrowed = schema(doc)
        self.assertEqual(can_read(narrowed, current),
                         ["PaymentEvent.kind: symbols ['REFUND'] of writer enum "
                          "io.refstream.events.PaymentKind are not in the reader's enum, "
                          "which has no default"])
        self.assertEqual(can_read(current, narrowed), [])


def run_checker(*args):
    """avro_compat.py's command line: (exit status, output)."""
    proc = subprocess.run([sys.executable, str(TOOLS / "avro_compat.py"), *args],
                          capture_output=True, text=True, timeout=30, cwd=REPO)
    return proc.returncode, proc.stdout + proc.stderr


class CheckerCommandLineTest(unittest.TestCase):
    """avro_compat.py's command line, and the repository's schema history."""

    def test_repository_history(self):
        status, out = run_checker("--history", "schemas")
        self.assertEqual(status, 0, out)
        self.assertRegex(out, r"avro_compat: every current schema \(\d+\) reads every "
                              r"previous version \(\d+\): BACKWARD_TRANSITIVE")

    def write(self, directory, name, value):
        path = Path(directory) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
        return str(path)

    def test_history_problems(self):
        with tempfile.TemporaryDirectory() as d:
            self.write(d, "E.avsc", record("E", ("a", "int"), ("b", "int", 0)))
            self.write(d, "history/E.v1.avsc", record("E", ("a", "int")))
            self.write(d, "history/E.v2.avsc", record("E", ("a", "int"), ("b", "int")))
            status, out = run_checker("--history", d)
            self.assertEqual(status, 0, out)
            self.assertIn("every current schema (1) reads every previous version (2)", out)

            self.write(d, "history/E.v3.avsc", record("E", ("a", "string")))
            self.write(d, "history/Gone.v1.avsc", record("Gone"))
            self.write(d, "history/E-old.avsc", record("E"))
            status, out = run_checker("--history", d)
            self.assertEqual(status, 1, out)
            self.assertIn("E.avsc cannot read history/E.v3.avsc: E.a: reader type int cannot "
                          "read writer type string", out)
            self.assertIn("history/Gone.v1.avsc: no current schema Gone.avsc", out)
            self.assertIn("history/E-old.avsc: not named <Name>.v<N>.avsc", out)

            self.write(d, "Bad.avsc", {"type": "record", "name": "Bad"})
            status, out = run_checker("--history", d)
            self.assertEqual(status, 1, out)
            self.assertIn("Bad.avsc: record 'Bad' needs a 'fields' list", out)

    def test_reader_writer_files(self):
        with tempfile.TemporaryDirectory() as d:
            old = self.write(d, "old.avsc", record("R", ("a", "int")))
            new = self.write(d, "new.avsc", record("R", ("a", "long"), ("b", "string")))
            status, out = run_checker(new, old)
            self.assertEqual(status, 1, out)
            self.assertIn("R.b: the reader's field has no default", out)
            status, out = run_checker(old, new)
            self.assertEqual(status, 1, out)
            self.assertIn("R.a: reader type int cannot read writer type long", out)
            status, out = run_checker(old, old)
            self.assertEqual(status, 0, out)
            status, out = run_checker(old, self.write(d, "bad.avsc", ["int", "int"]))
            self.assertEqual(status, 1, out)
            self.assertIn("contain 'int' twice", out)


class Fixture:
    """schema_registry.py as a subprocess, and HTTP requests to it."""

    def __init__(self, *args):
        self.tmp = tempfile.TemporaryDirectory()
        d = Path(self.tmp.name)
        self.log_path = d / "registry.log"
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(TOOLS / "schema_registry.py"),
                 "--port-file", str(d / "port"), "--control-port-file", str(d / "control"),
                 *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 10
        while not (d / "control").exists():  # written last
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the fixture did not start: {self.log()}")
            time.sleep(0.01)
        self.port = int((d / "port").read_text())
        self.control_port = int((d / "control").read_text())
        self.prefix = ""
        self.auth = None
        self.tls = None  # the ssl.SSLContext of API requests (HTTPS), None: HTTP

    def log(self):
        """What the fixture logged."""
        return self.log_path.read_text(encoding="utf-8")

    def stop(self):
        """SIGTERM; the exit status (None if it did not exit in 5 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self.tmp.cleanup()

    def request(self, port, method, path, body=None, headers=None, timeout=5, tls=None):
        """(status, JSON answer, headers) of one request (HTTPS with the
        ssl.SSLContext tls)."""
        data = None
        all_headers = {}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers["Content-Type"] = MEDIA_TYPE
        all_headers.update(headers or {})
        req = urllib.request.Request(f"{'https' if tls else 'http'}://127.0.0.1:{port}{path}",
                                     data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=tls) as resp:
                return resp.status, json.load(resp), resp.headers
        except urllib.error.HTTPError as e:
            with e:
                return e.code, json.load(e), e.headers

    def api(self, method, path, body=None, headers=None, timeout=5):
        """A request to the API (under the prefix, with the credentials)."""
        all_headers = {}
        if self.auth:
            all_headers["Authorization"] = "Basic " + base64.b64encode(
                self.auth.encode()).decode()
        all_headers.update(headers or {})
        return self.request(self.port, method, self.prefix + path, body, all_headers, timeout,
                            self.tls)

    def control(self, method, path, body=None):
        """A request to the control listener; its JSON answer."""
        status, value, _ = self.request(self.control_port, method, path, body)
        assert status == 200, (status, value)
        return value

    def set_mode(self, mode):
        """Sets the fixture's mode."""
        self.control("POST", "/mode", {"mode": mode})


def avro(value, **extra):
    """A registration body for an Avro schema given as a JSON value."""
    return dict({"schema": json.dumps(value)}, **extra)


class RegistryTest(unittest.TestCase):
    """The registry API on a fixture with default options."""

    @classmethod
    def setUpClass(cls):
        cls.fx = Fixture()

    @classmethod
    def tearDownClass(cls):
        status = cls.fx.stop()
        assert status == 0, status

    def setUp(self):
        self.fx.set_mode("ok")

    def register(self, subject, body):
        status, value, _ = self.fx.api("POST", f"/subjects/{subject}/versions", body)
        self.assertEqual(status, 200, value)
        return value["id"]

    def assert_error(self, answer, status, error_code, message=None):
        got_status, value, headers = answer
        self.assertEqual((got_status, value.get("error_code")), (status, error_code), value)
        self.assertEqual(headers["Content-Type"], MEDIA_TYPE)
        if message is not None:
            self.assertEqual(value["message"], message)
        return value["message"]

    def test_register_and_fetch(self):
        s = record("io.t.Fetch", ("a", "int"))
        status, value, headers = self.fx.api(
            "POST", "/subjects/fetch-value/versions?normalize=false", avro(s))
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], MEDIA_TYPE)
        sid = value["id"]
        self.assertEqual(list(value), ["id"])
        for query in ("", "?subject=fetch-value", "?fetchMaxId=false"):
            status, value, headers = self.fx.api("GET", f"/schemas/ids/{sid}{query}")
            self.assertEqual((status, value), (200, {"schema": json.dumps(s)}))
            self.assertEqual(headers["Content-Type"], MEDIA_TYPE)
        self.assertEqual(self.fx.api("GET", f"/schemas/ids/{sid}/versions")[:2],
                         (200, [{"subject": "fetch-value", "version": 1}]))
        self.assert_error(self.fx.api("GET", "/schemas/ids/999999"), 404, 40403,
                          "Schema 999999 not found")
        self.assert_error(self.fx.api("GET", "/schemas/ids/999999/versions"), 404, 40403)
        self.assert_error(self.fx.api("GET", "/schemas/ids/x1"), 404, 404, "HTTP 404 Not Found")

    def test_ids_are_global_and_immutable(self):
        s = record("io.t.Same", ("a", "int"))
        first = self.register("same-a", avro(s))
        reordered = json.dumps({"fields": s["fields"], "name": s["name"], "type": "record"},
                               indent=2)
        self.assertEqual(self.register("same-b", {"schema": reordered}), first)
        self.assertEqual(self.register("same-a", {"schema": reordered, "schemaType": "AVRO"}),
                         first)
        self.assertEqual(self.fx.api("GET", "/subjects/same-a/versions")[:2], (200, [1]))
        other = self.register("same-a", avro(record("io.t.Same", ("a", "int"), ("b", "int", 0))))
        self.assertEqual(other, first + 1)
        self.assertEqual(self.fx.api("GET", "/subjects/same-a/versions")[:2], (200, [1, 2]))
        # The first text registered stays the schema of the id.
        self.assertEqual(self.fx.api("GET", f"/schemas/ids/{first}")[1],
                         {"schema": json.dumps(s)})
        self.assertEqual(self.fx.api("GET", f"/schemas/ids/{first}/versions")[1],
                         [{"subject": "same-a", "version": 1},
                          {"subject": "same-b", "version": 1}])

    def test_subjects_and_versions(self):
        v1 = record("io.t.Ver", ("a", "int"))
        v2 = record("io.t.Ver", ("a", "int"), ("b", "string", ""))
        id1, id2 = self.register("ver", avro(v1)), self.register("ver", avro(v2))
        status, subjects, _ = self.fx.api("GET", "/subjects")
        self.assertEqual(status, 200)
        self.assertIn("ver", subjects)
        self.assertEqual(subjects, sorted(subjects))
        self.assertEqual(self.fx.api("GET", "/subjects/ver/versions")[:2], (200, [1, 2]))
        for version, expected in (("1", (1, id1, v1)), ("2", (2, id2, v2)),
                                  ("latest", (2, id2, v2)), ("-1", (2, id2, v2))):
            status, value, _ = self.fx.api("GET", f"/subjects/ver/versions/{version}")
            self.assertEqual(status, 200)
            self.assertEqual(value, {"subject": "ver", "version": expected[0],
                                     "id": expected[1], "schema": json.dumps(expected[2])})
        self.assert_error(self.fx.api("GET", "/subjects/nope/versions"), 404, 40401,
                          "Subject 'nope' not found.")
        self.assert_error(self.fx.api("GET", "/subjects/nope/versions/latest"), 404, 40401,
                          "Subject 'nope' not found.")
        self.assert_error(self.fx.api("GET", "/subjects/ver/versions/3"), 404, 40402,
                          "Version 3 not found.")
        for bad in ("0", "x", "2147483648"):
            self.assertIn("is not a valid version id", self.assert_error(
                self.fx.api("GET", f"/subjects/ver/versions/{bad}"), 422, 42202))

    def test_encoded_subject_names(self):
        sid = self.register("a%2Fb%20c", avro(record("io.t.Enc")))
        self.assertIn("a/b c", self.fx.api("GET", "/subjects")[1])
        self.assertEqual(self.fx.api("GET", "/subjects/a%2Fb%20c/versions/1")[1]["id"], sid)

    def test_lookup(self):
        s = record("io.t.Look", ("a", "int"))
        sid = self.register("look", avro(s))
        status, value, _ = self.fx.api("POST", "/subjects/look?normalize=False", avro(s))
        self.assertEqual((status, value), (200, {"subject": "look", "version": 1, "id": sid,
                                                 "schema": json.dumps(s)}))
        self.assert_error(self.fx.api("POST", "/subjects/look", avro(record("io.t.Other"))),
                          404, 40403, "Schema not found")
        self.assert_error(self.fx.api("POST", "/subjects/nope", avro(s)), 404, 40401,
                          "Subject 'nope' not found.")
        # Registered under another subject is not registered under this one.
        self.register("look-2", avro(record("io.t.Elsewhere")))
        self.assert_error(self.fx.api("POST", "/subjects/look", avro(record("io.t.Elsewhere"))),
                          404, 40403)

    def test_primitive_schemas(self):
        sid = self.register("prim", {"schema": '{"type":"string"}'})
        self.assertEqual(self.fx.api("GET", f"/schemas/ids/{sid}")[1],
                         {"schema": '{"type":"string"}'})
        self.assertNotEqual(self.register("prim2", {"schema": '"string"'}), sid)

    def test_invalid_schemas(self):
        for body, code in (({"schema": "{not json"}, 42201),
                           (avro({"type": "nothing"}), 42201),
                           (avro(record("R", ("a", "int", "x"))), 42201),
                           ({"schema": ""}, 42201),
                           ({"schema": 7}, 42201),
                           ({"schema": '"int"', "schemaType": "XML"}, 42201)):
            with self.subTest(body=body):
                self.assert_error(self.fx.api("POST", "/subjects/inv/versions", body), 422, code)
        self.assertTrue(self.assert_error(
            self.fx.api("POST", "/subjects/inv/versions", avro({"type": "nothing"})),
            422, 42201).startswith("Invalid schema "))
        self.assert_error(self.fx.api("POST", "/subjects/inv/versions", b"{nope"), 400, 400)
        self.assert_error(self.fx.api("POST", "/subjects/inv/versions", [1]), 400, 400)
        self.assert_error(self.fx.api("GET", "/subjects/inv/versions"), 404, 40401)

    def test_backward_by_default(self):
        self.assertEqual(self.fx.api("GET", "/config")[:2],
                         (200, {"compatibilityLevel": "BACKWARD"}))
        self.register("bw", avro(record("io.t.Bw", ("a", "int"))))
        message = self.assert_error(self.fx.api(
            "POST", "/subjects/bw/versions",
            avro(record("io.t.Bw", ("a", "int"), ("b", "string")))), 409, 409)
        self.assertTrue(message.startswith(
            'Schema being registered is incompatible with an earlier schema for subject "bw", '
            "details: ["), message)
        self.assertIn("Bw.b: the reader's field has no default", message)
        self.assertIn("compatibility: 'BACKWARD'", message)
        self.register("bw", avro(record("io.t.Bw", ("a", "int"), ("b", "string", ""))))
        self.register("bw", avro(record("io.t.Bw", ("b", "string", ""))))  # a removed field
        self.assertEqual(self.fx.api("GET", "/subjects/bw/versions")[1], [1, 2, 3])

    def test_subject_levels(self):
        self.assert_error(self.fx.api("GET", "/config/lv"), 404, 40408,
                          "Subject 'lv' does not have subject-level compatibility configured")
        self.assertEqual(self.fx.api("GET", "/config/lv?defaultToGlobal=true")[1],
                         {"compatibilityLevel": "BACKWARD"})
        self.assertEqual(self.fx.api("PUT", "/config/lv", {"compatibility": "NONE"})[:2],
                         (200, {"compatibility": "NONE"}))
        self.assertEqual(self.fx.api("GET", "/config/lv")[1], {"compatibilityLevel": "NONE"})
        self.register("lv", avro(record("io.t.Lv", ("a", "int"))))
        self.register("lv", avro(record("io.t.Lv", ("a", "string"))))
        self.register("lv", avro({"type": "enum", "name": "Whatever", "symbols": ["A"]}))
        self.assertIn("Invalid compatibility level", self.assert_error(
            self.fx.api("PUT", "/config/lv", {"compatibility": "SIDEWAYS"}), 422, 42203))
        self.assert_error(self.fx.api("PUT", "/config/lv", {}), 422, 42203)
        self.assertEqual(self.fx.api("GET", "/config")[1], {"compatibilityLevel": "BACKWARD"})

    def levels_case(self, subject, level, versions, refused):
        """Registers `versions` under `subject` at `level`; the last one must
        be refused if `refused`."""
        self.fx.api("PUT", f"/config/{subject}", {"compatibility": level})
        for v in versions[:-1]:
            self.register(subject, avro(v))
        status, value, _ = self.fx.api("POST", f"/subjects/{subject}/versions",
                                       avro(versions[-1]))
        self.assertEqual(status, 409 if refused else 200, value)

    def test_forward(self):
        old = record("io.t.Fw", ("a", "int"), ("b", "int"))
        dropped = record("io.t.Fw", ("a", "int"))
        added = record("io.t.Fw", ("a", "int"), ("b", "int"), ("c", "int"))
        self.levels_case("fw1", "FORWARD", [old, dropped], refused=True)
        self.levels_case("fw2", "FORWARD", [old, added], refused=False)
        self.levels_case("fw3", "BACKWARD", [old, added], refused=True)
        self.levels_case("fw4", "BACKWARD", [old, dropped], refused=False)

    def test_full(self):
        old = record("io.t.Full", ("a", "int"))
        optional = record("io.t.Full", ("a", "int"), ("b", ["null", "string"], None))
        required = record("io.t.Full", ("a", "int"), ("b", "string"))
        self.levels_case("full1", "FULL", [old, optional], refused=False)
        self.levels_case("full2", "FULL", [old, required], refused=True)
        self.levels_case("full3", "FULL", [optional, old], refused=False)
        self.levels_case("full4", "FULL", [required, old], refused=True)  # only forward fails
        self.levels_case("full5", "BACKWARD", [required, old], refused=False)

    def test_transitive(self):
        v1 = record("io.t.Tr", ("a", "int"))
        v2 = record("io.t.Tr", ("a", "int"), ("b", "string", "x"))
        v3 = record("io.t.Tr", ("a", "int"), ("b", "string"))
        self.levels_case("tr1", "BACKWARD", [v1, v2, v3], refused=False)
        self.levels_case("tr2", "BACKWARD_TRANSITIVE", [v1, v2, v3], refused=True)
        self.levels_case("tr3", "FORWARD", [v3, v2, v1], refused=False)
        self.levels_case("tr4", "FORWARD_TRANSITIVE", [v3, v2, v1], refused=True)
        self.levels_case("tr5", "FULL", [v1, v2, v3], refused=False)
        self.levels_case("tr6", "FULL_TRANSITIVE", [v1, v2, v3], refused=True)

    def test_global_level(self):
        try:
            self.assertEqual(self.fx.api("PUT", "/config", {"compatibility": "none"})[:2],
                             (200, {"compatibility": "NONE"}))
            self.assertEqual(self.fx.api("GET", "/config")[1], {"compatibilityLevel": "NONE"})
            self.levels_case("gl", "NONE", [record("io.t.Gl", ("a", "int")),
                                            record("io.t.Gl", ("a", "string"))], refused=False)
        finally:
            self.fx.api("PUT", "/config", {"compatibility": "BACKWARD"})

    def test_compatibility_endpoint(self):
        self.register("cc", avro(record("io.t.Cc", ("a", "int"))))
        path = "/compatibility/subjects/cc/versions/latest"
        self.assertEqual(self.fx.api("POST", path, avro(record("io.t.Cc", ("a", "long"))))[:2],
                         (200, {"is_compatible": True}))
        self.assertEqual(self.fx.api("POST", path, avro(record("io.t.Cc", ("a", "string"))))[:2],
                         (200, {"is_compatible": False}))
        status, value, _ = self.fx.api("POST", path + "?verbose=true",
                                       avro(record("io.t.Cc", ("a", "string"))))
        self.assertFalse(value["is_compatible"])
        self.assertIn("Cc.a: reader type string cannot read writer type int",
                      value["messages"][0])
        self.assert_error(self.fx.api("POST", "/compatibility/subjects/none/versions/latest",
                                      avro(record("io.t.Cc"))), 404, 40401)
        self.assert_error(self.fx.api("POST", "/compatibility/subjects/cc/versions/5",
                                      avro(record("io.t.Cc"))), 404, 40402)

    def test_references_and_schema_types(self):
        money = {"type": "fixed", "name": "io.t.Money", "size": 8}
        self.register("money", avro(money))
        refs = [{"name": "io.t.Money", "subject": "money", "version": 1}]
        payment = record("io.t.Payment", ("amount", "Money"))
        sid = self.register("payment", avro(payment, references=refs))
        self.assertEqual(self.fx.api("GET", f"/schemas/ids/{sid}")[1],
                         {"schema": json.dumps(payment), "references": refs})
        self.assertEqual(self.fx.api("GET", "/subjects/payment/versions/1")[1]["references"],
                         refs)
        self.assertIn("unknown type 'Money'", self.assert_error(
            self.fx.api("POST", "/subjects/payment2/versions", avro(payment)), 422, 42201))
        bad_refs = [{"name": "io.t.Money", "subject": "money", "version": 2}]
        self.assertIn("subject 'money' has no version 2", self.assert_error(
            self.fx.api("POST", "/subjects/payment2/versions", avro(payment, references=bad_refs)),
            422, 42201))

        json_schema = {"schema": '{"type": "object"}', "schemaType": "JSON"}
        jid = self.register("js", json_schema)
        self.assertEqual(self.fx.api("GET", f"/schemas/ids/{jid}")[1],
                         {"schema": '{"type": "object"}', "schemaType": "JSON"})
        self.assertEqual(self.fx.api("GET", "/subjects/js/versions/1")[1]["schemaType"], "JSON")
        proto = {"schema": 'syntax = "proto3"; message M {}', "schemaType": "PROTOBUF"}
        pid = self.register("pb", proto)
        self.assertEqual(self.fx.api("GET", f"/schemas/ids/{pid}")[1]["schemaType"], "PROTOBUF")
        self.assertIn("is of type JSON", self.assert_error(
            self.fx.api("POST", "/subjects/js/versions", avro(record("io.t.Js"))), 409, 409))

    def test_unknown_paths_and_methods(self):
        for method, path in (("GET", "/nope"), ("GET", "/"), ("GET", "/subjects/a/b/c/d"),
                             ("POST", "/schemas/ids"), ("GET", "/subjects//versions")):
            with self.subTest(path=path):
                self.assert_error(self.fx.api(method, path), 404, 404, "HTTP 404 Not Found")
        self.assert_error(self.fx.api("DELETE", "/subjects"), 405, 405,
                          "HTTP 405 Method Not Allowed")
        self.assert_error(self.fx.api("PUT", "/schemas/ids/1", {}), 405, 405)

    def test_media_types(self):
        body = avro(record("io.t.Media"))
        for content_type in (MEDIA_TYPE, "application/vnd.schemaregistry+json",
                             "application/json; charset=utf-8", "application/octet-stream"):
            with self.subTest(content_type=content_type):
                status, value, _ = self.fx.api("POST", "/subjects/media/versions", body,
                                               {"Content-Type": content_type})
                self.assertEqual(status, 200, value)
        self.assert_error(self.fx.api("POST", "/subjects/media/versions", body,
                                      {"Content-Type": "text/plain"}), 415, 415)
        for accept in (MEDIA_TYPE, "application/json", "*/*",
                       "text/html, application/vnd.schemaregistry+json;q=0.9"):
            with self.subTest(accept=accept):
                self.assertEqual(self.fx.api("GET", "/subjects", headers={"Accept": accept})[0],
                                 200)
        self.assert_error(self.fx.api("GET", "/subjects", headers={"Accept": "text/html"}),
                          406, 406)

    def test_keep_alive_and_chunked_bodies(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.fx.port, timeout=5)
        try:
            body = json.dumps(avro(record("io.t.Chunked"))).encode()
            conn.request("POST", "/subjects/chunked/versions", body=iter([body[:10], body[10:]]),
                         headers={"Content-Type": MEDIA_TYPE, "Transfer-Encoding": "chunked"},
                         encode_chunked=True)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            sid = json.load(resp)["id"]
            conn.request("GET", f"/schemas/ids/{sid}")  # the same connection
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            resp.read()
        finally:
            conn.close()

    def test_error500_mode(self):
        self.fx.set_mode("error500")
        for method, path in (("GET", "/subjects"), ("GET", "/schemas/ids/1"),
                             ("POST", "/subjects/x/versions")):
            self.assert_error(self.fx.api(method, path, {} if method == "POST" else None),
                              500, 50001, "Error in the backend data store")
        self.fx.set_mode("ok")
        self.assertEqual(self.fx.api("GET", "/subjects")[0], 200)

    def test_refuse_mode(self):
        idle = socket.create_connection(("127.0.0.1", self.fx.port), timeout=5)
        conn = http.client.HTTPConnection("127.0.0.1", self.fx.port, timeout=5)
        try:
            conn.request("GET", "/subjects")
            conn.getresponse().read()
            self.fx.set_mode("refuse")
            # Open connections are closed at once (reset if not accepted yet).
            with contextlib.suppress(ConnectionResetError):
                self.assertEqual(idle.recv(1), b"")
            with self.assertRaises(OSError):
                conn.request("GET", "/subjects")
                conn.getresponse().read()
        finally:
            idle.close()
            conn.close()
        with self.assertRaises(urllib.error.URLError) as cm:
            self.fx.api("GET", "/subjects")
        self.assertIsInstance(cm.exception.reason, ConnectionRefusedError)
        self.assertEqual(self.fx.control("GET", "/mode"), {"mode": "refuse"})
        self.fx.set_mode("ok")
        self.assertEqual(self.fx.api("GET", "/subjects")[0], 200)
        self.fx.set_mode("refuse")
        self.fx.set_mode("error500")  # reopens too
        self.assert_error(self.fx.api("GET", "/subjects"), 500, 50001)

    def test_hang_mode(self):
        self.fx.set_mode("hang")
        start = time.monotonic()
        with self.assertRaises((TimeoutError, urllib.error.URLError)):
            self.fx.api("GET", "/subjects", timeout=0.3)
        self.assertGreaterEqual(time.monotonic() - start, 0.25)
        answers = []
        waiter = threading.Thread(
            target=lambda: answers.append(self.fx.api("GET", "/subjects", timeout=5)))
        waiter.start()
        time.sleep(0.2)
        self.assertEqual(answers, [])
        self.fx.set_mode("ok")  # the hanging request is answered now
        waiter.join(5)
        self.assertEqual([a[0] for a in answers], [200])

    def test_stats(self):
        sid = self.register("st", avro(record("io.t.St")))
        self.fx.control("POST", "/reset-stats")
        self.assertEqual(self.fx.control("GET", "/stats"), {"requests": {}, "schema_ids": {}})
        self.fx.api("GET", f"/schemas/ids/{sid}")
        self.fx.api("GET", f"/schemas/ids/{sid}?fetchMaxId=false")
        self.fx.api("GET", "/schemas/ids/424242")
        self.fx.api("GET", f"/schemas/ids/{sid}/versions")
        self.fx.api("POST", "/subjects/st/versions", avro(record("io.t.St")))
        self.fx.api("POST", "/subjects/st", avro(record("io.t.St")))
        self.fx.api("GET", "/subjects/st/versions/latest")
        self.fx.api("GET", "/elsewhere")
        self.fx.set_mode("error500")
        self.fx.api("GET", f"/schemas/ids/{sid}")
        self.assertEqual(self.fx.control("GET", "/stats"), {
            "requests": {"GET /schemas/ids/{id}": 4, "GET /schemas/ids/{id}/versions": 1,
                         "POST /subjects/{s}/versions": 1, "POST /subjects/{s}": 1,
                         "GET /subjects/{s}/versions/{v}": 1, "GET (no route)": 1},
            "schema_ids": {str(sid): 3, "424242": 1}})

    def test_control_errors(self):
        status, value, _ = self.fx.request(self.fx.control_port, "POST", "/mode",
                                           {"mode": "sideways"})
        self.assertEqual(status, 400, value)
        self.assertEqual(self.fx.request(self.fx.control_port, "GET", "/nope")[0], 404)

    def test_one_log_line_per_request(self):
        self.fx.api("GET", "/subjects/logged/versions")
        deadline = time.monotonic() + 2
        while '"GET /subjects/logged/versions HTTP/1.1" 404' not in self.fx.log():
            self.assertLess(time.monotonic(), deadline, self.fx.log())
            time.sleep(0.01)


class RegistryOptionsTest(unittest.TestCase):
    """--prefix, --basic-auth and --first-id."""

    @classmethod
    def setUpClass(cls):
        cls.fx = Fixture("--prefix", "/apis/ccompat/v7", "--basic-auth", "user:pa:ss",
                         "--first-id", "100")
        cls.fx.prefix = "/apis/ccompat/v7"

    @classmethod
    def tearDownClass(cls):
        status = cls.fx.stop()
        assert status == 0, status

    def test_basic_auth(self):
        for auth in (None, "user:wrong", "user:pa", "other:pa:ss"):
            with self.subTest(auth=auth):
                self.fx.auth = auth
                status, value, headers = self.fx.api("GET", "/subjects")
                self.assertEqual((status, value),
                                 (401, {"error_code": 40101, "message": "Unauthorized"}))
                self.assertTrue(headers["WWW-Authenticate"].startswith("Basic "))
        self.fx.auth = None
        for header in ("Bearer abc", "Basic !!!", "Basic"):
            self.assertEqual(self.fx.api("GET", "/subjects",
                                         headers={"Authorization": header})[0], 401)
        self.assertEqual(self.fx.api("GET", "/no/such/path")[0], 401)
        self.fx.auth = "user:pa:ss"
        self.assertEqual(self.fx.api("GET", "/subjects")[:2], (200, []))
        self.assertEqual(self.fx.control("GET", "/mode"), {"mode": "ok"})  # no auth there

    def test_prefix_and_first_id(self):
        self.fx.auth = "user:pa:ss"
        status, value, _ = self.fx.api("POST", "/subjects/p-value/versions",
                                       avro(record("io.t.P")))
        self.assertEqual((status, value), (200, {"id": 100}))
        self.assertEqual(self.fx.api("GET", "/schemas/ids/100")[0], 200)
        self.fx.prefix = ""
        try:
            self.assertEqual(self.fx.api("GET", "/schemas/ids/100")[:2],
                             (404, {"error_code": 404, "message": "HTTP 404 Not Found"}))
            self.assertEqual(self.fx.api("GET", "/apis/ccompat/v7x/subjects")[0], 404)
        finally:
            self.fx.prefix = "/apis/ccompat/v7"


def make_certs(d):
    """With the openssl command, into directory d: ca.pem (a CA), server.pem
    (for 127.0.0.1) and client.pem signed by it, and stranger.pem (a client
    certificate signed by itself); the keys in *.key."""
    def req(name, cn, *extra):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-keyout", d / f"{name}.key", "-out", d / f"{name}.pem",
                        "-subj", f"/CN={cn}", *extra], check=True, capture_output=True)
    leaf = ["-addext", "basicConstraints=CA:FALSE"]
    signed = [*leaf, "-CA", d / "ca.pem", "-CAkey", d / "ca.key"]
    req("ca", "refstream test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign")
    req("server", "127.0.0.1", *signed, "-addext", "subjectAltName=IP:127.0.0.1")
    req("client", "refstream test client", *signed)
    req("stranger", "refstream test stranger", *leaf)


class RegistryTlsTest(unittest.TestCase):
    """--tls-cert, --tls-key and --tls-client-ca: the API over HTTPS to
    clients with a certificate of the CA; the control listener over HTTP."""

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.certs.name)
        try:
            make_certs(cls.dir)
            cls.fx = Fixture("--tls-cert", str(cls.dir / "server.pem"),
                             "--tls-key", str(cls.dir / "server.key"),
                             "--tls-client-ca", str(cls.dir / "ca.pem"))
        except BaseException:
            cls.certs.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        status = cls.fx.stop()
        cls.certs.cleanup()
        assert status == 0, status

    def context(self, cert="client", ca=True):
        """A client context trusting the test CA (else the system's), with
        the certificate `cert` (None: none)."""
        context = ssl.create_default_context(cafile=self.dir / "ca.pem" if ca else None)
        if cert:
            context.load_cert_chain(self.dir / f"{cert}.pem", self.dir / f"{cert}.key")
        return context

    def setUp(self):
        self.fx.tls = self.context()
        self.fx.set_mode("ok")
        self.fx.control("POST", "/reset-stats")

    def test_https_with_a_client_certificate(self):
        status, value, _ = self.fx.api("POST", "/subjects/tls/versions",
                                       avro(record("io.t.Tls")))
        self.assertEqual(status, 200, value)
        self.assertEqual(self.fx.api("GET", f"/schemas/ids/{value['id']}")[0], 200)
        self.assertEqual(self.fx.control("GET", "/stats")["requests"],
                         {"POST /subjects/{s}/versions": 1, "GET /schemas/ids/{id}": 1})

    def test_refused_handshakes(self):
        self.fx.tls = self.context(ca=False)  # the system's CAs
        with self.assertRaises(urllib.error.URLError) as cm:
            self.fx.api("GET", "/subjects")
        self.assertIsInstance(cm.exception.reason, ssl.SSLCertVerificationError)
        for cert, logged in ((None, "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
                             ("stranger", "CERTIFICATE_VERIFY_FAILED")):
            with self.subTest(cert=cert):
                self.fx.tls = self.context(cert)
                # Refused by the server, seen by the client at once or (TLS 1.3)
                # on reading the answer.
                with self.assertRaises(OSError):
                    self.fx.api("GET", "/subjects")
                deadline = time.monotonic() + 2
                while logged not in self.fx.log():
                    self.assertLess(time.monotonic(), deadline, self.fx.log())
                    time.sleep(0.01)
        with self.assertRaises(OSError):  # plain HTTP
            self.fx.request(self.fx.port, "GET", "/subjects")
        self.assertEqual(self.fx.control("GET", "/stats")["requests"], {})

    def test_refuse_mode(self):
        conn = http.client.HTTPSConnection("127.0.0.1", self.fx.port, timeout=5,
                                           context=self.fx.tls)
        try:
            conn.request("GET", "/subjects")
            conn.getresponse().read()
            self.fx.set_mode("refuse")
            with self.assertRaises(OSError):  # the open connection was cut
                conn.request("GET", "/subjects")
                conn.getresponse().read()
        finally:
            conn.close()
        with self.assertRaises(urllib.error.URLError) as cm:
            self.fx.api("GET", "/subjects")
        self.assertIsInstance(cm.exception.reason, ConnectionRefusedError)
        self.fx.set_mode("ok")  # reopened: HTTPS, client certificate required
        self.assertEqual(self.fx.api("GET", "/subjects")[0], 200)
        self.fx.tls = self.context(None)
        with self.assertRaises(OSError):
            self.fx.api("GET", "/subjects")


class RegistryProcessTest(unittest.TestCase):
    """The fixture's process: option checks and a clean SIGTERM."""

    def test_sigterm_while_a_request_hangs(self):
        fx = Fixture()
        try:
            fx.set_mode("hang")
            hung = socket.create_connection(("127.0.0.1", fx.port), timeout=5)
            hung.sendall(b"GET /subjects HTTP/1.1\r\nHost: x\r\n\r\n")
            deadline = time.monotonic() + 2
            while fx.control("GET", "/stats")["requests"].get("GET /subjects") != 1:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.01)
            start = time.monotonic()
            self.assertEqual(fx.stop(), 0)
            self.assertLess(time.monotonic() - start, 2)
            hung.close()
        finally:
            fx.stop()

    def test_bad_options(self):
        for args in (["--basic-auth", "nocolon"], ["--prefix", "no-slash"], ["--port", "x"],
                     ["--tls-cert", "server.pem"], ["--tls-client-ca", "ca.pem"],
                     ["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"]):
            with self.subTest(args=args):
                proc = subprocess.run([sys.executable, str(TOOLS / "schema_registry.py"), *args],
                                      capture_output=True, timeout=10)
                self.assertEqual(proc.returncode, 2)


if __name__ == "__main__":
    unittest.main()
