#!/usr/bin/env python3
"""Drive a running Sendmail 8.17 test bed (see run.sh) through every scenario,
wait for each to finish, and write expected.json from this table (never from
a log parser).

Items per scenario are explained in tests/mta/drivelib.py. After each
scenario the driver waits until the syslog file gained the predicted lines
and went quiet, and checks that it gained exactly as many delivery (to= with
mailer=), rejection (ruleset=/Milter: reject=), "<addr>... error" and other
lines as the items say, and one reply-carrying line per row. At the end it
checks the items against the sink's and the milter's journals.
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
from drivelib import (Delivery, Group, Table, Unlogged, crosscheck_journal, rows_of,  # noqa: E402
                      run_scenario, swaks, write_expected)
from journal import Expected, LogWatcher, inb, out, read_journal  # noqa: E402

SENDER = "alice@example.test"
INBOUND_SENDER = "bob@example.test"
FOREIGN = "127.0.0.3"  # an inbound client that may not relay (not in the access map)

NOTES = (
    "Real Sendmail 8.17 syslog (RFC 3164 from a private rsyslogd) produced by tests/mta/sendmail/run.sh; "
    "counts come from the driver's scenario table (tests/mta/sendmail/drive.py), cross-checked against "
    "the sink and milter journals. Conventions beyond the contract: one reply per recipient per attempt "
    "(as for Postfix, whose lines are per recipient). A 'to=<a>,<b>,<c>, ... mailer=...' line reports "
    "several recipients with one outcome: the reply and the delivery count once per address. The reply of a "
    "delivery line is 'reply=' when present (its first line; code and enhanced code from it, even when "
    "dsn= differs: Sendmail maps a bare 550 to dsn=5.1.1, a 554 greeting to 5.5.0); 'stat=Deferred: "
    "<reply>' repeats it and counts once. Sendmail does not log which SMTP command a remote reply "
    "answered, so such replies have phase unknown. 'stat=Sent (...)' carries no code: the reply is "
    "code none, enhanced = dsn (2.0.0), phase end_of_data for SMTP/LMTP mailers (a nested '250 2.0.0' "
    "in the text of a content filter is text), phase none for the *file* and prog mailers (also when "
    "they fail: dsn=5.0.0 'Can't create output'); 'stat=Deferred: Connection refused by ...' is code "
    "none, enhanced = dsn (4.4.1), phase connect. Inbound: 'ruleset=check_relay|check_mail|check_rcpt, "
    "... reject=<reply>' is connect|mail|rcpt, 'Milter: from=|to=|data, reject=<reply>' is "
    "mail|rcpt|end_of_data, all status rejected; '<addr>... User unknown' and an error mailer's "
    "'<addr>... <text>' have no code and count only as deliveries.rejected. The 'to=<addr>, delay=, "
    "pri=, stat=<milter text>' line after a milter data reject has no mailer and counts nothing. "
    "'QID: QID2: DSN: Cannot send message for <time>' (queue return time reached) is deliveries.expired. "
    "A client AUTH failure is not logged at LogLevel 9 (the message is then sent without AUTH); "
    "block_bad_helo's 501 is not logged either."
)


class Bed:
    def __init__(self, a):
        self.a = a
        self.log = LogWatcher(a.log)

    def sub(self, *to, sender=SENDER, **kw):
        return lambda: swaks(self.a.submission_port, list(to), sender, **kw)

    def mx(self, *to, sender=INBOUND_SENDER, client=FOREIGN, **kw):
        if client == "::1":
            return lambda: swaks(self.a.mx_port, list(to), sender, server="::1", **kw)
        return lambda: swaks(self.a.mx_port, list(to), sender, extra=("--local-interface", client), **kw)


def sent(n=1, phase="end_of_data"):
    row = out(phase, None, "2.0.0", "sent")
    return Group(row, n) if n > 1 else row


def remote(code, enh, status, n=1, journal_n=None):
    row = out("unknown", code, enh, status)
    return Group(row, n, journal_n) if n > 1 else row


NOTIFY = sent()  # the DSN Sendmail returns to SENDER, delivered to the sink


def build(bed):
    scenarios = []

    def add(name, action, items):
        scenarios.append((name, action, items))

    S = bed.sub
    add("sent, 250 with enhanced code", S("ok@sink.test"), [sent()])
    add("sent, 250 without enhanced code (dsn=2.0.0 anyway)", S("data-250@sink.test"), [sent()])
    add("sent over IPv6 (relay=[ipv6:::1] [IPv6:0:0:0:0:0:0:0:1])", S("a@ipv6.test"), [sent()])
    add("sent through a content filter (nested 250 2.0.0 in the text)", S("a@filter.test"), [sent()])
    add("sent, 8-bit recipient local part", S("j\u00f6rg@sink.test"), [sent()])
    add("RCPT 550 5.1.1 -> bounced (stat=User unknown)", S("rcpt-550-5.1.1@sink.test"),
        [remote("550", "5.1.1", "bounced"), NOTIFY])
    add("RCPT 550 5.7.26, 3-line reply (reply= keeps the first line)", S("rcptml-550-5.7.26@sink.test"),
        [remote("550", "5.7.26", "bounced"), NOTIFY])
    add("RCPT 550 without enhanced code (dsn=5.1.1) -> bounced", S("rcpt-550@sink.test"),
        [remote("550", None, "bounced"), NOTIFY])
    add("RCPT 552 5.2.2 -> bounced", S("rcpt-552-5.2.2@sink.test"), [remote("552", "5.2.2", "bounced"), NOTIFY])
    add("RCPT 550 5.7.708 (3-digit detail) -> bounced", S("rcpt-550-5.7.708@sink.test"),
        [remote("550", "5.7.708", "bounced"), NOTIFY])
    add("RCPT 451 4.7.1 -> stat=Deferred: <reply>", S("rcpt-451-4.7.1@sink.test"), [remote("451", "4.7.1", "deferred")])
    add("RCPT 451 4.7.500 (3-digit detail) -> deferred", S("rcpt-451-4.7.500@sink.test"),
        [remote("451", "4.7.500", "deferred")])
    add("RCPT 451 without enhanced code, 3-line -> deferred", S("rcptml-451@sink.test"), [remote("451", None, "deferred")])
    add("RCPT 450 4.2.0 -> deferred", S("rcpt-450-4.2.0@sink.test"), [remote("450", "4.2.0", "deferred")])
    add("RCPT 421 4.7.0 -> deferred", S("rcpt-421-4.7.0@sink.test"), [remote("421", "4.7.0", "deferred")])
    add("MAIL 451 4.7.1 (no RCPT sent), three recipients -> one to=<c>,<b>,<a> line, deferred x3",
        S("a@sink.test", "b@sink.test", "c@sink.test", sender="mail-451-4.7.1@example.test"),
        [remote("451", "4.7.1", "deferred", n=3, journal_n=1)])
    add("MAIL 550 5.7.23, 3-line, two recipients -> one line, bounced x2",
        S("a@sink.test", "b@sink.test", sender="mailml-550-5.7.23@example.test"),
        [remote("550", "5.7.23", "bounced", n=2, journal_n=1), NOTIFY])
    add("DATA 451 4.3.0 (dsn=4.0.0) -> deferred", S("datacmd-451-4.3.0@sink.test"), [remote("451", "4.3.0", "deferred")])
    add("DATA 554 5.5.1 -> bounced", S("datacmd-554-5.5.1@sink.test"), [remote("554", "5.5.1", "bounced"), NOTIFY])
    add("end of DATA 554 5.7.1, three recipients -> one line, bounced x3",
        S("data-554-5.7.1+m@sink.test", "r1@sink.test", "r2@sink.test"),
        [remote("554", "5.7.1", "bounced", n=3), NOTIFY])
    add("end of DATA 552 5.3.4 -> bounced", S("data-552-5.3.4@sink.test"), [remote("552", "5.3.4", "bounced"), NOTIFY])
    add("end of DATA 550 5.7.1, 3-line -> bounced", S("dataml-550-5.7.1@sink.test"),
        [remote("550", "5.7.1", "bounced"), NOTIFY])
    add("end of DATA 451 4.3.0 -> deferred", S("data-451-4.3.0@sink.test"), [remote("451", "4.3.0", "deferred")])
    add("three recipients, one RCPT 550 5.1.1 -> bounced line + sent line for two",
        S("rcpt-550-5.1.1+mix@sink.test", "ok1@sink.test", "ok2@sink.test"),
        [remote("550", "5.1.1", "bounced"), sent(2), NOTIFY])
    add("greeting 554 5.7.1 (dsn=5.5.0) -> bounced", S("a@greet554.test"), [remote("554", "5.7.1", "bounced"), NOTIFY])
    add("greeting 421 4.3.2 (dsn=4.5.0) -> deferred", S("a@greet421.test"), [remote("421", "4.3.2", "deferred")])
    add("EHLO and HELO 550 5.7.1 (dsn=5.5.0) -> bounced", S("a@helo.test"), [remote("550", "5.7.1", "bounced"), NOTIFY])
    add("AUTH 535 5.7.8: not logged, sent without AUTH", S("a@auth.test"), [Unlogged("auth", "535", "5.7.8"), sent()])
    add("connection refused -> deferred (dsn=4.4.1, no reply)", S("a@closed.test"), [out("connect", None, "4.4.1", "deferred")])
    add("LMTP sent (stat=Sent without text)", S("a@lmtp.test"), [sent()])
    add("LMTP per-recipient replies: 250, 452 4.2.2, 552 5.2.2",
        S("b@lmtp.test", "data-452-4.2.2@lmtp.test", "data-552-5.2.2@lmtp.test"),
        [sent(), remote("452", "4.2.2", "deferred"), remote("552", "5.2.2", "bounced"), NOTIFY])
    add("alias to a file (*file* mailer) -> sent", S("tofile@mx1.example.test"), [sent(phase="none")])
    add("alias to a file in a missing directory -> Can't create output, bounced (dsn=5.0.0)",
        S("badfile@mx1.example.test"), [out("none", None, "5.0.0", "bounced"), NOTIFY])
    add("submission: error mailer at RCPT (<addr>... text, no code)", S("x@retired.test"),
        [Delivery("rejected", "inbound")])

    M = bed.mx
    add("MX accepts from a foreign client, relays to the sink", M("ok@mx.test"), [sent()])
    add("RCPT: unknown local user, IPv6 client (<addr>... User unknown, no code)",
        M("nosuch@mx1.example.test", client="::1"), [Delivery("rejected", "inbound")])
    add("RCPT: relaying denied 550 5.7.1", M("someone@elsewhere.test"), [inb("rcpt", "550", "5.7.1")])
    add("RCPT: access map To: REJECT 550 5.2.1", M("reject@mx.test"), [inb("rcpt", "550", "5.2.1")])
    add("RCPT: access map ERROR:5.7.1:550", M("custom@mx.test"), [inb("rcpt", "550", "5.7.1")])
    add("RCPT: access map ERROR:4.7.1:451 greylisted", M("grey@mx.test", client="::1"), [inb("rcpt", "451", "4.7.1")])
    add("RCPT: access map ERROR:4.2.2:452", M("quota@mx.test"), [inb("rcpt", "452", "4.2.2")])
    add("RCPT: access map ERROR:550 (Sendmail adds 5.0.0)", M("nodsn@mx.test"), [inb("rcpt", "550", "5.0.0")])
    add("MAIL: access map From: REJECT 550 5.7.1", M("ok@mx.test", sender="spammer@bad.test"), [inb("mail", "550", "5.7.1")])
    add("MAIL: access map ERROR:4.7.1:451", M("ok@mx.test", sender="temp@bad.test"), [inb("mail", "451", "4.7.1")])
    add("MAIL: sender domain does not exist 553 5.1.8", M("ok@mx.test", sender="x@nowhere.invalid"),
        [inb("mail", "553", "5.1.8")])
    add("CONNECT: access map Connect: REJECT (check_relay, no queue id)", M("ok@mx.test", client="127.0.0.2"),
        [inb("connect", "550", "5.7.1")])
    add("queued reject: second recipient unknown after the first was accepted",
        M("ok@mx.test", "nosuch@mx1.example.test", client="::1"), [Delivery("rejected", "inbound"), sent()])
    add("milter: RCPT 451 4.7.1", M("miltrcpt-451-4.7.1@mx.test"), [inb("rcpt", "451", "4.7.1")])
    add("milter: MAIL 553 5.7.1", M("ok@mx.test", sender="miltmail-553-5.7.1@example.test"), [inb("mail", "553", "5.7.1")])
    add("milter: end of message 550 5.7.1 (+ a to= line without mailer)", M("milteom-550-5.7.1@mx.test"),
        [inb("end_of_data", "550", "5.7.1"), "tonomailer"])
    add("milter accepts", M("ok2@mx.test"), [sent()])
    add("block_bad_helo: 501 to EHLO and HELO, not logged", M("ok@mx.test", ehlo="bad_helo!"), ["nomail"])
    add("command timeout (no code)", lambda: idle_client(bed), ["timeout", "nomail"])
    return scenarios


MILTER_DECISIONS = {("MAIL", "553", "5.7.1"): 1, ("RCPT", "451", "4.7.1"): 1, ("EOM", "550", "5.7.1"): 1}


def idle_client(bed):
    s = socket.create_connection(("127.0.0.1", bed.a.mx_port), timeout=30)
    s.settimeout(30)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()


TO_MAILER = re.compile(r": to=.*, mailer=[^,]+, .*stat=")
TO_NOMAILER = re.compile(r": to=(?!.*, mailer=).*, stat=")
REJECT = re.compile(r"ruleset=check_\w+, .*reject=|Milter: (from=.*|to=.*|data), reject=")
RCPT_ERROR = re.compile(r"\]: \w+: <[^>]*>\.\.\. ")
EXPIRED = re.compile(r": DSN: Cannot send message for ")
NOMAIL = re.compile(r" did not issue MAIL/EXPN/VRFY/ETRN ")
TIMEOUT = re.compile(r" timeout waiting for input from ")
REPLY = re.compile(r"reply=[2-5]\d\d[ -]|reject=[2-5]\d\d[ -]|: to=.*, mailer=.*, dsn=\d\.\d+\.\d+, ")


def line_kinds(lines):
    c = collections.Counter()
    for l in lines:
        if TO_MAILER.search(l):
            c["to"] += 1
        elif TO_NOMAILER.search(l):
            c["tonomailer"] += 1
        elif REJECT.search(l):
            c["reject"] += 1
        elif RCPT_ERROR.search(l):
            c["rcpterror"] += 1
        elif EXPIRED.search(l):
            c["expired"] += 1
        elif NOMAIL.search(l):
            c["nomail"] += 1
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
        if isinstance(it, str):
            c[it] += 1
            continue
        if isinstance(it, Delivery):
            c["rcpterror" if it.status == "rejected" else it.status] += it.n
            continue
        row = it.row if isinstance(it, Group) else it
        c["reject" if row.direction == "inbound" else "to"] += 1
    return c


def journal_keys(items):
    """What the sink journal holds for these items, in the log's terms
    (see fold_journal)."""
    c = collections.Counter()
    for it in items:
        if isinstance(it, Unlogged):
            c[(it.phase, it.code, it.enhanced)] += 1
            continue
        if isinstance(it, (str, Delivery)):
            continue
        n = (it.journal_n or it.n) if isinstance(it, Group) else 1
        row = it.row if isinstance(it, Group) else it
        if row.direction != "outbound" or row.phase in ("none", "connect"):
            continue
        c[(row.phase, row.code, row.enhanced)] += n
    return c


def fold_journal(counts):
    """The sink's replies as Sendmail logs them: a 2xx end-of-DATA reply as
    stat=Sent with dsn=2.0.0 and no code, other replies without their phase."""
    folded = collections.Counter()
    for (phase, code, enh), n in counts.items():
        if phase == "end_of_data" and code.startswith("2"):
            folded[("end_of_data", "none", "2.0.0")] += n
        elif phase == "auth":
            folded[(phase, code, enh)] += n
        else:
            folded[("unknown", code, enh)] += n
    return folded


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--journal", required=True)
    ap.add_argument("--milter-journal", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--cf", required=True)
    ap.add_argument("--mx-port", type=int, required=True)
    ap.add_argument("--submission-port", type=int, required=True)
    ap.add_argument("--queue-return", type=float, required=True)
    a = ap.parse_args()
    bed = Bed(a)
    exp = Expected()
    journal_want = collections.Counter()
    reply_lines = 0  # lines that show a code (a Group is one line)
    failures = 0

    def run(name, action, items):
        nonlocal failures, reply_lines
        failures += not run_scenario(bed.log, name, action, wanted_kinds(items), line_kinds, items=items)
        counted = [i for i in items if not isinstance(i, str)]
        reply_lines += len(rows_of(counted))
        Table.expected_of(counted, exp, name)
        journal_want.update(journal_keys(counted))

    t0 = time.monotonic()
    expire_to = "rcpt-451-4.7.1+expire@sink.test"
    start = bed.log.size()
    run("queue return: first attempt, RCPT 451 4.7.1 -> deferred", bed.sub(expire_to),
        [remote("451", "4.7.1", "deferred")])
    qids = [m.group(1) for m in (re.search(r"\]: (\w+): to=<%s>" % re.escape(expire_to), l)
                                  for l in bed.log.lines_since(start)) if m]
    if not qids:
        print("FAIL no delivery line for %s" % expire_to, file=sys.stderr)
        sys.exit(1)

    for name, action, items in build(bed):
        run(name, action, items)

    wait = a.queue_return + 1 - (time.monotonic() - t0)
    if wait > 0:
        time.sleep(wait)
    run("queue return: retry past Timeout.queuereturn -> deferred, DSN: Cannot send message, notification",
        lambda: subprocess.run(["/usr/sbin/sendmail", "-C", a.cf, "-qI" + qids[0]], check=True),
        [remote("451", "4.7.1", "deferred"), Delivery("expired"), NOTIFY])

    whole = line_kinds(bed.log.lines_since(0))["reply"]
    if whole != reply_lines:
        failures += 1
        print("FAIL the log has %d lines with a reply, the table %d" % (whole, reply_lines), file=sys.stderr)
    else:
        print("ok   the log has %d lines with a reply, as many as the table" % whole)
    failures += not crosscheck_journal(a.journal, journal_want, fold=fold_journal)
    m, _ = read_journal(a.milter_journal)
    stages = collections.Counter((e["stage"], e["code"], e["enhanced"]) for e in m)
    if stages != collections.Counter(MILTER_DECISIONS):
        failures += 1
        print("FAIL milter journal: %s" % dict(stages), file=sys.stderr)
    else:
        print("ok   milter journal agrees (%d rejects)" % sum(stages.values()))
    write_expected(a.expected, exp, NOTES)
    if failures:
        print("%d scenario checks failed" % failures, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
