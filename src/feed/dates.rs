//! Dates as feeds write them, to UTC. No I/O.
//!
//! chrono does the parsing (RFC 3339, RFC 2822 with its obsolete named zones and two-digit
//! years); this module only brings what feeds really contain into those forms first:
//! weekday names that are wrong or spelled out (dropped: the date itself decides), RFC 850
//! dashes (`05-Mar-24`), zone names RFC 2822 never listed (`CEST`, `BST`, `AEST`...), missing
//! seconds, ISO 8601 without a zone (read as UTC), and bare dates.
//!
//! [`parse_loose`] reads dates as web pages and JSON APIs write them (`dates/loose.rs`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

mod loose;
pub use loose::{check_format, parse_loose};

/// Parses a feed date; `None` for garbage.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    rfc3339(s)
        .or_else(|| rfc2822(s))
        .or_else(|| iso_without_zone(s))
}

fn rfc3339(s: &str) -> Option<DateTime<Utc>> {
    let mut t = s.replacen(' ', "T", 1);
    if t.ends_with('z') {
        t.pop();
        t.push('Z');
    }
    // "+0000" (no colon) is common in ISO-ish feeds.
    if let Some(sign_at) = t.len().checked_sub(5)
        && t.is_char_boundary(sign_at)
        && t[sign_at..].starts_with(['+', '-'])
        && t[sign_at + 1..].chars().all(|c| c.is_ascii_digit())
        && t.contains('T')
    {
        t.insert(sign_at + 3, ':');
    }
    DateTime::parse_from_rfc3339(&t)
        .ok()
        .map(|d| d.with_timezone(&Utc))
        .or_else(|| {
            // Minutes without seconds: 2024-03-05T10:00+01:00
            let (head, zone) = split_zone(&t)?;
            if head.len() == 16 {
                DateTime::parse_from_rfc3339(&format!("{head}:00{zone}"))
                    .ok()
                    .map(|d| d.with_timezone(&Utc))
            } else {
                None
            }
        })
}

fn split_zone(t: &str) -> Option<(&str, &str)> {
    if let Some(head) = t.strip_suffix('Z') {
        return Some((head, "Z"));
    }
    let at = t.rfind(['+', '-']).filter(|i| *i > 10)?;
    Some((&t[..at], &t[at..]))
}

/// Offsets of zone names that feeds use and RFC 2822 does not know.
const EXTRA_ZONES: &[(&str, &str)] = &[
    ("UTC", "+0000"),
    ("Z", "+0000"),
    ("WET", "+0000"),
    ("WEST", "+0100"),
    ("BST", "+0100"),
    ("IST", "+0530"),
    ("CET", "+0100"),
    ("CEST", "+0200"),
    ("MET", "+0100"),
    ("MEST", "+0200"),
    ("EET", "+0200"),
    ("EEST", "+0300"),
    ("MSK", "+0300"),
    ("JST", "+0900"),
    ("KST", "+0900"),
    ("HKT", "+0800"),
    ("SGT", "+0800"),
    ("AWST", "+0800"),
    ("ACST", "+0930"),
    ("AEST", "+1000"),
    ("AEDT", "+1100"),
    ("NZST", "+1200"),
    ("NZDT", "+1300"),
    ("AKST", "-0900"),
    ("AKDT", "-0800"),
    ("HST", "-1000"),
    ("AST", "-0400"),
    ("ADT", "-0300"),
    ("NST", "-0330"),
    ("NDT", "-0230"),
];

fn rfc2822(s: &str) -> Option<DateTime<Utc>> {
    // Drop a leading weekday ("Tue," "Tuesday,"): a wrong one must not reject the date.
    let mut t = match s.split_once(',') {
        Some((day, rest)) if day.chars().all(|c| c.is_ascii_alphabetic()) => rest.trim(),
        _ => s,
    }
    .to_string();
    // "Tue 05 Mar 2024 ..." without a comma.
    if let Some((first, rest)) = t.split_once(' ')
        && first.len() >= 3
        && first.chars().all(|c| c.is_ascii_alphabetic())
        && rest.trim_start().starts_with(|c: char| c.is_ascii_digit())
    {
        t = rest.trim_start().to_string();
    }
    let mut parts: Vec<String> = t.split_whitespace().map(str::to_string).collect();
    // RFC 850: "05-Mar-24 10:00:00 EST".
    if parts.first().is_some_and(|p| p.matches('-').count() == 2) {
        let first = parts.remove(0);
        for (i, p) in first.split('-').enumerate() {
            parts.insert(i, p.to_string());
        }
    }
    if parts.len() < 4 {
        return None;
    }
    // Missing seconds: "10:00" -> "10:00:00".
    if parts[3].matches(':').count() == 1 {
        parts[3].push_str(":00");
    }
    match parts.get(4).map(|z| z.to_ascii_uppercase()) {
        None => parts.push("+0000".into()),
        Some(zone) => {
            if let Some((_, offset)) = EXTRA_ZONES.iter().find(|(name, _)| *name == zone) {
                parts[4] = (*offset).to_string();
            } else if zone.len() == 6 && zone.as_bytes()[3] == b':' {
                // "+01:00" in an RFC 822 date.
                parts[4] = zone.replace(':', "");
            }
        }
    }
    parts.truncate(5);
    DateTime::parse_from_rfc2822(&parts.join(" "))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn iso_without_zone(s: &str) -> Option<DateTime<Utc>> {
    const FORMATS: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
    ];
    for f in FORMATS {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&n));
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return d.and_hms_opt(0, 0, 0).map(|n| Utc.from_utc_datetime(&n));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test date")
            .with_timezone(&Utc)
    }

    #[test]
    fn rfc822_variants() {
        let expect = utc("2024-03-05T15:00:00Z");
        for s in [
            "Tue, 05 Mar 2024 10:00:00 EST",
            "Tue, 05 Mar 2024 10:00 EST",
            "Tue, 5 Mar 2024 15:00:00 GMT",
            "Fri, 05 Mar 2024 15:00:00 +0000", // wrong weekday
            "Tuesday, 05-Mar-24 10:00:00 EST",
            "05 Mar 24 15:00:00 UT",
            "Tue, 05 Mar 2024 16:00:00 CET",
            "Tue, 05 Mar 2024 17:00:00 CEST",
            "Tue, 05 Mar 2024 07:00:00 PST",
            "Tue, 05 Mar 2024 16:00:00 +01:00",
            "Tue, 05 Mar 2024 15:00:00",
            "Tue 05 Mar 2024 15:00:00 Z",
        ] {
            assert_eq!(parse(s), Some(expect), "{s}");
        }
    }

    #[test]
    fn iso_variants() {
        let expect = utc("2024-03-05T10:00:00Z");
        for s in [
            "2024-03-05T10:00:00Z",
            "2024-03-05T11:00:00+01:00",
            "2024-03-05T11:00:00+0100",
            "2024-03-05 10:00:00",
            "2024-03-05T10:00:00",
            "2024-03-05T10:00",
            "2024-03-05T10:00:00.000z",
            "2024-03-05T11:00+01:00",
        ] {
            assert_eq!(parse(s), Some(expect), "{s}");
        }
        assert_eq!(parse("2024-03-05"), Some(utc("2024-03-05T00:00:00Z")));
    }

    #[test]
    fn garbage_is_none() {
        for s in [
            "",
            "yesterday",
            "32 Foo 2024",
            "Tue, 99 Mar 2024 10:00:00 GMT",
            "2024-13-45",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }
}
