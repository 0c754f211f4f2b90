#!/usr/bin/env python3
"""Measurements for bench/compare.sh, taken from outside the process under
test, the same way for refstream and for the baseline. Run with the
interpreter of scripts/pyenv.sh.

    measure.py progress --brokers B --group G --topics T1,T2 --pid PID
        Polls the group's committed offsets every 100 ms until the group has
        committed every record of the topics (zero lag), then prints one JSON
        object: the records, when the first progress was seen and when the
        lag reached zero (seconds since the command started), the steady-state
        rate between the two, the rates over its first and last tenth of the
        records (flatness), and the peak resident memory of PID (VmHWM).
        The processes under test commit every 200 ms for this
        (auto.commit.interval.ms), so a time is exact to about 0.2 s; the
        tenths' ends are interpolated between commits (tenth_rate).
    measure.py latency --brokers B --payments T --credited T [--since-ms MS] [--skip S]
        For every credit on T (JSON or Confluent-framed Avro with a
        `source_event_id`), the time from its qualifying payment's record
        timestamp to its own: p50, p99 and max in milliseconds. --since-ms
        leaves out payments stamped before MS (records written before the
        timed stream); --skip drops the first S seconds of the payments left
        (warm-up).
"""

import argparse
import io
import json
import struct
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

import fastavro

SCHEMAS = __file__.rsplit("/", 2)[0] + "/schemas"


def consumer(brokers, group):
    """A consumer that never commits (it only reads)."""
    return Consumer({"bootstrap.servers": brokers, "group.id": group,
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})


def partitions(c, topics):
    """Every partition of topics."""
    md = c.list_topics(timeout=10)
    return [TopicPartition(t, p) for t in topics for p in md.topics[t].partitions]


def peak_rss_mib(pid):
    """The peak resident memory of pid (VmHWM), MiB, or None once it exited."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def progress(args):
    """The progress command (see the module's doc)."""
    c = consumer(args.brokers, args.group)
    tps = partitions(c, args.topics.split(","))
    ends = {(tp.topic, tp.partition): c.get_watermark_offsets(tp, timeout=10)[1]
            for tp in tps}
    total = sum(ends.values())
    t0 = time.monotonic()
    first = None
    rss = None
    samples = []  # (seconds, records committed)
    while True:
        try:
            done = sum(max(tp.offset, 0) for tp in c.committed(tps, timeout=10))
        except KafkaException:  # the group's coordinator moving: ask again
            time.sleep(0.1)
            continue
        now = time.monotonic() - t0
        samples.append((now, done))
        if done > 0 and first is None:
            first = (now, done)
        rss = peak_rss_mib(args.pid) or rss
        if done >= total:
            break
        if now > args.timeout:
            sys.exit(f"measure: {done} of {total} records committed after {args.timeout} s")
        time.sleep(0.05)
    c.close()
    start_s, start_done = first
    steady = max(now - start_s, 0.001)
    print(json.dumps({"records": total, "first_progress_s": round(start_s, 2),
                      "zero_lag_s": round(now, 2), "steady_s": round(steady, 2),
                      "events_per_s": round((total - start_done) / steady),
                      "first_tenth_per_s": tenth_rate(samples, start_done, total, 0),
                      "last_tenth_per_s": tenth_rate(samples, start_done, total, 9),
                      "peak_rss_mib": rss}))


def tenth_rate(samples, start, total, k):
    """The rate over the k-th tenth (0-9) of the records after the first
    progress. The committed count moves in steps, one per commit (every
    200 ms); between two steps the records were processed at an even pace,
    so the time each end of the tenth was reached is interpolated between
    the samples that first saw the steps around it. (Without interpolation,
    the span of a tenth that takes under a second, as on the million-event
    stream, came out up to 0.4 s long, and its rate a third too low.)"""
    lo = start + (total - start) * k // 10
    hi = start + (total - start) * (k + 1) // 10
    return round((hi - lo) / max(reached(samples, hi) - reached(samples, lo), 0.001))


def reached(samples, n):
    """When the committed count reached n: interpolated between the first
    sample of the step below n and the first sample of the step at or past
    it."""
    steps = [s for i, s in enumerate(samples) if i == 0 or s[1] != samples[i - 1][1]]
    b = next(i for i, s in enumerate(steps) if s[1] >= n)
    if b == 0:
        return steps[0][0]
    (ta, ca), (tb, cb) = steps[b - 1], steps[b]
    return ta + (tb - ta) * (n - ca) / (cb - ca)


def read_all(c, topic):
    """Every record of topic: (value, timestamp ms)."""
    tps = partitions(c, [topic])
    ends = {tp.partition: c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
    c.assign([TopicPartition(topic, p, 0) for p in ends])
    left = {p for p, e in ends.items() if e > 0}
    out = []
    while left:
        m = c.poll(5)
        if m is None:
            sys.exit(f"measure: {topic} stopped short")
        if m.error():
            continue
        out.append((m.value(), m.timestamp()[1]))
        if m.offset() + 1 >= ends[m.partition()]:
            left.discard(m.partition())
    c.unassign()
    return out


def record(value, schemas):
    """A credit or payment record, framed Avro or JSON, as a dict."""
    if value[:1] == b"\0":
        sid = struct.unpack(">I", value[1:5])[0]
        return fastavro.schemaless_reader(io.BytesIO(value[5:]), schemas[sid])
    return json.loads(value)


def latency(args):
    """The latency command (see the module's doc)."""
    schemas = {}
    with open(f"{SCHEMAS}/manifest.json", encoding="utf-8") as f:
        for s in json.load(f)["schemas"]:
            with open(f"{SCHEMAS}/{s['file']}", encoding="utf-8") as g:
                schemas[s["id"]] = fastavro.parse_schema(json.load(g))
    c = consumer(args.brokers, f"measure-{time.time_ns()}")
    paid = {}
    for value, ts in read_all(c, args.payments):
        if ts < args.since_ms:
            continue
        try:
            paid[record(value, schemas)["event_id"]] = ts
        except Exception:  # the benchmark's streams are valid; skip anything else
            continue
    t_skip = min(paid.values()) + args.skip * 1000 if paid else 0
    lat = sorted(ts - paid[r["source_event_id"]]
                 for r, ts in ((record(v, schemas), ts) for v, ts in read_all(c, args.credited))
                 if r.get("source_event_id") in paid and paid[r["source_event_id"]] >= t_skip)
    c.close()
    if not lat:
        sys.exit("measure: no credits to time")
    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))]
    print(json.dumps({"credits": len(lat), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                      "max_ms": lat[-1]}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("progress")
    p.add_argument("--brokers", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--topics", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--timeout", type=float, default=1800)
    lt = sub.add_parser("latency")
    lt.add_argument("--brokers", required=True)
    lt.add_argument("--payments", required=True)
    lt.add_argument("--credited", required=True)
    lt.add_argument("--since-ms", type=int, default=0)
    lt.add_argument("--skip", type=float, default=0)
    args = ap.parse_args()
    (progress if args.cmd == "progress" else latency)(args)


if __name__ == "__main__":
    main()
