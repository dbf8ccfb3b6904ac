//! IP allow-lists for trunks with static egress addresses.
//!
//! Written by hand (a prefix compare on `u128`) rather than with `ipnet`:
//! membership is all Trunkline needs, and the config errors (host bits set)
//! are ones we want to word ourselves.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) count as the IPv4
//! address, both as a source (a dual-stack socket reports IPv4 peers that
//! way) and as an entry, so an operator listing `192.0.2.0/24` is not
//! surprised by how the socket was bound.

use super::error::CidrError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// One address block: `10.0.0.0/8`, `2001:db8::/32`, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address (no bits past the prefix), IPv4 when mapped.
    network: IpAddr,
    /// Prefix length: up to 32 for IPv4, 128 for IPv6.
    prefix: u8,
}

impl Cidr {
    /// The block of `network/prefix`; `None` when the prefix is too long or
    /// bits past it are set.
    pub fn new(network: IpAddr, prefix: u8) -> Option<Cidr> {
        let (network, prefix) = canonical(network, prefix)?;
        (mask(network, prefix) == network).then_some(Cidr { network, prefix })
    }

    /// Whether `ip` is inside the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

/// IPv4-mapped IPv6 entries become IPv4 ones; `None` for a prefix too long.
fn canonical(ip: IpAddr, prefix: u8) -> Option<(IpAddr, u8)> {
    match ip {
        IpAddr::V4(_) => (prefix <= 32).then_some((ip, prefix)),
        IpAddr::V6(v6) => {
            if prefix > 128 {
                return None;
            }
            match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => Some((IpAddr::V4(v4), prefix - 96)),
                _ => Some((ip, prefix)),
            }
        }
    }
}

/// `ip` with the bits past `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = bits.checked_shr(32 - u32::from(prefix)).unwrap_or(0);
            let kept = kept.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(kept))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = bits.checked_shr(128 - u32::from(prefix)).unwrap_or(0);
            let kept = kept.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(kept))
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `10.0.0.0/8`, `127.0.0.1` (a /32), `::1/128`, `2001:db8::/32`,
    /// `::ffff:10.0.0.0/104`. IPv6 zone ids (`fe80::1%eth0`) are refused:
    /// they name an interface, not a peer.
    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let entry = text.trim();
        let (address, prefix) = match entry.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (entry, None),
        };
        let ip: IpAddr = address
            .parse()
            .map_err(|_| CidrError::Address(entry.to_string()))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| CidrError::Prefix(entry.to_string()))?,
            Some(_) => return Err(CidrError::Prefix(entry.to_string())),
        };
        Cidr::new(ip, prefix).ok_or_else(|| {
            let (ip, prefix) = canonical(ip, prefix).unwrap_or((ip, prefix));
            CidrError::HostBits {
                entry: entry.to_string(),
                suggestion: Cidr {
                    network: mask(ip, prefix),
                    prefix,
                }
                .to_string(),
            }
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The address blocks a trunk admits. An empty list admits no one: a trunk
/// without IP restriction has no list at all rather than an empty one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpAllowList {
    blocks: Vec<Cidr>,
}

impl IpAllowList {
    /// Parses every entry; the first bad one is the error.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<IpAllowList, CidrError> {
        let blocks = entries
            .into_iter()
            .map(str::parse)
            .collect::<Result<Vec<Cidr>, _>>()?;
        Ok(IpAllowList { blocks })
    }

    /// Adds a block.
    pub fn push(&mut self, block: Cidr) {
        self.blocks.push(block);
    }

    /// The blocks, in configured order.
    pub fn blocks(&self) -> &[Cidr] {
        &self.blocks
    }

    /// Whether `ip` falls in any block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|block| block.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn parse_print_table() {
        let table = [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("127.0.0.1", "127.0.0.1/32"),
            (" 192.0.2.0/24 ", "192.0.2.0/24"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("::1/128", "::1/128"),
            ("::1", "::1/128"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::/0", "::/0"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::ffff:192.0.2.7", "192.0.2.7/32"),
        ];
        for (input, printed) in table {
            let cidr: Cidr = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(cidr.to_string(), printed, "{input}");
            assert_eq!(printed.parse::<Cidr>(), Ok(cidr), "round trip of {input}");
        }
    }

    #[test]
    fn bad_entries_table() {
        let host_bits = |entry: &str, suggestion: &str| CidrError::HostBits {
            entry: entry.into(),
            suggestion: suggestion.into(),
        };
        let table = [
            ("10.0.0.1/8", host_bits("10.0.0.1/8", "10.0.0.0/8")),
            (
                "2001:db8::1/32",
                host_bits("2001:db8::1/32", "2001:db8::/32"),
            ),
            ("10.0.0.0/33", CidrError::Prefix("10.0.0.0/33".into())),
            ("::/129", CidrError::Prefix("::/129".into())),
            ("10.0.0.0/", CidrError::Prefix("10.0.0.0/".into())),
            ("10.0.0.0/+8", CidrError::Prefix("10.0.0.0/+8".into())),
            ("10.0.0.0/0008", CidrError::Prefix("10.0.0.0/0008".into())),
            ("10.0.0.0/8/8", CidrError::Prefix("10.0.0.0/8/8".into())),
            ("10.0.0/8", CidrError::Address("10.0.0/8".into())),
            ("fe80::1%eth0", CidrError::Address("fe80::1%eth0".into())),
            ("five9.com", CidrError::Address("five9.com".into())),
            ("", CidrError::Address(String::new())),
        ];
        for (input, expected) in table {
            assert_eq!(input.parse::<Cidr>(), Err(expected), "{input}");
        }
    }

    #[test]
    fn membership_table() {
        let list =
            IpAllowList::parse(["10.0.0.0/8", "198.51.100.20", "2001:db8:5::/48", "::1/128"])
                .expect("valid list");
        let table = [
            ("10.1.2.3", true),
            ("10.255.255.255", true),
            ("11.0.0.0", false),
            ("9.255.255.255", false),
            ("198.51.100.20", true),
            ("198.51.100.21", false),
            ("::ffff:10.9.9.9", true),
            ("::ffff:198.51.100.20", true),
            ("::ffff:198.51.100.21", false),
            ("2001:db8:5:ffff::1", true),
            ("2001:db8:6::1", false),
            ("::1", true),
            ("127.0.0.1", false),
            // The IPv4-compatible (not mapped) form is a different address.
            ("::10.1.2.3", false),
        ];
        for (address, inside) in table {
            assert_eq!(list.contains(ip(address)), inside, "{address}");
        }
        assert!(!IpAllowList::default().contains(ip("10.0.0.1")));
        let everyone = IpAllowList::parse(["0.0.0.0/0", "::/0"]).expect("valid");
        assert!(everyone.contains(ip("203.0.113.9")) && everyone.contains(ip("2001:db8::9")));
        assert_eq!(
            IpAllowList::parse(["10.0.0.0/8", "bogus"]),
            Err(CidrError::Address("bogus".into()))
        );
    }
}
