//! The classifier: what a reply means, in bounded label values.
//!
//! Owns turning a [`Reply`] into its class (`2xx`/`4xx`/`5xx`), its category
//! (the RFC 3463 subject of the enhanced code, or the RFC 5321 second digit
//! when there is none) and its cause (from the ordered rule table in
//! [`causes`]). Pure and allocation-free per reply.

pub mod catalogue;
pub mod causes;

use crate::model::{Reply, ReplyClass};
pub use causes::{Cause, CauseRules, RuleError};

/// The kind of problem a reply reports.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Category {
    // RFC 3463 subjects (X.0.X – X.7.X).
    Addressing,
    Mailbox,
    MailSystem,
    Network,
    Protocol,
    Content,
    Policy,
    // RFC 5321 second digits, used when there is no enhanced code.
    Syntax,
    Information,
    Connection,
    Other,
}

impl Category {
    pub fn label(self) -> &'static str {
        match self {
            Category::Addressing => "addressing",
            Category::Mailbox => "mailbox",
            Category::MailSystem => "mail_system",
            Category::Network => "network",
            Category::Protocol => "protocol",
            Category::Content => "content",
            Category::Policy => "policy",
            Category::Syntax => "syntax",
            Category::Information => "information",
            Category::Connection => "connection",
            Category::Other => "other",
        }
    }

    pub fn of(reply: &Reply<'_>) -> Category {
        match (reply.enhanced, reply.code) {
            (Some(enhanced), _) => Category::of_subject(enhanced.subject()),
            (None, Some(code)) => Category::of_second_digit(code.second_digit()),
            (None, None) => Category::Other,
        }
    }

    /// The RFC 3463 subject (the middle number of `5.7.26`).
    pub fn of_subject(subject: u8) -> Category {
        match subject {
            1 => Category::Addressing,
            2 => Category::Mailbox,
            3 => Category::MailSystem,
            4 => Category::Network,
            5 => Category::Protocol,
            6 => Category::Content,
            7 => Category::Policy,
            _ => Category::Other,
        }
    }

    /// The RFC 5321 §4.2.1 second digit of a basic code (x3z and x4z are
    /// unspecified there).
    pub fn of_second_digit(digit: u8) -> Category {
        match digit {
            0 => Category::Syntax,
            1 => Category::Information,
            2 => Category::Connection,
            5 => Category::MailSystem,
            _ => Category::Other,
        }
    }
}

/// Everything the metrics need to know about one reply besides where it came from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Classification {
    pub class: ReplyClass,
    pub category: Category,
    pub cause: Cause,
}

/// Classifies replies with one cause rule table.
#[derive(Debug)]
pub struct Classifier {
    rules: CauseRules,
}

impl Classifier {
    pub fn new(rules: CauseRules) -> Self {
        Classifier { rules }
    }

    /// The classifier with the rule table built into the binary.
    pub fn with_default_rules() -> Self {
        Classifier::new(CauseRules::defaults())
    }

    pub fn classify(&self, reply: &Reply<'_>) -> Classification {
        Classification { class: reply.class(), category: Category::of(reply), cause: self.rules.cause_of(reply) }
    }

    pub fn rules(&self) -> &CauseRules {
        &self.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Direction, EnhancedStatus, Phase, ReplyCode};

    fn reply(code: Option<u16>, enhanced: Option<&str>) -> Reply<'static> {
        Reply {
            code: code.and_then(ReplyCode::new),
            enhanced: enhanced.and_then(|e| EnhancedStatus::parse(e.as_bytes())),
            text: "",
            direction: Direction::Outbound,
            phase: Phase::Rcpt,
        }
    }

    #[test]
    fn categories() {
        let cases = [
            (Some(550), Some("5.1.1"), Category::Addressing),
            (Some(452), Some("4.2.2"), Category::Mailbox),
            (Some(421), Some("4.3.2"), Category::MailSystem),
            (Some(451), Some("4.4.1"), Category::Network),
            (Some(503), Some("5.5.1"), Category::Protocol),
            (Some(554), Some("5.6.0"), Category::Content),
            (Some(550), Some("5.7.26"), Category::Policy),
            (Some(550), Some("5.0.0"), Category::Other),
            (Some(500), None, Category::Syntax),
            (Some(211), None, Category::Information),
            (Some(421), None, Category::Connection),
            (Some(550), None, Category::MailSystem),
            (Some(554), None, Category::MailSystem),
            (Some(535), None, Category::Other),
            (None, Some("5.7.1"), Category::Policy),
        ];
        for (code, enhanced, want) in cases {
            assert_eq!(Category::of(&reply(code, enhanced)), want, "{code:?} {enhanced:?}");
        }
    }

    #[test]
    fn class_agrees_with_the_first_digit() {
        let classifier = Classifier::with_default_rules();
        for (code, enhanced, want) in [
            (Some(250), Some("2.0.0"), "2xx"),
            (Some(451), None, "4xx"),
            (Some(554), Some("5.7.1"), "5xx"),
            (None, Some("4.7.1"), "4xx"),
            (Some(554), Some("4.7.1"), "5xx"),
        ] {
            assert_eq!(classifier.classify(&reply(code, enhanced)).class.label(), want);
        }
    }
}
