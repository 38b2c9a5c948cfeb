#!/usr/bin/env python3
"""A scripted SMTP/LMTP sink for driving real MTAs on loopback (stdlib only).

One sink serves every scenario without reconfiguration: what it answers is
chosen by the addresses the client sends, or by the port the client connected
to. Every reply it sends is appended to a JSONL journal, so a test can compare
what the MTA logged with what the server really said.

Usage
-----
    sink.py --port 2525 --journal /tmp/sink.jsonl [--host 127.0.0.1 --host ::1 --host 127.0.0.11]
            [--listen PORT=MODE ...] [--no-default-ports] [--hostname mx.sink.test]

With ``--port P`` the sink listens on P..P+6 with these modes (each on every
``--host``, default 127.0.0.1 only):

    P     normal     scripted by the addresses (grammar below)
    P+1   greet554   greeting "554 5.7.1 ..."; every later command but QUIT gets 503
    P+2   greet421   greeting "421 4.3.2 ...", then the connection is closed
    P+3   auth535    like normal, but AUTH always answers "535 5.7.8 ..."
    P+4   helo550    EHLO and HELO answer "550 5.7.1 ..."
    P+5   filter     like normal, but the default end-of-DATA reply is a content
                     filter's nested reply "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025):
                     250 2.0.0 Ok: queued as ..."
    P+6   accept     ignores every directive: 250 to everything

``--listen PORT=MODE`` adds a listener with any of these modes (repeatable).
One more mode is only available that way:

    tls       like normal, and offers STARTTLS (needs ``--tls-cert`` and
              ``--tls-key``); the journal's STARTTLS entry has "tls":
              [protocol, cipher] of the session
    tlsbroken offers STARTTLS, answers 220, then sends bytes that are no TLS
              handshake and closes: the client's handshake fails
Nothing ever listens on P+7..P+9: use those as a "connection refused" port.

Address grammar (local part of an address, case-insensitive)
-----------------------------------------------------------
    STAGE[ml]-CODE[-ENHANCED][-VARIANT][+anything]

    STAGE     mail     (in MAIL FROM)  reply to MAIL FROM
              rcpt     (in RCPT TO)    reply to this RCPT TO
              datacmd  (in RCPT TO)    reply to the DATA command (instead of 354)
              data     (in RCPT TO)    reply at end of DATA (after the final ".")
    ml        answer with a three-line reply ("550-5.7.26 ... / 550-5.7.26 ... /
              550 5.7.26 ...")
    CODE      three digits, e.g. 550
    ENHANCED  optional RFC 3463 code, e.g. 5.1.1 or 4.7.26; absent = the reply
              carries no enhanced code
    VARIANT   optional word choosing another text for the same codes (see TEXTS),
              e.g. rcpt-554-5.7.1-relay
    +anything ignored; makes addresses unique

    Examples: rcpt-550-5.1.1@sink.test, rcpt-451@sink.test,
    rcptml-550-5.7.26@sink.test, data-554-5.7.1@sink.test,
    datacmd-451-4.3.0@sink.test, sender mail-451-4.7.1@example.test.

Any other address is accepted (250). A directive for another stage is ignored
(a bounce sent to "mail-550-5.7.1@..." is just delivered). With several
recipients in one SMTP transaction, the first accepted recipient that carries a
datacmd/data directive decides the DATA/end-of-DATA reply for all of them. In
LMTP (client said LHLO) each accepted recipient gets its own end-of-DATA reply,
from its own data directive.

AUTH PLAIN/LOGIN: a user name of the form auth-CODE[-ENHANCED] chooses the
reply; any other user gets 235 2.7.0 (mode auth535: always 535 5.7.8).

A reply with code 421 is followed by closing the connection, as real servers do.

Journal
-------
One JSON object per reply sent:
    {"ts", "listen": "127.0.0.1:2525", "mode", "session", "peer", "proto":
     "SMTP|ESMTP|LMTP", "command": "CONNECT|EHLO|HELO|LHLO|AUTH|MAIL|RCPT|DATA|
     END_OF_DATA|RSET|NOOP|QUIT|VRFY|STARTTLS|UNKNOWN", "arg", "mail_from",
     "code": "550", "enhanced": "5.1.1"|null, "text": first line after the codes,
     "lines": N}
For END_OF_DATA "arg" is the recipient the reply is for in LMTP, and the list
of accepted recipients in SMTP ("rcpts").
"""

import argparse
import asyncio
import base64
import binascii
import datetime
import itertools
import json
import re
import sys

# Reply texts, written for this sink, in the style of real providers.
# Key: (code, enhanced or None, variant). Placeholders: {addr} {client} {host} {qid}.
TEXTS = {
    ("220", None, ""): "{host} ESMTP sink ready",
    ("221", "2.0.0", ""): "Bye",
    ("235", "2.7.0", ""): "Authentication successful",
    ("250", "2.0.0", ""): "Ok: queued as {qid}",
    ("250", None, ""): "Message {qid} accepted for delivery",
    ("250", "2.0.0", "filter"): "from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as {qid}",
    ("250", "2.0.0", "lmtp"): "<{addr}> {qid} Saved",
    ("250", "2.1.0", ""): "Ok",
    ("250", "2.1.5", ""): "Ok",
    ("354", None, ""): "End data with <CR><LF>.<CR><LF>",
    ("421", "4.3.2", ""): "{host} Service temporarily shutting down for maintenance, closing transmission channel",
    ("421", "4.7.0", ""): "Too many messages from [{client}] in a short time: rate limited, please try again later",
    ("450", "4.2.0", ""): "<{addr}>: Recipient address rejected: Greylisted, please try again in 300 seconds",
    ("450", "4.1.1", ""): "<{addr}>: Recipient address rejected: unverified address, verification in progress",
    ("451", "4.7.1", ""): "Greylisting in action, please come back in 5 minutes",
    ("451", None, ""): "You have been greylisted. This is part of our anti-spam measures and your server will retry automatically. We will accept this mail in 300 seconds",
    ("451", "4.3.0", ""): "Temporary local problem, please try again later",
    ("451", "4.7.500", ""): "Server busy, please try again later. [DB9PR01CA0042.eurprd01.prod.example.test]",
    ("452", "4.2.2", ""): "<{addr}>: Mailbox is over quota, please try again later",
    ("452", "4.5.3", ""): "Too many recipients in this transaction",
    ("454", "4.7.0", ""): "TLS not available",
    ("500", "5.5.2", ""): "Syntax error, command unrecognized",
    ("502", "5.5.2", ""): "Command not implemented",
    ("503", "5.5.1", ""): "Bad sequence of commands",
    ("503", "5.7.1", ""): "No valid greeting was given, closing soon",
    ("535", "5.7.8", ""): "Authentication credentials invalid",
    ("550", "5.1.1", ""): "<{addr}>: The mailbox you tried to reach does not exist here. Check the address for typing mistakes and try again",
    ("550", None, ""): "Mailbox unavailable",
    ("550", "5.7.1", ""): "Message refused: content looks like unsolicited bulk mail",
    ("550", "5.7.1", "helo"): "Your HELO/EHLO name is not acceptable to this server",
    ("550", "5.7.23", ""): "SPF validation failed: [{client}] is not an authorised sender for the envelope domain, see https://spf.example.test/why",
    ("550", "5.7.26", ""): "This mail has no valid authentication for the domain in its From header and that domain publishes a DMARC reject policy. Ask the sender's mail administrator to sign with DKIM and publish SPF, see https://support.example.test/mail/dmarc for details - gsmtp",
    ("550", "5.7.708", ""): "Service unavailable. Access denied, traffic from this address is not accepted here. [AM0PR01MB1234.eurprd01.prod.example.test]",
    ("552", "5.2.2", ""): "<{addr}>: Mailbox full, the recipient is over their storage quota",
    ("552", "5.3.4", ""): "Message size exceeds the limit of 10485760 bytes accepted by this server",
    ("553", "5.1.3", ""): "<{addr}>: Address rejected: bad address syntax",
    ("554", "5.7.1", ""): "Service unavailable; Client host [{client}] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/{client}",
    ("554", "5.7.1", "relay"): "<{addr}>: Relay access denied",
    ("554", "5.7.1", "greeting"): "{host} Your address is on our local blocklist, no mail accepted from you",
    ("554", "5.5.1", ""): "No valid recipients",
    # Texts used by milter.py (variant "milter").
    ("451", "4.7.1", "milter"): "Greylisting in action, please come back later",
    ("550", "5.7.1", "milter"): "Message rejected by content scanner: spam score 12.4 is above the limit of 5.0",
    ("553", "5.7.1", "milter"): "Sender domain has no valid DKIM signature and a strict policy",
}

DEFAULT_TEXT_BY_CLASS = {
    "2": "Ok",
    "3": "Go ahead",
    "4": "Temporary failure, please try again later",
    "5": "Request refused by policy",
}

# The modes --port P listens with, on P..P+6; P+7..P+9 stay closed.
PORT_MODES = ("normal", "greet554", "greet421", "auth535", "helo550", "filter", "accept")
MODES = PORT_MODES + ("tls", "tlsbroken")

DIRECTIVE = re.compile(
    r"^(?P<stage>mail|rcpt|datacmd|data)(?P<ml>ml)?-(?P<code>[2-5]\d\d)"
    r"(?:-(?P<enh>[245]\.\d{1,3}\.\d{1,3}))?(?:-(?P<variant>[a-z]+))?$"
)
AUTH_USER = re.compile(r"^auth-(?P<code>[2-5]\d\d)(?:-(?P<enh>[245]\.\d{1,3}\.\d{1,3}))?$")
ADDRESS = re.compile(r"<([^>]*)>")


class Reply:
    """One (possibly multi-line) SMTP reply."""

    def __init__(self, code, enhanced=None, text=None, variant="", multiline=False, **fmt):
        self.code = str(code)
        self.enhanced = enhanced
        if text is None:
            text = (TEXTS.get((self.code, enhanced, variant))
                    or TEXTS.get((self.code, enhanced, ""))
                    or DEFAULT_TEXT_BY_CLASS[self.code[0]])
        self.text = text.format_map(_Defaults(fmt))
        self.multiline = multiline

    def lines(self):
        words = self.text.split()
        if self.multiline and len(words) >= 3:
            n = len(words)
            cuts = [0, n // 3, 2 * n // 3, n]
            chunks = [" ".join(words[cuts[i]:cuts[i + 1]]) for i in range(3)]
        else:
            chunks = [self.text]
        prefix = self.code
        out = []
        for i, chunk in enumerate(chunks):
            sep = " " if i == len(chunks) - 1 else "-"
            head = prefix + sep + (self.enhanced + " " if self.enhanced else "")
            out.append(head + chunk)
        return out


class _Defaults(dict):
    def __missing__(self, key):
        return "-"


def parse_directive(address, stages):
    """Return (stage, Reply-args) if the local part of address is a directive
    for one of stages, else None."""
    local = address.split("@", 1)[0].split("+", 1)[0].lower()
    m = DIRECTIVE.match(local)
    if not m or m.group("stage") not in stages:
        return None
    return m.group("stage"), dict(code=m.group("code"), enhanced=m.group("enh"),
                                  variant=m.group("variant") or "",
                                  multiline=bool(m.group("ml")))


class Sink:
    tls_context = None

    def __init__(self, journal_path, hostname):
        self.journal = open(journal_path, "a", buffering=1) if journal_path else None
        self.hostname = hostname
        self.sessions = itertools.count(1)
        self.qids = itertools.count(1)

    def next_qid(self):
        return "5A%08X" % (0x10000 + next(self.qids))

    def record(self, entry):
        if self.journal:
            self.journal.write(json.dumps(entry, sort_keys=True) + "\n")

    async def serve(self, host, port, mode):
        async def handler(reader, writer):
            await Session(self, reader, writer, host, port, mode).run()
        server = await asyncio.start_server(handler, host, port, reuse_address=True)
        return server


class Session:
    def __init__(self, sink, reader, writer, host, port, mode):
        self.sink = sink
        self.reader = reader
        self.writer = writer
        self.mode = mode
        self.listen = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.client = peer[0]
        self.peer = "[%s]:%d" % (peer[0], peer[1]) if ":" in peer[0] else "%s:%d" % peer[:2]
        self.id = next(sink.sessions)
        self.proto = "SMTP"
        self.closing = False
        self.tls = False
        self.reset()

    def reset(self):
        self.mail_from = None
        self.mail_directive = None
        self.rcpts = []  # accepted recipients, in order

    def fmt(self, **extra):
        d = dict(host=self.sink.hostname, client=self.client, qid=self.sink.next_qid())
        d.update(extra)
        return d

    async def send(self, command, reply, arg=None, **journal_extra):
        lines = reply.lines()
        self.writer.write("".join(l + "\r\n" for l in lines).encode())
        entry = {
            "ts": datetime.datetime.now().isoformat(timespec="milliseconds"),
            "listen": self.listen, "mode": self.mode, "session": self.id,
            "peer": self.peer, "proto": self.proto, "command": command,
            "arg": arg, "mail_from": self.mail_from, "code": reply.code,
            "enhanced": reply.enhanced, "text": reply.text if len(lines) == 1 else
            lines[0][len(reply.code) + 1 + (len(reply.enhanced) + 1 if reply.enhanced else 0):],
            "lines": len(lines),
        }
        entry.update(journal_extra)
        self.sink.record(entry)
        if reply.code == "421":
            self.closing = True
        try:
            await self.writer.drain()
        except ConnectionError:
            self.closing = True

    async def readline(self):
        try:
            line = await self.reader.readline()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            return None
        if not line:
            return None
        return line.decode("utf-8", "replace").rstrip("\r\n")

    async def run(self):
        try:
            await self._run()
        finally:
            try:
                self.writer.close()
                await self.writer.wait_closed()
            except Exception:
                pass

    async def _run(self):
        if self.mode == "greet554":
            await self.send("CONNECT", Reply(554, "5.7.1", variant="greeting", **self.fmt()))
            while not self.closing:
                line = await self.readline()
                if line is None:
                    return
                verb = line.split(" ", 1)[0].upper()
                if verb == "QUIT":
                    await self.send("QUIT", Reply(221, "2.0.0"))
                    return
                await self.send(self.journal_verb(verb), Reply(503, "5.7.1"))
            return
        if self.mode == "greet421":
            await self.send("CONNECT", Reply(421, "4.3.2", **self.fmt()))
            return
        await self.send("CONNECT", Reply(220, None, **self.fmt()))
        while not self.closing:
            line = await self.readline()
            if line is None:
                return
            verb, _, rest = line.partition(" ")
            verb = verb.upper()
            handler = getattr(self, "cmd_" + verb.lower(), None)
            if handler is None:
                await self.send("UNKNOWN", Reply(502, "5.5.2"), arg=line[:80])
                continue
            await handler(rest.strip())

    @staticmethod
    def journal_verb(verb):
        known = {"EHLO", "HELO", "LHLO", "AUTH", "MAIL", "RCPT", "DATA", "RSET",
                 "NOOP", "QUIT", "VRFY", "STARTTLS"}
        return verb if verb in known else "UNKNOWN"

    # --- greeting commands -------------------------------------------------

    async def _hello(self, verb, arg):
        self.reset()
        if self.mode == "helo550":
            await self.send(verb, Reply(550, "5.7.1", variant="helo", **self.fmt()), arg=arg)
            return
        if verb == "HELO":
            self.proto = "SMTP"
            await self.send(verb, Reply(250, None, text=self.sink.hostname), arg=arg)
            return
        self.proto = "LMTP" if verb == "LHLO" else "ESMTP"
        ext = ["PIPELINING", "SIZE 52428800", "8BITMIME", "ENHANCEDSTATUSCODES",
               "AUTH PLAIN LOGIN", "DSN"]
        if self.mode in ("tls", "tlsbroken") and not self.tls:
            ext.append("STARTTLS")
        # EHLO reply: first line is the host name, then one extension per line.
        lines = [self.sink.hostname] + ext
        self.writer.write("".join(
            "250%s%s\r\n" % ("-" if i < len(lines) - 1 else " ", l) for i, l in enumerate(lines)
        ).encode())
        self.sink.record({
            "ts": datetime.datetime.now().isoformat(timespec="milliseconds"),
            "listen": self.listen, "mode": self.mode, "session": self.id, "peer": self.peer,
            "proto": self.proto, "command": verb, "arg": arg, "mail_from": None,
            "code": "250", "enhanced": None, "text": self.sink.hostname, "lines": len(lines),
        })
        await self.writer.drain()

    async def cmd_ehlo(self, arg):
        await self._hello("EHLO", arg)

    async def cmd_helo(self, arg):
        await self._hello("HELO", arg)

    async def cmd_lhlo(self, arg):
        await self._hello("LHLO", arg)

    # --- AUTH --------------------------------------------------------------

    async def cmd_auth(self, arg):
        parts = arg.split()
        mech = parts[0].upper() if parts else ""
        user = None
        if mech == "PLAIN":
            resp = parts[1] if len(parts) > 1 else None
            if resp is None:
                self.writer.write(b"334 \r\n")
                resp = await self.readline()
            user = self._decode_plain(resp)
        elif mech == "LOGIN":
            if len(parts) > 1:
                user = self._b64(parts[1])
            else:
                self.writer.write(b"334 VXNlcm5hbWU6\r\n")
                user = self._b64(await self.readline())
            self.writer.write(b"334 UGFzc3dvcmQ6\r\n")
            await self.readline()
        else:
            await self.send("AUTH", Reply(504, "5.5.4", text="Unrecognized authentication type"), arg=mech)
            return
        if user is None:
            await self.send("AUTH", Reply(501, "5.5.2", text="Cannot decode response"), arg=mech)
            return
        m = AUTH_USER.match(user.lower())
        if self.mode == "auth535":
            reply = Reply(535, "5.7.8")
        elif m:
            reply = Reply(m.group("code"), m.group("enh"), **self.fmt())
        else:
            reply = Reply(235, "2.7.0")
        await self.send("AUTH", reply, arg="%s %s" % (mech, user))

    @staticmethod
    def _b64(s):
        try:
            return base64.b64decode(s or "", validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return None

    def _decode_plain(self, s):
        raw = self._b64(s)
        if raw is None:
            return None
        fields = raw.split("\0")
        return fields[1] if len(fields) >= 3 else None

    # --- transaction -------------------------------------------------------

    def _directive(self, address, stages):
        if self.mode == "accept":
            return None
        return parse_directive(address, stages)

    async def cmd_mail(self, arg):
        m = ADDRESS.search(arg)
        if not m:
            await self.send("MAIL", Reply(501, "5.5.4", text="Syntax: MAIL FROM:<address>"), arg=arg)
            return
        if self.mail_from is not None:
            await self.send("MAIL", Reply(503, "5.5.1", text="Error: nested MAIL command"), arg=m.group(1))
            return
        address = m.group(1)
        d = self._directive(address, ("mail",))
        if d:
            _, kw = d
            reply = Reply(**kw, **self.fmt(addr=address))
            await self.send("MAIL", reply, arg=address)
            return
        self.mail_from = address
        await self.send("MAIL", Reply(250, "2.1.0"), arg=address)

    async def cmd_rcpt(self, arg):
        m = ADDRESS.search(arg)
        address = m.group(1) if m else arg
        if self.mail_from is None:
            await self.send("RCPT", Reply(503, "5.5.1", text="Error: need MAIL command"), arg=address)
            return
        d = self._directive(address, ("rcpt",))
        if d:
            _, kw = d
            await self.send("RCPT", Reply(**kw, **self.fmt(addr=address)), arg=address)
            if kw["code"].startswith("2"):
                self.rcpts.append(address)
            return
        self.rcpts.append(address)
        await self.send("RCPT", Reply(250, "2.1.5"), arg=address)

    async def cmd_data(self, arg):
        if self.mail_from is None or not self.rcpts:
            text = "Error: need MAIL command" if self.mail_from is None else "Error: need RCPT command"
            await self.send("DATA", Reply(503 if self.mail_from is None else 554, "5.5.1", text=text),
                            rcpts=[])
            return
        for rcpt in self.rcpts:
            d = self._directive(rcpt, ("datacmd",))
            if d:
                _, kw = d
                await self.send("DATA", Reply(**kw, **self.fmt(addr=rcpt)), arg=rcpt,
                                rcpts=list(self.rcpts))
                if not kw["code"].startswith("3"):
                    self.reset()
                    return
                break
        else:
            await self.send("DATA", Reply(354, None), rcpts=list(self.rcpts))
        size = 0
        while True:
            line = await self.readline()
            if line is None:
                return
            if line == ".":
                break
            size += len(line) + 2
        if self.proto == "LMTP":
            for rcpt in self.rcpts:
                d = self._directive(rcpt, ("data",))
                if d:
                    reply = Reply(**d[1], **self.fmt(addr=rcpt))
                else:
                    reply = Reply(250, "2.0.0", variant="lmtp", **self.fmt(addr=rcpt))
                await self.send("END_OF_DATA", reply, arg=rcpt, rcpts=[rcpt], size=size)
        else:
            reply = None
            for rcpt in self.rcpts:
                d = self._directive(rcpt, ("data",))
                if d:
                    reply = Reply(**d[1], **self.fmt(addr=rcpt))
                    break
            if reply is None:
                variant = "filter" if self.mode == "filter" else ""
                reply = Reply(250, "2.0.0", variant=variant, **self.fmt())
            await self.send("END_OF_DATA", reply, arg=None, rcpts=list(self.rcpts), size=size)
        self.reset()

    async def cmd_rset(self, arg):
        self.reset()
        await self.send("RSET", Reply(250, "2.0.0", text="Ok"))

    async def cmd_noop(self, arg):
        await self.send("NOOP", Reply(250, "2.0.0", text="Ok"))

    async def cmd_vrfy(self, arg):
        await self.send("VRFY", Reply(252, "2.0.0", text="Cannot VRFY user, but will accept message"), arg=arg)

    async def cmd_starttls(self, arg):
        if self.mode == "tlsbroken":
            self.writer.write(b"220 2.0.0 Ready to start TLS\r\nthis is not a TLS handshake\r\n")
            self.sink.record({"ts": datetime.datetime.now().isoformat(timespec="milliseconds"),
                              "listen": self.listen, "mode": self.mode, "session": self.id,
                              "peer": self.peer, "proto": self.proto, "command": "STARTTLS", "arg": None,
                              "mail_from": None, "code": "220", "enhanced": "2.0.0",
                              "text": "Ready to start TLS", "lines": 1, "tls": None})
            await self.writer.drain()
            self.closing = True
            return
        if self.mode != "tls" or self.tls or self.sink.tls_context is None:
            await self.send("STARTTLS", Reply(454, "4.7.0"))
            return
        self.writer.write(b"220 2.0.0 Ready to start TLS\r\n")
        await self.writer.drain()
        try:
            await self.writer.start_tls(self.sink.tls_context)
        except (ConnectionError, OSError, asyncio.TimeoutError) as e:
            self.sink.record({"ts": datetime.datetime.now().isoformat(timespec="milliseconds"),
                              "listen": self.listen, "mode": self.mode, "session": self.id,
                              "peer": self.peer, "command": "STARTTLS", "code": "220",
                              "enhanced": "2.0.0", "tls_error": str(e)})
            self.closing = True
            return
        ssl_object = self.writer.get_extra_info("ssl_object")
        self.tls = True
        self.reset()
        self.sink.record({"ts": datetime.datetime.now().isoformat(timespec="milliseconds"),
                          "listen": self.listen, "mode": self.mode, "session": self.id,
                          "peer": self.peer, "proto": self.proto, "command": "STARTTLS", "arg": None,
                          "mail_from": None, "code": "220", "enhanced": "2.0.0",
                          "text": "Ready to start TLS", "lines": 1,
                          "tls": [ssl_object.version(), ssl_object.cipher()[0]] if ssl_object else None})

    async def cmd_quit(self, arg):
        await self.send("QUIT", Reply(221, "2.0.0"))
        self.closing = True


async def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, help="base port P: opens P..P+6 with the standard modes")
    ap.add_argument("--host", action="append", help="address to listen on (repeatable; default 127.0.0.1)")
    ap.add_argument("--listen", action="append", default=[], metavar="PORT=MODE")
    ap.add_argument("--no-default-ports", action="store_true")
    ap.add_argument("--journal", help="JSONL file to append every reply to")
    ap.add_argument("--hostname", default="mx.sink.test")
    ap.add_argument("--tls-cert", help="certificate (PEM) for the tls mode")
    ap.add_argument("--tls-key", help="its private key (PEM)")
    args = ap.parse_args(argv)
    hosts = args.host or ["127.0.0.1"]
    for h in hosts:
        if not (h in ("::1", "localhost") or re.fullmatch(r"127\.\d{1,3}\.\d{1,3}\.\d{1,3}", h)):
            ap.error("only loopback addresses are allowed (127.0.0.0/8, ::1): %s" % h)
    listeners = []
    if args.port and not args.no_default_ports:
        listeners += [(args.port + i, mode) for i, mode in enumerate(PORT_MODES)]
    for spec in args.listen:
        port, _, mode = spec.partition("=")
        if mode not in MODES:
            ap.error("unknown mode %r (one of %s)" % (mode, ", ".join(MODES)))
        listeners.append((int(port), mode))
    if not listeners:
        ap.error("nothing to listen on: give --port or --listen")
    sink = Sink(args.journal, args.hostname)
    if args.tls_cert:
        import ssl
        sink.tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        sink.tls_context.load_cert_chain(args.tls_cert, args.tls_key)
    servers = []
    for host in hosts:
        for port, mode in listeners:
            servers.append(await sink.serve(host, port, mode))
    print("sink listening: %s" % ", ".join(
        "%s:%d=%s" % (h, p, m) for h in hosts for p, m in listeners), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
