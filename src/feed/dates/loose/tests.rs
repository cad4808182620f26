use super::*;
use chrono::LocalResult;

const BERLIN: Tz = chrono_tz::Europe::Berlin;
const NEW_YORK: Tz = chrono_tz::America::New_York;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test date")
        .with_timezone(&Utc)
}

/// Friday 2023-02-10, noon UTC.
fn now() -> DateTime<Utc> {
    utc("2023-02-10T12:00:00Z")
}

/// A local wall-clock time in `tz` as chrono-tz places it (no gap or overlap in these).
fn local(tz: Tz, s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("test time");
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(d) => d.to_utc(),
        _ => panic!("{s} is not a plain local time in {tz}"),
    }
}

fn loose(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    parse_loose(text, None, tz, now())
}

#[test]
fn month_names_are_midnight_in_the_zone() {
    for tz in [Tz::UTC, BERLIN, NEW_YORK] {
        let expect = local(tz, "2023-02-09 00:00:00");
        for s in [
            "February 9, 2023",
            "Feb 9, 2023",
            "9 February 2023",
            "9 Feb 2023",
            "Thursday, February 9, 2023",
            "Feb. 9, 2023",
            "February 9th, 2023",
            "9th of February 2023",
            "FEB 9 2023",
            "Feb 9 '23",
            "9 Feb ’23",
            "feb 09, 2023",
            "Posted on February 9, 2023 by Alice",
            "Published: Thu, Feb 9 2023 · 4 min read",
            "9. Februar 2023",
            "Do., 9. Feb. 2023",
            "9 de febrero de 2023",
            "9 février 2023",
            "le jeu. 9 févr. 2023",
            "jeu. 9 févr. 2023",
            "mar. 9 févr. 2023",
            "2023-02-09",
            "2023/02/09",
            "2023/2/9",
            "2023.02.09",
            "09.02.2023",
            "9.2.2023",
            "20230209",
            "Updated: 2023-02-09",
            "(2023-02-09)",
            "2023年2月9日",
            "2023년 2월 9일",
        ] {
            assert_eq!(loose(s, tz), Some(expect), "{s} in {tz}");
        }
    }
    // Literal instants, so the helper above is not the only oracle.
    assert_eq!(
        loose("February 9, 2023", BERLIN),
        Some(utc("2023-02-08T23:00:00Z"))
    );
    assert_eq!(
        loose("February 9, 2023", NEW_YORK),
        Some(utc("2023-02-09T05:00:00Z"))
    );
    assert_eq!(
        loose("February 2023", Tz::UTC),
        Some(utc("2023-02-01T00:00:00Z"))
    );
}

#[test]
fn times_after_and_before_the_date() {
    for tz in [Tz::UTC, BERLIN, NEW_YORK] {
        let expect = local(tz, "2023-02-09 15:45:00");
        for s in [
            "February 9, 2023 at 3:45 PM",
            "February 9, 2023 at 3:45 pm",
            "Feb 9, 2023, 15:45",
            "Feb 9, 2023 - 15:45",
            "9 Feb 2023 15:45",
            "Feb 9, 2023 3:45 p.m.",
            "3:45 PM · Feb 9, 2023",
            "15:45 - 9 Feb 2023",
            "9. Februar 2023, 15:45 Uhr",
            "9. Februar 2023 um 15:45",
            "9 de febrero de 2023 a las 15:45",
            "le 9 février 2023 à 15h45",
            "2023-02-09 15:45",
            "2023-02-09T15:45:00",
            "2023-02-09T15:45",
            "09.02.2023 15:45",
            "Thu, 09 Feb 2023 15:45:00",
        ] {
            assert_eq!(loose(s, tz), Some(expect), "{s} in {tz}");
        }
        // A written zone wins over the source's.
        let expect = utc("2023-02-09T14:45:00Z");
        for s in [
            "9 Feb 2023 15:45 CET",
            "9 Feb 2023 14:45 UTC",
            "9 Feb 2023 14:45 GMT",
            "Feb 9, 2023 9:45 AM EST",
            "Feb 9, 2023 6:45 a.m. PST",
            "9 Feb 2023 15:45 GMT+1",
            "9 Feb 2023 15:45 UTC+01:00",
            "Feb 9, 2023 15:45 +0100",
            "9. Februar 2023, 15:45 MEZ",
            "2023-02-09T15:45:00+01:00",
            "2023-02-09 14:45:00Z",
            "2023-02-09T16:45:00.250+02:00",
            "Thu, 09 Feb 2023 09:45:00 EST",
            "Updated 2023-02-09T10:45:00-04:00 by Bob",
            "3:45 PM CET · Feb 9, 2023",
            "09 Feb 23 14:45:00 UT",
        ] {
            assert_eq!(
                loose(s, tz).map(|d| d.with_nanosecond(0)),
                Some(Some(expect)),
                "{s} in {tz}"
            );
        }
    }
    assert_eq!(
        loose("9 Feb 2023 UTC", BERLIN),
        Some(utc("2023-02-09T00:00:00Z"))
    );
    assert_eq!(
        loose("Feb 9, 2023 12:30 AM", Tz::UTC),
        Some(utc("2023-02-09T00:30:00Z"))
    );
    assert_eq!(
        loose("Feb 9, 2023 12:30 PM", Tz::UTC),
        Some(utc("2023-02-09T12:30:00Z"))
    );
}

use chrono::Timelike;

#[test]
fn numeric_day_month_order() {
    let d = |s| loose(s, Tz::UTC);
    assert_eq!(d("25/12/2023"), Some(utc("2023-12-25T00:00:00Z")));
    assert_eq!(d("12/25/2023"), Some(utc("2023-12-25T00:00:00Z")));
    assert_eq!(d("25-12-2023"), Some(utc("2023-12-25T00:00:00Z")));
    assert_eq!(d("2/2/2023"), Some(utc("2023-02-02T00:00:00Z")));
    // Dots are day first.
    assert_eq!(d("1.2.2023"), Some(utc("2023-02-01T00:00:00Z")));
    // Both orders possible: not guessed.
    for s in ["9/2/2023", "09-02-2023", "Posted 3/4/2023"] {
        assert_eq!(d(s), None, "{s}");
    }
    // Version numbers and other runs of numbers are not dates.
    for s in [
        "Version 1.12.24",
        "v2.10.15",
        "1.10.12.2023",
        "10.12.2023.1",
        "192.168.1.1",
        "2023-02-09-01",
    ] {
        assert_eq!(d(s), None, "{s}");
    }
}

#[test]
fn relative_dates() {
    let n = now();
    let h = |x: i64| n - TimeDelta::hours(x);
    let m = |x: i64| n - TimeDelta::minutes(x);
    let day = |x: i64| n - TimeDelta::days(x);
    for (s, expect) in [
        ("2 hours ago", h(2)),
        ("2 HOURS AGO", h(2)),
        ("an hour ago", h(1)),
        ("a minute ago", m(1)),
        ("5 mins ago", m(5)),
        ("5 minutes ago", m(5)),
        ("1 hr, 5 min ago", m(65)),
        ("1 hour and 5 minutes ago", m(65)),
        ("3 days ago", day(3)),
        ("a day ago", day(1)),
        ("1 week ago", day(7)),
        ("2 weeks ago", day(14)),
        ("2 months ago", utc("2022-12-10T12:00:00Z")),
        ("1 year ago", utc("2022-02-10T12:00:00Z")),
        ("a year ago", utc("2022-02-10T12:00:00Z")),
        ("just now", n),
        ("now", n),
        ("moments ago", n),
        ("a few seconds ago", n - TimeDelta::seconds(3)),
        ("a few minutes ago", m(3)),
        ("0 days ago", n),
        ("-1 hours ago", h(1)),
        ("2h ago", h(2)),
        ("2h", h(2)),
        ("5m", m(5)),
        ("5m ago", m(5)),
        ("3d", day(3)),
        ("1w", day(7)),
        ("2mo", utc("2022-12-10T12:00:00Z")),
        ("1y", utc("2022-02-10T12:00:00Z")),
        ("· 3 hours ago", h(3)),
        ("submitted 3 hours ago by alice", h(3)),
        ("42 points by bob 3 hours ago | 10 comments", h(3)),
        ("@bob · 3h", h(3)),
        ("in 2 hours", n + TimeDelta::hours(2)),
        ("in 3 days", n + TimeDelta::days(3)),
        ("vor 2 Stunden", h(2)),
        ("vor einer Stunde", h(1)),
        ("vor 3 Tagen", day(3)),
        ("il y a 2 heures", h(2)),
        ("il y a une heure", h(1)),
        ("hace 2 horas", h(2)),
        ("hace 3 días", day(3)),
        ("hace 2 horas y 5 minutos", m(125)),
    ] {
        assert_eq!(loose(s, BERLIN), Some(expect), "{s}");
        assert_eq!(loose(s, Tz::UTC), Some(expect), "{s}");
    }
    for s in [
        "5m views",
        "5 min read",
        "2 hours",
        "3 days",
        "in the news",
        "an hour",
    ] {
        assert_eq!(loose(s, Tz::UTC), None, "{s}");
    }
}

#[test]
fn today_and_yesterday_are_days_in_the_zone() {
    for tz in [Tz::UTC, BERLIN, NEW_YORK] {
        // now is 2023-02-10 13:00 in Berlin, 07:00 in New York: the same day everywhere.
        let today = local(tz, "2023-02-10 00:00:00");
        let yesterday = local(tz, "2023-02-09 00:00:00");
        let cases = [
            ("today", today),
            ("Today", today),
            ("heute", today),
            ("aujourd'hui", today),
            ("hoy", today),
            ("yesterday", yesterday),
            ("Yesterday", yesterday),
            ("gestern", yesterday),
            ("ayer", yesterday),
            ("tomorrow", local(tz, "2023-02-11 00:00:00")),
            ("yesterday at 3:45 PM", local(tz, "2023-02-09 15:45:00")),
            ("Yesterday, 15:45", local(tz, "2023-02-09 15:45:00")),
            ("Today 18:30", local(tz, "2023-02-10 18:30:00")),
            ("gestern um 15:45 Uhr", local(tz, "2023-02-09 15:45:00")),
        ];
        for (s, expect) in cases {
            assert_eq!(loose(s, tz), Some(expect), "{s} in {tz}");
        }
    }
    // Near midnight the zone decides which day "today" is: 23:30 UTC is tomorrow in Berlin.
    let late = utc("2023-02-10T23:30:00Z");
    assert_eq!(
        parse_loose("today", None, BERLIN, late),
        Some(utc("2023-02-10T23:00:00Z"))
    );
    assert_eq!(
        parse_loose("today", None, Tz::UTC, late),
        Some(utc("2023-02-10T00:00:00Z"))
    );
}

#[test]
fn no_year_is_the_most_recent_past() {
    let now = utc("2026-01-03T12:00:00Z");
    let d = |s: &str, tz: Tz| parse_loose(s, None, tz, now);
    assert_eq!(d("Dec 30", Tz::UTC), Some(utc("2025-12-30T00:00:00Z")));
    assert_eq!(d("30 Dec", Tz::UTC), Some(utc("2025-12-30T00:00:00Z")));
    assert_eq!(d("Dec 30", BERLIN), Some(utc("2025-12-29T23:00:00Z")));
    assert_eq!(d("Dec 30", NEW_YORK), Some(utc("2025-12-30T05:00:00Z")));
    assert_eq!(d("Jan 3", Tz::UTC), Some(utc("2026-01-03T00:00:00Z")));
    // A day ahead is allowed (zones, clocks); more is last year's.
    assert_eq!(d("Jan 4", Tz::UTC), Some(utc("2026-01-04T00:00:00Z")));
    assert_eq!(d("Jan 5", Tz::UTC), Some(utc("2025-01-05T00:00:00Z")));
    assert_eq!(d("9 Feb", Tz::UTC), Some(utc("2025-02-09T00:00:00Z")));
    assert_eq!(d("Feb 29", Tz::UTC), Some(utc("2024-02-29T00:00:00Z")));
    assert_eq!(
        d("Dec 31, 11:30 PM", Tz::UTC),
        Some(utc("2025-12-31T23:30:00Z"))
    );
    assert_eq!(
        d("Posted Dec 30 by Ann", Tz::UTC),
        Some(utc("2025-12-30T00:00:00Z"))
    );
    assert_eq!(d("9 Feb 15:45", Tz::UTC), Some(utc("2025-02-09T15:45:00Z")));
}

#[test]
fn with_a_format() {
    let n = now();
    let f = |s: &str, fmt: &str, tz: Tz| parse_loose(s, Some(fmt), tz, n);
    assert_eq!(
        f("09/02/2023", "%d/%m/%Y", Tz::UTC),
        Some(utc("2023-02-09T00:00:00Z"))
    );
    assert_eq!(
        f("9/2/2023", "%d/%m/%Y", BERLIN),
        Some(utc("2023-02-08T23:00:00Z"))
    );
    assert_eq!(
        f("9/2/2023", "%m/%d/%Y", Tz::UTC),
        Some(utc("2023-09-02T00:00:00Z"))
    );
    assert_eq!(
        f("Posted 09/02/2023 by Ann", "%d/%m/%Y", Tz::UTC),
        Some(utc("2023-02-09T00:00:00Z"))
    );
    assert_eq!(
        f("  09.02.23 15:45  ", "%d.%m.%y %H:%M", NEW_YORK),
        Some(utc("2023-02-09T20:45:00Z"))
    );
    assert_eq!(
        f("2023-02-09 15:45 +0100", "%Y-%m-%d %H:%M %z", NEW_YORK),
        Some(utc("2023-02-09T14:45:00Z"))
    );
    // %Z names are skipped: the source's zone is used.
    assert_eq!(
        f("2023-02-09 15:45 CET", "%Y-%m-%d %H:%M %Z", BERLIN),
        Some(utc("2023-02-09T14:45:00Z"))
    );
    assert_eq!(
        f("1675900800", "%s", BERLIN),
        Some(utc("2023-02-09T00:00:00Z"))
    );
    // No year: the most recent past one.
    assert_eq!(
        f("Dec 30", "%b %d", Tz::UTC),
        Some(utc("2022-12-30T00:00:00Z"))
    );
    assert_eq!(
        f("Thu Feb 9", "%a %b %d", Tz::UTC),
        Some(utc("2023-02-09T00:00:00Z"))
    );
    // The weekday decides the year: 2022-02-09 was a Wednesday.
    assert_eq!(
        f("Wed Feb 9", "%a %b %d", Tz::UTC),
        Some(utc("2022-02-09T00:00:00Z"))
    );
    // The format does not match: the loose reading.
    assert_eq!(
        f("February 9, 2023", "%d/%m/%Y", Tz::UTC),
        Some(utc("2023-02-09T00:00:00Z"))
    );
    assert_eq!(
        f("3 hours ago", "%d/%m/%Y", Tz::UTC),
        Some(n - TimeDelta::hours(3))
    );
    // A broken format is ignored, never a panic.
    for fmt in ["%", "%Q", "%z%z", "%s%s", "", "%-", "%Y%Y%Y", "%.3f"] {
        let _ = f("2023-02-09 15:45", fmt, BERLIN);
        let _ = f("99999999999999999999", fmt, BERLIN);
    }
}

#[test]
fn unix_timestamps() {
    let d = |s| loose(s, BERLIN);
    assert_eq!(d("1675900800"), Some(utc("2023-02-09T00:00:00Z")));
    assert_eq!(d("1675900800.0"), Some(utc("2023-02-09T00:00:00Z")));
    assert_eq!(d("1675900800.5"), Some(utc("2023-02-09T00:00:00.5Z")));
    assert_eq!(d("1675900800123"), Some(utc("2023-02-09T00:00:00.123Z")));
    assert_eq!(d(" 1675900800123 "), Some(utc("2023-02-09T00:00:00.123Z")));
    for s in ["99999999999999999999", "123", "1675900800.", "1675900800.x"] {
        assert_eq!(d(s), None, "{s}");
    }
}

#[test]
fn dst_gaps_and_overlaps() {
    // 02:30 on 2023-03-26 does not exist in Berlin: read with the offset before (+01:00).
    assert_eq!(
        loose("2023-03-26 02:30", BERLIN),
        Some(utc("2023-03-26T01:30:00Z"))
    );
    // 02:30 on 2023-10-29 exists twice: the earlier (+02:00).
    assert_eq!(
        loose("2023-10-29 02:30", BERLIN),
        Some(utc("2023-10-29T00:30:00Z"))
    );
    assert_eq!(
        loose("March 12, 2023 2:30 AM", NEW_YORK),
        Some(utc("2023-03-12T07:30:00Z"))
    );
    // Midnight does not exist on some days (America/Santiago 2022-09-11): no panic, a date.
    let santiago = chrono_tz::America::Santiago;
    assert_eq!(
        loose("2022-09-11", santiago),
        Some(utc("2022-09-11T04:00:00Z"))
    );
}

#[test]
fn feed_forms_read_as_parse_reads_them() {
    // With a zone, the same instant as the feed parser whatever the source's zone.
    for s in [
        "Tue, 05 Mar 2024 10:00:00 EST",
        "Tue, 05 Mar 2024 10:00 EST",
        "Tue, 5 Mar 2024 15:00:00 GMT",
        "Fri, 05 Mar 2024 15:00:00 +0000",
        "Tuesday, 05-Mar-24 10:00:00 EST",
        "05 Mar 24 15:00:00 UT",
        "Tue, 05 Mar 2024 17:00:00 CEST",
        "Tue, 05 Mar 2024 16:00:00 +01:00",
        "Tue 05 Mar 2024 15:00:00 Z",
        "2024-03-05T15:00:00Z",
        "2024-03-05T16:00:00+01:00",
        "2024-03-05T16:00:00+0100",
        "2024-03-05T15:00:00.000z",
    ] {
        assert_eq!(super::super::parse(s), Some(utc("2024-03-05T15:00:00Z")));
        assert_eq!(loose(s, NEW_YORK), Some(utc("2024-03-05T15:00:00Z")), "{s}");
    }
    // Without a zone, the source's zone (the feed parser says UTC, and keeps saying it).
    assert_eq!(
        super::super::parse("2024-03-05 10:00:00"),
        Some(utc("2024-03-05T10:00:00Z"))
    );
    assert_eq!(
        loose("2024-03-05 10:00:00", NEW_YORK),
        Some(utc("2024-03-05T15:00:00Z"))
    );
    assert_eq!(
        loose("Tue, 05 Mar 2024 10:00:00", NEW_YORK),
        Some(utc("2024-03-05T15:00:00Z"))
    );
}

#[test]
fn garbage_and_odd_input_is_none_without_panic() {
    for s in [
        "",
        "   ",
        "garbage",
        "February 30, 2023",
        "Feb 30",
        "31.02.2023",
        "2023-13-45",
        "32 Foo 2024",
        "25:61",
        "Feb",
        "9",
        "no date here, 12 comments",
        "𝔉𝔢𝔟 9, 2023",
        "٩ فبراير ٢٠٢٣",
        "in",
        "ago",
        "a",
        "il y a",
        "vor",
        "hace",
    ] {
        assert_eq!(loose(s, BERLIN), None, "{s:?}");
    }
    // No panic on anything: many odd strings, and every prefix of some real ones.
    let mut odd: Vec<String> = [
        "99999999999999999999",
        "99999999999999999999 hours ago",
        "999999999 years ago",
        "in 999999999 years",
        "999999999 weeks ago",
        "18446744073709551615 days ago",
        "Dec 31, 9999 11:59 PM +1400",
        "Jan 1, 1000 0:00 -1400",
        "9999-12-31T23:59:59",
        "0000-00-00",
        "24:00 Feb 9, 2023",
        "99:99 Feb 9, 2023",
        "12:60 PM Feb 9",
        "Feb 9, 2023 15:45 +9999",
        "Feb 9, 2023 15:45 GMT+99",
        "9 Feb 2023 15:45:60.999999999",
        "-",
        "+",
        "..",
        "年月日",
        "2023年",
        "2023年13月40日",
        "ääääää",
        "\u{0}\u{1}\u{202f}",
        "3:45\u{202f}PM · Feb 9, 2023",
        "il y a -3 ans",
        "hace un año",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for base in [
        "Thursday, February 9th, 2023 at 3:45 p.m. GMT+01:00",
        "1 hr, 5 min and 2 seconds ago",
        "9. Februar 2023, 15:45 Uhr MESZ",
        "2023-02-09T15:45:00.123456789+01:00",
    ] {
        for (at, _) in base.char_indices() {
            odd.push(base[..at].to_string());
            odd.push(base[at..].to_string());
        }
    }
    odd.push("9".repeat(100_000));
    odd.push("Feb 9, ".repeat(10_000));
    odd.push("ä".repeat(10_000));
    for s in &odd {
        for tz in [Tz::UTC, BERLIN, chrono_tz::Pacific::Kiritimati] {
            let _ = parse_loose(s, None, tz, now());
            let _ = parse_loose(s, Some("%b %d"), tz, now());
            let _ = parse_loose(s, Some("%s"), tz, now());
        }
    }
    let _ = parse_loose("Feb 9", None, BERLIN, DateTime::<Utc>::MAX_UTC);
    let _ = parse_loose("Feb 9", None, BERLIN, DateTime::<Utc>::MIN_UTC);
    let _ = parse_loose("2 years ago", None, BERLIN, DateTime::<Utc>::MIN_UTC);
    let _ = parse_loose("in 2 years", None, BERLIN, DateTime::<Utc>::MAX_UTC);
}

#[test]
fn only_the_first_200_characters_are_read() {
    let pad = "x ".repeat(95); // 190 characters
    assert_eq!(
        loose(&format!("{pad}Feb 9, 2023"), Tz::UTC),
        Some(utc("2023-02-09T00:00:00Z"))
    );
    let pad = "x ".repeat(100); // 200 characters
    assert_eq!(loose(&format!("{pad}Feb 9, 2023"), Tz::UTC), None);
    assert_eq!(
        parse_loose(
            &format!("{pad}09/02/2023"),
            Some("%d/%m/%Y"),
            Tz::UTC,
            now()
        ),
        None
    );
}

#[test]
fn check_format_accepts_dates_and_explains_the_rest() {
    for fmt in [
        "%d/%m/%Y",
        "%m/%d/%Y",
        "%b %d",
        "%d %B %Y, %H:%M",
        "%e. %B %Y",
        "%s",
        "%F",
        "%Y-%m-%d %H:%M %z",
        "%Y-%m-%d %H:%M %Z",
        "%d.%m.%y",
        "%j %Y",
        "%a, %d %b %Y %H:%M:%S",
        "%I:%M %p, %b %d",
        "%c",
        "%x",
        "%+",
        "%D %R",
        "%A, %B %e, %Y at %l:%M %P",
    ] {
        assert_eq!(check_format(fmt), Ok(()), "{fmt}");
    }
    for (fmt, says) in [
        ("", "empty"),
        ("  ", "empty"),
        ("%Q", "chrono does not know"),
        ("%d/%m/%", "chrono does not know"),
        ("%H:%M", "whole date"),
        ("%B %Y", "whole date"),
        ("%Y", "whole date"),
        ("%d", "whole date"),
        ("posted", "whole date"),
        ("%I:%M %b %d", "whole date"),
    ] {
        let err = check_format(fmt).expect_err(fmt);
        assert!(err.contains(says), "{fmt}: {err}");
    }
    let long = "%d ".repeat(40);
    assert!(
        check_format(&long)
            .expect_err("long")
            .contains("longer than")
    );
}

/// Short forms are amounts on their own, not the tail of a longer run of letters and
/// digits: a commit hash (`f6aa45d`) or a model name is no date.
#[test]
fn short_forms_inside_a_run_are_not_dates() {
    let now = chrono::Utc::now();
    for text in ["f6aa45d", "commit f6aa45d", "abc3d", "x5m", "A4d"] {
        assert_eq!(
            super::parse_loose(text, None, chrono_tz::UTC, now),
            None,
            "{text}"
        );
    }
    for text in ["3d", "(3d)", "· 5m", "posted 2h ago"] {
        assert!(
            super::parse_loose(text, None, chrono_tz::UTC, now).is_some(),
            "{text}"
        );
    }
}

/// A format with a day and a month that chrono can write but not read back says so.
#[test]
fn a_format_chrono_cannot_read_back_says_why() {
    let e = super::check_format("%d %m %Y %:::z").expect_err("not readable");
    assert!(e.contains("cannot be read back"), "{e}");
    let e = super::check_format("%H:%M").expect_err("no day");
    assert!(e.contains("needs a day and a month"), "{e}");
}
