//! The address guard for article pages (full text): URLs from untrusted feeds must not
//! make tributary reach into the network it runs in (SSRF).
//!
//! An article URL may be fetched only if every address it is fetched from is public, or is
//! in `[fetch] allow_networks`, or the URL is on the source's own origin (scheme, host and
//! port of its `url`).
//! The check is on the addresses actually connected to: the guarded HTTP client resolves
//! names through [`GuardedResolver`], which hands the connector only permitted addresses,
//! so a name that resolves to a public address once and a private one the next time (DNS
//! rebinding) cannot slip through. Literal IP hosts are checked by [`check_url`], at each
//! redirect hop. Proxies are not used for article pages (a proxy would connect for us).
//!
//! A feed's own redirects are guarded too ([`Policy::for_redirects_from`]): a hop off the
//! configured URL's origin may go to a public address, to a network in `allow_networks`,
//! or to the same kind of network the configured URL was reached at (a feed on loopback
//! may redirect to another loopback address, one in private space to private space), but a
//! feed on a public host can never lead tributary into loopback, link-local or private
//! space.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// Why an address is refused, for logs and status; `None` when it is public.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            // Addresses that carry an IPv4 address are judged by it.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            let s = v6.segments();
            if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_loopback() {
                Some("loopback")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("unique local")
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if (s[0] & 0xffc0) == 0xfec0 {
                Some("site-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("documentation")
            } else if s[0] == 0x0064 && s[1] == 0xff9b {
                // NAT64: the embedded IPv4 address decides.
                let v4 =
                    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                non_public_v4(v4)
            } else if s[0] == 0x2002 {
                // 6to4: likewise.
                let v4 =
                    Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
                non_public_v4(v4)
            } else if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0 {
                // IPv4-compatible (deprecated) and the rest of ::/96.
                Some("reserved")
            } else {
                None
            }
        }
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignments")
    } else if ip.is_documentation() {
        Some("documentation")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("benchmarking")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || o[0] >= 240 {
        Some("reserved")
    } else {
        None
    }
}

/// Why the guard refuses a URL or an address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A non-public address (`kind` as [`non_public`] names it) outside `allow_networks`.
    #[error("{ip} is a {kind} address (not public; allow it with [fetch] allow_networks)")]
    NonPublic { ip: IpAddr, kind: &'static str },
    /// `localhost` or one of its subdomains, refused by name.
    #[error("{name} is a loopback name")]
    LoopbackName { name: String },
    #[error("the URL has no host")]
    NoHost,
}

/// What the guard lets through besides public addresses.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// `[fetch] allow_networks`.
    pub allow: Vec<ipnet::IpNet>,
    /// A kind of non-public network (as [`non_public`] names it) let through as well: the
    /// one a feed's configured URL was reached at, for that feed's redirects.
    pub also: Option<&'static str>,
}

impl Policy {
    /// `Err(why)` when `ip` may not be fetched from.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        match non_public(ip) {
            None => Ok(()),
            Some(_) if self.allow.iter().any(|n| n.contains(&ip)) => Ok(()),
            Some(kind) if self.also == Some(kind) => Ok(()),
            Some(kind) => Err(Refusal::NonPublic { ip, kind }),
        }
    }

    /// The policy for a feed's redirects off its configured origin, when the configured
    /// URL was reached at `reached` (the address connected to; `None` if unknown, which
    /// counts as public): the same network kind is let through, nothing else non-public
    /// beyond `allow_networks`.
    pub fn for_redirects_from(&self, reached: Option<IpAddr>) -> Policy {
        Policy {
            allow: self.allow.clone(),
            also: reached.and_then(non_public),
        }
    }
}

/// The address a URL names by itself, for judging its kind of network without connecting
/// (through a proxy, the peer address is the proxy's): an IP literal, loopback for
/// `localhost` and its subdomains, `None` (public) for any other name.
pub fn url_address(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(d) => is_loopback_name(d).then_some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    }
}

/// `localhost` and its subdomains (any case, with or without the final dot).
fn is_loopback_name(domain: &str) -> bool {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    d == "localhost" || d.ends_with(".localhost")
}

/// Whether `url` is on the source's own origin (same scheme, host and port): such pages
/// are the publisher's own and are trusted like the feed itself (and get its headers).
/// Another port or scheme of the same host is not: an internal service on another port of
/// an internal feed host stays out of reach, and credentials never go to plain http.
pub fn same_origin(url: &Url, source: &Url) -> bool {
    url.scheme() == source.scheme()
        && url.port_or_known_default() == source.port_or_known_default()
        && match (url.host(), source.host()) {
            (Some(a), Some(b)) => host_eq(&a, &b),
            _ => false,
        }
}

fn host_eq(a: &Host<&str>, b: &Host<&str>) -> bool {
    match (a, b) {
        (Host::Domain(x), Host::Domain(y)) => x.eq_ignore_ascii_case(y),
        (Host::Ipv4(x), Host::Ipv4(y)) => x == y,
        (Host::Ipv6(x), Host::Ipv6(y)) => x == y,
        _ => false,
    }
}

/// A literal IP host must pass the policy (names are checked as they resolve), and so must
/// `localhost` and friends, by name: they never reach the resolver's answer check on every
/// platform.
pub fn check_url(url: &Url, policy: &Policy) -> Result<(), Refusal> {
    let host = url.host().ok_or(Refusal::NoHost)?;
    let Some(ip) = url_address(url) else {
        return Ok(());
    };
    match host {
        Host::Domain(d) => policy.check(ip).map_err(|_| Refusal::LoopbackName {
            name: d.trim_end_matches('.').to_ascii_lowercase(),
        }),
        Host::Ipv4(_) | Host::Ipv6(_) => policy.check(ip),
    }
}

/// The marker in resolver errors, so the fetcher can tell a refusal from a DNS failure.
pub const REFUSED: &str = "refused by the address guard";

/// Resolves names with the system resolver, then keeps only the addresses the policy
/// allows; none left is an error naming why.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    pub policy: Arc<Policy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = Vec::new();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refused.push(why);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refused
                    .first()
                    .map_or_else(|| "no address".to_string(), ToString::to_string);
                let err: Box<dyn std::error::Error + Send + Sync> =
                    format!("{REFUSED}: {host} resolves to {why}").into();
                return Err(err);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn non_public_addresses_are_named() {
        for (addr, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.0.0.2", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("0.0.0.0", "unspecified"),
            ("255.255.255.255", "reserved"),
            ("224.0.0.1", "multicast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "unique local"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a00:1", "private"),
            ("2002:c0a8:0101::1", "private"),
        ] {
            assert_eq!(non_public(ip(addr)), Some(kind), "{addr}");
        }
        for addr in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "8.8.8.8",
        ] {
            assert_eq!(non_public(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn allowed_networks_let_private_addresses_through() {
        let policy = Policy {
            allow: vec!["10.0.0.0/8".parse().expect("net")],
            also: None,
        };
        assert!(policy.check(ip("10.9.8.7")).is_ok());
        let err = policy.check(ip("192.168.0.1")).expect_err("refused");
        let err = err.to_string();
        assert!(err.contains("private address"), "{err}");
        assert!(
            check_url(
                &Url::parse("http://localhost:8080/x").expect("url"),
                &policy
            )
            .is_err()
        );
        assert!(check_url(&Url::parse("http://[::1]/x").expect("url"), &policy).is_err());
        assert!(check_url(&Url::parse("https://example.org/x").expect("url"), &policy).is_ok());
    }

    /// The resolver checks the addresses a name resolves to (what would be connected to),
    /// not the name.
    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        use reqwest::dns::Resolve;
        use std::str::FromStr;
        let guard = GuardedResolver {
            policy: Arc::new(Policy::default()),
        };
        let name = reqwest::dns::Name::from_str("localhost").expect("name");
        let err = guard.resolve(name).await.err().expect("refused");
        let err = err.to_string();
        assert!(err.contains(REFUSED) && err.contains("loopback"), "{err}");
        let open = GuardedResolver {
            policy: Arc::new(Policy {
                allow: vec![
                    "127.0.0.0/8".parse().expect("net"),
                    "::1/128".parse().expect("net"),
                ],
                also: None,
            }),
        };
        let name = reqwest::dns::Name::from_str("localhost").expect("name");
        let addrs: Vec<SocketAddr> = open.resolve(name).await.expect("allowed").collect();
        assert!(!addrs.is_empty());
    }

    /// A feed's redirects: from a public host never into non-public space; from a
    /// non-public host only into the same kind of network; `allow_networks` either way.
    #[test]
    fn redirects_stay_in_the_kind_of_network_the_feed_is_in() {
        let url = |s| Url::parse(s).expect("url");
        let base = Policy::default();
        let public = base.for_redirects_from(Some(ip("93.184.216.34")));
        for target in [
            "127.0.0.2",
            "10.0.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
        ] {
            let err = public.check(ip(target)).expect_err(target).to_string();
            assert!(err.contains("not public"), "{err}");
        }
        assert!(public.check(ip("1.1.1.1")).is_ok());
        assert!(check_url(&url("http://localhost:8080/feed"), &public).is_err());
        assert!(check_url(&url("http://127.0.0.2/feed"), &public).is_err());
        // Where the configured URL's address is unknown, it counts as public.
        assert!(
            base.for_redirects_from(None)
                .check(ip("127.0.0.2"))
                .is_err()
        );

        let loopback = base.for_redirects_from(Some(ip("127.0.0.1")));
        assert!(loopback.check(ip("127.0.0.2")).is_ok());
        assert!(loopback.check(ip("::1")).is_ok());
        assert!(check_url(&url("http://localhost:8080/feed"), &loopback).is_ok());
        assert!(loopback.check(ip("169.254.169.254")).is_err());
        assert!(loopback.check(ip("10.0.0.1")).is_err());

        let private = base.for_redirects_from(Some(ip("10.1.2.3")));
        assert!(private.check(ip("192.168.0.10")).is_ok());
        assert!(private.check(ip("127.0.0.1")).is_err());

        let allowing = Policy {
            allow: vec!["169.254.0.0/16".parse().expect("net")],
            also: None,
        }
        .for_redirects_from(Some(ip("93.184.216.34")));
        assert!(allowing.check(ip("169.254.169.254")).is_ok());
        assert!(allowing.check(ip("10.0.0.1")).is_err());
    }

    /// Through a proxy the configured URL's network kind comes from the URL alone.
    #[test]
    fn a_urls_own_address_names_its_network() {
        let kind = |s| non_public_kind(&Url::parse(s).expect("url"));
        fn non_public_kind(u: &Url) -> Option<&'static str> {
            url_address(u).and_then(non_public)
        }
        assert_eq!(kind("http://127.0.0.1:8/feed"), Some("loopback"));
        assert_eq!(kind("http://LocalHost./feed"), Some("loopback"));
        assert_eq!(kind("http://a.localhost/feed"), Some("loopback"));
        assert_eq!(kind("http://10.1.2.3/feed"), Some("private"));
        assert_eq!(kind("http://[::1]/feed"), Some("loopback"));
        assert_eq!(kind("http://93.184.216.34/feed"), None);
        // A name counts as public, whatever it resolves to.
        assert_eq!(kind("http://feeds.internal.example/feed"), None);
        assert!(
            Policy::default()
                .for_redirects_from(url_address(
                    &Url::parse("http://feeds.example.com/").expect("url")
                ))
                .check(ip("127.0.0.2"))
                .is_err()
        );
    }

    #[test]
    fn same_origin_is_scheme_host_and_port() {
        let u = |s| Url::parse(s).expect("url");
        assert!(same_origin(
            &u("http://127.0.0.1:8/a"),
            &u("http://127.0.0.1:8/feed")
        ));
        assert!(same_origin(
            &u("https://Blog.Example/a"),
            &u("https://blog.example:443/feed")
        ));
        assert!(!same_origin(
            &u("http://127.0.0.1:9/a"),
            &u("http://127.0.0.1:8/feed")
        ));
        assert!(!same_origin(
            &u("http://blog.example/a"),
            &u("https://blog.example/feed")
        ));
        assert!(!same_origin(
            &u("http://127.0.0.2/a"),
            &u("http://127.0.0.1/feed")
        ));
        assert!(!same_origin(
            &u("http://evil.example/a"),
            &u("http://blog.example/feed")
        ));
    }
}
