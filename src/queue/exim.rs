//! Exim's queue: the spool's `input/` directory (with
//! `split_spool_directory`, one subdirectory per last letter of the
//! message id). Each message is an `ID-H` header file and an `ID-D` data
//! file, the set `exim -bpc` counts.
//!
//! From the `-H` file: line 4 is `<arrival seconds> <warning count>`; the
//! option lines that follow (`-frozen <seconds>` marks a frozen message);
//! after the recipients and a blank line, the headers, each `NNNf text`
//! with `NNN` its length. The size is what `exim -bp` prints: the header
//! lengths plus the `-D` file without its first line (`ID-D\n`), plus one
//! for the blank line between headers and body.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::postfix::walk;
use super::{Message, QueueError, Snapshot};

/// `input` (waiting for delivery) and `frozen` (Exim stopped trying).
pub const QUEUES: [&str; 2] = ["input", "frozen"];

pub fn read_spool(spool: &Path) -> Result<Snapshot, QueueError> {
    let mut snapshot = Snapshot::new(&QUEUES);
    walk(&spool.join("input"), 1, &mut |path| {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return Ok(()) };
        let Some(id) = name.strip_suffix("-H") else { return Ok(()) };
        let header = match fs::read(path) {
            Ok(header) => header,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(QueueError::io(format!("reading spool file {}", path.display()), e)),
        };
        let parsed = parse_header_file(&header);
        let data = path.with_file_name(format!("{id}-D"));
        let data_len = fs::metadata(&data).map(|m| m.len()).ok();
        let size = match (parsed.header_bytes, data_len) {
            (Some(headers), Some(len)) => Some(headers + len.saturating_sub(id.len() as u64 + 3) + 1),
            _ => None,
        };
        let message = Message { arrival: parsed.arrival.map(|s| UNIX_EPOCH + Duration::from_secs(s)), size };
        snapshot.add(if parsed.frozen { "frozen" } else { "input" }, message);
        Ok(())
    })?;
    Ok(snapshot)
}

/// What a `-H` file says about its message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HeaderFile {
    pub arrival: Option<u64>,
    pub frozen: bool,
    /// The sum of the header lengths; `None` when the file is cut short.
    pub header_bytes: Option<u64>,
}

pub fn parse_header_file(bytes: &[u8]) -> HeaderFile {
    let mut out = HeaderFile::default();
    let mut lines = bytes.split(|&b| b == b'\n');
    // ID-H, then the user line, then the sender.
    for _ in 0..3 {
        if lines.next().is_none() {
            return out;
        }
    }
    out.arrival = lines.next().and_then(|l| std::str::from_utf8(l).ok()?.split(' ').next()?.parse().ok());
    // Options, the non-recipients tree, the recipient count and list, up to
    // the blank line; the headers follow it.
    let mut consumed = 0usize;
    for line in bytes.split(|&b| b == b'\n').take(4) {
        consumed += line.len() + 1;
    }
    let mut rest = bytes.get(consumed..).unwrap_or(&[]);
    loop {
        let Some(end) = rest.iter().position(|&b| b == b'\n') else { return out };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        if line.is_empty() {
            break;
        }
        if line.starts_with(b"-frozen ") || line == b"-frozen" {
            out.frozen = true;
        }
    }
    let mut total = 0u64;
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits < 3 || rest.len() < digits + 2 || rest[digits + 1] != b' ' {
            return out;
        }
        let Some(len) = std::str::from_utf8(&rest[..digits]).ok().and_then(|d| d.parse::<usize>().ok()) else {
            return out;
        };
        let start = digits + 2;
        let Some(next) = rest.get(start + len..) else { return out };
        total += len as u64;
        rest = next;
    }
    out.header_bytes = Some(total);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `-H` file as Exim writes it: each header `NNNf text`, `NNN` the
    /// length of the text with its newline.
    fn header_file(frozen: bool, headers: &[(char, &str)]) -> String {
        let mut out = String::from("1xXOLN-0006kV-2F-H\nDebian-exim 101 101\n<alice@example.test>\n1795892661 0\n-received_time_usec .714281\n-ident Debian-exim\n-body_linecount 3\n");
        if frozen {
            out.push_str("-frozen 1795892700\n");
        }
        out.push_str("XX\n1\nrcpt@expire.test\n\n");
        for (flag, text) in headers {
            out.push_str(&format!("{:03}{flag} {text}", text.len()));
        }
        out
    }

    #[test]
    fn header_files() {
        let headers = [
            ('P', "Received: from [127.0.0.1] (port=60808 helo=x)\n"),
            ('T', "To: r@x.test\n"),
            (' ', "Subject: two\n  lines here\n"),
        ];
        let file = header_file(true, &headers);
        let parsed = parse_header_file(file.as_bytes());
        let lengths: usize = headers.iter().map(|(_, text)| text.len()).sum();
        assert_eq!(lengths, 47 + 13 + 26);
        assert_eq!(parsed, HeaderFile { arrival: Some(1_795_892_661), frozen: true, header_bytes: Some(86) });
        let cut = &file.as_bytes()[..file.len() - 5];
        assert_eq!(parse_header_file(cut).header_bytes, None);
        assert!(!parse_header_file(header_file(false, &headers).as_bytes()).frozen);
        assert_eq!(parse_header_file(b"x\n"), HeaderFile::default());
    }
}
