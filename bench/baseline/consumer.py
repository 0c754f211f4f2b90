#!/usr/bin/env python3
"""Benchmark baseline: a straightforward per-message referral consumer.

What a team would write in an afternoon to do refstream's job for one program
(fixed referrer reward, optional referee reward, minimum payment, currency,
attribution window), so a benchmark can run it and refstream on the same
stream and compare events per second. See README.md beside this file.

Per input record: decode (Confluent-framed Avro or JSON), then one Postgres
transaction (inbox row for idempotency, the rules of docs/rules.md §2-§4 and
§6 for that one program), COMMIT, produce a JSON record per credit (and per
reversed credit), then store the record's offset (auto-commit sends it).
Referral codes are looked up through Redis (GET; on a miss a SELECT, then SET
with a TTL).
"""
import argparse
import hashlib
import io
import json
import os
import re
import signal
import struct
import sys
import time
from datetime import datetime, timedelta, timezone

import fastavro
import psycopg2
import psycopg2.extras
import redis
from confluent_kafka import Consumer, KafkaError, Producer

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "schemas"))
SCHEMA_SQL = os.path.join(HERE, "schema.sql")

DAY_MS = 86_400_000
YEAR_3000_MS = 32_503_680_000_000
CODE_RE = re.compile(r"[A-Z0-9_-]{4,32}\Z")
CURRENCY_RE = re.compile(r"[A-Z]{3}\Z")
C_SPACE = " \t\n\v\f\r"
ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def log(msg):
    print(f"baseline: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ decoding


class Malformed(Exception):
    pass


def _strip_logical_types(node):
    """Timestamps stay epoch milliseconds (ints) instead of datetimes."""
    if isinstance(node, dict):
        node.pop("logicalType", None)
        for v in node.values():
            _strip_logical_types(v)
    elif isinstance(node, list):
        for v in node:
            _strip_logical_types(v)
    return node


def _load_avsc(rel):
    with open(os.path.join(SCHEMA_DIR, rel), encoding="utf-8") as f:
        return fastavro.parse_schema(_strip_logical_types(json.load(f)))


class Decoder:
    """Confluent framing with the fixed ids of schemas/manifest.json, or JSON."""

    def __init__(self):
        with open(os.path.join(SCHEMA_DIR, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        self.by_id = {}
        for s in manifest["schemas"]:
            if s["name"] not in ("SignupEvent", "PaymentEvent"):
                continue
            # Newest first; an older version is a prefix of the newer one.
            versions = [_load_avsc(s["file"])]
            versions += [_load_avsc(o) for o in reversed(s.get("older", []))]
            self.by_id[s["id"]] = (s["name"], versions)

    def decode(self, value, expected):
        """expected: 'SignupEvent' or 'PaymentEvent'. Returns a dict."""
        if not value:
            raise Malformed("bad_framing: empty record")
        if value[0] == 0:
            if len(value) < 5:
                raise Malformed("bad_framing: framed record shorter than 5 bytes")
            (sid,) = struct.unpack_from(">I", value, 1)
            entry = self.by_id.get(sid)
            if entry is None:
                raise Malformed(f"unknown_schema: id {sid}")
            name, versions = entry
            if name != expected:
                raise Malformed(f"wrong_schema: {name} on the {expected} topic")
            body = value[5:]
            rec = None
            for schema in versions:
                bio = io.BytesIO(body)
                try:
                    r = fastavro.schemaless_reader(bio, schema, None)
                except Exception:
                    continue
                if bio.tell() == len(body):
                    rec = r
                    break
            if rec is None:
                raise Malformed("avro_decode: body does not decode")
        elif value.lstrip()[:1] == b"{":
            try:
                rec = json.loads(value)
            except ValueError as e:
                raise Malformed(f"json_decode: {e}")
            if not isinstance(rec, dict):
                raise Malformed("json_decode: not an object")
            rec["occurred_at"] = _json_time(rec.get("occurred_at"))
        else:
            raise Malformed("bad_framing: neither 0x00-framed nor a JSON object")
        return _validate(rec, expected)


def _json_time(v):
    if v is None:
        return None
    if isinstance(v, bool):
        raise Malformed("invalid_field: occurred_at")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v)
        except ValueError:
            raise Malformed("invalid_field: occurred_at is not RFC 3339")
        if dt.tzinfo is None:
            raise Malformed("invalid_field: occurred_at has no offset")
        return (dt - EPOCH) // timedelta(milliseconds=1)
    raise Malformed("invalid_field: occurred_at")


def _string(rec, field, lo, hi, optional=False):
    v = rec.get(field)
    if v is None:
        if optional:
            return None
        raise Malformed(f"missing_field: {field}")
    if not isinstance(v, str):
        raise Malformed(f"invalid_field: {field} is not a string")
    n = len(v.encode("utf-8", "surrogatepass"))
    if n < lo or n > hi or "\x00" in v:
        raise Malformed(f"invalid_field: {field} length {n}")
    return v


def _validate(rec, expected):
    ev = {
        "event_id": _string(rec, "event_id", 1, 64),
        "user_id": _string(rec, "user_id", 1, 128),
    }
    at = rec.get("occurred_at")
    if at is None:
        raise Malformed("missing_field: occurred_at")
    if not isinstance(at, int) or isinstance(at, bool) or not 0 < at < YEAR_3000_MS:
        raise Malformed("invalid_field: occurred_at out of range")
    ev["occurred_at"] = at
    if expected == "SignupEvent":
        ev["type"] = "signup"
        ev["referral_code"] = _string(rec, "referral_code", 0, 256, optional=True)
        ev["email_hash"] = _string(rec, "email_hash", 1, 128, optional=True)
        return ev
    ev["type"] = "payment"
    ev["payment_id"] = _string(rec, "payment_id", 1, 128)
    amount = rec.get("amount_minor")
    if amount is None:
        raise Malformed("missing_field: amount_minor")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount < 2**63:
        raise Malformed("invalid_field: amount_minor")
    ev["amount_minor"] = amount
    currency = _string(rec, "currency", 3, 3)
    if not CURRENCY_RE.match(currency):
        raise Malformed("invalid_field: currency")
    ev["currency"] = currency
    kind = rec.get("kind")
    if kind is None:
        raise Malformed("missing_field: kind")
    if kind not in ("CHARGE", "REFUND"):
        raise Malformed("invalid_field: kind")
    ev["kind"] = kind
    ev["refund_of"] = _string(rec, "refund_of", 1, 128, optional=True)
    if kind == "REFUND" and ev["refund_of"] is None:
        raise Malformed("missing_field: refund_of (a refund needs it)")
    ev["payment_fingerprint"] = _string(rec, "payment_fingerprint", 1, 128, optional=True)
    return ev


# ------------------------------------------------------------------ ids


def _uuid8(*parts):
    """Deterministic ids, the same scheme as refstream's (docs/events.md §4),
    so the two systems' credits can be matched one by one."""
    h = bytearray(hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x80
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def referral_id(program, referee):
    return _uuid8("refstream/referral", program, referee)


def credit_id(program, referee, role):
    return _uuid8("refstream/credit", program, referee, role)


def normalise_code(raw):
    return raw.strip(C_SPACE).translate(ASCII_UPPER)


def now_ms():
    return int(time.time() * 1000)


# ------------------------------------------------------------------ code cache


class CodeCache:
    """GET code -> [owner, program]; on a miss SELECT from Postgres and SET with
    a TTL ("" for an unknown code, with a shorter TTL). Redis errors fall back
    to Postgres."""

    def __init__(self, url, dbname, ttl_s, negative_ttl_s):
        self.r = None
        if url:
            self.r = redis.Redis.from_url(url, socket_timeout=0.25,
                                          socket_connect_timeout=0.25)
        self.prefix = f"bl:code:{dbname}:"
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.hits = self.misses = self.errors = 0

    def lookup(self, cur, code):
        key = self.prefix + code
        if self.r is not None:
            try:
                v = self.r.get(key)
            except redis.RedisError:
                v = None
                self.errors += 1
            if v is not None:
                self.hits += 1
                return tuple(json.loads(v)) if v else None
        self.misses += 1
        cur.execute("SELECT owner, program FROM bl_codes WHERE code = %s", (code,))
        row = cur.fetchone()
        if self.r is not None:
            try:
                if row:
                    self.r.set(key, json.dumps(list(row)), ex=self.ttl_s)
                elif self.negative_ttl_s > 0:
                    self.r.set(key, "", ex=self.negative_ttl_s)
            except redis.RedisError:
                self.errors += 1
        return row

    def clear(self):
        if self.r is None:
            return
        keys = list(self.r.scan_iter(match=self.prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            self.r.delete(*keys[i:i + 500])


# ------------------------------------------------------------------ rules


class Rules:
    """The rules of docs/rules.md for one program, one event per transaction.

    Every event first takes a transaction-scoped advisory lock on its user
    (the referee for sign-ups and payments alike), so a sign-up and that
    user's payments handled by two processes at once cannot miss each other;
    the rows updated are also locked with SELECT ... FOR UPDATE."""

    def __init__(self, conn, program, cache):
        self.conn = conn
        self.p = program
        self.cache = cache
        self.referrals = self.credits = self.reversals = self.rejections = 0

    # Returns (new, outputs): new is False for a duplicate; outputs is a list
    # of ('credited'|'reversed', key, record dict) to publish after COMMIT.
    def process(self, ev):
        out = []
        counts = [0, 0, 0, 0]
        with self.conn.cursor() as cur:
            cur.execute("INSERT INTO bl_inbox (kind, event_id) VALUES (%s, %s) "
                        "ON CONFLICT DO NOTHING", (ev["type"], ev["event_id"]))
            if cur.rowcount == 0:
                self.conn.rollback()
                return False, out
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                        (ev["user_id"],))
            if ev["type"] == "signup":
                self._signup(cur, ev, out, counts)
            elif ev["kind"] == "CHARGE":
                self._charge(cur, ev, out, counts)
            else:
                self._refund(cur, ev, out, counts)
        self.conn.commit()
        self.referrals += counts[0]
        self.credits += counts[1]
        self.reversals += counts[2]
        self.rejections += counts[3]
        return True, out

    def _reject(self, cur, counts, kind, ev_id, user, reason, code, detail):
        cur.execute("INSERT INTO bl_rejections (kind, event_id, user_id, reason, code, detail) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    (kind, ev_id, user, reason, code, detail))
        counts[3] += 1

    # -- sign-ups (§2)

    def _signup(self, cur, ev, out, counts):
        user = ev["user_id"]
        cur.execute(
            "INSERT INTO bl_users (user_id, email_hash, signed_up_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (user_id) DO UPDATE SET "
            " email_hash = COALESCE(bl_users.email_hash, EXCLUDED.email_hash),"
            " signed_up_at = COALESCE(bl_users.signed_up_at, EXCLUDED.signed_up_at) "
            "RETURNING email_hash",
            (user, ev["email_hash"] or None, ev["occurred_at"]))
        referee_hash = ev["email_hash"] or cur.fetchone()[0]
        raw = ev["referral_code"]
        if raw is None:
            return
        code = normalise_code(raw)
        if not code:
            return  # a blank code is no referral intent

        def rej(reason, detail, c=code):
            self._reject(cur, counts, "signup", ev["event_id"], user, reason, c, detail)
        found = self.cache.lookup(cur, code) if CODE_RE.match(code) else None
        if found is None or found[1] != self.p["key"]:
            return rej("UNKNOWN_CODE", "no such referral code", code[:64])
        owner = found[0]
        if owner == user:
            return rej("SELF_REFERRAL", "the code belongs to the referee")
        key = self.p["key"]
        cur.execute(
            "SELECT (SELECT email_hash FROM bl_users WHERE user_id = %s),"
            "       (SELECT code FROM bl_referrals WHERE referee = %s AND program = %s),"
            "       EXISTS (SELECT 1 FROM bl_referrals"
            "               WHERE referee = %s AND program = %s AND referrer = %s)",
            (owner, user, key, owner, key, user))
        owner_hash, existing, cycle = cur.fetchone()
        if referee_hash and owner_hash == referee_hash:
            return rej("SELF_REFERRAL", "referrer and referee have the same email_hash")
        if existing is not None:
            return rej("ALREADY_REFERRED", f"already referred by code {existing}")
        if cycle:
            return rej("REFERRAL_CYCLE", "the referrer was referred by the referee")
        rid = referral_id(key, user)
        cur.execute(
            "INSERT INTO bl_referrals (id, program, code, referrer, referee, status,"
            " signup_event_id, signup_at) VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s) "
            "ON CONFLICT DO NOTHING",
            (rid, key, code, owner, user, ev["event_id"], ev["occurred_at"]))
        if cur.rowcount == 0:  # another process won the race
            return rej("ALREADY_REFERRED", "already referred")
        cur.execute("UPDATE bl_codes SET uses = uses + 1 WHERE code = %s", (code,))
        counts[0] += 1
        # The referee may have paid before this sign-up was processed (§6).
        cur.execute("SELECT payment_id, event_id, amount_minor, currency, occurred_at "
                    "FROM bl_first_charges WHERE user_id = %s", (user,))
        row = cur.fetchone()
        if row:
            charge = dict(zip(("payment_id", "event_id", "amount_minor", "currency",
                               "occurred_at"), row))
            ref = {"id": rid, "code": code, "referrer": owner, "referee": user,
                   "signup_at": ev["occurred_at"]}
            self._try_qualify(cur, ref, charge, out, counts)

    # -- payments (§3, §4)

    def _try_qualify(self, cur, ref, ch, out, counts):
        p = self.p
        reason = None
        if (ch["occurred_at"] < ref["signup_at"]
                or ch["occurred_at"] - ref["signup_at"] > p["window_days"] * DAY_MS):
            reason = ("OUTSIDE_WINDOW", f"payment {ch['payment_id']} is not within "
                      f"{p['window_days']} days after the sign-up")
        elif ch["currency"] != p["currency"]:
            reason = ("CURRENCY_MISMATCH", f"payment currency {ch['currency']}, "
                      f"program currency {p['currency']}")
        elif ch["amount_minor"] < p["min_payment"]:
            reason = ("BELOW_MINIMUM", f"payment {ch['amount_minor']} below the minimum "
                      f"{p['min_payment']}")
        if reason:
            self._reject(cur, counts, "payment", ch["event_id"], ref["referee"],
                         reason[0], ref["code"], reason[1])
            return
        cur.execute("UPDATE bl_referrals SET status = 'credited', payment_id = %s,"
                    " payment_event_id = %s, qualified_at = %s, updated_at = now() "
                    "WHERE id = %s",
                    (ch["payment_id"], ch["event_id"], ch["occurred_at"], ref["id"]))
        credits = [("REFERRER", ref["referrer"], p["referrer_reward"])]
        if p["referee_reward"] is not None:
            credits.append(("REFEREE", ref["referee"], p["referee_reward"]))
        at = now_ms()
        for role, beneficiary, amount in credits:
            cid = credit_id(p["key"], ref["referee"], role)
            cur.execute("INSERT INTO bl_credits (id, referral_id, role, beneficiary,"
                        " amount_minor, currency, source_event_id) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        (cid, ref["id"], role, beneficiary, amount, p["currency"],
                         ch["event_id"]))
            out.append(("credited", beneficiary, {
                "credit_id": cid, "referral_id": ref["id"], "program_key": p["key"],
                "code": ref["code"], "referrer_user_id": ref["referrer"],
                "referee_user_id": ref["referee"], "beneficiary_user_id": beneficiary,
                "role": role, "amount_minor": amount, "currency": p["currency"],
                "source_event_id": ch["event_id"], "credited_at": at}))
            counts[1] += 1
        # A refund of this charge processed before it credited anything (§6).
        cur.execute("SELECT event_id FROM bl_held_refunds WHERE user_id = %s AND"
                    " refund_of = %s AND NOT applied FOR UPDATE",
                    (ref["referee"], ch["payment_id"]))
        held = cur.fetchone()
        if held:
            self._reverse(cur, ref["id"], held[0], out, counts)
            cur.execute("UPDATE bl_held_refunds SET applied = true WHERE user_id = %s"
                        " AND refund_of = %s", (ref["referee"], ch["payment_id"]))

    def _charge(self, cur, ev, out, counts):
        user = ev["user_id"]
        cur.execute(
            "INSERT INTO bl_first_charges (user_id, payment_id, event_id, amount_minor,"
            " currency, occurred_at) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (user_id) DO UPDATE SET payment_id = EXCLUDED.payment_id,"
            " event_id = EXCLUDED.event_id, amount_minor = EXCLUDED.amount_minor,"
            " currency = EXCLUDED.currency, occurred_at = EXCLUDED.occurred_at "
            "WHERE bl_first_charges.occurred_at > EXCLUDED.occurred_at",
            (user, ev["payment_id"], ev["event_id"], ev["amount_minor"], ev["currency"],
             ev["occurred_at"]))
        cur.execute("SELECT id, code, referrer, signup_at FROM bl_referrals "
                    "WHERE referee = %s AND program = %s AND status = 'pending' FOR UPDATE",
                    (user, self.p["key"]))
        for rid, code, referrer, signup_at in cur.fetchall():
            ref = {"id": rid, "code": code, "referrer": referrer, "referee": user,
                   "signup_at": signup_at}
            self._try_qualify(cur, ref, ev, out, counts)

    def _reverse(self, cur, rid, refund_event_id, out, counts):
        cur.execute("UPDATE bl_referrals SET status = 'reversed', reversal_event_id = %s,"
                    " updated_at = now() WHERE id = %s", (refund_event_id, rid))
        cur.execute("UPDATE bl_credits SET reversed_at = now(), reversal_event_id = %s "
                    "WHERE referral_id = %s AND reversed_at IS NULL "
                    "RETURNING id, beneficiary, amount_minor, currency",
                    (refund_event_id, rid))
        at = now_ms()
        for cid, beneficiary, amount, currency in cur.fetchall():
            out.append(("reversed", beneficiary, {
                "credit_id": cid, "referral_id": rid, "beneficiary_user_id": beneficiary,
                "amount_minor": amount, "currency": currency,
                "source_event_id": refund_event_id, "reversed_at": at,
                "reason": "REFUND"}))
            counts[2] += 1

    def _refund(self, cur, ev, out, counts):
        user = ev["user_id"]
        cur.execute("SELECT id, status FROM bl_referrals WHERE referee = %s AND"
                    " payment_id = %s FOR UPDATE", (user, ev["refund_of"]))
        rows = cur.fetchall()
        for rid, status in rows:
            if status == "credited":
                self._reverse(cur, rid, ev["event_id"], out, counts)
        if not rows:
            # The charge may credit a referral later (sign-up not seen yet).
            cur.execute("INSERT INTO bl_held_refunds (user_id, refund_of, event_id,"
                        " occurred_at) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (user, ev["refund_of"], ev["event_id"], ev["occurred_at"]))


# ------------------------------------------------------------------ setup


def init_schema(conn, args, cache):
    with open(SCHEMA_SQL, encoding="utf-8") as f:
        sql = f.read()
    codes = []
    if args.codes_file:
        with open(args.codes_file, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                parts = line.split("\t")
                if len(parts) != 2 or not parts[1]:
                    sys.exit(f"baseline: {args.codes_file}:{n}: expected CODE<TAB>OWNER")
                code = normalise_code(parts[0])
                if not CODE_RE.match(code):
                    sys.exit(f"baseline: {args.codes_file}:{n}: bad code {parts[0]!r}")
                codes.append((code, parts[1], args.program))
    with conn.cursor() as cur:
        cur.execute(sql)
        cur.execute("INSERT INTO bl_programs (key, currency, referrer_reward, referee_reward,"
                    " min_payment, window_days) VALUES (%s, %s, %s, %s, %s, %s)",
                    (args.program,
                     args.currency or "USD",
                     args.reward if args.reward is not None else 1000,
                     args.referee_reward,
                     args.min_payment if args.min_payment is not None else 0,
                     args.window_days if args.window_days is not None else 30))
        psycopg2.extras.execute_values(
            cur, "INSERT INTO bl_codes (code, owner, program) VALUES %s", codes)
    conn.commit()
    cache.clear()
    log(f"initialised the bl_ tables: program {args.program}, {len(codes)} codes")


def load_program(conn, args):
    """The program's row; settings given on the command line update it first."""
    with conn.cursor() as cur:
        if not args.init:
            sets = [(col, val) for col, val in (
                ("currency", args.currency), ("referrer_reward", args.reward),
                ("referee_reward", args.referee_reward),
                ("min_payment", args.min_payment), ("window_days", args.window_days))
                if val is not None]
            if sets:
                cur.execute("UPDATE bl_programs SET "
                            + ", ".join(f"{c} = %s" for c, _ in sets)
                            + " WHERE key = %s", [v for _, v in sets] + [args.program])
        cur.execute("SELECT key, currency, referrer_reward, referee_reward, min_payment,"
                    " window_days FROM bl_programs WHERE key = %s", (args.program,))
        row = cur.fetchone()
    conn.commit()
    if row is None:
        sys.exit(f"baseline: no program {args.program!r} in bl_programs (run with --init)")
    return dict(zip(("key", "currency", "referrer_reward", "referee_reward",
                     "min_payment", "window_days"), row))


def parse_args(argv):
    env = os.environ.get
    ap = argparse.ArgumentParser(
        description="Per-message Python referral consumer (the benchmark baseline).")
    ap.add_argument("--brokers", default=env("REFSTREAM_KAFKA_BROKERS", "localhost:9092"))
    ap.add_argument("--group", default="refstream-baseline", help="consumer group id")
    ap.add_argument("--database-url",
                    default=env("REFSTREAM_DATABASE_URL", "postgresql://localhost:5432/refstream"))
    ap.add_argument("--redis-url", default=env("REFSTREAM_REDIS_URL", "redis://localhost:6379/0"),
                    help="empty: no cache, every code lookup is a SELECT")
    ap.add_argument("--topic-signups", default="signups")
    ap.add_argument("--topic-payments", default="payments")
    ap.add_argument("--topic-credited", default="baseline-credited")
    ap.add_argument("--topic-reversed", default="baseline-reversed")
    ap.add_argument("--program", default="bench", help="program key (default bench)")
    ap.add_argument("--reward", type=int, help="referrer reward, minor units (init default 1000)")
    ap.add_argument("--referee-reward", type=int, help="referee reward (default: none)")
    ap.add_argument("--min-payment", type=int, help="minimum qualifying payment (init default 0)")
    ap.add_argument("--currency", help="program currency (init default USD)")
    ap.add_argument("--window-days", type=int, help="attribution window (init default 30)")
    ap.add_argument("--init", action="store_true",
                    help="drop and create the bl_ tables, the program and the codes")
    ap.add_argument("--init-only", action="store_true",
                    help="--init, then exit without consuming")
    ap.add_argument("--codes-file", help="with --init: lines CODE<TAB>OWNER")
    ap.add_argument("--idle-exit-s", type=float, default=0,
                    help="exit after this long without a message, once one was processed")
    ap.add_argument("-X", dest="consumer_conf", action="append", default=[],
                    metavar="PROP=VALUE", help="a librdkafka property of the consumer")
    ap.add_argument("--cache-ttl-s", type=int, default=600)
    ap.add_argument("--cache-negative-ttl-s", type=int, default=5)
    return ap.parse_args(argv)


# ------------------------------------------------------------------ main


def main(argv):
    args = parse_args(argv)
    args.init = args.init or args.init_only
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    decoder = Decoder()
    conn = psycopg2.connect(args.database_url)
    cache = CodeCache(args.redis_url, conn.info.dbname, args.cache_ttl_s,
                      args.cache_negative_ttl_s)
    if args.init:
        init_schema(conn, args, cache)
    program = load_program(conn, args)
    if args.init_only:
        conn.close()
        return 0
    rules = Rules(conn, program, cache)

    produce_errors = []

    def on_delivery(err, _msg):
        if err is not None:
            produce_errors.append(err)

    producer = Producer({"bootstrap.servers": args.brokers})
    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        **dict(kv.split("=", 1) for kv in args.consumer_conf),
    })
    consumer.subscribe([args.topic_signups, args.topic_payments])
    expected = {args.topic_signups: "SignupEvent", args.topic_payments: "PaymentEvent"}
    topics_out = {"credited": args.topic_credited, "reversed": args.topic_reversed}

    events = duplicates = malformed = 0
    first = last = None
    rc = 0
    try:
        while not stop:
            msg = consumer.poll(0.2)
            if msg is None:
                if (args.idle_exit_s > 0 and last is not None
                        and time.monotonic() - last >= args.idle_exit_s):
                    break
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log(f"consumer error: {msg.error()}")
                continue
            if first is None:
                first = time.monotonic()
            events += 1
            try:
                ev = decoder.decode(msg.value(), expected[msg.topic()])
            except Malformed as e:
                malformed += 1
                if malformed <= 10:
                    log(f"skipped {msg.topic()}[{msg.partition()}]@{msg.offset()}: {e}")
                ev = None
            if ev is not None:
                try:
                    new, out = rules.process(ev)
                except (psycopg2.DataError, psycopg2.IntegrityError) as e:
                    conn.rollback()
                    malformed += 1
                    log(f"skipped {msg.topic()}[{msg.partition()}]@{msg.offset()}: "
                        f"processing_error: {str(e).strip()}")
                    new, out = True, []
                if not new:
                    duplicates += 1
                for dest, key, rec in out:
                    producer.produce(topics_out[dest], key=key.encode("utf-8"),
                                     value=json.dumps(rec, separators=(",", ":")).encode(),
                                     on_delivery=on_delivery)
                producer.poll(0)
            consumer.store_offsets(msg)
            last = time.monotonic()
    except Exception as e:  # Postgres gone, etc.: stop, keep the stored offsets
        log(f"fatal: {type(e).__name__}: {e}")
        rc = 1
    finally:
        left = producer.flush(30)
        consumer.close()  # commits the stored offsets
        conn.close()
    elapsed = (last - first) if first is not None else 0.0
    rate = events / elapsed if elapsed > 0 else 0.0
    if left or produce_errors:
        log(f"{len(produce_errors)} output records failed, {left} undelivered")
        rc = rc or 1
    print(f"baseline: events={events} duplicates={duplicates} malformed={malformed} "
          f"referrals={rules.referrals} credits={rules.credits} "
          f"reversals={rules.reversals} rejections={rules.rejections} "
          f"cache_hits={cache.hits} cache_misses={cache.misses} "
          f"elapsed_s={elapsed:.3f} events_per_s={rate:.0f}", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
