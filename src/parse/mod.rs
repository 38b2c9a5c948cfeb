//! MTA parsers: turn one log line into what it says about SMTP replies and
//! deliveries, or say that it is not an MTA line.
//!
//! Owns picking the MTA for a line (from the syslog program name) and the
//! result types every MTA parser returns. The parsers are pure functions on
//! `&str`; they never classify (that is [`crate::classify`]) and never count
//! (that is [`crate::metrics`]).

pub mod postfix;
mod scan;

use crate::envelope::{self, Envelope};
use crate::model::{DeliveryStatus, Mta, Reply};

/// What one MTA line says.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Record<'a> {
    pub mta: Mta,
    /// The SMTP reply the line carries, if any.
    pub reply: Option<Reply<'a>>,
    /// The delivery outcome the line reports, if any.
    pub delivery: Option<DeliveryStatus>,
    /// The reply was only logged, never sent: Postfix `reject_warning`
    /// (`warn_if_reject`), a dry run of a restriction.
    pub warning_only: bool,
    /// The recipient's domain on outbound delivery lines (for `report`;
    /// never a metric label, it is unbounded).
    pub remote_domain: Option<&'a str>,
}

impl<'a> Record<'a> {
    pub fn new(mta: Mta) -> Self {
        Record { mta, reply: None, delivery: None, warning_only: false, remote_domain: None }
    }
}

/// How a line was understood.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Line<'a> {
    /// A line written by an MTA we read.
    Mta(Record<'a>),
    /// A line from another program (dovecot, amavis, cron …) that shares the
    /// log file. Counted, never parsed for replies.
    Foreign,
    /// Not understood: no known envelope, or an MTA line that seems to carry
    /// a reply the parser could not place. Counted and logged at debug level
    /// so a user can report the shape.
    Unrecognized,
}

/// Parses one line (without its line terminator).
pub fn parse_line(line: &str) -> Line<'_> {
    match envelope::parse(line) {
        Some(envelope) => parse_envelope(&envelope),
        None => Line::Unrecognized,
    }
}

/// Picks the parser from the syslog program name.
pub fn parse_envelope<'a>(envelope: &Envelope<'a>) -> Line<'a> {
    if envelope.program.starts_with("postfix") {
        match postfix::parse(envelope.program, envelope.message) {
            Some(record) => Line::Mta(record),
            None => Line::Unrecognized,
        }
    } else {
        Line::Foreign
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_by_program() {
        assert!(matches!(
            parse_line("Nov  8 17:35:01 mx1 postfix/smtpd[1]: connect from a[1.2.3.4]"),
            Line::Mta(Record { mta: Mta::Postfix, reply: None, .. })
        ));
        assert_eq!(
            parse_line("Nov  8 17:35:01 mx1 amavis[1]: (1-07) FWD from <a> -> <b>, BODY=7BIT 250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok"),
            Line::Foreign
        );
        assert_eq!(parse_line("no envelope here"), Line::Unrecognized);
        assert_eq!(parse_line(""), Line::Unrecognized);
    }
}
