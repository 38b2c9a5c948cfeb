//! Following log files by path or glob, across every kind of rotation.
//!
//! Contract (each sentence has a test below, in `tests/rotation.rs` or in
//! `tests/torture.rs`):
//! - A target is one path or a glob (`*`, `?`, `[…]`). A glob is expanded
//!   again at most every `rescan_interval`: a path that starts to match is
//!   followed, a path that stops matching is let go like a vanished file.
//! - The first time a file is opened in the first poll, reading starts at its
//!   end, or at its beginning when asked; if the file ends in the middle of a
//!   line, reading starts at that line's beginning so the line is read whole.
//!   Every file opened later (it appeared while we ran) is read from offset 0.
//! - Appends are read as they come; a partial last line is held until its
//!   newline arrives. A line longer than `max_line_bytes` is handed out cut
//!   (marked truncated), and the rest of it is skipped.
//! - A file is identified by device + inode plus a fingerprint of its first
//!   bytes (up to 128), so a recycled inode is not mistaken for the old file.
//! - Rotation means the path now names another file or nothing (rename +
//!   create, delete + recreate, a symlink swapped to a new target, a pod log
//!   renamed behind a `/var/log/containers` symlink). The old file is read to
//!   its end and kept open: whatever is still written to it (logrotate's
//!   `delaycompress`, a writer that reopens late) is read until it has been
//!   idle for `rotate_wait`; then its last line is handed out even without a
//!   newline and it is let go. The new file is read from offset 0.
//! - A file that moves to another path the target also matches is not read
//!   again: the new path continues where the old one was.
//! - Truncation means the file is shorter than what was read, or its first
//!   bytes changed (truncated and written again before we looked). If a copy
//!   of the old content lies next to it (`copytruncate`: same first bytes,
//!   same bytes before our offset), the part we had not read yet is read from
//!   the copy; then the held partial line is handed out and reading restarts
//!   at offset 0. A file this tailer read itself (a rotated one) is never
//!   taken for a copy, however alike their bytes.
//! - A path that does not exist is waited for, never an error.
//! - A named pipe (FIFO) is read like a file, without offsets: it is opened
//!   without blocking and read until it has no data.
//! - Checkpoints: [`FileTailer::checkpoints`] gives each open file's identity
//!   and the offset after its last complete line; a tailer created with them
//!   continues each file at its offset, reads a checkpointed file that was
//!   rotated away while we were stopped to its end wherever it now lies in the
//!   same directory, and reads every other file it finds from offset 0 (it
//!   appeared while we were stopped).
//!
//! [`FileTailer::poll`] does one round of this and never sleeps; the caller
//! passes the time and decides when to poll (a file event, a timer, or a
//! test), so tests drive it deterministically.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::framing::{FramedLine, LineFramer};

/// Bytes of a file's beginning that identify it together with its inode.
pub const FINGERPRINT_BYTES: usize = 128;
/// Bytes before the read offset kept to check a `copytruncate` copy.
const TAIL_BYTES: usize = 64;
/// Bytes read per poll at most, so one huge backlog does not starve the
/// other files or delay a shutdown; [`PollReport::more`] asks for another poll.
pub const READ_BUDGET: u64 = 8 * 1024 * 1024;

/// Where the first read of a file starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    End,
}

/// How a file stopped being the one its path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RotationKind {
    /// Renamed away (logrotate's default, kubelet's pod log rotation).
    Rename,
    /// Deleted (and usually created again).
    Delete,
    /// The path is a symlink that now points elsewhere (Kubernetes `..data`).
    Symlink,
    /// Truncated in place, with a copy of the old content next to it.
    Copytruncate,
    /// Truncated in place, no copy found (`: > file`).
    Truncate,
}

impl RotationKind {
    pub const ALL: [RotationKind; 5] = [
        RotationKind::Rename,
        RotationKind::Delete,
        RotationKind::Symlink,
        RotationKind::Copytruncate,
        RotationKind::Truncate,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RotationKind::Rename => "rename",
            RotationKind::Delete => "delete",
            RotationKind::Symlink => "symlink",
            RotationKind::Copytruncate => "copytruncate",
            RotationKind::Truncate => "truncate",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a file source follows: one path, or every path a glob matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Path(PathBuf),
    Glob(String),
}

impl Target {
    /// A path with a glob character in it is a glob.
    pub fn new(path: &Path) -> Result<Target, String> {
        let text = path.to_string_lossy();
        if !text.contains(['*', '?', '[']) {
            return Ok(Target::Path(path.to_path_buf()));
        }
        glob::Pattern::new(&text).map_err(|e| format!("{text:?} is not a valid glob: {e}"))?;
        Ok(Target::Glob(text.into_owned()))
    }

    /// The directory that holds every match (the part before the first glob
    /// character), watched so that new matches are seen.
    pub fn base_dir(&self) -> PathBuf {
        match self {
            Target::Path(path) => parent_dir(path),
            Target::Glob(text) => {
                let literal: PathBuf = Path::new(text)
                    .components()
                    .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
                    .collect();
                if literal.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    literal
                }
            }
        }
    }

    pub fn display(&self) -> String {
        match self {
            Target::Path(path) => path.display().to_string(),
            Target::Glob(text) => text.clone(),
        }
    }
}

/// Settings of one tailer.
#[derive(Clone, Copy, Debug)]
pub struct TailOptions {
    pub start: StartAt,
    pub max_line_bytes: usize,
    /// How long a rotated file is still read after it stopped growing.
    pub rotate_wait: Duration,
    /// How often a glob is expanded again.
    pub rescan_interval: Duration,
}

impl TailOptions {
    pub fn new(start: StartAt, max_line_bytes: usize) -> Self {
        TailOptions {
            start,
            max_line_bytes,
            rotate_wait: Duration::from_secs(5),
            rescan_interval: Duration::from_secs(1),
        }
    }
}

/// A file's identity and the offset after its last complete line, as the
/// positions file stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The path the file was found under.
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    /// The file's first bytes (up to [`FINGERPRINT_BYTES`]).
    pub head: Vec<u8>,
    /// The bytes just before `offset` (up to 64).
    pub tail: Vec<u8>,
    /// The file was already rotated away (being drained) when saved.
    pub rotated: bool,
}

/// A rotation seen by a poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub path: PathBuf,
    pub kind: RotationKind,
    /// Bytes read from a `copytruncate` copy that the live file no longer had.
    pub recovered: u64,
}

/// What a poll found, besides the lines it handed out.
#[derive(Debug, Default)]
pub struct PollReport {
    pub bytes: u64,
    /// No path of the target names a file.
    pub waiting: bool,
    pub rotations: Vec<Rotation>,
    /// Files held open (followed, and rotated ones still being drained).
    pub open_files: usize,
    /// Bytes in the open files not read yet.
    pub lag_bytes: u64,
    /// The read budget ran out: poll again at once.
    pub more: bool,
    pub errors: Vec<(PathBuf, io::Error)>,
    /// Checkpointed files that could not be found again at the first poll.
    pub lost: Vec<Checkpoint>,
}

impl PollReport {
    pub fn rotation_count(&self, kind: RotationKind) -> usize {
        self.rotations.iter().filter(|r| r.kind == kind).count()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &fs::Metadata) -> Self {
        FileId { dev: meta.dev(), ino: meta.ino() }
    }
}

/// The last bytes read, to recognise the same content in a copy.
#[derive(Debug, Clone, Copy)]
struct Tail {
    bytes: [u8; TAIL_BYTES],
    len: usize,
}

impl Tail {
    fn empty() -> Self {
        Tail { bytes: [0; TAIL_BYTES], len: 0 }
    }

    fn from_slice(data: &[u8]) -> Self {
        let mut tail = Tail::empty();
        tail.push(data);
        tail
    }

    fn push(&mut self, data: &[u8]) {
        if data.len() >= TAIL_BYTES {
            self.bytes.copy_from_slice(&data[data.len() - TAIL_BYTES..]);
            self.len = TAIL_BYTES;
            return;
        }
        let keep = (TAIL_BYTES - data.len()).min(self.len);
        self.bytes.copy_within(self.len - keep..self.len, 0);
        self.bytes[keep..keep + data.len()].copy_from_slice(data);
        self.len = keep + data.len();
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[derive(Debug)]
struct OpenFile {
    file: File,
    id: FileId,
    fifo: bool,
    /// The file's first bytes; grows with the file up to FINGERPRINT_BYTES.
    head: Vec<u8>,
    /// Bytes read so far; the framer may hold the last ones as a partial line.
    offset: u64,
    tail: Tail,
    /// The path it was opened under.
    path: PathBuf,
    /// That path with every symlink resolved, when it was opened.
    resolved: PathBuf,
    framer: LineFramer,
    /// Size at the last check, for the lag.
    size: u64,
    /// Modification time (seconds, nanoseconds) at the last check that found
    /// the file intact: a `copytruncate` copy of data we have not read yet
    /// was made after it.
    intact_mtime: Option<(i64, i64)>,
}

impl OpenFile {
    fn open(path: &Path, max_line: usize) -> io::Result<Option<OpenFile>> {
        // O_NONBLOCK: opening a FIFO for reading must not wait for a writer;
        // it changes nothing for regular files.
        let file = match OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "is a directory, not a log file"));
        }
        let fifo = meta.file_type().is_fifo();
        let mut open = OpenFile {
            file,
            id: FileId::of(&meta),
            fifo,
            head: Vec::new(),
            offset: 0,
            tail: Tail::empty(),
            path: path.to_path_buf(),
            resolved: fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            framer: LineFramer::new(max_line),
            size: meta.len(),
            intact_mtime: None,
        };
        if !fifo {
            open.head = read_head(&open.file, meta.len())?;
        }
        Ok(Some(open))
    }

    fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        if !self.fifo {
            self.file.seek(SeekFrom::Start(offset))?;
            self.offset = offset;
            self.tail = if offset == 0 { Tail::empty() } else { Tail::from_slice(&read_before(&self.file, offset)?) };
        }
        self.framer.reset();
        Ok(())
    }

    /// Whether the content under our offset is gone or was replaced; keeps
    /// the fingerprint growing with the file.
    fn truncated(&mut self) -> io::Result<bool> {
        if self.fifo {
            return Ok(false);
        }
        let meta = self.file.metadata()?;
        let len = meta.len();
        self.size = len;
        if len < self.offset || len < self.head.len() as u64 {
            return Ok(true);
        }
        let head = read_head(&self.file, len)?;
        if !head.starts_with(&self.head) {
            return Ok(true);
        }
        self.head = head;
        self.intact_mtime = Some((meta.mtime(), meta.mtime_nsec()));
        Ok(false)
    }

    /// Reads what is there, within `budget`; returns the bytes read and
    /// whether the budget ran out first.
    fn read_available(&mut self, budget: &mut u64, on_line: &mut dyn FnMut(FramedLine<'_>)) -> io::Result<(u64, bool)> {
        let mut total = 0;
        loop {
            if *budget == 0 {
                return Ok((total, true));
            }
            let n = match self.framer.fill(&mut self.file) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok((total, false));
            }
            self.tail.push(self.framer.last_read(n));
            self.grow_head(n);
            self.offset += n as u64;
            total += n as u64;
            *budget = budget.saturating_sub(n as u64);
            self.framer.drain(&mut *on_line);
        }
    }

    /// The fingerprint grows with what is read from the file's start: a
    /// file that was empty when opened must not stay without one, or a
    /// truncation could not be told from an append.
    fn grow_head(&mut self, n: usize) {
        let known = self.head.len() as u64;
        if self.fifo || known >= FINGERPRINT_BYTES as u64 || self.offset > known || known >= self.offset + n as u64 {
            return;
        }
        let data = self.framer.last_read(n);
        let from = (known - self.offset) as usize;
        let to = ((FINGERPRINT_BYTES as u64 - self.offset) as usize).min(n);
        self.head.extend_from_slice(&data[from..to]);
    }

    fn lag(&self) -> u64 {
        if self.fifo {
            0
        } else {
            self.size.saturating_sub(self.offset)
        }
    }

    fn checkpoint(&self, rotated: bool) -> Option<Checkpoint> {
        if self.fifo {
            return None;
        }
        let offset = self.offset - self.framer.pending() as u64;
        let tail =
            if offset == self.offset { self.tail.as_slice().to_vec() } else { read_before(&self.file, offset).ok()? };
        Some(Checkpoint {
            path: self.path.clone(),
            dev: self.id.dev,
            ino: self.id.ino,
            offset,
            head: self.head.clone(),
            tail,
            rotated,
        })
    }

    fn matches(&self, cp: &Checkpoint) -> bool {
        self.id == FileId { dev: cp.dev, ino: cp.ino } && self.head.starts_with(&cp.head)
    }

    /// How this file stopped being the one `path` names.
    fn left_as(&self, path: &Path) -> RotationKind {
        if let Ok(now) = fs::canonicalize(path) {
            if now != self.resolved {
                return RotationKind::Symlink;
            }
        }
        match self.file.metadata() {
            Ok(meta) if meta.nlink() == 0 => RotationKind::Delete,
            Err(_) => RotationKind::Delete,
            Ok(_) => RotationKind::Rename,
        }
    }
}

/// One path of the target.
#[derive(Debug)]
struct Slot {
    file: Option<OpenFile>,
}

/// A rotated file still being read.
#[derive(Debug)]
struct Draining {
    file: OpenFile,
    /// Last time data was read from it (or when it was rotated).
    active_at: Instant,
}

#[derive(Debug)]
pub struct FileTailer {
    target: Target,
    options: TailOptions,
    /// Set after the first poll: every file opened later is read from 0.
    started: bool,
    /// Checkpoints were given for this tailer: files not among them are new.
    history: bool,
    checkpoints: Vec<Checkpoint>,
    next_scan: Option<Instant>,
    slots: BTreeMap<PathBuf, Slot>,
    draining: Vec<Draining>,
    /// Bumped whenever the set of open files changes (for the watcher).
    generation: u64,
    /// The last files let go (bounded): never taken for a copy.
    let_go: std::collections::VecDeque<FileId>,
}

enum PathState {
    Same,
    /// The path names no file now.
    Vanished,
    /// The path names another file now.
    Replaced,
}

impl FileTailer {
    pub fn new(target: Target, options: TailOptions) -> Self {
        let mut slots = BTreeMap::new();
        if let Target::Path(path) = &target {
            slots.insert(path.clone(), Slot { file: None });
        }
        FileTailer {
            target,
            options,
            started: false,
            history: false,
            checkpoints: Vec::new(),
            next_scan: None,
            slots,
            draining: Vec::new(),
            generation: 0,
            let_go: std::collections::VecDeque::new(),
        }
    }

    /// Continues from a previous run's checkpoints (see the module doc).
    /// `history` says the previous run followed this source at all, even if
    /// it had no file open: then every file found is new and read from 0.
    pub fn with_checkpoints(mut self, checkpoints: Vec<Checkpoint>, history: bool) -> Self {
        self.history = history || !checkpoints.is_empty();
        self.checkpoints = checkpoints;
        self
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Changes whenever a file is opened or let go.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every open file (followed or draining) with the offset after its last
    /// complete line. FIFOs have no offsets and are left out.
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        let followed = self.slots.values().filter_map(|s| s.file.as_ref()).filter_map(|f| f.checkpoint(false));
        followed.chain(self.draining.iter().filter_map(|d| d.file.checkpoint(true))).collect()
    }

    /// Directories to watch: where the paths are, where their symlinks
    /// lead, and where a glob's matches appear.
    pub fn watch_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.target.base_dir()];
        for (path, slot) in &self.slots {
            dirs.push(parent_dir(path));
            if let Some(file) = &slot.file {
                dirs.push(parent_dir(&file.resolved));
            }
        }
        for d in &self.draining {
            dirs.push(parent_dir(&d.file.resolved));
        }
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Paths currently matched (for a glob) or the path (for one file).
    pub fn paths(&self) -> Vec<PathBuf> {
        self.slots.keys().cloned().collect()
    }

    /// Reads everything available in every file, following rotations and
    /// truncations, and hands out every complete line. Never sleeps.
    pub fn poll(&mut self, now: Instant, on_line: &mut dyn FnMut(FramedLine<'_>)) -> PollReport {
        let mut report = PollReport::default();
        let mut budget = READ_BUDGET;
        if let Target::Glob(pattern) = &self.target {
            if self.next_scan.is_none_or(|at| now >= at) {
                let pattern = pattern.clone();
                self.rescan(&pattern, now, &mut report);
                self.next_scan = Some(now + self.options.rescan_interval);
            }
        }
        // Followed paths first, so that a file that moved to another path
        // of the target is adopted there before it could be let go.
        let paths: Vec<PathBuf> = self.slots.keys().cloned().collect();
        for path in paths {
            if let Err(err) = self.poll_slot(&path, now, &mut budget, on_line, &mut report) {
                report.errors.push((path, err));
            }
        }
        if !self.started {
            self.restore_rotated_away(now, &mut report);
            self.started = true;
        }
        self.poll_draining(now, &mut budget, on_line, &mut report);
        let followed: Vec<&OpenFile> = self.slots.values().filter_map(|s| s.file.as_ref()).collect();
        report.waiting = followed.is_empty();
        report.open_files = followed.len() + self.draining.len();
        report.lag_bytes =
            followed.iter().map(|f| f.lag()).sum::<u64>() + self.draining.iter().map(|d| d.file.lag()).sum::<u64>();
        report
    }

    fn rescan(&mut self, pattern: &str, now: Instant, report: &mut PollReport) {
        let mut matched = Vec::new();
        match glob::glob(pattern) {
            Ok(paths) => {
                for entry in paths {
                    match entry {
                        // Directories match `*` too; they are not logs.
                        Ok(path) if !path.is_dir() => matched.push(path),
                        Ok(_) => {}
                        Err(err) => {
                            let path = err.path().to_path_buf();
                            report.errors.push((path, io::Error::from(err)));
                        }
                    }
                }
            }
            Err(err) => report.errors.push((PathBuf::from(pattern), io::Error::new(io::ErrorKind::InvalidInput, err))),
        }
        let gone: Vec<PathBuf> = self.slots.keys().filter(|p| !matched.contains(p)).cloned().collect();
        for path in gone {
            if let Some(Slot { file: Some(file) }) = self.slots.remove(&path) {
                let kind = file.left_as(&path);
                report.rotations.push(Rotation { path, kind, recovered: 0 });
                self.retire(file, now);
            }
        }
        for path in matched {
            self.slots.entry(path).or_insert(Slot { file: None });
        }
    }

    fn retire(&mut self, file: OpenFile, now: Instant) {
        self.draining.push(Draining { file, active_at: now });
        self.generation += 1;
    }

    fn poll_draining(
        &mut self,
        now: Instant,
        budget: &mut u64,
        on_line: &mut dyn FnMut(FramedLine<'_>),
        report: &mut PollReport,
    ) {
        let rotate_wait = self.options.rotate_wait;
        let mut kept = Vec::with_capacity(self.draining.len());
        for mut d in std::mem::take(&mut self.draining) {
            match d.file.truncated().and_then(|truncated| {
                if truncated {
                    // A rotated file truncated under us has nothing left to give.
                    return Ok((0, false));
                }
                d.file.read_available(budget, on_line)
            }) {
                Ok((n, more)) => {
                    report.bytes += n;
                    report.more |= more;
                    if n > 0 {
                        d.active_at = now;
                    }
                    if more || now.saturating_duration_since(d.active_at) < rotate_wait {
                        kept.push(d);
                        continue;
                    }
                }
                Err(err) => report.errors.push((d.file.path.clone(), err)),
            }
            d.file.framer.flush(&mut *on_line);
            if self.let_go.len() >= 64 {
                self.let_go.pop_front();
            }
            self.let_go.push_back(d.file.id);
            self.generation += 1;
        }
        self.draining = kept;
    }

    fn poll_slot(
        &mut self,
        path: &Path,
        now: Instant,
        budget: &mut u64,
        on_line: &mut dyn FnMut(FramedLine<'_>),
        report: &mut PollReport,
    ) -> io::Result<()> {
        // Two rounds at most: finish the old file, then read the one that replaced it.
        for _ in 0..2 {
            let Some(slot) = self.slots.get_mut(path) else { return Ok(()) };
            if slot.file.is_none() {
                let Some(file) = self.open_in_slot(path, on_line, report)? else { return Ok(()) };
                if let Some(slot) = self.slots.get_mut(path) {
                    slot.file = Some(file);
                }
                self.generation += 1;
            }
            // Files we read ourselves are never a copy of another one.
            let known: Vec<FileId> =
                self.draining.iter().map(|d| d.file.id).chain(self.let_go.iter().copied()).collect();
            let Some(file) = self.slots.get_mut(path).and_then(|s| s.file.as_mut()) else { return Ok(()) };
            if file.truncated()? {
                let recovered = recover_from_copy(file, &known, on_line)?;
                let kind = if recovered.is_some() { RotationKind::Copytruncate } else { RotationKind::Truncate };
                report.bytes += recovered.unwrap_or(0);
                report.rotations.push(Rotation { path: path.to_path_buf(), kind, recovered: recovered.unwrap_or(0) });
                file.framer.flush(&mut *on_line);
                file.seek_to(0)?;
                file.head = read_head(&file.file, file.file.metadata()?.len())?;
            }
            let (n, more) = file.read_available(budget, on_line)?;
            report.bytes += n;
            report.more |= more;
            match path_state(path, file)? {
                PathState::Same => return Ok(()),
                state => {
                    let kind = file.left_as(path);
                    report.rotations.push(Rotation { path: path.to_path_buf(), kind, recovered: 0 });
                    let file = self.slots.get_mut(path).and_then(|s| s.file.take());
                    if let Some(file) = file {
                        self.retire(file, now);
                    }
                    if matches!(state, PathState::Vanished) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Opens the file a path names and decides where to read it from.
    fn open_in_slot(
        &mut self,
        path: &Path,
        on_line: &mut dyn FnMut(FramedLine<'_>),
        report: &mut PollReport,
    ) -> io::Result<Option<OpenFile>> {
        let Some(mut file) = OpenFile::open(path, self.options.max_line_bytes)? else { return Ok(None) };
        // Moved here from another path of the target (or renamed back):
        // continue where that path was.
        let same = |other: &OpenFile| other.id == file.id && file.head.starts_with(&other.head);
        let moved = match self.draining.iter().position(|d| same(&d.file)) {
            Some(i) => Some(self.draining.swap_remove(i).file),
            None => {
                let other = self.slots.iter().find(|(p, s)| *p != path && s.file.as_ref().is_some_and(same));
                let other = other.map(|(p, _)| p.clone());
                other.and_then(|p| {
                    report.rotations.push(Rotation { path: p.clone(), kind: RotationKind::Rename, recovered: 0 });
                    self.slots.get_mut(&p).and_then(|s| s.file.take())
                })
            }
        };
        if let Some(mut moved) = moved {
            moved.path = path.to_path_buf();
            moved.resolved = file.resolved;
            return Ok(Some(moved));
        }
        if file.fifo {
            return Ok(Some(file));
        }
        if !self.started {
            if let Some(i) = self.checkpoints.iter().position(|cp| file.matches(cp) && cp.offset <= file.size) {
                let cp = self.checkpoints.swap_remove(i);
                file.seek_to(cp.offset)?;
                return Ok(Some(file));
            }
            // The file that was followed at this path, same inode, other
            // content: truncated (or the inode recycled) while we were
            // stopped. (A rotated file's inode recycled for the new file at
            // its old path is no news: that file is simply gone.)
            if let Some(i) = self
                .checkpoints
                .iter()
                .position(|cp| !cp.rotated && cp.path == path && FileId { dev: cp.dev, ino: cp.ino } == file.id)
            {
                let cp = self.checkpoints.swap_remove(i);
                let dir = parent_dir(&file.resolved);
                let mut scratch = LineFramer::new(self.options.max_line_bytes);
                let recovered = recover_checkpoint_from_copy(&dir, &cp, &[file.id], None, &mut scratch, on_line)?;
                let kind = if recovered.is_some() { RotationKind::Copytruncate } else { RotationKind::Truncate };
                report.bytes += recovered.unwrap_or(0);
                report.rotations.push(Rotation { path: path.to_path_buf(), kind, recovered: recovered.unwrap_or(0) });
                file.seek_to(0)?;
                return Ok(Some(file));
            }
            if !self.history && self.options.start == StartAt::End {
                let offset = start_of_last_line(&mut file.file, file.size)?;
                file.seek_to(offset)?;
                return Ok(Some(file));
            }
        }
        file.seek_to(0)?;
        Ok(Some(file))
    }

    /// At the first poll: checkpointed files that no path names any more
    /// were rotated while we were stopped (or were still being drained when
    /// we stopped). Finds each (same inode and first bytes) in its directory
    /// and drains it from its offset. Only a file that was followed counts
    /// as a rotation now; a drained one was counted before the stop.
    fn restore_rotated_away(&mut self, now: Instant, report: &mut PollReport) {
        for cp in std::mem::take(&mut self.checkpoints) {
            match find_by_identity(&cp, self.options.max_line_bytes) {
                Ok(Some((mut file, found_at))) if cp.offset <= file.size => {
                    if let Err(err) = file.seek_to(cp.offset) {
                        report.errors.push((found_at, err));
                        continue;
                    }
                    if !cp.rotated {
                        report.rotations.push(Rotation {
                            path: cp.path.clone(),
                            kind: RotationKind::Rename,
                            recovered: 0,
                        });
                    }
                    self.retire(file, now);
                }
                Ok(_) => {
                    if !cp.rotated {
                        report.rotations.push(Rotation {
                            path: cp.path.clone(),
                            kind: RotationKind::Delete,
                            recovered: 0,
                        });
                    }
                    report.lost.push(cp);
                }
                Err(err) => report.errors.push((cp.path.clone(), err)),
            }
        }
    }
}

fn path_state(path: &Path, file: &OpenFile) -> io::Result<PathState> {
    match fs::metadata(path) {
        Ok(meta) if FileId::of(&meta) != file.id => Ok(PathState::Replaced),
        Ok(_) => Ok(PathState::Same),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(PathState::Vanished),
        Err(e) => Err(e),
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    path.parent().map(PathBuf::from).filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| PathBuf::from("."))
}

/// Reads from `offset` until the buffer is full or the file ends.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn read_head(file: &File, len: u64) -> io::Result<Vec<u8>> {
    let mut head = vec![0; (len as usize).min(FINGERPRINT_BYTES)];
    let got = read_full_at(file, &mut head, 0)?;
    head.truncate(got);
    Ok(head)
}

fn read_before(file: &File, offset: u64) -> io::Result<Vec<u8>> {
    let from = offset.saturating_sub(TAIL_BYTES as u64);
    let mut tail = vec![0; (offset - from) as usize];
    let got = read_full_at(file, &mut tail, from)?;
    tail.truncate(got);
    Ok(tail)
}

/// `copytruncate` left a copy of the old content next to the file: reads
/// what we had not read yet from it, into the file's own framer (which may
/// hold the start of a line). Returns the bytes read, or None if no copy.
fn recover_from_copy(
    file: &mut OpenFile,
    known: &[FileId],
    on_line: &mut dyn FnMut(FramedLine<'_>),
) -> io::Result<Option<u64>> {
    let cp = Checkpoint {
        path: file.path.clone(),
        dev: file.id.dev,
        ino: file.id.ino,
        offset: file.offset,
        head: file.head.clone(),
        tail: file.tail.as_slice().to_vec(),
        rotated: false,
    };
    let newer_than = file.intact_mtime;
    let mut exclude = known.to_vec();
    exclude.push(file.id);
    recover_checkpoint_from_copy(&parent_dir(&file.resolved), &cp, &exclude, newer_than, &mut file.framer, on_line)
}

fn recover_checkpoint_from_copy(
    dir: &Path,
    cp: &Checkpoint,
    exclude: &[FileId],
    newer_than: Option<(i64, i64)>,
    framer: &mut LineFramer,
    on_line: &mut dyn FnMut(FramedLine<'_>),
) -> io::Result<Option<u64>> {
    if cp.head.is_empty() {
        return Ok(None);
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(_) => return Ok(None),
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || exclude.contains(&FileId::of(&meta)) || meta.len() < cp.offset {
            continue;
        }
        // Data we had not read yet was written after our last intact look at
        // the file, so its copy was made after that too. An older file with
        // the same content (a rotated file full of identical lines) is not it.
        if newer_than.is_some_and(|t| (meta.ctime(), meta.ctime_nsec()) < t) {
            continue;
        }
        let Ok(mut copy) = File::open(entry.path()) else { continue };
        let head = read_head(&copy, meta.len())?;
        if !head.starts_with(&cp.head) || read_before(&copy, cp.offset)? != cp.tail {
            continue;
        }
        copy.seek(SeekFrom::Start(cp.offset))?;
        let mut total = 0u64;
        loop {
            let n = framer.fill(&mut copy)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            framer.drain(&mut *on_line);
        }
        framer.flush(&mut *on_line);
        return Ok(Some(total));
    }
    Ok(None)
}

/// Finds a checkpointed file: at its path, or renamed within its directory.
fn find_by_identity(cp: &Checkpoint, max_line: usize) -> io::Result<Option<(OpenFile, PathBuf)>> {
    let id = FileId { dev: cp.dev, ino: cp.ino };
    let mut candidates = vec![cp.path.clone()];
    if let Ok(entries) = fs::read_dir(parent_dir(&cp.path)) {
        for entry in entries.flatten() {
            if entry.metadata().is_ok_and(|m| FileId::of(&m) == id) {
                candidates.push(entry.path());
            }
        }
    }
    for path in candidates {
        if let Some(file) = OpenFile::open(&path, max_line)? {
            if file.matches(cp) {
                return Ok(Some((file, path)));
            }
        }
    }
    Ok(None)
}

/// The offset just after the last newline, so that a file that ends in the
/// middle of a line is read from that line's start (bounded look-back).
fn start_of_last_line(file: &mut File, len: u64) -> io::Result<u64> {
    const LOOK_BACK: u64 = 64 * 1024;
    if len == 0 {
        return Ok(0);
    }
    let from = len.saturating_sub(LOOK_BACK);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::with_capacity((len - from) as usize);
    file.by_ref().take(len - from).read_to_end(&mut tail)?;
    Ok(match memchr::memrchr(b'\n', &tail) {
        Some(nl) => from + nl as u64 + 1,
        None if from == 0 => 0,
        None => len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tailer(path: &Path, start: StartAt) -> FileTailer {
        FileTailer::new(Target::Path(path.to_path_buf()), TailOptions::new(start, 1024))
    }

    fn lines(tailer: &mut FileTailer, now: Instant) -> (Vec<String>, PollReport) {
        let mut out = Vec::new();
        let report = tailer.poll(now, &mut |l: FramedLine<'_>| out.push(String::from_utf8_lossy(l.bytes).into_owned()));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        (out, report)
    }

    fn append(path: &Path, text: &str) {
        let mut f = fs::OpenOptions::new().create(true).append(true).open(path).expect("open");
        f.write_all(text.as_bytes()).expect("write");
    }

    #[test]
    fn starts_at_the_end_or_the_beginning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mail.log");
        let now = Instant::now();
        append(&path, "old 1\nold 2\n");
        let mut from_end = tailer(&path, StartAt::End);
        let mut from_start = tailer(&path, StartAt::Beginning);
        assert_eq!(lines(&mut from_end, now).0, Vec::<String>::new());
        assert_eq!(lines(&mut from_start, now).0, ["old 1", "old 2"]);
        append(&path, "new\n");
        assert_eq!(lines(&mut from_end, now).0, ["new"]);
        assert_eq!(lines(&mut from_start, now).0, ["new"]);
    }

    #[test]
    fn a_partial_last_line_at_start_is_read_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mail.log");
        let now = Instant::now();
        append(&path, "old\nhalf a ");
        let mut tailer = tailer(&path, StartAt::End);
        assert_eq!(lines(&mut tailer, now).0, Vec::<String>::new());
        append(&path, "line\n");
        assert_eq!(lines(&mut tailer, now).0, ["half a line"]);
    }

    #[test]
    fn long_lines_are_cut_and_marked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mail.log");
        append(&path, "");
        let mut tailer = FileTailer::new(Target::Path(path.clone()), TailOptions::new(StartAt::Beginning, 256));
        append(&path, &format!("{}\nshort\n", "x".repeat(1000)));
        let mut got = Vec::new();
        tailer.poll(Instant::now(), &mut |l: FramedLine<'_>| got.push((l.bytes.len(), l.truncated)));
        assert_eq!(got, [(256, true), (5, false)]);
    }

    #[test]
    fn waits_for_a_missing_file_and_reads_it_from_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("later.log");
        let now = Instant::now();
        let mut tailer = tailer(&path, StartAt::End);
        let (got, report) = lines(&mut tailer, now);
        assert!(got.is_empty() && report.waiting && report.open_files == 0);
        append(&path, "first\n");
        let (got, report) = lines(&mut tailer, now);
        assert!(!report.waiting);
        assert_eq!(got, ["first"]);
        append(&path, "second\n");
        assert_eq!(lines(&mut tailer, now).0, ["second"]);
    }

    #[test]
    fn a_recycled_inode_is_a_new_file() {
        // Same inode, other first bytes: the checkpoint is not for this file.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mail.log");
        append(&path, "first generation line 1\nfirst generation line 2\n");
        let mut a = tailer(&path, StartAt::Beginning);
        assert_eq!(lines(&mut a, Instant::now()).0.len(), 2);
        let checkpoints = a.checkpoints();
        assert_eq!(checkpoints[0].offset, 48);
        drop(a);
        fs::write(&path, "second generation, a different file that is longer\nnext\n").expect("rewrite");
        let mut b = tailer(&path, StartAt::End).with_checkpoints(checkpoints, true);
        let (got, report) = lines(&mut b, Instant::now());
        assert_eq!(got, ["second generation, a different file that is longer", "next"]);
        assert_eq!(report.rotation_count(RotationKind::Truncate), 1);
    }

    #[test]
    fn lag_is_what_the_budget_left_unread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.log");
        let line = format!("{}\n", "y".repeat(99));
        let count = (READ_BUDGET as usize / line.len()) + 1000;
        append(&path, &line.repeat(count));
        let mut tailer = tailer(&path, StartAt::Beginning);
        let mut n = 0;
        let report = tailer.poll(Instant::now(), &mut |_| n += 1);
        assert!(report.more);
        assert_eq!(report.lag_bytes, (count * line.len()) as u64 - report.bytes);
        let report = tailer.poll(Instant::now(), &mut |_| n += 1);
        assert!(!report.more);
        assert_eq!(report.lag_bytes, 0);
        assert_eq!(n, count);
    }

    #[test]
    fn targets() {
        assert_eq!(Target::new(Path::new("/var/log/mail.log")), Ok(Target::Path("/var/log/mail.log".into())));
        let glob = Target::new(Path::new("/var/log/containers/*postfix*.log")).expect("glob");
        assert_eq!(glob, Target::Glob("/var/log/containers/*postfix*.log".into()));
        assert_eq!(glob.base_dir(), PathBuf::from("/var/log/containers"));
        assert_eq!(
            Target::new(Path::new("/var/log/pods/*/*/0.log")).expect("glob").base_dir(),
            PathBuf::from("/var/log/pods")
        );
        assert!(Target::new(Path::new("/var/log/[.log")).is_err());
    }

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut tail = Tail::empty();
        tail.push(b"abc");
        tail.push(b"def");
        assert_eq!(tail.as_slice(), b"abcdef");
        let long: Vec<u8> = (0..100u8).collect();
        tail.push(&long);
        assert_eq!(tail.as_slice(), &long[36..]);
        tail.push(b"xy");
        assert_eq!(&tail.as_slice()[62..], b"xy");
        assert_eq!(tail.as_slice()[..62], long[38..]);
    }
}
