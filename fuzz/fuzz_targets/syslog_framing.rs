//! The syslog listener's TCP framing (RFC 6587 octet counting and
//! newlines, decided per frame): the same messages whatever the read
//! sizes, each within the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_exporter::source::syslog::{Finish, SyslogFramer};

fn frames(input: &[u8], max: usize, chunks: &[usize]) -> (Vec<(Vec<u8>, bool)>, Finish) {
    let mut framer = SyslogFramer::new(max);
    let mut out = Vec::new();
    let mut collect = |m: &[u8], t: bool| out.push((m.to_vec(), t));
    let mut rest = input;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        framer.push(&rest[..n], &mut collect);
        rest = &rest[n..];
    }
    let finish = framer.finish(&mut collect);
    (out, finish)
}

fuzz_target!(|data: &[u8]| {
    let [a, b, rest @ ..] = data else { return };
    let max = usize::from(*a) + 1;
    let whole = frames(rest, max, &[rest.len().max(1)]);
    for (message, _) in &whole.0 {
        assert!(message.len() <= max, "{} > {max}", message.len());
        assert!(!message.is_empty());
    }
    for chunks in [vec![1], vec![usize::from(*b) + 1, 3]] {
        assert_eq!(frames(rest, max, &chunks), whole, "chunks {chunks:?}");
    }
});
