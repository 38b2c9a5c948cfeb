#!/usr/bin/env python3
"""Measures the exporter's memory and CPU, the figures behind the resource
requests and limits in deploy/kubernetes and the limits of the systemd unit.

    scripts/measure_resources.py [--exporter BIN] [--lines 1000000] [--rate 200]

Runs (each with a fresh exporter on a loopback port, numbers from /proc):
  1. the bundled sample from its beginning, then idle;
  2. a genlog file of --lines lines from its beginning (a backlog: how fast
     it catches up, the peak memory);
  3. following a file that grows by --rate lines per second for --seconds
     (a busy mail server), with a scrape every 15 s;
  4. 200 scrapes back to back after run 3's data (the cost of /metrics).
Not part of the test suite: timings depend on the machine.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stats(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    kib = {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    return kib["VmRSS"] / 1024, kib["VmHWM"] / 1024, cpu


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def lines_read(port):
    return sum(float(v) for v in re.findall(r"^mta_log_lines_total\{[^}]*\} (\S+)$", scrape(port), re.M))


class Exporter:
    def __init__(self, binary, *paths):
        self.port = free_port()
        args = [binary, "--web.listen-address", f"127.0.0.1:{self.port}", "--log.from-beginning"]
        for p in paths:
            args += ["--log.path", str(p)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("exporter did not become ready")

    def stats(self):
        return proc_stats(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exporter", default=str(ROOT / "target/x86_64-unknown-linux-musl/release/mta_exporter"))
    ap.add_argument("--genlog", default=str(ROOT.parent / "shared/bench/genlog.py"))
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=200, help="lines per second in run 3")
    ap.add_argument("--seconds", type=int, default=60, help="duration of run 3")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mta-measure-"))
    print(f"exporter: {args.exporter}")

    # 1. the bundled sample
    e = Exporter(args.exporter, ROOT / "config/sample/postfix.log")
    time.sleep(2)
    rss, hwm, cpu = e.stats()
    n = lines_read(e.port)
    time.sleep(10)
    _, _, cpu_idle = e.stats()
    e.stop()
    print(f"1. sample ({n:.0f} lines): RSS {rss:.1f} MiB, peak {hwm:.1f} MiB, CPU {cpu:.2f} s; "
          f"idle 10 s: {(cpu_idle - cpu) * 1000:.0f} ms CPU")

    # 2. a backlog
    log = tmp / "backlog.log"
    subprocess.run([sys.executable, args.genlog, "--lines", str(args.lines), "--seed", "3", "-o", str(log)],
                   check=True)
    size = log.stat().st_size
    t0 = time.monotonic()
    e = Exporter(args.exporter, log)
    while lines_read(e.port) < args.lines:
        time.sleep(0.05)
    wall = time.monotonic() - t0
    rss, hwm, cpu = e.stats()
    e.stop()
    print(f"2. backlog of {args.lines} lines ({size / 2**20:.0f} MiB): read in {wall:.2f} s wall, {cpu:.2f} s CPU "
          f"= {args.lines / cpu:,.0f} lines per CPU-second; RSS {rss:.1f} MiB, peak {hwm:.1f} MiB")

    # 3. following a busy server
    lines = log.read_text().splitlines(keepends=True)
    live = tmp / "live.log"
    live.write_text("")
    e = Exporter(args.exporter, live)
    _, _, cpu0 = e.stats()
    t0 = time.monotonic()
    i = 0
    with open(live, "a") as f:
        for second in range(args.seconds):
            chunk = lines[i:i + args.rate]
            i += args.rate
            f.writelines(chunk)
            f.flush()
            if second % 15 == 0:
                scrape(e.port)
            time.sleep(max(0.0, t0 + second + 1 - time.monotonic()))
    time.sleep(1)
    rss, hwm, cpu1 = e.stats()
    used = cpu1 - cpu0
    print(f"3. following {args.rate} lines/s for {args.seconds} s: {used:.2f} s CPU = "
          f"{used / args.seconds * 1000:.1f} millicores average; RSS {rss:.1f} MiB, peak {hwm:.1f} MiB")

    # 4. scrapes
    body = scrape(e.port)
    _, _, c0 = e.stats()
    t0 = time.monotonic()
    for _ in range(200):
        scrape(e.port)
    wall = time.monotonic() - t0
    _, _, c1 = e.stats()
    e.stop()
    series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
    print(f"4. 200 scrapes of {series} series ({len(body) / 1024:.0f} KiB): {wall * 5:.2f} ms wall each, "
          f"{(c1 - c0) * 5:.2f} ms CPU each")
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
