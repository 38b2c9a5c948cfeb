#!/usr/bin/env python3
"""Whole-process benchmark of mta_exporter, side by side with its peers.

    bench/whole_process.py --scaling 200000,2000000,20000000   # BENCHMARKS.md
    bench/whole_process.py --runs 5 --lines 2000000 --tools mta_exporter,postfix_exporter,mtail
    bench/whole_process.py --scaling 200000,2000000,20000000 --tools mta_exporter

What one run of a tool does: a Postfix log from ../shared/bench/genlog.py
(seeded, with its truth file) is appended in one go to an empty file that
the tool already follows; the tool's own counters are polled until every
line is in. Printed per tool: lines/s (wall), lines per CPU-second, CPU
seconds (user+sys of the whole process, from /proc/PID/stat), peak RSS
(VmHWM), the RSS when idle before the append, and what was counted: for
mta_exporter the whole scrape is checked against the truth file
(examples/genlog_check.rs, the mapping of tests/genlog_truth.rs); for the
peers, how many of the reply codes in the log they count at all.

The exporter measured is the static musl binary the image ships (built
here as scripts/test.sh builds it), unless --exporter names another. `wc -l`
on the same file is in the same table: the floor, what moving the bytes
costs (it reads a finished file instead of following one).

The peers are Debian's packages, run on loopback only:
  * prometheus-postfix-exporter (kumina/postfix_exporter). Its package pulls
    in Postfix, so the binary is extracted with `apt-get download` +
    `dpkg -x` into the work directory instead of installing it.
  * mtail with /usr/share/doc/mtail/examples/postfix.mtail, extracted the
    same way when not installed.
  When neither is installed nor downloadable, the peer is skipped with a note.

Also measured for mta_exporter:
  * idle: CPU time and wake-ups (context switches) over --idle seconds with
    nothing to read;
  * scrape: the exporter first reads a file that creates about 1000 series,
    then catches up on the log while it is scraped continuously; scrape
    latency (median, p99, max) and the catch-up rate under scraping;
  * report: `mta_exporter report` on the same file, one pass;
  * --scaling: lines/s for several file sizes (the largest ones are copies
    of the generated log appended one after the other).

Timing is wall clock on a machine that may be shared: every figure is the
median of --runs runs, with the spread (min-max). Ratios are computed from
the medians of the same invocation. Nothing here is a test: nothing fails on
a timing; the script exits non-zero only if a tool fails or mta_exporter's
counts differ from the truth file.
"""

import argparse
import errno
import gzip
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")
POLL = 0.1  # seconds between polls of a tool's counters


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# --- /proc ------------------------------------------------------------------


def cpu_seconds(pid):
    """user+sys of the whole process (all threads, live and exited)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def context_switches(pid):
    """Voluntary + involuntary context switches of all live threads."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def read_offset(pid, path):
    """The file offset of the descriptor `pid` has open on `path`, or None."""
    real = os.path.realpath(path)
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == real:
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    return int(f.readline().split()[1])
        except (FileNotFoundError, ValueError):
            pass
    return None


# --- HTTP -------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


def samples(text, name):
    """Sum of every sample of the metric `name` in an exposition text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in "{ ":
            total += float(line.rsplit(" ", 1)[1])
    return total


def series_count(text):
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


# --- tools --------------------------------------------------------------------


class Tool:
    """A following process: how to start it, and when it has read everything."""

    name = ""

    def __init__(self, work):
        self.work = work
        self.proc = None

    def start(self, path, port):
        raise NotImplementedError

    def url(self):
        return f"http://127.0.0.1:{self.port}/metrics"

    def launch(self, argv, path, port):
        self.port = port
        self.path = path
        out = open(os.path.join(os.path.dirname(path), self.name + ".out"), "w")
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {out.name}")
            try:
                if self.ready():
                    # Let it settle (watches set up, first poll done).
                    time.sleep(1.0)
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not come up; see {out.name}")

    def ready(self):
        get(self.url(), timeout=2)
        return read_offset(self.proc.pid, self.path) is not None

    def done(self, lines, size, text, state):
        """Whether every line is in; `state` is per-run scratch space."""
        raise NotImplementedError

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def replies_counted(self, text, truth):
        raise NotImplementedError


class MtaExporter(Tool):
    name = "mta_exporter"

    def __init__(self, work, binary):
        super().__init__(work)
        self.binary = binary

    def start(self, path, port, from_beginning=False):
        argv = [self.binary, "--log.path", path, "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warn"]
        if from_beginning:
            argv.append("--log.from-beginning")
        self.launch(argv, path, port)

    def ready(self):
        status, _ = get(f"http://127.0.0.1:{self.port}/-/ready", timeout=2)
        return status == 200 and read_offset(self.proc.pid, self.path) is not None

    def done(self, lines, size, text, state):
        return samples(text, "mta_log_lines_total") >= lines


class PostfixExporter(Tool):
    """kumina/postfix_exporter has no line counter: it is done when it has
    read to the end of the file and its counters stopped moving for 2 s (the
    end time is the last change)."""

    name = "postfix_exporter"

    def __init__(self, work, binary):
        super().__init__(work)
        self.binary = binary

    def start(self, path, port):
        argv = [
            self.binary,
            f"--web.listen-address=127.0.0.1:{port}",
            f"--postfix.logfile_path={path}",
            f"--postfix.showq_path={os.path.join(os.path.dirname(path), 'no-showq')}",
        ]
        self.launch(argv, path, port)

    def done(self, lines, size, text, state):
        fingerprint = [l for l in text.splitlines() if l.startswith("postfix_") and not l.startswith("postfix_up")]
        now = time.time()
        if fingerprint != state.get("last"):
            state["last"] = fingerprint
            state["changed"] = now
        at_end = (read_offset(self.proc.pid, self.path) or 0) >= size
        if at_end and now - state["changed"] >= 2.0:
            state["end"] = state["changed"]
            return True
        return False

    def replies_counted(self, text, truth):
        return samples(text, "postfix_smtpd_messages_rejected_total")


class Mtail(PostfixExporter):
    name = "mtail"

    def __init__(self, work, binary, program):
        Tool.__init__(self, work)
        self.binary = binary
        self.program = program

    def start(self, path, port):
        progs = os.path.join(os.path.dirname(path), "progs")
        os.makedirs(progs, exist_ok=True)
        shutil.copy(self.program, os.path.join(progs, "postfix.mtail"))
        argv = [self.binary, "--progs", progs, "--logs", path, "--address", "127.0.0.1", "--port", str(port),
                "--logtostderr"]
        self.launch(argv, path, port)

    def done(self, lines, size, text, state):
        return samples(text, "mtail_log_lines_total") >= lines


# --- peers from Debian's packages --------------------------------------------


def debian_binary(work, package, path_in_package, command):
    """`command` from PATH, else extracted from the package's .deb."""
    found = shutil.which(command)
    if found:
        return found
    root = os.path.join(work, "peers", "root")
    target = os.path.join(root, path_in_package.lstrip("/"))
    if not os.path.exists(target):
        debs = os.path.join(work, "peers")
        os.makedirs(debs, exist_ok=True)
        r = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)
        if r.returncode != 0:
            log(f"note: cannot download {package} ({r.stderr.strip()}); skipped")
            return None
        for deb in os.listdir(debs):
            if deb.startswith(package + "_") and deb.endswith(".deb"):
                subprocess.run(["dpkg", "-x", os.path.join(debs, deb), root], check=True)
    return target if os.path.exists(target) else None


def mtail_program(work):
    for candidate in ["/usr/share/doc/mtail/examples/postfix.mtail",
                      os.path.join(work, "peers/root/usr/share/doc/mtail/examples/postfix.mtail")]:
        if os.path.exists(candidate):
            return candidate
        if os.path.exists(candidate + ".gz"):
            out = os.path.join(work, "peers", "postfix.mtail")
            with gzip.open(candidate + ".gz") as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
            return out
    return None


# --- the runs -----------------------------------------------------------------


def append(src, dst):
    """Appends the whole of `src` to `dst` in one go (copy_file_range)."""
    # copy_file_range refuses O_APPEND descriptors: write at the end by offset
    # (nothing else writes to the file).
    with open(src, "rb") as s, open(dst, "r+b") as d:
        left = os.fstat(s.fileno()).st_size
        src_at, dst_at = 0, os.fstat(d.fileno()).st_size
        cross_device = False
        while left > 0:
            try:
                n = os.copy_file_range(s.fileno(), d.fileno(), left, src_at, dst_at)
            except OSError as e:
                # Between file systems (the log on disk, the followed file
                # on a tmpfs) the kernel refuses: sendfile copies the same.
                if e.errno not in (errno.EXDEV, errno.EINVAL) or cross_device:
                    raise
                cross_device = True
                d.seek(dst_at)
                while left > 0:
                    n = os.sendfile(d.fileno(), s.fileno(), src_at, left)
                    if n == 0:
                        break
                    left, src_at = left - n, src_at + n
                break
            if n == 0:
                break
            left, src_at, dst_at = left - n, src_at + n, dst_at + n


def catch_up(tool, sources, lines, scrape_times=None):
    """Appends `sources` to the followed file and waits until `tool` has
    counted `lines`. Returns (wall seconds, CPU seconds, last scrape)."""
    pid = tool.proc.pid
    size = os.path.getsize(tool.path) + sum(os.path.getsize(s) for s in sources)
    cpu0 = cpu_seconds(pid)
    t0 = time.time()
    for source in sources:
        append(source, tool.path)
    state = {"changed": time.time()}
    while True:
        if tool.proc.poll() is not None:
            raise RuntimeError(f"{tool.name} exited with {tool.proc.returncode}")
        asked = time.time()
        _, text = get(tool.url())
        if scrape_times is not None:
            scrape_times.append(time.time() - asked)
        if tool.done(lines, size, text, state):
            end = state.get("end", time.time())
            return end - t0, cpu_seconds(pid) - cpu0, text
        if time.time() - t0 > 3600:
            raise RuntimeError(f"{tool.name} did not finish within an hour")
        if scrape_times is None:
            time.sleep(POLL)


def run_tool(tool, log_files, lines, truth, args, idle_seconds=0):
    """One run: start on an empty file, optionally measure idle, append, wait."""
    with tempfile.TemporaryDirectory(dir=args.follow_dir) as tmp:
        path = os.path.join(tmp, "mail.log")
        open(path, "w").close()
        tool.start(path, free_port())
        try:
            pid = tool.proc.pid
            result = {"idle_rss_kib": status_kib(pid, "VmRSS")}
            if idle_seconds:
                cpu0, switches0, t0 = cpu_seconds(pid), context_switches(pid), time.time()
                time.sleep(idle_seconds)
                elapsed = time.time() - t0
                result["idle_cpu_ms_per_s"] = (cpu_seconds(pid) - cpu0) * 1000 / elapsed
                result["idle_wakeups_per_s"] = (context_switches(pid) - switches0) / elapsed
            wall, cpu, text = catch_up(tool, log_files, lines)
            result.update(wall=wall, cpu=cpu, peak_rss_kib=status_kib(pid, "VmHWM"),
                          rss_after_kib=status_kib(pid, "VmRSS"), scrape=text)
            return result
        finally:
            tool.stop()


FLOOR = "wc -l (the floor)"


def run_once(argv):
    """Runs a command to its end: wall seconds, CPU seconds, peak RSS (KiB).

    The peak comes from GNU time when it is there: `ru_maxrss` of a child
    forked straight from this script starts at this script's own RSS (Linux
    carries the forked copy's high-water mark over the exec), which would
    hide a small tool's peak under Python's."""
    gnu_time = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
    report = None
    if gnu_time:
        fd, report = tempfile.mkstemp(suffix=".time")
        os.close(fd)
        argv = [gnu_time, "-o", report, "-f", "%M"] + argv
    t0 = time.time()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - t0
    if status != 0:
        raise RuntimeError(f"{argv} exited with {status}")
    peak = usage.ru_maxrss
    if report:
        with open(report) as f:
            peak = int(f.read().split()[-1])
        os.unlink(report)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_rss_kib": peak}


def run_floor(log_path):
    """`wc -l` on the same file (in the page cache): what moving the bytes
    costs. It reads a finished file rather than following one."""
    return dict(run_once(["wc", "-l", log_path]), counts="counts newlines only")


def check_counts(args, scrape, truth_path, log_path, repeat):
    with tempfile.NamedTemporaryFile("w", dir=args.workdir, suffix=".prom", delete=False) as f:
        f.write(scrape)
    try:
        r = subprocess.run([args.check, truth_path, f.name, log_path, "--repeat", str(repeat)],
                           capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    return r.returncode == 0, r.stdout.strip()


def generate(args, lines, seed=42):
    log_path = os.path.join(args.workdir, f"postfix-{lines}-{seed}.log")
    truth_path = log_path[:-4] + ".truth.json"
    if not (os.path.exists(log_path) and os.path.exists(truth_path)):
        log(f"generating {lines} lines with genlog.py (seed {seed}) …")
        subprocess.run([sys.executable, args.genlog, "--lines", str(lines), "--seed", str(seed), "--format",
                        "postfix", "--truth", truth_path + ".tmp", "-o", log_path + ".tmp"], check=True)
        os.rename(log_path + ".tmp", log_path)
        os.rename(truth_path + ".tmp", truth_path)
    with open(truth_path) as f:
        return log_path, truth_path, json.load(f)


def series_log(args, pairs=480):
    """Lines that make about `pairs` distinct reply series (and as many
    mta_smtp_reply_info series): Postfix rejects with distinct code pairs."""
    path = os.path.join(args.workdir, f"series-{pairs}.log")
    with open(path, "w") as f:
        n = 0
        for code in range(550, 560):
            for subject in range(0, 8):
                for detail in range(0, 999):
                    if n == pairs:
                        return path, n
                    f.write(f"Nov 28 00:00:00 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: "
                            f"{code} 5.{subject}.{detail} <u@example.org>: rejected; from=<s@example.net> "
                            f"to=<u@example.org> proto=ESMTP helo=<a>\n")
                    n += 1
                    if detail == 5:
                        break
    return path, n


# --- statistics and output ----------------------------------------------------


def spread(values, fmt):
    values = sorted(values)
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(values[0])}–{fmt(values[-1])})"


def k(x):
    return f"{x / 1000:,.0f}k" if x < 1e6 else f"{x / 1e6:.2f}M"


def mib(kib):
    return f"{kib / 1024:.1f}"


def secs(x):
    return f"{x:.2f}"


MUSL = "x86_64-unknown-linux-musl"


def build_exporter():
    """The binary users run: the static musl build the Dockerfile ships, as
    scripts/test.sh builds it; the host build when that target or musl-gcc
    is missing."""
    targets = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True).stdout
    if MUSL in targets.split() and shutil.which("musl-gcc"):
        log(f"cargo build --release --target {MUSL} (the static binary of the image) …")
        env = dict(os.environ, CC_x86_64_unknown_linux_musl="musl-gcc")
        subprocess.run(["cargo", "build", "--release", "--quiet", "--target", MUSL, "--bin", "mta_exporter"],
                       cwd=ROOT, check=True, env=env)
        return os.path.join(ROOT, "target", MUSL, "release", "mta_exporter")
    log(f"note: no {MUSL} target or musl-gcc: measuring the host build")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "mta_exporter"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "release", "mta_exporter")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=2_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--tools", default="mta_exporter,postfix_exporter,mtail")
    p.add_argument("--exporter", help="mta_exporter binary (default: build the static musl binary, as the image "
                   "ships it, or the host build without the musl target)")
    p.add_argument("--check", help="genlog_check binary (default: build the example)")
    p.add_argument("--workdir", default=os.path.join(ROOT, "target", "bench"))
    p.add_argument("--follow-dir", help="where the followed files are written (default: --workdir); the "
                   "20M-line scaling run writes 4.2 GB there, so a tmpfs such as /dev/shm may be the place")
    p.add_argument("--shared", default=os.environ.get("MTA_SHARED_DIR", os.path.join(ROOT, "..", "shared")))
    p.add_argument("--idle", type=float, default=10.0, help="idle seconds measured before the first run")
    p.add_argument("--scaling", default="", help="comma-separated line counts for mta_exporter alone")
    p.add_argument("--no-scrape", action="store_true", help="skip the 1000-series scrape run")
    p.add_argument("--no-report", action="store_true", help="skip `mta_exporter report`")
    p.add_argument("--no-floor", dest="floor", action="store_false", help="skip the `wc -l` floor")
    p.add_argument("--json", help="also write every figure to this file")
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    args.workdir = os.path.abspath(args.workdir)
    args.follow_dir = os.path.abspath(args.follow_dir or args.workdir)
    os.makedirs(args.follow_dir, exist_ok=True)
    args.genlog = os.path.join(args.shared, "bench", "genlog.py")
    if not os.path.exists(args.genlog):
        sys.exit(f"{args.genlog} not found: pass --shared DIR")

    if not args.check:
        log("cargo build --release --example genlog_check …")
        subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "genlog_check"], cwd=ROOT, check=True)
    if not args.exporter:
        args.exporter = build_exporter()
    args.exporter = os.path.abspath(args.exporter)
    args.check = os.path.abspath(args.check or os.path.join(ROOT, "target/release/examples/genlog_check"))
    log(f"mta_exporter: {args.exporter}")

    tools = []
    for name in args.tools.split(","):
        if name == "mta_exporter":
            tools.append(MtaExporter(args.workdir, args.exporter))
        elif name == "postfix_exporter":
            binary = debian_binary(args.workdir, "prometheus-postfix-exporter", "/usr/bin/prometheus-postfix-exporter",
                                   "prometheus-postfix-exporter")
            if binary:
                tools.append(PostfixExporter(args.workdir, binary))
        elif name == "mtail":
            binary = debian_binary(args.workdir, "mtail", "/usr/bin/mtail", "mtail")
            program = mtail_program(args.workdir) if binary else None
            if binary and program:
                tools.append(Mtail(args.workdir, binary, program))
            elif binary:
                log("note: mtail's postfix.mtail example not found; mtail skipped")
        else:
            sys.exit(f"unknown tool {name}")

    log_path, truth_path, truth = generate(args, args.lines)
    lines = truth["lines"]
    local = truth["by_role"].get("local", 0)
    remote = truth["by_role"].get("remote", 0)
    log(f"log: {lines:,} lines, {os.path.getsize(log_path) / 1e6:.0f} MB; "
        f"reply codes: {local:,} local, {remote:,} remote, {truth['by_role'].get('other', 0):,} other")
    # Into the page cache, as for every run.
    with open(log_path, "rb") as f:
        while f.read(1 << 24):
            pass

    results = {"lines": lines, "bytes": os.path.getsize(log_path), "runs": args.runs, "tools": {}}
    failed = False
    for run in range(args.runs):
        for tool in tools:
            log(f"run {run + 1}/{args.runs}: {tool.name} …")
            idle = args.idle if run == 0 else 0
            r = run_tool(tool, [log_path], lines, truth, args, idle_seconds=idle)
            scrape = r.pop("scrape")
            if isinstance(tool, MtaExporter):
                ok, detail = check_counts(args, scrape, truth_path, log_path, 1)
                r["counts"] = "every counter equals the truth file" if ok else "DIFFERS: " + detail
                failed |= not ok
            else:
                got = tool.replies_counted(scrape, truth)
                r["counts"] = (f"{got:,.0f} reply codes counted of {local + remote + truth['by_role'].get('other', 0):,} "
                               f"({got / local:.0%} of the {local:,} local rejects, none of the {remote:,} remote replies)")
            log(f"  {lines / r['wall']:,.0f} lines/s, {r['cpu']:.2f} CPU s, peak RSS {mib(r['peak_rss_kib'])} MiB; "
                f"{r['counts']}")
            results["tools"].setdefault(tool.name, []).append(r)
        if args.floor:
            r = run_floor(log_path)
            log(f"run {run + 1}/{args.runs}: wc -l: {lines / r['wall']:,.0f} lines/s, {r['cpu']:.2f} CPU s")
            results["tools"].setdefault(FLOOR, []).append(r)

    def med(name, key):
        return statistics.median(r[key] for r in results["tools"][name])

    print()
    print(f"{lines:,} Postfix lines ({results['bytes'] / 1e6:.0f} MB, genlog.py --seed 42) appended in one go "
          f"to a followed file; median (min–max) of {args.runs} runs")
    print()
    print("| tool | lines/s | lines per CPU-second | CPU s | peak RSS MiB | RSS after MiB | idle RSS MiB | "
          "idle CPU ms/s | idle wake-ups/s | counts |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, runs in results["tools"].items():
        first = runs[0]
        idle = ("| — | — | — " if name == FLOOR else
                f"| {mib(first['idle_rss_kib'])} "
                f"| {first.get('idle_cpu_ms_per_s', float('nan')):.2f} "
                f"| {first.get('idle_wakeups_per_s', float('nan')):.1f} ")
        print(f"| {name} | {spread([lines / r['wall'] for r in runs], k)} "
              f"| {spread([lines / r['cpu'] for r in runs], k)} "
              f"| {spread([r['cpu'] for r in runs], secs)} "
              f"| {spread([r['peak_rss_kib'] for r in runs], mib)} "
              f"| {spread([r['rss_after_kib'] for r in runs], mib) if 'rss_after_kib' in first else '—'} "
              f"{idle}| {runs[-1]['counts']} |")
    if "mta_exporter" in results["tools"]:
        print()
        base_wall = lines / med("mta_exporter", "wall")
        base_cpu = lines / med("mta_exporter", "cpu")
        for name in results["tools"]:
            if name == "mta_exporter":
                continue
            if name == FLOOR:
                print(f"mta_exporter reads at {base_wall / (lines / med(name, 'wall')):.0%} of the speed of `wc -l` "
                      f"and spends {med('mta_exporter', 'cpu') / med(name, 'cpu'):.0f}× its CPU time")
                continue
            ratio_wall = base_wall / (lines / med(name, "wall"))
            ratio_cpu = base_cpu / (lines / med(name, "cpu"))
            ratio_rss = med(name, "peak_rss_kib") / med("mta_exporter", "peak_rss_kib")
            results.setdefault("ratios", {})[name] = {"lines_per_s": ratio_wall, "lines_per_cpu_s": ratio_cpu,
                                                      "peak_rss": ratio_rss}
            print(f"mta_exporter vs {name}: {ratio_wall:.1f}× the lines/s, {ratio_cpu:.1f}× the lines per "
                  f"CPU-second, {ratio_rss:.1f}× less peak memory")

    exporter = MtaExporter(args.workdir, args.exporter) if "mta_exporter" in results["tools"] else None

    if exporter and not args.no_scrape:
        series_path, pairs = series_log(args)
        scrape_runs = []
        for run in range(args.runs):
            log(f"scrape run {run + 1}/{args.runs}: ~1000 series, scraped continuously while catching up …")
            with tempfile.TemporaryDirectory(dir=args.follow_dir) as tmp:
                path = os.path.join(tmp, "mail.log")
                open(path, "w").close()
                exporter.start(path, free_port())
                try:
                    catch_up(exporter, [series_path], pairs)
                    _, text = get(exporter.url())
                    series = series_count(text)
                    times = []
                    wall, cpu, text = catch_up(exporter, [log_path], pairs + lines, scrape_times=times)
                    times.sort()
                    # The same scrape with nothing to read: its own cost.
                    idle_times = []
                    for _ in range(50):
                        asked = time.time()
                        get(exporter.url())
                        idle_times.append(time.time() - asked)
                    scrape_runs.append({"series": series, "scrapes": len(times), "wall": wall, "cpu": cpu,
                                        "p50_ms": statistics.median(times) * 1000,
                                        "p99_ms": times[int(len(times) * 0.99)] * 1000, "max_ms": times[-1] * 1000,
                                        "idle_p50_ms": statistics.median(idle_times) * 1000,
                                        "idle_max_ms": max(idle_times) * 1000})
                finally:
                    exporter.stop()
        results["scrape"] = scrape_runs
        print()
        print(f"Scrape: {scrape_runs[0]['series']} series, scraped back to back (one client) while catching up on "
              f"the same log, then 50 times with nothing to read; median (min–max) of {args.runs} runs")
        print()
        print("| scrapes | latency p50 ms | p99 ms | max ms | catch-up lines/s while scraped | idle scrape p50 ms "
              "| idle max ms |")
        print("|---|---|---|---|---|---|---|")
        print(f"| {spread([r['scrapes'] for r in scrape_runs], lambda x: f'{x:.0f}')} "
              f"| {spread([r['p50_ms'] for r in scrape_runs], lambda x: f'{x:.2f}')} "
              f"| {spread([r['p99_ms'] for r in scrape_runs], lambda x: f'{x:.2f}')} "
              f"| {spread([r['max_ms'] for r in scrape_runs], lambda x: f'{x:.1f}')} "
              f"| {spread([lines / r['wall'] for r in scrape_runs], k)} "
              f"| {spread([r['idle_p50_ms'] for r in scrape_runs], lambda x: f'{x:.2f}')} "
              f"| {spread([r['idle_max_ms'] for r in scrape_runs], lambda x: f'{x:.1f}')} |")

    if exporter and not args.no_report:
        report_runs = []
        for run in range(args.runs):
            log(f"report run {run + 1}/{args.runs} …")
            report_runs.append(run_once([args.exporter, "report", "--output", "json", log_path]))
        results["report"] = report_runs
        print()
        print(f"`mta_exporter report` on the same file, one pass; median (min–max) of {args.runs} runs")
        print()
        print("| lines/s | lines per CPU-second | CPU s | peak RSS MiB |")
        print("|---|---|---|---|")
        print(f"| {spread([lines / r['wall'] for r in report_runs], k)} "
              f"| {spread([lines / r['cpu'] for r in report_runs], k)} "
              f"| {spread([r['cpu'] for r in report_runs], secs)} "
              f"| {spread([r['peak_rss_kib'] for r in report_runs], mib)} |")

    if exporter and args.scaling:
        scaling = []
        for size in [int(s) for s in args.scaling.split(",")]:
            # Sizes above the generated log are whole copies of it.
            copies = max(1, size // lines) if size > lines else 1
            path, tpath, _ = generate(args, size if size <= lines else lines)
            size_lines = (size if size <= lines else lines) * copies
            runs = []
            for run in range(args.runs):
                log(f"scaling {size_lines:,} lines, run {run + 1}/{args.runs} …")
                r = run_tool(exporter, [path] * copies, size_lines, None, args)
                ok, detail = check_counts(args, r.pop("scrape"), tpath, path, copies)
                failed |= not ok
                r["counts"] = "ok" if ok else "DIFFERS: " + detail
                runs.append(r)
            scaling.append({"lines": size_lines, "runs": runs})
        results["scaling"] = scaling
        print()
        print(f"Cost per line against the length of the file; median (min–max) of {args.runs} runs")
        print()
        print("| lines | lines/s | lines per CPU-second | peak RSS MiB | counts |")
        print("|---|---|---|---|---|")
        for entry in scaling:
            runs = entry["runs"]
            n = entry["lines"]
            print(f"| {n:,} | {spread([n / r['wall'] for r in runs], k)} | {spread([n / r['cpu'] for r in runs], k)} "
                  f"| {spread([r['peak_rss_kib'] for r in runs], mib)} | {runs[-1]['counts']} |")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if failed:
        sys.exit("mta_exporter's counts differ from the truth file")


if __name__ == "__main__":
    main()
