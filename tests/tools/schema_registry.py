#!/usr/bin/env python3
"""A test Schema Registry: the subset of Confluent's REST API that refstream
and confluent-kafka-python's Avro serializers use, in memory (stdlib only).

API (under --prefix, for instance /apis/ccompat/v7 as Apicurio serves it):
  GET  /schemas/ids/{id}                     {"schema"[, "schemaType"][, "references"]}
  GET  /schemas/ids/{id}/versions            [{"subject", "version"}, ...]
  GET  /subjects                             ["subject", ...]
  GET  /subjects/{s}/versions                [1, 2, ...]
  GET  /subjects/{s}/versions/{v|latest}     {"subject", "id", "version", "schema", ...}
  POST /subjects/{s}/versions                register: {"id"}
  POST /subjects/{s}                         look up: {"subject", "id", "version", "schema", ...}
  GET|PUT /config, GET|PUT /config/{s}       compatibility levels
  POST /compatibility/subjects/{s}/versions/{v|latest}   {"is_compatible"[, "messages"]}
Query strings (?normalize=, ?subject=, ?fetchMaxId=, ...) are ignored, except
defaultToGlobal on GET /config/{s} and verbose on the compatibility check.
Errors are {"error_code", "message"} with Confluent's codes. Ids are global:
the same schema (same type, canonical JSON and references) has one id under
every subject. Avro schemas are validated and checked for compatibility with
avro_compat.py; JSON and PROTOBUF schemas are stored as given, unchecked.

Command line:
  schema_registry.py [--port N] [--port-file F] [--control-port-file F]
                     [--prefix P] [--basic-auth USER:PASSWORD] [--first-id N]
                     [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
Listens on 127.0.0.1 only (--port 0, the default: any free port), writes the
port files atomically once listening (the control one last), logs one line
per request on stderr, and exits 0 on SIGTERM or SIGINT. With --basic-auth,
API requests without those credentials get 401 (error_code 40101).
With --tls-cert and --tls-key (PEM), the API is served over HTTPS with that
certificate; with --tls-client-ca too, only to clients presenting a
certificate signed by that CA (a failed handshake is logged and the connection
closed). The control listener is plain HTTP in any case.

Control listener (--control-port-file; no authentication, own port):
  POST /mode {"mode": "ok"|"refuse"|"error500"|"hang"}   GET /mode
      refuse: the API's listening socket and its connections are closed, "ok"
      (or another mode) reopens it on the same port; error500: every API
      request gets 500 error_code 50001; hang: API requests get no answer
      until the mode changes.
  GET /stats        {"requests": {"<METHOD> <route>": n}, "schema_ids": {"<id>": n}}
      API requests received, by route pattern ("GET /schemas/ids/{id}", ...;
      "<METHOD> (no route)" for others), and GET /schemas/ids/{id} by id.
  POST /reset-stats
"""

import argparse
import base64
import binascii
import contextlib
import hmac
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote

import avro_compat

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
REQUEST_TYPES = frozenset([MEDIA_TYPE, "application/vnd.schemaregistry+json",
                           "application/json", "application/octet-stream"])
ACCEPTABLE = frozenset([MEDIA_TYPE, "application/vnd.schemaregistry+json",
                        "application/json", "application/*", "*/*"])
LEVELS = ("NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
          "FULL", "FULL_TRANSITIVE")
SCHEMA_TYPES = ("AVRO", "JSON", "PROTOBUF")
MODES = ("ok", "refuse", "error500", "hang")
MAX_VERSION = 2**31 - 1
_DIGITS = re.compile(r"[0-9]+")

# Route patterns; "{...}" segments are parameters.
ROUTES = {
    "/schemas/ids/{id}": {"GET": "get_schema"},
    "/schemas/ids/{id}/versions": {"GET": "get_schema_versions"},
    "/subjects": {"GET": "get_subjects"},
    "/subjects/{s}": {"POST": "lookup"},
    "/subjects/{s}/versions": {"GET": "get_versions", "POST": "register"},
    "/subjects/{s}/versions/{v}": {"GET": "get_version"},
    "/config": {"GET": "get_config", "PUT": "put_config"},
    "/config/{s}": {"GET": "get_config", "PUT": "put_config"},
    "/compatibility/subjects/{s}/versions/{v}": {"POST": "check_compatibility"},
}


class ApiError(Exception):
    """An error answer: HTTP status, Confluent error_code and message."""

    def __init__(self, status, error_code, message):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def _not_found_http():
    return ApiError(404, 404, "HTTP 404 Not Found")


def _subject_not_found(subject):
    return ApiError(404, 40401, f"Subject '{subject}' not found.")


def _invalid_schema(text, details):
    return ApiError(422, 42201, f"Invalid schema {text}, details: {details}")


def match_route(segments):
    """(pattern, params) of the route for the decoded path segments, or
    (None, None)."""
    for pattern in ROUTES:
        parts = pattern.strip("/").split("/")
        if len(parts) != len(segments):
            continue
        params = {}
        for part, seg in zip(parts, segments, strict=True):
            if part.startswith("{"):
                if not seg:
                    break
                params[part[1:-1]] = seg
            elif part != seg:
                break
        else:
            return pattern, params
    return None, None


class StoredSchema:
    """A registered schema: its id, text as first registered, type,
    references, canonical key and (Avro) parsed tree."""

    def __init__(self, sid, candidate):
        self.id = sid
        self.text = candidate.text
        self.schema_type = candidate.schema_type
        self.references = candidate.references
        self.key = candidate.key
        self.parsed = candidate.parsed


class Candidate:
    """A schema from a request body, validated."""

    def __init__(self, text, schema_type, references, parsed):
        self.text = text
        self.schema_type = schema_type
        self.references = references
        self.parsed = parsed
        canonical = text
        if schema_type != "PROTOBUF":
            canonical = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
        self.key = (schema_type, canonical, json.dumps(references, sort_keys=True))


class Registry:
    """The schemas, subjects and compatibility levels, behind one lock. Each
    public method answers one API route: it takes the route's parameters,
    the query and the request body, and returns the answer's JSON value or
    raises ApiError."""

    def __init__(self, first_id):
        self.lock = threading.RLock()
        self.next_id = first_id
        self.schemas = {}         # id -> StoredSchema
        self.ids_by_key = {}      # canonical key -> id
        self.subjects = {}        # subject -> [id of version 1, of version 2, ...]
        self.global_level = "BACKWARD"
        self.subject_levels = {}  # subject -> level

    # -- schemas --------------------------------------------------------------

    def get_schema(self, params, query, body):
        stored = self._schema_by_id(params["id"])
        answer = {"schema": stored.text}
        if stored.schema_type != "AVRO":
            answer["schemaType"] = stored.schema_type
        if stored.references:
            answer["references"] = stored.references
        return answer

    def get_schema_versions(self, params, query, body):
        stored = self._schema_by_id(params["id"])
        return [{"subject": s, "version": i + 1}
                for s, ids in sorted(self.subjects.items())
                for i, sid in enumerate(ids) if sid == stored.id]

    def _schema_by_id(self, text):
        if not _DIGITS.fullmatch(text):
            raise _not_found_http()
        stored = self.schemas.get(int(text))
        if stored is None:
            raise ApiError(404, 40403, f"Schema {text} not found")
        return stored

    # -- subjects -------------------------------------------------------------

    def get_subjects(self, params, query, body):
        return sorted(self.subjects)

    def get_versions(self, params, query, body):
        return list(range(1, len(self._versions(params["s"])) + 1))

    def get_version(self, params, query, body):
        subject = params["s"]
        version = self._version_number(subject, params["v"])
        return self._version_answer(subject, version)

    def lookup(self, params, query, body):
        subject = params["s"]
        ids = self._versions(subject)
        key = self._candidate(body).key
        for i, sid in enumerate(ids):
            if self.schemas[sid].key == key:
                return self._version_answer(subject, i + 1)
        raise ApiError(404, 40403, "Schema not found")

    def register(self, params, query, body):
        subject = params["s"]
        candidate = self._candidate(body)
        ids = self.subjects.get(subject, [])
        for sid in ids:
            if self.schemas[sid].key == candidate.key:
                return {"id": sid}
        level = self._level(subject)
        problems = self._incompatibilities(candidate, subject, range(1, len(ids) + 1), level)
        if problems:
            details = ", ".join(f"{{description:'{p}'}}" for p in problems)
            raise ApiError(409, 409, "Schema being registered is incompatible with an "
                           f"earlier schema for subject \"{subject}\", details: "
                           f"[{details}, {{compatibility: '{level}'}}]")
        sid = self.ids_by_key.get(candidate.key)
        if sid is None:
            sid = self.next_id
            self.next_id += 1
            self.schemas[sid] = StoredSchema(sid, candidate)
            self.ids_by_key[candidate.key] = sid
        self.subjects.setdefault(subject, []).append(sid)
        return {"id": sid}

    def _versions(self, subject):
        ids = self.subjects.get(subject)
        if not ids:
            raise _subject_not_found(subject)
        return ids

    def _version_number(self, subject, text):
        """The version that `text` ("latest", "-1" or 1..2^31-1) names."""
        ids = self._versions(subject)
        if text in ("latest", "-1"):
            return len(ids)
        if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= MAX_VERSION:
            raise ApiError(422, 42202, f"The specified version '{text}' is not a valid "
                           "version id. Allowed values are between [1, 2^31-1] and the "
                           "string \"latest\"")
        if int(text) > len(ids):
            raise ApiError(404, 40402, f"Version {int(text)} not found.")
        return int(text)

    def _version_answer(self, subject, version):
        stored = self.schemas[self.subjects[subject][version - 1]]
        answer = {"subject": subject, "version": version, "id": stored.id,
                  "schema": stored.text}
        if stored.schema_type != "AVRO":
            answer["schemaType"] = stored.schema_type
        if stored.references:
            answer["references"] = stored.references
        return answer

    # -- schema validation ----------------------------------------------------

    def _candidate(self, body):
        """The schema of a request body, validated (references resolved)."""
        if not isinstance(body, dict):
            raise ApiError(400, 400, "The request body must be a JSON object")
        text = body.get("schema")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(422, 42201, "Empty schema")
        schema_type = body.get("schemaType") or "AVRO"
        if schema_type not in SCHEMA_TYPES:
            raise ApiError(422, 42201, f"Invalid schema type {schema_type}")
        references = body.get("references") or []
        if not isinstance(references, list) or not all(
                isinstance(r, dict) and isinstance(r.get("name"), str)
                and isinstance(r.get("subject"), str) and isinstance(r.get("version"), int)
                for r in references):
            raise _invalid_schema(text, "references must be objects with a name, "
                                  "a subject and a version")
        references = [{"name": r["name"], "subject": r["subject"], "version": r["version"]}
                      for r in references]
        parsed = None
        try:
            if schema_type == "AVRO":
                names = {}
                self._load_references(references, names, set())
                parsed = avro_compat.parse(text, names)
            elif schema_type == "JSON":
                json.loads(text)
        except (ValueError, avro_compat.SchemaError) as e:
            raise _invalid_schema(text, e) from None
        return Candidate(text, schema_type, references, parsed)

    def _load_references(self, references, names, loaded):
        """Adds the named types of the referenced Avro schemas (and of theirs)
        to `names`; `loaded` holds the ids already added."""
        for ref in references:
            ids = self.subjects.get(ref["subject"], [])
            if not 1 <= ref["version"] <= len(ids):
                raise avro_compat.SchemaError(
                    f"reference '{ref['name']}': subject '{ref['subject']}' has no "
                    f"version {ref['version']}")
            stored = self.schemas[ids[ref["version"] - 1]]
            if stored.id in loaded:
                continue
            loaded.add(stored.id)
            self._load_references(stored.references, names, loaded)
            avro_compat.parse(stored.text, names)

    # -- compatibility --------------------------------------------------------

    def _level(self, subject):
        return self.subject_levels.get(subject, self.global_level)

    def _incompatibilities(self, candidate, subject, versions, level):
        """Why `candidate` may not follow `versions` of `subject` at `level`
        (all of them if transitive, else only the last)."""
        versions = list(versions)
        if level == "NONE" or not versions:
            return []
        if not level.endswith("_TRANSITIVE"):
            versions = versions[-1:]
        problems = []
        for version in versions:
            old = self.schemas[self.subjects[subject][version - 1]]
            if old.schema_type != candidate.schema_type:
                problems.append(f"version {version} is of type {old.schema_type}, "
                                f"the new schema of type {candidate.schema_type}")
            elif candidate.parsed is not None:
                if level.startswith(("BACKWARD", "FULL")):
                    problems += [f"the new schema cannot read version {version}: {p}"
                                 for p in avro_compat.can_read(candidate.parsed, old.parsed)]
                if level.startswith(("FORWARD", "FULL")):
                    problems += [f"version {version} cannot read the new schema: {p}"
                                 for p in avro_compat.can_read(old.parsed, candidate.parsed)]
        return problems

    def check_compatibility(self, params, query, body):
        subject = params["s"]
        version = self._version_number(subject, params["v"])
        candidate = self._candidate(body)
        level = self._level(subject)
        if level.endswith("_TRANSITIVE"):
            versions = range(1, len(self.subjects[subject]) + 1)
        else:
            versions = [version]
        problems = self._incompatibilities(candidate, subject, versions, level)
        answer = {"is_compatible": not problems}
        if query.get("verbose") == ["true"]:
            answer["messages"] = problems
        return answer

    # -- configuration --------------------------------------------------------

    def get_config(self, params, query, body):
        subject = params.get("s")
        if subject is None:
            return {"compatibilityLevel": self.global_level}
        level = self.subject_levels.get(subject)
        if level is None:
            if query.get("defaultToGlobal") != ["true"]:
                raise ApiError(404, 40408, f"Subject '{subject}' does not have "
                               "subject-level compatibility configured")
            level = self.global_level
        return {"compatibilityLevel": level}

    def put_config(self, params, query, body):
        level = body.get("compatibility") if isinstance(body, dict) else None
        if not isinstance(level, str) or level.upper() not in LEVELS:
            raise ApiError(422, 42203, "Invalid compatibility level. Valid values are none, "
                           "backward, forward, full, backward_transitive, "
                           "forward_transitive, and full_transitive")
        level = level.upper()
        if "s" in params:
            self.subject_levels[params["s"]] = level
        else:
            self.global_level = level
        return {"compatibility": level}


class Control:
    """The test-controlled mode and the request statistics."""

    def __init__(self):
        self.cond = threading.Condition()
        self.mode = "ok"
        self.requests = Counter()
        self.schema_ids = Counter()

    def count(self, route, schema_id):
        """Counts an API request (and a schema fetch, if schema_id)."""
        with self.cond:
            self.requests[route] += 1
            if schema_id is not None:
                self.schema_ids[schema_id] += 1

    def stats(self):
        """The /stats answer."""
        with self.cond:
            return {"requests": dict(self.requests), "schema_ids": dict(self.schema_ids)}

    def reset_stats(self):
        """Forgets the counts."""
        with self.cond:
            self.requests.clear()
            self.schema_ids.clear()

    def mode_after_hang(self):
        """The mode once it is not "hang"."""
        with self.cond:
            while self.mode == "hang":
                self.cond.wait()
            return self.mode


class Server(ThreadingHTTPServer):
    """A loopback HTTP server (HTTPS with an ssl.SSLContext `tls`) whose
    handler threads never delay shutdown, and which can cut its open
    connections."""

    daemon_threads = True  # not joined by server_close()

    def __init__(self, port, handler, app, label, tls=None):
        self.app = app
        self.label = label
        self.tls = tls
        self.connections = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), handler)

    def get_request(self):
        """The accepted connection, TLS-wrapped if `tls`: the handshake is
        left to the connection's thread (finish_request), so that a slow or
        failing client does not hold up accepting others."""
        request, client_address = super().get_request()
        if self.tls is not None:
            request = self.tls.wrap_socket(request, server_side=True,
                                           do_handshake_on_connect=False)
        return request, client_address

    def finish_request(self, request, client_address):
        if isinstance(request, ssl.SSLSocket):
            request.do_handshake()  # an SSLError goes to handle_error
        super().finish_request(request, client_address)

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def cut_connections(self):
        """Shuts the open connections down (their handlers then end)."""
        with self.connections_lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):  # already closed by the peer
                    conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address):
        log(f"{self.label} {client_address[0]}:{client_address[1]} "
            f"connection error: {sys.exc_info()[1]!r}")

    def start(self):
        """Serves in a background thread (polling for shutdown every 50 ms,
        so that refuse mode and SIGTERM act at once)."""
        threading.Thread(target=self.serve_forever, args=(0.05,), name=self.label,
                         daemon=True).start()

    def stop(self):
        """Stops serving and closes the listening socket and connections."""
        self.shutdown()
        self.server_close()
        self.cut_connections()


def log(line):
    """One line on stderr."""
    sys.stderr.write(f"schema_registry: {line}\n")
    sys.stderr.flush()


class JsonHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive) handler answering JSON, logging one line per
    request."""

    protocol_version = "HTTP/1.1"
    content_type = "application/json"

    def log_message(self, fmt, *args):
        log(f"{self.server.label} {self.client_address[0]}:{self.client_address[1]} "
            f"{fmt % args}")

    def send_json(self, status, value, headers=()):
        """Answers `value` as JSON."""
        data = json.dumps(value, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, val in headers:
            self.send_header(name, val)
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, err, headers=()):
        """Answers an ApiError."""
        self.send_json(err.status, {"error_code": err.error_code, "message": err.message},
                       headers)

    def read_body(self):
        """The request body (Content-Length or chunked), b"" if none."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def split_path(self, prefix=""):
        """The decoded path segments under `prefix` and the parsed query, or
        (None, query) if the path is not under prefix."""
        path, _, query = self.path.partition("?")
        query = parse_qs(query)
        if prefix:
            if path != prefix and not path.startswith(prefix + "/"):
                return None, query
            path = path[len(prefix):]
        segments = path.lstrip("/").split("/")
        if len(segments) > 1 and segments[-1] == "":
            segments.pop()  # a trailing slash
        return [unquote(s) for s in segments], query

    # Every method goes to handle_request, which answers 404 or 405 itself.
    def do_GET(self):
        self.handle_request()

    def do_POST(self):
        self.handle_request()

    def do_PUT(self):
        self.handle_request()

    def do_DELETE(self):
        self.handle_request()

    def handle_request(self):
        """Answers the request."""
        raise NotImplementedError


def _media_types(header):
    return {part.split(";")[0].strip().lower() for part in header.split(",")}


class ApiHandler(JsonHandler):
    """The Schema Registry API."""

    content_type = MEDIA_TYPE

    def handle_request(self):
        app = self.server.app
        body = self.read_body()
        segments, query = self.split_path(app.prefix)
        pattern, params = match_route(segments) if segments is not None else (None, None)
        schema_id = params["id"] if pattern == "/schemas/ids/{id}" else None
        app.control.count(f"{self.command} {pattern or '(no route)'}",
                          schema_id if self.command == "GET" else None)

        mode = app.control.mode_after_hang()
        if mode == "refuse":
            self.log_message('"%s" closed without an answer', self.requestline)
            self.close_connection = True
            return
        try:
            self.check_auth(app.basic_auth)
            if mode == "error500":
                raise ApiError(500, 50001, "Error in the backend data store")
            if pattern is None:
                raise _not_found_http()
            method = ROUTES[pattern].get(self.command)
            if method is None:
                raise ApiError(405, 405, "HTTP 405 Method Not Allowed")
            self.check_media_types(bool(body))
            try:
                value = json.loads(body) if body else None
            except ValueError as e:
                raise ApiError(400, 400, f"Malformed JSON request body: {e}") from None
            with app.registry.lock:
                answer = getattr(app.registry, method)(params, query, value)
        except ApiError as err:
            headers = ()
            if err.status == 401:
                headers = [("WWW-Authenticate", 'Basic realm="SchemaRegistry"')]
            self.send_error_json(err, headers)
        else:
            self.send_json(200, answer)

    def check_auth(self, credentials):
        """ApiError 401 unless the request carries `credentials` (if any)."""
        if credentials is None:
            return
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        try:
            given = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            given = b""
        if scheme.lower() != "basic" or not hmac.compare_digest(given, credentials):
            raise ApiError(401, 40101, "Unauthorized")

    def check_media_types(self, has_body):
        """ApiError 415 or 406 for media types the registry does not take or
        give."""
        content_type = self.headers.get("Content-Type")
        if has_body and content_type and not _media_types(content_type) & REQUEST_TYPES:
            raise ApiError(415, 415, "HTTP 415 Unsupported Media Type")
        accept = self.headers.get("Accept")
        if accept and not _media_types(accept) & ACCEPTABLE:
            raise ApiError(406, 406, "HTTP 406 Not Acceptable")


class ControlHandler(JsonHandler):
    """The test control API."""

    def handle_request(self):
        app = self.server.app
        body = self.read_body()
        segments, _ = self.split_path()
        route = f"{self.command} /{'/'.join(segments)}"
        if route == "GET /stats":
            self.send_json(200, app.control.stats())
        elif route == "POST /reset-stats":
            app.control.reset_stats()
            self.send_json(200, {})
        elif route == "GET /mode":
            self.send_json(200, {"mode": app.control.mode})
        elif route == "POST /mode":
            try:
                mode = json.loads(body).get("mode")
            except (ValueError, AttributeError):
                mode = None
            if mode not in MODES:
                self.send_json(400, {"error": f"mode must be one of {', '.join(MODES)}"})
            else:
                app.set_mode(mode)
                self.send_json(200, {"mode": mode})
        else:
            self.send_json(404, {"error": "not found"})


class App:
    """The registry, its API listener and the control listener."""

    def __init__(self, args, tls=None):
        self.registry = Registry(args.first_id)
        self.control = Control()
        self.prefix = args.prefix.rstrip("/")
        self.basic_auth = args.basic_auth.encode() if args.basic_auth else None
        self.tls = tls
        self.api = Server(args.port, ApiHandler, self, "api", tls)
        self.port = self.api.server_address[1]
        self.control_server = None
        if args.control_port_file:
            self.control_server = Server(0, ControlHandler, self, "control")

    def start(self):
        """Serves the API (and control) in background threads."""
        self.api.start()
        if self.control_server:
            self.control_server.start()

    def set_mode(self, mode):
        """Switches mode, closing or reopening the API listener as needed."""
        with self.control.cond:
            old = self.control.mode
            self.control.mode = mode
            if mode == "refuse" and old != "refuse":
                self.api.stop()
            elif old == "refuse" and mode != "refuse":
                self.api = Server(self.port, ApiHandler, self, "api", self.tls)
                self.api.start()
            self.control.cond.notify_all()
        log(f"mode {mode}")

    def stop(self):
        """Stops listening; hanging requests are left to die with the process
        (their threads are daemons)."""
        with self.control.cond:
            if self.control.mode != "refuse":
                self.api.stop()
        if self.control_server:
            self.control_server.stop()


def write_atomically(path, text):
    """Writes `text` to `path` through a rename, so readers see all or none."""
    tmp = f"{path}.tmp{os.getpid()}"
    Path(tmp).write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def tls_context(args):
    """The API's server-side ssl.SSLContext of --tls-*, None without; raises
    OSError or ssl.SSLError for unusable files."""
    if not args.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    if args.tls_client_ca:
        context.load_verify_locations(cafile=args.tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def main(argv=None):
    """Runs the registry until SIGTERM or SIGINT."""
    ap = argparse.ArgumentParser(description="A test Confluent-compatible Schema Registry.")
    ap.add_argument("--port", type=int, default=0, help="API port (0: any free port)")
    ap.add_argument("--port-file", help="write the API port here once listening")
    ap.add_argument("--control-port-file",
                    help="open the control listener and write its port here (after "
                         "--port-file is written)")
    ap.add_argument("--prefix", default="", help="serve the API under this path")
    ap.add_argument("--basic-auth", metavar="USER:PASSWORD",
                    help="require these HTTP basic credentials on the API")
    ap.add_argument("--first-id", type=int, default=1, help="the first schema id")
    ap.add_argument("--tls-cert", metavar="FILE",
                    help="serve the API over HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", metavar="FILE", help="the private key of --tls-cert (PEM)")
    ap.add_argument("--tls-client-ca", metavar="FILE",
                    help="require a client certificate signed by this CA (PEM)")
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        ap.error("--tls-client-ca needs --tls-cert and --tls-key")
    if args.basic_auth is not None and ":" not in args.basic_auth:
        ap.error("--basic-auth takes USER:PASSWORD")
    if args.prefix and not args.prefix.startswith("/"):
        ap.error("--prefix must start with /")
    try:
        tls = tls_context(args)
    except OSError as e:  # ssl.SSLError included
        ap.error(f"unusable TLS files: {e}")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    app = App(args, tls)
    app.start()
    if args.port_file:
        write_atomically(args.port_file, f"{app.port}\n")
    if app.control_server:
        write_atomically(args.control_port_file, f"{app.control_server.server_address[1]}\n")
    log(f"listening on {'https' if tls else 'http'}://127.0.0.1:{app.port}{app.prefix}"
        + (f", control on 127.0.0.1:{app.control_server.server_address[1]}"
           if app.control_server else ""))
    stop.wait()
    app.stop()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
