//! Terminal layout shared by the commands: wrapped paragraphs, grouped
//! numbers, and the words for classes, categories and "whose problem".

use crate::classify::catalogue::Whose;

/// Output width for wrapped text.
pub const WIDTH: usize = 80;

/// Appends `text` wrapped at [`WIDTH`]: the first line starts after
/// `first` (already written by the caller, `first` characters wide), the
/// following ones are indented by `indent` spaces.
pub fn wrap_into(out: &mut String, text: &str, first: usize, indent: usize) {
    let mut column = first;
    let mut line_empty = true;
    for word in text.split_whitespace() {
        let width = word.chars().count();
        if !line_empty && column + 1 + width > WIDTH {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', indent));
            column = indent;
            line_empty = true;
        }
        if !line_empty {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += width;
        line_empty = false;
    }
    out.push('\n');
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a class means for the message, `class` being `2xx` … or `any`.
pub fn class_words(class: &str) -> &'static str {
    match class {
        "1xx" => "positive preliminary reply, not used by SMTP",
        "2xx" => "success",
        "3xx" => "intermediate: the server waits for more input",
        "4xx" => "transient failure: the sender keeps the message and retries",
        "5xx" => "permanent failure: the message is returned to its sender",
        _ => "any class (X): 2 success, 4 transient failure, 5 permanent failure",
    }
}

/// What an RFC 3463 subject covers.
pub fn subject_words(subject: u8) -> &'static str {
    match subject {
        0 => "other or undefined status (RFC 3463 X.0.x)",
        1 => "addressing status (RFC 3463 X.1.x)",
        2 => "mailbox status (RFC 3463 X.2.x)",
        3 => "mail system status (RFC 3463 X.3.x)",
        4 => "network and routing status (RFC 3463 X.4.x)",
        5 => "mail delivery protocol status (RFC 3463 X.5.x)",
        6 => "message content or media status (RFC 3463 X.6.x)",
        _ => "security or policy status (RFC 3463 X.7.x)",
    }
}

/// What an RFC 5321 second digit covers.
pub fn second_digit_words(digit: u8) -> &'static str {
    match digit {
        0 => "syntax (RFC 5321 x0z)",
        1 => "information (RFC 5321 x1z)",
        2 => "connections (RFC 5321 x2z)",
        3 | 4 => "unspecified (RFC 5321 x3z and x4z)",
        5 => "mail system (RFC 5321 x5z)",
        _ => "not defined by RFC 5321",
    }
}

pub fn whose_words(whose: Whose) -> &'static str {
    match whose {
        Whose::Sender => "the sending side has to act (client, its operator, the sending domain)",
        Whose::Receiver => "the receiving side has to act (server, mailbox, their operator)",
        Whose::Either => "either side; the reply text tells which",
        Whose::None => "nobody; nothing went wrong",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }

    #[test]
    fn text_is_wrapped_with_a_hanging_indent() {
        let mut out = String::from("  Fix       ");
        let text = "word ".repeat(30);
        wrap_into(&mut out, &text, 12, 12);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH), "{out}");
        assert!(lines[1].starts_with("            word"));
    }
}
