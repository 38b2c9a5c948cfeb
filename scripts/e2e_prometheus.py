#!/usr/bin/env python3
"""End-to-end test of the dashboards and rules against a real Prometheus.

    scripts/e2e_prometheus.py --exporter target/x86_64-unknown-linux-musl/release/mta_exporter

1. Writes a Postfix log with ../shared/bench/genlog.py, a third at once and
   the rest appended in chunks while the test runs, and builds a Postfix
   queue directory (queue files in Postfix's record format, in hashed
   subdirectories of deferred/ and hold/). Starts the exporter on the log
   (plus the bundled sample) and that spool (--queue.spool) on a loopback
   port.
2. Starts Prometheus (Debian's package) on a loopback port with a 1 s scrape
   and evaluation interval and deploy/prometheus/mta_exporter.rules.yml
   (its group intervals shortened to 1 s: the expressions are under test,
   not the schedule).
3. Waits until Prometheus has scraped the exporter's count of every line
   written (it must equal the number of lines exactly) and every recording
   rule has data. Then, through Prometheus's HTTP API, runs every PromQL expression in the
   dashboards (panel targets and variable queries, with $__rate_interval,
   $__range and the variables substituted), every recording rule, every
   alert expression and each signal inside it (the operands its thresholds
   compare: an alert that is not firing returns nothing, its signals must
   not), and the Grafana-managed alerts' queries. Each must be valid and
   return data; every rule must evaluate without error.
4. Stops both servers and prints one line per query. A query without data
   names the metric families it misses, and which issue adds each one.

Standard library plus PyYAML. Exit status 0 only if every query passed.
"""

import argparse
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy/prometheus/mta_exporter.rules.yml"
DASHBOARDS = sorted((ROOT / "grafana/dashboards").glob("*.json"))
GRAFANA_ALERTS = ROOT / "grafana/provisioning/alerting/mta_exporter.yaml"
SAMPLE = ROOT / "config/sample/postfix.log"

# Families the dashboards and rules use before the exporter serves them.
# A query that returns nothing only because one of these is missing is
# still a failure; the report says which issue brings the family.
AWAITED = {
    "mta_smtp_reply_info": "issue 3",
    "mta_log_rotations_total": "issue 5",
    "mta_log_read_errors_total": "issue 5",
    "mta_log_last_read_timestamp_seconds": "issue 5",
    "mta_log_lag_bytes": "issue 5",
    "mta_log_files_watched": "issue 5",
    "mta_log_last_line_timestamp_seconds": "issue 5",
    "mta_log_lines_truncated_total": "issue 5",
}

# What Grafana would put in for its macros and for "All" of each variable.
MACROS = {"__rate_interval": "1m", "__interval": "1m", "__range": "5m", "__range_s": "300"}
ALL = ".*"


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_ready(url, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode} before it was ready")
        try:
            status, _ = http_get(url, timeout=1)
            if status == 200:
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} not ready at {url} after {timeout} s")


def stop(proc, what):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        log(f"{what} ignored SIGTERM for 10 s, killing it")
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------
# collecting the expressions


def substitute(expr):
    def repl(m):
        name = m.group(1) or m.group(2)
        return MACROS.get(name, ALL if not name.startswith("__") else m.group(0))

    out = re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)
    if "$" in out:
        raise SystemExit(f"unsubstituted variable left in {expr!r}")
    return out


def variable_query(q):
    """label_values(selector, label) as a query that returns one series per value."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q, re.S)
    if not m:
        raise SystemExit(f"unsupported variable query {q!r}")
    return f"count by ({m.group(2)}) ({m.group(1)})"


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def dashboard_queries():
    out = []
    for path in DASHBOARDS:
        d = json.loads(path.read_text())
        for v in d["templating"]["list"]:
            if v["type"] == "query":
                out.append((f"{path.name} variable ${v['name']}", substitute(variable_query(v["query"])), False))
        for p in walk_panels(d["panels"]):
            for t in p.get("targets", []):
                out.append((f"{path.name} panel '{p['title']}' {t['refId']}", substitute(t["expr"]), False))
    return out


def split_top(expr, operators):
    """Splits expr at the first top-level binary operator in `operators`
    (outside brackets and strings); returns (left, op, right) with the
    right side's modifiers (bool, on/ignoring (...), group_left/right (...))
    removed, or None."""
    depth = 0
    i = 0
    quote = None
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            for op in operators:
                if op.isalpha():
                    m = re.match(rf"\b{op}\b", expr[i:])
                    if m and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] in "_:")):
                        return expr[:i], op, strip_modifiers(expr[i + len(op):])
                elif expr.startswith(op, i) and not expr.startswith(op + "=", i) and not (
                        op in "<>" and i > 0 and expr[i - 1] in "<>!="):
                    return expr[:i], op, strip_modifiers(expr[i + len(op):])
        i += 1
    return None


def strip_modifiers(rest):
    rest = rest.lstrip()
    rest = re.sub(r"^bool\b\s*", "", rest)
    rest = re.sub(r"^(on|ignoring)\s*\([^)]*\)\s*", "", rest)
    rest = re.sub(r"^(group_left|group_right)\s*(\([^)]*\))?\s*", "", rest)
    return rest


def strip_parens(expr):
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, c in enumerate(expr):
            depth += c == "("
            depth -= c == ")"
            if depth == 0 and i < len(expr) - 1:
                return expr
        expr = expr[1:-1].strip()
    return expr


def signals(expr):
    """The operands an alert's thresholds compare: these must return data
    even when the alert does not fire."""
    expr = strip_parens(expr)
    for ops in (["or"], ["and", "unless"], ["==", "!=", ">=", "<=", ">", "<"]):
        parts = split_top(expr, ops)
        if parts:
            left, op, right = parts
            out = signals(left)
            if op != "unless":
                out += signals(right)
            return out
    if re.fullmatch(r"[0-9.eE+-]+", expr):
        return []
    m = re.fullmatch(r"absent\((.*)\)", expr, re.S)
    if m:
        return [m.group(1).strip()]
    return [expr]


def rule_queries(rules):
    out = []
    for g in rules["groups"]:
        for r in g["rules"]:
            if "record" in r:
                out.append((f"recording rule {r['record']} (expr)", r["expr"].strip(), False))
                out.append((f"recording rule {r['record']} (recorded series)", r["record"], False))
            else:
                # returns nothing while the alert does not fire
                out.append((f"alert {r['alert']} (whole expression)", r["expr"].strip(), True))
                for i, s in enumerate(signals(r["expr"])):
                    out.append((f"alert {r['alert']} signal {i + 1}", s, False))
    return out


def grafana_alert_queries(rules):
    """The Grafana-managed alerts must query exactly the Prometheus rules'
    expressions (they are generated from them)."""
    by_name = {r["alert"]: r["expr"].strip() for g in rules["groups"] for r in g["rules"] if "alert" in r}
    g = yaml.safe_load(GRAFANA_ALERTS.read_text())
    seen = set()
    problems = []
    for group in g["groups"]:
        for r in group["rules"]:
            seen.add(r["title"])
            query = next(d for d in r["data"] if d["refId"] == "A")["model"]["expr"]
            if by_name.get(r["title"]) != query:
                problems.append(f"Grafana alert {r['title']}: query differs from the Prometheus rule")
    for name in sorted(set(by_name) - seen):
        problems.append(f"Grafana alerting has no rule {name}")
    return problems


# --------------------------------------------------------------------------
# running


class Writer(threading.Thread):
    """Appends the rest of the log in chunks, like a busy mail server."""

    def __init__(self, path, lines, seconds):
        super().__init__(daemon=True)
        self.path = path
        self.lines = lines
        self.chunks = max(1, int(seconds * 2))
        self.stop = threading.Event()
        self.written = 0

    def run(self):
        size = -(-len(self.lines) // self.chunks)
        with open(self.path, "a") as f:
            for start in range(0, len(self.lines), size):
                if self.stop.wait(0.5):
                    return
                f.writelines(self.lines[start:start + size])
                f.flush()
                self.written += len(self.lines[start:start + size])


def queue_record(kind, data):
    """One Postfix queue file record: type, length (base 128, low bits first), data."""
    out = bytearray([ord(kind)])
    n = len(data)
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out) + data.encode()


def build_queue(spool, now):
    """A Postfix spool with messages in deferred (hashed subdirectories) and
    hold, as `postqueue -j` would list them: (queue, arrival, size)."""
    messages = [("deferred", now - 7200, 4100), ("deferred", now - 600, 2300), ("deferred", now - 30, 900),
                ("hold", now - 86400 * 3, 51200), ("active", now - 2, 1500)]
    for q in ("incoming", "active", "deferred", "hold", "maildrop"):
        (spool / q).mkdir(parents=True)
    for i, (queue, arrival, size) in enumerate(messages):
        qid = "%010X" % (0xA5209B69C1 + i)
        path = spool / queue / (qid[0] if queue in ("deferred", "hold") else "") / qid
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(queue_record("C", "%15d %15d %15d %15d %15d %15d" % (size, 145, 1, 0, size, 0))
                         + queue_record("T", "%d 0" % arrival) + queue_record("S", "alice@example.test"))
    return messages


def family_names(expr):
    return sorted(set(re.findall(r"(?<![\w:\"])(mta[_:][\w:]+|process_\w+|up)(?![\w:(])", expr)))


def main():
    ap = argparse.ArgumentParser(description="Run every dashboard and rule query against a real Prometheus.")
    ap.add_argument("--exporter", required=True, help="mta_exporter binary (the release build)")
    ap.add_argument("--prometheus", default="prometheus", help="Prometheus server binary")
    ap.add_argument("--genlog", default=str(ROOT.parent / "shared/bench/genlog.py"))
    ap.add_argument("--seconds", type=float, default=20, help="how long the log is written to before querying")
    ap.add_argument("--lines", type=int, default=60000)
    args = ap.parse_args()

    started = time.monotonic()
    rules = yaml.safe_load(RULES.read_text())
    queries = dashboard_queries() + rule_queries(rules)
    problems = grafana_alert_queries(rules)
    log(f"e2e: {len(queries)} queries from {len(DASHBOARDS)} dashboards and {RULES.relative_to(ROOT)}")

    tmp = Path(tempfile.mkdtemp(prefix="mta-e2e-"))
    exporter = prometheus = writer = None
    try:
        # the log: genlog's timestamps advance up to 89 ms a line; end near now
        start = (datetime.now() - timedelta(seconds=args.lines * 0.045)).strftime("%Y-%m-%dT%H:%M:%S")
        text = subprocess.run([sys.executable, args.genlog, "--lines", str(args.lines), "--seed", "11",
                               "--start", start], check=True, capture_output=True, text=True).stdout
        lines = text.splitlines(keepends=True)
        mail_log = tmp / "mail.log"
        first = len(lines) // 3
        mail_log.write_text("".join(lines[:first]))

        spool = tmp / "spool"
        queued = build_queue(spool, int(time.time()))
        log(f"e2e: a Postfix spool with {len(queued)} queued messages in {spool}")
        exporter_port, prom_port = free_port(), free_port()
        exporter = subprocess.Popen(
            [args.exporter, "--web.listen-address", f"127.0.0.1:{exporter_port}", "--log.path", str(mail_log),
             "--log.path", str(SAMPLE), "--log.from-beginning", "--queue.spool", f"postfix={spool}"],
            stdout=open(tmp / "exporter.log", "w"), stderr=subprocess.STDOUT)
        wait_ready(f"http://127.0.0.1:{exporter_port}/-/ready", exporter, "mta_exporter")

        test_rules = dict(rules)
        test_rules["groups"] = [dict(g, interval="1s") for g in rules["groups"]]
        (tmp / "rules.yml").write_text(yaml.safe_dump(test_rules, sort_keys=False))
        (tmp / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp / "rules.yml")],
            "scrape_configs": [{"job_name": "mta_exporter",
                                "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}],
        }))
        prometheus = subprocess.Popen(
            [args.prometheus, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            stdout=open(tmp / "prometheus.log", "w"), stderr=subprocess.STDOUT)
        api = f"http://127.0.0.1:{prom_port}"
        wait_ready(f"{api}/-/ready", prometheus, "prometheus")
        log(f"e2e: exporter on 127.0.0.1:{exporter_port}, prometheus on 127.0.0.1:{prom_port}; "
            f"writing {len(lines) - first} more lines over {args.seconds:.0f} s")

        writer = Writer(mail_log, lines[first:], args.seconds)
        writer.start()
        writer.join(args.seconds + 30)
        writer.stop.set()

        def query(q):
            url = f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": q})
            try:
                _, body = http_get(url)
                data = json.loads(body)
            except urllib.error.HTTPError as e:
                return "invalid", json.loads(e.read()).get("error", str(e))
            result = data["data"]["result"]
            if data["data"]["resultType"] == "scalar":
                return "ok", 1
            return ("ok" if result else "empty"), len(result)

        # Wait (no fixed sleep) until Prometheus has scraped the exporter's
        # count of every line written and every recording rule has a sample.
        expected = first + writer.written + sum(1 for _ in SAMPLE.open("rb"))
        records = [r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r]
        deadline = time.monotonic() + 60
        while True:
            _, body = http_get(f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": "sum(mta_log_lines_total)"}))
            result = json.loads(body)["data"]["result"]
            counted = float(result[0]["value"][1]) if result else 0
            pending = [r for r in records if query(r)[0] != "ok"]
            if counted == expected and not pending:
                log(f"e2e: the exporter counted all {expected} lines; every recording rule has data")
                break
            if time.monotonic() > deadline:
                problems.append(f"after 60 s Prometheus has {counted:.0f} of {expected} lines counted, "
                                f"recording rules without data: {', '.join(pending) or 'none'}")
                break
            time.sleep(0.5)

        present = {}

        def has_series(name):
            if name not in present:
                present[name] = query(f'count({{__name__="{name}"}})')[0] == "ok"
            return present[name]

        failed = 0
        awaiting = {}
        log("")
        for label, q, may_be_empty in queries:
            status, detail = query(q)
            if status == "invalid":
                failed += 1
                log(f"  INVALID   {label}: {detail}\n            {q}")
                continue
            # Every family a query names must be served: a misspelt metric
            # in an `or` branch or a join would otherwise go unnoticed.
            missing = [n for n in family_names(q) if not has_series(n)]
            for n in missing:
                if n in AWAITED:
                    awaiting.setdefault(f"{n} ({AWAITED[n]})", []).append(label)
            if not missing and (status == "ok" or may_be_empty):
                note = f"{detail} series" if status == "ok" else "valid, not firing"
                log(f"  ok        {label} ({note})")
                continue
            failed += 1
            why = ", ".join(f"{n} (awaiting {AWAITED[n]})" if n in AWAITED else f"{n} (no series)"
                            for n in missing)
            if status == "ok":
                log(f"  MISSING   {label}: returns {detail} series but uses {why}")
            else:
                log(f"  NO DATA   {label}: " + (f"uses {why}" if missing else
                                                 "no data although every family it uses has series"))

        # The queue the exporter read equals the spool built above.
        _, body = http_get(f"http://127.0.0.1:{exporter_port}/metrics")
        served = {}
        for line in body.decode().splitlines():
            m = re.match(r'(mta_queue_\w+)\{mta="postfix"(?:,queue="(\w+)")?\} (\S+)$', line)
            if m:
                served[(m.group(1), m.group(2))] = float(m.group(3))
        now = time.time()
        for queue in ("incoming", "active", "deferred", "hold", "maildrop"):
            mine = [(arrival, size) for q, arrival, size in queued if q == queue]
            want = (len(mine), sum(s for _, s in mine))
            got = (served.get(("mta_queue_messages", queue)), served.get(("mta_queue_size_bytes", queue)))
            age = served.get(("mta_queue_oldest_message_age_seconds", queue))
            want_age = now - min(a for a, _ in mine) if mine else 0
            if got != want or age is None or abs(age - want_age) > 120:
                problems.append(f"queue {queue}: served messages/bytes {got}, oldest {age} s; "
                                f"the spool holds {want}, oldest {want_age:.0f} s")
        if served.get(("mta_queue_up", None)) != 1:
            problems.append(f"mta_queue_up is {served.get(('mta_queue_up', None))}, not 1")

        _, body = http_get(f"{api}/api/v1/rules")
        for group in json.loads(body)["data"]["groups"]:
            for r in group["rules"]:
                if r.get("health") != "ok":
                    problems.append(f"rule {r['name']} health {r.get('health')}: {r.get('lastError')}")
        _, body = http_get(f"{api}/api/v1/targets")
        for t in json.loads(body)["data"]["activeTargets"]:
            if t["health"] != "up":
                problems.append(f"target {t['scrapeUrl']} is {t['health']}: {t.get('lastError')}")
        for p in problems:
            log(f"  FAIL      {p}")

        elapsed = time.monotonic() - started
        log(f"\ne2e: {len(queries) - failed} of {len(queries)} queries passed, "
            f"{len(problems)} other problems, {elapsed:.0f} s")
        if awaiting:
            log("e2e: queries that fail only because a family they use is not served yet:")
            for family, labels in sorted(awaiting.items()):
                log(f"  {family}: {len(labels)} queries")
        ok = failed == 0 and not problems
        # the plain closing line CI reads
        print(f"e2e: {len(queries) - failed} passed, {failed + len(problems)} failed", flush=True)
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"e2e: logs kept in {tmp}")
        return 0 if ok else 1
    finally:
        if writer:
            writer.stop.set()
        stop(prometheus, "prometheus")
        stop(exporter, "mta_exporter")


if __name__ == "__main__":
    sys.exit(main())
