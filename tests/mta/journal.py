"""Helpers shared by the MTA drivers: expected-count bookkeeping, the sink's
journal, and waiting on a growing log file. Stdlib only.

The expected.json schema (the exporter's contract) is described in
tests/mta/README.md. A driver builds it from its own scenario table with
`Expected`, then cross-checks it against the sink journal with
`journal_reply_counts` before anything reads the MTA's log.
"""

import collections
import json
import os
import re
import time

PHASES = ("connect", "helo", "auth", "mail", "rcpt", "data", "end_of_data", "other", "unknown", "none")
STATUSES = ("sent", "deferred", "bounced", "expired", "deliverable", "undeliverable", "rejected", "none")
DELIVERY_KEYS = ("sent", "deferred", "bounced", "expired", "rejected", "deliverable", "undeliverable")

# Sink journal command -> phase.
COMMAND_PHASE = {
    "CONNECT": "connect", "EHLO": "helo", "HELO": "helo", "LHLO": "helo", "STARTTLS": "helo",
    "AUTH": "auth", "MAIL": "mail", "RCPT": "rcpt", "DATA": "data", "END_OF_DATA": "end_of_data",
}


class Row(collections.namedtuple("Row", "direction phase code enhanced status")):
    """One reply as the exporter should count it."""

    def __new__(cls, direction, phase, code, enhanced, status):
        assert direction in ("outbound", "inbound"), direction
        assert phase in PHASES, phase
        assert status in STATUSES, status
        assert code == "none" or re.fullmatch(r"[2-5]\d\d", code), code
        assert enhanced == "none" or re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", enhanced), enhanced
        return super().__new__(cls, direction, phase, code, enhanced, status)


def out(phase, code, enhanced, status):
    return Row("outbound", phase, code or "none", enhanced or "none", status)


def inb(phase, code, enhanced, status="rejected"):
    return Row("inbound", phase, code or "none", enhanced or "none", status)


class Expected:
    """Accumulates rows, reject_warnings and expired counts per scenario, plus
    delivery outcomes logged without any reply (`deliveries`: status -> n)."""

    def __init__(self):
        self.rows = collections.Counter()
        self.reject_warnings = 0
        self.expired = 0
        self.extra_deliveries = collections.Counter()
        self.per_scenario = []

    def add(self, scenario, rows, reject_warnings=0, expired=0, deliveries=None):
        c = collections.Counter(rows)
        self.rows.update(c)
        self.reject_warnings += reject_warnings
        self.expired += expired
        for status in deliveries or {}:
            assert status in DELIVERY_KEYS, status
        self.extra_deliveries.update(deliveries or {})
        self.per_scenario.append((scenario, c, reject_warnings, expired))

    def deliveries(self):
        d = dict.fromkeys(DELIVERY_KEYS, 0)
        for row, n in self.rows.items():
            if row.status in d:
                d[row.status] += n
        d["expired"] += self.expired
        for status, n in self.extra_deliveries.items():
            d[status] += n
        return d

    def to_json(self, notes):
        rows = [dict(row._asdict(), count=n) for row, n in sorted(self.rows.items())]
        return {"replies": rows, "deliveries": self.deliveries(),
                "reject_warnings": self.reject_warnings, "notes": notes}


def read_journal(path, start=0):
    """Entries of a JSONL journal from byte offset start; returns (entries, end_offset)."""
    if not os.path.exists(path):
        return [], start
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    end = start + data.rfind(b"\n") + 1
    return [json.loads(l) for l in data[: end - start].splitlines() if l.strip()], end


def journal_reply_counts(entries):
    """How many per-recipient status reports the journal's replies should cause,
    keyed by (phase, code, enhanced): each refused RCPT once; a refused MAIL once
    per RCPT the client pipelined after it; a refused DATA and every end-of-DATA
    reply once per accepted recipient; a refused greeting, EHLO+HELO or AUTH once
    per session. Accepted RCPTs, MAILs and greetings are not counted (an MTA does
    not log them), so address-verification probes are not counted either."""
    counts = collections.Counter()
    sessions = collections.defaultdict(list)
    for e in entries:
        sessions[(e["listen"], e["session"])].append(e)
    for entries in sessions.values():
        refused_hello = None
        for i, e in enumerate(entries):
            cmd, code, enh = e["command"], e["code"], e["enhanced"] or "none"
            key = (COMMAND_PHASE.get(cmd, "other"), code, enh)
            if cmd in ("EHLO", "HELO", "LHLO") and code[0] in "45":
                refused_hello = key  # a client may retry with HELO: count the session once
            elif cmd == "CONNECT" and code[0] in "45":
                counts[key] += 1
            elif cmd == "AUTH" and code[0] in "45":
                counts[key] += 1
            elif cmd == "RCPT" and code[0] in "45" and code != "503":
                counts[key] += 1
            elif cmd == "MAIL" and code[0] in "45":
                n = 0
                for later in entries[i + 1:]:
                    if later["command"] != "RCPT":
                        break
                    n += 1
                counts[key] += max(n, 1)
            elif cmd == "DATA" and code[0] in "45" and e.get("rcpts") != []:
                # (a DATA refused because no recipient was accepted is not reported)
                counts[key] += len(e.get("rcpts") or [None])
            elif cmd == "END_OF_DATA":
                counts[key] += len(e.get("rcpts") or [None])
        if refused_hello:
            counts[refused_hello] += 1
    return counts


class LogWatcher:
    """Reads the lines a log gained since a mark (byte offset)."""

    def __init__(self, path):
        self.path = path

    def size(self):
        try:
            return os.path.getsize(self.path)
        except FileNotFoundError:
            return 0

    def lines_since(self, offset):
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return []
        data = data[: data.rfind(b"\n") + 1]
        return data.decode("utf-8", "replace").splitlines()

    def wait_idle(self, idle=0.4, timeout=30.0, ready=lambda: True):
        """Wait until ready() holds and the log has not grown for `idle` seconds."""
        deadline = time.monotonic() + timeout
        last = self.size()
        last_change = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.size()
            if now != last:
                last, last_change = now, time.monotonic()
                continue
            if time.monotonic() - last_change >= idle and ready():
                return True
        return False
