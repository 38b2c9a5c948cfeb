//! Following one log file by path.
//!
//! Contract (each sentence has a test in `tests/follow.rs` or below):
//! - The first time the file is opened, reading starts at its end, or at its
//!   beginning when asked; if the file ends in the middle of a line, reading
//!   starts at that line's beginning so the line is read whole.
//! - Appends are read as they come; a partial last line is held until its
//!   newline arrives.
//! - Rotation means the path now names another file (a new device/inode:
//!   rename + create, delete + recreate, a symlink swapped to a new target).
//!   The old file is read to its end first, its last line is handed out even
//!   without a newline, and the new file is then read from offset 0.
//! - Truncation means the file is shorter than what was read: the held
//!   partial line is handed out and reading restarts at offset 0.
//! - A path that does not exist is waited for, never an error; a file that
//!   vanishes keeps being read through its open descriptor until the path
//!   names a file again.
//!
//! [`FileTailer::poll`] does one round of this and never sleeps; the caller
//! decides when to poll (a file event, a timer, or a test), so tests drive it
//! deterministically.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::framing::{FramedLine, LineFramer};

/// Where the first read of a file starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    End,
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

#[derive(Debug)]
struct OpenFile {
    file: File,
    id: FileId,
    offset: u64,
}

/// What a poll found, besides the lines it handed out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollReport {
    pub bytes: u64,
    /// The path did not name a file and none was open.
    pub waiting: bool,
    pub rotations: u32,
    pub truncations: u32,
}

#[derive(Debug)]
pub struct FileTailer {
    path: PathBuf,
    start: StartAt,
    /// Set after the first poll: every file opened later is read from 0.
    started: bool,
    current: Option<OpenFile>,
    framer: LineFramer,
}

impl FileTailer {
    pub fn new(path: impl Into<PathBuf>, start: StartAt, max_line: usize) -> Self {
        FileTailer { path: path.into(), start, started: false, current: None, framer: LineFramer::new(max_line) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_open(&self) -> bool {
        self.current.is_some()
    }

    /// Reads everything available, following a rotation or truncation if
    /// one happened, and hands out every complete line.
    pub fn poll(&mut self, on_line: &mut dyn FnMut(FramedLine<'_>)) -> io::Result<PollReport> {
        let report = self.poll_rounds(on_line);
        self.started = true;
        report
    }

    fn poll_rounds(&mut self, on_line: &mut dyn FnMut(FramedLine<'_>)) -> io::Result<PollReport> {
        let mut report = PollReport::default();
        // Two rounds at most: drain the old file, then the one that replaced it.
        for _ in 0..2 {
            if self.current.is_none() {
                match self.open()? {
                    Some(open) => self.current = Some(open),
                    None => {
                        report.waiting = true;
                        return Ok(report);
                    }
                }
            }
            report.bytes += self.read_to_end(on_line)?;
            match self.check_path()? {
                PathState::Same => return Ok(report),
                PathState::Truncated => {
                    report.truncations += 1;
                    self.framer.flush(&mut *on_line);
                    if let Some(open) = self.current.as_mut() {
                        open.file.seek(SeekFrom::Start(0))?;
                        open.offset = 0;
                    }
                }
                PathState::Replaced => {
                    report.rotations += 1;
                    self.framer.flush(&mut *on_line);
                    self.current = None;
                }
            }
        }
        Ok(report)
    }

    fn open(&mut self) -> io::Result<Option<OpenFile>> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "is a directory, not a log file"));
        }
        let offset =
            if !self.started && self.start == StartAt::End { start_of_last_line(&mut file, meta.len())? } else { 0 };
        file.seek(SeekFrom::Start(offset))?;
        self.framer.reset();
        Ok(Some(OpenFile { file, id: FileId::of(&meta), offset }))
    }

    fn read_to_end(&mut self, on_line: &mut dyn FnMut(FramedLine<'_>)) -> io::Result<u64> {
        let Some(open) = self.current.as_mut() else { return Ok(0) };
        let mut total = 0;
        loop {
            let n = self.framer.fill(&mut open.file)?;
            if n == 0 {
                return Ok(total);
            }
            open.offset += n as u64;
            total += n as u64;
            self.framer.drain(&mut *on_line);
        }
    }

    fn check_path(&self) -> io::Result<PathState> {
        let Some(open) = self.current.as_ref() else { return Ok(PathState::Same) };
        match fs::metadata(&self.path) {
            Ok(meta) if FileId::of(&meta) != open.id => Ok(PathState::Replaced),
            Ok(_) => {
                // Compare with the open file itself: the path may already be
                // written again after a truncation.
                let len = open.file.metadata()?.len();
                Ok(if len < open.offset { PathState::Truncated } else { PathState::Same })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(PathState::Same),
            Err(e) => Err(e),
        }
    }
}

enum PathState {
    Same,
    Truncated,
    Replaced,
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

    fn lines(tailer: &mut FileTailer) -> (Vec<String>, PollReport) {
        let mut out = Vec::new();
        let report = tailer
            .poll(&mut |l: FramedLine<'_>| out.push(String::from_utf8_lossy(l.bytes).into_owned()))
            .expect("poll");
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
        append(&path, "old 1\nold 2\n");
        let mut from_end = FileTailer::new(&path, StartAt::End, 1024);
        let mut from_start = FileTailer::new(&path, StartAt::Beginning, 1024);
        assert_eq!(lines(&mut from_end).0, Vec::<String>::new());
        assert_eq!(lines(&mut from_start).0, ["old 1", "old 2"]);
        append(&path, "new\n");
        assert_eq!(lines(&mut from_end).0, ["new"]);
        assert_eq!(lines(&mut from_start).0, ["new"]);
    }

    #[test]
    fn a_partial_last_line_at_start_is_read_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mail.log");
        append(&path, "old\nhalf a ");
        let mut tailer = FileTailer::new(&path, StartAt::End, 1024);
        assert_eq!(lines(&mut tailer).0, Vec::<String>::new());
        append(&path, "line\n");
        assert_eq!(lines(&mut tailer).0, ["half a line"]);
    }

    #[test]
    fn waits_for_a_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("later.log");
        let mut tailer = FileTailer::new(&path, StartAt::End, 1024);
        let (got, report) = lines(&mut tailer);
        assert!(got.is_empty() && report.waiting);
        // Everything in a file that appears later was written while we ran.
        append(&path, "first\n");
        let (got, report) = lines(&mut tailer);
        assert!(!report.waiting);
        assert_eq!(got, ["first"]);
        append(&path, "second\n");
        assert_eq!(lines(&mut tailer).0, ["second"]);
    }

    #[test]
    fn rename_and_create_reads_the_old_file_to_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mail.log");
        append(&path, "");
        let mut tailer = FileTailer::new(&path, StartAt::Beginning, 1024);
        append(&path, "a\n");
        assert_eq!(lines(&mut tailer).0, ["a"]);
        append(&path, "b\nc without newline");
        fs::rename(&path, dir.path().join("mail.log.1")).expect("rename");
        append(&path, "d\n");
        let (got, report) = lines(&mut tailer);
        assert_eq!(got, ["b", "c without newline", "d"]);
        assert_eq!(report.rotations, 1);
    }

    #[test]
    fn truncation_restarts_at_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mail.log");
        append(&path, "");
        let mut tailer = FileTailer::new(&path, StartAt::Beginning, 1024);
        append(&path, "one\ntwo\n");
        assert_eq!(lines(&mut tailer).0, ["one", "two"]);
        fs::File::create(&path).expect("truncate");
        append(&path, "x\n");
        let (got, report) = lines(&mut tailer);
        assert_eq!(got, ["x"]);
        assert_eq!(report.truncations, 1);
    }
}
