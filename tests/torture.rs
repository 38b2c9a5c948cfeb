//! The torture test: a writer appends N numbered lines as fast as it can
//! while a rotator rotates the file M times at random moments with a mix of
//! styles (rename with the writer reopening late, rename + create,
//! delete + recreate, copytruncate); at the end every line number has been
//! read exactly once. A second run restarts the tailer in the middle from
//! its checkpoints, with a rotation while it is stopped.
//!
//! Small N here; `scripts/torture.sh` runs it with N = 1,000,000 and M = 50
//! (`TORTURE_LINES`, `TORTURE_ROTATIONS`, `TORTURE_SEED` set the figures).
//!
//! What the rotator waits for, and why: before each rotation it waits until
//! the tailer has seen the previous one and opened the live file. A file
//! that is created and rotated away again before any reader looked at it
//! cannot be found by anyone (logrotate rotates once a day; this only keeps
//! the test honest about what "exactly once" can mean).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mta_exporter::framing::FramedLine;
use mta_exporter::source::file::{FileTailer, StartAt, TailOptions, Target};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A small xorshift generator: reproducible from the seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// Rename; the writer keeps writing to the renamed file for a while,
    /// then reopens the path (creating it).
    RenameLateReopen,
    /// Rename and create a new file at once; the writer reopens a bit later.
    RenameCreate,
    /// Delete; the writer keeps writing to the deleted file, then recreates it.
    DeleteRecreate,
    /// Copy then truncate in place, with the writer paused between lines.
    Copytruncate,
}

const STYLES: [Style; 4] = [Style::RenameLateReopen, Style::RenameCreate, Style::DeleteRecreate, Style::Copytruncate];
/// The restart run leaves delete + recreate out: a deleted file that was
/// still being drained at the stop cannot be opened again after it, and its
/// inode number is soon reused (see the README's limits).
const RESTART_STYLES: [Style; 3] = [Style::RenameLateReopen, Style::RenameCreate, Style::Copytruncate];

struct WriterState {
    file: File,
    /// Lines still to write to the old file before reopening the path.
    reopen_in: Option<u64>,
}

struct Shared {
    log: PathBuf,
    writer: Mutex<WriterState>,
    written: AtomicU64,
    writer_done: AtomicBool,
    rotations_done: AtomicUsize,
    rotations_seen: AtomicUsize,
    /// Inodes of the files the tailer holds open, with the offsets read.
    tailer_inodes: Mutex<Vec<(u64, u64)>>,
    /// The tailer is stopped (restart run): the rotator does one rotation now.
    tailer_down: AtomicBool,
    rotated_while_down: AtomicBool,
    /// Line numbers at which the rotations happen (random, sorted).
    schedule: Vec<u64>,
    /// The rotation styles to pick from.
    styles: &'static [Style],
    /// The writer waits for a rotation that is due (see `writer`).
    writer_waiting: AtomicBool,
    /// Held by the rotator while it checks and rotates, and by the reader
    /// while it decides to stop: a rotation between "the tailer has seen
    /// everything" and the stop would rotate away a file no checkpoint
    /// names, which no restart can find.
    gate: Mutex<()>,
    /// What happened, for the diagnosis of a hang: rotations done (style,
    /// at line) and seen (kind, path, at line).
    history: Mutex<Vec<String>>,
}

/// How far the writer may run past a due rotation before it waits for it:
/// it keeps writing while the rotation happens, but cannot finish before
/// every rotation has happened.
const SLACK: u64 = 2_000;

fn open_append(path: &Path) -> File {
    OpenOptions::new().create(true).append(true).open(path).expect("open log")
}

fn writer(shared: &Shared, lines: u64, seed: u64) {
    let mut rng = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut batch = String::with_capacity(64 * 1024);
    let mut next = 0u64;
    while next < lines {
        let done = shared.rotations_done.load(Ordering::Acquire);
        // A writer that still has to reopen the log is never held up.
        let reopening = shared.writer.lock().unwrap().reopen_in.is_some();
        if !reopening && shared.schedule.get(done).is_some_and(|&at| next >= at + SLACK) {
            shared.writer_waiting.store(true, Ordering::Release);
            std::thread::yield_now();
            continue;
        }
        shared.writer_waiting.store(false, Ordering::Release);
        batch.clear();
        let count = (1 + rng.below(32)).min(lines - next);
        for i in next..next + count {
            let pad = rng.below(80) as usize;
            batch.push_str(&format!("seq {i:010} {:-<pad$}\n", ""));
        }
        let mut state = shared.writer.lock().unwrap();
        state.file.write_all(batch.as_bytes()).expect("write");
        if let Some(left) = state.reopen_in {
            if left <= count {
                state.file = open_append(&shared.log);
                state.reopen_in = None;
            } else {
                state.reopen_in = Some(left - count);
            }
        }
        drop(state);
        next += count;
        shared.written.store(next, Ordering::Release);
    }
    shared.writer_done.store(true, Ordering::Release);
}

fn caught_up(shared: &Shared) -> bool {
    let Ok(meta) = fs::metadata(&shared.log) else { return false };
    shared.rotations_seen.load(Ordering::Acquire) >= shared.rotations_done.load(Ordering::Acquire)
        // The tailer has read some of the live file: a copytruncate of a file
        // nobody has read from yet leaves nothing to recognise the copy by.
        && shared.tailer_inodes.lock().unwrap().iter().any(|&(ino, offset)| ino == meta.ino() && (offset > 0 || meta.len() == 0))
        && shared.writer.lock().unwrap().reopen_in.is_none()
}

fn rotate(shared: &Shared, style: Style, k: usize, rng: &mut Rng) {
    let rotated = shared.log.with_file_name(format!("mail.log.{k}"));
    let mut state = shared.writer.lock().unwrap();
    match style {
        Style::RenameLateReopen => {
            fs::rename(&shared.log, &rotated).expect("rename");
            state.reopen_in = Some(1 + rng.below(300));
        }
        Style::RenameCreate => {
            fs::rename(&shared.log, &rotated).expect("rename");
            File::create(&shared.log).expect("create");
            state.reopen_in = Some(1 + rng.below(300));
        }
        Style::DeleteRecreate => {
            fs::remove_file(&shared.log).expect("delete");
            state.reopen_in = Some(1 + rng.below(300));
        }
        Style::Copytruncate => {
            fs::copy(&shared.log, &rotated).expect("copy");
            File::options().write(true).open(&shared.log).expect("open").set_len(0).expect("truncate");
        }
    }
    drop(state);
    let written = shared.written.load(Ordering::Acquire);
    let down = shared.tailer_down.load(Ordering::Acquire);
    shared.history.lock().unwrap().push(format!("done {k} {style:?} at {written} down={down}"));
    shared.rotations_done.fetch_add(1, Ordering::AcqRel);
}

fn schedule(rotations: usize, lines: u64, seed: u64) -> Vec<u64> {
    let mut rng = Rng(seed ^ 0xABCD);
    let mut points: Vec<u64> = (0..rotations).map(|_| rng.below(lines.saturating_sub(SLACK).max(1))).collect();
    points.sort_unstable();
    points
}

fn rotator(shared: &Shared, seed: u64) {
    let mut rng = Rng(seed);
    for (i, &at) in shared.schedule.iter().enumerate() {
        let k = i + 1;
        loop {
            if shared.writer_done.load(Ordering::Acquire) {
                return;
            }
            let down = shared.tailer_down.load(Ordering::Acquire);
            if down
                && !shared.rotated_while_down.load(Ordering::Acquire)
                && shared.writer.lock().unwrap().reopen_in.is_none()
            {
                // A rotation while the exporter is stopped: rename or copytruncate.
                let style = if rng.below(2) == 0 { Style::RenameLateReopen } else { Style::Copytruncate };
                rotate(shared, style, k, &mut rng);
                shared.rotated_while_down.store(true, Ordering::Release);
                break;
            }
            if !down && shared.written.load(Ordering::Acquire) >= at {
                let _gate = shared.gate.lock().unwrap();
                if !shared.tailer_down.load(Ordering::Acquire) && caught_up(shared) {
                    let style = shared.styles[rng.below(shared.styles.len() as u64) as usize];
                    rotate(shared, style, k, &mut rng);
                    break;
                }
            }
            std::thread::yield_now();
        }
    }
}

fn seq_of(line: &[u8]) -> Option<usize> {
    let digits = line.strip_prefix(b"seq ")?.get(..10)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

struct Outcome {
    counts: Vec<u8>,
    bad_lines: u64,
    rotations: usize,
}

fn run(lines: u64, rotations: usize, seed: u64, restart: bool) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("mail.log");
    let shared = Arc::new(Shared {
        log: log.clone(),
        writer: Mutex::new(WriterState { file: open_append(&log), reopen_in: None }),
        written: AtomicU64::new(0),
        writer_done: AtomicBool::new(false),
        rotations_done: AtomicUsize::new(0),
        rotations_seen: AtomicUsize::new(0),
        tailer_inodes: Mutex::new(Vec::new()),
        tailer_down: AtomicBool::new(false),
        rotated_while_down: AtomicBool::new(false),
        schedule: schedule(rotations, lines, seed),
        styles: if restart { &RESTART_STYLES } else { &STYLES },
        writer_waiting: AtomicBool::new(false),
        gate: Mutex::new(()),
        history: Mutex::new(Vec::new()),
    });
    let mut options = TailOptions::new(StartAt::Beginning, 64 * 1024);
    // Generous: a writer that stalls this long on a busy machine would make
    // a rotated file look finished.
    options.rotate_wait = Duration::from_secs(30);
    let new_tailer = |checkpoints: Option<Vec<_>>| {
        let tailer = FileTailer::new(Target::new(&log).expect("target"), options);
        match checkpoints {
            Some(cps) => tailer.with_checkpoints(cps, true),
            None => tailer,
        }
    };
    let mut tailer = new_tailer(None);
    let mut counts = vec![0u8; lines as usize];
    let mut bad_lines = 0u64;

    let writer_thread = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || writer(&shared, lines, seed))
    };
    let rotator_thread = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || rotator(&shared, seed))
    };

    let mut restarted = !restart;
    let mut idle_polls_after_done = 0;
    let mut progress = (0, 0, Instant::now());
    loop {
        // A hang is a failure with a diagnosis, not a CI timeout.
        let now_progress = (shared.written.load(Ordering::Acquire), shared.rotations_done.load(Ordering::Acquire));
        if (now_progress.0, now_progress.1) != (progress.0, progress.1) {
            progress = (now_progress.0, now_progress.1, Instant::now());
        } else if progress.2.elapsed() > Duration::from_secs(60) {
            let live = fs::metadata(&log).map(|m| m.ino()).ok();
            panic!(
                "no progress for 60 s: written={} rotations done={} seen={} live inode={live:?} tailer inodes={:?} reopen_in={:?} down={}\n{}",
                now_progress.0,
                now_progress.1,
                shared.rotations_seen.load(Ordering::Acquire),
                shared.tailer_inodes.lock().unwrap(),
                shared.writer.lock().unwrap().reopen_in,
                shared.tailer_down.load(Ordering::Acquire),
                shared.history.lock().unwrap().join("\n"),
            );
        }
        let mut sink = |line: FramedLine<'_>| match seq_of(line.bytes) {
            Some(n) if n < counts.len() => counts[n] = counts[n].saturating_add(1),
            _ => bad_lines += 1,
        };
        // Stopping is only fair once no writer writes to a deleted file any
        // more and the tailer has read it: nobody can read it after a restart.
        // The gate keeps the rotator still from that check to the stop.
        let may_stop = !restarted && shared.written.load(Ordering::Acquire) >= lines / 2;
        let gate = may_stop.then(|| shared.gate.lock().unwrap());
        let quiet = caught_up(&shared);
        let report = tailer.poll(Instant::now(), &mut sink);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        shared.rotations_seen.fetch_add(report.rotations.len(), Ordering::AcqRel);
        for r in &report.rotations {
            let written = shared.written.load(Ordering::Acquire);
            shared.history.lock().unwrap().push(format!("seen {:?} {} at {written}", r.kind, r.path.display()));
        }
        *shared.tailer_inodes.lock().unwrap() = tailer.checkpoints().iter().map(|c| (c.ino, c.offset)).collect();

        if may_stop && quiet {
            // Stop: keep only the checkpoints, as the positions file would.
            let checkpoints = tailer.checkpoints();
            drop(tailer);
            shared.tailer_down.store(true, Ordering::Release);
            shared.history.lock().unwrap().push(format!("stopped at {}", shared.written.load(Ordering::Acquire)));
            drop(gate);
            let resume_at = (shared.written.load(Ordering::Acquire) + lines / 10).min(lines);
            while !(shared.writer_done.load(Ordering::Acquire)
                || shared.rotated_while_down.load(Ordering::Acquire)
                    && (shared.written.load(Ordering::Acquire) >= resume_at
                        || shared.writer_waiting.load(Ordering::Acquire)))
            {
                std::thread::yield_now();
            }
            tailer = new_tailer(Some(checkpoints));
            shared.tailer_down.store(false, Ordering::Release);
            restarted = true;
            shared.history.lock().unwrap().push(format!("restarted at {}", shared.written.load(Ordering::Acquire)));
            continue;
        }
        drop(gate);
        if shared.writer_done.load(Ordering::Acquire) && report.bytes == 0 && !report.more {
            idle_polls_after_done += 1;
            if idle_polls_after_done >= 3 {
                break;
            }
        } else {
            idle_polls_after_done = 0;
        }
        if report.bytes == 0 {
            std::thread::yield_now();
        }
    }
    writer_thread.join().expect("writer");
    rotator_thread.join().expect("rotator");
    // Let every rotated file go: their last lines are handed out.
    let mut sink = |line: FramedLine<'_>| match seq_of(line.bytes) {
        Some(n) if n < counts.len() => counts[n] = counts[n].saturating_add(1),
        _ => bad_lines += 1,
    };
    tailer.poll(Instant::now() + Duration::from_secs(3600), &mut sink);
    let rotations = shared.rotations_done.load(Ordering::Acquire);
    Outcome { counts, bad_lines, rotations }
}

fn check(outcome: &Outcome, lines: u64, label: &str) {
    let missing: Vec<usize> = outcome.counts.iter().enumerate().filter(|(_, c)| **c == 0).map(|(i, _)| i).collect();
    let doubled: Vec<usize> = outcome.counts.iter().enumerate().filter(|(_, c)| **c > 1).map(|(i, _)| i).collect();
    let read: u64 = outcome.counts.iter().map(|c| u64::from(*c)).sum();
    println!(
        "torture {label}: lines={lines} rotations={} read={read} missing={} doubled={} malformed={}",
        outcome.rotations,
        missing.len(),
        doubled.len(),
        outcome.bad_lines
    );
    assert_eq!(outcome.bad_lines, 0, "{label}: malformed lines (a line read from the middle)");
    assert!(
        missing.is_empty(),
        "{label}: {} lines never read, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        doubled.is_empty(),
        "{label}: {} lines read twice, first {:?}",
        doubled.len(),
        &doubled[..doubled.len().min(10)]
    );
    assert_eq!(read, lines);
}

#[test]
fn every_line_exactly_once_across_random_rotations() {
    let lines = env_or("TORTURE_LINES", 100_000);
    let rotations = env_or("TORTURE_ROTATIONS", 20) as usize;
    let seed = env_or("TORTURE_SEED", 0x5EED_2026);
    let outcome = run(lines, rotations, seed, false);
    assert_eq!(outcome.rotations, rotations, "every rotation happened");
    check(&outcome, lines, "continuous");
}

#[test]
fn every_line_exactly_once_with_a_restart_from_checkpoints() {
    let lines = env_or("TORTURE_LINES", 100_000);
    let rotations = env_or("TORTURE_ROTATIONS", 20) as usize;
    let seed = env_or("TORTURE_SEED", 0x5EED_2026) ^ 1;
    let outcome = run(lines, rotations, seed, true);
    assert!(outcome.rotations >= 1);
    check(&outcome, lines, "restart");
}
