#!/usr/bin/env python3
"""Fault-injection run: several `refstream consume` instances in one group, a
real Kafka broker, Postgres and Redis from scripts/stack.sh; a seeded stream
is published while seeded faults hit every part of the system; then the
database and the output topics are checked against an independent model
(model.py). Started by tests/chaos/run.sh, which owns the stack.

Fails (exit 1) on: any effect lost or applied twice in Postgres, an expected
output event missing from its topic, an unexpected one, an instance that
crashed (exit other than by our kill -9, or non-zero after SIGTERM), or a
stall (no committed progress for --stall-seconds while lag > 0). Duplicate
events on the output topics are allowed (at-least-once) but counted, and
bounded by --max-duplicate-pct when given.
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict

import psycopg2
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model  # noqa: E402

FAULTS = ["kill9", "sigterm", "sigstop", "pg_stop", "redis_kill", "redis_stop",
          "broker_kill"]
INPUT_PARTITIONS = 8
OUTPUT_PARTITIONS = 4


def log(msg):
    print(f"[chaos] {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


class Failed(Exception):
    pass


# ---------------------------------------------------------------- the system


class Instance:
    """One `refstream consume` process (restarted under the same name)."""

    def __init__(self, run, name):
        self.run, self.name = run, name
        self.log_path = os.path.join(run.dir, f"{name}.log")
        self.proc, self.port, self.expect_kill = None, None, False
        self.starts = 0

    def start(self):
        self.starts += 1
        with open(self.log_path, "ab") as f:
            f.write(f"----- start {self.starts}\n".encode())
            self.proc = subprocess.Popen([self.run.bin, "consume"], env=self.run.env,
                                         stdout=f, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.port, self.expect_kill = None, False

    def http_port(self):
        if self.port is None:
            with open(self.log_path, errors="replace") as f:
                ports = re.findall(r"\(port (\d+)\)", f.read())
            self.port = int(ports[-1]) if ports and self.starts == len(ports) else None
        return self.port

    def metrics(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port()}/metrics",
                                        timeout=3) as r:
                return "".join(l for l in r.read().decode().splitlines(True)
                               if l.startswith("refstream_") and "_bucket" not in l)
        except Exception as e:  # noqa: BLE001 - a frozen or dead instance
            return f"(no metrics: {e})\n"

    def tail(self, n=30):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-n:])


class Run:
    def __init__(self, args):
        self.args = args
        self.rnd = random.Random(args.seed)
        self.dir = args.workdir
        self.bin = args.refstream
        self.stack_env = dict(l.strip().split("=", 1) for l in open(os.path.join(
            args.stack, "env")) if "=" in l)
        self.brokers = self.stack_env["REFSTREAM_KAFKA_BROKERS"]
        tag = f"{args.seed}-{os.getpid()}"
        self.topics = {t: f"chaos-{tag}-{t}" for t in
                       ("signups", "payments", "credited", "reversed", "dlq")}
        self.group = f"chaos-{tag}"
        self.db = f"chaos_{args.seed}_{os.getpid()}"
        self.db_url = self.stack_env["RS_PG_SUPERUSER_URL"].rsplit("/", 1)[0] + "/" + self.db
        self.env = dict(os.environ)
        self.env.update({
            "REFSTREAM_KAFKA_BROKERS": self.brokers,
            "REFSTREAM_DATABASE_URL": self.db_url,
            "REFSTREAM_REDIS_URL": self.stack_env["REFSTREAM_REDIS_URL"],
            "REFSTREAM_GROUP_ID": self.group,
            "REFSTREAM_HTTP_ADDR": "127.0.0.1:0",
            "REFSTREAM_TOPIC_SIGNUPS": self.topics["signups"],
            "REFSTREAM_TOPIC_PAYMENTS": self.topics["payments"],
            "REFSTREAM_TOPIC_CREDITED": self.topics["credited"],
            "REFSTREAM_TOPIC_REVERSED": self.topics["reversed"],
            "REFSTREAM_TOPIC_DLQ": self.topics["dlq"],
        })
        self.instances = [Instance(self, f"instance-{i + 1}") for i in range(args.instances)]
        self.problems = []  # crashes and stalls, found while running
        self.faults = Counter()
        self.fault_times = []  # (epoch seconds, kind)
        self.stop_monitor = threading.Event()
        self.lock = threading.Lock()
        self.produced = 0

    # ---- helpers

    def stack(self, *argv):
        subprocess.run([self.args.stack_sh, *argv, "--dir", self.args.stack], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stack_pid(self, service):
        out = subprocess.run([self.args.stack_sh, "pid", service, "--dir", self.args.stack],
                             check=True, capture_output=True, text=True)
        return int(out.stdout.strip())

    def admin(self, *argv, stdin=None):
        out = subprocess.run([self.bin, "admin", *argv], env=self.env, input=stdin,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise Failed(f"refstream admin {' '.join(argv)}: {out.stderr.strip()}")
        return out.stdout

    def problem(self, text):
        with self.lock:
            self.problems.append(text)
        log("PROBLEM: " + text)

    # ---- set-up

    def setup(self):
        c = psycopg2.connect(self.stack_env["RS_PG_SUPERUSER_URL"])
        c.autocommit = True
        c.cursor().execute(f'CREATE DATABASE "{self.db}"')
        c.close()
        subprocess.run([self.bin, "migrate"], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)
        admin = AdminClient({"bootstrap.servers": self.brokers})
        new = [NewTopic(self.topics[t], INPUT_PARTITIONS if t in ("signups", "payments")
                        else OUTPUT_PARTITIONS, 1) for t in self.topics]
        for f in admin.create_topics(new).values():
            f.result(30)
        for key, p in model.PROGRAMS.items():
            argv = ["program", "create", "--key", key, "--name", key, "--currency",
                    p["currency"], "--min-payment", str(p["min_payment"]),
                    "--window-days", str(p["window_days"])]
            argv += ["--reward-fixed", str(p["fixed"])] if p["fixed"] is not None else \
                ["--reward-percent", str(p["percent"])]
            if p["cap"] is not None:
                argv += ["--reward-cap", str(p["cap"])]
            if p["referee"] is not None:
                argv += ["--referee-reward", str(p["referee"])]
            self.admin(*argv)
        codes = {"all": set()}

        def backfill(program, users):
            out = self.admin("codes", "backfill", "--program", program,
                             stdin="".join(u + "\n" for u in users))
            pairs = [tuple(l.split("\t")) for l in out.splitlines()]
            codes["all"].update(c for _, c in pairs)
            return pairs

        n_ref = max(20, self.args.records // 2500)
        for program in model.ACTIVE:
            codes[program] = backfill(program, [f"r-{program}-{i:05d}" for i in range(n_ref)])
        codes["self"] = backfill("chaos-fixed",
                                 [f"s{i:06d}" for i in range(self.args.records // 100 + 10)])
        inactive = [c for _, c in backfill("chaos-fixed", [f"x{i}" for i in range(4)])]
        for i, c in enumerate(inactive):
            self.admin("codes", "revoke" if i % 2 else "pause", c)
        codes["inactive"] = inactive
        self.t0 = int(time.time() * 1000) - 40 * model.DAY_MS
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                               time.gmtime((self.t0 - model.DAY_MS) / 1000))
        codes["expired"] = self.admin("codes", "issue", "--program", "chaos-fixed", "--user",
                                      "expired-owner", "--code", "CHAOS-EXPIRED",
                                      "--expires-at", expiry).strip()
        codes["paused_program"] = self.admin("codes", "issue", "--program", "chaos-paused",
                                             "--user", "paused-owner").strip()
        self.admin("program", "pause", "chaos-paused")
        codes["all"].update([codes["expired"], codes["paused_program"]])
        return codes

    # ---- the stream

    def produce(self, records, seconds):
        """Publishes records spread over about `seconds`, keyed by user."""
        errors = []
        p = Producer({"bootstrap.servers": self.brokers, "enable.idempotence": True,
                      "acks": "all", "linger.ms": 20, "message.timeout.ms": 900000,
                      "queue.buffering.max.messages": 500000, "log_level": 2})

        def delivered(err, msg):
            if err:
                errors.append(str(err))

        rate = max(len(records) / max(seconds, 1), 200)
        t0 = time.monotonic()
        for i, r in enumerate(records):
            while True:
                try:
                    p.produce(self.topics[r.topic], key=r.key, value=r.value,
                              on_delivery=delivered)
                    break
                except BufferError:
                    p.poll(0.1)
            self.produced = i + 1
            if i % 200 == 0:
                p.poll(0)
                ahead = i / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        if p.flush(900) or errors:
            raise Failed(f"the input stream was not published whole: {errors[:3]}")
        log(f"published {len(records)} records in {time.monotonic() - t0:.0f} s")

    # ---- faults

    def live(self):
        return [i for i in self.instances if i.proc.poll() is None]

    def fault(self, kind):
        rnd = self.rnd
        self.faults[kind] += 1
        self.fault_times.append((time.time(), kind))
        log(f"fault {sum(self.faults.values())}: {kind}")
        if kind in ("kill9", "sigterm", "sigstop"):
            inst = rnd.choice(self.live())
            if kind == "sigstop":  # frozen past the session timeout (10 s)
                os.kill(inst.proc.pid, signal.SIGSTOP)
                time.sleep(rnd.uniform(11, 14))
                os.kill(inst.proc.pid, signal.SIGCONT)
                return
            inst.expect_kill = True
            os.kill(inst.proc.pid, signal.SIGKILL if kind == "kill9" else signal.SIGTERM)
            try:
                rc = inst.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.problem(f"{inst.name} did not exit within 60 s of SIGTERM")
                os.kill(inst.proc.pid, signal.SIGKILL)
                rc = inst.proc.wait()
            if kind == "sigterm" and rc != 0:
                self.problem(f"{inst.name} exited {rc} after SIGTERM")
            time.sleep(rnd.uniform(1, 3))  # as a restarting pod would
            inst.start()
        elif kind == "pg_stop":
            self.stack("stop", "postgres", "--immediate")
            time.sleep(rnd.uniform(2, 5))
            self.stack("start", "postgres")
        elif kind == "redis_kill":
            os.kill(self.stack_pid("redis"), signal.SIGKILL)
            time.sleep(rnd.uniform(2, 4))
            self.stack("start", "redis")
        elif kind == "redis_stop":
            pid = self.stack_pid("redis")
            os.kill(pid, signal.SIGSTOP)
            time.sleep(rnd.uniform(2, 5))
            os.kill(pid, signal.SIGCONT)
        elif kind == "broker_kill":
            os.kill(self.stack_pid("kafka"), signal.SIGKILL)
            time.sleep(1)
            self.stack("start", "kafka")

    def schedule(self):
        n = self.args.faults
        kinds = []
        while len(kinds) < n:  # every kind before any repeats
            batch = self.args.kinds[:]
            self.rnd.shuffle(batch)
            kinds += batch
        return kinds[:n]

    # ---- watching

    def group_lag(self, c):
        """(lag, committed sum) of the group on the input topics."""
        tps = [TopicPartition(self.topics[t], p) for t in ("signups", "payments")
               for p in range(INPUT_PARTITIONS)]
        committed = c.committed(tps, timeout=10)
        lag = total = 0
        for tp in committed:
            lo, hi = c.get_watermark_offsets(tp, timeout=10, cached=False)
            done = tp.offset if tp.offset >= 0 else lo
            lag += max(hi - done, 0)
            total += max(tp.offset, 0)
        return lag, total

    def monitor(self):
        """Crash and stall detection, every 2 s until stopped."""
        c = Consumer({"bootstrap.servers": self.brokers, "group.id": self.group,
                      "enable.auto.commit": False, "log_level": 2})
        last_total, last_change = None, time.monotonic()
        while not self.stop_monitor.wait(2):
            for inst in self.instances:
                rc = inst.proc.poll()
                if rc is not None and not inst.expect_kill:
                    self.problem(f"{inst.name} crashed (exit {rc}):\n{inst.tail()}")
                    inst.start()
            try:
                lag, total = self.group_lag(c)
            except KafkaException:
                # The broker is down (a fault of ours): offsets cannot be
                # committed, so the stall clock starts again when it is back.
                last_change = time.monotonic()
                continue
            self.lag = lag
            if total != last_total or lag == 0:
                last_total, last_change = total, time.monotonic()
            elif time.monotonic() - last_change > self.args.stall_seconds:
                dump = "".join(f"--- {i.name}\n{i.metrics()}" for i in self.instances)
                self.problem(f"stall: lag {lag} and no committed progress for "
                             f"{self.args.stall_seconds} s\n{dump}")
                last_change = time.monotonic()
        c.close()

    def drained(self, conn):
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM rs_outbox_state WHERE published_at IS NULL")
        return getattr(self, "lag", 1) == 0 and cur.fetchone()[0] == 0

    # ---- reading topics

    def read_topic(self, name, with_headers=False):
        """Every record of a topic: (partition, offset, key, value, headers)."""
        c = Consumer({"bootstrap.servers": self.brokers, "group.id": f"{self.group}-reader",
                      "enable.auto.commit": False, "fetch.wait.max.ms": 50,
                      "log_level": 2})
        parts = INPUT_PARTITIONS if name in ("signups", "payments") else OUTPUT_PARTITIONS
        tps, ends = [], {}
        for p in range(parts):
            lo, hi = c.get_watermark_offsets(TopicPartition(self.topics[name], p), timeout=30)
            if hi > lo:
                tps.append(TopicPartition(self.topics[name], p, lo))
                ends[p] = hi
        c.assign(tps)
        out = []
        while ends:
            for m in c.consume(10000, timeout=1):
                if m.error():
                    continue
                h = dict((k, v.decode()) for k, v in (m.headers() or [])) if with_headers else None
                out.append((m.partition(), m.offset(), m.key(), m.value(), h,
                            m.timestamp()[1] / 1000.0))
                if m.offset() + 1 >= ends.get(m.partition(), 0):
                    ends.pop(m.partition(), None)
        c.close()
        return out


# ---------------------------------------------------------------- the check


def check(conn, run, expected, inputs, outputs):
    """Compares Postgres and the output topics with the model. Returns
    (problems, figures)."""
    problems, fig = [], {}
    cur = conn.cursor()

    def compare(what, want, got):
        missing = [k for k in want if k not in got]
        extra = [k for k in got if k not in want]
        wrong = [k for k in want if k in got and got[k] != want[k]]
        for label, keys in (("missing", missing), ("unexpected", extra), ("wrong", wrong)):
            if keys:
                problems.append(f"{what}: {len(keys)} {label}, e.g. {keys[0]}: "
                                f"expected {want.get(keys[0])}, got {got.get(keys[0])}")
        return len(missing)

    cur.execute("SELECT p.key, r.referee_user_id, r.status FROM rs_referrals r"
                " JOIN rs_programs p ON p.id = r.program_id")
    got = {(k, u): s for k, u, s in cur.fetchall()}
    fig["lost_referrals"] = compare("referrals", expected.referrals, got)

    cur.execute("SELECT id::text, beneficiary_user_id, role, amount_minor, currency, status"
                " FROM rs_credits")
    got = {r[0]: tuple(r[1:]) for r in cur.fetchall()}
    fig["lost_credits"] = compare("credits", expected.credits, got)

    cur.execute("SELECT event_id, event_type, reason, count(*) FROM rs_rejections"
                " GROUP BY 1, 2, 3")
    got = {r[:3]: r[3] for r in cur.fetchall()}
    fig["lost_rejections"] = compare("rejections", dict(expected.rejections), got)
    fig["duplicate_rejections"] = sum(n - 1 for n in got.values() if n > 1)

    # dead letters: one per malformed input record, where it was
    want_dlq, dlq_value = {}, {}
    for topic in ("signups", "payments"):
        for p, o, _, v, *_ in inputs[topic]:
            if v in expected.dead_letters:
                want_dlq[(run.topics[topic], p, o)] = expected.dead_letters[v]
                dlq_value[(run.topics[topic], p, o)] = bytes(v)
    cur.execute("SELECT source_topic, source_partition, source_offset, error_class, count(*)"
                " FROM rs_outbox WHERE destination = 'dlq' GROUP BY 1, 2, 3, 4")
    rows = cur.fetchall()
    got = {r[:3]: r[3] for r in rows}
    fig["lost_dead_letters"] = compare("dead letters", want_dlq, got)
    fig["duplicate_dead_letters_db"] = sum(r[4] - 1 for r in rows if r[4] > 1)

    # outbox rows: one per credit, one per reversal
    cur.execute("SELECT destination, count(*) FROM rs_outbox GROUP BY 1")
    rows = dict(cur.fetchall())
    n_credits = len(expected.credits)
    n_reversals = sum(1 for v in expected.credits.values() if v[4] == "reversed")
    fig["duplicate_credits_db"] = rows.get("credited", 0) - n_credits
    fig["duplicate_reversals_db"] = rows.get("reversed", 0) - n_reversals
    for d, want in (("credited", n_credits), ("reversed", n_reversals)):
        if rows.get(d, 0) != want:
            problems.append(f"outbox: {rows.get(d, 0)} '{d}' rows, expected {want}")
    cur.execute("SELECT count(*) FROM rs_outbox_state WHERE published_at IS NULL")
    if cur.fetchone()[0]:
        problems.append("outbox: rows left unpublished")

    # topics: every expected event at least once, nothing else
    def topic_check(what, recs, want):
        seen = Counter()
        for r in recs:
            if r[0] not in want:
                problems.append(f"{what} topic: unexpected {r}")
            elif r[1:] != want[r[0]]:
                problems.append(f"{what} topic: {r[0]} is {r[1:]}, expected {want[r[0]]}")
            seen[r[0]] += 1
        lost = [k for k in want if k not in seen]
        if lost:
            problems.append(f"{what} topic: {len(lost)} missing, e.g. {lost[0]}")
        return len(lost), sum(n - 1 for n in seen.values())

    want = {k: (v[0], v[1].upper(), v[2], v[3]) for k, v in expected.credits.items()}
    credited = [model.decode_credited(r[3]) for r in outputs["credited"]]
    fig["lost_credit_events"], fig["duplicate_credit_events"] = topic_check(
        "credited", credited, want)
    want = {k: (v[0], v[2]) for k, v in expected.credits.items() if v[4] == "reversed"}
    reversed_ = [model.decode_reversed(r[3]) for r in outputs["reversed"]]
    fig["lost_reversal_events"], fig["duplicate_reversal_events"] = topic_check(
        "reversed", reversed_, want)
    want = {k: (v, dlq_value[k]) for k, v in want_dlq.items()}
    dlq = [((h["source_topic"], int(h["source_partition"]), int(h["source_offset"])),
            h["error_class"], bytes(v)) for _, _, _, v, h, _ in outputs["dlq"]]
    fig["lost_dead_letter_events"], fig["duplicate_dead_letter_events"] = topic_check(
        "dlq", dlq, want)
    fig["credits"], fig["reversals"] = n_credits, n_reversals
    fig["rejections"], fig["dead_letters"] = sum(expected.rejections.values()), len(want_dlq)
    fig["referrals"] = len(expected.referrals)
    return problems, fig


def duplicates_by_fault(run, outputs):
    """Which fault each duplicated output event is due to: the fault that
    started closest to (and at most 5 s after) the first copy's timestamp,
    since a copy is lost to the bookkeeping when a fault hits just after it
    was produced."""
    first, copies = {}, Counter()
    for topic, ident in (("credited", lambda v: model.decode_credited(v)[0]),
                         ("reversed", lambda v: model.decode_reversed(v)[0]),
                         ("dlq", lambda v: bytes(v))):
        for r in outputs[topic]:
            k = (topic, ident(r[3]))
            copies[k] += 1
            first[k] = min(first.get(k, r[5]), r[5])
    by = Counter()
    for k, n in copies.items():
        if n < 2:
            continue
        t = first[k]
        near = [(f - t, kind) for f, kind in run.fault_times if -1 <= f - t <= 5]
        by[min(near)[1] if near else "none"] += n - 1
    return dict(by)


SABOTAGE = {
    "drop-credit": "DELETE FROM rs_credits WHERE id = (SELECT id FROM rs_credits LIMIT 1)",
    "wrong-amount": "UPDATE rs_credits SET amount_minor = amount_minor + 1"
                    " WHERE id = (SELECT id FROM rs_credits LIMIT 1)",
    "duplicate-rejection": "INSERT INTO rs_rejections (event_id, event_type, reason, user_id,"
                           " detail, occurred_at) SELECT event_id, event_type, reason, user_id,"
                           " detail, occurred_at FROM rs_rejections LIMIT 1",
    "uncredited-referral": "UPDATE rs_referrals SET status = 'pending' WHERE id ="
                           " (SELECT id FROM rs_referrals WHERE status = 'credited' LIMIT 1)",
    "drop-dead-letter": "DELETE FROM rs_outbox WHERE id ="
                        " (SELECT id FROM rs_outbox WHERE destination = 'dlq' LIMIT 1)",
    "extra-outbox-credit": "INSERT INTO rs_outbox (destination, msg_key, payload, event_type,"
                           " source_topic, source_partition, source_offset, published_at)"
                           " SELECT destination, msg_key, payload, event_type, source_topic,"
                           " source_partition, source_offset, now() FROM rs_outbox"
                           " WHERE destination = 'credited' LIMIT 1",
    # topic views: one expected credit event lost, one unknown credit event
    "lost-credit-event": None,
    "unknown-credit-event": None,
}


def self_check(conn, run, expected, inputs, outputs):
    """Each sabotage of the finished state must make the check fail."""
    ok = True
    for name, sql in SABOTAGE.items():
        outs = dict(outputs)
        conn.autocommit = False
        if sql:
            conn.cursor().execute(sql)
        elif name == "lost-credit-event":
            first = outputs["credited"][0][3]
            outs["credited"] = [r for r in outputs["credited"] if r[3] != first]
        else:
            r = outputs["credited"][0]
            forged = r[3].replace(r[3][6:42], b"0" * 36, 1)  # another credit_id
            outs["credited"] = outputs["credited"] + [(r[0], r[1], r[2], forged, None, r[5])]
        problems, _ = check(conn, run, expected, inputs, outs)
        conn.rollback()
        conn.autocommit = True
        log(f"sabotage {name}: the check {'fails' if problems else 'PASSES'}"
            + (f" ({problems[0][:100]})" if problems else ""))
        ok = ok and bool(problems)
    return ok


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--refstream", required=True)
    ap.add_argument("--stack", required=True, help="scripts/stack.sh --dir of the stack")
    ap.add_argument("--stack-sh", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--records", type=int, default=50000)
    ap.add_argument("--faults", type=int, default=15)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kinds", type=lambda v: v.split(","), default=FAULTS,
                    help=f"fault kinds to inject, comma-separated (default: {','.join(FAULTS)})")
    ap.add_argument("--stall-seconds", type=int, default=60)
    ap.add_argument("--drain-timeout", type=int, default=600)
    ap.add_argument("--max-duplicate-pct", type=float, default=None)
    ap.add_argument("--self-check", action="store_true",
                    help="after a passing check, show that sabotaged results fail it")
    ap.add_argument("--report", help="write the figures as JSON here")
    args = ap.parse_args()
    started = time.monotonic()
    run = Run(args)
    codes = run.setup()
    stream = model.Stream(args.seed, args.records, codes, run.t0)
    records, expected = stream.records, stream.expected
    log(f"{len(records)} records for {stream.n_users} users: {len(expected.credits)} credits, "
        f"{sum(expected.rejections.values())} rejections, {len(expected.dead_letters)} "
        f"malformed; {args.faults} faults, {args.instances} instances")
    for inst in run.instances:
        inst.start()
    watcher = threading.Thread(target=run.monitor, daemon=True)
    watcher.start()
    kinds = run.schedule()
    gaps = [run.rnd.uniform(0.5, 2) for _ in kinds]
    # publish over roughly the time the faults take (a broker restart ~20 s)
    est = sum({"sigstop": 13, "broker_kill": 20, "pg_stop": 5}.get(k, 4) for k in kinds) + \
        sum(gaps)
    producer = threading.Thread(target=lambda: run.produce(records, max(est, 10)))
    producer.start()
    time.sleep(3)
    for kind, gap in zip(kinds, gaps):
        run.fault(kind)
        time.sleep(gap)
    producer.join()
    log(f"faults done: {dict(run.faults)}; waiting for zero lag")
    conn = psycopg2.connect(run.db_url)
    conn.autocommit = True
    deadline = time.monotonic() + args.drain_timeout
    while not run.drained(conn):
        if time.monotonic() > deadline:
            run.problem(f"not drained after {args.drain_timeout} s (lag {getattr(run, 'lag', '?')})")
            break
        time.sleep(2)
    drained_at = time.monotonic()
    run.stop_monitor.set()
    watcher.join()
    # Transactions of batches run as parts (docs/design.md §1) by the
    # instances alive at the end: how much of the run took that path.
    split_parts = sum(int(m.group(1)) for inst in run.live() for m in
                      [re.search(r"^refstream_batch_parts_total (\d+)", inst.metrics(), re.M)]
                      if m)
    for inst in run.live():
        inst.expect_kill = True
        inst.proc.send_signal(signal.SIGTERM)
    for inst in run.instances:
        try:
            rc = inst.proc.wait(60)
        except subprocess.TimeoutExpired:
            rc = "none within 60 s"
            inst.proc.kill()
        if rc != 0:
            run.problem(f"{inst.name} exited {rc} after the final SIGTERM")
    inputs = {t: run.read_topic(t) for t in ("signups", "payments")}
    outputs = {t: run.read_topic(t, with_headers=(t == "dlq"))
               for t in ("credited", "reversed", "dlq")}
    problems, fig = check(conn, run, expected, inputs, outputs)
    problems = run.problems + problems
    dup_pct = 100.0 * fig["duplicate_credit_events"] / max(fig["credits"], 1)
    if args.max_duplicate_pct is not None and dup_pct > args.max_duplicate_pct:
        problems.append(f"duplicate credit events {dup_pct:.3f}% > {args.max_duplicate_pct}%")
    fig["duplicate_events_by_fault"] = duplicates_by_fault(run, outputs)
    fig.update(records=sum(len(v) for v in inputs.values()), faults=dict(run.faults),
               instances=args.instances, seed=args.seed, crashes_or_stalls=len(run.problems),
               duplicate_credit_events_pct=round(dup_pct, 4),
               elapsed_s=round(time.monotonic() - started, 1),
               drain_after_faults_s=round(drained_at - started, 1),
               instance_starts=sum(i.starts for i in run.instances),
               batch_parts_of_live_instances=split_parts)
    print(json.dumps(fig, indent=1, sort_keys=True))
    if args.report:
        with open(args.report, "w") as f:
            json.dump(fig, f, indent=1, sort_keys=True)
    if not problems and args.self_check and not self_check(conn, run, expected, inputs,
                                                           outputs):
        problems.append("self-check: a sabotaged result passed the check")
    conn.close()
    for p in problems[:30]:
        log("FAIL: " + p)
    if problems:
        for inst in run.instances:
            log(f"--- last lines of {inst.name}\n{inst.tail(15)}")
        return 1
    log("PASS: every effect exactly once in Postgres, every event on its topic, "
        "no crash, no stall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
