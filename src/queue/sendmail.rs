//! Sendmail's queue directory (`/var/spool/mqueue`; queue groups and
//! `qf/`, `df/` subdirectories are walked too). A message is a `qf` control
//! file (`hf` when quarantined) with its `df` data file. The arrival is the
//! control file's `T` line (creation time, Unix seconds); the size is the
//! data file's, which is what `mailq` shows.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::postfix::walk;
use super::{Message, QueueError, Snapshot};

/// `queued` (`qf` files) and `quarantined` (`hf` files).
pub const QUEUES: [&str; 2] = ["queued", "quarantined"];

pub fn read_queue(dir: &Path) -> Result<Snapshot, QueueError> {
    let mut snapshot = Snapshot::new(&QUEUES);
    walk(dir, 2, &mut |path| {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return Ok(()) };
        let (queue, id) = match (name.strip_prefix("qf"), name.strip_prefix("hf")) {
            (Some(id), _) => ("queued", id),
            (_, Some(id)) => ("quarantined", id),
            _ => return Ok(()),
        };
        let control = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(QueueError::io(format!("reading queue file {}", path.display()), e)),
        };
        let arrival = control_time(&control).map(|s| UNIX_EPOCH + Duration::from_secs(s));
        // The data file sits beside the control file, or in a `df/`
        // directory next to a `qf/` one.
        let data = path.with_file_name(format!("df{id}"));
        let data_alt = path.parent().and_then(Path::parent).map(|p| p.join("df").join(format!("df{id}")));
        let size = fs::metadata(&data).or_else(|e| data_alt.map_or(Err(e), fs::metadata)).map(|m| m.len()).ok();
        snapshot.add(queue, Message { arrival, size });
        Ok(())
    })?;
    Ok(snapshot)
}

/// The `T<seconds>` line of a control file.
pub fn control_time(bytes: &[u8]) -> Option<u64> {
    bytes
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"T"))
        .and_then(|t| std::str::from_utf8(t).ok()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_files() {
        let qf = b"V8\nT1795893373\nK1795893374\nN1\nP30284\nI8/1/1234\nMDeferred: 451 4.7.1 later\nFs\n$_localhost [127.0.0.1]\nSalice@example.test\nRPFD:<r@s.test>\nH??Received: from x\n.\n";
        assert_eq!(control_time(qf), Some(1_795_893_373));
        assert_eq!(control_time(b"V8\nSx\n"), None);
    }
}
