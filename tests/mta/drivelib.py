"""The scenario machinery shared by the Exim, Sendmail and OpenSMTPD drivers
(tests/mta/<mta>/drive.py). Stdlib only. The Postfix driver predates it and
keeps its own copy of the same ideas.

A driver declares scenarios: a name, an action (usually one swaks run) and the
items the MTA's log must show for it. The counting convention (README.md,
"What counts as one reply") is one reply per recipient per attempt, and the
items say how the MTA's lines map to it:

  Row        (journal.out()/inb()) one line with one reply the exporter must
             count, with the delivery status of its line; expected in the
             sink journal too when it is a reply the sink sent.
  Repeat(row)  a recipient line that repeats a reply an earlier line of the
             same attempt already counted for that recipient (Exim: the
             host-level line 'H=host [ip]: SMTP error ...' counts the reply,
             the first recipient line that repeats it counts only its
             outcome): row.status as a delivery, no reply, nothing in the
             sink journal. The line still shows the code.
  Echo(row)  one more recipient's line with the same single server reply
             (OpenSMTPD's line per recipient of a refused MAIL, after which
             it sent no RCPT): a reply and an outcome for that recipient, but
             not one more reply in the sink journal.
  Group(row, n[, journal_n])  one line that reports n recipients
             (Sendmail's "to=<a>,<b>,<c>"): the reply and the outcome count
             n times, once per recipient, and the sink journal holds it
             journal_n times (default n; 1 for a refused MAIL when the client
             sent no RCPT).
  Delivery(status, journal=None, n=1)  a delivery outcome whose line carries
             no reply code (Exim "=> box R=local_user", "** x: Unrouteable
             address", an uncoded inbound "rejected RCPT"); journal names the
             sink reply it stands for, if any, for the cross-check.
  Unlogged(phase, code, enhanced)  a reply the sink sent that the MTA never
             logged (Exim: a first MX's 421 greeting when the second accepts).

Expected counts (expected.json) come only from these tables; the sink journal
is then checked against them, never the other way round.
"""

import collections
import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
from journal import Expected, LogWatcher, journal_reply_counts, read_journal  # noqa: E402

Repeat = collections.namedtuple("Repeat", "row")
Echo = collections.namedtuple("Echo", "row")
Group = collections.namedtuple("Group", "row n journal_n", defaults=(None,))
Unlogged = collections.namedtuple("Unlogged", "phase code enhanced")


class Delivery(collections.namedtuple("Delivery", "status direction journal n")):
    def __new__(cls, status, direction="outbound", journal=None, n=1):
        assert status in ("sent", "deferred", "bounced", "expired", "rejected"), status
        return super().__new__(cls, status, direction, journal, n)


def swaks(port, to, sender, server="127.0.0.1", ehlo="client.example.test", headers=(), body=None,
          auth=None, extra=()):
    """One swaks run; returns its output (the transcript)."""
    cmd = ["swaks", "--server", server, "--port", str(port), "--to", ",".join(to),
           "--from", sender, "--ehlo", ehlo, "--timeout", "20"]
    for h in headers:
        cmd += ["--header", h]
    if body is not None:
        cmd += ["--body", body]
    if auth:
        cmd += ["--auth", "PLAIN", "--auth-user", auth[0], "--auth-password", auth[1]]
    cmd += list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    return p.stdout + p.stderr


class Table:
    """The scenario table and what it adds up to."""

    def __init__(self):
        self.scenarios = []  # (name, action, items)

    def add(self, name, action, items):
        self.scenarios.append((name, action, list(items)))

    @staticmethod
    def expected_of(items, exp, name):
        rows, deliveries = [], collections.Counter()
        for it in items:
            if isinstance(it, Repeat):
                if it.row.status != "none":
                    deliveries[it.row.status] += 1
            elif isinstance(it, Echo):
                rows.append(it.row)
            elif isinstance(it, Group):
                rows.extend([it.row] * it.n)
            elif isinstance(it, Delivery):
                deliveries[it.status] += it.n
            elif isinstance(it, Unlogged):
                pass
            else:
                rows.append(it)
        exp.add(name, rows, deliveries=deliveries)

    @staticmethod
    def journal_keys(items):
        """What the sink journal must hold for these items, keyed like
        journal_reply_counts(): (phase, code, enhanced) -> count."""
        c = collections.Counter()
        for it in items:
            if isinstance(it, (Repeat, Echo)):
                continue
            if isinstance(it, Delivery):
                if it.journal:
                    c[tuple(it.journal)] += it.n
                continue
            if isinstance(it, Unlogged):
                c[(it.phase, it.code, it.enhanced)] += 1
                continue
            n = 1
            if isinstance(it, Group):
                it, n = it.row, it.journal_n or it.n
            if it.direction != "outbound" or it.code == "none" or it.phase == "none":
                continue  # (phase none: a code our MTA made up itself)
            if it.code.startswith("2") and it.phase != "end_of_data":
                continue
            c[(it.phase, it.code, it.enhanced)] += n
        return c


def rows_of(items):
    """The rows of the lines that show a code (a Repeat's line shows it too,
    a Group is one line): what the drivers' line checks count."""
    out = []
    for it in items:
        if isinstance(it, (Repeat, Echo, Group)):
            out.append(it.row)
        elif hasattr(it, "direction") and not isinstance(it, (Delivery, Unlogged)):
            out.append(it)
    return out


def codes_missing(lines, items):
    """Rows whose code (and enhanced code) the new lines do not show often
    enough: a plain text check that catches a wrong code in the table."""
    want = collections.Counter((r.code, r.enhanced) for r in rows_of(items) if r.code != "none")
    missing = []
    for (code, enh), n in want.items():
        if enh == "none":
            pat = re.compile(r"(?<![\d.])%s[ -](?![245]\.\d)" % code)
        else:
            pat = re.compile(r"(?<![\d.])%s[ -]%s(?![\d.])" % (code, re.escape(enh)))
        found = sum(1 for l in lines if pat.search(l))
        if found < n:
            missing.append("%s %s: %d line(s), table says %d" % (code, enh, found, n))
    return missing


def run_scenario(log, name, action, want, line_kinds, timeout=30, idle=0.4, items=()):
    """Run one action, wait until the log gained the wanted line kinds and went
    quiet, and check that it gained exactly those (and shows the codes of the
    items' rows). Returns True when it did."""
    start = log.size()
    action()

    def ready():
        got = line_kinds(log.lines_since(start))
        return all(got[k] >= n for k, n in want.items())

    if not log.wait_idle(ready=ready, timeout=timeout, idle=idle):
        print("TIMEOUT waiting for: %s" % name, file=sys.stderr)
    got = +line_kinds(log.lines_since(start))
    missing = codes_missing(log.lines_since(start), items)
    ok = got == +want and not missing
    print("%-4s %-72s %s" % ("ok" if ok else "FAIL", name[:72],
                              " ".join("%s=%d" % kv for kv in sorted(want.items()))), flush=True)
    if not ok:
        print("     log gained: %s" % dict(got), file=sys.stderr)
        for m in missing:
            print("     code not in the log: %s" % m, file=sys.stderr)
        for l in log.lines_since(start):
            print("     | " + l, file=sys.stderr)
    return ok


def crosscheck_journal(journal_path, table_keys, fold=None):
    """Compare the sink journal with the table. fold(journal_counter) may
    rewrite keys the MTA reports differently. Returns True when they agree."""
    entries, _ = read_journal(journal_path)
    got = journal_reply_counts(entries)
    if fold:
        got = fold(got)
    got, want = +got, +table_keys
    if got != want:
        print("FAIL sink journal disagrees with the scenario table:", file=sys.stderr)
        for key in sorted(set(got) | set(want)):
            if got[key] != want[key]:
                print("     %s journal=%d table=%d" % (key, got[key], want[key]), file=sys.stderr)
        return False
    print("ok   sink journal agrees with the scenario table (%d replies)" % sum(want.values()))
    return True


def dump_expected(d):
    """JSON with one reply row per line (diff-friendly)."""
    rows = ",\n".join("  " + json.dumps(r) for r in d["replies"])
    return ('{"replies": [\n%s\n ],\n "deliveries": %s,\n "reject_warnings": %d,\n "notes": %s}\n'
            % (rows, json.dumps(d["deliveries"]), d["reject_warnings"], json.dumps(d["notes"])))


def write_expected(path, exp, notes):
    with open(path, "w") as f:
        f.write(dump_expected(exp.to_json(notes)))
    d = exp.deliveries()
    print("summary: %d scenarios, %d replies; deliveries %s; reject_warnings %d" % (
        len(exp.per_scenario), sum(exp.rows.values()),
        " ".join("%s=%d" % (k, v) for k, v in d.items()), exp.reject_warnings))


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for %s" % what)
        time.sleep(0.05)


__all__ = ["Repeat", "Echo", "Group", "Delivery", "Unlogged", "Table", "swaks", "run_scenario",
           "crosscheck_journal", "write_expected", "dump_expected", "wait_for", "Expected",
           "LogWatcher", "os", "re"]
