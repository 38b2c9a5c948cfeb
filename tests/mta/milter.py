#!/usr/bin/env python3
"""A tiny scripted milter (Sendmail milter protocol v6, stdlib only).

It lets an MTA's own smtpd produce "milter-reject" lines on loopback. It
accepts everything except addresses whose local part is a directive:

    miltmail-CODE[-ENHANCED][+x]   (sender)     reject MAIL FROM with that reply
    miltrcpt-CODE[-ENHANCED][+x]   (recipient)  reject this RCPT TO
    milteom-CODE[-ENHANCED][+x]    (recipient)  reject the message at end of
                                                message (after the body)
    miltdiscard[+x]                (recipient)  discard the message at end of
                                                message (accept, deliver nothing)
    miltquarantine[+x]             (recipient)  quarantine the message at end
                                                of message (Postfix: hold queue)

Reply texts come from sink.TEXTS (same codes, same wording) with the variant
"milter" preferred. Every decision is appended to a JSONL journal:
    {"ts", "stage": "MAIL|RCPT|EOM", "arg", "code", "enhanced", "text"}

Usage: milter.py --port 10030 [--journal FILE]   (listens on 127.0.0.1 only)
"""

import argparse
import asyncio
import datetime
import json
import os
import re
import struct
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sink import Reply  # noqa: E402

DIRECTIVE = re.compile(
    r"^(?P<stage>miltmail|miltrcpt|milteom)-(?P<code>[45]\d\d)"
    r"(?:-(?P<enh>[45]\.\d{1,3}\.\d{1,3}))?$"
)

# Commands the MTA sends that expect no reply.
NO_REPLY = {b"D", b"A"}


def directive(address, stage):
    local = address.strip("<>").split("@", 1)[0].split("+", 1)[0].lower()
    m = DIRECTIVE.match(local)
    if not m or m.group("stage") != stage:
        return None
    return Reply(m.group("code"), m.group("enh"), variant="milter", addr=address.strip("<>"),
                 client="127.0.0.1", host="milter", qid="-")


class Milter:
    def __init__(self, journal):
        self.journal = open(journal, "a", buffering=1) if journal else None

    def record(self, stage, arg, reply):
        if self.journal:
            self.journal.write(json.dumps({
                "ts": datetime.datetime.now().isoformat(timespec="milliseconds"),
                "stage": stage, "arg": arg, "code": reply.code,
                "enhanced": reply.enhanced, "text": reply.text}, sort_keys=True) + "\n")

    async def handle(self, reader, writer):
        rcpts = []

        async def send(cmd, data=b""):
            writer.write(struct.pack("!I", len(data) + 1) + cmd + data)
            await writer.drain()

        async def send_reply(stage, arg, reply):
            self.record(stage, arg, reply)
            await send(b"y", ("%s %s%s" % (reply.code, reply.enhanced + " " if reply.enhanced else "",
                                          reply.text)).encode() + b"\0")

        try:
            while True:
                head = await reader.readexactly(4)
                (length,) = struct.unpack("!I", head)
                packet = await reader.readexactly(length)
                cmd, data = packet[:1], packet[1:]
                args = [a.decode("utf-8", "replace") for a in data.split(b"\0")]
                if cmd == b"O":
                    version, _actions, _protocol = struct.unpack("!III", data[:12])
                    # Ask for every callback; the only action is quarantine (SMFIF_QUARANTINE).
                    await send(b"O", struct.pack("!III", min(version, 6), 0x20, 0))
                elif cmd in NO_REPLY:
                    if cmd == b"A":
                        rcpts = []
                elif cmd == b"Q":
                    return
                elif cmd == b"K":  # quit, new connection follows
                    rcpts = []
                elif cmd == b"M":
                    rcpts = []
                    reply = directive(args[0], "miltmail")
                    if reply:
                        await send_reply("MAIL", args[0], reply)
                    else:
                        await send(b"c")
                elif cmd == b"R":
                    reply = directive(args[0], "miltrcpt")
                    if reply:
                        await send_reply("RCPT", args[0], reply)
                    else:
                        rcpts.append(args[0])
                        await send(b"c")
                elif cmd == b"E":
                    reply = next(filter(None, (directive(r, "milteom") for r in rcpts)), None)
                    words = {r.strip("<>").split("@", 1)[0].split("+", 1)[0].lower() for r in rcpts}
                    if reply:
                        await send_reply("EOM", ",".join(rcpts), reply)
                    elif "miltdiscard" in words:
                        self.record("EOM", ",".join(rcpts), Reply("250", None, text="discard"))
                        await send(b"d")
                    elif "miltquarantine" in words:
                        self.record("EOM", ",".join(rcpts), Reply("250", None, text="quarantine"))
                        await send(b"q", b"held by milter.py\0")
                        await send(b"c")
                    else:
                        await send(b"c")
                    rcpts = []
                else:  # C, H, T, L, N, B, U: carry on
                    await send(b"c")
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--journal")
    args = ap.parse_args()
    milter = Milter(args.journal)
    server = await asyncio.start_server(milter.handle, "127.0.0.1", args.port, reuse_address=True)
    print("milter listening on 127.0.0.1:%d" % args.port, flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
