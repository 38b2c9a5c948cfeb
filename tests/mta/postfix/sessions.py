#!/usr/bin/env python3
"""Drive the Postfix sessions test bed (see sessions.sh): TLS in and out,
SASL failures, lost connections, timeouts, too many errors, postscreen
(PASS NEW/OLD, allowlist, deep protocol tests, DNSBL), milter and
header_checks HOLD/DISCARD, delay and success notifications; then fill the
queue and compare what mta_exporter reads from it with `postqueue -j`.

What the driver did is counted as it goes (connections it opened per
service, TLS sessions with the protocol and cipher its client or the sink
negotiated, logins it failed, …). At the end those counts must equal the
same series of tests/mta/families.py's reading of the captured log: the
expected values the fixture keeps.
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from journal import read_journal  # noqa: E402
from sessionlib import Bed, cipher_class, compare_families, load_expected, proto, save_expected, scrape  # noqa: E402

SENDER = "alice@example.test"
INBOUND = "bob@example.test"


def queue_idle():
    p = subprocess.run(["postqueue", "-j"], capture_output=True, text=True)
    return not any(json.loads(l).get("queue_name") in ("incoming", "active", "maildrop")
                   for l in p.stdout.splitlines())


def scenarios(bed, a):
    pki = a.pki

    # --- TLS in, on the tlsmx service (smtpd_tls_ask_ccert=yes) ------------
    _, tls = bed.swaks(a.tlsmx_port, "ok@mx.test", tls=True)
    bed.connected("tlsmx")
    bed.expect("mta_tls_connections_total", mta="postfix", direction="inbound", protocol=proto(tls[0]),
               cipher=cipher_class(tls[1]), trust="anonymous")
    bed.settle("TLS in without a client certificate: Anonymous", r"Anonymous TLS connection established from")
    _, tls = bed.swaks(a.tlsmx_port, "ok@mx.test", tls=True, cert=os.path.join(pki, "client"))
    bed.connected("tlsmx")
    bed.expect("mta_tls_connections_total", mta="postfix", direction="inbound", protocol=proto(tls[0]),
               cipher=cipher_class(tls[1]), trust="trusted")
    bed.settle("TLS in with a client certificate from our CA: Trusted", r"Trusted TLS connection established from")
    bed.raw(a.tlsmx_port, [b"EHLO client.example.test\r\n", b"STARTTLS\r\n"], tls_garbage=True)
    bed.connected("tlsmx")
    bed.expect("mta_tls_failures_total", mta="postfix", direction="inbound")
    bed.expect("mta_smtp_session_errors_total", mta="postfix", service="tlsmx", error="lost_connection", phase="helo")
    bed.settle("TLS in: handshake garbage -> SSL_accept error", r"SSL_accept error from")

    # --- TLS out, to the sink's TLS ports ----------------------------------
    journal_start = os.path.getsize(a.journal) if os.path.exists(a.journal) else 0
    for domain, trust, name in [("tlsverify.test", "verified", "verify match=mx.sink.test: Verified"),
                                ("tlstrust.test", "trusted", "encrypt with our CA: Trusted")]:
        bed.swaks(a.submission_port, "a@" + domain, sender=SENDER)
        bed.connected("submission")
        bed.settle("TLS out, " + name, r"TLS connection established to")
    entries, _ = read_journal(a.journal, journal_start)
    negotiated = [e["tls"] for e in entries if e.get("command") == "STARTTLS" and e.get("tls")]
    if len(negotiated) != 2:
        print("FAIL the sink journal has %d TLS sessions, not 2" % len(negotiated), file=sys.stderr)
        bed.failures += 1
    for (version, suite), trust in zip(negotiated, ["verified", "trusted"]):
        bed.expect("mta_tls_connections_total", mta="postfix", direction="outbound", protocol=proto(version),
                   cipher=cipher_class(suite), trust=trust)
    bed.swaks(a.submission_port, "a@tlsbroken.test", sender=SENDER)
    bed.connected("submission")
    bed.expect("mta_tls_failures_total", mta="postfix", direction="outbound")
    bed.settle("TLS out: the server's handshake is garbage -> SSL_connect error, deferred", r"status=deferred")

    # --- SASL on the auth service ------------------------------------------
    for mech, password in [("LOGIN", "wrong"), ("LOGIN", "wrong2"), ("PLAIN", "wrong"), ("CRAM-MD5", "wrong")]:
        bed.swaks(a.auth_port, "ok@sink.test", sender=SENDER, auth=(mech, password))
        bed.connected("auth")
        bed.expect("mta_smtp_auth_failures_total", mta="postfix", method=mech.lower().replace("-", "_"))
        bed.settle("SASL %s with a wrong password" % mech, r"SASL %s authentication failed" % mech)
    bed.swaks(a.auth_port, "ok@sink.test", sender=SENDER, auth=("LOGIN", a.password))
    bed.connected("auth")
    bed.settle("SASL LOGIN with the right password, delivered", r"status=sent")

    # --- sessions that fail, on tlsmx (smtpd_timeout=3s, hard_error_limit=3) -
    for commands, phase in [([], "connect"), ([b"EHLO c.example.test\r\n"], "helo"),
                            ([b"EHLO c.example.test\r\n", b"MAIL FROM:<bob@example.test>\r\n"], "mail"),
                            ([b"EHLO c.example.test\r\n", b"MAIL FROM:<bob@example.test>\r\n", b"RCPT TO:<ok@mx.test>\r\n"], "rcpt"),
                            ([b"EHLO c.example.test\r\n", b"MAIL FROM:<bob@example.test>\r\n", b"RCPT TO:<ok@mx.test>\r\n",
                              b"DATA\r\n", b"Subject: cut\r\n\r\nhalf a mess"], "data")]:
        bed.raw(a.tlsmx_port, commands, read_greeting=bool(commands))
        bed.connected("tlsmx")
        bed.expect("mta_smtp_session_errors_total", mta="postfix", service="tlsmx", error="lost_connection", phase=phase)
        bed.settle("lost connection after %s" % phase, r"lost connection after")
    bed.raw(a.tlsmx_port, [b"EHLO c.example.test\r\n"], close_after=4.5)
    bed.connected("tlsmx")
    bed.expect("mta_smtp_session_errors_total", mta="postfix", service="tlsmx", error="timeout", phase="helo")
    bed.settle("timeout after EHLO (smtpd_timeout=3s)", r"timeout after EHLO")
    bed.raw(a.tlsmx_port, [b"XYZZY\r\n", b"XYZZY\r\n", b"XYZZY\r\n"])
    bed.connected("tlsmx")
    bed.expect("mta_smtp_session_errors_total", mta="postfix", service="tlsmx", error="too_many_errors", phase="other")
    bed.settle("too many errors after 3 unknown commands", r"too many errors after")

    # --- postscreen ---------------------------------------------------------
    for result in ("pass_new", "pass_old"):
        bed.swaks(a.ps_port, "ok@mx.test")
        bed.expect("mta_postscreen_connections_total")
        bed.expect("mta_postscreen_results_total", result=result)
        bed.connected("smtpd")
        bed.settle("postscreen: %s, handed to smtpd" % result, r"PASS (NEW|OLD)")
    bed.swaks(a.ps_allow_port, "ok@mx.test")
    bed.expect("mta_postscreen_connections_total")
    bed.expect("mta_postscreen_results_total", result="allowlisted")
    bed.connected("smtpd")
    bed.settle("postscreen: permit_mynetworks -> ALLOWLISTED", r"ALLOWLISTED|WHITELISTED")
    bed.raw(a.ps_deep_port, [b"EHLO c.example.test\r\nMAIL FROM:<bob@example.test>\r\n", b"QUIT\r\n"])
    bed.expect("mta_postscreen_connections_total")
    bed.expect("mta_postscreen_violations_total", test="pipelining")
    bed.settle("postscreen deep tests: COMMAND PIPELINING", r"COMMAND PIPELINING")
    bed.raw(a.ps_deep_port, [b"GET / HTTP/1.0\r\n"])
    bed.expect("mta_postscreen_connections_total")
    bed.expect("mta_postscreen_violations_total", test="non_smtp_command")
    bed.settle("postscreen deep tests: NON-SMTP COMMAND", r"NON-SMTP COMMAND")
    bed.raw(a.ps_deep_port, [b"EHLO c.example.test\n", b"QUIT\r\n"])
    bed.expect("mta_postscreen_connections_total")
    bed.expect("mta_postscreen_violations_total", test="bare_newline")
    bed.settle("postscreen deep tests: BARE NEWLINE", r"BARE NEWLINE")
    bed.raw(a.ps_deep_port, [])
    bed.expect("mta_postscreen_connections_total")
    bed.expect("mta_postscreen_violations_total", test="hangup")
    bed.settle("postscreen deep tests: HANGUP", r"HANGUP")
    if a.dns_port:
        bed.swaks(a.ps_dnsbl_port, "ok@mx.test")
        bed.expect("mta_postscreen_connections_total")
        bed.dnsbl = 3
        bed.settle("postscreen: DNSBL rank 3 (bl.test*2 + bl2.test*1)", r"DNSBL rank")

    # --- milter and header_checks HOLD and DISCARD ------------------------
    for rcpt, action in [("miltdiscard@milter.test", "discard"), ("miltquarantine@milter.test", "hold")]:
        bed.swaks(a.milter_smtpd_port, rcpt)
        bed.connected("smtpd")
        bed.expect("mta_filter_actions_total", mta="postfix", filter="milter", action=action)
        bed.settle("milter %s" % action, r"milter-%s:" % action)
    for subject, action in [("[HOLD-TEST]", "hold"), ("[DISCARD-TEST]", "discard")]:
        bed.swaks(a.mx_port, "ok@mx.test", headers=["Subject: %s please" % subject])
        bed.connected("smtpd")
        bed.expect("mta_filter_actions_total", mta="postfix", filter="content_checks", action=action)
        bed.settle("header_checks %s" % action.upper(), r": %s: header " % action)

    # --- notifications: a delay warning and a success DSN -----------------
    out, _ = bed.swaks(a.submission_port, "rcpt-451-4.7.1+delay@sink.test", sender=SENDER)
    bed.connected("submission")
    qid = re.search(r"queued as (\w+)", out).group(1)
    bed.settle("delay warning: first attempt deferred", r"status=deferred")
    time.sleep(a.delay_warning + 1)
    subprocess.run(["postqueue", "-i", qid], check=True)
    bed.expect("mta_notifications_total", mta="postfix", kind="delay")
    bed.settle("delay warning: retry after delay_warning_time -> sender delay notification", r"sender delay notification")
    import smtplib
    s = smtplib.SMTP("127.0.0.1", a.submission_port, local_hostname="client.example.test", timeout=20)
    s.sendmail(SENDER, ["nobody@mx1.example.test"], "Subject: dsn\r\n\r\nplease confirm\r\n",
               rcpt_options=["NOTIFY=SUCCESS"])
    s.quit()
    bed.connected("submission")
    bed.expect("mta_notifications_total", mta="postfix", kind="delivery")
    bed.settle("NOTIFY=SUCCESS to a local mailbox -> sender delivery status notification",
               r"sender delivery status notification")


# --- the real queue -------------------------------------------------------


def postqueue():
    queues = collections.defaultdict(lambda: {"messages": 0, "bytes": 0, "oldest": None})
    p = subprocess.run(["postqueue", "-j"], capture_output=True, text=True, check=True)
    for line in p.stdout.splitlines():
        m = json.loads(line)
        q = queues[m["queue_name"]]
        q["messages"] += 1
        q["bytes"] += m["message_size"]
        q["oldest"] = m["arrival_time"] if q["oldest"] is None else min(q["oldest"], m["arrival_time"])
    return queues


def fill_queue(bed, a):
    for i in range(a.queue_messages):
        bed.swaks(a.submission_port, "rcpt-451-4.7.1+q%d@sink.test" % i, sender=SENDER)
        bed.connected("submission")
    bed.settle("queue: %d messages deferred by the sink" % a.queue_messages, r"status=deferred", a.queue_messages)


def compare_queue(a, exporters):
    truth = postqueue()
    now = time.time()
    ok = True
    print("postqueue -j: %s" % {q: (v["messages"], v["bytes"]) for q, v in sorted(truth.items())})
    for name, address in exporters:
        got = scrape(address, "postfix")
        if got.get(("mta_queue_up", None)) != 1:
            print("FAIL %s: mta_queue_up is %s" % (name, got.get(("mta_queue_up", None))), file=sys.stderr)
            ok = False
        for queue in ("incoming", "active", "deferred", "hold", "maildrop"):
            want = truth.get(queue, {"messages": 0, "bytes": 0, "oldest": None})
            messages = got.get(("mta_queue_messages", queue))
            size = got.get(("mta_queue_size_bytes", queue))
            age = got.get(("mta_queue_oldest_message_age_seconds", queue))
            want_age = now - want["oldest"] if want["oldest"] else 0
            good = messages == want["messages"] and size == want["bytes"] and abs((age or 0) - want_age) <= 3
            ok &= good
            print("%-4s %s %s: messages %s (postqueue %d), bytes %s (postqueue %d), oldest %.0f s (postqueue %.0f s)" % (
                "ok" if good else "FAIL", name, queue, messages, want["messages"], size, want["bytes"], age or 0, want_age))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--journal", required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--families", help="families.json of the capture, to check the driver's counts against")
    ap.add_argument("--phase", choices=["scenarios", "queue"], required=True)
    ap.add_argument("--expected-out", help="where the driver's counts go (phase scenarios)")
    ap.add_argument("--expected-in", help="the driver's counts (phase queue checks them)")
    ap.add_argument("--exporter", action="append", default=[], metavar="NAME=HOST:PORT")
    ap.add_argument("--queue-messages", type=int, default=4)
    ap.add_argument("--delay-warning", type=float, default=4)
    for p in ("submission", "mx", "auth", "tlsmx", "ps", "ps-allow", "ps-deep", "ps-dnsbl", "milter-smtpd", "dns"):
        ap.add_argument("--%s-port" % p, type=int, default=0)
    a = ap.parse_args()
    bed = Bed(a, "postfix", queue_idle)
    if a.phase == "scenarios":
        scenarios(bed, a)
        fill_queue(bed, a)
        save_expected(bed, a.expected_out)
        sys.exit(1 if bed.failures else 0)
    # phase queue: the log is captured and read by the oracle; the queue is full.
    load_expected(bed, a.expected_in)
    ok = compare_families(bed, a.families)
    if a.exporter:
        ok &= compare_queue(a, [e.split("=", 1) for e in a.exporter])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
