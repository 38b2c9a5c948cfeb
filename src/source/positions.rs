//! The positions file (`--log.positions-file`): each file source's open
//! files, by identity (device, inode, first bytes) and the offset after the
//! last complete line counted, so that a restart continues exactly there.
//!
//! Saved atomically: written to a temporary file beside it, fsynced, renamed
//! over the old one, and the directory fsynced, so a crash leaves either the
//! old or the new file, never a torn one. Saved at an interval and at
//! shutdown (after every source has stopped reading); after a crash the
//! lines read since the last save are read again.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::file::Checkpoint;

#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    #[error("cannot read positions file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("positions file {path} is not valid ({message}); fix or delete it (the sources then start afresh)")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    version: u32,
    #[serde(default)]
    sources: BTreeMap<String, Vec<Entry>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    path: String,
    dev: u64,
    inode: u64,
    offset: u64,
    /// Hex of the file's first bytes.
    head: String,
    /// Hex of the bytes just before `offset`.
    tail: String,
    /// Already rotated away, still being read, when saved.
    #[serde(default)]
    rotated: bool,
}

const VERSION: u32 = 1;

/// The positions of every file source, shared by their threads.
#[derive(Debug)]
pub struct Positions {
    path: PathBuf,
    table: Mutex<BTreeMap<String, Vec<Checkpoint>>>,
}

impl Positions {
    /// Reads the file; a file that does not exist yet is an empty table.
    pub fn load(path: &Path) -> Result<Positions, PositionsError> {
        let table = match fs::read_to_string(path) {
            Ok(text) => parse(&text).map_err(|message| PositionsError::Invalid { path: path.into(), message })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(PositionsError::Read { path: path.into(), source }),
        };
        Ok(Positions { path: path.to_path_buf(), table: Mutex::new(table) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checkpoints of a source, or None if the file never had it.
    pub fn for_source(&self, name: &str) -> Option<Vec<Checkpoint>> {
        self.lock().get(name).cloned()
    }

    pub fn update(&self, name: &str, checkpoints: Vec<Checkpoint>) {
        self.lock().insert(name.to_string(), checkpoints);
    }

    /// Forgets sources that are no longer configured.
    pub fn retain(&self, names: &[&str]) {
        self.lock().retain(|name, _| names.contains(&name.as_str()));
    }

    /// Writes the table atomically.
    pub fn save(&self) -> io::Result<()> {
        let text = render(&self.lock())?;
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name =
            self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "positions".into());
        let temp = dir.join(format!(".{name}.tmp"));
        {
            let mut file = File::create(&temp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
        }
        fs::rename(&temp, &self.path)?;
        // The rename itself is durable only once the directory is synced.
        File::open(dir)?.sync_all()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<Checkpoint>>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn parse(text: &str) -> Result<BTreeMap<String, Vec<Checkpoint>>, String> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let file: FileFormat =
        serde_saphyr::from_str(text).map_err(|e| e.to_string().lines().next().unwrap_or("").to_string())?;
    if file.version != VERSION {
        return Err(format!("version {} is not {VERSION}", file.version));
    }
    file.sources
        .into_iter()
        .map(|(name, entries)| {
            let checkpoints = entries
                .into_iter()
                .map(|e| {
                    Ok(Checkpoint {
                        path: PathBuf::from(e.path),
                        dev: e.dev,
                        ino: e.inode,
                        offset: e.offset,
                        head: from_hex(&e.head).ok_or("head is not hex")?,
                        tail: from_hex(&e.tail).ok_or("tail is not hex")?,
                        rotated: e.rotated,
                    })
                })
                .collect::<Result<Vec<_>, &str>>()?;
            Ok((name, checkpoints))
        })
        .collect()
}

fn render(table: &BTreeMap<String, Vec<Checkpoint>>) -> io::Result<String> {
    let file = FileFormat {
        version: VERSION,
        sources: table
            .iter()
            .map(|(name, cps)| {
                let entries = cps
                    .iter()
                    .map(|cp| Entry {
                        path: cp.path.to_string_lossy().into_owned(),
                        dev: cp.dev,
                        inode: cp.ino,
                        offset: cp.offset,
                        head: to_hex(&cp.head),
                        tail: to_hex(&cp.tail),
                        rotated: cp.rotated,
                    })
                    .collect();
                (name.clone(), entries)
            })
            .collect(),
    };
    let body = serde_saphyr::to_string(&file).map_err(io::Error::other)?;
    Ok(format!("# mta_exporter positions: where each log file was read up to. Written by the exporter.\n{body}"))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(offset: u64) -> Checkpoint {
        Checkpoint {
            path: "/var/log/mail.log".into(),
            dev: 2049,
            ino: 77,
            offset,
            head: b"Nov 28 17:35:01 mx1 postfix".to_vec(),
            tail: vec![0, 10, 255],
            rotated: offset % 2 == 1,
        }
    }

    #[test]
    fn round_trip_through_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("positions.yaml");
        let positions = Positions::load(&path).expect("missing is empty");
        assert_eq!(positions.for_source("mail"), None);
        positions.update("mail", vec![checkpoint(1234), checkpoint(99)]);
        positions.update("empty", vec![]);
        positions.save().expect("save");
        let again = Positions::load(&path).expect("load");
        assert_eq!(again.for_source("mail"), Some(vec![checkpoint(1234), checkpoint(99)]));
        assert_eq!(again.for_source("empty"), Some(vec![]));
        again.retain(&["mail"]);
        assert_eq!(again.for_source("empty"), None);
        // No temporary file is left behind.
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["positions.yaml"]);
    }

    #[test]
    fn a_broken_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("positions.yaml");
        fs::write(&path, "version: 1\nsources:\n  mail:\n    - path: x\n      dev: 1\n      inode: 2\n      offset: 3\n      head: zz\n      tail: ''\n").unwrap();
        let err = Positions::load(&path).unwrap_err().to_string();
        assert!(err.contains("positions.yaml") && err.contains("head is not hex"), "{err}");
        fs::write(&path, "version: 9\n").unwrap();
        assert!(Positions::load(&path).unwrap_err().to_string().contains("version 9"));
    }
}
