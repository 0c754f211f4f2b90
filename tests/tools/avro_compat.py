#!/usr/bin/env python3
"""An independent Avro schema parser and compatibility checker (stdlib only).

parse(text) validates an Avro schema (JSON text) and returns its tree:
primitives, records, enums, arrays, maps, unions and fixed; named types with
namespaces, references to earlier-defined names (recursive types included),
aliases, and defaults checked against their types (a union's default against
its first branch). logicalType attributes are ignored: a logical type is read
as its underlying type.

can_read(reader, writer) applies the schema resolution rules of the Avro
specification (1.11, "Schema Resolution") and returns the reasons the reader
cannot read data written with the writer schema; an empty list means it can.

Command line:
  avro_compat.py READER.avsc WRITER.avsc
      exit 0 if READER reads data written with WRITER, else print the reasons
      and exit 1.
  avro_compat.py --history DIR
      BACKWARD_TRANSITIVE check of a schema directory: every DIR/<Name>.avsc
      (the current schema) must read data written with every previous version
      DIR/history/<Name>.v<N>.avsc. Prints each problem and exits 1 if there is
      any, else prints a summary line and exits 0.
"""

import argparse
import json
import re
import sys
from pathlib import Path

PRIMITIVES = frozenset(
    ["null", "boolean", "int", "long", "float", "double", "bytes", "string"])

# (reader, writer) pairs of primitives that resolve by promotion.
PROMOTIONS = frozenset([
    ("long", "int"), ("float", "int"), ("double", "int"),
    ("float", "long"), ("double", "long"),
    ("double", "float"),
    ("bytes", "string"), ("string", "bytes"),
])

INT_RANGE = (-2**31, 2**31 - 1)
LONG_RANGE = (-2**63, 2**63 - 1)

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NO_DEFAULT = object()


class SchemaError(ValueError):
    """The text is not valid JSON or not a valid Avro schema."""


class Schema:
    """A node of a parsed schema; `type` is the Avro type name."""

    type = ""

    def describe(self):
        """A short human-readable form of the type, for messages."""
        return self.type


class Primitive(Schema):
    """null, boolean, int, long, float, double, bytes or string."""

    def __init__(self, type_name):
        self.type = type_name


class Named(Schema):
    """A record, enum or fixed: has a full name and aliases (full names)."""

    def __init__(self, fullname, aliases):
        self.fullname = fullname
        self.aliases = aliases

    @property
    def name(self):
        """The unqualified name."""
        return self.fullname.rsplit(".", 1)[-1]

    def describe(self):
        return f"{self.type} {self.fullname}"


class Field:
    """A record field; `default` is _NO_DEFAULT when it has none."""

    def __init__(self, name, schema, default, aliases):
        self.name = name
        self.schema = schema
        self.default = default
        self.aliases = aliases

    @property
    def has_default(self):
        """Whether the field declares a default value."""
        return self.default is not _NO_DEFAULT


class Record(Named):
    """A record (or an error, which is a record for resolution)."""

    type = "record"

    def __init__(self, fullname, aliases):
        super().__init__(fullname, aliases)
        self.fields = []  # filled after the name is known, for recursion


class Enum(Named):
    """An enum; `default` is None when it has none."""

    type = "enum"

    def __init__(self, fullname, aliases, symbols, default):
        super().__init__(fullname, aliases)
        self.symbols = symbols
        self.default = default


class Fixed(Named):
    """A fixed-size byte string."""

    type = "fixed"

    def __init__(self, fullname, aliases, size):
        super().__init__(fullname, aliases)
        self.size = size


class Array(Schema):
    """An array of `items`."""

    type = "array"

    def __init__(self, items):
        self.items = items

    def describe(self):
        return f"array<{self.items.describe()}>"


class Map(Schema):
    """A map from strings to `values`."""

    type = "map"

    def __init__(self, values):
        self.values = values

    def describe(self):
        return f"map<{self.values.describe()}>"


class Union(Schema):
    """A union of `branches` (none of them a union)."""

    type = "union"

    def __init__(self, branches):
        self.branches = branches

    def describe(self):
        return "[" + ", ".join(b.describe() for b in self.branches) + "]"


def parse(text, names=None):
    """Parses and validates the Avro schema `text` (a JSON document).

    `names` maps full names to named types already defined (for instance by
    the schemas a registered schema references); the types that `text`
    defines are added to it. Raises SchemaError."""
    try:
        doc = json.loads(text)
    except (TypeError, ValueError) as e:
        raise SchemaError(f"not valid JSON: {e}") from None
    return _Parser({} if names is None else names).parse(doc, "")


def parse_file(path):
    """parse() of a file's text."""
    return parse(Path(path).read_text(encoding="utf-8"))


def _fullname(name, namespace):
    """The full name of `name` defined or referred to in `namespace`."""
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _namespace_of(fullname):
    return fullname.rsplit(".", 1)[0] if "." in fullname else ""


def _simple(fullname):
    return fullname.rsplit(".", 1)[-1]


def _check_fullname(fullname, what):
    parts = fullname.split(".")
    if not all(_NAME_RE.match(p) for p in parts):
        raise SchemaError(f"invalid {what} '{fullname}'")


class _Parser:
    """Builds the schema tree, keeping the named types in `names`."""

    def __init__(self, names):
        self.names = names

    def parse(self, doc, namespace):
        """The schema for the JSON value `doc` found in `namespace`."""
        if isinstance(doc, str):
            return self._reference(doc, namespace)
        if isinstance(doc, list):
            return self._union(doc, namespace)
        if not isinstance(doc, dict):
            raise SchemaError(f"a schema must be a string, an array or an object, not {doc!r}")
        kind = doc.get("type")
        if not isinstance(kind, str):
            raise SchemaError(f"a schema object needs a string 'type': {_short(doc)}")
        if kind in ("record", "error"):
            return self._record(doc, namespace)
        if kind == "enum":
            return self._enum(doc, namespace)
        if kind == "fixed":
            return self._fixed(doc, namespace)
        if kind == "array":
            if "items" not in doc:
                raise SchemaError("an array needs 'items'")
            return Array(self.parse(doc["items"], namespace))
        if kind == "map":
            if "values" not in doc:
                raise SchemaError("a map needs 'values'")
            return Map(self.parse(doc["values"], namespace))
        return self._reference(kind, namespace)

    def _reference(self, name, namespace):
        """A primitive, or a named type defined earlier."""
        if name in PRIMITIVES:
            return Primitive(name)
        for candidate in (_fullname(name, namespace), name):
            if candidate in self.names:
                return self.names[candidate]
        raise SchemaError(f"unknown type '{name}'")

    def _union(self, doc, namespace):
        branches = [self.parse(b, namespace) for b in doc]
        seen = set()
        for b in branches:
            if isinstance(b, Union):
                raise SchemaError("a union may not immediately contain a union")
            key = b.fullname if isinstance(b, Named) else b.type
            if key in seen:
                raise SchemaError(f"a union may not contain '{key}' twice")
            seen.add(key)
        return Union(branches)

    def _define(self, doc, namespace):
        """The full name and aliases of a named type; checks them."""
        name = doc.get("name")
        if not isinstance(name, str):
            raise SchemaError(f"a {doc['type']} needs a string 'name'")
        own_ns = doc.get("namespace", namespace)
        if not isinstance(own_ns, str):
            raise SchemaError(f"the namespace of '{name}' must be a string")
        if own_ns:
            _check_fullname(own_ns, "namespace")
        fullname = _fullname(name, own_ns)
        _check_fullname(fullname, "name")
        if _simple(fullname) in PRIMITIVES:
            raise SchemaError(f"a named type may not be called '{_simple(fullname)}'")
        if fullname in self.names:
            raise SchemaError(f"'{fullname}' is defined twice")
        aliases = doc.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise SchemaError(f"the aliases of '{fullname}' must be a list of strings")
        ns = _namespace_of(fullname)
        aliases = [_fullname(a, ns) for a in aliases]
        for a in aliases:
            _check_fullname(a, "alias")
        return fullname, aliases

    def _record(self, doc, namespace):
        fullname, aliases = self._define(doc, namespace)
        fields = doc.get("fields")
        if not isinstance(fields, list):
            raise SchemaError(f"record '{fullname}' needs a 'fields' list")
        record = Record(fullname, aliases)
        self.names[fullname] = record
        inner_ns = _namespace_of(fullname)
        for f in fields:
            record.fields.append(self._field(f, record, inner_ns))
        seen = set()
        for f in record.fields:
            if f.name in seen:
                raise SchemaError(f"record '{fullname}' has two fields '{f.name}'")
            seen.add(f.name)
        return record

    def _field(self, doc, record, namespace):
        if not isinstance(doc, dict):
            raise SchemaError(f"a field of record '{record.fullname}' is not an object")
        name = doc.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise SchemaError(f"record '{record.fullname}' has a field with invalid name {name!r}")
        where = f"field '{name}' of record '{record.fullname}'"
        if "type" not in doc:
            raise SchemaError(f"{where} needs a 'type'")
        schema = self.parse(doc["type"], namespace)
        default = doc.get("default", _NO_DEFAULT)
        if default is not _NO_DEFAULT:
            problem = default_problem(schema, default)
            if problem:
                raise SchemaError(f"{where}: invalid default: {problem}")
        aliases = doc.get("aliases", [])
        if not isinstance(aliases, list) or not all(
                isinstance(a, str) and _NAME_RE.match(a) for a in aliases):
            raise SchemaError(f"{where}: 'aliases' must be a list of names")
        if doc.get("order", "ascending") not in ("ascending", "descending", "ignore"):
            raise SchemaError(f"{where}: invalid 'order' {doc['order']!r}")
        return Field(name, schema, default, aliases)

    def _enum(self, doc, namespace):
        fullname, aliases = self._define(doc, namespace)
        symbols = doc.get("symbols")
        if not isinstance(symbols, list) or not all(
                isinstance(s, str) and _NAME_RE.match(s) for s in symbols):
            raise SchemaError(f"enum '{fullname}' needs 'symbols', a list of names")
        if len(set(symbols)) != len(symbols):
            raise SchemaError(f"enum '{fullname}' has a duplicate symbol")
        default = doc.get("default")
        if default is not None and default not in symbols:
            raise SchemaError(f"enum '{fullname}': default {default!r} is not a symbol")
        enum = Enum(fullname, aliases, symbols, default)
        self.names[fullname] = enum
        return enum

    def _fixed(self, doc, namespace):
        fullname, aliases = self._define(doc, namespace)
        size = doc.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise SchemaError(f"fixed '{fullname}' needs a non-negative integer 'size'")
        fixed = Fixed(fullname, aliases, size)
        self.names[fullname] = fixed
        return fixed


def _short(value, limit=80):
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_latin1(value):
    return isinstance(value, str) and all(ord(c) <= 0xFF for c in value)


def default_problem(schema, value):
    """Why the JSON `value` is not a valid default for `schema`, or None."""
    t = schema.type
    ok = {
        "null": lambda: value is None,
        "boolean": lambda: isinstance(value, bool),
        "int": lambda: _is_int(value) and INT_RANGE[0] <= value <= INT_RANGE[1],
        "long": lambda: _is_int(value) and LONG_RANGE[0] <= value <= LONG_RANGE[1],
        "float": lambda: isinstance(value, (int, float)) and not isinstance(value, bool),
        "double": lambda: isinstance(value, (int, float)) and not isinstance(value, bool),
        "string": lambda: isinstance(value, str),
        "bytes": lambda: _is_latin1(value),
        "fixed": lambda: _is_latin1(value) and len(value) == schema.size,
        "enum": lambda: isinstance(value, str) and value in schema.symbols,
    }
    if t in ok:
        return None if ok[t]() else f"{_short(value)} is not a {schema.describe()}"
    if t == "union":
        if not schema.branches:
            return "an empty union has no value"
        problem = default_problem(schema.branches[0], value)
        return problem and f"{problem} (a union's default is of its first branch)"
    if t == "array":
        if not isinstance(value, list):
            return f"{_short(value)} is not an array"
        return next(filter(None, (default_problem(schema.items, v) for v in value)), None)
    if t == "map":
        if not isinstance(value, dict):
            return f"{_short(value)} is not a map"
        return next(filter(None, (default_problem(schema.values, v) for v in value.values())),
                    None)
    # record
    if not isinstance(value, dict):
        return f"{_short(value)} is not a {schema.describe()}"
    for f in schema.fields:
        if f.name in value:
            problem = default_problem(f.schema, value[f.name])
            if problem:
                return f"field '{f.name}': {problem}"
        elif not f.has_default:
            return f"field '{f.name}' of {schema.describe()} is missing"
    return None


def can_read(reader, writer):
    """The reasons data written with `writer` cannot be read with `reader`
    (both parsed schemas) under Avro's schema resolution; [] if it can."""
    problems = _Resolver().check(reader, writer, "")
    return list(dict.fromkeys(problems))  # without repeats, in order


def _names_match(reader, writer):
    """Named types resolve by unqualified name (or a reader alias)."""
    return writer.name in {reader.name, *map(_simple, reader.aliases)}


class _Resolver:
    """One can_read() computation; remembers record pairs for recursion."""

    def __init__(self):
        self.records = {}  # (id(reader), id(writer)) -> problems; None while in progress

    def check(self, reader, writer, path):
        """Problems resolving writer to reader at `path` (a field path)."""
        if isinstance(writer, Union):
            return [p for b in writer.branches for p in self.check(reader, b, path)]
        if isinstance(reader, Union):
            return self._reader_union(reader, writer, path)
        at = path or "(root)"
        if reader.type != writer.type:
            if (reader.type, writer.type) in PROMOTIONS:
                return []
            return [f"{at}: reader type {reader.describe()} cannot read "
                    f"writer type {writer.describe()}"]
        if isinstance(reader, Named) and not _names_match(reader, writer):
            return [f"{at}: reader {reader.describe()} cannot read writer "
                    f"{writer.describe()} (names differ)"]
        if isinstance(reader, Array):
            return self.check(reader.items, writer.items, path + "[]")
        if isinstance(reader, Map):
            return self.check(reader.values, writer.values, path + "{}")
        if isinstance(reader, Enum):
            missing = [s for s in writer.symbols if s not in reader.symbols]
            if missing and reader.default is None:
                return [f"{at}: symbols {missing} of writer {writer.describe()} are "
                        f"not in the reader's enum, which has no default"]
            return []
        if isinstance(reader, Fixed):
            if reader.size != writer.size:
                return [f"{at}: reader {reader.describe()} has size {reader.size}, "
                        f"the writer's has size {writer.size}"]
            return []
        if isinstance(reader, Record):
            return self._record(reader, writer, path or reader.name)
        return []  # the same primitive

    def _reader_union(self, reader, writer, path):
        """A non-union writer: some branch of the reader must read it."""
        candidates = []
        for branch in reader.branches:
            problems = self.check(branch, writer, path)
            if not problems:
                return []
            same_kind = branch.type == writer.type and (
                not isinstance(branch, Named) or _names_match(branch, writer))
            if same_kind:
                candidates.append(problems)
        if len(candidates) == 1:
            return candidates[0]
        return [f"{path or '(root)'}: no branch of the reader's union "
                f"{reader.describe()} can read writer type {writer.describe()}"]

    def _record(self, reader, writer, path):
        key = (id(reader), id(writer))
        if key in self.records:
            return self.records[key] or []  # in progress: assumed readable
        self.records[key] = None
        problems = []
        by_name = {f.name: f for f in writer.fields}
        for rf in reader.fields:
            wf = next((by_name[n] for n in [rf.name, *rf.aliases] if n in by_name), None)
            if wf is not None:
                problems += self.check(rf.schema, wf.schema, f"{path}.{rf.name}")
            elif not rf.has_default:
                problems.append(f"{path}.{rf.name}: the reader's field has no default "
                                f"and the writer {writer.describe()} has no such field")
        self.records[key] = problems
        return problems


def check_history(directory):
    """The BACKWARD_TRANSITIVE problems of a schema directory, and the numbers
    of current schemas and previous versions checked."""
    directory = Path(directory)
    problems = []
    current = {}
    for path in sorted(directory.glob("*.avsc")):
        try:
            current[path.stem] = parse_file(path)
        except (OSError, SchemaError) as e:
            problems.append(f"{path.name}: {e}")
    versions = 0
    for path in sorted((directory / "history").glob("*.avsc")):
        rel = f"history/{path.name}"
        m = re.fullmatch(r"(.+)\.v([1-9][0-9]*)\.avsc", path.name)
        if not m:
            problems.append(f"{rel}: not named <Name>.v<N>.avsc")
            continue
        if m.group(1) not in current:
            # An unreadable current schema was reported above.
            if not (directory / f"{m.group(1)}.avsc").exists():
                problems.append(f"{rel}: no current schema {m.group(1)}.avsc")
            continue
        try:
            previous = parse_file(path)
        except (OSError, SchemaError) as e:
            problems.append(f"{rel}: {e}")
            continue
        versions += 1
        problems += [f"{m.group(1)}.avsc cannot read {rel}: {p}"
                     for p in can_read(current[m.group(1)], previous)]
    return problems, len(current), versions


def main(argv=None):
    """The command line; returns the exit status."""
    ap = argparse.ArgumentParser(
        description="Avro schema compatibility (schema resolution) checker.")
    ap.add_argument("--history", metavar="DIR",
                    help="check every DIR/*.avsc against its DIR/history/<Name>.v<N>.avsc")
    ap.add_argument("reader", nargs="?", help="reader schema file")
    ap.add_argument("writer", nargs="?", help="writer schema file")
    args = ap.parse_args(argv)
    if args.history is not None:
        if args.reader or args.writer:
            ap.error("--history takes no schema files")
        problems, schemas, versions = check_history(args.history)
        for p in problems:
            print(p)
        if problems:
            return 1
        print(f"avro_compat: every current schema ({schemas}) reads every previous "
              f"version ({versions}): BACKWARD_TRANSITIVE")
        return 0
    if not (args.reader and args.writer):
        ap.error("give READER.avsc WRITER.avsc, or --history DIR")
    try:
        reader, writer = parse_file(args.reader), parse_file(args.writer)
    except (OSError, SchemaError) as e:
        print(f"avro_compat: {e}")
        return 1
    problems = can_read(reader, writer)
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"avro_compat: {args.reader} can read data written with {args.writer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
