//! File events for a file source: which directories to watch, and how.
//!
//! Any event only means "poll now" (event kinds are not trusted; an inotify
//! queue overflow is an event like any other). Directories are watched, not
//! files: a watch on a file goes silent after a rename or a symlink swap.
//!
//! inotify does not see changes made by another machine (NFS, CIFS) or
//! behind FUSE and some virtual filesystems; there `notify`'s `PollWatcher`
//! is used. `auto` picks it by the filesystem type of the watched
//! directories (from `/proc/self/mountinfo`) or when inotify cannot be set
//! up (no instances or watches left); the config can force either.

use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

/// How file sources learn that a file changed (`follow.watch`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// inotify, or polling where inotify cannot see changes.
    #[default]
    Auto,
    Inotify,
    Poll,
}

/// Filesystem types where inotify misses changes made elsewhere.
fn needs_polling(fstype: &str) -> bool {
    const NETWORK: [&str; 14] = [
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "afs",
        "gpfs",
        "virtiofs",
        "fakeowner",
        "vboxsf",
    ];
    NETWORK.contains(&fstype) || fstype == "fuse" || fstype.starts_with("fuse.") || fstype == "fuseblk"
}

/// The filesystem type of the mount holding `path`, from the text of
/// `/proc/self/mountinfo` (the longest mount point that is a prefix wins).
pub fn fstype_of(path: &Path, mountinfo: &str) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let (Some(mount_point), Some(fstype)) = (left.split(' ').nth(4), right.split(' ').next()) else { continue };
        let mount_point = unescape(mount_point);
        if path.starts_with(&mount_point) {
            let len = mount_point.as_os_str().len();
            if best.as_ref().is_none_or(|(l, _)| len >= *l) {
                best = Some((len, fstype.to_string()));
            }
        }
    }
    best.map(|(_, t)| t)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(text: &str) -> PathBuf {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    PathBuf::from(out)
}

fn on_polled_filesystem(dirs: &[PathBuf]) -> Option<(PathBuf, String)> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    dirs.iter().find_map(|dir| {
        let canonical = std::fs::canonicalize(dir).ok()?;
        let fstype = fstype_of(&canonical, &mountinfo)?;
        needs_polling(&fstype).then(|| (dir.clone(), fstype))
    })
}

/// The watcher of one file source.
pub struct DirWatcher {
    mode: WatchMode,
    wake: SyncSender<()>,
    poll_interval: Duration,
    inner: Option<Box<dyn Watcher + Send>>,
    polling: bool,
    /// Directories being watched.
    watched: Vec<PathBuf>,
    /// Directories wanted but not watchable yet (they do not exist).
    missing: Vec<PathBuf>,
}

impl DirWatcher {
    pub fn new(mode: WatchMode, wake: SyncSender<()>, poll_interval: Duration) -> Self {
        DirWatcher { mode, wake, poll_interval, inner: None, polling: false, watched: Vec::new(), missing: Vec::new() }
    }

    /// Whether the `PollWatcher` is in use.
    pub fn is_polling(&self) -> bool {
        self.polling
    }

    fn make(&mut self, poll: bool) -> Option<Box<dyn Watcher + Send>> {
        let wake = self.wake.clone();
        let handler = move |_event: notify::Result<notify::Event>| {
            // A full channel already holds a wake-up.
            let _ = wake.try_send(());
        };
        let made: notify::Result<Box<dyn Watcher + Send>> = if poll {
            let config = notify::Config::default().with_poll_interval(self.poll_interval);
            notify::PollWatcher::new(handler, config).map(|w| Box::new(w) as Box<dyn Watcher + Send>)
        } else {
            notify::recommended_watcher(handler).map(|w| Box::new(w) as Box<dyn Watcher + Send>)
        };
        match made {
            Ok(w) => {
                self.polling = poll;
                Some(w)
            }
            Err(err) if !poll && self.mode == WatchMode::Auto => {
                tracing::warn!(error = %err, "inotify unavailable; polling files instead");
                self.make(true)
            }
            Err(err) => {
                tracing::warn!(error = %err, "file events unavailable; relying on the poll interval");
                None
            }
        }
    }

    /// Watches exactly `dirs` (and retries the ones that did not exist yet).
    pub fn update(&mut self, dirs: &[PathBuf]) {
        if self.inner.is_none() {
            let poll = match self.mode {
                WatchMode::Poll => true,
                WatchMode::Inotify => false,
                WatchMode::Auto => match on_polled_filesystem(dirs) {
                    Some((dir, fstype)) => {
                        tracing::info!(dir = %dir.display(), fstype, "inotify cannot see changes on this filesystem; polling files instead");
                        true
                    }
                    None => false,
                },
            };
            self.inner = self.make(poll);
        }
        let Some(inner) = self.inner.as_mut() else { return };
        for dir in self.watched.iter().filter(|d| !dirs.contains(d)) {
            let _ = inner.unwatch(dir);
        }
        self.watched.retain(|d| dirs.contains(d));
        self.missing.clear();
        let mut failed = false;
        for dir in dirs {
            if self.watched.contains(dir) {
                continue;
            }
            match inner.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => self.watched.push(dir.clone()),
                Err(err)
                    if matches!(&err.kind, notify::ErrorKind::PathNotFound)
                        || matches!(&err.kind, notify::ErrorKind::Io(e) if e.kind() == std::io::ErrorKind::NotFound) =>
                {
                    self.missing.push(dir.clone());
                }
                Err(err) => {
                    tracing::warn!(dir = %dir.display(), error = %err, "cannot watch directory");
                    failed = true;
                }
            }
        }
        // Out of inotify watches (ENOSPC) or similar: poll instead.
        if failed && !self.polling && self.mode == WatchMode::Auto {
            tracing::warn!("inotify watches exhausted; polling files instead");
            self.inner = self.make(true);
            self.watched.clear();
            self.update(dirs);
        }
    }

    /// Directories that did not exist at the last update.
    pub fn has_missing(&self) -> bool {
        !self.missing.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /var/log rw,relatime shared:2 - nfs4 server:/logs rw,vers=4.2
31 30 0:41 / /var/log/local rw - tmpfs tmpfs rw
32 22 0:42 / /mnt/with\\040space rw - fuse.sshfs host: rw
";

    #[test]
    fn the_longest_mount_point_decides() {
        let t = |p: &str| fstype_of(Path::new(p), MOUNTINFO);
        assert_eq!(t("/var/log/mail.log").as_deref(), Some("nfs4"));
        assert_eq!(t("/var/log/local/mail.log").as_deref(), Some("tmpfs"));
        assert_eq!(t("/var/lib/x").as_deref(), Some("ext4"));
        assert_eq!(t("/mnt/with space/mail.log").as_deref(), Some("fuse.sshfs"));
        // A path component that only starts like a mount point is not in it.
        assert_eq!(t("/var/logs/x").as_deref(), Some("ext4"));
    }

    #[test]
    fn network_and_fuse_filesystems_are_polled() {
        for fstype in ["nfs", "nfs4", "cifs", "fuse.sshfs", "9p", "virtiofs"] {
            assert!(needs_polling(fstype), "{fstype}");
        }
        for fstype in ["ext4", "xfs", "tmpfs", "overlay", "btrfs"] {
            assert!(!needs_polling(fstype), "{fstype}");
        }
    }

    #[test]
    fn forced_polling_uses_the_poll_watcher() {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut watcher = DirWatcher::new(WatchMode::Poll, tx, Duration::from_millis(20));
        watcher.update(&[dir.path().to_path_buf(), dir.path().join("not-yet")]);
        assert!(watcher.is_polling());
        std::fs::write(dir.path().join("mail.log"), "x\n").expect("write");
        // The PollWatcher's own thread reports the change; this waits for
        // it (bounded), it does not make anything pass by timing.
        assert!(rx.recv_timeout(Duration::from_secs(20)).is_ok());
    }
}
