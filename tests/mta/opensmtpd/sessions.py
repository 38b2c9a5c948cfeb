#!/usr/bin/env python3
"""Drive the OpenSMTPD sessions test bed (see sessions.sh): TLS out,
sessions the client leaves; then fill the queue and compare what
mta_exporter reads from /var/spool/smtpd with `smtpctl show queue`.
Debian 12's OpenSMTPD cannot do TLS in (nor AUTH, offered only over TLS):
see sessions-conf/smtpd.conf.in.

What the driver did is counted as it goes and must equal the same series
of tests/mta/families.py's reading of the captured syslog.
"""

import argparse
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from journal import read_journal  # noqa: E402
from sessionlib import Bed, cipher_class, compare_families, load_expected, proto, save_expected, scrape  # noqa: E402

SENDER = "alice@example.test"


def queue_idle():
    p = subprocess.run(["smtpctl", "show", "queue"], capture_output=True, text=True)
    # Nothing in flight: every envelope left waits for a later retry.
    return "|inflight|" not in p.stdout


def scenarios(bed, a):
    # sessions.sh's wait_tcp probe: connected, then gone without a word.
    bed.expect("mta_smtp_connections_total", a.probes, mta="opensmtpd", service="smtpd")
    bed.expect("mta_smtp_disconnections_total", a.probes, mta="opensmtpd", service="smtpd")
    bed.expect("mta_smtp_session_errors_total", a.probes, mta="opensmtpd", service="smtpd", error="lost_connection",
               phase="unknown")

    # --- TLS out (no TLS in, no AUTH: see sessions-conf/smtpd.conf.in) -------
    journal_start = os.path.getsize(a.journal) if os.path.exists(a.journal) else 0
    # One message: OpenSMTPD keeps a connection open for 10 s and sends the
    # next message to the same route through it, in the same TLS session.
    bed.swaks(a.mx_port, "a@tlsverify.test")
    bed.connected("smtpd")
    bed.settle("TLS out to the sink", r"mta delivery .*tlsverify")
    entries, _ = read_journal(a.journal, journal_start)
    negotiated = [e["tls"] for e in entries if e.get("command") == "STARTTLS" and e.get("tls")]
    if len(negotiated) != 1:
        print("FAIL the sink journal has %d TLS sessions, not 1" % len(negotiated), file=sys.stderr)
        bed.failures += 1
    for version, suite in negotiated:
        bed.expect("mta_tls_connections_total", mta="opensmtpd", direction="outbound", protocol=proto(version),
                   cipher=cipher_class(suite), trust="unknown")

    # --- sessions the client leaves -------------------------------------------
    for commands, name in [([b"EHLO c.example.test\r\n"], "after EHLO"),
                           ([b"EHLO c.example.test\r\n", b"MAIL FROM:<bob@example.test>\r\n",
                             b"RCPT TO:<ok@mx.test>\r\n"], "after RCPT")]:
        bed.raw(a.mx_port, commands)
        bed.expect("mta_smtp_connections_total", mta="opensmtpd", service="smtpd")
        bed.expect("mta_smtp_disconnections_total", mta="opensmtpd", service="smtpd")
        bed.expect("mta_smtp_session_errors_total", mta="opensmtpd", service="smtpd", error="lost_connection",
                   phase="unknown")
        bed.settle("the client leaves %s" % name, r"smtp disconnected reason=disconnect")


def fill_queue(bed, a):
    for i in range(a.queue_messages):
        bed.swaks(a.mx_port, "rcpt-451-4.7.1+q%d@mx.test" % i)
        bed.connected("smtpd")
    bed.settle("queue: %d messages deferred by the sink" % a.queue_messages, r'result="TempFail"', a.queue_messages)


def compare_queue(a, exporters):
    lines = subprocess.run(["smtpctl", "show", "queue"], capture_output=True, text=True, check=True).stdout.splitlines()
    messages = {line.split("|")[0][:8] for line in lines if "|" in line}
    print("smtpctl show queue: %d envelopes in %d messages" % (len(lines), len(messages)))
    ok = True
    for name, address in exporters:
        got = scrape(address, "opensmtpd")
        good = got.get(("mta_queue_up", None)) == 1 and got.get(("mta_queue_messages", "queued")) == len(messages)
        ok &= good
        print("%-4s %s: %s" % ("ok" if good else "FAIL", name, {k: v for k, v in got.items() if k[1]}))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--journal", required=True)
    ap.add_argument("--families")
    ap.add_argument("--phase", choices=["scenarios", "queue"], required=True)
    ap.add_argument("--expected-out")
    ap.add_argument("--expected-in")
    ap.add_argument("--exporter", action="append", default=[], metavar="NAME=HOST:PORT")
    ap.add_argument("--queue-messages", type=int, default=4)
    ap.add_argument("--probes", type=int, default=0, help="connections sessions.sh made to see smtpd listen")
    ap.add_argument("--mx-port", type=int, required=True)
    a = ap.parse_args()
    bed = Bed(a, "opensmtpd", queue_idle)
    if a.phase == "scenarios":
        scenarios(bed, a)
        fill_queue(bed, a)
        save_expected(bed, a.expected_out)
        sys.exit(1 if bed.failures else 0)
    load_expected(bed, a.expected_in)
    ok = compare_families(bed, a.families)
    if a.exporter:
        ok &= compare_queue(a, [e.split("=", 1) for e in a.exporter])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
