#!/usr/bin/env python3
"""Checks deploy/docker-compose.yml for people with Docker (no engine here):
the Compose Specification's JSON schema (compose-spec.json of
github.com/compose-spec/compose-go, the library `docker compose` parses
with), and what the schema cannot see: services named in depends_on exist,
build contexts, Dockerfiles and targets exist, image tags are pinned, and the
refstream services get the settings they need.

  check_compose.py --repo DIR --schema compose-spec.json
Prints "ok - ..." / "not ok - ..." lines and "compose: N passed, M failed".
"""
import argparse
import json
import re
import sys
from pathlib import Path

import jsonschema
import yaml

from checks import check, summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--schema", required=True)
    args = ap.parse_args()
    path = Path(args.repo) / "deploy/docker-compose.yml"
    compose = yaml.safe_load(path.read_text())
    schema = json.loads(Path(args.schema).read_text())
    validator = jsonschema.Draft202012Validator(schema)

    bad = {"services": {"a": {"image": "x:1", "restart_policy": "always"}}}
    check("the schema refuses a misplaced key (restart_policy on a service)",
          any(True for _ in validator.iter_errors(bad)))
    errors = sorted(validator.iter_errors(compose), key=str)
    check("deploy/docker-compose.yml is valid against the Compose Specification schema",
          not errors, "; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:3]))

    services = compose.get("services", {})
    deps = {(s, d) for s, svc in services.items() for d in svc.get("depends_on", {})}
    check("every depends_on names a service", deps and all(d in services for _, d in deps),
          str(sorted(d for _, d in deps if d not in services)))

    base = path.parent
    problems = []
    for s, svc in services.items():
        b = svc.get("build")
        if not b:
            continue
        ctx = (base / b.get("context", ".")).resolve()
        df = ctx / b.get("dockerfile", "Dockerfile")
        if not df.is_file():
            problems.append(f"{s}: no {df}")
            continue
        stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", df.read_text(), re.M | re.I)
        if b.get("target") and b["target"] not in stages:
            problems.append(f"{s}: target {b['target']} not among {stages}")
        args = re.findall(r"^ARG\s+([A-Za-z_]+)", df.read_text(), re.M)
        for a in b.get("args", {}):
            if a not in args:
                problems.append(f"{s}: build arg {a} not declared in the Dockerfile")
    check("build contexts, Dockerfiles, targets and build args exist", not problems, "; ".join(problems))

    images = {s: svc.get("image", "") for s, svc in services.items()}
    unpinned = {s: i for s, i in images.items() if ":" not in i or i.endswith(":latest")}
    check("every service's image has a tag, never latest", not unpinned, str(unpinned))

    env = services.get("refstream", {}).get("environment", {})
    check("refstream gets Kafka, Postgres and Redis settings",
          {"REFSTREAM_KAFKA_BROKERS", "REFSTREAM_DATABASE_URL", "REFSTREAM_REDIS_URL"} <= set(env)
          and services.get("migrate", {}).get("environment") == env)
    check("refstream runs consume, migrate runs first, demo runs refstream demo",
          services.get("refstream", {}).get("command") == ["consume"]
          and services.get("refstream", {}).get("depends_on", {}).get("migrate", {}).get("condition")
          == "service_completed_successfully"
          and services.get("demo", {}).get("build", {}).get("target") == "demo")
    return summary("compose")


if __name__ == "__main__":
    sys.exit(main())
