#!/usr/bin/env python3
"""Drive a running Postfix test bed (see run.sh) through every scenario, wait
for each to finish, and write expected.json from this table (never from a log
parser).

Every scenario lists the replies it must produce as rows (tests/mta/journal.py:
out() for replies our smtp/lmtp client received or local delivery results,
inb() for replies our smtpd/postscreen/cleanup gave). After each scenario the
driver waits until the queue is idle and checks, for that scenario alone, that
the log gained exactly as many status=, reject and reject_warning lines as the
rows say; at the end it checks the rows against the sink's journal.
"""

import argparse
import collections
import json
import os
import re
import smtplib
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from journal import Expected, LogWatcher, inb, journal_reply_counts, out, read_journal  # noqa: E402

SENDER = "alice@example.test"
INBOUND_SENDER = "bob@example.test"
EHLO = "client.example.test"

# The bounce notification Postfix sends back to SENDER (routed to the sink).
NOTIFY = out("end_of_data", "250", "2.0.0", "sent")

NOTES = (
    "Real Postfix 3.7 logs produced by tests/mta/postfix/run.sh; counts come from the driver's "
    "scenario table (tests/mta/postfix/drive.py) and were cross-checked against the sink journal. "
    "Conventions beyond the contract: status=sent/deliverable lines that quote a bare reply have "
    "phase end_of_data (sent) or rcpt (deliverable: probes stop after RCPT). 'refused to talk to me' "
    "is phase connect even when the sink refused EHLO and HELO rather than the greeting "
    "(helo.test). 'SASL authentication failed; server ... said: 535' inside a status=deferred line "
    "is phase auth and counted once (Postfix logged no separate line). The content-filter reply "
    "'250 2.0.0 from MTA(...): 250 2.0.0 Ok' counts once (the outer reply). The qmgr "
    "'status=expired, returned to sender' line has no code and no dsn: it counts only in "
    "deliveries.expired. Bounce notifications to the sender are delivered to the sink and count "
    "as status=sent. milter-reject lines count as rejected; cleanup header/body/milter rejects "
    "carry only an enhanced code (code none). Local results (local, virtual, pipe, error, retry "
    "transports) have code none, enhanced = dsn, phase none; a refused TCP connection has phase "
    "connect."
)


class Bed:
    """What the driver talks to: ports of the running Postfix and the sink."""

    def __init__(self, a):
        self.a = a
        self.log = LogWatcher(a.log)

    def swaks(self, port, to, sender=SENDER, server="127.0.0.1", ehlo=EHLO, headers=(), body=None):
        cmd = ["swaks", "--server", server, "--port", str(port), "--to", ",".join(to),
               "--from", sender, "--ehlo", ehlo, "--timeout", "20"]
        for h in headers:
            cmd += ["--header", h]
        if body is not None:
            cmd += ["--body", body]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        m = re.search(r"queued as ([0-9A-Za-z]+)", p.stdout)
        return m.group(1) if m else None

    def queue_busy(self):
        p = subprocess.run(["postqueue", "-j"], capture_output=True, text=True)
        for line in p.stdout.splitlines():
            if json.loads(line).get("queue_name") in ("incoming", "active", "maildrop"):
                return True
        return False


# --- scenario actions -----------------------------------------------------

def sub(*to, sender=SENDER, **kw):
    return lambda bed: bed.swaks(bed.a.submission_port, list(to), sender=sender, **kw)


def mx(*to, sender=INBOUND_SENDER, server="127.0.0.1", **kw):
    return lambda bed: bed.swaks(bed.a.mx_port, list(to), sender=sender, server=server, **kw)


def early(*to, sender=INBOUND_SENDER, ehlo=EHLO):
    return lambda bed: bed.swaks(bed.a.early_port, list(to), sender=sender, ehlo=ehlo)


def milter(*to, sender=INBOUND_SENDER):
    return lambda bed: bed.swaks(bed.a.milter_smtpd_port, list(to), sender=sender)


def connect(server):
    return lambda bed: bed.swaks(bed.a.connect_port, ["ok@mx.test"], sender=INBOUND_SENDER, server=server)


def vrfy(*addresses):
    def act(bed):
        s = smtplib.SMTP("127.0.0.1", bed.a.mx_port, local_hostname=EHLO, timeout=20)
        s.ehlo(EHLO)
        for a in addresses:
            s.verify(a)
        s.quit()
    return act


def postscreen_denylisted(bed):
    bed.swaks(bed.a.postscreen_port, ["ok@mx.test"], sender=INBOUND_SENDER)


def postscreen_pregreet(bed):
    """Talk before the greeting (postscreen's pregreet test), then try to send."""
    s = socket.create_connection(("::1", bed.a.postscreen_port), timeout=20)
    f = s.makefile("rb")

    def reply():
        lines = []
        while True:
            line = f.readline().decode("ascii", "replace").rstrip("\r\n")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return lines

    s.sendall(b"EHLO pregreet.example.test\r\n")
    reply()  # "220-" teaser, then the EHLO reply
    for c in (b"MAIL FROM:<bob@example.test>", b"RCPT TO:<ok@mx.test>", b"QUIT"):
        s.sendall(c + b"\r\n")
        reply()
    s.close()


def verify_twice(address):
    """reject_unverified_recipient: the first RCPT starts a probe and is told
    to come back; once the probe's result is logged, try again."""
    def act(bed):
        start = bed.log.size()
        bed.swaks(bed.a.mx_port, [address], sender=INBOUND_SENDER)
        pat = re.compile(r"to=<%s>.*status=(deliverable|undeliverable)" % re.escape(address))
        deadline = time.monotonic() + 20
        while not any(pat.search(l) for l in bed.log.lines_since(start)):
            if time.monotonic() > deadline:
                raise RuntimeError("no address-verification result for %s" % address)
            time.sleep(0.05)
        bed.swaks(bed.a.mx_port, [address], sender=INBOUND_SENDER)
    return act


# --- the scenario table ---------------------------------------------------
# (name, action, rows, reject_warnings)

S = []


def scenario(name, action, rows, reject_warnings=0):
    S.append((name, action, rows, reject_warnings))


# Outbound: inject through the submission service, delivered by smtp/lmtp to the sink.
scenario("sent, 250 with enhanced code", sub("ok@sink.test"), [out("end_of_data", "250", "2.0.0", "sent")])
scenario("sent, 250 without enhanced code", sub("data-250@sink.test"), [out("end_of_data", "250", None, "sent")])
scenario("sent over IPv6 (relay=::1[::1]:port)", sub("ok@sink6.test"), [out("end_of_data", "250", "2.0.0", "sent")])
scenario("sent through a content filter (nested reply)", sub("a@filter.test"), [out("end_of_data", "250", "2.0.0", "sent")])
scenario("RCPT 550 5.1.1 user unknown -> bounced", sub("rcpt-550-5.1.1@sink.test"), [out("rcpt", "550", "5.1.1", "bounced"), NOTIFY])
scenario("RCPT 550 5.7.26 DMARC, 3-line reply -> bounced", sub("rcptml-550-5.7.26@sink.test"), [out("rcpt", "550", "5.7.26", "bounced"), NOTIFY])
scenario("RCPT 552 5.2.2 mailbox full -> bounced", sub("rcpt-552-5.2.2@sink.test"), [out("rcpt", "552", "5.2.2", "bounced"), NOTIFY])
scenario("RCPT 554 5.7.1 relay denied -> bounced", sub("rcpt-554-5.7.1-relay@sink.test"), [out("rcpt", "554", "5.7.1", "bounced"), NOTIFY])
scenario("RCPT 550 without enhanced code -> bounced", sub("rcpt-550@sink.test"), [out("rcpt", "550", None, "bounced"), NOTIFY])
scenario("RCPT 550 5.7.708 (3-digit detail) -> bounced", sub("rcpt-550-5.7.708@sink.test"), [out("rcpt", "550", "5.7.708", "bounced"), NOTIFY])
scenario("RCPT 451 4.7.500 (3-digit detail) -> deferred", sub("rcpt-451-4.7.500@sink.test"), [out("rcpt", "451", "4.7.500", "deferred")])
scenario("RCPT 550 5.1.1 with soft_bounce=yes -> status=SOFTBOUNCE", sub("rcpt-550-5.1.1@soft.test"), [out("rcpt", "550", "5.1.1", "deferred")])
scenario("RCPT 451 4.7.1 greylisting -> deferred", sub("rcpt-451-4.7.1@sink.test"), [out("rcpt", "451", "4.7.1", "deferred")])
scenario("RCPT 450 4.2.0 greylisted -> deferred", sub("rcpt-450-4.2.0@sink.test"), [out("rcpt", "450", "4.2.0", "deferred")])
scenario("RCPT 451 without enhanced code -> deferred (dsn=4.0.0)", sub("rcpt-451@sink.test"), [out("rcpt", "451", None, "deferred")])
scenario("RCPT 451 without enhanced code, 3-line -> deferred", sub("rcptml-451@sink.test"), [out("rcpt", "451", None, "deferred")])
scenario("RCPT 421 4.7.0 rate limited -> deferred", sub("rcpt-421-4.7.0@sink.test"), [out("rcpt", "421", "4.7.0", "deferred")])
scenario("MAIL 451 4.7.1, three recipients -> deferred x3", sub("a@sink.test", "b@sink.test", "c@sink.test", sender="mail-451-4.7.1@example.test"), [out("mail", "451", "4.7.1", "deferred")] * 3)
scenario("MAIL 550 5.7.23 SPF, 3-line, two recipients -> bounced x2", sub("a@sink.test", "b@sink.test", sender="mailml-550-5.7.23@example.test"), [out("mail", "550", "5.7.23", "bounced")] * 2 + [NOTIFY])
scenario("DATA 451 4.3.0 -> deferred", sub("datacmd-451-4.3.0@sink.test"), [out("data", "451", "4.3.0", "deferred")])
scenario("DATA 554 5.5.1 -> bounced", sub("datacmd-554-5.5.1@sink.test"), [out("data", "554", "5.5.1", "bounced"), NOTIFY])
scenario("end of DATA 554 5.7.1 Spamhaus -> bounced", sub("data-554-5.7.1@sink.test"), [out("end_of_data", "554", "5.7.1", "bounced"), NOTIFY])
scenario("end of DATA 552 5.3.4 too large -> bounced", sub("data-552-5.3.4@sink.test"), [out("end_of_data", "552", "5.3.4", "bounced"), NOTIFY])
scenario("end of DATA 550 5.7.1 spam, 3-line -> bounced", sub("dataml-550-5.7.1@sink.test"), [out("end_of_data", "550", "5.7.1", "bounced"), NOTIFY])
scenario("end of DATA 451 4.3.0 -> deferred", sub("data-451-4.3.0@sink.test"), [out("end_of_data", "451", "4.3.0", "deferred")])
scenario("end of DATA 554 5.7.1, three recipients -> bounced x3", sub("data-554-5.7.1+m@sink.test", "r1@sink.test", "r2@sink.test"), [out("end_of_data", "554", "5.7.1", "bounced")] * 3 + [NOTIFY])
scenario("two recipients, one RCPT 550 5.1.1 -> bounced + sent", sub("rcpt-550-5.1.1+mix@sink.test", "ok1@sink.test"), [out("rcpt", "550", "5.1.1", "bounced"), out("end_of_data", "250", "2.0.0", "sent"), NOTIFY])
scenario("greeting 554 5.7.1 -> refused to talk to me, deferred", sub("a@greet554.test"), [out("connect", "554", "5.7.1", "deferred")])
scenario("greeting 421 4.3.2 -> refused to talk to me, deferred", sub("a@greet421.test"), [out("connect", "421", "4.3.2", "deferred")])
scenario("EHLO and HELO 550 5.7.1 -> refused to talk to me, bounced", sub("a@helo.test"), [out("connect", "550", "5.7.1", "bounced"), NOTIFY])
scenario("AUTH 535 5.7.8 -> SASL authentication failed, deferred", sub("a@auth.test"), [out("auth", "535", "5.7.8", "deferred")])
scenario("two nexthops: first RCPT 451 4.7.1 (non-final line), second sent", sub("rcpt-451-4.7.1@multi.test"), [out("rcpt", "451", "4.7.1", "none"), out("end_of_data", "250", "2.0.0", "sent")])
scenario("two nexthops: first greeting 421 4.3.2 (non-final line), second sent", sub("a@multi2.test"), [out("connect", "421", "4.3.2", "none"), out("end_of_data", "250", "2.0.0", "sent")])
scenario("connection refused -> deferred dsn=4.4.1", sub("a@closed.test"), [out("connect", None, "4.4.1", "deferred")])
scenario("LMTP sent", sub("a@lmtp.test"), [out("end_of_data", "250", "2.0.0", "sent")])
scenario("LMTP per-recipient end of DATA: 250, 452 4.2.2, 552 5.2.2", sub("b@lmtp.test", "data-452-4.2.2@lmtp.test", "data-552-5.2.2@lmtp.test"),
         [out("end_of_data", "250", "2.0.0", "sent"), out("end_of_data", "452", "4.2.2", "deferred"), out("end_of_data", "552", "5.2.2", "bounced"), NOTIFY])
scenario("local(8) delivered to mailbox", sub("nobody@mx1.example.test"), [out("none", None, "2.0.0", "sent")])
scenario("local(8) delivered to file (alias)", sub("tofile@mx1.example.test"), [out("none", None, "2.0.0", "sent")])
scenario("local(8) unknown user -> bounced dsn=5.1.1", sub("nosuchuser@mx1.example.test"), [out("none", None, "5.1.1", "bounced"), NOTIFY])
scenario("virtual(8) delivered to maildir", sub("box@virtual.test"), [out("none", None, "2.0.0", "sent")])
scenario("error(8) transport -> bounced dsn=5.1.2", sub("x@retired.test"), [out("none", None, "5.1.2", "bounced"), NOTIFY])
scenario("retry transport -> deferred dsn=4.4.3", sub("x@retry.test"), [out("none", None, "4.4.3", "deferred")])
scenario("pipe(8) sent", sub("ok@pipe.test"), [out("none", None, "2.0.0", "sent")])
scenario("pipe(8) exit 67 -> bounced dsn=5.1.1", sub("exit-67@pipe.test"), [out("none", None, "5.1.1", "bounced"), NOTIFY])
scenario("pipe(8) exit 75 -> deferred dsn=4.3.0", sub("exit-75@pipe.test"), [out("none", None, "4.3.0", "deferred")])
scenario("submission smtpd: non-FQDN recipient", sub("unqualified"), [inb("rcpt", "504", "5.5.2")])

# Inbound: Postfix's own smtpd (MX service) rejecting or accepting swaks.
scenario("MX accepts, relays to the sink", mx("ok@mx.test"), [out("end_of_data", "250", "2.0.0", "sent")])
scenario("RCPT: user unknown in local recipient table", mx("nosuch@mx1.example.test"), [inb("rcpt", "550", "5.1.1")])
scenario("RCPT: user unknown in relay recipient table", mx("nosuch@mx.test"), [inb("rcpt", "550", "5.1.1")])
scenario("RCPT: user unknown in virtual mailbox table", mx("nouser@virtual.test"), [inb("rcpt", "550", "5.1.1")])
scenario("RCPT: relay access denied", mx("someone@elsewhere.test"), [inb("rcpt", "554", "5.7.1")])
scenario("RCPT: relay access denied, IPv6 client unknown[::1]", mx("someone@elsewhere.test", server="::1"), [inb("rcpt", "554", "5.7.1")])
scenario("RCPT: access map REJECT", mx("reject@mx.test"), [inb("rcpt", "554", "5.7.1")])
scenario("RCPT: access map 550 5.7.1 custom text", mx("custom@mx.test"), [inb("rcpt", "550", "5.7.1")])
scenario("RCPT: access map '550 text' (Postfix adds 5.7.1)", mx("nodsn@mx.test"), [inb("rcpt", "550", "5.7.1")])
scenario("RCPT: access map DEFER", mx("defer@mx.test"), [inb("rcpt", "450", "4.7.1")])
scenario("RCPT: access map 450 4.7.1 greylisted", mx("grey@mx.test"), [inb("rcpt", "450", "4.7.1")])
scenario("RCPT: access map 452 4.2.2 over quota", mx("quota@mx.test"), [inb("rcpt", "452", "4.2.2")])
scenario("RCPT: access map 450 4.7.25 (2-digit detail)", mx("hostname@mx.test"), [inb("rcpt", "450", "4.7.25")])
scenario("RCPT: sender access REJECT (delayed to RCPT)", mx("ok@mx.test", sender="spammer@bad.test"), [inb("rcpt", "554", "5.7.1")])
scenario("queued reject: second recipient unknown after first accepted", mx("ok@mx.test", "nosuch@mx.test"), [inb("rcpt", "550", "5.1.1"), out("end_of_data", "250", "2.0.0", "sent")])
scenario("reject_warning (warn_if_reject), then accepted", mx("warnme@mx.test"), [out("end_of_data", "250", "2.0.0", "sent")], reject_warnings=1)
scenario("DATA: sender access 554 5.7.1", mx("ok@mx.test", sender="datareject@example.test"), [inb("data", "554", "5.7.1")])
scenario("DATA: multi-recipient bounce 550 5.5.3", mx("ok@mx.test", "first@mx.test", sender="<>"), [inb("data", "550", "5.5.3")])
scenario("END-OF-MESSAGE: sender access 550 5.7.1", mx("ok@mx.test", sender="eodreject@example.test"), [inb("end_of_data", "550", "5.7.1")])
scenario("cleanup header_checks REJECT 5.7.1", mx("ok@mx.test", headers=["Subject: offer [HEADER-REJECT-TEST] inside"]), [inb("end_of_data", None, "5.7.1")])
scenario("cleanup header_checks REJECT 4.7.1", mx("ok@mx.test", headers=["X-Defer-Test: yes"]), [inb("end_of_data", None, "4.7.1")])
scenario("cleanup body_checks REJECT 5.7.1", mx("ok@mx.test", body="first line\nBODY-REJECT-TEST in the body\n"), [inb("end_of_data", None, "5.7.1")])
scenario("VRFY: relay denied and user unknown", vrfy("someone@elsewhere.test", "nosuch@mx.test"), [inb("other", "554", "5.7.1"), inb("other", "550", "5.1.1")])
scenario("reject_unverified_recipient: in progress, deliverable, accepted", verify_twice("ok@verify.test"),
         [inb("rcpt", "450", "4.1.1"), out("rcpt", "250", "2.1.5", "deliverable"), out("end_of_data", "250", "2.0.0", "sent")])
scenario("reject_unverified_recipient: in progress, undeliverable, rejected", verify_twice("rcpt-550-5.1.1@verify.test"),
         [inb("rcpt", "450", "4.1.1"), out("rcpt", "550", "5.1.1", "undeliverable"), inb("rcpt", "450", "4.1.1")])

# Early-reject service (smtpd_delay_reject=no). swaks retries HELO after a refused EHLO.
scenario("EHLO+HELO: check_helo_access REJECT", early("ok@mx.test", ehlo="bad.helo.test"), [inb("helo", "554", "5.7.1")] * 2)
scenario("EHLO+HELO: invalid hostname", early("ok@mx.test", ehlo="bad_helo!"), [inb("helo", "501", "5.5.2")] * 2)
scenario("EHLO+HELO: non-FQDN hostname", early("ok@mx.test", ehlo="localhost"), [inb("helo", "504", "5.5.2")] * 2)
scenario("MAIL: non-FQDN sender", early("ok@mx.test", sender="bob"), [inb("mail", "504", "5.5.2")])
scenario("MAIL: sender access REJECT", early("ok@mx.test", sender="spammer@bad.test"), [inb("mail", "554", "5.7.1")])
scenario("MAIL: sender access 451 4.7.1", early("ok@mx.test", sender="temp@bad.test"), [inb("mail", "451", "4.7.1")])
scenario("CONNECT: client access 554 5.7.1", connect("127.0.0.1"), [inb("connect", "554", "5.7.1")])
scenario("CONNECT: client access 421 4.7.0 (IPv6)", connect("::1"), [inb("connect", "421", "4.7.0")])

# postscreen
scenario("postscreen: deny-listed client, enforce -> RCPT 550 5.3.2", postscreen_denylisted, [inb("rcpt", "550", "5.3.2")])
scenario("postscreen: pregreet, enforce -> RCPT 550 5.5.1", postscreen_pregreet, [inb("rcpt", "550", "5.5.1")])

# milter (tests/mta/milter.py)
scenario("milter-reject MAIL 553 5.7.1", milter("ok@milter.test", sender="miltmail-553-5.7.1@example.test"), [inb("mail", "553", "5.7.1")])
scenario("milter-reject RCPT 451 4.7.1", milter("miltrcpt-451-4.7.1@milter.test"), [inb("rcpt", "451", "4.7.1")])
scenario("milter-reject END-OF-MESSAGE 550 5.7.1 (cleanup)", milter("milteom-550-5.7.1@milter.test"), [inb("end_of_data", None, "5.7.1")])
scenario("milter accepts", milter("ok@milter.test"), [out("end_of_data", "250", "2.0.0", "sent")])
# What milter.py must have journaled for the scenarios above: (stage, code, enhanced) -> count.
MILTER_DECISIONS = {("MAIL", "553", "5.7.1"): 1, ("RCPT", "451", "4.7.1"): 1, ("EOM", "550", "5.7.1"): 1}

EXPIRE_TO = "rcpt-451-4.7.1+expire@sink.test"


# --- running ----------------------------------------------------------------

STATUS = re.compile(r", status=(sent|deferred|bounced|deliverable|undeliverable|SOFTBOUNCE) ")
REJECT = re.compile(r": (milter-)?reject: ")
WARN = re.compile(r": reject_warning: ")
EXPIRED = re.compile(r", status=expired, ")
NONFINAL = re.compile(r"\]: [0-9A-F]+: (host \S+ (said|refused to talk to me): |SASL authentication failed; )")


def line_counts(lines):
    c = collections.Counter()
    for l in lines:
        if STATUS.search(l):
            c["status"] += 1
        if REJECT.search(l):
            c["reject"] += 1
        if WARN.search(l):
            c["reject_warning"] += 1
        if EXPIRED.search(l):
            c["expired"] += 1
        if NONFINAL.search(l):
            c["nonfinal"] += 1
    return c


def wanted_counts(rows, reject_warnings, expired=0):
    c = collections.Counter()
    for r in rows:
        if r.status in ("sent", "deferred", "bounced", "deliverable", "undeliverable"):
            c["status"] += 1
        elif r.status == "rejected":
            c["reject"] += 1
        elif r.status == "none" and r.direction == "outbound":
            c["nonfinal"] += 1
    c["reject_warning"] = reject_warnings
    c["expired"] = expired
    return +c


def run_one(bed, name, action, rows, reject_warnings, expired=0):
    start = bed.log.size()
    action(bed)
    want = wanted_counts(rows, reject_warnings, expired)

    def ready():
        got = line_counts(bed.log.lines_since(start))
        return all(got[k] >= n for k, n in want.items()) and not bed.queue_busy()

    if not bed.log.wait_idle(ready=ready, timeout=30):
        print("TIMEOUT waiting for: %s" % name, file=sys.stderr)
    got = +line_counts(bed.log.lines_since(start))
    ok = got == want
    print("%-4s %-72s %s" % ("ok" if ok else "FAIL", name[:72],
                              " ".join("%s=%d" % kv for kv in sorted(want.items()))), flush=True)
    if not ok:
        print("     log gained: %s" % dict(got), file=sys.stderr)
        for l in bed.log.lines_since(start):
            print("     | " + l, file=sys.stderr)
    return ok


def dump_expected(d):
    """JSON with one reply row per line (diff-friendly)."""
    rows = ",\n".join("  " + json.dumps(r) for r in d["replies"])
    return ('{"replies": [\n%s\n ],\n "deliveries": %s,\n "reject_warnings": %d,\n "notes": %s}\n'
            % (rows, json.dumps(d["deliveries"]), d["reject_warnings"], json.dumps(d["notes"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--journal", required=True)
    ap.add_argument("--milter-journal")
    ap.add_argument("--expected", required=True)
    for p in ("sink", "submission", "mx", "early", "connect", "postscreen", "milter-smtpd"):
        ap.add_argument("--%s-port" % p, type=int, required=True)
    ap.add_argument("--lifetime", type=float, required=True, help="maximal_queue_lifetime in seconds")
    a = ap.parse_args()
    bed = Bed(a)
    exp = Expected()
    failures = 0

    # The message that will expire goes first so that it is old enough at the end.
    expire_rows = [out("rcpt", "451", "4.7.1", "deferred")]
    t0 = time.monotonic()
    expire_qid = []
    failures += not run_one(bed, "queue lifetime: first attempt, RCPT 451 4.7.1 -> deferred",
                            lambda b: expire_qid.append(sub(EXPIRE_TO)(b)), expire_rows, 0)
    exp.add("queue lifetime: first attempt", expire_rows)

    for name, action, rows, rw in S:
        failures += not run_one(bed, name, action, rows, rw)
        exp.add(name, rows, reject_warnings=rw)

    # Retry the old message once it is past maximal_queue_lifetime.
    wait = a.lifetime + 2 - (time.monotonic() - t0)
    if wait > 0:
        time.sleep(wait)
    rows = [out("rcpt", "451", "4.7.1", "deferred"), NOTIFY]
    failures += not run_one(bed, "queue lifetime: retry after lifetime -> deferred, expired, notification",
                            lambda b: subprocess.run(["postqueue", "-i", expire_qid[0]], check=True),
                            rows, 0, expired=1)
    exp.add("queue lifetime: retry", rows, expired=1)

    # Cross-check the table against what the sink really said.
    entries, _ = read_journal(a.journal)
    from_journal = journal_reply_counts(entries)
    from_rows = collections.Counter()
    for row, n in exp.rows.items():
        if row.direction != "outbound" or row.code == "none":
            continue
        if row.code.startswith("2") and row.phase != "end_of_data":
            continue  # accepted RCPTs (verification probes) are not counted from the journal
        from_rows[(row.phase, row.code, row.enhanced)] += n
    # Postfix reports a refused EHLO+HELO as "refused to talk to me" (phase connect).
    for key in [k for k in from_journal if k[0] == "helo"]:
        from_journal[("connect",) + key[1:]] += from_journal.pop(key)
    if from_journal != from_rows:
        failures += 1
        print("FAIL sink journal disagrees with the scenario table:", file=sys.stderr)
        for key in sorted(set(from_journal) | set(from_rows)):
            if from_journal[key] != from_rows[key]:
                print("     %s journal=%d table=%d" % (key, from_journal[key], from_rows[key]), file=sys.stderr)
    else:
        print("ok   sink journal agrees with the scenario table (%d replies)" % sum(from_rows.values()))
    if a.milter_journal:
        m, _ = read_journal(a.milter_journal)
        stages = collections.Counter((e["stage"], e["code"], e["enhanced"]) for e in m)
        if stages != collections.Counter(MILTER_DECISIONS):
            failures += 1
            print("FAIL milter journal: %s" % dict(stages), file=sys.stderr)
        else:
            print("ok   milter journal agrees (%d rejects)" % sum(stages.values()))

    with open(a.expected, "w") as f:
        f.write(dump_expected(exp.to_json(NOTES)))
    d = exp.deliveries()
    print("summary: %d scenarios, %d replies; deliveries %s; reject_warnings %d" % (
        len(exp.per_scenario), sum(exp.rows.values()),
        " ".join("%s=%d" % (k, v) for k, v in d.items()), exp.reject_warnings))
    if failures:
        print("%d scenario checks failed" % failures, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
