//! The client address behind a trusted reverse proxy or load balancer.
//!
//! Failed logins are counted per client address. Behind a proxy every request arrives from the
//! proxy's address, so one client guessing tokens would get *everyone* refused. With
//! `--trusted-proxies`, a request whose TCP peer is one of those proxies is counted under the
//! address the proxies recorded in `X-Forwarded-For`: the rightmost entry that is not itself a
//! trusted proxy (entries further left were written by the client and prove nothing). A request
//! from anywhere else is counted under its TCP peer whatever headers it sends, so the header
//! cannot be used to pick a fresh allowance. Connection caps stay per TCP peer, and so does
//! the open-mode principal (no tokens, loopback). List only the proxies' own addresses: a
//! client inside a trusted block could name any address it likes.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The address a request is counted under (put in its extensions by `client_address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ClientAddr(pub IpAddr);

/// A `--trusted-proxies` entry: an address or a CIDR block.
pub(crate) fn parse_trusted_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    IpNet::from_str(text)
        .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
        .map_err(|_| {
            format!(
                "`{text}` is not an address or CIDR block (e.g. 10.0.0.0/8, 192.168.1.10, fd00::/8)"
            )
        })
}

/// The client address of a request from `peer` with these headers.
pub(super) fn client_of(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    // Several headers are one list, in order; read it from the right (the nearest hop). Split
    // as bytes: a client's junk byte (not visible ASCII) must spoil only its own entry, not the
    // whole value a proxy appended the real address to.
    let entries: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .collect();
    for entry in entries.iter().rev() {
        let Some(ip) = std::str::from_utf8(entry).ok().and_then(hop_address) else {
            // Garbage: the hop that wrote it is the last one we can name.
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:80`.
fn hop_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = IpAddr::from_str(entry) {
        return Some(ip.to_canonical());
    }
    let host = match entry.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => entry.rsplit_once(':')?.0,
    };
    IpAddr::from_str(host).ok().map(|ip| ip.to_canonical())
}

/// Puts the request's `ClientAddr` in its extensions (outermost layer, before authentication).
pub(super) async fn client_address(
    State(trusted): State<Arc<Vec<IpNet>>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(peer) = super::auth::peer(&request) {
        let client = client_of(peer, request.headers(), &trusted);
        request.extensions_mut().insert(ClientAddr(client));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn proxies() -> Vec<IpNet> {
        ["10.0.0.0/8", "fd00::/8"]
            .iter()
            .map(|p| parse_trusted_proxy(p).unwrap())
            .collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = xff(&["198.51.100.7"]);
        assert_eq!(
            client_of(ip("203.0.113.9"), &h, &proxies()),
            ip("203.0.113.9")
        );
        assert_eq!(client_of(ip("10.0.0.5"), &h, &[]), ip("10.0.0.5"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies();
        // The client wrote a fake first entry; the proxies appended the real address.
        let h = xff(&["1.1.1.1, 198.51.100.7, 10.1.2.3"]);
        assert_eq!(client_of(ip("10.0.0.5"), &h, &p), ip("198.51.100.7"));
        // Several headers are one list.
        let h = xff(&["1.1.1.1", "198.51.100.7:51234", "10.1.2.3"]);
        assert_eq!(client_of(ip("10.0.0.5"), &h, &p), ip("198.51.100.7"));
        let h = xff(&["[2001:db8::7]:443"]);
        assert_eq!(client_of(ip("fd00::1"), &h, &p), ip("2001:db8::7"));
    }

    #[test]
    fn a_junk_byte_spoils_only_its_own_entry() {
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff\xfe, 198.51.100.7").unwrap(),
        );
        assert_eq!(
            client_of(ip("10.0.0.5"), &h, &proxies()),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn without_a_usable_header_the_last_nameable_hop_is_the_client() {
        let p = proxies();
        assert_eq!(
            client_of(ip("10.0.0.5"), &HeaderMap::new(), &p),
            ip("10.0.0.5")
        );
        let h = xff(&["198.51.100.7, not-an-address, 10.1.2.3"]);
        assert_eq!(client_of(ip("10.0.0.5"), &h, &p), ip("10.1.2.3"));
        // Every hop a trusted proxy: the farthest one.
        let h = xff(&["10.9.9.9, 10.1.2.3"]);
        assert_eq!(client_of(ip("10.0.0.5"), &h, &p), ip("10.9.9.9"));
    }

    #[test]
    fn trusted_proxies_are_addresses_or_blocks() {
        assert_eq!(
            parse_trusted_proxy("192.168.1.10").unwrap(),
            "192.168.1.10/32".parse::<IpNet>().unwrap()
        );
        assert!(parse_trusted_proxy("10.0.0.0/8").is_ok());
        assert!(parse_trusted_proxy("fd00::/8").is_ok());
        let e = parse_trusted_proxy("proxy.internal").unwrap_err();
        assert!(e.contains("not an address or CIDR block"), "{e}");
    }
}
