"""The chaos test's seeded input stream and an independent model of what
refstream must make of it (docs: the rules of README "Rules", the ids of
README "Topics and events").

This is written from the product contract, not from refstream's rules code.
The stream is built so that its outcome does not depend on how the two input
topics interleave (records of one user in one topic keep their order: they
share a key, hence a partition); what depends on interleaving is left out:
  - each user's first charge (by occurred_at, which is also its produce order)
    decides the referral; a user whose first charge does not qualify pays once;
  - no code has a use limit, no program a referrer cap, no referrer signs up
    (no e-mail-hash self-referral, no 2-cycles).
"""

import hashlib
import json
import random
import struct
from collections import Counter
from dataclasses import dataclass, field

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

# Programs the driver creates (admin CLI); key -> settings.
PROGRAMS = {
    # double-sided, fixed reward
    "chaos-fixed": dict(currency="USD", fixed=500, percent=None, cap=None,
                        referee=250, min_payment=1000, window_days=30),
    # single-sided, 10% of the payment capped at 3000
    "chaos-pct": dict(currency="EUR", fixed=None, percent=1000, cap=3000,
                      referee=None, min_payment=500, window_days=7),
    # paused after its codes are issued: sign-ups are PROGRAM_INACTIVE
    "chaos-paused": dict(currency="USD", fixed=100, percent=None, cap=None,
                         referee=None, min_payment=0, window_days=30),
}
ACTIVE = ["chaos-fixed", "chaos-pct"]

# Crockford base32 without I L O U: codes refstream would generate.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def uuid8(*parts):
    """RFC 9562 version-8 UUID of SHA-256 over the parts joined by 0x1f."""
    h = bytearray(hashlib.sha256(b"\x1f".join(p.encode() for p in parts)).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x80
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[0:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}"


def credit_id(program, referee, role):
    return uuid8("refstream/credit", program, referee, role)


def referrer_reward(program, amount):
    p = PROGRAMS[program]
    r = p["fixed"] if p["fixed"] is not None else amount * p["percent"] // 10000
    return min(r, p["cap"]) if p["cap"] is not None else r


# ---------------------------------------------------------------- Avro


def _long(v):
    v = (v << 1) ^ (v >> 63)  # zigzag
    out = bytearray()
    while v & ~0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _str(s):
    b = s.encode()
    return _long(len(b)) + b


def _opt(s):
    return _long(0) if s is None else _long(1) + _str(s)


def avro_signup(e):
    body = (_str(e["event_id"]) + _long(e["occurred_at"]) + _str(e["user_id"])
            + _opt(e.get("referral_code")) + _opt(e.get("email_hash")))
    return b"\x00" + struct.pack(">I", 1) + body


def avro_payment(e):
    body = (_str(e["event_id"]) + _long(e["occurred_at"]) + _str(e["user_id"])
            + _str(e["payment_id"]) + _long(e["amount_minor"]) + _str(e["currency"])
            + _long(0 if e["kind"] == "CHARGE" else 1) + _opt(e.get("refund_of")))
    return b"\x00" + struct.pack(">I", 2) + body


class Reader:
    """Avro binary reader for refstream's output records."""

    def __init__(self, b):
        self.b, self.i = b, 0

    def long(self):
        shift = v = 0
        while True:
            c = self.b[self.i]
            self.i += 1
            v |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                return (v >> 1) ^ -(v & 1)

    def str(self):
        n = self.long()
        s = self.b[self.i:self.i + n].decode()
        self.i += n
        return s


def decode_credited(value):
    """(credit_id, beneficiary, role, amount, currency) of a framed ReferralCredited."""
    r = Reader(value[5:])
    cid = r.str()
    for _ in range(5):  # referral_id program_key code referrer referee
        r.str()
    beneficiary = r.str()
    role = ("REFERRER", "REFEREE")[r.long()]
    amount = r.long()
    return cid, beneficiary, role, amount, r.str()


def decode_reversed(value):
    """(credit_id, beneficiary, amount) of a framed ReferralCreditReversed."""
    r = Reader(value[5:])
    cid = r.str()
    r.str()
    beneficiary = r.str()
    return cid, beneficiary, r.long()


# ---------------------------------------------------------------- the stream


@dataclass
class Record:
    topic: str  # "signups" | "payments"
    key: str
    value: bytes
    pos: float  # produce order
    malformed: str = None  # expected DLQ error class


@dataclass
class Expected:
    referrals: dict = field(default_factory=dict)  # (program, referee) -> status
    credits: dict = field(default_factory=dict)  # credit_id -> (benef, role, amount, cur, status)
    rejections: Counter = field(default_factory=Counter)  # (event_id, type, reason)
    dead_letters: dict = field(default_factory=dict)  # value bytes -> error class


class Stream:
    """A seeded stream of about n_records input records."""

    def __init__(self, seed, n_records, codes, start_ms):
        self.rnd = random.Random(seed)
        self.codes = codes  # from the driver's setup, see setup_codes()
        self.t0 = start_ms
        self.records = []
        self.expected = Expected()
        self.seq = 0
        self.n_users = 0
        while len(self.records) < n_records * 0.985:
            self.story()
        self.duplicates(int(n_records * 0.01))
        self.malformed(max(1, int(n_records * 0.005)))
        self.records.sort(key=lambda r: r.pos)

    # ---- helpers

    def eid(self, kind):
        self.seq += 1
        return f"{kind}-{self.seq:08d}"

    def emit(self, topic, ev, pos):
        enc = self.rnd.random() < 0.3  # Avro for some, JSON for the rest
        if topic == "signups":
            value = avro_signup(ev) if enc else json.dumps(ev).encode()
        else:
            value = avro_payment(ev) if enc else json.dumps(ev).encode()
        self.records.append(Record(topic, ev["user_id"], value, pos))

    def signup(self, user, at, pos, code=None):
        ev = {"event_id": self.eid("su"), "occurred_at": at, "user_id": user,
              "referral_code": code}
        self.emit("signups", ev, pos)
        return ev["event_id"]

    def charge(self, user, at, pos, amount, currency):
        pid = f"pay-{self.seq + 1:08d}"
        ev = {"event_id": self.eid("ch"), "occurred_at": at, "user_id": user,
              "payment_id": pid, "amount_minor": amount, "currency": currency,
              "kind": "CHARGE", "refund_of": None}
        self.emit("payments", ev, pos)
        return ev["event_id"], pid

    def refund(self, user, at, pos, amount, currency, of):
        ev = {"event_id": self.eid("rf"), "occurred_at": at, "user_id": user,
              "payment_id": f"refund-{self.seq + 1:08d}", "amount_minor": amount,
              "currency": currency, "kind": "REFUND", "refund_of": of}
        self.emit("payments", ev, pos)
        return ev["event_id"]

    def typed(self, code):
        """As a user may type it: case and surrounding blanks do not matter."""
        r = self.rnd.random()
        return code.lower() if r < 0.15 else f"  {code} " if r < 0.25 else code

    # ---- one user's story

    def story(self):
        rnd, ex = self.rnd, self.expected
        self.n_users += 1
        user = f"u{self.n_users:07d}"
        pos = len(self.records) + rnd.random()
        at = self.t0 + rnd.randrange(0, 3 * DAY_MS)
        later = lambda: pos + rnd.randrange(1, 3000) + rnd.random()  # noqa: E731
        r = rnd.random()
        if r < 0.20:  # no referral intent; pays sometimes (and refunds)
            self.signup(user, at, pos)
            if rnd.random() < 0.5:
                cpos = later()
                _, pid = self.charge(user, at + HOUR_MS, cpos, 2000, "USD")
                if rnd.random() < 0.05:
                    self.refund(user, at + 2 * HOUR_MS, cpos + rnd.randrange(1, 500),
                                2000, "USD", pid)
            return
        if r < 0.28:  # a sign-up rejected for its code or program
            kind = rnd.choice(["UNKNOWN_CODE", "UNKNOWN_CODE", "CODE_INACTIVE",
                               "CODE_EXPIRED", "PROGRAM_INACTIVE"])
            code = {"UNKNOWN_CODE": self.unknown_code(),
                    "CODE_INACTIVE": rnd.choice(self.codes["inactive"]),
                    "CODE_EXPIRED": self.codes["expired"],
                    "PROGRAM_INACTIVE": self.codes["paused_program"]}[kind]
            e = self.signup(user, at, pos, self.typed(code))
            ex.rejections[(e, "signup", kind)] += 1
            return
        if r < 0.29 and self.codes["self"]:  # a code owner signs up with their own code
            owner, code = self.codes["self"].pop()
            e = self.signup(owner, at, pos, code)
            ex.rejections[(e, "signup", "SELF_REFERRAL")] += 1
            return
        program = rnd.choice(ACTIVE)
        referrer, code = rnd.choice(self.codes[program])
        self.signup(user, at, pos, self.typed(code))
        ex.referrals[(program, user)] = "pending"
        if r < 0.31:  # a second sign-up with another code: the first wins
            _, other = rnd.choice(self.codes[program])
            e = self.signup(user, at + 1000, pos + 0.5, other)
            ex.rejections[(e, "signup", "ALREADY_REFERRED")] += 1
        self.payments(user, program, referrer, at, pos)

    def payments(self, user, program, referrer, signup_at, pos):
        rnd, ex, p = self.rnd, self.expected, PROGRAMS[program]
        cur, window = p["currency"], p["window_days"] * DAY_MS
        # 5% pay before their sign-up is even produced; most pay later
        first = pos - rnd.randrange(1, 3000) if rnd.random() < 0.05 else \
            pos + rnd.randrange(1, 3000) + rnd.random()
        r = rnd.random()
        if r < 0.10:
            return  # never pays: the referral stays pending
        if r < 0.25:  # a single charge that does not qualify
            why = rnd.choice(["BELOW_MINIMUM", "CURRENCY_MISMATCH", "OUTSIDE_WINDOW"])
            amount = p["min_payment"] - 1 if why == "BELOW_MINIMUM" else p["min_payment"] + 700
            currency = ("EUR" if cur == "USD" else "USD") if why == "CURRENCY_MISMATCH" else cur
            at = signup_at + (window + DAY_MS if why == "OUTSIDE_WINDOW" else HOUR_MS)
            e, _ = self.charge(user, at, first, amount, currency)
            ex.rejections[(e, "payment", why)] += 1
            return
        amount = rnd.randrange(p["min_payment"], 60_000)
        at = signup_at + rnd.randrange(HOUR_MS, window - HOUR_MS)
        e, pid = self.charge(user, at, first, amount, cur)
        status = "issued"
        if rnd.random() < 0.03:  # refunded: both credits reversed
            self.refund(user, at + HOUR_MS, first + rnd.randrange(1, 2000) + 0.25, amount,
                        cur, pid)
            status = "reversed"
        for k in range(rnd.choice([0, 0, 1, 2, 4])):  # later charges change nothing
            self.charge(user, at + (k + 1) * DAY_MS, first + 0.5 + k, amount, cur)
        ex.referrals[(program, user)] = "reversed" if status == "reversed" else "credited"
        ex.credits[credit_id(program, user, "REFERRER")] = (
            referrer, "referrer", referrer_reward(program, amount), cur, status)
        if p["referee"] is not None:
            ex.credits[credit_id(program, user, "REFEREE")] = (
                user, "referee", p["referee"], cur, status)

    def unknown_code(self):
        while True:
            c = "".join(self.rnd.choice(ALPHABET) for _ in range(8))
            if c not in self.codes["all"]:
                return c

    # ---- noise

    def duplicates(self, n):
        """The same record delivered again later (same key, same bytes)."""
        for rec in self.rnd.sample(self.records, n):
            self.records.append(Record(rec.topic, rec.key, rec.value,
                                       rec.pos + self.rnd.randrange(1, 5000) + 0.75))

    def malformed(self, n):
        """Records that must become dead letters, each unique by a nonce."""
        ex, rnd = self.expected, self.rnd
        for i in range(n):
            nonce = f"bad-{i:07d}"
            kind = i % 6
            topic = "signups" if kind in (0, 1, 2, 5) else "payments"
            if kind == 0:
                value, cls = f"not an event {nonce}".encode(), "bad_framing"
            elif kind == 1:
                value, cls = ('{"event_id": "%s", ' % nonce).encode(), "json_decode"
            elif kind == 2:
                value, cls = json.dumps({"event_id": nonce, "occurred_at": self.t0}).encode(), \
                    "missing_field"
            elif kind == 3:
                value, cls = json.dumps({
                    "event_id": nonce, "occurred_at": self.t0, "user_id": nonce,
                    "payment_id": nonce, "amount_minor": -5, "currency": "USD",
                    "kind": "CHARGE"}).encode(), "invalid_field"
            elif kind == 4:
                value, cls = b"\x00" + struct.pack(">I", 99) + nonce.encode(), "unknown_schema"
            else:  # a sign-up cut short
                value, cls = avro_signup({"event_id": nonce, "occurred_at": self.t0,
                                          "user_id": nonce})[:-3], "avro_decode"
            ex.dead_letters[value] = cls
            self.records.append(Record(topic, nonce, value,
                                       rnd.random() * len(self.records), malformed=cls))
