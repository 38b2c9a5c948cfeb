#!/usr/bin/env python3
"""Renders each Kubernetes variant with `kubectl kustomize` into OUTDIR and
checks what the generic validators cannot know about the exporter:

    scripts/check_manifests.py OUTDIR

* every mta-exporter container runs as non-root, without privilege
  escalation, on a read-only root filesystem, with every capability dropped
  and none added, under the RuntimeDefault seccomp profile;
* it has CPU and memory requests and limits, a liveness probe on /-/healthy
  and a readiness probe on /-/ready against the port named metrics (10040);
* in the native-sidecar variants it is an init container with
  restartPolicy: Always;
* each variant has the Service, ServiceMonitor (job relabelled to
  mta_exporter) and PrometheusRule, and the Service selects its pods.

Prints one line per check; exits 1 if any failed. Needs PyYAML and kubectl.
"""

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
KDIR = ROOT / "deploy/kubernetes"
VARIANTS = {"sidecar": "container", "native-sidecar": "native", "syslog-sidecar": "native",
            "daemonset": "container", ".": "container"}

failures = 0


def check(ok, what):
    global failures
    print(f"  {'ok  ' if ok else 'FAIL'}  {what}")
    failures += not ok


def exporter_checks(variant, c, kind):
    sc = c.get("securityContext", {})
    name = f"{variant}: mta-exporter"
    check(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 1) != 0, f"{name} runs as non-root")
    check(sc.get("allowPrivilegeEscalation") is False, f"{name} cannot escalate privileges")
    check(sc.get("readOnlyRootFilesystem") is True, f"{name} has a read-only root filesystem")
    caps = sc.get("capabilities", {})
    check(caps.get("drop") == ["ALL"] and not caps.get("add"), f"{name} drops ALL capabilities, adds none")
    check(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name} uses the RuntimeDefault seccomp profile")
    res = c.get("resources", {})
    check(all(k in res.get(t, {}) for t in ("requests", "limits") for k in ("cpu", "memory")),
          f"{name} has CPU and memory requests and limits")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    check(ports.get("metrics") == 10040, f"{name} exposes port 10040 as 'metrics'")
    live = c.get("livenessProbe", {}).get("httpGet", {})
    ready = c.get("readinessProbe", {}).get("httpGet", {})
    check(live.get("path") == "/-/healthy" and live.get("port") == "metrics", f"{name} liveness probe on /-/healthy")
    check(ready.get("path") == "/-/ready" and ready.get("port") == "metrics", f"{name} readiness probe on /-/ready")
    if kind == "native":
        check(c.get("restartPolicy") == "Always", f"{name} is a native sidecar (restartPolicy: Always)")


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for variant, kind in VARIANTS.items():
        label = "default" if variant == "." else variant
        rendered = subprocess.run(["kubectl", "kustomize", str(KDIR / variant)], check=True,
                                  capture_output=True, text=True).stdout
        (out / f"{label}.yaml").write_text(rendered)
        docs = [d for d in yaml.safe_load_all(rendered) if d]
        kinds = {d["kind"]: d for d in docs}
        names = sorted(d["kind"] + "/" + d["metadata"]["name"] for d in docs)
        print(f"{label}: {', '.join(names)}")
        for needed in ("Service", "ServiceMonitor", "PrometheusRule"):
            check(needed in kinds, f"{label} has a {needed}")
        sm = kinds.get("ServiceMonitor", {})
        relabel = [r for e in sm.get("spec", {}).get("endpoints", []) for r in e.get("relabelings", [])]
        check(any(r.get("targetLabel") == "job" and r.get("replacement") == "mta_exporter" for r in relabel),
              f"{label} ServiceMonitor sets job=mta_exporter")
        workload = kinds.get("Deployment") or kinds.get("DaemonSet")
        pod = workload["spec"]["template"]
        selector = kinds["Service"]["spec"]["selector"]
        check(all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items()),
              f"{label} Service selects the {workload['kind']}'s pods")
        spec = pod["spec"]
        where = spec.get("initContainers", []) if kind == "native" else spec.get("containers", [])
        exporters = [c for c in where if c["name"] == "mta-exporter"]
        check(len(exporters) == 1, f"{label} has one mta-exporter {'init ' if kind == 'native' else ''}container")
        for c in exporters:
            exporter_checks(label, c, kind)
    print(f"manifests: {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
