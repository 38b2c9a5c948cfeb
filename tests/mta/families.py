#!/usr/bin/env python3
"""The expected values of mta_exporter's activity families for a captured
log: delays, messages, notifications, sessions, TLS, authentication
failures, postscreen and filter actions.

    families.py --mta postfix LOG [--out FILE.families.json]

An independent second reading of the log: line-anchored regular expressions
written from the MTAs' documented formats, without the exporter's code. The
capture drivers check the counts they know (connections they opened, TLS
sessions the sink or the client negotiated, authentications they failed, …)
against this output when they write a fixture; tests/activity.rs checks the
exporter against it exactly (series, counts, bucket counts; sums to 1e-9).

Output: {"counters": {family: {"k=v,k=v": n}}, "histograms": {family:
{"k=v": {"count": n, "sum": s, "buckets": {"le": cumulative n}}}}}, labels
sorted by name. Standard library only.
"""

import argparse
import collections
import json
import re
import sys

DELAY_BUCKETS = [0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
                 1800, 3600, 7200, 14400, 28800, 86400, 172800, 432000]
SIZE_BUCKETS = [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 10485760, 26214400, 52428800, 104857600]
RECIPIENT_BUCKETS = [1, 2, 3, 5, 10, 20, 50, 100, 500, 1000]
RANK_BUCKETS = [1, 2, 3, 4, 5, 6, 8, 10, 15, 20]

HISTOGRAM_BUCKETS = {
    "mta_delivery_delay_seconds": DELAY_BUCKETS,
    "mta_delivery_stage_delay_seconds": DELAY_BUCKETS,
    "mta_message_size_bytes": SIZE_BUCKETS,
    "mta_message_recipients": RECIPIENT_BUCKETS,
    "mta_postscreen_dnsbl_rank": RANK_BUCKETS,
}


def cipher_class(suite):
    s = suite.upper().replace("-", "_")
    if "CHACHA20" in s:
        return "chacha20_poly1305"
    if "AES_128_GCM" in s or "AES128_GCM" in s:
        return "aes_128_gcm"
    if "AES_256_GCM" in s or "AES256_GCM" in s:
        return "aes_256_gcm"
    if "CCM" in s:
        return "aes_ccm"
    if "3DES" in s or "DES_CBC3" in s:
        return "3des"
    if "RC4" in s:
        return "rc4"
    if "CAMELLIA" in s:
        return "camellia"
    if "AES" in s:
        return "aes_cbc"
    return "other"


def protocol(text):
    m = re.fullmatch(r"TLSv?(1\.[0-3]|1)", text)
    if m:
        return "tls1.0" if m.group(1) in ("1", "1.0") else "tls" + m.group(1)
    return "ssl3" if text.upper() in ("SSLV3", "SSL3.0") else "other"


MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "DIGEST-MD5", "XOAUTH2", "OAUTHBEARER", "GSSAPI",
              "NTLM", "EXTERNAL", "PLAIN", "LOGIN"]


def mechanism(name, contains=False):
    n = name.upper().replace("_", "-")
    for m in MECHANISMS:
        if (m in n) if contains else (m == n):
            return m.lower().replace("-", "_")
    return "other"


def command_phase(cmd):
    c = cmd.strip().upper()
    word = re.split(r"[ :]", c)[0]
    if c in ("END OF DATA", "END-OF-MESSAGE"):
        return "end_of_data"
    return {"CONNECT": "connect", "EHLO": "helo", "HELO": "helo", "LHLO": "helo", "STARTTLS": "helo",
            "AUTH": "auth", "MAIL": "mail", "RCPT": "rcpt", "DATA": "data", "BDAT": "data"}.get(
        word, "unknown" if not word else "other")


def seconds_units(text):
    """Exim/OpenSMTPD 1h2m3.5s."""
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)([wdhms])", text):
        total += float(number) * {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}[unit]
    return total


class Families:
    def __init__(self):
        self.counters = collections.defaultdict(collections.Counter)
        self.histograms = collections.defaultdict(lambda: collections.defaultdict(list))

    def inc(self, family, n=1, **labels):
        self.counters[family][labels_key(labels)] += n

    def observe(self, family, value, n=1, **labels):
        self.histograms[family][labels_key(labels)].extend([value] * n)

    def to_json(self):
        hist = {}
        for family, series in self.histograms.items():
            bounds = HISTOGRAM_BUCKETS[family]
            hist[family] = {}
            for key, values in sorted(series.items()):
                buckets = {fmt(b): sum(1 for v in values if v <= b + 1e-12) for b in bounds}
                buckets["+Inf"] = len(values)
                hist[family][key] = {"count": len(values), "sum": round(sum(values), 9), "buckets": buckets}
        return {"counters": {f: dict(sorted(s.items())) for f, s in sorted(self.counters.items())},
                "histograms": dict(sorted(hist.items()))}


def fmt(bound):
    return repr(float(bound))


def labels_key(labels):
    return ",".join("%s=%s" % (k, labels[k]) for k in sorted(labels))


# ---------------------------------------------------------------------------


SYSLOG = re.compile(r"^\S+\s+\d+ [\d:]+ \S+ (?P<prog>[\w./-]+)(?:\[\d+\])?: (?P<msg>.*)$")


def postfix(lines, f):
    active = set()
    for line in lines:
        m = SYSLOG.match(line)
        if not m or not m.group("prog").startswith("postfix"):
            continue
        prog, msg = m.group("prog"), m.group("msg")
        parts = prog.split("/")
        daemon = parts[-1]
        service = parts[-2] if len(parts) >= 3 else daemon
        mm = re.match(r"[0-9A-Za-z]+: to=<.*>, relay=.*, delay=([\d.]+), delays=([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+), "
                      r"(?:tls=\S+, )?dsn=\S+, status=(\S+)", msg)
        if mm:
            status = {"SOFTBOUNCE": "deferred"}.get(mm.group(6), mm.group(6))
            if status.startswith("undeliverable"):
                status = "undeliverable"
            f.observe("mta_delivery_delay_seconds", float(mm.group(1)), mta="postfix", status=status)
            for stage, value in zip(["before_queue_manager", "queue_manager", "connection_setup", "transmission"],
                                    mm.group(2, 3, 4, 5)):
                f.observe("mta_delivery_stage_delay_seconds", float(value), mta="postfix", stage=stage)
            continue
        mm = re.match(r"([0-9A-F]+|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]+): from=<.*>, size=(\d+), nrcpt=(\d+) \(queue active\)$", msg)
        if mm and daemon == "qmgr":
            if mm.group(1) not in active:
                active.add(mm.group(1))
                f.inc("mta_messages_received_total", mta="postfix")
                f.observe("mta_message_size_bytes", int(mm.group(2)), mta="postfix")
                f.observe("mta_message_recipients", int(mm.group(3)), mta="postfix")
            continue
        mm = re.match(r"(\w+): removed$", msg)
        if mm and daemon == "qmgr":
            active.discard(mm.group(1))
            continue
        if daemon == "bounce":
            mm = re.match(r"\w+: sender (non-delivery|delay|delivery status) notification: \w+$", msg)
            if mm:
                f.inc("mta_notifications_total", mta="postfix",
                      kind={"non-delivery": "non_delivery", "delay": "delay", "delivery status": "delivery"}[mm.group(1)])
            continue
        if daemon == "smtpd":
            if re.match(r"connect from \S+$", msg):
                f.inc("mta_smtp_connections_total", mta="postfix", service=service)
            elif re.match(r"disconnect from \S+", msg):
                f.inc("mta_smtp_disconnections_total", mta="postfix", service=service)
            mm = re.match(r"(lost connection|timeout|too many errors) after (\S+?)(?: \(\d+ bytes\))? from \S+$", msg)
            if mm:
                error = {"lost connection": "lost_connection", "timeout": "timeout",
                         "too many errors": "too_many_errors"}[mm.group(1)]
                phase = {"CONNECT": "connect", "END-OF-MESSAGE": "end_of_data"}.get(mm.group(2)) or command_phase(mm.group(2))
                f.inc("mta_smtp_session_errors_total", mta="postfix", service=service, error=error, phase=phase)
            mm = re.match(r"warning: \S+\[[^\]]*\](?::\d+)?: SASL (\S+) authentication failed", msg)
            if mm:
                f.inc("mta_smtp_auth_failures_total", mta="postfix", method=mechanism(mm.group(1)))
            if re.match(r"SSL_accept error from ", msg):
                f.inc("mta_tls_failures_total", mta="postfix", direction="inbound")
        if daemon in ("smtpd", "smtp", "lmtp"):
            mm = re.match(r"(Anonymous|Untrusted|Trusted|Verified) TLS connection established (from|to) \S+: (\S+) with cipher (\S+) ", msg)
            if mm:
                f.inc("mta_tls_connections_total", mta="postfix", direction="inbound" if mm.group(2) == "from" else "outbound",
                      protocol=protocol(mm.group(3)), cipher=cipher_class(mm.group(4)), trust=mm.group(1).lower())
            if daemon != "smtpd" and re.match(r"SSL_connect error to ", msg):
                f.inc("mta_tls_failures_total", mta="postfix", direction="outbound")
        if daemon == "postscreen":
            if re.match(r"CONNECT from \[", msg):
                f.inc("mta_postscreen_connections_total")
            mm = re.match(r"(PASS NEW|PASS OLD|ALLOWLISTED|WHITELISTED|DENYLISTED|BLACKLISTED) \[", msg)
            if mm:
                f.inc("mta_postscreen_results_total", result={"PASS NEW": "pass_new", "PASS OLD": "pass_old",
                      "ALLOWLISTED": "allowlisted", "WHITELISTED": "allowlisted", "DENYLISTED": "denylisted",
                      "BLACKLISTED": "denylisted"}[mm.group(1)])
            mm = re.match(r"(PREGREET|HANGUP|COMMAND PIPELINING|NON-SMTP COMMAND|BARE NEWLINE|COMMAND (?:TIME|COUNT|LENGTH) LIMIT) ", msg)
            if mm:
                test = {"PREGREET": "pregreet", "HANGUP": "hangup", "COMMAND PIPELINING": "pipelining",
                        "NON-SMTP COMMAND": "non_smtp_command", "BARE NEWLINE": "bare_newline"}.get(mm.group(1), "command_limit")
                f.inc("mta_postscreen_violations_total", test=test)
            mm = re.match(r"DNSBL rank (\d+) for \[", msg)
            if mm:
                f.observe("mta_postscreen_dnsbl_rank", int(mm.group(1)))
        # Filters: milter verdicts, header/body checks, the before-queue content filter.
        mm = re.match(r"(?:\w+: )?(milter-reject|proxy-reject|reject|hold|discard|milter-hold|milter-discard): (\S+) ", msg)
        if mm and daemon in ("smtpd", "cleanup"):
            action, what = mm.group(1), mm.group(2)
            content = what in ("header", "body", "mime-header", "nested-header", "content")
            if action in ("milter-reject", "proxy-reject") or (action == "reject" and content):
                code = re.search(r"(?:\]: |: )([245])(?:\d\d |\.\d+\.\d+ )", msg[msg.find(": " + what):] if not content else
                                 msg[msg.rfind(">: "):])
                temp = code is not None and code.group(1) == "4"
                f.inc("mta_filter_actions_total", mta="postfix",
                      filter={"milter-reject": "milter", "proxy-reject": "content_filter"}.get(action, "content_checks"),
                      action="tempfail" if temp else "reject")
            elif action in ("hold", "discard") and content:
                f.inc("mta_filter_actions_total", mta="postfix", filter="content_checks", action=action)
            elif action in ("milter-hold", "milter-discard"):
                f.inc("mta_filter_actions_total", mta="postfix", filter="milter", action=action[len("milter-"):])


EXIM_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [+-]\d{4})? (?:\[\d+\] )?(?P<body>.*)$")
EXIM_ID = re.compile(r"^(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}|[0-9A-Za-z]{6}-[0-9A-Za-z]{11}-[0-9A-Za-z]{4}) ")


def exim_service(text):
    m = re.search(r" I=\[[^\]]*\]:(\d+)", text)
    port = m.group(1) if m else "25"
    return {"25": "smtp", "587": "submission", "465": "smtps"}.get(port, port)


def exim_tls(fields, direction):
    m = re.search(r" X=(TLS[\d.]+):([^: ]+)", fields)
    if not m:
        return None
    cv = re.search(r" CV=(\w+)", fields)
    cv = cv.group(1) if cv else None
    if cv == "dane" or (cv == "yes" and direction == "outbound"):
        trust = "verified"
    elif cv == "yes":
        trust = "trusted"
    elif cv == "no":
        trust = "untrusted" if " DN=" in fields else "anonymous"
    else:
        trust = "unknown"
    return dict(direction=direction, protocol=protocol(m.group(1)), cipher=cipher_class(m.group(2)), trust=trust)


def exim(lines, f):
    for line in lines:
        m = EXIM_LINE.match(line)
        if not m:
            continue
        body = m.group("body")
        idm = EXIM_ID.match(body)
        rest = body[idm.end():] if idm else body
        if rest.startswith(("<= ", "(= ")):
            head = rest.split(" id=", 1)[0].split(" id*=", 1)[0].split(' T="', 1)[0]
            f.inc("mta_messages_received_total", mta="exim")
            size = re.search(r" S=(\d+)", head)
            if size:
                f.observe("mta_message_size_bytes", int(size.group(1)), mta="exim")
            if rest.startswith("<= <> ") and re.search(r" R=\S+", head):
                f.inc("mta_notifications_total", mta="exim", kind="non_delivery")
            tls = exim_tls(head, "inbound")
            if tls:
                f.inc("mta_tls_connections_total", mta="exim", **tls)
            continue
        if rest.startswith(("=> ", "-> ", ">> ", "** ", "== ")):
            flag = rest[:2]
            if flag in ("**", "=="):
                # The fields end where the error text begins.
                fields = re.split(r":(?: |$)", rest, maxsplit=1)[0]
            else:
                fields = re.sub(r' C="(?:[^"\\]|\\.)*"', "", rest)
            status = {"=>": "sent", "->": "sent", ">>": "sent", "**": "bounced", "==": "deferred"}[flag]
            if flag == "**" and re.search(r": retry timeout exceeded|after a long failure period", rest):
                status = "expired"
            qt = re.search(r" QT=(\S+?):?(?: |$)", fields)
            if qt:
                f.observe("mta_delivery_delay_seconds", seconds_units(qt.group(1)), mta="exim", status=status)
            dt = re.search(r" DT=(\S+?):?(?: |$)", fields)
            if not dt and flag in ("**", "=="):
                dt = re.search(r" DT=(\S+)$", rest)
            if dt:
                f.observe("mta_delivery_stage_delay_seconds", seconds_units(dt.group(1)), mta="exim", stage="attempt")
            if flag in ("**", "==") and re.search(r":(?: |$)TLS session: ", rest):
                f.inc("mta_tls_failures_total", mta="exim", direction="outbound")
            if flag in ("=>", "->", ">>"):
                tls = exim_tls(fields, "outbound")
                if tls:
                    f.inc("mta_tls_connections_total", mta="exim", **tls)
                if rest.startswith("=> blackhole ("):
                    f.inc("mta_filter_actions_total", mta="exim", filter="acl", action="discard")
            continue
        mm = re.match(r"SMTP connection from (.*)$", rest)
        if mm:
            tail = mm.group(1)
            svc = exim_service(tail)
            if re.search(r" \(TCP/IP connection count = \d+\)$", tail):
                f.inc("mta_smtp_connections_total", mta="exim", service=svc)
            elif tail.endswith(" closed by QUIT") or " closed by DROP in ACL" in tail:
                f.inc("mta_smtp_disconnections_total", mta="exim", service=svc)
            elif re.search(r" lost(?: while reading message data)?(?: D=\S+)?$", tail):
                phase = "data" if "while reading message data" in tail else "unknown"
                f.inc("mta_smtp_session_errors_total", mta="exim", service=svc, error="lost_connection", phase=phase)
                f.inc("mta_smtp_disconnections_total", mta="exim", service=svc)
            continue
        mm = re.match(r"SMTP (command|data) timeout (?:\(message abandoned\) )?on connection from (.*)$", rest)
        if mm:
            svc = exim_service(mm.group(2))
            f.inc("mta_smtp_session_errors_total", mta="exim", service=svc, error="timeout",
                  phase="data" if mm.group(1) == "data" else "unknown")
            f.inc("mta_smtp_disconnections_total", mta="exim", service=svc)
            continue
        if rest.startswith("TLS error on connection from "):
            f.inc("mta_tls_failures_total", mta="exim", direction="inbound")
            continue
        mm = re.match(r"unexpected disconnection while reading SMTP command from (.*)$", rest)
        if mm:
            svc = exim_service(mm.group(1))
            f.inc("mta_smtp_session_errors_total", mta="exim", service=svc, error="lost_connection", phase="unknown")
            f.inc("mta_smtp_disconnections_total", mta="exim", service=svc)
            continue
        mm = re.match(r"SMTP call from (.*) dropped: too many .*?(?:\(last command was \"(.*?)\"|$)", rest)
        if mm:
            svc = exim_service(mm.group(1))
            phase = command_phase(mm.group(2)) if mm.group(2) else "unknown"
            f.inc("mta_smtp_session_errors_total", mta="exim", service=svc, error="too_many_errors", phase=phase)
            f.inc("mta_smtp_disconnections_total", mta="exim", service=svc)
            continue
        mm = re.match(r"(\S+) authenticator failed for .*: 5\d\d", rest)
        if mm:
            f.inc("mta_smtp_auth_failures_total", mta="exim", method=mechanism(mm.group(1), contains=True))
            continue


def sendmail(lines, f):
    for line in lines:
        m = SYSLOG.match(line)
        if not m or not re.match(r"(sendmail|sm-)", m.group("prog")) or m.group("prog").startswith("sm-notify"):
            continue
        msg = re.sub(r"^(\w{8,20}(?:\[\d+\])?: ){1,2}", "", m.group("msg"))
        mm = re.match(r"to=(.*?), (?:ctladdr=.*?, )?delay=([\d:+]+), xdelay=([\d:+]+), mailer=(\S+), .*?stat=(\S+)", msg)
        if mm:
            # One line for a group of recipients: `to=<a>,<b>,<c>, …`.
            n = len([a for a in re.split(r",(?! )", mm.group(1)) if a])
            dsn = re.search(r", dsn=(\d)\.\d+\.\d+, ", msg)
            dsn = dsn.group(1) if dsn else None
            stat = mm.group(5)
            if stat.startswith("queued"):
                continue
            status = {"2": "sent", "4": "deferred", "5": "bounced"}.get(dsn) or (
                "sent" if stat.startswith("Sent") else "deferred" if stat.startswith("Deferred") else "bounced")
            f.observe("mta_delivery_delay_seconds", clock(mm.group(2)), n=n, mta="sendmail", status=status)
            f.observe("mta_delivery_stage_delay_seconds", clock(mm.group(3)), n=n, mta="sendmail", stage="attempt")
            continue
        mm = re.match(r"from=.*?, size=(\d+), class=-?\d+, nrcpts=(\d+), ", msg)
        if mm:
            if int(mm.group(2)) > 0:
                f.inc("mta_messages_received_total", mta="sendmail")
                f.observe("mta_message_size_bytes", int(mm.group(1)), mta="sendmail")
                f.observe("mta_message_recipients", int(mm.group(2)), mta="sendmail")
            continue
        mm = re.match(r"DSN: (.*)$", msg)
        if mm:
            kind = "delay" if mm.group(1).startswith("Warning: ") else "delivery" if mm.group(1).startswith("Return receipt") else "non_delivery"
            f.inc("mta_notifications_total", mta="sendmail", kind=kind)
            f.inc("mta_messages_received_total", mta="sendmail")
            continue
        mm = re.match(r"lost input channel from .* to (\S+) after (\w+)$", msg)
        if mm:
            stage = mm.group(2)
            phase = {"connect": "connect", "ehlo": "helo", "helo": "helo", "starttls": "helo"}.get(stage) or command_phase(stage)
            f.inc("mta_smtp_session_errors_total", mta="sendmail", service=mm.group(1), error="lost_connection", phase=phase)
            continue
        if msg.startswith("collect: premature EOM: "):
            f.inc("mta_smtp_session_errors_total", mta="sendmail", service="unknown", error="lost_connection",
                  phase="data")
            continue
        mm = re.match(r"timeout waiting for input from .* during (.*)$", msg)
        if mm:
            f.inc("mta_smtp_session_errors_total", mta="sendmail", service="unknown", error="timeout",
                  phase="data" if mm.group(1) == "message collect" else "unknown")
            continue
        mm = re.match(r"AUTH failure \(([^)]+)\)", msg)
        if mm:
            f.inc("mta_smtp_auth_failures_total", mta="sendmail", method=mechanism(mm.group(1)))
            continue
        mm = re.match(r"STARTTLS=(server|client), (.*)$", msg)
        if mm:
            direction = "inbound" if mm.group(1) == "server" else "outbound"
            if mm.group(2).startswith("error: "):
                f.inc("mta_tls_failures_total", mta="sendmail", direction=direction)
                continue
            fields = mm.group(2)
            version = re.findall(r", version=([^,]+)", fields)
            cipher = re.findall(r", cipher=([^,]+)", fields)
            verify = re.findall(r", verify=([^,]+)", fields)
            if version and cipher and verify:
                trust = {"OK": "trusted", "NO": "anonymous", "NOT": "anonymous", "NONE": "anonymous",
                         "FAIL": "untrusted", "TEMP": "untrusted", "PROTOCOL": "untrusted",
                         "SOFTWARE": "untrusted"}.get(verify[-1], "unknown")
                f.inc("mta_tls_connections_total", mta="sendmail", direction=direction, protocol=protocol(version[-1]),
                      cipher=cipher_class(cipher[-1]), trust=trust)
            continue
        mm = re.match(r"Milter: .*?, reject=([245])", msg)
        if mm:
            f.inc("mta_filter_actions_total", mta="sendmail", filter="milter",
                  action="tempfail" if mm.group(1) == "4" else "reject")
            continue
        if re.match(r"Milter: .*, discard$", msg):
            f.inc("mta_filter_actions_total", mta="sendmail", filter="milter", action="discard")
            continue
        if re.match(r"milter=\S+, quarantine=", msg):
            f.inc("mta_filter_actions_total", mta="sendmail", filter="milter", action="quarantine")


def clock(text):
    days = 0
    if "+" in text:
        d, text = text.split("+")
        days = int(d)
    h, m, s = (int(x) for x in text.split(":"))
    return days * 86400 + h * 3600 + m * 60 + s


def opensmtpd(lines, f):
    local = set()
    for line in lines:
        m = SYSLOG.match(line)
        if m and m.group("prog") in ("smtpd",) or (m and m.group("prog").startswith("opensmtpd")):
            msg = m.group("msg")
        elif re.match(r"^[0-9a-f]{16} ", line):
            msg = line
        else:
            continue
        mm = re.match(r"([0-9a-f]{16}) (smtp|mta|mda) (\S+)(?: (.*))?$", msg)
        if not mm:
            continue
        sid, sub, event, fields = mm.group(1), mm.group(2), mm.group(3), mm.group(4) or ""
        if sub == "smtp" and event == "connected":
            if fields.startswith("address=local "):
                local.add(sid)
            else:
                f.inc("mta_smtp_connections_total", mta="opensmtpd", service="smtpd")
        elif sub == "smtp" and event == "disconnected":
            if sid in local:
                local.discard(sid)
                continue
            reason = re.match(r"reason=(\S+)", fields)
            reason = reason.group(1) if reason else ""
            f.inc("mta_smtp_disconnections_total", mta="opensmtpd", service="smtpd")
            if reason in ("disconnect", "io-error", "timeout"):
                f.inc("mta_smtp_session_errors_total", mta="opensmtpd", service="smtpd",
                      error="timeout" if reason == "timeout" else "lost_connection", phase="unknown")
        elif sub == "smtp" and event == "message":
            f.inc("mta_messages_received_total", mta="opensmtpd")
            size = re.search(r"(?:^| )size=(\d+)", fields)
            nrcpt = re.search(r"(?:^| )nrcpt=(\d+)", fields)
            if size:
                f.observe("mta_message_size_bytes", int(size.group(1)), mta="opensmtpd")
            if nrcpt:
                f.observe("mta_message_recipients", int(nrcpt.group(1)), mta="opensmtpd")
        elif sub == "smtp" and event == "envelope":
            if sid in local and re.match(r"evpid=\w+ from=<> ", fields):
                f.inc("mta_notifications_total", mta="opensmtpd", kind="non_delivery")
        elif event == "tls" and sub in ("smtp", "mta"):
            c = re.match(r"ciphers=([^:]+):([^:]+)", fields)
            if c:
                f.inc("mta_tls_connections_total", mta="opensmtpd", direction="inbound" if sub == "smtp" else "outbound",
                      protocol=protocol(c.group(1)), cipher=cipher_class(c.group(2)), trust="unknown")
        elif sub == "smtp" and event == "authentication":
            if fields.endswith(" result=permfail"):
                f.inc("mta_smtp_auth_failures_total", mta="opensmtpd", method="unknown")
        elif event == "delivery" and sub in ("mta", "mda"):
            r = re.search(r' result="?(\w+)"?', fields)
            d = re.search(r" delay=(\S+)", fields.split(' stat=')[0])
            status = {"Ok": "sent", "TempFail": "deferred", "PermFail": "bounced", "Loop": "bounced"}.get(r.group(1) if r else "")
            if status and d:
                f.observe("mta_delivery_delay_seconds", seconds_units(d.group(1)), mta="opensmtpd", status=status)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mta", required=True, choices=["postfix", "exim", "sendmail", "opensmtpd"])
    ap.add_argument("log")
    ap.add_argument("--out")
    a = ap.parse_args()
    with open(a.log, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    f = Families()
    {"postfix": postfix, "exim": exim, "sendmail": sendmail, "opensmtpd": opensmtpd}[a.mta](lines, f)
    text = json.dumps(f.to_json(), indent=1, sort_keys=True) + "\n"
    if a.out:
        with open(a.out, "w") as out:
            out.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
