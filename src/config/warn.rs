//! What is valid but probably not meant: `tributary check` prints these as `warning:` lines
//! (and exits 0), and the daemon logs them when it starts.
//!
//! They are about `[publish] hubs` on this machine or a private network that the address
//! guard would refuse (every ping would fail), and about `[server]`: `base_url` is what every published self link and feed id is
//! made from, and a `base_url` that only this machine can reach while other machines can
//! connect (or one left to default from a `listen` of `0.0.0.0`) publishes links readers
//! cannot follow. And `[websub]` settings while `base_url` is not written do nothing (the
//! subscriber needs a callback URL hubs can reach).

use std::net::IpAddr;

use url::{Host, Url};

use super::Config;

/// The warnings for `config`, one sentence each, saying what to do.
pub fn warnings(config: &Config) -> Vec<String> {
    let mut out = unreachable_hubs(config);
    let server = &config.server;
    let listen = server.listen;
    let listens_beyond_loopback = !listen.ip().is_loopback();
    let every = if listen.ip().is_unspecified() {
        "every interface"
    } else {
        "an address other machines can reach"
    };
    if !server.base_url_set && config.websub.written {
        out.push(
            "[websub] is set but [server] base_url is not: nothing is subscribed to until \
             base_url is written (hubs must reach the callback under it)"
                .to_string(),
        );
    }
    if !server.base_url_set {
        if listens_beyond_loopback {
            out.push(format!(
                "listen = \"{listen}\" accepts connections on {every}, but base_url is not set: \
                 published links use \"{}\", which readers elsewhere may not reach; set \
                 [server] base_url to the URL they use (e.g. \"https://news.example.org\")",
                server.base_url
            ));
        }
        return out;
    }
    let Ok(base) = Url::parse(&server.base_url) else {
        return out;
    };
    let base_ip = host_address(&base);
    let base_is_loopback = base_ip.is_some_and(|ip| ip.is_loopback());
    if base_is_loopback && listens_beyond_loopback {
        out.push(format!(
            "base_url \"{}\" points at this machine only (loopback), while listen = \"{listen}\" \
             accepts connections on {every}: readers elsewhere would follow the published links \
             to their own machine; set base_url to the URL they reach tributary at",
            server.base_url
        ));
    }
    if base_ip.is_some_and(|ip| ip.is_unspecified()) {
        out.push(format!(
            "base_url \"{}\" names no machine (an unspecified address): readers cannot follow \
             its links; set it to the URL they reach tributary at",
            server.base_url
        ));
    }
    // The base names this very server directly (loopback, or listen's own address), but on
    // another port: likely `listen` was changed and base_url was not.
    let names_this_server = base_ip.is_some_and(|ip| {
        (ip.is_loopback() && (listen.ip().is_loopback() || listen.ip().is_unspecified()))
            || ip == listen.ip()
    });
    if names_this_server
        && base.scheme() == "http"
        && base.port_or_known_default() != Some(listen.port())
    {
        out.push(format!(
            "base_url \"{}\" names this machine on port {}, but tributary listens on \
             \"{listen}\": published links lead nowhere unless a proxy listens there; change \
             base_url with listen (or leave base_url out to follow it)",
            server.base_url,
            base.port_or_known_default().unwrap_or(80)
        ));
    }
    if !base_is_loopback && !listens_beyond_loopback && base_ip.is_some() {
        out.push(format!(
            "base_url \"{}\" is an address of another interface, but listen = \"{listen}\" \
             accepts connections from this machine only: readers cannot connect unless a \
             proxy on this machine forwards to it; listen on that address, or on 0.0.0.0",
            server.base_url
        ));
    }
    out
}

/// `[publish] hubs` named by a loopback or private address (or `localhost`) that `[fetch]
/// allow_networks` does not cover: the address guard refuses every ping to them.
fn unreachable_hubs(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for hub in &config.publish.hubs {
        let Some(ip) = host_address(hub) else {
            continue;
        };
        let private = match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local()
            }
        };
        let allowed = config
            .fetch
            .allow_networks
            .iter()
            .any(|net| net.contains(&ip));
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        if private && !allowed {
            out.push(format!(
                "[publish] hubs: \"{hub}\" is at {ip}, a loopback or private address, which the address \
                 guard refuses: every ping to it would fail; add its network to [fetch] \
                 allow_networks (e.g. \"{ip}/{bits}\") or use the hub's public URL"
            ));
        }
    }
    out
}

/// The address a URL's host names by itself: an IP literal, loopback for `localhost`.
fn host_address(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            (d == "localhost" || d.ends_with(".localhost"))
                .then_some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warned(server: &str) -> Vec<String> {
        let text = format!(
            "[server]\n{server}\n[[source]]\nname = \"a\"\nurl = \"https://a.example/feed\"\n"
        );
        let c = crate::config::parse(&text, std::path::Path::new("feeds.toml")).expect("valid");
        warnings(&c)
    }

    #[test]
    fn matching_listen_and_base_url_are_quiet() {
        assert!(warned("").is_empty());
        assert!(warned("listen = \"127.0.0.1:9090\"").is_empty());
        assert!(
            warned("listen = \"0.0.0.0:8080\"\nbase_url = \"https://news.example.org\"").is_empty()
        );
        assert!(
            warned("listen = \"127.0.0.1:8080\"\nbase_url = \"https://news.example.org\"")
                .is_empty()
        );
        assert!(
            warned("listen = \"127.0.0.1:8080\"\nbase_url = \"http://localhost:8080/river\"")
                .is_empty()
        );
    }

    #[test]
    fn private_publish_hubs_not_allowed_are_named() {
        let config = |fetch: &str, hubs: &str| {
            let text = format!(
                "[publish]\nhubs = [{hubs}]\n[fetch]\n{fetch}\n[[source]]\nname = \"a\"\nurl = \"https://a.example/feed\"\n"
            );
            let c = crate::config::parse(&text, std::path::Path::new("feeds.toml")).expect("valid");
            warnings(&c)
        };
        let w = config(
            "",
            "\"http://127.0.0.1:7000/\", \"http://10.1.2.3/\", \"https://hub.example/\"",
        );
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("127.0.0.1") && w[0].contains("allow_networks"),
            "{w:?}"
        );
        assert!(w[1].contains("10.1.2.3/32"), "{w:?}");
        let w = config(
            "allow_networks = [\"127.0.0.0/8\"]",
            "\"http://localhost:7000/\"",
        );
        assert!(w.is_empty(), "{w:?}");
        let w = config("", "\"http://[fd00::1]/\"");
        assert!(w[0].contains("fd00::1/128"), "{w:?}");
    }

    #[test]
    fn websub_settings_without_base_url_are_named() {
        let text = "[websub]\nsafety_poll = \"2h\"\n[[source]]\nname = \"a\"\nurl = \"https://a.example/feed\"\n";
        let c = crate::config::parse(text, std::path::Path::new("feeds.toml")).expect("valid");
        let w = warnings(&c);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("[websub] is set but [server] base_url is not"),
            "{w:?}"
        );
        let with_base = format!(
            "[server]\nlisten = \"127.0.0.1:8080\"\nbase_url = \"http://127.0.0.1:8080\"\n{text}"
        );
        let c =
            crate::config::parse(&with_base, std::path::Path::new("feeds.toml")).expect("valid");
        assert!(warnings(&c).is_empty());
    }

    #[test]
    fn mismatches_are_named() {
        let w = warned("listen = \"0.0.0.0:8080\"\nbase_url = \"http://127.0.0.1:8080\"");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("points at this machine only"), "{w:?}");
        let w = warned("listen = \"[::]:8080\"");
        assert!(w[0].contains("base_url is not set"), "{w:?}");
        let w = warned("listen = \"127.0.0.1:9090\"\nbase_url = \"http://127.0.0.1:8080\"");
        assert!(w[0].contains("on port 8080"), "{w:?}");
        let w = warned("listen = \"127.0.0.1:8080\"\nbase_url = \"http://192.0.2.7:8080\"");
        assert!(w[0].contains("from this machine only"), "{w:?}");
        let w = warned("listen = \"0.0.0.0:8080\"\nbase_url = \"http://0.0.0.0:8080\"");
        assert!(w.iter().any(|w| w.contains("names no machine")), "{w:?}");
    }
}
