#!/usr/bin/env python3
"""Memory of the exporter over a hostile log: a measurement, not a test.

Writes a seeded file of N lines (10 million by default) made to hurt: a
flood of distinct reply codes and texts from every MTA (far more distinct
code pairs than the series cap), binary garbage, invalid UTF-8 and overlong
encodings, NUL bytes, and now and then a line of 1 MiB. Then runs the
release exporter on it (`--log.from-beginning`), samples its resident set
size (VmRSS, from /proc) every second while it reads, and prints the
figures at every million lines and at the end, with the peak (VmHWM).

    scripts/hostile_rss.py [--lines 10000000] [--exporter target/release/mta_exporter]

What it shows: the series caps hold (reply series <= the cap + the folded
ones), the overflow is counted, every line is counted, and memory stays
flat once the caps are reached.
"""

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request


def generate(path, lines, seed):
    rng = random.Random(seed)
    postfix = (
        "Nov 28 17:35:01 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from x{n}[192.0.2.9]: "
        "{code} {enh} <u{n}@victim.example>: flood {text}; from=<a{n}@b> to=<u{n}@victim.example> proto=ESMTP helo=<h{n}>\n"
    )
    exim = (
        "2026-11-28 17:35:01 1tGRwu-005JDt-yH ** u{n}@p.example R=dnslookup T=remote_smtp H=mx.p.example [192.0.2.4]: "
        "SMTP error from remote mail server after RCPT TO:<u{n}@p.example>: {code} {enh} {text}\n"
    )
    sendmail = (
        "Nov 28 17:35:01 h sm-mta[5]: v12AbCd7004412: to=<u{n}@b.example>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, "
        "pri=1, relay=b.example. [192.0.2.2], dsn={enh}, stat=Deferred: {code} {enh} {text}\n"
    )
    opensmtpd = (
        'Nov 28 17:35:01 h smtpd[5]: c1a89cb774083905 smtp failed-command command="RCPT TO:<u{n}@v.example>" '
        'result="{code} {enh} {text}"\n'
    )
    templates = [postfix] * 6 + [exim, sendmail, opensmtpd]
    words = ["spam", "greylisted", "blocked", "dmarc", "quota", "unknown", "rate", "later", "policy", "tls"]
    with open(path, "wb", buffering=1 << 20) as out:
        for n in range(lines):
            kind = rng.random()
            if n % 100_000 == 99_999:
                out.write(b"Nov 28 17:35:01 mx1 postfix/smtp[1]: " + b"A" * (1 << 20) + b"\n")
            elif kind < 0.06:
                out.write(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 120))).replace(b"\n", b" ") + b"\n")
            elif kind < 0.09:
                out.write(b"Nov 28 17:35:01 mx1 postfix/smtp[1]: 4F2A1C3D5E: to=<\xc0\xaf\xe0\x80\xaf@x>, status=sent (\xed\xa0\x80 250 \xff)\n")
            elif kind < 0.10:
                out.write(b"\0" * rng.randrange(1, 200) + b"\n")
            else:
                cls = rng.choice("45")
                code = f"{cls}{rng.randrange(10)}{rng.randrange(10)}"
                enh = f"{cls}.{rng.randrange(8)}.{rng.randrange(1000)}"
                text = " ".join(rng.choice(words) + str(rng.randrange(1 << 30)) for _ in range(rng.randrange(1, 6)))
                out.write(rng.choice(templates).format(n=n, code=code, enh=enh, text=text).encode())


def rss_kib(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def scrape(address):
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=30) as response:
        return response.read().decode()


def total(text, name, **labels):
    value = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, _, number = line.rpartition(" ")
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            value += float(number)
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--exporter", default="target/release/mta_exporter")
    parser.add_argument("--max-series", type=int, default=2000, help="limits.max_series_per_family")
    parser.add_argument("--keep", help="write the log here and keep it (default: a temporary file)")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="hostile-rss-")
    log = args.keep or os.path.join(workdir, "hostile.log")
    if not os.path.exists(log):
        started = time.monotonic()
        generate(log, args.lines, args.seed)
        print(f"generated {args.lines:,} lines, {os.path.getsize(log) / 2**20:,.0f} MiB in {time.monotonic() - started:.0f} s")
    config = os.path.join(workdir, "mta.yaml")
    with open(config, "w") as f:
        f.write(f"limits:\n  max_series_per_family: {args.max_series}\n")
    proc = subprocess.Popen(
        [args.exporter, "--config.file", config, "--log.path", log, "--log.from-beginning",
         "--web.listen-address", "127.0.0.1:0", "--log.level", "info"],
        stderr=subprocess.PIPE, text=True,
    )
    address = None
    for line in proc.stderr:
        m = re.search(r'address="?([0-9.:]+)"?', line)
        if "listening" in line and m:
            address = m.group(1)
            break
    if address is None:
        proc.kill()
        sys.exit("the exporter did not start")
    # Keep draining its log so it never blocks on a full pipe.
    import threading
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()

    started = time.monotonic()
    next_mark = 1_000_000
    print(f"{'lines read':>12} {'RSS MiB':>8} {'peak MiB':>9} {'seconds':>8}")
    expected = args.lines  # the 1 MiB lines take the place of ordinary ones
    while True:
        time.sleep(1)
        text = scrape(address)
        read = total(text, "mta_log_lines_total")
        rss, hwm = rss_kib(proc.pid)
        while read >= next_mark:
            print(f"{next_mark:>12,} {rss / 1024:>8.1f} {hwm / 1024:>9.1f} {time.monotonic() - started:>8.0f}")
            next_mark += 1_000_000
        if read >= expected:
            break
        if time.monotonic() - started > 3600:
            proc.kill()
            sys.exit(f"not done after an hour: {read:,.0f} lines read")
    rss, hwm = rss_kib(proc.pid)
    series = sum(1 for line in text.splitlines() if line.startswith("mta_smtp_replies_total{"))
    print(f"done: {read:,.0f} lines in {time.monotonic() - started:.0f} s; RSS {rss / 1024:.1f} MiB, peak (VmHWM) {hwm / 1024:.1f} MiB")
    for result in ("reply", "recognized", "ignored", "unrecognized"):
        print(f"  lines {result}: {total(text, 'mta_log_lines_total', result=result):,.0f}")
    print(f"  truncated lines: {total(text, 'mta_log_lines_truncated_total'):,.0f}")
    print(f"  reply series: {series} (cap {args.max_series}, plus the folded ones)")
    print(f"  replies counted: {total(text, 'mta_smtp_replies_total'):,.0f}, "
          f"of which folded into code=\"other\": {total(text, 'mta_smtp_replies_total', code='other'):,.0f}")
    print(f"  overflow counted: {total(text, 'mta_metrics_overflow_total', family='mta_smtp_replies_total'):,.0f}")
    proc.terminate()
    proc.wait(timeout=30)
    if not args.keep:
        os.remove(log)
    ok = series <= args.max_series + 64
    print("series cap held" if ok else "SERIES CAP EXCEEDED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
