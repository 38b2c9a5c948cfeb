//! Line framing: bytes in from any source, complete lines out, with bounded
//! memory and no allocation per line.
//!
//! One fixed buffer is rolled forward (the model is ripgrep's
//! `line_buffer.rs`): a read appends after the data already held, every
//! complete line is handed out as a slice into the buffer, and the partial
//! line at the end stays until its newline arrives. A line longer than the
//! limit is cut: its first `max_line` bytes are handed out marked as
//! truncated (and still parsed), the rest is skipped up to its newline.
//!
//! The buffer grows on demand up to `max_line + READ_CHUNK`, so a quiet file
//! (one of many matched by a glob) costs one read chunk, not the maximum.

use std::io::{self, Read};

/// Default for `limits.max_line_bytes`.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// Bytes read per call; also the room kept free beyond one maximal line.
const READ_CHUNK: usize = 64 * 1024;

/// A complete line (without `\n`, and without a `\r` before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramedLine<'a> {
    pub bytes: &'a [u8],
    /// The line was longer than the limit and these are its first bytes.
    pub truncated: bool,
}

#[derive(Debug)]
pub struct LineFramer {
    /// Grows on demand, never beyond `max_line + READ_CHUNK`.
    buf: Vec<u8>,
    /// Start of the bytes not yet handed out; always `<= end`. The bytes in
    /// `start..end` hold no `\n` once [`LineFramer::drain`] has returned, so
    /// they are exactly the current partial line.
    start: usize,
    /// End of the valid bytes.
    end: usize,
    max_line: usize,
    /// Skipping the rest of an over-long line up to its newline.
    discarding: bool,
}

impl LineFramer {
    pub fn new(max_line: usize) -> Self {
        let max_line = max_line.max(1);
        LineFramer { buf: Vec::new(), start: 0, end: 0, max_line, discarding: false }
    }

    /// Bytes of a partial line being held.
    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Skipping the rest of an over-long line (its head was handed out).
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// The last `n` bytes that the most recent [`LineFramer::fill`] read.
    pub fn last_read(&self, n: usize) -> &[u8] {
        &self.buf[self.end - n.min(self.end)..self.end]
    }

    /// Reads once from `reader` into the buffer. Returns the bytes read
    /// (0 at end of input). Call [`LineFramer::drain`] after each fill.
    pub fn fill(&mut self, reader: &mut impl Read) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let cap = self.max_line + READ_CHUNK;
        let room = (cap - self.end).min(READ_CHUNK);
        if self.buf.len() < self.end + room {
            self.buf.resize(self.end + room, 0);
        }
        let n = loop {
            match reader.read(&mut self.buf[self.end..self.end + room]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.end += n;
        Ok(n)
    }

    /// Appends bytes that arrived by other means (a datagram, a test).
    pub fn push(&mut self, mut bytes: &[u8], mut on_line: impl FnMut(FramedLine<'_>)) {
        while !bytes.is_empty() {
            let n = self.fill(&mut bytes).unwrap_or(0);
            if n == 0 {
                break;
            }
            self.drain(&mut on_line);
        }
    }

    /// Hands out every complete line held; keeps the partial one.
    pub fn drain(&mut self, mut on_line: impl FnMut(FramedLine<'_>)) {
        loop {
            let data = &self.buf[self.start..self.end];
            match memchr::memchr(b'\n', data) {
                Some(nl) => {
                    if self.discarding {
                        self.discarding = false;
                    } else if nl > self.max_line {
                        on_line(FramedLine { bytes: &data[..self.max_line], truncated: true });
                    } else {
                        on_line(FramedLine { bytes: trim_cr(&data[..nl]), truncated: false });
                    }
                    self.start += nl + 1;
                }
                None => {
                    if self.discarding {
                        self.start = self.end;
                    } else if data.len() > self.max_line {
                        // Only once the line is known to be longer than the
                        // limit: a line of exactly `max_line` bytes whose
                        // newline is in the next read is whole, as when
                        // both arrive in one read.
                        on_line(FramedLine { bytes: &data[..self.max_line], truncated: true });
                        self.start = self.end;
                        self.discarding = true;
                    }
                    return;
                }
            }
        }
    }

    /// Hands out the partial line as a complete one: the input ended without
    /// a final newline (end of stdin, a rotated file's last line).
    pub fn flush(&mut self, mut on_line: impl FnMut(FramedLine<'_>)) {
        if self.end > self.start && !self.discarding {
            on_line(FramedLine { bytes: trim_cr(&self.buf[self.start..self.end]), truncated: false });
        }
        self.reset();
    }

    /// Forgets the partial line (its file was truncated under it).
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        self.discarding = false;
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `chunk` bytes; returns the lines.
    fn frame(input: &[u8], chunk: usize, max_line: usize) -> Vec<(String, bool)> {
        let mut framer = LineFramer::new(max_line);
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            framer.push(piece, |l| out.push((String::from_utf8_lossy(l.bytes).into_owned(), l.truncated)));
        }
        framer.flush(|l| out.push((String::from_utf8_lossy(l.bytes).into_owned(), l.truncated)));
        out
    }

    #[test]
    fn same_lines_whatever_the_read_size() {
        let input = b"one\ntwo\r\n\nthree\nlast without newline";
        let want: Vec<(String, bool)> =
            ["one", "two", "", "three", "last without newline"].iter().map(|s| (s.to_string(), false)).collect();
        for chunk in [1, 2, 3, 5, 7, 64, 1024] {
            assert_eq!(frame(input, chunk, 100), want, "chunk {chunk}");
        }
    }

    #[test]
    fn long_lines_are_cut_and_marked() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 25));
        input.extend(b"\nafter\n");
        for chunk in [1, 4, 100] {
            assert_eq!(
                frame(&input, chunk, 10),
                vec![("short".into(), false), ("xxxxxxxxxx".into(), true), ("after".into(), false)],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_whole() {
        // Whatever the read boundaries: in particular a read that ends
        // right before the newline (found by the property tests).
        for chunk in [1, 3, 10, 11, 100] {
            assert_eq!(
                frame(b"0123456789\nx\n", chunk, 10),
                vec![("0123456789".into(), false), ("x".into(), false)],
                "chunk {chunk}"
            );
            assert_eq!(frame(b"0123456789", chunk, 10), vec![("0123456789".into(), false)], "chunk {chunk}");
            assert_eq!(frame(b"0123456789\r\n", chunk, 10), vec![("0123456789".into(), true)], "chunk {chunk}");
        }
    }

    #[test]
    fn memory_is_bounded_by_the_limit() {
        let mut framer = LineFramer::new(16);
        let huge = vec![b'a'; 10 * 1024 * 1024];
        let mut lines = 0;
        framer.push(&huge, |_| lines += 1);
        assert_eq!(lines, 1);
        assert!(framer.pending() < 16 + READ_CHUNK);
        assert!(framer.buf.len() <= 16 + READ_CHUNK);
    }

    #[test]
    fn a_quiet_framer_holds_one_chunk_at_most() {
        let mut framer = LineFramer::new(DEFAULT_MAX_LINE);
        assert_eq!(framer.buf.len(), 0);
        framer.push(b"short line\n", |_| {});
        assert!(framer.buf.len() <= READ_CHUNK);
    }
}
