//! Dates as web pages and JSON APIs write them ("2 hours ago", "Feb 9", "9. Februar 2023,
//! 15:45 Uhr", `1675900800`), to UTC. No I/O; `now` and the zone are arguments.
//!
//! Hand-written: the date crates read a whole string in one language and assume the current
//! year; pages need a date found inside a short text, short forms ("3d"), the most recent past
//! year for "Feb 9", and a zone for dates without one.
//!
//! The text is cut to its first [`MAX_CHARS`] characters and split once into tokens (numbers,
//! words, punctuation); every reading below looks at a bounded number of tokens from a start
//! token, so the work is linear in the cut text.

use super::{EXTRA_ZONES, rfc2822, rfc3339};
use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone};
use chrono::{Datelike, Utc};
use chrono_tz::Tz;

/// Only this many characters of a text are read.
pub const MAX_CHARS: usize = 200;
/// A `date_format` longer than this is refused.
const MAX_FORMAT: usize = 100;

/// A date as a web page or JSON API writes it, to UTC; `None` when no date is found.
///
/// Only the first 200 characters of `text` are read. `tz` is the source's zone: a date or
/// time written without a zone is read in it, a date without a time of day is midnight in it.
/// A local time that does not exist (a DST gap) is read with the offset in force before the
/// gap; a local time that exists twice is the earlier instant. `now` anchors relative dates
/// and dates without a year.
///
/// **With `format`** (a chrono strftime string, English month and weekday names): the whole
/// trimmed text is read with it, or else the first place in the text where it matches (so
/// `%d/%m/%Y` finds the date in "Posted 09/02/2023 by Ann"). Without `%z`/`%:z` the time is
/// in `tz` (`%Z` names are skipped, not understood); without an hour it is midnight; without
/// a year the year is the most recent one that puts the date no more than a day after `now`.
/// If the format matches nowhere (or is not one chrono can use), the text is read as
/// without a format.
///
/// **Without `format`**, the first of these that reads the text:
/// 1. RFC 3339 / ISO 8601 with a zone, and RFC 2822 with a zone, as feeds write them
///    ([`super::parse`]).
/// 2. A Unix timestamp as the whole text: 10 digits are seconds, 13 are milliseconds, with
///    an optional fraction (`1675900800`, `1675900800123`, `1675900800.5`), and 8 digits as
///    `YYYYMMDD`.
/// 3. The first date found in the text, read left to right, so "Posted on February 9, 2023
///    by Alice", "Updated: 2023-02-09" and "· 3 hours ago" work:
///    - relative, to `now`: "just now", "now", "moments ago", "2 hours ago", "an hour ago",
///      "a few minutes ago" (few is 3), "5 mins ago", "1 hr, 5 min ago", "3 days ago", "1
///      week ago", "2 months ago" (calendar months), "1 year ago", short forms glued to the
///      number ("2h ago", "5m", "3d", "1w", "2mo", "1y": `m` is minutes, `mo` months; not
///      when a word follows, as in "5m views"), future "in 2 hours" (returned as is); German
///      "vor 2 Stunden", French "il y a 2 heures", Spanish "hace 2 horas";
///    - "today", "yesterday", "tomorrow" (also "heute", "gestern", "aujourd'hui", "hoy",
///      "ayer"): midnight of that day in `tz`, or the time written after it ("yesterday at
///      3:45 PM");
///    - month names (English; German, French, Spanish; full or abbreviated, any case, with
///      or without a dot): "February 9, 2023", "Feb. 9th, 2023", "Thursday, February 9,
///      2023", "9 February 2023", "9th of February 2023", "9. Februar 2023", "9 de febrero de
///      2023", "Feb 9 '23", "05-Mar-24", "February 2023" (the 1st), and without a year
///      "Feb 9", "9 Feb" (the year as for formats above; a weekday is not used);
///    - numbers: "2023-02-09", "2023/02/09", "2023.02.09" (year first), "09.02.2023" (dots:
///      day first, as in German), "2023年2月9日"; with slashes or dashes and the year last,
///      "25/12/2023" is day first and "12/25/2023" month first, but "9/2/2023", where both
///      orders are possible, is **not read** (`None`; set `date_format`). Years are four
///      digits here, so version numbers ("1.2.23") are not dates;
///    - a time after the date, or before it as in "3:45 PM · Feb 9, 2023": "15:45",
///      "15:45:30", "3:45 PM", "3 p.m.", "15h45", joined by ",", "at", "um", "à", "a las",
///      "T", "-", "|", "·"; and a zone after the time or date: a name (`UTC`, `GMT`, `EST`,
///      `CET`, `CEST`, `MEZ`, `JST`...), `Z`, `+01:00`, `+0100`, `GMT+1`.
/// 4. Any other form [`super::parse`] reads (its zoneless forms are then UTC).
///
/// Impossible dates ("February 30, 2023") and out-of-range numbers give `None`, never a
/// panic.
pub fn parse_loose(
    text: &str,
    format: Option<&str>,
    tz: Tz,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let s = cut(text.trim()).trim();
    if s.is_empty() {
        return None;
    }
    let found = format
        .and_then(|f| with_format(s, f, tz, now))
        .or_else(|| rfc3339(s))
        .or_else(|| rfc2822_zoned(s))
        .or_else(|| timestamp(s, tz))
        .or_else(|| scan(&tokens(s), tz, now))
        .or_else(|| super::parse(s))?;
    // "9999999 days ago" is no date: what feeds can carry (four-digit years) bounds it.
    (EARLIEST_YEAR..=9999)
        .contains(&found.year())
        .then_some(found)
}

/// Dates before this year are not read (a relative date far in the past is a joke or an
/// attack, not a publication date).
const EARLIEST_YEAR: i32 = 1000;

/// Checks a `date_format` when the config is read; the error is a sentence for a person.
///
/// The format must be one chrono understands (no unknown `%` specifier, at most 100
/// characters), and must read back a whole date: a day and a month (`%d`/`%e` and
/// `%m`/`%b`/`%B`), or `%j`, `%s`, `%F`...; the year and the time of day may be left out.
pub fn check_format(format: &str) -> Result<(), String> {
    if format.trim().is_empty() {
        return Err("`date_format` is empty".into());
    }
    if format.chars().count() > MAX_FORMAT {
        return Err(format!(
            "`date_format` is longer than {MAX_FORMAT} characters"
        ));
    }
    let items = items(format).ok_or_else(|| {
        format!(
            "`date_format` `{format}` has a `%` specifier chrono does not know \
             (see https://docs.rs/chrono/latest/chrono/format/strftime/)"
        )
    })?;
    // Write a known instant with the format and read it back.
    let sample =
        DateTime::parse_from_rfc3339("2023-02-09T15:45:30+00:00").map_err(|e| e.to_string())?;
    let mut written = String::new();
    use std::fmt::Write as _;
    write!(written, "{}", sample.format_with_items(items.iter()))
        .map_err(|_| format!("`date_format` `{format}` cannot be used to write or read a date"))?;
    let now = sample.to_utc() + TimeDelta::days(30);
    let back = read_format(&written, &items, Tz::UTC, now);
    // Whether the format names a day and a month (or a whole date) at all: if it does and
    // still cannot be read back, chrono only writes one of its specifiers.
    let whole = ["%d", "%e", "%j", "%F", "%D", "%x", "%c", "%+", "%s"]
        .iter()
        .any(|d| format.contains(d))
        && (["%m", "%b", "%B", "%h"].iter().any(|m| format.contains(m))
            || ["%j", "%F", "%D", "%x", "%c", "%+", "%s"]
                .iter()
                .any(|d| format.contains(d)));
    let twelve_hour = ["%I", "%l", "%r"].iter().any(|h| format.contains(h))
        && !["%p", "%P", "%r"].iter().any(|p| format.contains(p));
    match back {
        Some(d) if d.date_naive() == sample.date_naive() => Ok(()),
        _ if whole && twelve_hour => Err(format!(
            "`date_format` `{format}` does not give a whole date: a 12-hour clock (`%I`) \
             needs `%p` (AM/PM) to be read back"
        )),
        _ if whole => Err(format!(
            "`date_format` `{format}` cannot be read back: it wrote {written:?} for \
             2023-02-09 15:45:30 UTC, which chrono cannot read with it (a specifier such as \
             `%:::z` or `%Z` is only written); leave that part out"
        )),
        _ => Err(format!(
            "`date_format` `{format}` does not give a whole date (it wrote {written:?} for \
             2023-02-09 and could not read it back): it needs a day and a month, e.g. `%d %B` \
             or `%m/%d/%Y`; the year and the time may be left out"
        )),
    }
}

/// The first [`MAX_CHARS`] characters.
fn cut(s: &str) -> &str {
    match s.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

fn items(format: &str) -> Option<Vec<Item<'_>>> {
    let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return None;
    }
    Some(items)
}

fn with_format(s: &str, format: &str, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if format.chars().count() > MAX_FORMAT {
        return None;
    }
    let items = items(format)?;
    read_format(s, &items, tz, now)
}

fn read_format(s: &str, items: &[Item<'_>], tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut parsed = Parsed::new();
    if chrono::format::parse(&mut parsed, s, items.iter()).is_ok()
        && let Some(d) = resolve_parsed(parsed, tz, now)
    {
        return Some(d);
    }
    // The first token start where the format matches.
    let mut prev: Option<char> = None;
    for (at, c) in s.char_indices() {
        let starts = !c.is_whitespace()
            && prev.is_none_or(|p| {
                !p.is_alphanumeric()
                    || !c.is_alphanumeric()
                    || p.is_ascii_digit() != c.is_ascii_digit()
            });
        prev = Some(c);
        if !starts {
            continue;
        }
        let mut parsed = Parsed::new();
        if chrono::format::parse_and_remainder(&mut parsed, &s[at..], items.iter()).is_ok()
            && let Some(d) = resolve_parsed(parsed, tz, now)
        {
            return Some(d);
        }
    }
    None
}

fn resolve_parsed(mut p: Parsed, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if p.timestamp().is_some() {
        return p.to_naive_datetime_with_offset(0).ok().map(|n| n.and_utc());
    }
    if p.hour_div_12().is_none() && p.hour_mod_12().is_none() {
        p.set_hour(0).ok()?;
    }
    if p.minute().is_none() {
        p.set_minute(0).ok()?;
    }
    let time = p.to_naive_time().ok()?;
    let offset = p.offset();
    let build = |p: &Parsed| {
        let naive = p.to_naive_date().ok()?.and_time(time);
        to_utc(naive, offset, tz)
    };
    let has_year = p.year().is_some()
        || p.year_mod_100().is_some()
        || p.year_div_100().is_some()
        || p.isoyear().is_some();
    if has_year {
        build(&p)
    } else {
        infer_year(tz, now, |y| {
            let mut p = p.clone();
            p.set_year(i64::from(y)).ok()?;
            build(&p)
        })
    }
}

/// The most recent year that puts the date at most a day after `now` (a page's "Dec 30" read
/// on January 3 is last year's).
fn infer_year(
    tz: Tz,
    now: DateTime<Utc>,
    build: impl Fn(i32) -> Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let latest = now.checked_add_signed(TimeDelta::days(1)).unwrap_or(now);
    let this = now.with_timezone(&tz).year();
    // Eleven years back covers Feb 29 and a weekday that must match.
    (this - 11..=this + 1)
        .rev()
        .filter_map(build)
        .find(|d| *d <= latest)
}

/// A local date and time to UTC: with a written offset in seconds east, else in `tz`.
fn to_utc(naive: NaiveDateTime, offset: Option<i32>, tz: Tz) -> Option<DateTime<Utc>> {
    if let Some(secs) = offset {
        return naive
            .checked_sub_signed(TimeDelta::seconds(i64::from(secs)))
            .map(|n| n.and_utc());
    }
    if let Some(d) = tz.from_local_datetime(&naive).earliest() {
        return Some(d.to_utc());
    }
    // A DST gap: the offset in force before it (gaps are at most a few hours).
    let before = naive.checked_sub_signed(TimeDelta::hours(3))?;
    let fix = tz.from_local_datetime(&before).earliest()?.offset().fix();
    naive
        .checked_sub_signed(TimeDelta::seconds(i64::from(fix.local_minus_utc())))
        .map(|n| n.and_utc())
}

/// RFC 2822 only when a zone is written after the time (else the tokens read it in `tz`).
fn rfc2822_zoned(s: &str) -> Option<DateTime<Utc>> {
    let last = s.split_whitespace().last()?;
    if last.contains(':') || last.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    rfc2822(s)
}

/// Unix seconds (10 digits) or milliseconds (13), with an optional fraction; `YYYYMMDD`.
fn timestamp(s: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let n: i64 = int.parse().ok()?;
    // Nanoseconds of the fraction, in the unit of the integer part.
    let frac_nanos = |unit: i64| -> i64 {
        let digits: String = frac.unwrap_or("").chars().take(9).collect();
        let scaled = format!("{digits:0<9}").parse::<i64>().unwrap_or(0);
        scaled * unit / 1_000_000_000
    };
    match int.len() {
        10 => DateTime::from_timestamp(n, u32::try_from(frac_nanos(1_000_000_000)).ok()?),
        13 => DateTime::from_timestamp_millis(n)
            .and_then(|d| d.checked_add_signed(TimeDelta::nanoseconds(frac_nanos(1_000_000)))),
        8 if frac.is_none() => {
            let d = NaiveDate::parse_from_str(int, "%Y%m%d").ok()?;
            to_utc(d.and_time(NaiveTime::MIN), None, tz)
        }
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Digits: value (saturating), digit count.
    Num(u64, usize),
    /// Letters, lowercased.
    Word(String),
    Punct(char),
}

#[derive(Debug, Clone)]
struct Tok {
    kind: Kind,
    /// No whitespace before it.
    glued: bool,
}

fn tokens(s: &str) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::new();
    let mut glued = true;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            glued = false;
            continue;
        }
        let kind = if c.is_ascii_digit() {
            let mut value = u64::from(c as u8 - b'0');
            let mut len = 1;
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                value = value
                    .saturating_mul(10)
                    .saturating_add(u64::from(d as u8 - b'0'));
                len += 1;
            }
            Kind::Num(value, len)
        } else if c.is_alphabetic() {
            let mut word = String::new();
            word.extend(c.to_lowercase());
            while let Some(d) = chars.next_if(|d| d.is_alphabetic()) {
                word.extend(d.to_lowercase());
            }
            Kind::Word(word)
        } else {
            Kind::Punct(c)
        };
        out.push(Tok {
            kind,
            glued: glued && !out.is_empty(),
        });
        glued = true;
    }
    out
}

/// A date found in the tokens, before it is put in a year and a zone.
enum Hit {
    At(DateTime<Utc>),
    Local {
        year: Option<i32>,
        month: u32,
        day: u32,
        time: Option<NaiveTime>,
        /// Seconds east of UTC.
        offset: Option<i32>,
    },
}

/// A cursor over the tokens.
#[derive(Clone, Copy)]
struct Cur<'a> {
    t: &'a [Tok],
    i: usize,
}

impl<'a> Cur<'a> {
    fn tok(&self) -> Option<&'a Tok> {
        self.t.get(self.i)
    }
    fn next(self) -> Self {
        Cur {
            t: self.t,
            i: self.i + 1,
        }
    }
    fn glued(&self) -> bool {
        self.tok().is_some_and(|t| t.glued)
    }
    /// Whether this token is glued to a word or number before it (`aa45` in `f6aa45d`):
    /// part of a longer run, such as a commit hash or a model name.
    fn inside_run(&self) -> bool {
        self.glued()
            && self
                .i
                .checked_sub(1)
                .and_then(|p| self.t.get(p))
                .is_some_and(|p| matches!(p.kind, Kind::Word(_) | Kind::Num(..)))
    }
    fn word(&self) -> Option<&'a str> {
        match &self.tok()?.kind {
            Kind::Word(w) => Some(w),
            _ => None,
        }
    }
    fn is_word(&self, any: &[&str]) -> bool {
        self.word().is_some_and(|w| any.contains(&w))
    }
    fn punct(&self) -> Option<char> {
        match self.tok()?.kind {
            Kind::Punct(c) => Some(c),
            _ => None,
        }
    }
    fn is_punct(&self, any: &[char]) -> bool {
        self.punct().is_some_and(|c| any.contains(&c))
    }
    /// A number of 1 to `max_len` digits.
    fn num(&self, max_len: usize) -> Option<(u64, usize)> {
        match self.tok()?.kind {
            Kind::Num(v, len) if len <= max_len => Some((v, len)),
            _ => None,
        }
    }
    /// Skips one token if it is one of these words.
    fn skip_word(self, any: &[&str]) -> Self {
        if self.is_word(any) { self.next() } else { self }
    }
    fn skip_punct(self, any: &[char]) -> Self {
        if self.is_punct(any) {
            self.next()
        } else {
            self
        }
    }
}

fn scan(toks: &[Tok], tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (0..toks.len()).find_map(|i| {
        let c = Cur { t: toks, i };
        let hit = relative(c, tz, now)
            .or_else(|| time_then_date(c))
            .or_else(|| date_then_time(c))?;
        resolve(hit, tz, now)
    })
}

fn resolve(hit: Hit, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match hit {
        Hit::At(d) => Some(d),
        Hit::Local {
            year,
            month,
            day,
            time,
            offset,
        } => {
            let build = |y: i32| {
                let date = NaiveDate::from_ymd_opt(y, month, day)?;
                to_utc(date.and_time(time.unwrap_or(NaiveTime::MIN)), offset, tz)
            };
            match year {
                Some(y) => build(y),
                None => infer_year(tz, now, build),
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// Unit words; `compact` ones may be glued to the number without "ago" ("3d").
fn unit(word: &str) -> Option<(Unit, bool)> {
    use Unit::*;
    Some(match word {
        "s" | "sec" => (Second, true),
        "secs" | "second" | "seconds" | "sekunde" | "sekunden" | "seconde" | "secondes"
        | "segundo" | "segundos" => (Second, false),
        "m" | "min" | "mins" => (Minute, true),
        "minute" | "minutes" | "minuten" | "minuto" | "minutos" => (Minute, false),
        "h" | "hr" | "hrs" | "std" => (Hour, true),
        "hour" | "hours" | "stunde" | "stunden" | "heure" | "heures" | "hora" | "horas" => {
            (Hour, false)
        }
        "d" => (Day, true),
        "day" | "days" | "tag" | "tage" | "tagen" | "jour" | "jours" | "día" | "dia" | "días"
        | "dias" => (Day, false),
        "w" | "wk" | "wks" => (Week, true),
        "week" | "weeks" | "woche" | "wochen" | "semaine" | "semaines" | "semana" | "semanas" => {
            (Week, false)
        }
        "mo" | "mos" => (Month, true),
        "month" | "months" | "monat" | "monate" | "monaten" | "mois" | "mes" | "meses" => {
            (Month, false)
        }
        "y" | "yr" | "yrs" => (Year, true),
        "year" | "years" | "jahr" | "jahre" | "jahren" | "an" | "ans" | "année" | "années"
        | "año" | "años" => (Year, false),
        _ => return None,
    })
}

/// Moves `now` by `n` units, `sign` -1 for the past.
fn shift(now: DateTime<Utc>, n: u64, unit: Unit, sign: i64) -> Option<DateTime<Utc>> {
    let n = i64::try_from(n).ok()?;
    let secs = |per: i64| {
        n.checked_mul(per)?
            .checked_mul(sign)
            .and_then(TimeDelta::try_seconds)
    };
    let months = |per: u32| -> Option<DateTime<Utc>> {
        let m = Months::new(u32::try_from(n).ok()?.checked_mul(per)?);
        if sign < 0 {
            now.checked_sub_months(m)
        } else {
            now.checked_add_months(m)
        }
    };
    match unit {
        Unit::Second => now.checked_add_signed(secs(1)?),
        Unit::Minute => now.checked_add_signed(secs(60)?),
        Unit::Hour => now.checked_add_signed(secs(3600)?),
        Unit::Day => now.checked_add_signed(secs(86_400)?),
        Unit::Week => now.checked_add_signed(secs(7 * 86_400)?),
        Unit::Month => months(1),
        Unit::Year => months(12),
    }
}

const ONE: &[&str] = &[
    "a", "an", "one", "ein", "eine", "einem", "einer", "un", "une", "una", "uno",
];

/// "2 hours ago", "in 2 hours", "vor 2 Stunden", "3d", "just now", "yesterday at 15:00".
fn relative(c: Cur<'_>, tz: Tz, now: DateTime<Utc>) -> Option<Hit> {
    let w = c.word();
    if let Some(w) = w {
        if matches!(w, "now" | "jetzt" | "maintenant" | "ahora") {
            return Some(Hit::At(now));
        }
        if w == "just" && c.next().is_word(&["now"]) {
            return Some(Hit::At(now));
        }
        if matches!(w, "moments" | "seconds") && c.next().is_word(&["ago"]) {
            return Some(Hit::At(now));
        }
        let days = match w {
            "today" | "heute" | "aujourd" | "hoy" => Some(0),
            "yesterday" | "gestern" | "ayer" => Some(-1),
            "tomorrow" => Some(1),
            _ => None,
        };
        if let Some(days) = days {
            let date = now
                .with_timezone(&tz)
                .date_naive()
                .checked_add_signed(TimeDelta::days(days))?;
            let mut after = c.next();
            if w == "aujourd" {
                after = after.skip_punct(&['\'', '’']).skip_word(&["hui"]);
            }
            let (time, offset) = match time(connector(after)) {
                Some((t, o, _)) => (Some(t), o),
                None => (None, None),
            };
            return Some(Hit::Local {
                year: Some(date.year()),
                month: date.month(),
                day: date.day(),
                time,
                offset,
            });
        }
    }
    // Prefixes that make the amounts past or future without "ago".
    let (sign, start, needs_ago) = if c.is_word(&["in"]) {
        (1, c.next(), false)
    } else if c.is_word(&["vor", "hace"]) {
        (-1, c.next(), false)
    } else if c.is_word(&["il"]) && c.next().is_word(&["y"]) && c.next().next().is_word(&["a"]) {
        (-1, c.next().next().next(), false)
    } else {
        (-1, c, true)
    };
    let (n, unit, compact, mut at) = amount(start)?;
    let mut d = shift(now, n, unit, sign)?;
    let mut count = 1;
    // "1 hr, 5 min ago", "2 Stunden und 5 Minuten": at most four amounts.
    while count < 4 {
        let next = at.skip_punct(&[',']).skip_word(&["and", "und", "et", "y"]);
        let Some((n, unit, _, after)) = amount(next) else {
            break;
        };
        d = shift(d, n, unit, sign)?;
        count += 1;
        at = after;
    }
    if !needs_ago || at.is_word(&["ago"]) {
        return Some(Hit::At(d));
    }
    // "3d", "5m": one glued short amount, not followed by a word ("5m views").
    if compact && count == 1 && at.word().is_none() {
        return Some(Hit::At(d));
    }
    None
}

/// An amount and its unit ("2 hours", "an hour", "a few minutes", "3d"), whether it is a
/// short unit glued to a number, and the cursor after the unit.
fn amount(at: Cur<'_>) -> Option<(u64, Unit, bool, Cur<'_>)> {
    let (n, u) = if let Some((v, _)) = at.num(9) {
        (v, at.next())
    } else if at.is_word(&["few"]) {
        (3, at.next())
    } else if at.is_word(ONE) {
        if at.next().is_word(&["few"]) {
            (3, at.next().next())
        } else {
            (1, at.next())
        }
    } else {
        return None;
    };
    let (unit, short) = u.word().and_then(unit)?;
    // A glued short unit followed by glued digits is a time ("15h45").
    if u.next().glued() && u.next().num(2).is_some() {
        return None;
    }
    let compact = short && u.glued() && at.num(9).is_some() && !at.inside_run();
    Some((n, unit, compact, u.next()))
}

/// Skips what joins a date and a time: ",", "at", "um", "à", "a las", "T", "-", "|", "·".
fn connector(c: Cur<'_>) -> Cur<'_> {
    let mut c = c;
    for _ in 0..3 {
        if c.is_punct(&[',', '-', '–', '—', '|', '·', '•', '@', '/'])
            || c.is_word(&[
                "at", "um", "à", "a", "las", "t", "on", "le", "de", "la", "el",
            ])
        {
            c = c.next();
        } else {
            break;
        }
    }
    c
}

/// A time of day and an optional zone: "15:45", "15:45:30.5", "3:45 PM", "3 p.m.", "15h45".
fn time(c: Cur<'_>) -> Option<(NaiveTime, Option<i32>, Cur<'_>)> {
    let (h, _) = c.num(2)?;
    let mut at = c.next();
    let (mut m, mut s, mut nanos) = (0, 0, 0);
    let mut has_minutes = false;
    if at.is_punct(&[':']) && at.next().glued() && at.next().num(2).is_some_and(|(_, l)| l == 2) {
        m = at.next().num(2)?.0;
        has_minutes = true;
        at = at.next().next();
        if at.is_punct(&[':']) && at.next().glued() && at.next().num(2).is_some_and(|(_, l)| l == 2)
        {
            s = at.next().num(2)?.0;
            at = at.next().next();
            if at.is_punct(&['.', ','])
                && at.next().glued()
                && let Some((v, len)) = at.next().num(9)
            {
                nanos = v * 10u64.pow(u32::try_from(9 - len).ok()?);
                at = at.next().next();
            }
        }
    } else if at.glued() && at.is_word(&["h"]) && at.next().glued() {
        let (v, len) = at.next().num(2)?;
        if len != 2 {
            return None;
        }
        m = v;
        has_minutes = true;
        at = at.next().next();
    }
    let mut h = h;
    // AM/PM: "pm", "p.m.", "PM".
    let meridiem = if at.is_word(&["am", "pm"]) {
        let pm = at.is_word(&["pm"]);
        at = at.next().skip_punct(&['.']);
        Some(pm)
    } else if at.is_word(&["a", "p"])
        && at.next().is_punct(&['.'])
        && at.next().next().is_word(&["m"])
    {
        let pm = at.is_word(&["p"]);
        at = at.next().next().next().skip_punct(&['.']);
        Some(pm)
    } else {
        None
    };
    match meridiem {
        Some(pm) if (1..=12).contains(&h) => h = h % 12 + if pm { 12 } else { 0 },
        Some(_) => {}
        None if !has_minutes => return None,
        None => {}
    }
    let t = NaiveTime::from_hms_nano_opt(
        u32::try_from(h).ok()?,
        u32::try_from(m).ok()?,
        u32::try_from(s.min(59)).ok()?,
        u32::try_from(nanos).ok()?,
    )?;
    let (offset, at) = match zone(at) {
        Some((o, next)) => (Some(o), next),
        None => (None, at),
    };
    Some((t, offset, at))
}

/// Zone names RFC 2822 knows, and German ones.
const MORE_ZONES: &[(&str, i32)] = &[
    ("GMT", 0),
    ("UT", 0),
    ("EST", -5),
    ("EDT", -4),
    ("CST", -6),
    ("CDT", -5),
    ("MST", -7),
    ("MDT", -6),
    ("PST", -8),
    ("PDT", -7),
    ("MEZ", 1),
    ("MESZ", 2),
];

/// Seconds east of a zone name.
fn zone_name(w: &str) -> Option<i32> {
    let upper = w.to_ascii_uppercase();
    if let Some((_, h)) = MORE_ZONES.iter().find(|(n, _)| *n == upper) {
        return Some(h * 3600);
    }
    let (_, off) = EXTRA_ZONES.iter().find(|(n, _)| *n == upper)?;
    // "+0530" / "-0330"
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let h: i32 = off.get(1..3)?.parse().ok()?;
    let m: i32 = off.get(3..5)?.parse().ok()?;
    Some(sign * (h * 3600 + m * 60))
}

/// A zone: a name, "Z", "+01:00", "+0100", "GMT+1", "UTC-05:00".
fn zone(c: Cur<'_>) -> Option<(i32, Cur<'_>)> {
    let named = c.word().and_then(zone_name);
    let after_name = if named.is_some() { c.next() } else { c };
    // A sign and digits: after a name (glued or not), or with 4 digits or hh:mm on its own.
    if after_name.is_punct(&['+', '-', '−']) && after_name.next().glued() {
        let sign = if after_name.is_punct(&['+']) { 1 } else { -1 };
        let n = after_name.next();
        let found = match n.num(4) {
            Some((v, 4)) => Some((v / 100, v % 100, n.next())),
            Some((v, _))
                if n.next().is_punct(&[':'])
                    && n.next().next().num(2).is_some_and(|(_, l)| l == 2) =>
            {
                Some((v, n.next().next().num(2)?.0, n.next().next().next()))
            }
            Some((v, _)) if named.is_some() => Some((v, 0, n.next())),
            _ => None,
        };
        if let Some((h, m, next)) = found
            && h <= 14
            && m < 60
        {
            let secs = i32::try_from(h * 3600 + m * 60).ok()?;
            return Some((sign * secs + named.unwrap_or(0), next));
        }
    }
    named.map(|o| (o, after_name))
}

fn month_name(w: &str) -> Option<u32> {
    Some(match w {
        "january" | "jan" | "januar" | "jänner" | "jän" | "janvier" | "janv" | "enero" | "ene" => {
            1
        }
        "february" | "feb" | "februar" | "février" | "fevrier" | "févr" | "fevr" | "fév"
        | "febrero" => 2,
        "march" | "mar" | "märz" | "maerz" | "mär" | "mrz" | "mars" | "marzo" => 3,
        "april" | "apr" | "avril" | "avr" | "abril" | "abr" => 4,
        "may" | "mai" | "mayo" => 5,
        "june" | "jun" | "juni" | "juin" | "junio" => 6,
        "july" | "jul" | "juli" | "juillet" | "juil" | "julio" => 7,
        "august" | "aug" | "août" | "aout" | "agosto" => 8,
        "september" | "sep" | "sept" | "septembre" | "septiembre" | "setiembre" => 9,
        "october" | "oct" | "oktober" | "okt" | "octobre" | "octubre" => 10,
        "november" | "nov" | "novembre" | "noviembre" => 11,
        "december" | "dec" | "dezember" | "dez" | "décembre" | "decembre" | "déc" | "diciembre"
        | "dic" => 12,
        _ => return None,
    })
}

/// A day of the month (1 to 31), with an optional ordinal ("9th", "1er", "9.").
fn day(c: Cur<'_>) -> Option<(u32, Cur<'_>)> {
    let (d, _) = c.num(2)?;
    if !(1..=31).contains(&d) {
        return None;
    }
    let mut at = c.next();
    if at.glued() && at.is_word(&["st", "nd", "rd", "th", "er", "e", "ème", "eme", "º", "ª"]) {
        at = at.next();
    }
    Some((u32::try_from(d).ok()?, at))
}

/// A four-digit year.
fn year4(c: Cur<'_>) -> Option<(i32, Cur<'_>)> {
    match c.num(4)? {
        (y, 4) if y >= 1000 => Some((i32::try_from(y).ok()?, c.next())),
        _ => None,
    }
}

/// The date forms, each with an optional time or zone after them.
fn date_then_time(c: Cur<'_>) -> Option<Hit> {
    let (year, month, day, at) = date(c)?;
    let (time, offset) = match time(connector(at)) {
        Some((t, o, _)) => (Some(t), o),
        // A zone right after a date without a time ("9 Feb 2023 UTC").
        None => (None, at.word().and_then(zone_name)),
    };
    Some(Hit::Local {
        year,
        month,
        day,
        time,
        offset,
    })
}

/// "3:45 PM · Feb 9, 2023"
fn time_then_date(c: Cur<'_>) -> Option<Hit> {
    let (t, offset, at) = time(c)?;
    let (year, month, day, _) = date(connector(at))?;
    Some(Hit::Local {
        year,
        month,
        day,
        time: Some(t),
        offset,
    })
}

type Ymd<'a> = (Option<i32>, u32, u32, Cur<'a>);

fn date(c: Cur<'_>) -> Option<Ymd<'_>> {
    numeric_ymd(c)
        .or_else(|| numeric_dmy(c))
        .or_else(|| cjk(c))
        .or_else(|| named_dmy(c))
        .or_else(|| named_mdy(c))
}

/// A glued separator and another number after the match: part of a longer dotted or dashed
/// run (a version, an address), not a date.
fn runs_on(c: Cur<'_>) -> bool {
    c.glued() && c.is_punct(&['.', '-', '/']) && c.next().glued() && c.next().num(20).is_some()
}

/// The same before the match: "1.10.12.2023" has no date at "10".
fn runs_before(c: Cur<'_>) -> bool {
    let Some(i) = c.i.checked_sub(2) else {
        return false;
    };
    let num = Cur { t: c.t, i };
    num.num(20).is_some() && runs_on(num.next()) && c.glued()
}

/// "2023-02-09", "2023/2/9", "2023.02.09"
fn numeric_ymd(c: Cur<'_>) -> Option<Ymd<'_>> {
    if runs_before(c) {
        return None;
    }
    let (y, at) = year4(c)?;
    if !at.glued() || !at.next().glued() {
        return None;
    }
    let sep = at.punct().filter(|s| ['-', '/', '.'].contains(s))?;
    let (m, _) = at.next().num(2)?;
    let at = at.next().next();
    if !at.is_punct(&[sep]) || !at.glued() || !at.next().glued() {
        return None;
    }
    let (d, _) = at.next().num(2)?;
    let end = at.next().next();
    if runs_on(end) {
        return None;
    }
    Some((Some(y), u32::try_from(m).ok()?, u32::try_from(d).ok()?, end))
}

/// "09.02.2023" (day first); "25/12/2023", "12-25-2023" when only one order is possible.
fn numeric_dmy(c: Cur<'_>) -> Option<Ymd<'_>> {
    if runs_before(c) {
        return None;
    }
    let (a, _) = c.num(2)?;
    let sep_at = c.next();
    let sep = sep_at.punct().filter(|s| ['-', '/', '.'].contains(s))?;
    if !sep_at.glued() || !sep_at.next().glued() {
        return None;
    }
    let (b, _) = sep_at.next().num(2)?;
    let sep2 = sep_at.next().next();
    if !sep2.is_punct(&[sep]) || !sep2.glued() || !sep2.next().glued() {
        return None;
    }
    let (y, end) = year4(sep2.next())?;
    if runs_on(end) {
        return None;
    }
    let (d, m) = if sep == '.' || a == b || (a > 12 && b <= 12) {
        (a, b)
    } else if b > 12 && a <= 12 {
        (b, a)
    } else {
        return None;
    };
    Some((Some(y), u32::try_from(m).ok()?, u32::try_from(d).ok()?, end))
}

/// "2023年2月9日" (also Korean 년 월 일).
fn cjk(c: Cur<'_>) -> Option<Ymd<'_>> {
    let (y, at) = year4(c)?;
    if !at.is_word(&["年", "년"]) {
        return None;
    }
    let (m, _) = at.next().num(2)?;
    let at = at.next().next();
    if !at.is_word(&["月", "월"]) {
        return None;
    }
    let (d, _) = at.next().num(2)?;
    let at = at.next().next().skip_word(&["日", "일"]);
    Some((Some(y), u32::try_from(m).ok()?, u32::try_from(d).ok()?, at))
}

/// A year after a month name: ", 2023", " de 2023", " '23", or "-24" in RFC 850's
/// "05-Mar-24".
fn year_after_month(at: Cur<'_>, dashed: bool) -> (Option<i32>, Cur<'_>) {
    if dashed && at.is_punct(&['-']) && at.glued() && at.next().glued() {
        if let Some((y, 2)) = at.next().num(2) {
            let y = i32::try_from(y).unwrap_or(0);
            // RFC 2822's rule for two-digit years.
            let y = if y < 50 { 2000 + y } else { 1900 + y };
            return (Some(y), at.next().next());
        }
        if let Some((y, next)) = year4(at.next()) {
            return (Some(y), next);
        }
    }
    let c = at.skip_punct(&[',']).skip_word(&["de", "del"]);
    // "Feb 9 '23"
    if c.is_punct(&['\'', '’'])
        && c.next().glued()
        && let Some((y, 2)) = c.next().num(2)
    {
        return (i32::try_from(y).ok().map(|y| 2000 + y), c.next().next());
    }
    // "9 Feb 15:45": a number followed by ':' is a time, not a year.
    match year4(c) {
        Some((y, next)) if !next.is_punct(&[':']) => (Some(y), next),
        _ => (None, at),
    }
}

/// "9 February 2023", "9th of Feb", "9. Februar 2023", "9 de febrero de 2023", "05-Mar-24".
fn named_dmy(c: Cur<'_>) -> Option<Ymd<'_>> {
    let (d, at) = day(c)?;
    let dashed = at.is_punct(&['-']) && at.glued() && at.next().glued();
    let at = at.skip_punct(&['.', '-']).skip_word(&["of", "de"]);
    let m = at.word().and_then(month_name)?;
    let at = at.next().skip_punct(&['.']);
    let (year, end) = year_after_month(at, dashed);
    Some((year, m, d, end))
}

/// "February 9, 2023", "Feb. 9th, 2023", "Feb 9", "February 2023".
fn named_mdy(c: Cur<'_>) -> Option<Ymd<'_>> {
    let m = c.word().and_then(month_name)?;
    let at = c.next().skip_punct(&['.']);
    if let Some((y, end)) = year4(at) {
        return Some((Some(y), m, 1, end));
    }
    let (d, after_day) = day(at)?;
    // "Feb 15:45" is not a day; "mar. 14 févr." is a French weekday, not March.
    if after_day.is_punct(&[':']) || after_day.word().and_then(month_name).is_some() {
        return None;
    }
    let (year, end) = year_after_month(after_day, false);
    Some((year, m, d, end))
}

#[cfg(test)]
mod tests;
