#!/usr/bin/env python3
"""Compare a running mta_exporter's activity families with a families.json
(tests/mta/families.py) — the end-to-end form of tests/activity.rs.

    families_check.py --url http://127.0.0.1:PORT/metrics --log LOG --expected X.families.json
                      [--name NAME] [--result FILE]

Waits (deadline 60 s, no fixed sleep) until the exporter has read the whole
log (mta_log_bytes_total of the log's source equals its size), then
compares every counter series exactly and every histogram's count and
cumulative buckets exactly (sums to 1e-6). Exit 0 when equal; --result
writes {"name", "pass", "checks": [{"check", "pass"}]} for tests/mta/e2e.sh.
"""

import argparse
import json
import os
import re
import sys
import time
import urllib.request

LINE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def parse(text):
    out = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return out


def key(labels, drop=()):
    return ",".join("%s=%s" % (k, labels[k]) for k in sorted(labels) if k not in drop)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--name", default="families")
    ap.add_argument("--result")
    a = ap.parse_args()
    size = os.path.getsize(a.log)
    deadline = time.monotonic() + 60
    while True:
        metrics = parse(scrape(a.url))
        read = sum(v for l, v in metrics.get("mta_log_bytes_total", []) if l.get("source") == a.log)
        if read >= size or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    expected = json.load(open(a.expected))
    checks = []
    for family, want in expected["counters"].items():
        got = {key(l): int(v) for l, v in metrics.get(family, []) if v}
        checks.append(("%s equals the log" % family, got == want, want, got))
    for family, series in expected["histograms"].items():
        counts = {key(l): int(v) for l, v in metrics.get(family + "_count", [])}
        buckets = {}
        for l, v in metrics.get(family + "_bucket", []):
            le = l["le"]
            buckets.setdefault(key(l, drop=("le",)), {})[float("inf") if le == "+Inf" else float(le)] = int(v)
        sums = {key(l): v for l, v in metrics.get(family + "_sum", [])}
        want_counts = {k: s["count"] for k, s in series.items()}
        ok = counts == want_counts
        for k, s in series.items():
            wb = {float("inf") if le == "+Inf" else float(le): n for le, n in s["buckets"].items()}
            ok &= buckets.get(k) == wb and abs(sums.get(k, -1) - s["sum"]) < 1e-6
        checks.append(("%s equals the log" % family, ok, want_counts, counts))
    if read < size:
        checks.append(("the exporter read the whole log", False, size, read))
    failed = 0
    for name, ok, want, got in checks:
        print("%-4s %s %s" % ("ok" if ok else "FAIL", a.name, name))
        if not ok:
            failed += 1
            print("     want %s\n     got  %s" % (want, got))
    if a.result:
        with open(a.result, "w") as f:
            json.dump({"name": a.name, "pass": failed == 0,
                       "checks": [{"check": n, "pass": ok} for n, ok, _, _ in checks]}, f)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
