//! The built-in cause rules against `tests/fixtures/causes.tsv`: reply texts
//! of every common shape with the cause a postmaster would give them.

use mta_exporter::classify::{Cause, CauseRules};
use mta_exporter::model::{scan_reply, Direction, Phase, Reply};

const TABLE: &str = include_str!("fixtures/causes.tsv");

struct Case<'a> {
    line: usize,
    direction: Direction,
    want: &'a str,
    reply: &'a str,
}

fn cases() -> Vec<Case<'static>> {
    TABLE
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        .map(|(i, l)| {
            let mut fields = l.splitn(3, '\t');
            let (direction, want, reply) = (fields.next().unwrap(), fields.next().unwrap(), fields.next().unwrap());
            let direction = match direction {
                "inbound" => Direction::Inbound,
                "outbound" => Direction::Outbound,
                other => panic!("line {}: direction {other:?}", i + 1),
            };
            Case { line: i + 1, direction, want, reply }
        })
        .collect()
}

#[test]
fn the_table_is_big_and_covers_every_cause() {
    let cases = cases();
    assert!(cases.len() >= 150, "only {} replies", cases.len());
    let rules = CauseRules::defaults();
    for cause in rules.causes() {
        assert!(cases.iter().any(|c| c.want == cause.as_str()), "no reply in the table has cause {cause}");
    }
    for case in &cases {
        assert!(
            Cause::new(case.want).is_some_and(|c| rules.causes().contains(&c)),
            "line {}: {}",
            case.line,
            case.want
        );
    }
}

#[test]
fn every_reply_gets_the_postmasters_cause() {
    let rules = CauseRules::defaults();
    let mut wrong = Vec::new();
    for case in cases() {
        let (code, enhanced, at) =
            scan_reply(case.reply).unwrap_or_else(|| panic!("line {}: no reply code in {:?}", case.line, case.reply));
        let reply = Reply { code, enhanced, text: &case.reply[at..], direction: case.direction, phase: Phase::Rcpt };
        let got = rules.cause_of(&reply);
        if got.as_str() != case.want {
            wrong.push(format!("line {}: want {}, got {got}: {}", case.line, case.want, case.reply));
        }
    }
    assert!(wrong.is_empty(), "{} replies get another cause:\n{}", wrong.len(), wrong.join("\n"));
}
