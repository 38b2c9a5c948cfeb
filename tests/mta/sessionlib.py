#!/usr/bin/env python3
"""Shared pieces of the sessions drivers (tests/mta/<mta>/sessions.py): a
test bed that counts what the driver does as expected metric series, SMTP
clients (swaks and a hand-driven one), waiting for the log, and the check of
the driver's counts against tests/mta/families.py's reading of the log."""

import collections
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request

from journal import LogWatcher

def key(**labels):
    return ",".join("%s=%s" % (k, labels[k]) for k in sorted(labels))


def cipher_class(suite):
    # The same table as src/parse/facts.rs, for what the client negotiated.
    s = suite.upper().replace("-", "_")
    for needle, cls in [("CHACHA20", "chacha20_poly1305"), ("AES_128_GCM", "aes_128_gcm"), ("AES128_GCM", "aes_128_gcm"),
                        ("AES_256_GCM", "aes_256_gcm"), ("AES256_GCM", "aes_256_gcm")]:
        if needle in s:
            return cls
    return "other"


def proto(version):
    return {"TLSv1.3": "tls1.3", "TLSv1.2": "tls1.2"}.get(version, "other")


class Bed:
    def __init__(self, a, mta, queue_idle):
        self.a = a
        self.mta = mta
        self.queue_idle = queue_idle
        self.log = LogWatcher(a.log)
        self.want = collections.Counter()
        self.failures = 0
        self.mark = self.log.size()

    def expect(self, family, n=1, **labels):
        self.want[(family, key(**labels))] += n

    def connected(self, service, n=1):
        self.expect("mta_smtp_connections_total", n, mta=self.mta, service=service)
        self.expect("mta_smtp_disconnections_total", n, mta=self.mta, service=service)

    def swaks(self, port, to, sender="bob@example.test", tls=False, cert=None, auth=None, headers=(),
              ehlo="client.example.test", user="alice@example.test"):
        cmd = ["swaks", "--server", "127.0.0.1", "--port", str(port), "--to", to, "--from", sender,
               "--ehlo", ehlo, "--timeout", "20"]
        if tls:
            cmd += ["--tls"]
        if cert:
            cmd += ["--tls-cert", cert + ".crt", "--tls-key", cert + ".key"]
        if auth:
            mech, password = auth
            cmd += ["--auth", mech, "--auth-user", user, "--auth-password", password]
        for h in headers:
            cmd += ["--header", h]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        m = re.search(r"TLS started with cipher (\S+?):(\S+?):", p.stdout)
        return p.stdout, (m.group(1), m.group(2)) if m else None

    def settle(self, name, pattern=None, count=1):
        """Wait until the log has `count` more lines matching `pattern` and is quiet."""
        start = self.mark
        rx = re.compile(pattern) if pattern else None

        def ready():
            if rx and sum(1 for l in self.log.lines_since(start) if rx.search(l)) < count:
                return False
            return self.queue_idle()

        ok = self.log.wait_idle(ready=ready, timeout=40)
        print("%-4s %s" % ("ok" if ok else "FAIL", name), flush=True)
        if not ok:
            self.failures += 1
            for l in self.log.lines_since(start):
                print("     | " + l, file=sys.stderr)
        self.mark = self.log.size()

    def raw(self, port, commands, read_greeting=True, tls_garbage=False, close_after=None):
        """A hand-driven SMTP client: sends each command and reads its reply."""
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        f = s.makefile("rb")

        def reply():
            lines = []
            while True:
                line = f.readline().decode("ascii", "replace").rstrip("\r\n")
                lines.append(line)
                if len(line) < 4 or line[3] != "-":
                    return lines

        if read_greeting:
            reply()
        for c in commands:
            try:
                s.sendall(c)
                if (c.endswith(b"\r\n") or c.endswith(b"\n")) and reply() == [""]:
                    break  # the server hung up (too many errors): nothing more to send
            except (ConnectionResetError, BrokenPipeError):
                break
        if tls_garbage:
            s.sendall(b"\x16\x03\x01\x00\x05hello, this is no handshake\r\n")
            try:
                f.read()
            except OSError:
                pass
        if close_after:
            time.sleep(close_after)
        s.close()


def compare_families(bed, families_json):
    got = json.load(open(families_json))["counters"]
    families = {f for f, _ in bed.want}
    problems = []
    for family in sorted(families):
        want = {k: n for (f, k), n in bed.want.items() if f == family}
        have = got.get(family, {})
        if have != want:
            problems.append("%s: driver %s, log %s" % (family, want, have))
    hist = json.load(open(families_json))["histograms"].get("mta_postscreen_dnsbl_rank", {})
    if getattr(bed, "dnsbl", None):
        if hist.get("", {}).get("count") != 1 or hist[""]["sum"] != bed.dnsbl:
            problems.append("mta_postscreen_dnsbl_rank: want one observation of %d, log %s" % (bed.dnsbl, hist))
    for p in problems:
        print("FAIL " + p, file=sys.stderr)
    return_ok = not problems
    if return_ok:
        print("ok   the log's families equal what the driver did (%d series)" % len(bed.want))
    return return_ok


def save_expected(bed, path):
    with open(path, "w") as f:
        json.dump({"counters": {"%s{%s}" % k: n for k, n in sorted(bed.want.items())},
                   "dnsbl": getattr(bed, "dnsbl", None)}, f, indent=1, sort_keys=True)


def load_expected(bed, path):
    saved = json.load(open(path))
    for k, n in saved["counters"].items():
        family, labels = k.split("{", 1)
        bed.want[(family, labels[:-1])] = n
    bed.dnsbl = saved.get("dnsbl")


def scrape(address, mta):
    """The mta_queue_* series of one MTA: {(family, queue or None): value}."""
    with urllib.request.urlopen("http://%s/metrics" % address, timeout=20) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r'(mta_queue_\w+)\{mta="%s"(?:,queue="(\w+)")?\} (\S+)$' % mta, line)
        if m:
            out[(m.group(1), m.group(2))] = float(m.group(3))
    return out


