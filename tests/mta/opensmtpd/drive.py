#!/usr/bin/env python3
"""Start OpenSMTPD 6.8 (smtpd -F), drive it through every scenario, wait for
each to finish, and write expected.json from this table (never from a log
parser). See run.sh for the test bed.

Items per scenario are explained in tests/mta/drivelib.py; bare strings are
line kinds a scenario must log without any count (e.g. an 'mda delivery' line
that carries no code). After each scenario the driver waits until the syslog
file gained the predicted lines and went quiet, and checks that it gained
exactly as many 'mta delivery', 'mda delivery', 'smtp failed-command',
'mta error' and 'Expire for' lines as the items say, and one reply-carrying
line per row. At the end it checks the items against the sink's journal.

The scenarios whose route fails at the greeting or at EHLO/HELO come last,
one at a time: OpenSMTPD retries such a route every 5-10 s for as long as it
runs (even 'smtpctl remove' of the envelope does not stop it), so after the
first 'mta error' line the driver stops smtpd, empties its queue directory and
starts it again.
"""

import argparse
import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from drivelib import (Delivery, Echo, Table, Unlogged, crosscheck_journal, rows_of,  # noqa: E402
                      run_scenario, swaks, wait_for, write_expected)
from journal import Expected, LogWatcher, inb, out  # noqa: E402

SENDER = "alice@example.test"
INBOUND_SENDER = "bob@example.test"

NOTES = (
    "Real OpenSMTPD 6.8 syslog (RFC 3164 from a private rsyslogd) produced by tests/mta/opensmtpd/run.sh; "
    "counts come from the driver's scenario table (tests/mta/opensmtpd/drive.py), cross-checked against "
    "the sink journal. Conventions beyond the contract: one reply per recipient per attempt (as for "
    "Postfix, whose lines are per recipient); OpenSMTPD writes one line per recipient, so every line "
    "that carries a reply counts once, also the line of each recipient of a refused MAIL. "
    "'mta delivery ... result=\"Ok|TempFail|PermFail\" stat=\"<reply>\"' (one line per recipient) is "
    "sent|deferred|bounced; OpenSMTPD does not log which command a remote reply answered, so the phase "
    "is end_of_data for result Ok (a 250 after the data) and unknown otherwise. Multi-line replies are "
    "glued without separator and lose their continuation prefixes; the code is the first line's. "
    "'mta error reason=BANNER rejected: <reply>' is outbound connect and 'reason=HELO rejected: "
    "<reply>' outbound helo, both status none (OpenSMTPD retries the route, no delivery line follows). "
    "'mta delivery ... stat=\"Network error on destination MXs\"' (connection refused) has no code: "
    "deliveries.deferred only. 'mda delivery ... result=Ok stat=Delivered' (maildir, LMTP) has no "
    "code: deliveries.sent only. 'relay: Expire for <evpid>: ... stat=Envelope expired' is "
    "deliveries.expired. Inbound: every 'smtp failed-command command=\"<cmd>\" result=\"<reply>\"' is "
    "a reply with the phase of <cmd>: empty (a connect filter) = connect, EHLO/HELO = helo, "
    "MAIL FROM = mail, RCPT TO = rcpt, DATA = data (also for a filter at the commit phase, after the "
    "message: the log says DATA), anything else (an unknown command, VRFY) = other; it is status "
    "rejected at connect, helo, mail, rcpt and data (a client, sender, recipient or message turned "
    "away, as Postfix 'reject:' and Exim 'rejected' lines count), status none for other commands "
    "(protocol errors turn nothing away)."
)


class Bed:
    def __init__(self, a):
        self.a = a
        self.log = LogWatcher(a.log)
        self.proc = None

    def sub(self, *to, sender=SENDER, **kw):
        return lambda: swaks(self.a.submission_port, list(to), sender, **kw)

    def mx(self, *to, sender=INBOUND_SENDER, **kw):
        return lambda: swaks(self.a.mx_port, list(to), sender, **kw)

    def start(self):
        self.proc = subprocess.Popen(["smtpd", "-F", "-f", self.a.conf])
        with open(self.a.pidfile, "w") as f:
            f.write("%d\n" % self.proc.pid)

        def listening():
            for port in (self.a.mx_port, self.a.submission_port):
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                except OSError:
                    return False
            return True
        wait_for(listening, what="smtpd listening")

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.proc = None
        os.unlink(self.a.pidfile)


def ok(enh="2.0.0"):
    return out("end_of_data", "250", enh, "sent")


def remote(code, enh, status):
    return out("unknown", code, enh, status)


NOTIFY = ok()  # the bounce OpenSMTPD sends back to SENDER, delivered to the sink


def build(bed):
    t = []
    S, M = bed.sub, bed.mx
    t.append(("sent, 250 with enhanced code", S("ok@sink.test"), [ok()]))
    t.append(("sent, 250 without enhanced code", S("data-250@sink.test"), [ok(None)]))
    t.append(("sent over IPv6", S("a@ipv6.test"), [ok()]))
    t.append(("sent through a content filter (nested reply)", S("a@filter.test"), [ok()]))
    t.append(("RCPT 550 5.1.1 -> PermFail", S("rcpt-550-5.1.1@sink.test"), [remote("550", "5.1.1", "bounced"), NOTIFY]))
    t.append(("RCPT 550 5.7.26, 3-line reply (glued, continuation prefixes lost)", S("rcptml-550-5.7.26@sink.test"),
              [remote("550", "5.7.26", "bounced"), NOTIFY]))
    t.append(("RCPT 550 without enhanced code -> PermFail", S("rcpt-550@sink.test"), [remote("550", None, "bounced"), NOTIFY]))
    t.append(("RCPT 552 5.2.2 -> PermFail", S("rcpt-552-5.2.2@sink.test"), [remote("552", "5.2.2", "bounced"), NOTIFY]))
    t.append(("RCPT 550 5.7.708 (3-digit detail) -> PermFail", S("rcpt-550-5.7.708@sink.test"),
              [remote("550", "5.7.708", "bounced"), NOTIFY]))
    t.append(("RCPT 451 4.7.1 -> TempFail", S("rcpt-451-4.7.1@sink.test"), [remote("451", "4.7.1", "deferred")]))
    t.append(("RCPT 451 4.7.500 (3-digit detail) -> TempFail", S("rcpt-451-4.7.500@sink.test"),
              [remote("451", "4.7.500", "deferred")]))
    t.append(("RCPT 451 without enhanced code, 3-line -> TempFail", S("rcptml-451@sink.test"),
              [remote("451", None, "deferred")]))
    t.append(("RCPT 450 4.2.0 -> TempFail", S("rcpt-450-4.2.0@sink.test"), [remote("450", "4.2.0", "deferred")]))
    t.append(("MAIL 451 4.7.1 (no RCPT sent), three recipients -> TempFail x3",
              S("a@sink.test", "b@sink.test", "c@sink.test", sender="mail-451-4.7.1@example.test"),
              [remote("451", "4.7.1", "deferred")] + [Echo(remote("451", "4.7.1", "deferred"))] * 2))
    t.append(("MAIL 550 5.7.23, 3-line, two recipients -> PermFail x2",
              S("a@sink.test", "b@sink.test", sender="mailml-550-5.7.23@example.test"),
              [remote("550", "5.7.23", "bounced"), Echo(remote("550", "5.7.23", "bounced")), NOTIFY]))
    t.append(("DATA 451 4.3.0 -> TempFail", S("datacmd-451-4.3.0@sink.test"), [remote("451", "4.3.0", "deferred")]))
    t.append(("DATA 554 5.5.1 -> PermFail", S("datacmd-554-5.5.1@sink.test"), [remote("554", "5.5.1", "bounced"), NOTIFY]))
    t.append(("end of DATA 554 5.7.1, three recipients -> PermFail x3",
              S("data-554-5.7.1+m@sink.test", "r1@sink.test", "r2@sink.test"),
              [remote("554", "5.7.1", "bounced")] * 3 + [NOTIFY]))
    t.append(("end of DATA 552 5.3.4 -> PermFail", S("data-552-5.3.4@sink.test"), [remote("552", "5.3.4", "bounced"), NOTIFY]))
    t.append(("end of DATA 550 5.7.1, 3-line -> PermFail", S("dataml-550-5.7.1@sink.test"),
              [remote("550", "5.7.1", "bounced"), NOTIFY]))
    t.append(("end of DATA 451 4.3.0 -> TempFail", S("data-451-4.3.0@sink.test"), [remote("451", "4.3.0", "deferred")]))
    t.append(("two recipients, one RCPT 550 5.1.1 -> PermFail + Ok", S("rcpt-550-5.1.1+mix@sink.test", "ok1@sink.test"),
              [remote("550", "5.1.1", "bounced"), ok(), NOTIFY]))
    t.append(("connection refused -> route disabled, TempFail 'Network error on destination MXs' (no code)",
              S("a@closed.test"), ["delivery", Delivery("deferred")]))
    t.append(("LMTP (mda) delivered: stat=Delivered, no code", S("a@lmtp.test"),
              ["mda", Delivery("sent", journal=("end_of_data", "250", "2.0.0"))]))
    t.append(("local maildir delivery: stat=Delivered, no code", S("box@mx1.example.test"), ["mda", Delivery("sent")]))
    t.append(("submission: 'reject' rule -> 550 Invalid recipient", S("x@retired.test"), [inb("rcpt", "550", None)]))

    t.append(("MX accepts, relays to the sink", M("ok@mx.test"), [ok()]))
    t.append(("RCPT: user not in the recipient table -> 550 Invalid recipient", M("nosuch@mx.test"), [inb("rcpt", "550", None)]))
    t.append(("RCPT: relaying (no matching rule) -> 550 Invalid recipient", M("someone@elsewhere.test"),
              [inb("rcpt", "550", None)]))
    t.append(("RCPT: relaying, IPv6 client", M("someone@elsewhere.test", server="::1"), [inb("rcpt", "550", None)]))
    t.append(("RCPT: filter reject 550 5.7.1", M("reject@mx.test"), [inb("rcpt", "550", "5.7.1")]))
    t.append(("RCPT: filter reject 451 4.7.1", M("grey@mx.test"), [inb("rcpt", "451", "4.7.1")]))
    t.append(("MAIL: filter reject 553 5.7.1", M("ok@mx.test", sender="spammer@bad.test"), [inb("mail", "553", "5.7.1")]))
    t.append(("MAIL: filter reject 451 4.7.1", M("ok@mx.test", sender="temp@bad.test"), [inb("mail", "451", "4.7.1")]))
    t.append(("DATA: filter reject 554 5.7.1", M("ok@mx.test", sender="datareject@example.test"), [inb("data", "554", "5.7.1")]))
    t.append(("commit (after the message): filter reject 550 5.7.1, logged as command=\"DATA\"",
              M("ok@mx.test", sender="eodreject@example.test"), [inb("data", "550", "5.7.1")]))
    t.append(("EHLO+HELO: filter reject 550 5.7.1", M("ok@mx.test", ehlo="bad.helo.test"), [inb("helo", "550", "5.7.1")] * 2))
    t.append(("CONNECT: filter disconnect 554 5.7.1 (command=\"\")",
              lambda: swaks(bed.a.mx_port, ["ok@mx.test"], INBOUND_SENDER, extra=("--local-interface", "127.0.0.2")),
              [inb("connect", "554", "5.7.1")]))
    t.append(("queued reject: second recipient refused after the first was accepted", M("ok@mx.test", "nosuch@mx.test"),
              [inb("rcpt", "550", None), ok()]))
    t.append(("protocol errors: unknown command, bad MAIL/RCPT syntax, VRFY, DATA without RCPT",
              lambda: protocol_errors(bed),
              [inb("other", "500", "5.5.1", "none"), inb("mail", "553", "5.1.0"), inb("rcpt", "501", "5.1.3"),
               inb("other", "500", "5.5.1", "none"), inb("data", "503", "5.5.4")]))
    return t


# Route failures, each followed by an smtpd restart (see the module doc).
ROUTE_FAILURES = [
    ("greeting 554 5.7.1 -> mta error reason=BANNER rejected (retried, no delivery line)", "a@greet554.test",
     [out("connect", "554", "5.7.1", "none")]),
    ("greeting 421 4.3.2 -> mta error reason=BANNER rejected", "a@greet421.test",
     [out("connect", "421", "4.3.2", "none")]),
    ("EHLO and HELO 550 5.7.1 -> mta error reason=HELO rejected", "a@helo.test",
     [out("helo", "550", "5.7.1", "none")]),
]


def wipe(spool):
    for entry in os.listdir(spool):
        shutil.rmtree(os.path.join(spool, entry))


def protocol_errors(bed):
    s = socket.create_connection(("127.0.0.1", bed.a.mx_port), timeout=20)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline().decode("ascii", "replace")
            if len(line) < 4 or line[3] != "-":
                return

    reply()
    for c in (b"EHLO proto.example.test", b"FOO bar", b"MAIL FROM:<bad address", b"MAIL FROM:<bob@example.test>",
              b"RCPT TO:<>", b"VRFY ok", b"DATA", b"QUIT"):
        s.sendall(c + b"\r\n")
        reply()
    s.close()


MTA_DELIVERY = re.compile(r" mta delivery evpid=")
MDA_DELIVERY = re.compile(r" mda delivery evpid=")
FAILED = re.compile(r" smtp failed-command ")
MTA_ERROR = re.compile(r" mta error reason=\w+ rejected: ")  # (IO errors: attempts vary, no code)
EXPIRE = re.compile(r" relay: Expire for ")
REPLY = re.compile(r' stat="[2-5]\d\d[ -]| result="[2-5]\d\d[ -]| reason=\w+ rejected: [2-5]\d\d[ -]')


def line_kinds(lines):
    c = collections.Counter()
    for l in lines:
        if MTA_DELIVERY.search(l):
            c["delivery"] += 1
        elif MDA_DELIVERY.search(l):
            c["mda"] += 1
        elif FAILED.search(l):
            c["failed"] += 1
        elif MTA_ERROR.search(l):
            c["error"] += 1
        elif EXPIRE.search(l):
            c["expire"] += 1
        if REPLY.search(l):
            c["reply"] += 1
    return c


def wanted_kinds(items):
    c = collections.Counter()
    c["reply"] = len(rows_of(items))
    for it in items:
        if isinstance(it, Echo):
            it = it.row
        if isinstance(it, str):
            c[it] += 1
        elif isinstance(it, (Delivery, Unlogged)):
            continue  # their lines are named by the bare kinds
        elif it.direction == "inbound":
            c["failed"] += 1
        elif it.status == "none":
            c["error"] += 1
        else:
            c["delivery"] += 1
    return c


def fold_journal(counts):
    """The sink's refusals after the greeting and EHLO as OpenSMTPD logs them:
    without the command they answered (phase unknown)."""
    folded = collections.Counter()
    for (phase, code, enh), n in counts.items():
        if phase in ("mail", "rcpt", "data", "end_of_data") and not code.startswith("2"):
            phase = "unknown"
        folded[(phase, code, enh)] += n
    return folded


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--journal", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--conf", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--mx-port", type=int, required=True)
    ap.add_argument("--submission-port", type=int, required=True)
    ap.add_argument("--expire-ttl", type=float, required=True)
    ap.add_argument("--spool", required=True, help="smtpd's queue directory (wiped between restarts)")
    a = ap.parse_args()
    bed = Bed(a)
    exp = Expected()
    journal_want = collections.Counter()
    reply_lines = 0  # lines that show a code (a Group is one line)
    failures = 0

    def run(name, action, items, timeout=30):
        nonlocal failures, reply_lines
        failures += not run_scenario(bed.log, name, action, wanted_kinds(items), line_kinds, items=items,
                                     timeout=timeout, idle=0.6)
        counted = [i for i in items if not isinstance(i, str)]
        reply_lines += len(rows_of(counted))
        Table.expected_of(counted, exp, name)
        journal_want.update(Table.journal_keys(counted))

    bed.start()
    try:
        # The action's ttl expires the envelope on its own: nothing else runs meanwhile.
        run("ttl: RCPT 451 4.7.1 TempFail, 'Expire for ...' after the action's ttl, the bounce",
            bed.sub("rcpt-451-4.7.1@expire.test"),
            [remote("451", "4.7.1", "deferred"), "expire", Delivery("expired"), NOTIFY],
            timeout=a.expire_ttl + 40)
        for name, action, items in build(bed):
            run(name, action, items, timeout=45)

        for name, to, items in ROUTE_FAILURES:
            def act(to=to):
                start = bed.log.size()
                swaks(a.submission_port, [to], SENDER)
                wait_for(lambda: any(MTA_ERROR.search(l) for l in bed.log.lines_since(start)),
                         timeout=30, what="the mta error for %s" % to)
                bed.stop()
                wipe(a.spool)  # nothing may be retried after the restart
                bed.start()
            run(name, act, items)
    finally:
        bed.stop()

    whole = line_kinds(bed.log.lines_since(0))["reply"]
    if whole != reply_lines:
        failures += 1
        print("FAIL the log has %d lines with a reply, the table %d" % (whole, reply_lines), file=sys.stderr)
    else:
        print("ok   the log has %d lines with a reply, as many as the table" % whole)
    failures += not crosscheck_journal(a.journal, journal_want, fold=fold_journal)
    write_expected(a.expected, exp, NOTES)
    if failures:
        print("%d scenario checks failed" % failures, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
