//! The WebSub hub's limits, kept in memory so a `POST /hub` costs O(1) and reads no store:
//! the subscriptions' counts per topic, per callback host, per both and in all (rebuilt
//! from the store at start, updated whenever a subscription is added, renewed or removed),
//! and, per callback host, the verifications under way and the verification requests of
//! the current minute. A "host" here is a callback's *site* ([`site`]: its registrable
//! domain, IPv4 address or IPv6 /64), so that wildcard DNS names, a trailing dot or the
//! addresses of one /64 count as one.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::store::HubSubscription;

/// Subscriptions at most, over every topic and callback host.
pub const MAX_SUBSCRIPTIONS: usize = 10_000;
/// Distinct topics with subscribers at most (a new topic past it is refused).
pub const MAX_TOPICS: usize = 500;
/// Subscriptions to one topic whose callbacks are on one host at most.
pub const MAX_PER_TOPIC_HOST: usize = 5;
/// Intent verifications under way at most, over every site; more requests are answered
/// 503.
pub const PENDING: usize = 64;
/// Verifications under way at most for callbacks on one host.
pub const PENDING_PER_HOST: usize = 4;
/// Verification requests (subscribe and unsubscribe) at most per callback host per
/// [`RATE_WINDOW`].
pub const RATE_PER_HOST: u32 = 30;
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Callback hosts whose request rate is followed at most at once.
pub const RATE_HOSTS: usize = 4096;

/// Why a verification cannot start now: the reason, and whether it is this host's share
/// (429) or the hub's (503).
#[derive(Debug, PartialEq)]
pub enum Busy {
    Host(String),
    Hub(String),
}

#[derive(Default)]
pub struct Counts {
    /// (topic, callback) -> (callback host, lease end).
    subs: HashMap<(String, String), (String, DateTime<Utc>)>,
    per_topic: HashMap<String, usize>,
    per_host: HashMap<String, usize>,
    per_topic_host: HashMap<(String, String), usize>,
    pending: HashMap<String, usize>,
    rate: HashMap<String, (Instant, u32)>,
}

/// The site of a callback URL (see [`site`]; empty when it has none).
pub fn site_of(callback: &str) -> String {
    url::Url::parse(callback)
        .ok()
        .and_then(|u| u.host_str().map(site))
        .unwrap_or_default()
}

/// The site of a URL's host, as the hub's bounds count it, so that one party's many
/// names or addresses count once: for a domain name its registrable domain (one label
/// more than its public suffix, from the Public Suffix List: `a.b.example.co.uk` ->
/// `example.co.uk`), lowercased and without a trailing dot (a name that is itself a
/// public suffix, or has no dot, is its own site); for an IPv4 address the address; for
/// an IPv6 address its /64 (an IPv4-mapped one is the IPv4 address).
pub fn site(host: &str) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::Ipv4Addr>() {
        return ip.to_string();
    }
    if let Ok(ip) = bare.parse::<std::net::Ipv6Addr>() {
        if let Some(v4) = ip.to_ipv4_mapped() {
            return v4.to_string();
        }
        let net = std::net::Ipv6Addr::from(ip.to_bits() & !u128::from(u64::MAX));
        return format!("{net}/64");
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    match psl::domain_str(&name) {
        Some(domain) => domain.to_string(),
        None => name,
    }
}

fn dec<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: K) {
    if let std::collections::hash_map::Entry::Occupied(mut e) = map.entry(key) {
        *e.get_mut() -= 1;
        if *e.get() == 0 {
            e.remove();
        }
    }
}

impl Counts {
    /// The counts of the stored subscriptions.
    pub fn of(subs: &[HubSubscription]) -> Counts {
        let mut counts = Counts::default();
        for s in subs {
            counts.add(&s.topic, &s.callback, s.expires);
        }
        counts
    }

    /// A subscription was stored (new, or a renewal with a new lease end).
    pub fn add(&mut self, topic: &str, callback: &str, expires: DateTime<Utc>) {
        let key = (topic.to_string(), callback.to_string());
        if let Some(entry) = self.subs.get_mut(&key) {
            entry.1 = expires;
            return;
        }
        let host = site_of(callback);
        *self.per_topic.entry(topic.to_string()).or_default() += 1;
        *self.per_host.entry(host.clone()).or_default() += 1;
        *self
            .per_topic_host
            .entry((topic.to_string(), host.clone()))
            .or_default() += 1;
        self.subs.insert(key, (host, expires));
    }

    /// A subscription was removed.
    pub fn remove(&mut self, topic: &str, callback: &str) {
        let Some((host, _)) = self.subs.remove(&(topic.to_string(), callback.to_string())) else {
            return;
        };
        dec(&mut self.per_topic, topic.to_string());
        dec(&mut self.per_host, host.clone());
        dec(&mut self.per_topic_host, (topic.to_string(), host));
    }

    /// Whether `callback` is subscribed to `topic` (its lease may have just ended).
    pub fn has(&self, topic: &str, callback: &str) -> bool {
        self.subs
            .contains_key(&(topic.to_string(), callback.to_string()))
    }

    /// Whether a (new) subscription of `callback` to `topic` keeps the limits; a renewal
    /// always does.
    pub fn allows(
        &self,
        max_per_topic: usize,
        max_per_callback_host: usize,
        topic: &str,
        callback: &str,
    ) -> Result<(), String> {
        if self.has(topic, callback) {
            return Ok(());
        }
        if self.subs.len() >= MAX_SUBSCRIPTIONS {
            return Err(format!(
                "the hub has {} subscriptions, the most it keeps",
                self.subs.len()
            ));
        }
        let per_topic = self.per_topic.get(topic).copied().unwrap_or(0);
        if per_topic == 0 && self.per_topic.len() >= MAX_TOPICS {
            return Err(format!(
                "{} feeds have subscribers, the most the hub serves; subscribe to one of them",
                self.per_topic.len()
            ));
        }
        if per_topic >= max_per_topic {
            return Err(format!(
                "this topic has {per_topic} subscriptions, the most allowed ([hub] max_per_topic)"
            ));
        }
        let host = site_of(callback);
        let per_topic_host = self
            .per_topic_host
            .get(&(topic.to_string(), host.clone()))
            .copied()
            .unwrap_or(0);
        if per_topic_host >= MAX_PER_TOPIC_HOST {
            return Err(format!(
                "this topic has {per_topic_host} subscriptions with callbacks on this site, the most allowed"
            ));
        }
        let per_host = self.per_host.get(&host).copied().unwrap_or(0);
        if per_host >= max_per_callback_host {
            return Err(format!(
                "the callback's site has {per_host} subscriptions, the most allowed ([hub] max_per_callback_host)"
            ));
        }
        Ok(())
    }

    /// Active subscriptions per topic.
    pub fn per_topic(&self, now: DateTime<Utc>) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for ((topic, _), _) in self.subs.iter().filter(|(_, (_, e))| *e > now) {
            *counts.entry(topic.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// The (topic, callback) of the subscriptions whose lease ended by `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> Vec<(String, String)> {
        self.subs
            .iter()
            .filter(|(_, (_, e))| *e <= now)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// A verification for a callback on `host` would start at `now`: counted, or why not.
    pub fn start_verification(&mut self, host: &str, now: Instant) -> Result<(), Busy> {
        let pending = self.pending.get(host).copied().unwrap_or(0);
        if pending >= PENDING_PER_HOST {
            return Err(Busy::Host(format!(
                "{pending} verifications for callbacks on this site are under way; try again later"
            )));
        }
        if !self.rate.contains_key(host) && self.rate.len() >= RATE_HOSTS {
            self.rate
                .retain(|_, (since, _)| now.duration_since(*since) < RATE_WINDOW);
            if self.rate.len() >= RATE_HOSTS {
                return Err(Busy::Hub(
                    "too many callback sites asked for verifications lately; try again later"
                        .into(),
                ));
            }
        }
        let (since, n) = self.rate.entry(host.to_string()).or_insert((now, 0));
        if now.duration_since(*since) >= RATE_WINDOW {
            (*since, *n) = (now, 0);
        }
        if *n >= RATE_PER_HOST {
            return Err(Busy::Host(format!(
                "{RATE_PER_HOST} verifications a minute at most for callbacks on one site; try again later"
            )));
        }
        if self.pending.values().sum::<usize>() >= PENDING {
            return Err(Busy::Hub(format!(
                "{PENDING} verifications are under way; try again later"
            )));
        }
        *n += 1;
        *self.pending.entry(host.to_string()).or_default() += 1;
        Ok(())
    }

    /// A verification for a callback on `host` ended (or never started).
    pub fn end_verification(&mut self, host: &str) {
        dec(&mut self.pending, host.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(topic: &str, callback: &str) -> HubSubscription {
        HubSubscription {
            topic: topic.into(),
            callback: callback.into(),
            secret: None,
            expires: Utc::now() + chrono::Duration::hours(1),
            failures: 0,
            failing_since: None,
        }
    }

    #[test]
    fn counts_follow_additions_renewals_and_removals() {
        let mut c = Counts::of(&[sub("t1", "http://a.test/1"), sub("t1", "http://A.test/2")]);
        assert_eq!(c.per_host["a.test"], 2);
        assert_eq!(
            c.per_topic_host[&("t1".to_string(), "a.test".to_string())],
            2
        );
        let later = Utc::now() + chrono::Duration::hours(5);
        c.add("t1", "http://a.test/1", later);
        assert_eq!(c.per_topic["t1"], 2, "a renewal is no new subscription");
        c.remove("t1", "http://a.test/1");
        c.remove("t1", "http://a.test/1");
        assert_eq!(c.per_topic["t1"], 1);
        c.remove("t1", "http://A.test/2");
        assert!(c.per_topic.is_empty() && c.per_host.is_empty() && c.per_topic_host.is_empty());
        assert!(c.subs.is_empty());
    }

    #[test]
    fn the_total_and_the_topics_are_bounded() {
        let mut c = Counts::default();
        let end = Utc::now() + chrono::Duration::hours(1);
        for i in 0..MAX_TOPICS {
            c.add(&format!("t{i}"), &format!("http://h{i}.test/"), end);
        }
        let e = c.allows(100, 100, "new", "http://x.test/").unwrap_err();
        assert!(e.contains("500 feeds have subscribers"), "{e}");
        assert!(c.allows(100, 100, "t1", "http://x.test/").is_ok());
        for i in 0..(MAX_SUBSCRIPTIONS - MAX_TOPICS) {
            c.add(&format!("t{}", i % 10), &format!("http://m{i}.test/"), end);
        }
        let e = c.allows(100_000, 100, "t1", "http://x.test/").unwrap_err();
        assert!(e.contains("10000 subscriptions"), "{e}");
        assert!(
            c.allows(100_000, 100, "t1", "http://m1.test/").is_ok(),
            "renewal"
        );
    }

    #[test]
    fn one_host_gets_a_few_places_per_topic() {
        let mut c = Counts::default();
        let end = Utc::now() + chrono::Duration::hours(1);
        for i in 0..MAX_PER_TOPIC_HOST {
            c.add("t", &format!("http://a.test/{i}"), end);
        }
        let e = c.allows(100, 100, "t", "http://a.test/new").unwrap_err();
        assert!(e.contains("on this site"), "{e}");
        assert!(
            c.allows(100, 100, "t", "http://a.test/0").is_ok(),
            "renewal"
        );
        assert!(c.allows(100, 100, "t", "http://b.test/new").is_ok());
        assert!(c.allows(100, 100, "u", "http://a.test/new").is_ok());
    }

    #[test]
    fn verification_requests_are_bounded_per_host_in_number_and_rate() {
        let mut c = Counts::default();
        let t0 = Instant::now();
        for _ in 0..PENDING_PER_HOST {
            c.start_verification("a", t0).expect("a place");
        }
        assert!(matches!(c.start_verification("a", t0), Err(Busy::Host(_))));
        c.start_verification("b", t0).expect("another host");
        for _ in 0..(RATE_PER_HOST as usize - PENDING_PER_HOST) {
            c.end_verification("a");
            c.start_verification("a", t0).expect("within the rate");
        }
        for _ in 0..PENDING_PER_HOST {
            c.end_verification("a");
        }
        let Err(Busy::Host(why)) = c.start_verification("a", t0) else {
            panic!("over the rate")
        };
        assert!(why.contains("a minute"), "{why}");
        c.start_verification("a", t0 + RATE_WINDOW)
            .expect("a new minute");
    }

    #[test]
    fn verifications_under_way_are_bounded_over_every_site() {
        let mut c = Counts::default();
        let t0 = Instant::now();
        for i in 0..PENDING {
            c.start_verification(&format!("h{}", i / PENDING_PER_HOST), t0)
                .expect("room");
        }
        assert!(matches!(
            c.start_verification("another", t0),
            Err(Busy::Hub(_))
        ));
        c.end_verification("h0");
        c.start_verification("another", t0).expect("a place freed");
    }

    #[test]
    fn the_rate_map_is_bounded() {
        let mut c = Counts::default();
        let t0 = Instant::now();
        for i in 0..RATE_HOSTS {
            c.start_verification(&format!("h{i}"), t0).expect("room");
            // Ended, so only the rate map fills (not the verifications under way).
            c.end_verification(&format!("h{i}"));
        }
        assert!(matches!(
            c.start_verification("late", t0),
            Err(Busy::Hub(_))
        ));
        assert!(c.start_verification("h1", t0).is_ok(), "a known host");
        c.start_verification("late", t0 + RATE_WINDOW)
            .expect("old windows are forgotten");
        assert_eq!(c.rate.len(), 1);
    }

    #[test]
    fn a_site_is_a_registrable_domain_an_ipv4_address_or_an_ipv6_64() {
        for (host, want) in [
            ("example.com", "example.com"),
            ("a.example.com", "example.com"),
            ("x1.wild.example.com", "example.com"),
            ("a.b.example.co.uk", "example.co.uk"),
            ("example.co.uk", "example.co.uk"),
            ("Sub.Example.COM", "example.com"),
            ("a.example.com.", "example.com"),
            ("example.com.", "example.com"),
            ("co.uk", "co.uk"),
            ("localhost", "localhost"),
            ("feeds.test", "feeds.test"),
            ("203.0.113.7", "203.0.113.7"),
            ("[2001:db8:1:2:3:4:5:6]", "2001:db8:1:2::/64"),
            ("[2001:db8:1:2::ffff]", "2001:db8:1:2::/64"),
            ("[2001:db8:1:3::1]", "2001:db8:1:3::/64"),
            ("[::ffff:203.0.113.7]", "203.0.113.7"),
        ] {
            assert_eq!(site(host), want, "{host}");
        }
        // As callbacks: the URL parser's host, then its site.
        assert_eq!(site_of("http://x.y.Example.org./cb?a=1"), "example.org");
        assert_eq!(site_of("http://[::ffff:10.0.0.1]:8080/cb"), "10.0.0.1");
        assert_eq!(site_of("http://[2001:db8::5]/cb"), "2001:db8::/64");
        assert_eq!(site_of("not a url"), "");
    }

    #[test]
    fn wildcard_subdomains_and_a_64_count_as_one_site() {
        let t0 = Instant::now();
        let mut c = Counts::default();
        for i in 0..3 {
            c.add("t", &format!("http://h{i}.example.com./cb"), Utc::now());
        }
        let e = c
            .allows(100, 3, "t2", "http://other.example.com/cb")
            .expect_err("the site has 3");
        assert!(e.contains("site has 3"), "{e}");
        assert!(c.allows(100, 3, "t2", "http://example.net/cb").is_ok());
        // Verifications: every address of one /64 shares the site's places.
        for i in 0..PENDING_PER_HOST {
            c.start_verification(&site_of(&format!("http://[2001:db8::{i:x}]/cb")), t0)
                .expect("a place");
        }
        let busy = c.start_verification(&site_of("http://[2001:db8::ffff:1]/cb"), t0);
        assert!(matches!(busy, Err(Busy::Host(_))));
        assert!(
            c.start_verification(&site_of("http://[2001:db8:0:1::1]/cb"), t0)
                .is_ok()
        );
    }
}
