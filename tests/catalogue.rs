//! The reply code catalogue (`config/catalogue.yaml`): complete for every
//! code the issue of record names, consistent with the digits, no
//! duplicates, and a description for every cause the rules can produce.

use std::collections::HashSet;

use mta_exporter::classify::catalogue::{
    catalogue, category_of_basic, class_of_basic, parse_basic, EnhancedKey, Whose, UNCATALOGUED,
};
use mta_exporter::classify::{Category, CauseRules};
use mta_exporter::model::{EnhancedStatus, ReplyCode};

/// Every basic code named in the issue.
const BASIC: &[&str] = &[
    "100", "110", "120", "200", "211", "214", "220", "221", "235", "250", "251", "252", "334", "354", "421", "432",
    "450", "451", "452", "454", "455", "471", "500", "501", "502", "503", "504", "511", "512", "513", "515", "517",
    "521", "523", "530", "534", "535", "538", "541", "543", "546", "547", "550", "551", "552", "553", "554", "555",
    "556",
];

/// The basic + enhanced pairs named in the issue; each must have an entry of
/// its own in the `replies` section.
const PAIRS: &[(&str, &str)] = &[
    ("451", "4.3.0"),
    ("451", "4.3.2"),
    ("451", "4.3.5"),
    ("451", "4.4.2"),
    ("451", "4.4.4"),
    ("451", "4.5.0"),
    ("451", "4.7.0"),
    ("451", "4.7.1"),
    ("451", "4.7.23"),
    ("451", "4.7.24"),
    ("451", "4.7.26"),
    ("500", "5.7.1"),
    ("501", "5.1.3"),
    ("501", "5.1.7"),
    ("501", "5.5.4"),
    ("501", "5.7.1"),
    ("502", "5.5.1"),
    ("503", "5.5.1"),
    ("503", "5.5.2"),
    ("504", "5.5.2"),
    ("504", "5.7.4"),
    ("530", "5.7.1"),
    ("534", "5.7.9"),
    ("535", "5.7.3"),
    ("535", "5.7.8"),
];

/// Provider replies named in the issue: (code, enhanced, text, provider).
const PROVIDER: &[(&str, &str, &str, &str)] = &[
    (
        "421",
        "4.7.28",
        "Gmail has detected an unusual rate of unsolicited mail originating from your DKIM domain. - gsmtp",
        "Gmail",
    ),
    (
        "550",
        "5.7.26",
        "Unauthenticated email from example.com is not accepted due to domain's DMARC policy. - gsmtp",
        "Gmail",
    ),
    (
        "550",
        "5.7.1",
        "Our system has detected an unusual rate of unsolicited mail originating from your IP address. - gsmtp",
        "Gmail",
    ),
    ("452", "4.2.2", "The recipient's inbox is out of storage space. - gsmtp", "Gmail"),
    ("550", "5.7.25", "The IP address sending this message does not have a PTR record setup - gsmtp", "Gmail"),
    ("550", "5.7.708", "Service unavailable. Access denied, traffic not accepted from this IP.", "Microsoft"),
    ("550", "5.7.606", "Access denied, banned sending IP [192.0.2.1].", "Microsoft"),
    ("550", "5.4.1", "Recipient address rejected: Access denied. AS(201806281)", "Microsoft"),
    (
        "451",
        "4.7.650",
        "The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation.",
        "Microsoft",
    ),
    ("451", "4.7.500", "Server busy. Please try again later from [192.0.2.1].", "Microsoft"),
    ("550", "5.7.509", "Access denied, sending domain example.com does not pass DMARC verification", "Microsoft"),
    ("550", "5.1.10", "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "Microsoft"),
    (
        "421",
        "4.7.0",
        "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints",
        "Yahoo",
    ),
    (
        "553",
        "5.7.1",
        "[BL21] Connections will not be accepted from 192.0.2.1, because the ip is in Spamhaus's list",
        "Yahoo",
    ),
    ("554", "5.7.9", "Message not accepted for policy reasons.", "Yahoo"),
];

/// Enhanced codes the issue names explicitly, beyond "the whole registry".
const ENHANCED: &[&str] = &[
    "X.1.10", "X.7.8", "X.7.9", "X.7.11", "X.7.12", "X.7.13", "X.7.14", "X.7.15", "X.7.16", "X.7.17", "X.7.18",
    "X.7.19", "X.7.20", "X.7.21", "X.7.22", "X.7.23", "X.7.24", "X.7.25", "X.7.26", "X.7.27", "X.7.28", "X.7.29",
    "X.7.30",
];

/// The IANA "Enumerated Status Codes" registry: (subject, last detail).
const REGISTRY: &[(u8, u16)] = &[(0, 0), (1, 10), (2, 4), (3, 6), (4, 7), (5, 6), (6, 10), (7, 30)];

fn key(text: &str) -> EnhancedKey {
    EnhancedKey::parse(text).unwrap_or_else(|| panic!("{text} is an enhanced code"))
}

#[test]
fn every_basic_code_named_in_the_issue_is_there() {
    let missing: Vec<&str> =
        BASIC.iter().copied().filter(|c| catalogue().basic(parse_basic(c).unwrap()).is_none()).collect();
    assert!(missing.is_empty(), "basic codes missing: {missing:?}");
}

#[test]
fn the_whole_iana_registry_is_there() {
    let mut missing = Vec::new();
    for &(subject, last) in REGISTRY {
        for detail in 0..=last {
            let code = EnhancedKey { class: None, subject, detail };
            if catalogue().enhanced(code).is_none() {
                missing.push(code.to_string());
            }
        }
    }
    missing.extend(ENHANCED.iter().filter(|c| catalogue().enhanced(key(c)).is_none()).map(|c| c.to_string()));
    assert!(missing.is_empty(), "registry codes missing: {missing:?}");
}

#[test]
fn every_pair_named_in_the_issue_has_its_own_entry() {
    for (code, enhanced) in PAIRS {
        let entry = catalogue().reply(parse_basic(code).unwrap(), Some(key(enhanced)), None);
        let entry = entry.unwrap_or_else(|| panic!("no entry for {code} {enhanced}"));
        assert_eq!((entry.code.as_str(), entry.enhanced.as_deref()), (*code, Some(*enhanced)));
    }
}

#[test]
fn provider_replies_are_recognised_with_their_text() {
    for (code, enhanced, text, provider) in PROVIDER {
        let lookup = catalogue().lookup(parse_basic(code), Some(key(enhanced)), Some(text));
        let best = lookup.best().unwrap_or_else(|| panic!("nothing for {code} {enhanced}"));
        assert_eq!(best.provider.as_deref(), Some(*provider), "{code} {enhanced} {text}");
    }
}

#[test]
fn a_provider_variant_needs_its_text() {
    // Gmail uses 5.7.27 for SPF; the registry's X.7.27 is a null MX sender.
    let spf = "Your email has been blocked because the sender is not authenticated with SPF. - gsmtp";
    let lookup = catalogue().lookup(Some(550), Some(key("5.7.27")), Some(spf));
    assert_eq!(lookup.best().and_then(|e| e.provider.as_deref()), Some("Gmail"));
    let lookup = catalogue().lookup(Some(550), Some(key("5.7.27")), None);
    assert_eq!(lookup.best().map(|e| e.meaning.as_str()), Some("Sender address has null MX"));
    assert_eq!(catalogue().variants(550, Some(key("5.7.27"))).count(), 1);
}

#[test]
fn classes_and_categories_agree_with_the_digits() {
    let c = catalogue();
    for entry in c.basic_entries() {
        let code = parse_basic(&entry.code).unwrap();
        assert_eq!(entry.class, class_of_basic(code), "{}", entry.code);
        assert_eq!(entry.category, category_of_basic(code).label(), "{}", entry.code);
    }
    for entry in c.enhanced_entries() {
        let k = key(&entry.code);
        assert_eq!(entry.class, k.class.map_or("any".to_string(), |d| format!("{d}xx")), "{}", entry.code);
        assert_eq!(entry.category, Category::of_subject(k.subject).label(), "{}", entry.code);
    }
    for entry in c.reply_entries() {
        let code = parse_basic(&entry.code).unwrap();
        assert_eq!(entry.class, class_of_basic(code));
        let want = entry.enhanced.as_deref().map_or(category_of_basic(code), |e| Category::of_subject(key(e).subject));
        assert_eq!(entry.category, want.label(), "{} {:?}", entry.code, entry.enhanced);
    }
    // And with what the exporter labels a counted reply with.
    let reply = |code: u16, enhanced: &str| mta_exporter::model::Reply {
        code: ReplyCode::new(code),
        enhanced: EnhancedStatus::parse(enhanced.as_bytes()),
        text: "",
        direction: mta_exporter::model::Direction::Outbound,
        phase: mta_exporter::model::Phase::Rcpt,
    };
    assert_eq!(Category::of(&reply(550, "5.7.26")).label(), "policy");
    assert_eq!(Category::of(&reply(421, "")).label(), category_of_basic(421).label());
}

#[test]
fn no_duplicates() {
    let c = catalogue();
    let mut seen = HashSet::new();
    for entry in c.basic_entries().iter().chain(c.enhanced_entries()) {
        assert!(seen.insert(entry.code.clone()), "duplicate {}", entry.code);
    }
    let mut pairs = HashSet::new();
    for entry in c.reply_entries() {
        assert!(
            pairs.insert((entry.code.clone(), entry.enhanced.clone(), entry.text.clone())),
            "duplicate {} {:?}",
            entry.code,
            entry.enhanced
        );
    }
    let mut causes = HashSet::new();
    for cause in c.cause_entries() {
        assert!(causes.insert(cause.cause.clone()), "duplicate cause {}", cause.cause);
    }
}

#[test]
fn every_cause_is_described() {
    let described: HashSet<&str> = catalogue().cause_entries().iter().map(|c| c.cause.as_str()).collect();
    let produced: HashSet<&str> = CauseRules::defaults().causes().iter().map(|c| c.as_str()).collect();
    assert_eq!(described, produced, "causes in config/causes.yaml and in the catalogue differ");
}

#[test]
fn success_is_nobodys_problem() {
    for entry in catalogue().basic_entries().iter().filter(|e| e.class == "2xx") {
        assert_eq!(entry.whose, Whose::None, "{}", entry.code);
    }
}

#[test]
fn meanings_for_the_metric() {
    let meaning = |code: Option<u16>, enhanced: Option<&str>| {
        catalogue().meaning(code.and_then(ReplyCode::new), enhanced.and_then(|e| EnhancedStatus::parse(e.as_bytes())))
    };
    assert_eq!(meaning(Some(550), Some("5.7.26")), "Multiple authentication checks failed");
    assert_eq!(meaning(Some(550), Some("5.1.10")), "Recipient not found by SMTP address lookup (Microsoft)");
    assert_eq!(meaning(None, Some("5.1.10")), "Recipient address has null MX");
    assert_eq!(meaning(Some(535), Some("5.7.3")), "Authentication unsuccessful");
    assert_eq!(meaning(Some(550), Some("5.7.708")), "Traffic not accepted from this IP (Microsoft)");
    assert_eq!(meaning(Some(421), None), "Service not available; closing the connection");
    assert_eq!(meaning(Some(599), None), UNCATALOGUED);
    assert_eq!(meaning(Some(599), Some("5.7.999")), UNCATALOGUED);
    assert_eq!(meaning(Some(250), Some("2.0.0")), "Requested action completed");
    assert_eq!(meaning(None, Some("2.0.0")), "Other or undefined status");
}
