#!/usr/bin/env python3
"""Drive the Exim sessions test bed (see sessions.sh): TLS in and out, SASL
failures per authenticator, lost connections, timeouts, too many errors,
ACL discard and freeze; then fill the queue (deferred and frozen messages)
and compare what mta_exporter reads from the spool with `exim -bpc` and
`exim -bp`.

What the driver did is counted as it goes and must equal the same series
of tests/mta/families.py's reading of the captured mainlog.
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


def queue_idle():
    # Nothing is being delivered: no exim4 process other than the daemon.
    p = subprocess.run(["pgrep", "-c", "-x", "exim4"], capture_output=True, text=True)
    return p.stdout.strip() in ("", "0", "1")


def scenarios(bed, a):
    mx, sub = str(a.mx_port), str(a.submission_port)

    # --- TLS in -------------------------------------------------------------
    _, tls = bed.swaks(a.mx_port, "ok@mx.test", tls=True)
    bed.connected(mx)
    bed.expect("mta_tls_connections_total", mta="exim", direction="inbound", protocol=proto(tls[0]),
               cipher=cipher_class(tls[1]), trust="anonymous")
    bed.settle("TLS in, no client certificate (CV=no, no DN): anonymous", r" <= .* X=TLS")
    _, tls = bed.swaks(a.mx_port, "ok@mx.test", tls=True, cert=os.path.join(a.pki, "client"))
    bed.connected(mx)
    bed.expect("mta_tls_connections_total", mta="exim", direction="inbound", protocol=proto(tls[0]),
               cipher=cipher_class(tls[1]), trust="trusted")
    bed.settle("TLS in, client certificate from the test CA (CV=yes): trusted", r" <= .* CV=yes")

    # --- TLS out --------------------------------------------------------------
    journal_start = os.path.getsize(a.journal) if os.path.exists(a.journal) else 0
    for domain, name in [("tlsverify.test", "verified (CV=yes)"), ("tlsany.test", "not checked (CV=no, DN)")]:
        bed.swaks(a.submission_port, "a@" + domain, sender=SENDER)
        bed.connected(sub)
        bed.settle("TLS out, " + name, r" => a@%s .* X=TLS" % re.escape(domain))
    entries, _ = read_journal(a.journal, journal_start)
    negotiated = [e["tls"] for e in entries if e.get("command") == "STARTTLS" and e.get("tls")]
    if len(negotiated) != 2:
        print("FAIL the sink journal has %d TLS sessions, not 2" % len(negotiated), file=sys.stderr)
        bed.failures += 1
    for (version, suite), trust in zip(negotiated, ["verified", "untrusted"]):
        bed.expect("mta_tls_connections_total", mta="exim", direction="outbound", protocol=proto(version),
                   cipher=cipher_class(suite), trust=trust)
    bed.swaks(a.submission_port, "a@tlsbroken.test", sender=SENDER)
    bed.connected(sub)
    bed.expect("mta_tls_failures_total", mta="exim", direction="outbound")
    bed.settle("TLS out: the server's handshake is garbage, deferred", r" == a@tlsbroken\.test")

    # --- SASL -----------------------------------------------------------------
    for mech, authenticator in [("PLAIN", "plain"), ("LOGIN", "login"), ("LOGIN", "login"), ("CRAM-MD5", "cram_md5")]:
        bed.swaks(a.submission_port, "ok@sink.test", sender=SENDER, auth=(mech, "wrong"), user="alice")
        bed.connected(sub)
        bed.expect("mta_smtp_auth_failures_total", mta="exim", method=authenticator)
        bed.settle("AUTH %s with a wrong password" % mech, r"authenticator failed for")
    bed.swaks(a.submission_port, "ok@sink.test", sender=SENDER, auth=("PLAIN", a.password), user="alice")
    bed.connected(sub)
    bed.settle("AUTH PLAIN with the right password, delivered", r" => ok@sink\.test")

    # --- sessions that fail --------------------------------------------------
    for commands, phase, name in [
        ([b"EHLO c.example.test\r\n"], "unknown", "client leaves after EHLO"),
        ([b"EHLO c.example.test\r\n", b"MAIL FROM:<bob@example.test>\r\n", b"RCPT TO:<ok@mx.test>\r\n", b"DATA\r\n",
          b"Subject: cut\r\n\r\nhalf a mess"], "data", "client leaves in the message data"),
    ]:
        bed.raw(a.mx_port, commands)
        bed.expect("mta_smtp_connections_total", mta="exim", service=mx)
        bed.expect("mta_smtp_disconnections_total", mta="exim", service=mx)
        bed.expect("mta_smtp_session_errors_total", mta="exim", service=mx, error="lost_connection", phase=phase)
        bed.settle(name, r"lost|unexpected disconnection")
    bed.raw(a.mx_port, [b"EHLO c.example.test\r\n"], close_after=4.5)
    bed.expect("mta_smtp_connections_total", mta="exim", service=mx)
    bed.expect("mta_smtp_disconnections_total", mta="exim", service=mx)
    bed.expect("mta_smtp_session_errors_total", mta="exim", service=mx, error="timeout", phase="unknown")
    bed.settle("SMTP command timeout (smtp_receive_timeout = 3s)", r"SMTP command timeout")
    bed.raw(a.mx_port, [b"XYZZY\r\n"] * 3)  # the third is one too many: 421, hang up
    bed.expect("mta_smtp_connections_total", mta="exim", service=mx)
    bed.expect("mta_smtp_disconnections_total", mta="exim", service=mx)
    bed.expect("mta_smtp_session_errors_total", mta="exim", service=mx, error="too_many_errors", phase="other")
    bed.settle("too many syntax errors (smtp_max_synprot_errors = 2)", r"dropped: too many")

    # --- ACL discard --------------------------------------------------------
    bed.swaks(a.mx_port, "discardme@mx.test")
    bed.connected(mx)
    bed.expect("mta_filter_actions_total", mta="exim", filter="acl", action="discard")
    bed.settle("RCPT ACL discard", r"=> blackhole")


def exim_bp():
    """(count, frozen, per-message sizes, oldest age in s) from exim -bp."""
    count = int(subprocess.run(["exim4", "-bpc"], capture_output=True, text=True, check=True).stdout.strip())
    frozen, sizes, ages = 0, [], []
    for line in subprocess.run(["exim4", "-bp"], capture_output=True, text=True, check=True).stdout.splitlines():
        m = re.match(r"\s*(\d+)([mhd])\s+(\S+) \S+ <[^>]*>( \*\*\* frozen \*\*\*)?", line)
        if m:
            ages.append(int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400}[m.group(2)])
            sizes.append(m.group(3))
            frozen += bool(m.group(4))
    return count, frozen, sizes, max(ages) if ages else 0


def fill_queue(bed, a):
    for i in range(a.queue_messages):
        bed.swaks(a.submission_port, "rcpt-451-4.7.1+q%d@sink.test" % i, sender=SENDER)
        bed.connected(str(a.submission_port))
    bed.settle("queue: %d messages deferred by the sink" % a.queue_messages, r" == rcpt-451", a.queue_messages)
    out, _ = bed.swaks(a.mx_port, "ok@mx.test", headers=["Subject: FREEZE-TEST please"])
    bed.connected(str(a.mx_port))
    bed.settle("queue: one message frozen by the DATA ACL", r"frozen")
    ids = [l.split()[2] for l in subprocess.run(["exim4", "-bp"], capture_output=True, text=True).stdout.splitlines()
           if re.match(r"\s*\d+[mhd] ", l) and "frozen" not in l]
    subprocess.run(["exim4", "-Mf", ids[0]], check=True, capture_output=True)
    bed.settle("queue: one deferred message frozen by exim -Mf", r"frozen by root")


def compare_queue(a, exporters):
    count, frozen, sizes, oldest = exim_bp()
    print("exim -bpc: %d messages; exim -bp: %d frozen, sizes %s, oldest %d s" % (count, frozen, sizes, oldest))
    ok = True
    for name, address in exporters:
        got = scrape(address, "exim")
        up = got.get(("mta_queue_up", None)) == 1
        messages = (got.get(("mta_queue_messages", "input")), got.get(("mta_queue_messages", "frozen")))
        total_bytes = (got.get(("mta_queue_size_bytes", "input")) or 0) + (got.get(("mta_queue_size_bytes", "frozen")) or 0)
        want_bytes = sum(int(s) for s in sizes) if all(s.isdigit() for s in sizes) else None
        ages = [got.get(("mta_queue_oldest_message_age_seconds", q)) or 0 for q in ("input", "frozen")]
        good = (up and messages == (count - frozen, frozen) and total_bytes == want_bytes
                and oldest <= max(ages) < oldest + 60)
        ok &= good
        print("%-4s %s: up %s, input %s frozen %s (exim -bpc %d, %d frozen), bytes %s (exim -bp %s), oldest %.0f s (exim -bp %d s, minutes)" % (
            "ok" if good else "FAIL", name, up, messages[0], messages[1], count, frozen, total_bytes, want_bytes,
            max(ages), oldest))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--journal", required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--families")
    ap.add_argument("--phase", choices=["scenarios", "queue"], required=True)
    ap.add_argument("--expected-out")
    ap.add_argument("--expected-in")
    ap.add_argument("--exporter", action="append", default=[], metavar="NAME=HOST:PORT")
    ap.add_argument("--queue-messages", type=int, default=4)
    ap.add_argument("--mx-port", type=int, required=True)
    ap.add_argument("--submission-port", type=int, required=True)
    a = ap.parse_args()
    bed = Bed(a, "exim", queue_idle)
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
