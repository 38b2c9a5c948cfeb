//! OpenSMTPD's queue (`/var/spool/smtpd/queue`, the `fs` queue backend):
//! one directory per message under a bucket directory, holding the
//! `message` file and an `envelopes/` directory with one file per
//! recipient. A message's size is its `message` file; its arrival is the
//! oldest `ctime:` of its envelopes (Unix seconds), else the message file's
//! modification time.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::{Message, QueueError, Snapshot};

/// OpenSMTPD keeps one queue; envelopes it cannot parse go to `corrupt/`.
pub const QUEUES: [&str; 1] = ["queued"];

/// `spool` is `/var/spool/smtpd` (or its `queue` directory).
pub fn read_queue(spool: &Path) -> Result<Snapshot, QueueError> {
    let queue = if spool.join("queue").is_dir() { spool.join("queue") } else { spool.to_path_buf() };
    let mut snapshot = Snapshot::new(&QUEUES);
    let buckets = fs::read_dir(&queue).map_err(|e| QueueError::io(format!("listing {}", queue.display()), e))?;
    for bucket in buckets {
        let bucket = bucket.map_err(|e| QueueError::io(format!("listing {}", queue.display()), e))?.path();
        let messages = match fs::read_dir(&bucket) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory => continue,
            Err(e) => return Err(QueueError::io(format!("listing {}", bucket.display()), e)),
        };
        for message in messages {
            let Ok(message) = message else { continue };
            let dir = message.path();
            let Ok(meta) = fs::metadata(dir.join("message")) else { continue };
            let mut oldest = None;
            if let Ok(envelopes) = fs::read_dir(dir.join("envelopes")) {
                for envelope in envelopes.flatten() {
                    match fs::read(envelope.path()) {
                        Ok(text) => {
                            if let Some(ctime) = envelope_ctime(&text) {
                                oldest = Some(oldest.map_or(ctime, |o: u64| o.min(ctime)));
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(QueueError::io(format!("reading envelope {}", envelope.path().display()), e))
                        }
                    }
                }
            }
            let arrival = oldest.map(|s| UNIX_EPOCH + Duration::from_secs(s)).or_else(|| meta.modified().ok());
            snapshot.add("queued", Message { arrival, size: Some(meta.len()) });
        }
    }
    Ok(snapshot)
}

/// The `ctime: <seconds>` line of an envelope file.
pub fn envelope_ctime(bytes: &[u8]) -> Option<u64> {
    bytes
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"ctime: "))
        .and_then(|t| std::str::from_utf8(t).ok()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let envelope = b"version: 3\ntag: local\ntype: mta\nsmtpname: vm\nhelo: vm\nhostname: localhost\nsockaddr: 127.0.0.1\nsender: alice@example.test\nrcpt: r@x.test\ndest: r@x.test\nctime: 1795893602\nlast-try: 1795893603\nlast-bounce: 0\nttl: 345600\nretry: 1\nflags: authenticated\n";
        assert_eq!(envelope_ctime(envelope), Some(1_795_893_602));
        assert_eq!(envelope_ctime(b"version: 3\n"), None);
    }
}
