#!/usr/bin/env python3
"""A tiny authoritative DNS server for DNSBL tests (UDP, stdlib only).

    dnsbl.py --listen 127.0.0.153 --zone bl.test --zone bl2.test [--port 53]

Answers A queries for REVERSED-IP.ZONE with 127.0.0.2 when the IP is a
loopback address (listed), NXDOMAIN for everything else; TXT queries get a
listing reason. Listens on a loopback address only.
"""

import argparse
import socket
import struct


def parse_name(data, pos):
    labels = []
    while True:
        n = data[pos]
        pos += 1
        if n == 0:
            return ".".join(labels), pos
        if n & 0xC0:
            raise ValueError("compressed names in a query are not expected")
        labels.append(data[pos:pos + n].decode("ascii", "replace"))
        pos += n


def answer(query, zones):
    (qid, flags, qd, _, _, _) = struct.unpack("!HHHHHH", query[:12])
    name, end = parse_name(query, 12)
    qtype, qclass = struct.unpack("!HH", query[end:end + 4])
    question = query[12:end + 4]
    lower = name.lower()
    listed = False
    for zone in zones:
        if lower.endswith("." + zone):
            ip = lower[: -len(zone) - 1].split(".")
            listed = len(ip) == 4 and ip[3] == "127"
    rcode = 0 if listed else 3
    records = b""
    count = 0
    if listed and qtype in (1, 255):
        records += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.2")
        count += 1
    if listed and qtype in (16, 255):
        text = b"listed by the mta_exporter test bed"
        records += b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, len(text) + 1) + bytes([len(text)]) + text
        count += 1
    header = struct.pack("!HHHHHH", qid, 0x8400 | (flags & 0x0100) | rcode, 1, count, 0, 0)
    return header + question + records


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--zone", action="append", required=True)
    a = ap.parse_args()
    if not a.listen.startswith("127."):
        ap.error("loopback addresses only")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.listen, a.port))
    print("dnsbl listening on %s:%d for %s" % (a.listen, a.port, ", ".join(a.zone)), flush=True)
    zones = [z.lower().strip(".") for z in a.zone]
    while True:
        data, peer = s.recvfrom(512)
        try:
            s.sendto(answer(data, zones), peer)
        except (ValueError, IndexError, struct.error):
            continue


if __name__ == "__main__":
    main()
