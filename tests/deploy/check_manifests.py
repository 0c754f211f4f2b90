#!/usr/bin/env python3
"""Checks the rendered Kubernetes overlays of deploy/ (tests/deploy/run.sh
renders them with kustomize first).

  check_manifests.py --repo DIR --rendered DIR --crds DIR [--metrics-out FILE]

DIR of --rendered holds OVERLAY.yaml for each overlay (dev, production,
statefulset) and production.secrets.env, the secrets file the production
render was given. --crds holds the CustomResourceDefinition YAML files (KEDA,
Prometheus Operator). Prints one "ok - ..." or "not ok - ..." line per check
and a closing "manifests: N passed, M failed"; exits 1 when one failed.
--metrics-out writes every refstream_* metric name the alerts, the dashboard
and the ScaledObject use, one a line, for the live check against a real
Prometheus (tests/deploy/test_prometheus.sh).
"""
import argparse
import copy
import json
import re
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

K8S_VERSIONS = ["1.30.0", "1.37.0"]
OVERLAYS = ["dev", "production", "statefulset"]
WORKLOADS = {"Deployment", "StatefulSet", "Job"}

from checks import check, summary


def docs_of(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def one(docs, kind, name=None):
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    return found[0] if len(found) == 1 else None


def pod_spec(w):
    return w["spec"]["template"]["spec"]


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------- CRD schemas
def strict_schema(node):
    """A CRD's openAPIV3Schema as a JSON schema that, like the API server's
    strict field validation, refuses fields the schema does not declare."""
    if isinstance(node, list):
        return [strict_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items()}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


METADATA_SCHEMA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def load_crds(crd_dir):
    crds = {}
    for f in sorted(Path(crd_dir).glob("*.yaml")):
        crd = yaml.safe_load(f.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            if v.get("served"):
                schema = strict_schema(v["schema"]["openAPIV3Schema"])
                schema["properties"]["metadata"] = METADATA_SCHEMA
                crds[(f"{group}/{v['name']}", kind)] = schema
    return crds


def validate_doc(doc, crds):
    """None when valid, else the reason."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in crds:
        errors = sorted(jsonschema.Draft7Validator(crds[key]).iter_errors(doc), key=str)
        if errors:
            e = errors[0]
            return f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        return None
    for v in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, v, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            return f"no schema for {key} (Kubernetes {v}) nor a CRD"
        except kubernetes_validate.ValidationError as e:
            path = "/".join(map(str, e.path))
            return f"Kubernetes {v}: {path}: {e.message}"
    return None


# ------------------------------------------------------------- the checks
def restricted_problems(spec):
    """Violations of the restricted Pod Security Standard."""
    p = []
    psc = spec.get("securityContext", {})
    for bad in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(bad):
            p.append(bad)
    for v in spec.get("volumes", []):
        kinds = set(v) - {"name"}
        if not kinds <= {"emptyDir", "configMap", "secret", "projected", "downwardAPI",
                         "persistentVolumeClaim", "ephemeral", "csi"}:
            p.append(f"volume {v['name']} of type {kinds}")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        sc = c.get("securityContext", {})
        n = c["name"]
        if sc.get("allowPrivilegeEscalation") is not False:
            p.append(f"{n}: allowPrivilegeEscalation not false")
        if sc.get("privileged"):
            p.append(f"{n}: privileged")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            p.append(f"{n}: capabilities not drop [ALL]")
        if set(sc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            p.append(f"{n}: capabilities added")
        if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot"))):
            p.append(f"{n}: runAsNonRoot not set")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            p.append(f"{n}: runAsUser 0")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            p.append(f"{n}: seccompProfile {seccomp}")
        for port in c.get("ports", []):
            if "hostPort" in port:
                p.append(f"{n}: hostPort")
    return p


def check_overlay(name, docs, crds, version, args):
    invalid = [f"{d['kind']}/{d['metadata']['name']}: {r}"
               for d in docs for r in [validate_doc(d, crds)] if r]
    check(f"{name}: {len(docs)} objects valid (Kubernetes {', '.join(K8S_VERSIONS)} strict; "
          f"custom resources against their CRDs, strict)", not invalid and docs, "; ".join(invalid))

    text = yaml.safe_dump_all(docs)
    check(f"{name}: no placeholder password (CHANGE-ME) anywhere", "CHANGE-ME" not in text.upper())
    check(f"{name}: everything in one namespace",
          len({d["metadata"].get("namespace", d["metadata"]["name"]) for d in docs}) == 1)

    workloads = [d for d in docs if d["kind"] in WORKLOADS]
    pods = {d["kind"]: d for d in workloads if d["kind"] != "Job"}
    check(f"{name}: one processor workload", len(pods) == 1, str(list(pods)))
    proc = next(iter(pods.values()), None)
    job = one(docs, "Job")
    check(f"{name}: one migration Job", job is not None)
    if proc is None or job is None:
        return

    probs = {f"{w['kind']}/{w['metadata']['name']}": restricted_problems(pod_spec(w)) for w in workloads}
    check(f"{name}: pods meet the restricted Pod Security Standard",
          not any(probs.values()), json.dumps({k: v for k, v in probs.items() if v}))

    images = [c["image"] for w in workloads for c in pod_spec(w)["containers"]]
    check(f"{name}: images tagged with the release ({version}), never latest",
          images and all(i.rsplit(":", 1)[-1] == version and "/" not in i.rsplit(":", 1)[-1]
                         for i in images), str(images))

    for w in workloads:
        spec = pod_spec(w)
        wname = f"{w['kind']}/{w['metadata']['name']}"
        c = spec["containers"][0]
        check(f"{name}: {wname} has CPU and memory requests and a memory limit",
              {"cpu", "memory"} <= set(c.get("resources", {}).get("requests", {}))
              and "memory" in c.get("resources", {}).get("limits", {}))
        check(f"{name}: {wname} has no service account token and no service links",
              spec.get("automountServiceAccountToken") is False
              and spec.get("enableServiceLinks") is False
              and c.get("securityContext", {}).get("readOnlyRootFilesystem") is True)

    sa = one(docs, "ServiceAccount", pod_spec(proc).get("serviceAccountName"))
    check(f"{name}: the pods' ServiceAccount exists and mounts no token",
          sa is not None and sa.get("automountServiceAccountToken") is False)

    c = pod_spec(proc)["containers"][0]
    probes = {p: c.get(p, {}).get("httpGet", {}).get("path")
              for p in ("startupProbe", "livenessProbe", "readinessProbe")}
    check(f"{name}: probes: startup and liveness on /healthz, readiness on /readyz",
          probes == {"startupProbe": "/healthz", "livenessProbe": "/healthz",
                     "readinessProbe": "/readyz"}, str(probes))
    tsc = pod_spec(proc).get("topologySpreadConstraints", [])
    check(f"{name}: spread over zones and nodes",
          {t["topologyKey"] for t in tsc} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
          and all(matches(t["labelSelector"]["matchLabels"], proc["spec"]["template"]["metadata"]["labels"])
                  for t in tsc))
    grace = pod_spec(proc).get("terminationGracePeriodSeconds", 30)
    cm_names = [e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e]
    cms = [one(docs, "ConfigMap", n) for n in cm_names]
    shutdown = max([int(cm["data"].get("REFSTREAM_SHUTDOWN_TIMEOUT_MS", 30000)) for cm in cms if cm] or [30000])
    check(f"{name}: the ConfigMap exists and the grace period outlasts REFSTREAM_SHUTDOWN_TIMEOUT_MS",
          cms and all(cms) and grace * 1000 > shutdown, f"grace {grace}s, shutdown {shutdown}ms")

    # The Secret: generated (production, statefulset) or referenced (dev).
    refs = {e["secretRef"]["name"] for w in workloads for cc in pod_spec(w)["containers"]
            for e in cc.get("envFrom", []) if "secretRef" in e}
    secrets = by_kind(docs, "Secret")
    if name == "dev":
        check("dev: the Secret is referenced (refstream-secrets, created by the operator), not shipped",
              refs == {"refstream-secrets"} and not secrets, f"refs {refs}, secrets {len(secrets)}")
    else:
        want = dict(line.split("=", 1) for line in
                    (Path(args.rendered) / "production.secrets.env").read_text().splitlines() if line)
        got = {}
        if len(secrets) == 1:
            import base64
            got = {k: base64.b64decode(v).decode() for k, v in secrets[0].get("data", {}).items()}
        check(f"{name}: the Secret is generated from secrets.env alone, and the workloads use it",
              len(secrets) == 1 and got == want and refs == {secrets[0]["metadata"]["name"]}
              and secrets[0]["metadata"]["name"].startswith("refstream-secrets-"),
              f"refs {refs}, keys {sorted(got)}")

    tag = images[0].rsplit(":", 1)[-1]
    check(f"{name}: the migration Job is named after the release and cleans up after itself",
          job["metadata"]["name"] == f"refstream-migrate-{tag}"
          and job["spec"].get("ttlSecondsAfterFinished", 0) > 0
          and pod_spec(job)["containers"][0]["args"] == ["migrate"],
          job["metadata"]["name"])

    pod_labels = proc["spec"]["template"]["metadata"]["labels"]
    port = {p["name"]: p["containerPort"] for p in c["ports"]}.get("http")
    svc = one(docs, "Service", "refstream-metrics")
    check(f"{name}: the metrics Service selects the pods' http port",
          svc is not None and matches(svc["spec"]["selector"], pod_labels)
          and any(p["name"] == "http" and p["targetPort"] == "http" for p in svc["spec"]["ports"])
          and port == 8080)
    pdb = one(docs, "PodDisruptionBudget")
    check(f"{name}: a PodDisruptionBudget covers the pods",
          pdb is not None and matches(pdb["spec"]["selector"]["matchLabels"], pod_labels)
          and "maxUnavailable" in pdb["spec"])
    netpol = one(docs, "NetworkPolicy")
    check(f"{name}: the NetworkPolicy covers the pods and lets in the http port only",
          netpol is not None and matches(netpol["spec"]["podSelector"]["matchLabels"], pod_labels)
          and [p["port"] for r in netpol["spec"]["ingress"] for p in r["ports"]] == [port]
          and set(netpol["spec"]["policyTypes"]) == {"Ingress", "Egress"})

    if name == "dev":
        check("dev: one replica, debug logs", proc["spec"].get("replicas") == 1
              and any(cm["data"].get("REFSTREAM_LOG_LEVEL") == "debug" for cm in cms if cm))
        check("dev: no custom resources (no KEDA, no Prometheus Operator needed)",
              not [d for d in docs if (d["apiVersion"], d["kind"]) in crds])
        return

    # production and statefulset: KEDA, ServiceMonitor, PrometheusRule, dashboard.
    so = one(docs, "ScaledObject")
    check(f"{name}: a KEDA ScaledObject scales the processor ({proc['kind']})",
          so is not None and so["spec"]["scaleTargetRef"]["kind"] == proc["kind"]
          and so["spec"]["scaleTargetRef"]["name"] == proc["metadata"]["name"])
    check(f"{name}: the workload has no replica count (KEDA owns it)", "replicas" not in proc["spec"])
    if so:
        trig = so["spec"]["triggers"]
        q = trig[0]["metadata"].get("query", "") if trig else ""
        ns = re.findall(r'namespace="([^"]+)"', q)
        check(f"{name}: the ScaledObject scales on refstream_consumer_lag of its own namespace",
              len(trig) == 1 and trig[0]["type"] == "prometheus" and "refstream_consumer_lag" in q
              and ns == [so["metadata"]["namespace"]], q)
        check(f"{name}: between 1 and the partition count (12) instances",
              so["spec"]["minReplicaCount"] == 1 and so["spec"]["maxReplicaCount"] == 12)
    sm = one(docs, "ServiceMonitor")
    check(f"{name}: the ServiceMonitor scrapes the metrics Service's http port at /metrics",
          sm is not None and svc is not None
          and matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])
          and [(e["port"], e["path"]) for e in sm["spec"]["endpoints"]] == [("http", "/metrics")])
    pr = one(docs, "PrometheusRule")
    rules_file = yaml.safe_load((Path(args.repo) / "deploy/alerts/refstream.rules.yml").read_text())
    check(f"{name}: the PrometheusRule holds deploy/alerts/refstream.rules.yml, unchanged",
          pr is not None and pr["spec"] == rules_file)
    dash_cm = [d for d in by_kind(docs, "ConfigMap") if d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    dash = json.loads((Path(args.repo) / "deploy/grafana/refstream-dashboard.json").read_text())
    check(f"{name}: the Grafana dashboard ConfigMap holds deploy/grafana/refstream-dashboard.json",
          len(dash_cm) == 1 and json.loads(dash_cm[0]["data"]["refstream-dashboard.json"]) == dash)
    if name == "statefulset":
        env = {e["name"]: e for e in c.get("env", [])}
        check("statefulset: group.instance.id is the pod's name (static membership)",
              env.get("REFSTREAM_RDKAFKA_GROUP_INSTANCE_ID", {}).get("value") == "$(POD_NAME)"
              and env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
              == "metadata.name")
        hs = one(docs, "Service", proc["spec"]["serviceName"])
        check("statefulset: its governing Service is headless and selects its pods",
              hs is not None and hs["spec"].get("clusterIP") == "None"
              and matches(hs["spec"]["selector"], pod_labels))


def check_statefulset_template(rendered):
    prod = one(docs_of(Path(rendered) / "production.yaml"), "Deployment")
    sts = one(docs_of(Path(rendered) / "statefulset.yaml"), "StatefulSet")
    if not prod or not sts:
        check("statefulset: pod template = production's Deployment's + group.instance.id", False, "missing")
        return
    a = copy.deepcopy(prod["spec"]["template"])
    b = copy.deepcopy(sts["spec"]["template"])
    b_env = b["spec"]["containers"][0]["env"]
    b["spec"]["containers"][0]["env"] = [e for e in b_env if e["name"] != "REFSTREAM_RDKAFKA_GROUP_INSTANCE_ID"]
    # The ConfigMap differs by one setting (the session timeout): its name too.
    for t in (a, b):
        for e in t["spec"]["containers"][0]["envFrom"]:
            if "configMapRef" in e:
                e["configMapRef"]["name"] = "refstream-config"
    check("statefulset: pod template = production's Deployment's + group.instance.id",
          a == b, "the templates differ: edit deploy/kubernetes/overlays/statefulset/statefulset.yaml")


def check_alert_tests(repo):
    rules = yaml.safe_load((Path(repo) / "deploy/alerts/refstream.rules.yml").read_text())
    tests = yaml.safe_load((Path(repo) / "deploy/alerts/refstream.rules.test.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    firing = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", [])
              if t.get("exp_alerts")}
    quiet = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", [])
             if not t.get("exp_alerts")}
    want = {"RefstreamConsumerLagGrowing", "RefstreamDeadLetterRate", "RefstreamPoisonRecords",
            "RefstreamNotReady", "RefstreamPostgresDown", "RefstreamOutboxBacklog", "RefstreamStalled"}
    check("alerts: lag growing, dead-letter rate, poison records, not ready, Postgres down, "
          "outbox backlog, stall", want <= alerts, str(sorted(want - alerts)))
    check("alerts: every alert has a unit test where it fires and one where it does not",
          alerts and alerts <= firing and alerts <= quiet,
          f"untested {sorted(alerts - firing)}, never quiet {sorted(alerts - quiet)}")
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def check_dashboard(repo):
    dash = json.loads((Path(repo) / "deploy/grafana/refstream-dashboard.json").read_text())
    panels = dash.get("panels", [])
    titles = {p["title"] for p in panels}
    want = {"Throughput by outcome", "Consumer lag", "Batch latency", "Code cache hit rate",
            "Dead letters", "Rejections by reason", "Outbox backlog and delivery"}
    check("dashboard: panels for throughput by outcome, lag, batch latency, cache hit rate, "
          "dead letters, rejections by reason, outbox backlog", want <= titles, str(sorted(want - titles)))
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    ids = [p["id"] for p in panels]
    check("dashboard: every panel has a query on the data source variable, ids unique",
          panels and all(p.get("targets") for p in panels) and len(ids) == len(set(ids))
          and all(p["datasource"]["uid"] == "${datasource}" for p in panels)
          and dash.get("uid") == "refstream")
    return exprs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--rendered", required=True)
    ap.add_argument("--crds", required=True)
    ap.add_argument("--metrics-out")
    args = ap.parse_args()

    cmake = (Path(args.repo) / "CMakeLists.txt").read_text()
    version = re.search(r"project\(refstream VERSION ([0-9.]+)", cmake).group(1)
    crds = load_crds(args.crds)
    check("CRD schemas loaded: ScaledObject, ServiceMonitor, PrometheusRule",
          {k for _, k in crds} >= {"ScaledObject", "ServiceMonitor", "PrometheusRule"}, str(sorted(crds)))

    # The checker itself: a document with a misspelt field is refused, core and custom alike.
    bad_dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
               "spec": {"selector": {"matchLabels": {"a": "b"}}, "replica": 2,
                        "template": {"metadata": {"labels": {"a": "b"}},
                                     "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}
    bad_so = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"},
              "spec": {"scaleTargetRef": {"name": "x"}, "maxReplicas": 3, "triggers": []}}
    check("the validator refuses a misspelt field (Deployment spec.replica, ScaledObject spec.maxReplicas)",
          validate_doc(bad_dep, crds) is not None and validate_doc(bad_so, crds) is not None)

    for name in OVERLAYS:
        check_overlay(name, docs_of(Path(args.rendered) / f"{name}.yaml"), crds, version, args)
    check_statefulset_template(args.rendered)
    exprs = check_alert_tests(args.repo) + check_dashboard(args.repo)
    so = one(docs_of(Path(args.rendered) / "production.yaml"), "ScaledObject")
    exprs += [t["metadata"]["query"] for t in so["spec"]["triggers"]] if so else []
    names = sorted({m for e in exprs for m in re.findall(r"\brefstream_[a-z_]+", e)})
    check("alerts, dashboard and ScaledObject use refstream metrics", len(names) >= 10, str(names))
    if args.metrics_out:
        Path(args.metrics_out).write_text("".join(n + "\n" for n in names))

    return summary("manifests")


if __name__ == "__main__":
    sys.exit(main())
