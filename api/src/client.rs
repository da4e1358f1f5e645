//! The caller's network address: the TCP peer, or — when the peer is a reverse proxy the
//! operator trusts (`--trusted-proxy`) — the address that proxy says it received the
//! request from, read from `X-Forwarded-For`.
//!
//! Behind a load balancer every request comes from the balancer's address, so without this
//! all anonymous clients would share one rate-limit bucket (and every log line would name
//! the balancer). `X-Forwarded-For` is only believed from trusted peers, and read from the
//! right, the way nginx's `real_ip_recursive` and Go's `realip` do: each trusted proxy
//! appends the address it saw, so the rightmost entry that is not itself a trusted proxy is
//! the client. Entries to its left were written by the client and could be anything, which
//! is why they are never used. A malformed entry stops the walk at the last good address.
//!
//! The layer runs first of all and leaves a [`ClientAddr`] in the request's extensions for
//! the access log and the rate limiter.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// Address ranges of reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// A `--trusted-proxy` value that is neither an address nor a CIDR range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or CIDR range (e.g. 10.0.0.0/8, 192.0.2.7 or fd00::/8)")]
pub struct BadProxy(String);

impl FromStr for TrustedProxies {
    type Err = BadProxy;

    /// One range or address (an address trusts only itself).
    fn from_str(s: &str) -> Result<Self, BadProxy> {
        let s = s.trim();
        let net = match s.parse::<IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) => s
                .parse::<IpAddr>()
                .map(IpNet::from)
                .map_err(|_| BadProxy(s.to_string()))?,
        };
        Ok(TrustedProxies(vec![net]))
    }
}

/// All the ranges of several settings (`--trusted-proxy` repeated).
impl FromIterator<TrustedProxies> for TrustedProxies {
    fn from_iter<I: IntoIterator<Item = TrustedProxies>>(iter: I) -> Self {
        TrustedProxies(iter.into_iter().flat_map(|t| t.0).collect())
    }
}

impl TrustedProxies {
    /// No proxy is trusted: the peer address is the client.
    pub fn none() -> Self {
        TrustedProxies(Vec::new())
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client of a request from `peer` carrying `headers` (see the module docs).
    fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        // Several X-Forwarded-For headers are one list, in order (RFC 9110 §5.3).
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for entry in entries.iter().rev() {
            let Some(addr) = parse_entry(entry) else {
                break;
            };
            client = addr;
            if !self.trusts(addr) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`), as some proxies write them.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(addr) = entry.parse::<IpAddr>() {
        return Some(addr.to_canonical());
    }
    entry
        .parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

/// The caller's address, as the layer worked it out; absent when the router was served
/// without connect info (tests calling it as a plain service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client address of a request the layer has seen.
    pub(crate) fn of(req: &Request) -> Option<IpAddr> {
        req.extensions().get::<ClientAddr>().map(|c| c.0)
    }
}

/// The layer (see the module docs).
pub(crate) async fn layer(
    State(trusted): State<Arc<TrustedProxies>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let client = trusted.client(peer, req.headers());
        req.extensions_mut().insert(ClientAddr(client));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn trusted(ranges: &[&str]) -> TrustedProxies {
        ranges.iter().map(|r| r.parse().expect("range")).collect()
    }

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_addresses_are_read_from_the_right_and_only_from_trusted_peers() {
        let t = trusted(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        // (peer, X-Forwarded-For headers, client)
        let cases: &[(&str, &[&str], &str)] = &[
            // An untrusted peer's header is ignored: anyone can write one.
            ("198.51.100.9", &["203.0.113.5"], "198.51.100.9"),
            // One trusted proxy.
            ("10.1.2.3", &["203.0.113.5"], "203.0.113.5"),
            // The client's own (forged) entries on the left are never used.
            ("10.1.2.3", &["1.1.1.1, 203.0.113.5"], "203.0.113.5"),
            // A chain of trusted proxies, across two headers.
            (
                "10.1.2.3",
                &["6.6.6.6, 203.0.113.5", "10.9.9.9"],
                "203.0.113.5",
            ),
            // Ports, IPv6 and IPv4-mapped entries.
            ("10.1.2.3", &["203.0.113.5:4711"], "203.0.113.5"),
            ("10.1.2.3", &["[2001:db8::7]:443"], "2001:db8::7"),
            ("10.1.2.3", &["::ffff:203.0.113.5"], "203.0.113.5"),
            ("2001:db8:ffff::1", &["203.0.113.5"], "203.0.113.5"),
            ("::ffff:10.1.2.3", &["203.0.113.5"], "203.0.113.5"),
            // Trusted all the way: the leftmost is the best we know.
            ("10.1.2.3", &["10.4.4.4, 10.5.5.5"], "10.4.4.4"),
            // A malformed entry stops the walk at the last good address.
            ("10.1.2.3", &["203.0.113.5, unknown, 10.5.5.5"], "10.5.5.5"),
            ("10.1.2.3", &["garbage"], "10.1.2.3"),
            // No header from a trusted peer: the peer.
            ("10.1.2.3", &[], "10.1.2.3"),
        ];
        for (peer, xff, want) in cases {
            assert_eq!(
                t.client(ip(peer), &headers(xff)),
                ip(want),
                "peer {peer}, X-Forwarded-For {xff:?}"
            );
        }
    }

    #[test]
    fn no_trusted_proxy_means_the_peer() {
        let t = TrustedProxies::none();
        assert_eq!(
            t.client(ip("10.1.2.3"), &headers(&["203.0.113.5"])),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn settings_parse_with_clear_errors() {
        assert_eq!(
            "10.1.2.3".parse::<TrustedProxies>(),
            Ok(trusted(&["10.1.2.3/32"]))
        );
        // Host bits are dropped: 10.1.2.3/8 means 10.0.0.0/8.
        assert!(trusted(&["10.1.2.3/8"]).trusts(ip("10.200.0.1")));
        for bad in ["", "10.0.0.0/33", "proxy.local", "10.0.0"] {
            let e = bad.parse::<TrustedProxies>().expect_err(bad);
            assert!(e.to_string().contains("CIDR"), "{e}");
        }
    }
}
