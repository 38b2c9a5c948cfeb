#!/usr/bin/env python3
"""Drive the Sendmail sessions test bed (see sessions.sh): STARTTLS in and
out, SASL failures, lost input channels, a command timeout, milter discard
and quarantine; then fill the queue and compare what mta_exporter reads
from the queue directory with `mailq`.

What the driver did is counted as it goes and must equal the same series
of tests/mta/families.py's reading of the captured syslog.
"""

import argparse
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from journal import read_journal  # noqa: E402
from sessionlib import Bed, cipher_class, compare_families, load_expected, proto, save_expected, scrape  # noqa: E402

SENDER = "alice@example.test"


def sendmail_queue_idle(cf):
    def idle():
        p = subprocess.run(["pgrep", "-f", "sendmail: .*(./|[0-9A-Za-z]{14}: )"], capture_output=True, text=True)
        return not p.stdout.strip()
    return idle


def scenarios(bed, a):
    # --- STARTTLS in (MTA-v4) -------------------------------------------------
    _, tls = bed.swaks(a.mx_port, "ok@mx.test", tls=True)
    bed.expect("mta_tls_connections_total", mta="sendmail", direction="inbound", protocol=proto(tls[0]),
               cipher=cipher_class(tls[1]), trust="anonymous")
    bed.settle("STARTTLS in without a client certificate: verify=NO", r"STARTTLS=server, relay=.*verify=NO")
    _, tls = bed.swaks(a.mx_port, "ok@mx.test", tls=True, cert=os.path.join(a.pki, "client"))
    bed.expect("mta_tls_connections_total", mta="sendmail", direction="inbound", protocol=proto(tls[0]),
               cipher=cipher_class(tls[1]), trust="trusted")
    bed.settle("STARTTLS in with a client certificate of the test CA: verify=OK", r"STARTTLS=server, relay=.*verify=OK")
    bed.raw(a.mx_port, [b"EHLO c.example.test\r\n", b"STARTTLS\r\n"], tls_garbage=True)
    bed.expect("mta_tls_failures_total", mta="sendmail", direction="inbound")
    bed.settle("STARTTLS in: handshake garbage -> STARTTLS=server, error", r"STARTTLS=server, error")

    # --- STARTTLS out ---------------------------------------------------------
    journal_start = os.path.getsize(a.journal) if os.path.exists(a.journal) else 0
    bed.swaks(a.submission_port, "a@tlsverify.test", sender=SENDER)
    bed.settle("STARTTLS out to the sink, verify=OK", r"STARTTLS=client, relay=.*verify=")
    entries, _ = read_journal(a.journal, journal_start)
    negotiated = [e["tls"] for e in entries if e.get("command") == "STARTTLS" and e.get("tls")]
    if len(negotiated) != 1:
        print("FAIL the sink journal has %d TLS sessions, not 1" % len(negotiated), file=sys.stderr)
        bed.failures += 1
    for version, suite in negotiated:
        bed.expect("mta_tls_connections_total", mta="sendmail", direction="outbound", protocol=proto(version),
                   cipher=cipher_class(suite), trust="trusted")
    bed.swaks(a.submission_port, "a@tlsbroken.test", sender=SENDER)
    bed.expect("mta_tls_failures_total", mta="sendmail", direction="outbound")
    bed.settle("STARTTLS out: the server's handshake is garbage", r"STARTTLS=client, error")

    # --- SASL -----------------------------------------------------------------
    for mech in ("LOGIN", "LOGIN", "PLAIN", "CRAM-MD5"):
        bed.swaks(a.submission_port, "ok@sink.test", sender=SENDER, auth=(mech, "wrong"), user="alice")
        bed.expect("mta_smtp_auth_failures_total", mta="sendmail", method=mech.lower().replace("-", "_"))
        bed.settle("AUTH %s with a wrong password" % mech, r"AUTH failure \(%s\)" % mech)

    # --- sessions that fail ---------------------------------------------------
    mail = [b"EHLO c.example.test\r\n", b"MAIL FROM:<bob@example.test>\r\n"]
    for commands, phase in [(mail, "mail"), (mail + [b"RCPT TO:<ok@mx.test>\r\n"], "rcpt")]:
        bed.raw(a.mx_port, commands)
        bed.expect("mta_smtp_session_errors_total", mta="sendmail", service="MTA-v4", error="lost_connection", phase=phase)
        bed.settle("client leaves after %s" % phase, r"lost input channel")
    # In the message data Sendmail logs `collect: premature EOM`, without the daemon's name.
    bed.raw(a.mx_port, mail + [b"RCPT TO:<ok@mx.test>\r\n", b"DATA\r\n", b"Subject: cut\r\n\r\nhalf"])
    bed.expect("mta_smtp_session_errors_total", mta="sendmail", service="unknown", error="lost_connection", phase="data")
    bed.settle("client leaves in the message data", r"collect: premature EOM: unexpected close")
    bed.raw(a.mx_port, [b"EHLO c.example.test\r\n"], close_after=4.5)
    bed.expect("mta_smtp_session_errors_total", mta="sendmail", service="unknown", error="timeout", phase="unknown")
    bed.settle("timeout waiting for input (confTO_COMMAND = 3s)", r"timeout waiting for input")

    # --- milter discard and quarantine ----------------------------------------
    for rcpt, action in [("miltdiscard@mx.test", "discard"), ("miltquarantine@mx.test", "quarantine")]:
        bed.swaks(a.mx_port, rcpt)
        bed.expect("mta_filter_actions_total", mta="sendmail", filter="milter", action=action)
        bed.settle("milter %s" % action, r"(?i)milter.*\b%s\b" % action)


def mailq(cf, quarantined):
    args = ["mailq", "-C", cf] + (["-qQ"] if quarantined else [])
    out = subprocess.run(args, capture_output=True, text=True).stdout
    print("$ " + " ".join(args) + "\n" + out)
    # mailq lists the MSP queue, then the MTA queue: here the same directory.
    if "MTA Queue status" in out:
        out = out[out.index("MTA Queue status"):]
    total = re.search(r"Total requests: (\d+)", out)
    sizes = [int(m) for m in re.findall(r"^[0-9A-Za-z]{14}\*?\s+(\d+) ", out, re.M)]
    return (int(total.group(1)) if total else 0), sizes


def fill_queue(bed, a):
    for i in range(a.queue_messages):
        bed.swaks(a.submission_port, "rcpt-451-4.7.1+q%d@sink.test" % i, sender=SENDER)
    bed.settle("queue: %d messages deferred by the sink" % a.queue_messages, r"stat=Deferred", a.queue_messages)


def compare_queue(a, exporters):
    queued, queued_sizes = mailq(a.cf, False)
    quarantined, quarantined_sizes = mailq(a.cf, True)
    print("mailq: %d queued %s, %d quarantined %s" % (queued, queued_sizes, quarantined, quarantined_sizes))
    ok = True
    for name, address in exporters:
        got = scrape(address, "sendmail")
        good = (got.get(("mta_queue_up", None)) == 1
                and got.get(("mta_queue_messages", "queued")) == queued
                and got.get(("mta_queue_messages", "quarantined")) == quarantined
                and got.get(("mta_queue_size_bytes", "queued")) == sum(queued_sizes)
                and got.get(("mta_queue_size_bytes", "quarantined")) == sum(quarantined_sizes))
        ok &= good
        print("%-4s %s: %s" % ("ok" if good else "FAIL", name, {k: v for k, v in got.items() if k[1]}))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--journal", required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("--cf", required=True)
    ap.add_argument("--families")
    ap.add_argument("--phase", choices=["scenarios", "queue"], required=True)
    ap.add_argument("--expected-out")
    ap.add_argument("--expected-in")
    ap.add_argument("--exporter", action="append", default=[], metavar="NAME=HOST:PORT")
    ap.add_argument("--queue-messages", type=int, default=4)
    ap.add_argument("--mx-port", type=int, required=True)
    ap.add_argument("--submission-port", type=int, required=True)
    a = ap.parse_args()
    bed = Bed(a, "sendmail", sendmail_queue_idle(a.cf))
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
