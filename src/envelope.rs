//! Line envelopes: the syslog-style prefix (`timestamp host program[pid]: `)
//! that a log line carries before the MTA's own text.
//!
//! Owns the prefixes that mail log *files* use: RFC 3164 as syslogd and
//! rsyslog's traditional format write it (space- or zero-padded day, an
//! optional BSD `<facility.level>` tag, an optional `<PRI>`), RFC 3339 as
//! Debian 12+/RHEL 8+ rsyslog writes it, Postfix's own `maillog_file`
//! (RFC 3164 shape with a zero-padded day), and RFC 5424 (`<PRI>1
//! TIMESTAMP HOST APP PROCID MSGID [SD] MSG`, with or without structured
//! data), which a few relays write to files. `\r\n` endings are removed by
//! the framing, and lines are read lossily before they get here.
//!
//! This is hand-written on purpose: `syslog_loose` parses the same lines
//! (and is the right tool for messages arriving on a syslog socket) but costs
//! ~530 ns a line here (1.9 M lines/s for the prefix alone, measured on a
//! genlog.py file), which alone would exceed the exporter's whole per-line
//! budget. The prefix of a file line is a fixed shape that a byte scanner
//! reads in a few dozen nanoseconds, and the timestamp is only turned into a
//! number once per read batch, not per line. RFC 5424 lines (recognized by
//! their `<PRI>1 ` start) are rare in files and have structured data with
//! escapes: those go to `syslog_loose`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The parts of a syslog-style line. All fields borrow from the line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Envelope<'a> {
    pub timestamp: Timestamp<'a>,
    /// Empty when the writer left the host out.
    pub host: &'a str,
    /// The syslog tag without the pid: `postfix/smtpd`, `postfix-mx/submission/smtpd`.
    pub program: &'a str,
    pub pid: Option<&'a str>,
    /// Everything after `program[pid]: `.
    pub message: &'a str,
}

/// A line's own timestamp, kept as text until someone needs the number.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Timestamp<'a> {
    /// `Nov  8 17:35:01` (no year, local time of the writer).
    Rfc3164(&'a str),
    /// `2026-11-28T17:35:01.123456+00:00`.
    Rfc3339(&'a str),
    /// An RFC 5424 line with the nil timestamp `-`.
    Nil,
}

const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// Splits a line into its envelope. Returns `None` for lines with no syslog
/// prefix (for example Exim's own mainlog), which the MTA parsers try next.
pub fn parse(line: &str) -> Option<Envelope<'_>> {
    let bytes = line.as_bytes();
    let mut pos = skip_pri(bytes);
    if pos > 0 && bytes.get(pos) == Some(&b'1') && bytes.get(pos + 1) == Some(&b' ') {
        return rfc5424(line, pos + 2);
    }
    let (timestamp, ts_end) = match bytes.get(pos) {
        Some(b'0'..=b'9') => {
            let len = rfc3339_len(&bytes[pos..])?;
            (Timestamp::Rfc3339(&line[pos..pos + len]), pos + len)
        }
        Some(b'A'..=b'Z') => {
            let len = rfc3164_len(&bytes[pos..])?;
            (Timestamp::Rfc3164(&line[pos..pos + len]), pos + len)
        }
        _ => return None,
    };
    pos = ts_end;
    if bytes.get(pos) != Some(&b' ') {
        return None;
    }
    pos += 1;
    // BSD syslogd -v writes `<mail.notice> ` between timestamp and host.
    if bytes.get(pos) == Some(&b'<') {
        let close = memchr::memchr(b'>', &bytes[pos..])?;
        pos += close + 1;
        if bytes.get(pos) != Some(&b' ') {
            return None;
        }
        pos += 1;
    }
    // Host names and tags are short: plain loops here, `memchr` costs more
    // to start than these searches take.
    let first_end = pos + bytes[pos..].iter().position(|&b| b == b' ')?;
    let first = &line[pos..first_end];
    // A writer that leaves the host out puts the tag right here.
    let (host, tag_start) = if is_tag(first) { ("", pos) } else { (first, first_end + 1) };
    let (program, pid, message_start) = parse_tag(line, tag_start)?;
    Some(Envelope { timestamp, host, program, pid, message: &line[message_start..] })
}

/// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`; `header` is where the
/// timestamp starts. The program is APP-NAME; a nil (`-`) host or PROCID is
/// empty / absent.
fn rfc5424(line: &str, header: usize) -> Option<Envelope<'_>> {
    let message = syslog_loose::parse_message_with_year_exact(line, |_| 1970, syslog_loose::Variant::RFC5424).ok()?;
    let program = message.appname?;
    let mut tokens = line[header..].split(' ');
    let timestamp = match tokens.next()? {
        "-" => Timestamp::Nil,
        text => Timestamp::Rfc3339(text),
    };
    let _host = tokens.next();
    let _app = tokens.next();
    let pid = tokens.next().filter(|p| *p != "-");
    let text = message.msg;
    Some(Envelope {
        timestamp,
        host: message.hostname.unwrap_or(""),
        program,
        pid,
        message: text.strip_prefix('\u{feff}').unwrap_or(text),
    })
}

fn skip_pri(bytes: &[u8]) -> usize {
    if bytes.first() != Some(&b'<') {
        return 0;
    }
    let digits = bytes[1..].iter().take(4).take_while(|b| b.is_ascii_digit()).count();
    if digits > 0 && bytes.get(1 + digits) == Some(&b'>') {
        1 + digits + 1
    } else {
        0
    }
}

fn is_tag(token: &str) -> bool {
    token.ends_with(':') || (token.ends_with("]:") && token.contains('['))
}

/// `prog[pid]: ` or `prog: `; returns program, pid and where the message starts.
fn parse_tag(line: &str, start: usize) -> Option<(&str, Option<&str>, usize)> {
    let bytes = line.as_bytes();
    let rest = &bytes[start..];
    let stop = rest.iter().position(|&b| matches!(b, b'[' | b':' | b' '))?;
    if stop == 0 {
        return None;
    }
    let program = &line[start..start + stop];
    let (pid, after) = match rest[stop] {
        b'[' => {
            let close = rest[stop..].iter().position(|&b| b == b']')? + stop;
            (Some(&line[start + stop + 1..start + close]), close + 1)
        }
        b':' => (None, stop),
        _ => return None,
    };
    if rest.get(after) != Some(&b':') {
        return None;
    }
    let mut message = start + after + 1;
    if bytes.get(message) == Some(&b' ') {
        message += 1;
    }
    Some((program, pid, message))
}

/// Length of `Mmm dd hh:mm:ss` with the day as `dd`, ` d` or `d`.
fn rfc3164_len(b: &[u8]) -> Option<usize> {
    if b.len() < 14 || month_index(&b[..3]).is_none() || b[3] != b' ' {
        return None;
    }
    let day_len = match (b[4], b[5]) {
        (b' ', d) if d.is_ascii_digit() => 2,
        (d1, d2) if d1.is_ascii_digit() && d2.is_ascii_digit() => 2,
        (d, b' ') if d.is_ascii_digit() => 1,
        _ => return None,
    };
    let time = 4 + day_len + 1;
    if b.get(time - 1) != Some(&b' ') || !is_clock(b.get(time..time + 8)?) {
        return None;
    }
    Some(time + 8)
}

/// 0 for `Jan` … 11 for `Dec`. Compared as one number: twelve slice
/// comparisons were a tenth of the envelope's cost on every line.
fn month_index(name: &[u8]) -> Option<usize> {
    let [a, b, c] = *name else { return None };
    let key = u32::from_le_bytes([a, b, c, 0]);
    MONTHS.iter().position(|m| u32::from_le_bytes([m[0], m[1], m[2], 0]) == key)
}

fn is_clock(t: &[u8]) -> bool {
    t.len() == 8 && t[2] == b':' && t[5] == b':' && [0, 1, 3, 4, 6, 7].iter().all(|&i| t[i].is_ascii_digit())
}

/// Length of `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM|±HHMM)`.
fn rfc3339_len(b: &[u8]) -> Option<usize> {
    if b.len() < 20
        || !b[..4].iter().all(u8::is_ascii_digit)
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || !is_clock(&b[11..19])
    {
        return None;
    }
    let mut pos = 19;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let digits = b[pos..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        pos += digits;
    }
    match b.get(pos) {
        Some(b'Z') => Some(pos + 1),
        Some(b'+' | b'-') => {
            let zone = &b[pos + 1..];
            if zone.len() >= 5 && zone[2] == b':' && zone[..2].iter().chain(&zone[3..5]).all(u8::is_ascii_digit) {
                Some(pos + 6)
            } else if zone.len() >= 4 && zone[..4].iter().all(u8::is_ascii_digit) {
                Some(pos + 5)
            } else {
                None
            }
        }
        _ => None,
    }
}

impl Timestamp<'_> {
    /// Seconds since the epoch. RFC 3164 stamps have no year and no zone:
    /// they are read as UTC in the year of `now`, or the year before when
    /// that would put them more than a day in the future (a December line
    /// read in January).
    pub fn to_system_time(self, now: SystemTime) -> Option<SystemTime> {
        let secs = match self {
            Timestamp::Rfc3339(text) => rfc3339_seconds(text.as_bytes())?,
            Timestamp::Rfc3164(text) => {
                let now_secs = now.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
                let year = civil_from_days(now_secs.div_euclid(86_400)).0;
                let this_year = rfc3164_seconds(text.as_bytes(), year)?;
                if this_year > now_secs + 86_400 {
                    rfc3164_seconds(text.as_bytes(), year - 1)?
                } else {
                    this_year
                }
            }
            Timestamp::Nil => return None,
        };
        let secs = u64::try_from(secs).ok()?;
        Some(UNIX_EPOCH + Duration::from_secs(secs))
    }
}

fn number(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
}

fn clock_seconds(t: &[u8]) -> Option<i64> {
    Some(number(&t[0..2])? * 3600 + number(&t[3..5])? * 60 + number(&t[6..8])?)
}

fn rfc3164_seconds(b: &[u8], year: i64) -> Option<i64> {
    let month = month_index(&b[..3])? as i64 + 1;
    let day_text = std::str::from_utf8(&b[4..6]).ok()?.trim();
    let day = number(day_text.as_bytes())?;
    let clock = &b[b.len() - 8..];
    Some(days_from_civil(year, month, day) * 86_400 + clock_seconds(clock)?)
}

fn rfc3339_seconds(b: &[u8]) -> Option<i64> {
    let days = days_from_civil(number(&b[0..4])?, number(&b[5..7])?, number(&b[8..10])?);
    let mut secs = days * 86_400 + clock_seconds(&b[11..19])?;
    let zone_at = b.iter().skip(19).position(|c| matches!(c, b'Z' | b'+' | b'-'))? + 19;
    if b[zone_at] != b'Z' {
        let zone = &b[zone_at + 1..];
        let (h, m) = if zone.get(2) == Some(&b':') { (&zone[0..2], &zone[3..5]) } else { (&zone[0..2], &zone[2..4]) };
        let offset = number(h)? * 3600 + number(m)? * 60;
        secs -= if b[zone_at] == b'+' { offset } else { -offset };
    }
    Some(secs)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (host, program, pid, message)
    type Parts = (&'static str, &'static str, Option<&'static str>, &'static str);

    #[test]
    fn envelopes() {
        let cases: &[(&str, Option<Parts>)] = &[
            (
                "Nov  8 17:35:01 mx1 postfix/smtp[123]: 4F2A: to=<a@b>",
                Some(("mx1", "postfix/smtp", Some("123"), "4F2A: to=<a@b>")),
            ),
            (
                "Jun 04 22:24:28 machine postfix/smtpd[3967801]: NOQUEUE",
                Some(("machine", "postfix/smtpd", Some("3967801"), "NOQUEUE")),
            ),
            ("Mar 7 02:09:33 server postfix/smtpd[27246]: x", Some(("server", "postfix/smtpd", Some("27246"), "x"))),
            (
                "2026-11-28T17:35:01.123456+00:00 mx1 postfix-mx/submission/smtpd[9]: hi",
                Some(("mx1", "postfix-mx/submission/smtpd", Some("9"), "hi")),
            ),
            ("2026-11-28T17:35:01Z h dovecot: imap-login: x", Some(("h", "dovecot", None, "imap-login: x"))),
            ("2026-11-28T17:35:01+0100 h postfix/qmgr[1]: y", Some(("h", "postfix/qmgr", Some("1"), "y"))),
            (
                "Jun 18 08:05:17 <mail.notice> myhost sm-mta[17002]: 55IC: ruleset",
                Some(("myhost", "sm-mta", Some("17002"), "55IC: ruleset")),
            ),
            ("<22>Nov  8 17:35:01 h postfix/smtp[1]: z", Some(("h", "postfix/smtp", Some("1"), "z"))),
            ("Nov  8 17:35:01 postfix/smtp[1]: no host", Some(("", "postfix/smtp", Some("1"), "no host"))),
            ("Nov  8 17:35:01 h postfix/smtp[1]:", Some(("h", "postfix/smtp", Some("1"), ""))),
            (
                "<22>1 2026-11-28T17:35:01.123456+00:00 mx1 postfix/smtpd 3967801 - - NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 no",
                Some(("mx1", "postfix/smtpd", Some("3967801"), "NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 no")),
            ),
            (
                "<22>1 2026-11-28T17:35:01Z mx1 exim - - [meta sequenceId=\"1\" note=\"a \\] b\"][origin ip=\"10.0.0.1\"] 1tGRwu-005JDt-tU Completed",
                Some(("mx1", "exim", None, "1tGRwu-005JDt-tU Completed")),
            ),
            (
                "<22>1 - - smtpd 88 ID47 - \u{feff}88166f7f21c951f4 smtp connected address=1.2.3.4 host=<unknown>",
                Some(("", "smtpd", Some("88"), "88166f7f21c951f4 smtp connected address=1.2.3.4 host=<unknown>")),
            ),
            ("<22>1 2026-11-28T17:35:01Z mx1 - - - no program", None),
            ("2023-05-30 06:10:13.345 login authenticator failed", None),
            ("1999-03-02 09:44:33 10HmaX-000000005vi-0000 => b@test.ex", None),
            ("Nov  8 17:35:01 host just some words", None),
            ("garbage", None),
            ("", None),
            ("Nov", None),
        ];
        for (line, want) in cases {
            let got = parse(line).map(|e| (e.host, e.program, e.pid, e.message));
            assert_eq!(got, *want, "{line}");
        }
    }

    #[test]
    fn timestamps() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_780_800); // 2026-11-27T12:00:00Z
        let secs =
            |ts: Timestamp| ts.to_system_time(now).and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs());
        assert_eq!(secs(Timestamp::Rfc3339("2026-11-28T17:35:01.5+00:00")), Some(1_795_887_301));
        assert_eq!(secs(Timestamp::Rfc3339("2026-11-28T18:35:01+01:00")), Some(1_795_887_301));
        assert_eq!(secs(Timestamp::Rfc3339("2026-11-28T17:35:01Z")), Some(1_795_887_301));
        assert_eq!(secs(Timestamp::Rfc3164("Nov 27 11:00:00")), Some(1_795_777_200));
        assert_eq!(secs(Timestamp::Rfc3164("Nov  7 00:00:00")), Some(1_794_009_600));
        // A December line read in November of the next year would be in the
        // future: it belongs to the year before.
        assert_eq!(secs(Timestamp::Rfc3164("Dec 31 23:59:59")), Some(1_767_225_599));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }
}
