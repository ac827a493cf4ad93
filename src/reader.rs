//! Who a reader is: a random id in a signed cookie, and a keyed hash of their address.
//!
//! The cookie is set on a reader's first vote or rating, never on reading, so
//! anonymous pages stay shareable. Addresses are never stored: only
//! `AddressHash`, keyed with the server secret, to cap votes per address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use axum_extra::extract::SignedCookieJar;
use axum_extra::extract::cookie::{Cookie, Key, SameSite};

use crate::proxy::TrustedProxies;

pub const COOKIE: &str = "tribune_reader";
/// Readers are remembered for about two years.
const COOKIE_MAX_AGE: time::Duration = time::Duration::days(730);

/// A reader's id, as carried in their cookie: a UUID in its simple form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReaderId(String);

impl ReaderId {
    /// A new reader's id: a UUIDv7, whose leading bits are the time it was
    /// made (and the rest random), so that new voters' rows go at the end of
    /// the `(poll_id, voter)` index instead of all over it. Ids given before
    /// were random UUIDv4s; `parse` takes both.
    fn fresh() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }

    /// A reader id as a cookie or the database holds it; `None` if it is not one.
    pub fn parse(value: &str) -> Option<Self> {
        let id = uuid::Uuid::try_parse(value).ok()?;
        Some(Self(id.simple().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The reader of a request, if their cookie is present and correctly signed.
pub fn identify(jar: &SignedCookieJar) -> Option<ReaderId> {
    jar.get(COOKIE).and_then(|c| ReaderId::parse(c.value()))
}

/// The reader of a request, giving a new reader a cookie.
pub fn identify_or_issue(jar: SignedCookieJar, secure: bool) -> (SignedCookieJar, ReaderId) {
    if let Some(reader) = identify(&jar) {
        return (jar, reader);
    }
    let reader = ReaderId::fresh();
    (give_cookie(jar, &reader, secure), reader)
}

/// Sets the cookie that makes the client `reader` (replacing one set earlier in this answer).
pub fn give_cookie(jar: SignedCookieJar, reader: &ReaderId, secure: bool) -> SignedCookieJar {
    let cookie = Cookie::build((COOKIE, reader.0.clone()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(COOKIE_MAX_AGE)
        .build();
    jar.add(cookie)
}

/// The keys derived from the server secret.
#[derive(Clone)]
pub struct Keys {
    pub cookie: Key,
    address: [u8; 32],
    idempotency: [u8; 32],
}

impl Keys {
    pub fn derive(secret: &[u8]) -> Self {
        let mut cookie = [0_u8; 64];
        cookie[..32].copy_from_slice(&blake3::derive_key(
            "tribune 2026 reader cookie signing, part 1",
            secret,
        ));
        cookie[32..].copy_from_slice(&blake3::derive_key(
            "tribune 2026 reader cookie signing, part 2",
            secret,
        ));
        Self {
            cookie: Key::from(&cookie),
            address: blake3::derive_key("tribune 2026 address hashing", secret),
            idempotency: blake3::derive_key("tribune 2026 idempotency keys", secret),
        }
    }

    /// The id an idempotency key is kept under: a keyed hash of whose it is
    /// (`owner`) and the key, so neither is stored and one client's key
    /// never finds another's answer.
    pub fn idempotency_id(&self, owner: &[u8], key: &str) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.idempotency);
        hasher.update(&(owner.len() as u64).to_le_bytes());
        hasher.update(owner);
        hasher.update(key.as_bytes());
        *hasher.finalize().as_bytes()
    }

    /// The hash of the address's network (see `network_of`).
    pub fn hash_address(&self, ip: IpAddr) -> AddressHash {
        AddressHash(*blake3::keyed_hash(&self.address, &network_bytes(ip)).as_bytes())
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// What every per-address rule counts as one address: an IPv4 address, or
/// the /64 network of an IPv6 one (a household or an office is handed a
/// whole /64, and may use any address in it).
pub fn network_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = v6.to_bits() & !((1_u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from_bits(prefix))
        }
    }
}

/// The bytes of the address's network (see `network_of`).
pub fn network_bytes(ip: IpAddr) -> Vec<u8> {
    match network_of(ip) {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// A keyed hash of a reader's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressHash(pub [u8; 32]);

/// The reader's address: the peer, or, when the peer is a trusted proxy, the
/// nearest address in `X-Forwarded-For` that is not one. `None` only when the
/// server was started without connection info (some tests). An extractor:
/// see `state` for where it reads the trusted proxies.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub Option<IpAddr>);

/// The reader's address of a request (see `ClientAddress`), from the
/// connection info the server puts in its extensions and its headers. The
/// rate limit keys on it too, so every per-address rule sees one address.
pub fn client_address(
    extensions: &Extensions,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical())?;
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    Some(client_ip(peer, &forwarded, trusted))
}

/// Walks `X-Forwarded-For` from the right while the hop is a trusted proxy.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    for hop in forwarded_for.iter().rev() {
        if !trusted.contains(client) {
            break;
        }
        match hop.parse::<IpAddr>() {
            Ok(ip) => client = ip.to_canonical(),
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy = ip("10.0.0.1");
        let trusted = TrustedProxies::from(proxy);
        let client = ip("203.0.113.7");
        assert_eq!(
            client_ip(client, &["198.51.100.1"], &trusted),
            client,
            "untrusted peer"
        );
        assert_eq!(
            client_ip(proxy, &["198.51.100.1", "203.0.113.7"], &trusted),
            client
        );
        assert_eq!(client_ip(proxy, &["garbage"], &trusted), proxy);
        assert_eq!(client_ip(proxy, &[], &trusted), proxy);
    }

    #[test]
    fn a_chain_of_proxies_in_trusted_ranges_is_walked_to_the_client() {
        let trusted: TrustedProxies = "10.0.0.0/8, 2001:db8::/32".parse().unwrap();
        let client = ip("203.0.113.7");
        // The peer and the hop it names are both inside the ranges.
        assert_eq!(
            client_ip(ip("10.1.1.1"), &["203.0.113.7", "2001:db8::5"], &trusted),
            client
        );
        // IPv4-mapped peers and hops are the addresses they map.
        assert_eq!(
            client_ip(
                ip("::ffff:10.0.0.1"),
                &["::ffff:203.0.113.7", "10.2.2.2"],
                &trusted
            ),
            client
        );
        // A hop outside the ranges is the client, whatever it forwards.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &["198.51.100.1", "203.0.113.7"], &trusted),
            client
        );
        assert_eq!(
            client_ip(ip("11.0.0.1"), &["198.51.100.1"], &trusted),
            ip("11.0.0.1")
        );
    }

    #[test]
    fn an_ipv6_address_counts_as_its_64() {
        assert_eq!(
            network_of(ip("2001:db8:1:2::1")),
            network_of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            network_of(ip("2001:db8:1:2::1")),
            network_of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(network_of(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        let keys = Keys::derive(b"one secret that is long enough!!");
        assert_eq!(
            keys.hash_address(ip("2001:db8:1:2::1")),
            keys.hash_address(ip("2001:db8:1:2::a"))
        );
    }

    #[test]
    fn address_hashes_are_keyed() {
        let a = Keys::derive(b"one secret that is long enough!!");
        let b = Keys::derive(b"another secret, also long enough");
        assert_ne!(
            a.hash_address(ip("127.0.0.1")),
            b.hash_address(ip("127.0.0.1"))
        );
        assert_eq!(
            a.hash_address(ip("127.0.0.1")),
            a.hash_address(ip("::ffff:127.0.0.1"))
        );
    }
}
