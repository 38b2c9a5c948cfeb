//! Property tests (proptest) for what must hold on any input:
//!
//! * any bytes through framing → decode → parse → classify: no panic, and
//!   bounded output (lines within the limit, every borrowed text part of
//!   its line, one counted result per complete line);
//! * a reply's class is its basic code's first digit, or the enhanced
//!   code's class when there is no basic code, whichever MTA logged it;
//! * the same bytes give the same lines whatever the read sizes: the line
//!   framer, the CRI/Docker partial-line decoder, and the syslog listener's
//!   TCP framing.
//!
//! The fuzz targets in `fuzz/` check the same invariants with coverage
//! guidance; these run on every `cargo test`.

use std::sync::Arc;

use mta_exporter::classify::Classifier;
use mta_exporter::decode::{Decoder, Entry, Format};
use mta_exporter::framing::LineFramer;
use mta_exporter::metrics::{LineResult, Metrics, MetricsOptions};
use mta_exporter::model::{scan_reply, Reply, ReplyClass};
use mta_exporter::parse::{Line, LineParser, MtaSelection, OtherParsers, ParsersSpec};
use mta_exporter::pipeline::{LineOptions, Pipeline};
use mta_exporter::source::syslog::{Finish, SyslogFramer};
use proptest::prelude::*;

fn within(part: &str, whole: &str) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

/// The class a reply must have: its basic code's first digit, else its
/// enhanced code's class.
fn expected_class(reply: &Reply<'_>) -> ReplyClass {
    let digit = match (reply.code, reply.enhanced) {
        (Some(code), _) => code.value() / 100,
        (None, Some(enhanced)) => u16::from(enhanced.class_digit()),
        (None, None) => panic!("a reply without any code: {reply:?}"),
    };
    match digit {
        2 => ReplyClass::Success,
        4 => ReplyClass::Transient,
        5 => ReplyClass::Permanent,
        other => panic!("class digit {other}: {reply:?}"),
    }
}

fn check_line(line: &Line<'_>, text: &str) {
    if let Line::Mta(record) = line {
        if let Some(reply) = &record.reply {
            assert_eq!(reply.class(), expected_class(reply), "{text:?}");
            assert!(reply.text.is_empty() || within(reply.text, text), "reply text not from the line: {text:?}");
        }
        if let Some(domain) = record.remote_domain {
            assert!(domain.is_empty() || within(domain, text));
        }
        assert!(record.recipients >= 1 && record.recipients as usize <= text.len().max(1), "{text:?}");
    }
}

/// Bytes that look like log lines often enough to reach the parsers:
/// fragments of real shapes mixed with arbitrary bytes.
fn loggish() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        Just(b"Nov 28 17:35:01 mx1 postfix/smtp[1]: 4F2A1C3D5E: ".to_vec()),
        Just(b"2026-11-28 17:35:01 1tGRwu-000DBc-0s ".to_vec()),
        Just(b"Nov  8 17:35:01 h sm-mta[5]: v12AbCd7004412: ".to_vec()),
        Just(b"c1a89cb774083905 mta delivery ".to_vec()),
        Just(b"2026-11-28T17:35:01.1Z stdout P ".to_vec()),
        Just(b"2026-11-28T17:35:01.1Z stdout F ".to_vec()),
        Just(b"{\"log\":\"".to_vec()),
        Just(b"{\"MESSAGE\":\"".to_vec()),
        Just(b"<22>1 2026-11-28T17:35:01Z mx1 exim - - [a b=\"c\"] ".to_vec()),
        Just(b"to=<a@b>, ".to_vec()),
        Just(b"to=<\"x>, y\"@b>, ".to_vec()),
        Just(b"status=sent (250 2.0.0 ok)".to_vec()),
        Just(b"stat=Deferred: 451 4.7.1 later".to_vec()),
        Just(b"result=\"TempFail\" stat=\"421 4.3.0 x\"".to_vec()),
        Just(b" said: 550 5.1.1 no (in reply to RCPT TO command)".to_vec()),
        Just(
            b"** a@b R=x T=y H=h [1.2.3.4]: SMTP error from remote mail server after RCPT TO:<a@b>: 550 5.1.1 no"
                .to_vec()
        ),
        Just(
            b"NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 <a@b>: denied; from=<a> to=<b> proto=SMTP helo=<h>"
                .to_vec()
        ),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(vec![0]),
        Just("é€😀".as_bytes().to_vec()),
        Just(vec![0xe2, 0x82]),
        Just(vec![0xc0, 0xaf, 0xe0, 0x80, 0xaf, 0xed, 0xa0, 0x80, 0xff]),
        proptest::collection::vec(any::<u8>(), 0..12),
        "[ -~]{0,16}".prop_map(String::into_bytes),
    ];
    proptest::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
}

/// Feeds `input` in pieces of the given sizes (cycled).
fn frame(input: &[u8], max_line: usize, sizes: &[usize]) -> Vec<(Vec<u8>, bool)> {
    let mut framer = LineFramer::new(max_line);
    let mut out = Vec::new();
    let mut rest = input;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = sizes.next().copied().unwrap_or(1).clamp(1, rest.len());
        framer.push(&rest[..n], |l| out.push((l.bytes.to_vec(), l.truncated)));
        rest = &rest[n..];
    }
    framer.flush(|l| out.push((l.bytes.to_vec(), l.truncated)));
    out
}

fn syslog_frames(input: &[u8], max: usize, sizes: &[usize]) -> (Vec<(Vec<u8>, bool)>, Finish) {
    let mut framer = SyslogFramer::new(max);
    let mut out = Vec::new();
    let mut collect = |m: &[u8], t: bool| out.push((m.to_vec(), t));
    let mut rest = input;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = sizes.next().copied().unwrap_or(1).clamp(1, rest.len());
        framer.push(&rest[..n], &mut collect);
        rest = &rest[n..];
    }
    let finish = framer.finish(&mut collect);
    (out, finish)
}

fn decode_all(format: Format, max_line: usize, lines: &[Vec<u8>]) -> Vec<String> {
    let mut decoder = Decoder::new(format, max_line);
    let mut out = Vec::new();
    for line in lines {
        if let Some(Entry::Text(text)) = decoder.decode(line) {
            out.push(text.into_owned());
        }
    }
    out.extend(decoder.flush().into_iter().filter_map(|e| match e {
        Entry::Text(t) => Some(t.into_owned()),
        _ => None,
    }));
    out
}

/// A message cut at the given byte offsets (sorted, deduplicated, inside).
fn cut(message: &[u8], mut at: Vec<usize>) -> Vec<&[u8]> {
    at.retain(|&a| a > 0 && a < message.len());
    at.sort_unstable();
    at.dedup();
    let mut pieces = Vec::new();
    let mut start = 0;
    for a in at {
        pieces.push(&message[start..a]);
        start = a;
    }
    pieces.push(&message[start..]);
    pieces
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any bytes through every stage, as a file source runs them, with every
    /// line format and MTA selection: no panic, bounded output, one counted
    /// result per complete line.
    #[test]
    fn any_bytes_through_every_stage(input in loggish(), max_line in 1usize..300, read in 1usize..64) {
        let classifier = Arc::new(Classifier::with_default_rules());
        let lines = frame(&input, max_line, &[read]);
        for (line, _) in &lines {
            prop_assert!(line.len() <= max_line);
            prop_assert!(!line.contains(&b'\n'));
        }
        let generic = Arc::new(OtherParsers::compile(&ParsersSpec { generic: true, custom: Vec::new() }).unwrap());
        for (format, mta, others) in [
            (Format::Auto, MtaSelection::Auto, Arc::new(OtherParsers::default())),
            (Format::Auto, MtaSelection::Auto, generic),
            (Format::Plain, MtaSelection::Exim, Arc::new(OtherParsers::default())),
            (Format::Cri, MtaSelection::Auto, Arc::new(OtherParsers::default())),
            (Format::Docker, MtaSelection::Sendmail, Arc::new(OtherParsers::default())),
            (Format::JournaldJson, MtaSelection::Auto, Arc::new(OtherParsers::default())),
        ] {
            let options = LineOptions { format, mta, others, max_line_bytes: max_line };
            let mut reader = mta_exporter::pipeline::LineReader::new(options.clone());
            for (line, _) in &lines {
                reader.read(line, &classifier, |text, parsed, c| {
                    check_line(parsed, text);
                    // A joined line is capped; a single one is its framed line, read lossily.
                    assert!(text.len() <= max_line.max(3 * line.len()));
                    if let (Line::Mta(r), Some(c)) = (parsed, c) {
                        assert_eq!(Some(c.class), r.reply.map(|reply| reply.class()));
                    }
                });
            }
            reader.finish(&classifier, |text, parsed, _| {
                check_line(parsed, text);
                assert!(text.len() <= max_line);
            });

            // The counting pipeline: exactly one result per line handed out.
            let metrics = Metrics::new(MetricsOptions::default());
            let mut pipeline = Pipeline::with_options("p", &metrics, &classifier, options);
            let mut results = 0usize;
            for (line, truncated) in &lines {
                let framed = mta_exporter::framing::FramedLine { bytes: line, truncated: *truncated };
                results += usize::from(pipeline.process(framed).is_some());
            }
            results += pipeline.finish().len();
            let exposition = metrics.encode_text();
            let counted: usize = LineResult::ALL
                .iter()
                .map(|r| {
                    let text = &exposition;
                    let needle = format!("mta_log_lines_total{{source=\"p\",result=\"{}\"}} ", r.label());
                    text.lines()
                        .find_map(|l| l.strip_prefix(needle.as_str()))
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(0.0) as usize
                })
                .sum();
            prop_assert_eq!(counted, results);
            prop_assert!(results <= lines.len());
        }
    }

    /// The class follows the basic code's first digit (else the enhanced
    /// code's) on every MTA's reply lines, whatever the codes and text.
    #[test]
    fn the_class_follows_the_code(
        code in 200u16..600,
        enhanced in proptest::option::of((0u8..8, 0u8..8, 0u16..1000)),
        basic in any::<bool>(),
        text in "[ -~]{0,40}",
    ) {
        let reply = match (basic, enhanced) {
            (true, Some((c, s, d))) => format!("{code} {}.{s}.{d} {text}", [2, 4, 5][usize::from(c % 3)]),
            (true, None) => format!("{code} {text}"),
            (false, Some((c, s, d))) => format!("{}.{s}.{d} {text}", [2, 4, 5][usize::from(c % 3)]),
            (false, None) => format!("{code}-{text}"),
        };
        let lines = [
            format!("Nov 28 17:35:01 mx1 postfix/smtp[1]: 4F2A1C3D5E: to=<a@b.c>, relay=h[1.2.3.4]:25, delay=1, dsn=5.0.0, status=bounced (host h[1.2.3.4] said: {reply} (in reply to RCPT TO command))"),
            format!("Nov 28 17:35:01 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[1.2.3.4]: {reply}; from=<a@b> to=<c@d> proto=ESMTP helo=<h>"),
            format!("2026-11-28 17:35:01 1tGRwu-000DBc-0s ** a@b.c R=r T=t H=h [1.2.3.4]: SMTP error from remote mail server after RCPT TO:<a@b.c>: {reply}"),
            format!("2026-11-28 17:35:01 1tGRwu-000DBc-0s => a@b.c R=r T=t H=h [1.2.3.4] C=\"{}\"", reply.replace('"', "\\\"")),
            format!("Nov 28 17:35:01 h sm-mta[5]: v12AbCd7004412: to=<a@b.c>, delay=00:00:01, mailer=esmtp, pri=1, relay=h. [1.2.3.4], dsn=4.0.0, stat=Deferred: {reply}"),
            format!("Nov 28 17:35:01 h smtpd[5]: c1a89cb774083905 smtp failed-command command=\"RCPT TO:<a@b>\" result=\"{reply}\""),
            format!("Nov 28 17:35:01 h smtpd[5]: c1a89cb774083905 mta delivery evpid=1 from=<a@b> to=<c@d> rcpt=<-> source=\"1.2.3.4\" relay=\"h\" delay=1s result=\"TempFail\" stat=\"{reply}\""),
        ];
        let classifier = Classifier::with_default_rules();
        let mut parser = LineParser::default();
        for line in &lines {
            let parsed = parser.parse(line);
            check_line(&parsed, line);
            if let Line::Mta(record) = parsed {
                if let Some(reply) = record.reply {
                    let c = classifier.classify(&reply);
                    prop_assert_eq!(c.class, expected_class(&reply));
                }
            }
        }
        // And on the bare reply.
        if let Some((code, enhanced, at)) = scan_reply(&reply) {
            prop_assert!(at <= reply.len());
            let parsed = Reply {
                code,
                enhanced,
                text: &reply[at..],
                direction: mta_exporter::model::Direction::Outbound,
                phase: mta_exporter::model::Phase::Rcpt,
            };
            prop_assert_eq!(classifier.classify(&parsed).class, expected_class(&parsed));
        }
    }

    /// Reading the same bytes in different pieces gives the same lines,
    /// including the truncation mark of over-long lines.
    #[test]
    fn framing_does_not_depend_on_read_sizes(
        input in loggish(),
        max_line in 1usize..200,
        sizes in proptest::collection::vec(1usize..300, 1..6),
    ) {
        let whole = frame(&input, max_line, &[input.len().max(1)]);
        prop_assert_eq!(frame(&input, max_line, &sizes), whole.clone());
        prop_assert_eq!(frame(&input, max_line, &[1]), whole);
    }

    /// A container runtime may split a line anywhere, even inside a UTF-8
    /// character: CRI `P` pieces and Docker partial `log` values are joined
    /// back into the same line whatever the cut points.
    #[test]
    fn partial_lines_join_whatever_the_cuts(
        messages in proptest::collection::vec("[^\n\r]{0,30}", 1..5),
        cuts in proptest::collection::vec(proptest::collection::vec(0usize..120, 0..5), 5),
    ) {
        let max_line = 1024;
        let mut cri = Vec::new();
        for (message, at) in messages.iter().zip(&cuts) {
            let pieces = cut(message.as_bytes(), at.clone());
            let last = pieces.len() - 1;
            for (i, piece) in pieces.into_iter().enumerate() {
                let mut line = format!("2026-11-28T17:35:01.{i}Z stdout {} ", if i == last { 'F' } else { 'P' }).into_bytes();
                line.extend_from_slice(piece);
                cri.push(line);
            }
        }
        prop_assert_eq!(decode_all(Format::Cri, max_line, &cri), messages.clone());

        // Docker cuts between characters (its JSON values are strings).
        let mut docker = Vec::new();
        for (message, at) in messages.iter().zip(&cuts) {
            let mut at = at.clone();
            at.retain(|&a| message.is_char_boundary(a.min(message.len())));
            let pieces = cut(message.as_bytes(), at);
            let last = pieces.len() - 1;
            for (i, piece) in pieces.into_iter().enumerate() {
                let mut log = String::from_utf8(piece.to_vec()).unwrap();
                if i == last {
                    log.push('\n');
                }
                let json = format!("{{\"log\":{},\"stream\":\"stdout\",\"time\":\"t\"}}", json_string(&log));
                docker.push(json.into_bytes());
            }
        }
        prop_assert_eq!(decode_all(Format::Docker, max_line, &docker), messages);
    }

    /// A joined line is cut at the limit, never longer, whatever its bytes.
    #[test]
    fn joined_lines_are_capped(pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8), max_line in 1usize..64) {
        let mut lines: Vec<Vec<u8>> = pieces
            .iter()
            .map(|p| {
                let mut line = b"2026-11-28T17:35:01Z stderr P ".to_vec();
                line.extend(p.iter().map(|&b| if b == b'\n' { b'x' } else { b }));
                line
            })
            .collect();
        lines.push(b"2026-11-28T17:35:01Z stderr F end".to_vec());
        for text in decode_all(Format::Cri, max_line, &lines) {
            prop_assert!(text.len() <= max_line, "{} > {}", text.len(), max_line);
        }
    }

    /// The syslog listener's TCP framing gives the same messages whatever
    /// the read sizes, and octet-counted frames carry any bytes through.
    #[test]
    fn syslog_tcp_framing_does_not_depend_on_read_sizes(
        input in loggish(),
        max in 1usize..200,
        sizes in proptest::collection::vec(1usize..300, 1..6),
    ) {
        let whole = syslog_frames(&input, max, &[input.len().max(1)]);
        for (message, _) in &whole.0 {
            prop_assert!(message.len() <= max);
        }
        prop_assert_eq!(syslog_frames(&input, max, &sizes), whole.clone());
        prop_assert_eq!(syslog_frames(&input, max, &[1]), whole);
    }

    #[test]
    fn octet_counted_frames_carry_any_bytes(
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..50), 1..6),
        sizes in proptest::collection::vec(1usize..64, 1..4),
    ) {
        let mut stream = Vec::new();
        for m in &messages {
            stream.extend_from_slice(format!("{} ", m.len()).as_bytes());
            stream.extend_from_slice(m);
        }
        let (got, finish) = syslog_frames(&stream, 1024, &sizes);
        prop_assert_eq!(finish, Finish::Clean);
        // Trailing line ends are not part of a message (a sender's `\n` after the frame).
        let want: Vec<(Vec<u8>, bool)> = messages
            .iter()
            .map(|m| {
                let mut m = m.as_slice();
                while let Some(rest) = m.strip_suffix(b"\n").or_else(|| m.strip_suffix(b"\r")) {
                    m = rest;
                }
                (m.to_vec(), false)
            })
            .filter(|(m, _)| !m.is_empty())
            .collect();
        prop_assert_eq!(got, want);
    }

    /// Newline-framed messages keep their bytes, leading digits and zeros
    /// included (`007 …` is not a length without the space).
    #[test]
    fn newline_frames_keep_their_bytes(messages in proptest::collection::vec("[0-9]{0,12}[a-z<>]{1,10}[ -~]{0,20}", 1..6), sizes in proptest::collection::vec(1usize..16, 1..4)) {
        let stream: String = messages.iter().map(|m| format!("{m}\n")).collect();
        let (got, finish) = syslog_frames(stream.as_bytes(), 1024, &sizes);
        prop_assert_eq!(finish, Finish::Clean);
        let got: Vec<String> = got.into_iter().map(|(m, _)| String::from_utf8(m).unwrap()).collect();
        prop_assert_eq!(got, messages);
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
