#!/usr/bin/env python3
"""Drive a running Exim 4.96 test bed (see run.sh) through every scenario,
wait for each to finish, and write expected.json for mainlog and rejectlog
from this table (never from a log parser).

Items per scenario are explained in tests/mta/drivelib.py. After each
scenario the driver waits until the mainlog gained the predicted lines and
went quiet, and checks that it gained exactly as many delivery (=> -> ** ==),
host-level error, rejection and authenticator lines as the items say; at the
end it checks the items against the sink's journal and the rejectlog against
the inbound items.
"""

import argparse
import collections
import os
import re
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from drivelib import (Delivery, Repeat, Table, Unlogged, crosscheck_journal,  # noqa: E402
                      rows_of, run_scenario, swaks, write_expected)
from journal import Expected, LogWatcher, inb, out  # noqa: E402

SENDER = "alice@example.test"
INBOUND_SENDER = "bob@example.test"

NOTES = (
    "Real Exim 4.96 mainlog produced by tests/mta/exim/run.sh; counts come from the driver's scenario "
    "table (tests/mta/exim/drive.py), cross-checked against the sink journal. Conventions beyond the "
    "contract: one reply per recipient per attempt (as for Postfix, whose lines are per recipient). Delivery lines (=> -> ** ==) carry the "
    "delivery status; => and -> with C=\"250 ...\" (log_selector smtp_confirmation, on by default) are "
    "phase end_of_data; without C= (local deliveries, -smtp_confirmation) they are deliveries with no reply. The host-level line "
    "'H=host [ip]:port: SMTP error from remote mail server after <command>: <reply>' that Exim writes "
    "before the recipient lines for 4xx to MAIL/DATA/end of data and for greeting/EHLO/HELO rejections "
    "counts the outbound reply, with status none, for the first recipient line that repeats it (same "
    "message, host and error text), which then counts only its outcome; the other recipient lines count "
    "reply and outcome. A host-level line that no recipient line repeats (Exim moved on to the next "
    "host) is a reply with status none. "
    "'<name> authenticator failed H=...: 535 ...' (client side) is outbound auth with status none; "
    "the '== ... authentication required but authentication attempt(s) failed' line that follows has "
    "no code (deferred only). 'after RCPT TO' = rcpt, 'MAIL FROM' (also 'pipelined MAIL FROM') = "
    "mail, 'DATA'/'pipelined DATA' = data, 'end of data' = end_of_data, 'initial connection' = "
    "connect, 'HELO'/'EHLO' = helo; LMTP 'LMTP error after DATA' (per-recipient reply after the "
    "data) = end_of_data. A router's own ':fail: 550 5.1.2 ...' bounce is outbound phase none with "
    "that code. '** addr: retry timeout exceeded' is deliveries.expired (no code). Lines without any "
    "code count only as deliveries: 'Connection refused', 'Unrouteable address', local deliveries. "
    "Inbound: 'rejected RCPT|MAIL|DATA|after DATA|EHLO or HELO|connection in \"connect\" ACL' and "
    "'temporarily rejected ...' lines are status rejected, with the code only when the logged "
    "message starts with one (Exim logs the ACL message, not the code it sent); uncoded rejections "
    "('Unrouteable address', 'syntactically invalid argument(s)', the synchronization error's "
    "'rejected connection') count only as deliveries.rejected. '<name> authenticator failed for "
    "...: 535 ...' (server side) is inbound auth with status none. 'SMTP command timeout' lines "
    "have no code and count nothing."
)


class Bed:
    def __init__(self, a):
        self.a = a
        self.log = LogWatcher(a.log)

    def sub(self, *to, sender=SENDER, **kw):
        return lambda: swaks(self.a.submission_port, list(to), sender, **kw)

    def mx(self, *to, sender=INBOUND_SENDER, **kw):
        return lambda: swaks(self.a.mx_port, list(to), sender, **kw)


# Kinds of mainlog lines the driver predicts per scenario.
STAMP = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})? (?:\[\d+\] )?"
MSGID = r"\w{6}-\w{6,11}-\w{2,4}"
DELIVERY = re.compile(STAMP + MSGID + r" (=>|->|\*\*|==) ")
HOST_ERROR = re.compile(STAMP + MSGID + r" H=\S+ \[[^\]]+\](?::\d+)?: SMTP error from remote mail server after ")
REJECT = re.compile(r"\b(rejected (RCPT|MAIL|DATA|after DATA|EHLO|HELO|connection)\b|"
                    r"temporarily rejected (RCPT|MAIL|DATA|after DATA)\b)")
AUTH_FAILED = re.compile(r" authenticator failed ")
TIMEOUT = re.compile(r" SMTP command timeout on connection from ")
# A line that shows a reply code where Exim writes one (independent of the
# kinds above: it counts replies, the table's rows must match it).
REPLY = re.compile(r'C="[2-5]\d\d[ -]|(SMTP error from remote mail server|LMTP error) after .*?: [2-5]\d\d[ -]|'
                   r" R=\S+: [2-5]\d\d |rejected [^:]*(:[^:]*)?: [2-5]\d\d[ -]|"
                   r"authenticator failed .*?[ :] ?[2-5]\d\d[ -]")


def line_kinds(lines):
    c = collections.Counter()
    for l in lines:
        if DELIVERY.search(l):
            c["delivery"] += 1
        elif HOST_ERROR.search(l):
            c["host"] += 1
        elif REJECT.search(l):
            c["reject"] += 1
        elif AUTH_FAILED.search(l):
            c["auth"] += 1
        elif TIMEOUT.search(l):
            c["timeout"] += 1
        if REPLY.search(l):
            c["reply"] += 1
    return c


def wanted_kinds(items):
    c = collections.Counter()
    c["reply"] = len(rows_of(items))
    for it in items:
        if isinstance(it, Unlogged):
            continue
        if isinstance(it, Repeat):
            c["delivery"] += 1
            continue
        if isinstance(it, Delivery):
            c["reject" if it.direction == "inbound" else "delivery"] += it.n
            continue
        if isinstance(it, str):  # a bare line kind with no counts ("timeout")
            c[it] += 1
            continue
        if it.phase == "auth" and it.status == "none":
            c["auth"] += 1
        elif it.direction == "inbound":
            c["reject"] += 1
        elif it.status == "none":
            c["host"] += 1
        else:
            c["delivery"] += 1
    return c


def build(bed, variant):
    t = Table()

    def ok(enh="2.0.0"):
        """A delivery confirmed with C="250 ..." (smtp_confirmation is on by default)."""
        return out("end_of_data", "250", enh, "sent")

    notify = ok()  # Exim's bounce message to SENDER, delivered to the sink

    # --- outbound: submitted on the submission port, delivered to the sink ---
    S = bed.sub
    t.add("sent, 250 with enhanced code", S("ok@sink.test"), [ok()])
    t.add("sent, 250 without enhanced code", S("data-250@sink.test"), [ok(None)])
    t.add("sent over IPv6 (H=::1 [::1]:port)", S("a@ipv6.test"), [ok()])
    t.add("sent through a content filter (nested reply)", S("a@filter.test"), [ok()])
    t.add("RCPT 550 5.1.1 -> bounced", S("rcpt-550-5.1.1@sink.test"), [out("rcpt", "550", "5.1.1", "bounced"), notify])
    t.add("RCPT 550 5.7.26, 3-line reply (\\n-joined) -> bounced", S("rcptml-550-5.7.26@sink.test"),
          [out("rcpt", "550", "5.7.26", "bounced"), notify])
    t.add("RCPT 550 without enhanced code -> bounced", S("rcpt-550@sink.test"), [out("rcpt", "550", None, "bounced"), notify])
    t.add("RCPT 552 5.2.2 -> bounced", S("rcpt-552-5.2.2@sink.test"), [out("rcpt", "552", "5.2.2", "bounced"), notify])
    t.add("RCPT 550 5.7.708 (3-digit detail) -> bounced", S("rcpt-550-5.7.708@sink.test"),
          [out("rcpt", "550", "5.7.708", "bounced"), notify])
    t.add("RCPT 451 4.7.1 -> deferred", S("rcpt-451-4.7.1@sink.test"), [out("rcpt", "451", "4.7.1", "deferred")])
    t.add("RCPT 451 4.7.500 (3-digit detail) -> deferred", S("rcpt-451-4.7.500@sink.test"),
          [out("rcpt", "451", "4.7.500", "deferred")])
    t.add("RCPT 451 without enhanced code, 3-line -> deferred", S("rcptml-451@sink.test"), [out("rcpt", "451", None, "deferred")])
    t.add("RCPT 450 4.2.0 -> deferred", S("rcpt-450-4.2.0@sink.test"), [out("rcpt", "450", "4.2.0", "deferred")])
    t.add("RCPT 421 4.7.0 -> deferred (no host-level line)", S("rcpt-421-4.7.0@sink.test"),
          [out("rcpt", "421", "4.7.0", "deferred")])
    t.add("MAIL 451 4.7.1, three recipients -> host-level line + deferred x3",
          S("a@sink.test", "b@sink.test", "c@sink.test", sender="mail-451-4.7.1@example.test"),
          [out("mail", "451", "4.7.1", "none"), Repeat(out("mail", "451", "4.7.1", "deferred"))]
          + [out("mail", "451", "4.7.1", "deferred")] * 2)
    t.add("MAIL 550 5.7.23, 3-line, two recipients -> bounced x2",
          S("a@sink.test", "b@sink.test", sender="mailml-550-5.7.23@example.test"),
          [out("mail", "550", "5.7.23", "bounced")] * 2 + [notify])
    t.add("DATA 451 4.3.0 -> host-level line + deferred", S("datacmd-451-4.3.0@sink.test"),
          [out("data", "451", "4.3.0", "none"), Repeat(out("data", "451", "4.3.0", "deferred"))])
    t.add("DATA 554 5.5.1 -> bounced", S("datacmd-554-5.5.1@sink.test"), [out("data", "554", "5.5.1", "bounced"), notify])
    t.add("end of DATA 554 5.7.1, three recipients -> bounced x3",
          S("data-554-5.7.1+m@sink.test", "r1@sink.test", "r2@sink.test"),
          [out("end_of_data", "554", "5.7.1", "bounced")] * 3 + [notify])
    t.add("end of DATA 552 5.3.4 -> bounced", S("data-552-5.3.4@sink.test"), [out("end_of_data", "552", "5.3.4", "bounced"), notify])
    t.add("end of DATA 550 5.7.1, 3-line -> bounced", S("dataml-550-5.7.1@sink.test"),
          [out("end_of_data", "550", "5.7.1", "bounced"), notify])
    t.add("end of DATA 451 4.3.0 -> host-level line + deferred", S("data-451-4.3.0@sink.test"),
          [out("end_of_data", "451", "4.3.0", "none"), Repeat(out("end_of_data", "451", "4.3.0", "deferred"))])
    t.add("two recipients, one RCPT 550 5.1.1 -> bounced + sent (->)", S("rcpt-550-5.1.1+mix@sink.test", "ok1@sink.test", "ok2@sink.test"),
          [out("rcpt", "550", "5.1.1", "bounced"), ok(), ok(), notify])
    t.add("greeting 554 5.7.1 -> host-level line + bounced", S("a@greet554.test"),
          [out("connect", "554", "5.7.1", "none"), Repeat(out("connect", "554", "5.7.1", "bounced")), notify])
    t.add("greeting 421 4.3.2 -> host-level line + deferred", S("a@greet421.test"),
          [out("connect", "421", "4.3.2", "none"), Repeat(out("connect", "421", "4.3.2", "deferred"))])
    t.add("EHLO and HELO 550 5.7.1 -> host-level line + bounced", S("a@helo.test"),
          [out("helo", "550", "5.7.1", "none"), Repeat(out("helo", "550", "5.7.1", "bounced")), notify])
    t.add("AUTH 535 5.7.8 -> client authenticator failed, deferred (no code)", S("a@auth.test"),
          [out("auth", "535", "5.7.8", "none"), Delivery("deferred")])
    t.add("two hosts: first greeting 421 (host-level line), second sent", S("a@multi.test"),
          [out("connect", "421", "4.3.2", "none"), ok()])
    t.add("connection refused -> deferred (no code)", S("a@closed.test"), [Delivery("deferred")])
    t.add("LMTP sent", S("a@lmtp.test"), [ok()])
    t.add("LMTP per-recipient replies after DATA: 250, 452 4.2.2, 552 5.2.2",
          S("b@lmtp.test", "data-452-4.2.2@lmtp.test", "data-552-5.2.2@lmtp.test"),
          [ok(), out("end_of_data", "452", "4.2.2", "deferred"), out("end_of_data", "552", "5.2.2", "bounced"), notify])
    t.add("local delivery (appendfile), no reply", S("box@mx1.example.test"), [Delivery("sent")])
    t.add("router :fail: 550 5.1.2 -> bounced with the router's code", S("x@retired.test"),
          [out("none", "550", "5.1.2", "bounced"), notify])
    t.add("unrouteable address -> bounced (no code)", S("x@nowhere.invalid"), [Delivery("bounced"), notify])

    # --- inbound: Exim's own ACLs on the MX port -----------------------------
    M = bed.mx
    rejected = Delivery("rejected", "inbound")
    t.add("MX accepts, relays to the sink", M("ok@mx.test"), [ok()])
    t.add("RCPT: unknown local user (Unrouteable address, no code)", M("nosuch@mx1.example.test"), [rejected])
    t.add("RCPT: user unknown in relay recipient table 550 5.1.1", M("nosuch@mx.test"), [inb("rcpt", "550", "5.1.1")])
    t.add("RCPT: relay access denied 554 5.7.1", M("someone@elsewhere.test"), [inb("rcpt", "554", "5.7.1")])
    t.add("RCPT: relay access denied, IPv6 client [::1]", M("someone@elsewhere.test", server="::1"),
          [inb("rcpt", "554", "5.7.1")])
    t.add("RCPT: ACL message without a code (Exim sends 550)", M("nocode@mx.test"), [rejected])
    t.add("RCPT: ACL message '550 text' (no enhanced code)", M("noenh@mx.test"), [inb("rcpt", "550", None)])
    t.add("RCPT: two-line ACL message (mainlog keeps the first line)", M("multiline@mx.test"), [inb("rcpt", "550", "5.7.1")])
    t.add("RCPT: defer 451 4.7.1 greylisted (temporarily rejected)", M("grey@mx.test"), [inb("rcpt", "451", "4.7.1")])
    t.add("RCPT: defer 452 4.2.2 over quota", M("quota@mx.test"), [inb("rcpt", "452", "4.2.2")])
    t.add("queued reject: second recipient unknown after first accepted", M("ok@mx.test", "nosuch@mx.test"),
          [inb("rcpt", "550", "5.1.1"), ok()])
    t.add("MAIL: rejected 553 5.7.1", M("ok@mx.test", sender="spammer@bad.test"), [inb("mail", "553", "5.7.1")])
    t.add("MAIL: temporarily rejected 451 4.7.1", M("ok@mx.test", sender="temp@bad.test"), [inb("mail", "451", "4.7.1")])
    t.add("DATA (predata ACL): rejected 554 5.7.1", M("ok@mx.test", sender="datareject@example.test"),
          [inb("data", "554", "5.7.1")])
    t.add("after DATA (data ACL): rejected 550 5.7.1 (rejectlog gets the headers)",
          M("ok@mx.test", headers=["Subject: offer DATA-REJECT-TEST inside"]), [inb("end_of_data", "550", "5.7.1")])
    t.add("after DATA (data ACL): temporarily rejected 451 4.3.0",
          M("ok@mx.test", headers=["Subject: DATA-DEFER-TEST"]), [inb("end_of_data", "451", "4.3.0")])
    t.add("EHLO+HELO: ACL 550 5.7.1 (swaks retries HELO)", M("ok@mx.test", ehlo="bad.helo.test"),
          [inb("helo", "550", "5.7.1")] * 2)
    t.add("EHLO+HELO: syntactically invalid argument (no code)", M("ok@mx.test", ehlo="bad_helo!"),
          [Delivery("rejected", "inbound", n=2)])
    t.add("CONNECT: connect ACL 554 5.7.1", lambda: swaks(bed.a.connect_port, ["ok@mx.test"], INBOUND_SENDER),
          [inb("connect", "554", "5.7.1")])
    t.add("AUTH: server authenticator failed 535 (no enhanced code)",
          M("ok@mx.test", auth=("alice", "wrong")), [inb("auth", "535", None, "none")])
    t.add("client talks before the greeting: synchronization error (no code)", lambda: talk_first(bed),
          [rejected])
    t.add("SMTP command timeout (no code, nothing counted)", lambda: idle_client(bed), ["timeout"])
    return t


def talk_first(bed):
    """Send EHLO before the greeting; the connect ACL's 1 s delay on ::1 makes
    Exim's synchronization check see it."""
    s = socket.create_connection(("::1", bed.a.connect_port), timeout=20)
    s.sendall(b"EHLO early.example.test\r\n")
    s.settimeout(20)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()


def idle_client(bed):
    """Read the greeting, then say nothing until Exim times out."""
    s = socket.create_connection(("127.0.0.1", bed.a.mx_port), timeout=20)
    s.settimeout(bed.a.receive_timeout + 20)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()


def rejectlog_kinds(lines):
    """Entries of the rejectlog (continuation lines of header dumps skipped)."""
    c = collections.Counter()
    for l in lines:
        if not re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", l):
            continue
        if REJECT.search(l):
            c["reject"] += 1
        elif AUTH_FAILED.search(l):
            c["auth"] += 1
        else:
            c["other"] += 1
        if REPLY.search(l):
            c["reply"] += 1
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", choices=("debian", "all"), required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--rejectlog", required=True)
    ap.add_argument("--journal", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--reject-expected", required=True)
    for p in ("sink", "mx", "submission", "connect"):
        ap.add_argument("--%s-port" % p, type=int, required=True)
    ap.add_argument("--receive-timeout", type=float, required=True)
    ap.add_argument("--expire-cutoff", type=float, required=True)
    a = ap.parse_args()
    bed = Bed(a)
    table = build(bed, a.variant)
    exp = Expected()
    rej = Expected()
    journal_want = collections.Counter()
    reply_lines = 0  # lines that show a code (a Group is one line)
    failures = 0

    def run(name, action, items, expired=0):
        nonlocal failures, reply_lines
        want = wanted_kinds(items)
        failures += not run_scenario(bed.log, name, action, want, line_kinds, items=items)
        counted = [i for i in items if not isinstance(i, str)]
        reply_lines += len(rows_of(counted))
        Table.expected_of(counted, exp, name)
        if expired:
            exp.expired += expired
        journal_want.update(Table.journal_keys(counted))
        inbound = [i for i in counted if getattr(i, "direction", None) == "inbound"]
        Table.expected_of(inbound, rej, name)

    # The message that will expire goes first so that it is old enough at the end.
    t0 = time.monotonic()
    expire_to = "rcpt-451-4.7.1+expire@expire.test"
    run("retry timeout: first attempt, RCPT 451 4.7.1 -> deferred", bed.sub(expire_to),
        [out("rcpt", "451", "4.7.1", "deferred")])
    queued = subprocess.run(["exim4", "-bp"], capture_output=True, text=True).stdout
    m = re.search(r"(\S{6}-\S{6,11}-\S{2,4}) <%s>\n\s+%s" % (re.escape(SENDER), re.escape(expire_to)), queued)
    if not m:
        print("FAIL cannot find the message to %s in the queue:\n%s" % (expire_to, queued), file=sys.stderr)
        sys.exit(1)
    expire_id = m.group(1)

    for name, action, items in table.scenarios:
        run(name, action, items)

    # Past the retry rule's cutoff, one forced attempt fails the address.
    wait = a.expire_cutoff + 1 - (time.monotonic() - t0)
    if wait > 0:
        time.sleep(wait)
    notify = out("end_of_data", "250", "2.0.0", "sent")
    run("retry timeout: forced retry past the cutoff -> 451 deferred, ** retry timeout exceeded",
        lambda: subprocess.run(["exim4", "-M", expire_id], check=True),
        [out("rcpt", "451", "4.7.1", "deferred"), Delivery("expired"), notify])

    # The whole mainlog: as many reply-carrying lines as rows in the table.
    whole = line_kinds(bed.log.lines_since(0))["reply"]
    if whole != reply_lines:
        failures += 1
        print("FAIL the mainlog has %d lines with a reply, the table %d" % (whole, reply_lines), file=sys.stderr)
    else:
        print("ok   the mainlog has %d lines with a reply, as many as the table" % whole)

    # Cross-check the table against what the sink really said.
    failures += not crosscheck_journal(a.journal, journal_want)

    # The rejectlog holds exactly the inbound rejections and auth failures.
    got = +rejectlog_kinds(LogWatcher(a.rejectlog).lines_since(0))
    want = collections.Counter()
    for _, _, items in table.scenarios:
        for k, n in wanted_kinds([i for i in items if getattr(i, "direction", None) == "inbound"]).items():
            want[k] += n
    if got != +want:
        failures += 1
        print("FAIL rejectlog entries %s, expected %s" % (dict(got), dict(want)), file=sys.stderr)
    else:
        print("ok   rejectlog holds the %d inbound entries" % sum(want.values()))

    write_expected(a.expected, exp, NOTES)
    write_expected(a.reject_expected, rej, NOTES + " The rejectlog repeats the inbound rejections and "
                   "authenticator failures of the mainlog; 'rejected after DATA' entries are followed by "
                   "the message's headers (lines without a timestamp), which carry no reply.")
    if failures:
        print("%d scenario checks failed" % failures, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
