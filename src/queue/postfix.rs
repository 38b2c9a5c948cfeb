//! Postfix's queue: through the `showq` service (what `postqueue -p` and
//! `-j` read), or by walking the queue directories when the socket cannot
//! be reached.
//!
//! showq speaks two formats. Postfix 3.x sends attribute records in its
//! "null" encoding: `name\0value\0` pairs, a record ends with an empty name
//! (`\0`); the names that matter are `queue_name`, `queue_id`, `time`
//! (arrival, Unix seconds) and `size`. Postfix 2.x sends the text `mailq`
//! prints (`A07A81514*  5156 Tue Feb 14 13:13:54  sender`, `*` active, `!`
//! hold, no mark deferred or incoming). As the Go exporters do, the format
//! is told by a NUL byte in the first 128 bytes.
//!
//! The directories are `incoming`, `active`, `deferred`, `hold` and
//! `maildrop`, each with hashed subdirectories (`hash_queue_depth`); every
//! regular file is one message. The arrival time and size come from the
//! queue file's first records — `C` (sizes, the message size first) and
//! `T` (arrival seconds) — exactly what showq reports; a maildrop file has
//! no `C` record and counts its file size, as showq does.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Message, QueueError, Snapshot};

/// Postfix's queues, as `queue` label values.
pub const QUEUES: [&str; 5] = ["incoming", "active", "deferred", "hold", "maildrop"];

/// Reads showq's answer (either format) from `reader`.
pub fn read_showq(reader: impl Read, now: SystemTime) -> Result<Snapshot, QueueError> {
    let mut reader = BufReader::new(reader);
    let head = reader.fill_buf().map_err(|e| QueueError::io("reading the showq socket", e))?;
    let binary = head.iter().take(128).any(|&b| b == 0);
    let mut snapshot = Snapshot::new(&QUEUES);
    if binary {
        read_attributes(reader, &mut snapshot)?;
    } else {
        read_text(reader, &mut snapshot, now)?;
    }
    Ok(snapshot)
}

/// Postfix 3.x: `name\0value\0 … \0` records.
fn read_attributes(mut reader: impl BufRead, snapshot: &mut Snapshot) -> Result<(), QueueError> {
    let mut name = Vec::with_capacity(32);
    let mut value = Vec::with_capacity(64);
    let mut queue: Option<&'static str> = None;
    let mut message = Message::default();
    loop {
        name.clear();
        let n = reader.read_until(0, &mut name).map_err(|e| QueueError::io("reading the showq socket", e))?;
        if n == 0 {
            // A record cut off by EOF is dropped, as postqueue does.
            return Ok(());
        }
        if name.last() != Some(&0) {
            return Err(QueueError::Protocol("showq ended in the middle of an attribute name".into()));
        }
        name.pop();
        if name.is_empty() {
            if let Some(queue) = queue.take() {
                snapshot.add(queue, message);
            }
            message = Message::default();
            continue;
        }
        value.clear();
        reader.read_until(0, &mut value).map_err(|e| QueueError::io("reading the showq socket", e))?;
        if value.pop() != Some(0) {
            return Err(QueueError::Protocol("showq ended in the middle of an attribute value".into()));
        }
        match name.as_slice() {
            b"queue_name" => queue = QUEUES.iter().copied().find(|q| q.as_bytes() == value.as_slice()),
            b"time" => message.arrival = number(&value).map(|s| UNIX_EPOCH + Duration::from_secs(s)),
            b"size" => message.size = number(&value),
            _ => {}
        }
    }
}

fn number(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// Postfix 2.x: the text `mailq` prints. Its dates have no year and no
/// zone: the latest year that is not in the future is taken, in UTC (run
/// the exporter with the MTA's time zone as UTC, or read the directories).
fn read_text(reader: impl BufRead, snapshot: &mut Snapshot, now: SystemTime) -> Result<(), QueueError> {
    for line in reader.split(b'\n') {
        let line = line.map_err(|e| QueueError::io("reading the showq socket", e))?;
        let Ok(line) = std::str::from_utf8(&line) else { continue };
        let Some((queue, message)) = text_line(line, now) else { continue };
        snapshot.add(queue, message);
    }
    Ok(())
}

/// `A07A81514*      5156 Tue Feb 14 13:13:54  MAILER-DAEMON`.
fn text_line(line: &str, now: SystemTime) -> Option<(&'static str, Message)> {
    let mut words = line.split_ascii_whitespace();
    let id = words.next()?;
    let (id, queue) = match id.as_bytes().last()? {
        b'*' => (&id[..id.len() - 1], "active"),
        b'!' => (&id[..id.len() - 1], "hold"),
        _ => (id, "deferred"),
    };
    if id.len() < 5 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let size: u64 = words.next()?.parse().ok()?;
    let _weekday = words.next()?;
    let month_name = words.next()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == month_name)?;
    let day: u32 = words.next()?.parse().ok()?;
    let mut clock = words.next()?.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, s) = (clock.next()??, clock.next()??, clock.next()??);
    let now_secs = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let year_now = civil_year(now_secs);
    let arrival = [year_now, year_now - 1]
        .into_iter()
        .filter_map(|y| unix_seconds(y, month as u32 + 1, day, h, m, s))
        .find(|&t| t <= now_secs + 86_400)?;
    Some((queue, Message { arrival: Some(UNIX_EPOCH + Duration::from_secs(arrival)), size: Some(size) }))
}

/// The civil year of a Unix time (UTC).
fn civil_year(secs: u64) -> i64 {
    let days = (secs / 86_400) as i64;
    // Howard Hinnant's days_from_civil, inverted for the year only.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

/// Unix seconds of a UTC civil time; `None` for an impossible date.
fn unix_seconds(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<u64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + i64::from(h * 3600 + m * 60 + s)).ok()
}

/// Walks the queue directories under `spool` (`/var/spool/postfix`).
pub fn read_directories(spool: &Path) -> Result<Snapshot, QueueError> {
    let mut snapshot = Snapshot::new(&QUEUES);
    for queue in QUEUES {
        let dir = spool.join(queue);
        walk(&dir, 16, &mut |path| {
            if let Some(message) = read_queue_file(path)? {
                snapshot.add(queue, message);
            }
            Ok(())
        })?;
    }
    Ok(snapshot)
}

/// Calls `each` for every regular file under `dir`, down to `levels`
/// levels of subdirectories (Postfix's `hash_queue_depth` is at most 16).
pub(super) fn walk(
    dir: &Path,
    levels: usize,
    each: &mut dyn FnMut(&Path) -> Result<(), QueueError>,
) -> Result<(), QueueError> {
    let entries = fs::read_dir(dir).map_err(|e| QueueError::io(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| QueueError::io(format!("listing {}", dir.display()), e))?;
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() && levels > 0 {
            match walk(&entry.path(), levels - 1, each) {
                // A hashed subdirectory removed while we walk.
                Err(QueueError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                other => other?,
            }
        } else if kind.is_file() {
            each(&entry.path())?;
        }
    }
    Ok(())
}

/// One queue file's arrival time and size; `None` when it was delivered
/// (removed) while the queue was read.
fn read_queue_file(path: &Path) -> Result<Option<Message>, QueueError> {
    let mut head = [0u8; 4096];
    let (len, file_size) = match fs::File::open(path).and_then(|mut f| {
        let size = f.metadata()?.len();
        let mut len = 0;
        while len < head.len() {
            match f.read(&mut head[len..])? {
                0 => break,
                n => len += n,
            }
        }
        Ok((len, size))
    }) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(QueueError::io(format!("reading queue file {}", path.display()), e)),
    };
    let (size, arrival) = first_records(&head[..len]);
    Ok(Some(Message {
        arrival: arrival.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        size: Some(size.unwrap_or(file_size)),
    }))
}

/// The message size (`C` record's first number) and arrival seconds (`T`
/// record) from the start of a queue file. Records are a type byte, a
/// length in base-128 little-endian groups (high bit: more), and the data.
pub fn first_records(bytes: &[u8]) -> (Option<u64>, Option<u64>) {
    let (mut size, mut arrival) = (None, None);
    let mut pos = 0;
    for _ in 0..32 {
        let Some(&kind) = bytes.get(pos) else { break };
        pos += 1;
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let Some(&b) = bytes.get(pos) else { return (size, arrival) };
            pos += 1;
            len |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 {
                return (size, arrival);
            }
        }
        let Some(data) = bytes.get(pos..pos + len) else { break };
        pos += len;
        let first_number = || {
            let text = std::str::from_utf8(data).ok()?;
            text.split_ascii_whitespace().next()?.parse::<u64>().ok()
        };
        match kind {
            b'C' => size = first_number(),
            b'T' => arrival = first_number(),
            // The envelope proper begins: the header records are done.
            b'S' | b'R' | b'M' | b'E' => break,
            _ => {}
        }
        if size.is_some() && arrival.is_some() {
            break;
        }
    }
    (size, arrival)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, data: &str) -> Vec<u8> {
        let mut out = vec![kind];
        let mut len = data.len();
        loop {
            let mut b = (len & 0x7f) as u8;
            len >>= 7;
            if len > 0 {
                b |= 0x80;
            }
            out.push(b);
            if len == 0 {
                break;
            }
        }
        out.extend_from_slice(data.as_bytes());
        out
    }

    #[test]
    fn queue_file_records() {
        let mut file = record(
            b'C',
            "            473             145               1               0             473               0",
        );
        file.extend(record(b'T', "1795893000 123456"));
        file.extend(record(b'S', "alice@example.test"));
        assert_eq!(first_records(&file), (Some(473), Some(1_795_893_000)));
        // A length over 127 bytes takes two length bytes.
        let long = "x".repeat(300);
        let mut file = record(b'F', &long);
        file.extend(record(b'T', "42 0"));
        assert_eq!(first_records(&file), (None, Some(42)));
        assert_eq!(first_records(b""), (None, None));
        assert_eq!(first_records(&[b'C', 0xff, 0xff, 0xff, 0xff, 0xff]), (None, None));
    }

    #[test]
    fn showq_attributes() {
        let mut out = Vec::new();
        for (queue, id, time, size) in [
            ("deferred", "8F404B69B2", 1000, 473),
            ("hold", "A5209B69C1", 2000, 9000),
            ("deferred", "22088B69C1", 3000, 100),
        ] {
            for (k, v) in [
                ("queue_name", queue),
                ("queue_id", id),
                ("time", &time.to_string()),
                ("size", &size.to_string()),
                ("forced_expire", "0"),
                ("sender", "a@b"),
                ("recipient", "c@d"),
                ("reason", "451 x\0"),
            ] {
                // The reason's NUL above is part of the test: a value ends at the first NUL.
                let v = v.trim_end_matches('\0');
                out.extend_from_slice(k.as_bytes());
                out.push(0);
                out.extend_from_slice(v.as_bytes());
                out.push(0);
            }
            out.push(0);
        }
        let snapshot = read_showq(&out[..], UNIX_EPOCH + Duration::from_secs(5000)).unwrap();
        let deferred = snapshot.stats("deferred");
        assert_eq!(
            (deferred.messages, deferred.bytes, deferred.oldest),
            (2, 573, Some(UNIX_EPOCH + Duration::from_secs(1000)))
        );
        assert_eq!(snapshot.stats("hold").messages, 1);
        assert_eq!(snapshot.stats("active").messages, 0);
        assert!(read_showq(&b"queue_name\0deferred"[..], SystemTime::now()).is_err());
    }

    #[test]
    fn showq_text() {
        let text = "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n\
                    A07A81514*     5156 Tue Feb 14 13:13:54  MAILER-DAEMON\n\
                                                             user@example.com\n\
                    \n\
                    B17A81515!      300 Mon Dec 31 23:59:59  a@b\n\
                    C27A81516       100 Wed Feb 15 00:00:00  a@b\n\
                    -- 6 Kbytes in 3 Requests.\n";
        // 2023-02-15 12:00:00 UTC
        let now = UNIX_EPOCH + Duration::from_secs(1_676_462_400);
        let snapshot = read_showq(text.as_bytes(), now).unwrap();
        assert_eq!(snapshot.stats("active").oldest, Some(UNIX_EPOCH + Duration::from_secs(1_676_380_434)));
        // December is last year's.
        assert_eq!(snapshot.stats("hold").oldest, Some(UNIX_EPOCH + Duration::from_secs(1_672_531_199)));
        assert_eq!((snapshot.stats("deferred").messages, snapshot.stats("deferred").bytes), (1, 100));
    }
}
