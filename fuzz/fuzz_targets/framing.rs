//! Line framing: the same bytes give the same lines whatever the read
//! sizes, every line within the limit and without its terminator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_exporter::framing::LineFramer;

fn frame(input: &[u8], max_line: usize, chunks: &[usize]) -> Vec<(Vec<u8>, bool)> {
    let mut framer = LineFramer::new(max_line);
    let mut out = Vec::new();
    let mut rest = input;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        framer.push(&rest[..n], |l| out.push((l.bytes.to_vec(), l.truncated)));
        rest = &rest[n..];
    }
    framer.flush(|l| out.push((l.bytes.to_vec(), l.truncated)));
    out
}

fuzz_target!(|data: &[u8]| {
    let [a, b, c, rest @ ..] = data else { return };
    let max_line = usize::from(*a) + 1;
    let whole = frame(rest, max_line, &[rest.len().max(1)]);
    for (line, _) in &whole {
        assert!(line.len() <= max_line);
        assert!(!line.contains(&b'\n'));
    }
    for chunks in [vec![1], vec![usize::from(*b) + 1, usize::from(*c) + 1], vec![max_line, 1], vec![max_line + 1]] {
        assert_eq!(frame(rest, max_line, &chunks), whole, "chunks {chunks:?}, max_line {max_line}");
    }
});
