#!/usr/bin/env python3
"""Assert a running mta_exporter's /metrics against a driver's expected.json.

Used by tests/mta/<mta>/run.sh --exporter (and so by tests/mta/e2e.sh) after
the driver has finished. Stdlib only.

    e2e_check.py --mta exim --log LOG --exporter-log STDERR_FILE \
                 --expected expected.json [--result result.json] [--name TEXT]

1. Wait until the log is quiet (its size unchanged for --idle seconds) and
   the exporter has read all of it: mta_log_bytes_total{source=LOG} equals
   the file size. This is a poll with a deadline, not a fixed sleep; running
   out of time is a failure ("exporter read N of M bytes").
2. Scrape /metrics once and compare, exactly:
   - mta_smtp_replies_total summed per (mta, direction, phase, code, enhanced)
     with the expected rows (summed over their status), all with mta=--mta;
     a series of another mta, or one missing, is a difference;
   - mta_deliveries_total per (mta, status) with expected "deliveries";
   - mta_smtp_reject_warnings_total per mta with expected "reject_warnings";
   - mta_log_lines_total{result="unrecognized"} == 0 (the unrecognized lines
     are printed from the exporter's debug log).
   Zero-valued series are ignored on both sides. The expected.json files
   follow the exporter's counting rule (README.md, "What counts as one
   reply": one reply per recipient per attempt; the drivers mark which log
   lines repeat a reply), so the comparison is direct, nothing subtracted.
Prints every difference; exit status 0 only when all four checks pass.
"""

import argparse
import collections
import json
import os
import re
import sys
import time
import urllib.request

LISTENING = re.compile(r'message=listening address=("?)([^" ]+)\1')
UNRECOGNIZED = re.compile(r'message="unrecognized line".*? line="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """Prometheus text format -> {(name, frozenset(labels)): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, brace, rest = series.partition("{")
        labels = {}
        if brace:
            rest = rest[:-1]
            i = 0
            while i < len(rest):
                eq = rest.index('="', i)
                key = rest[i:eq]
                j = eq + 2
                val = []
                while rest[j] != '"':
                    if rest[j] == "\\":
                        j += 1
                        val.append("\n" if rest[j] == "n" else rest[j])
                    else:
                        val.append(rest[j])
                    j += 1
                labels[key] = "".join(val)
                i = j + 1
                if i < len(rest) and rest[i] == ",":
                    i += 1
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def series(samples, name, keys):
    """Sum of `name` per tuple of label values `keys`, zeros dropped."""
    c = collections.Counter()
    for (n, labels), v in samples.items():
        if n == name:
            d = dict(labels)
            c[tuple(d.get(k, "") for k in keys)] += v
    return {k: v for k, v in c.items() if v}


def exporter_address(path, deadline):
    while time.monotonic() < deadline:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                m = LISTENING.search(f.read())
            if m:
                return m.group(2)
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    return None


def scrape(address):
    with urllib.request.urlopen("http://%s/metrics" % address, timeout=10) as r:
        return parse_exposition(r.read().decode("utf-8"))


def compare(title, want, got, show=lambda k: " ".join(k)):
    """Returns (ok, lines): one line per differing key."""
    diffs = []
    for k in sorted(set(want) | set(got)):
        w, g = want.get(k, 0), got.get(k, 0)
        if w != g:
            diffs.append("    %-64s want %-5s got %s" % (show(k), fmt(w), fmt(g)))
    return not diffs, diffs


def fmt(v):
    return str(int(v)) if float(v).is_integer() else str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mta", required=True, help="the mta label value the replies must carry")
    ap.add_argument("--name", help="what to call this run in the output (default: --mta)")
    ap.add_argument("--log", required=True, help="the log file the exporter follows")
    ap.add_argument("--exporter-log", required=True, help="the exporter's stderr (for its address)")
    ap.add_argument("--expected", required=True)
    ap.add_argument("--result", help="write a JSON summary here (for e2e.sh's table)")
    ap.add_argument("--idle", type=float, default=1.0, help="seconds without log growth = quiet")
    ap.add_argument("--timeout", type=float, default=90.0)
    a = ap.parse_args()
    name = a.name or a.mta
    expected = json.load(open(a.expected))
    deadline = time.monotonic() + a.timeout
    result = {"name": name, "mta": a.mta, "checks": [], "pass": False}

    def finish(ok):
        result["pass"] = ok
        if a.result:
            with open(a.result, "w") as f:
                json.dump(result, f, indent=1)
        print("e2e %s: %s" % (name, "PASS" if ok else "FAIL"), flush=True)
        sys.exit(0 if ok else 1)

    address = exporter_address(a.exporter_log, deadline)
    if not address:
        print("FAIL exporter did not report a listening address in %s" % a.exporter_log)
        result["checks"].append({"check": "exporter started", "pass": False, "diff": []})
        finish(False)

    # 1. Quiet log, everything read.
    log_path = os.path.abspath(a.log)
    last_size, last_change = -1, time.monotonic()
    read = size = 0
    while True:
        now = time.monotonic()
        size = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        if size != last_size:
            last_size, last_change = size, now
        samples = scrape(address)
        byte_series = series(samples, "mta_log_bytes_total", ("source",))
        read = byte_series.get((log_path,), byte_series.get((a.log,), 0))
        if read == size and now - last_change >= a.idle:
            break
        if now > deadline:
            print("FAIL exporter read %d of %d bytes of %s within %.0f s" % (read, size, log_path, a.timeout))
            result["checks"].append({"check": "log read", "pass": False,
                                     "diff": ["read %d of %d bytes" % (read, size)]})
            finish(False)
        time.sleep(0.1)
    print("ok   exporter read all %d bytes of %s (quiet for %.1f s)" % (size, log_path, a.idle))

    # 2. One scrape, four exact comparisons.
    samples = scrape(address)
    want_replies = collections.Counter()
    for r in expected["replies"]:
        want_replies[(a.mta, r["direction"], r["phase"], r["code"], r["enhanced"])] += r["count"]
    got_replies = series(samples, "mta_smtp_replies_total", ("mta", "direction", "phase", "code", "enhanced"))
    want_deliveries = {(a.mta, s): n for s, n in expected["deliveries"].items() if n}
    got_deliveries = series(samples, "mta_deliveries_total", ("mta", "status"))
    want_warnings = {(a.mta,): expected["reject_warnings"]} if expected["reject_warnings"] else {}
    got_warnings = series(samples, "mta_smtp_reject_warnings_total", ("mta",))
    lines = series(samples, "mta_log_lines_total", ("result",))
    got_unrec = {("unrecognized",): lines.get(("unrecognized",), 0)} if lines.get(("unrecognized",)) else {}

    checks = [
        ("mta_smtp_replies_total by mta,direction,phase,code,enhanced", dict(want_replies), got_replies,
         sum(want_replies.values())),
        ("mta_deliveries_total by mta,status", want_deliveries, got_deliveries, sum(want_deliveries.values())),
        ("mta_smtp_reject_warnings_total by mta", want_warnings, got_warnings, sum(want_warnings.values())),
        ('mta_log_lines_total{result="unrecognized"}', {}, got_unrec, 0),
    ]
    all_ok = True
    for title, want, got, total in checks:
        ok, diffs = compare(title, want, got)
        all_ok &= ok
        print("%-4s %-62s want %s, got %s" % ("ok" if ok else "FAIL", title, fmt(total), fmt(sum(got.values()))))
        for d in diffs:
            print(d)
        result["checks"].append({"check": title, "pass": ok, "want": total, "got": sum(got.values()), "diff": diffs})
    if got_unrec:
        with open(a.exporter_log, encoding="utf-8", errors="replace") as f:
            shown = [m.group(1) for m in map(UNRECOGNIZED.search, f) if m][:10]
        print("    first unrecognized lines (exporter debug log):")
        for l in shown:
            print("      " + l)
    read_lines = " ".join("%s=%s" % (k[0], fmt(v)) for k, v in sorted(lines.items()))
    print("     lines read: %s" % read_lines)
    result["lines"] = {k[0]: v for k, v in lines.items()}
    result["replies"] = sum(want_replies.values())
    finish(all_ok)


if __name__ == "__main__":
    main()
