//! IP blocks: parsing, canonical form, containment. The one CIDR type of the
//! crate; `validate::validate_cidr` adds the API server's stricter rules.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    /// The address as written (may have host bits set).
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX`, IPv4 or IPv6; the message says what is wrong.
    /// Host bits may be set (see [`Cidr::has_host_bits`]); IPv4 octets and
    /// prefixes with leading zeros and IPv4-mapped IPv6 addresses are
    /// refused, as Kubernetes refuses them.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let Some((addr_text, prefix_text)) = text.split_once('/') else {
            return Err(format!("`{text}` has no prefix length (write `{text}/32` for one IPv4 address)"));
        };
        let addr = if addr_text.contains(':') {
            addr_text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        } else {
            addr_text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
        };
        let Some(addr) = addr else {
            return Err(if ipv4_with_leading_zeros(addr_text) {
                format!("`{addr_text}` has leading zeros, which Kubernetes refuses")
            } else {
                format!("`{addr_text}` is not an IP address")
            });
        };
        if let IpAddr::V6(v6) = addr
            && v6.to_ipv4_mapped().is_some()
        {
            return Err(format!(
                "`{addr_text}` is an IPv4-mapped IPv6 address; write the IPv4 block instead"
            ));
        }
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let digits = !prefix_text.is_empty() && prefix_text.len() <= 3 && prefix_text.bytes().all(|b| b.is_ascii_digit());
        let prefix = if digits && !(prefix_text.len() > 1 && prefix_text.starts_with('0')) {
            prefix_text.parse::<u8>().ok().filter(|&p| p <= max)
        } else {
            None
        };
        let prefix = prefix.ok_or_else(|| format!("the prefix length must be a number from 0 to {max}, without leading zeros"))?;
        Ok(Cidr { addr, prefix })
    }

    /// Whether this is an IPv4 network.
    pub fn is_ipv4(self) -> bool {
        self.addr.is_ipv4()
    }

    fn bits(addr: IpAddr) -> u128 {
        match addr {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        }
    }

    fn mask(self) -> u128 {
        let width: u32 = if self.is_ipv4() { 32 } else { 128 };
        let host = width - u32::from(self.prefix);
        let all = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
        if host >= 128 { 0 } else { all & !((1u128 << host) - 1) }
    }

    /// The same network with host bits cleared.
    pub fn canonical(self) -> Cidr {
        let bits = Self::bits(self.addr) & self.mask();
        let addr = match self.addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(bits as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
        };
        Cidr { addr, prefix: self.prefix }
    }

    /// Whether host bits are set (`10.0.0.1/8`).
    pub fn has_host_bits(self) -> bool {
        self.canonical() != self
    }

    /// Whether `addr` is inside this network (never across IP families).
    pub fn contains_addr(self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.is_ipv4() && (Self::bits(addr) & self.mask()) == (Self::bits(self.addr) & self.mask())
    }

    /// Whether every address of `other` is inside this network.
    pub fn contains(self, other: Cidr) -> bool {
        other.prefix >= self.prefix && self.contains_addr(other.addr)
    }

    /// Whether `other` lies inside this network and is strictly smaller.
    pub fn strictly_contains(self, other: Cidr) -> bool {
        other.prefix > self.prefix && self.contains_addr(other.addr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `010.1.2.3`: four decimal octets of which one has a leading zero, a form
/// Kubernetes once read and now refuses.
fn ipv4_with_leading_zeros(text: &str) -> bool {
    let octets: Vec<&str> = text.split('.').collect();
    octets.len() == 4
        && octets
            .iter()
            .all(|o| (1..=3).contains(&o.len()) && o.bytes().all(|b| b.is_ascii_digit()))
        && octets.iter().any(|o| o.len() > 1 && o.starts_with('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        Cidr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn canonical_clears_host_bits() {
        let c = cidr("10.0.0.1/8");
        assert!(c.has_host_bits());
        assert_eq!(c.canonical().to_string(), "10.0.0.0/8");
        assert_eq!(cidr("2001:db8::1/32").canonical().to_string(), "2001:db8::/32");
        assert_eq!(cidr("2001:DB8:0:0::/64").to_string(), "2001:db8::/64");
        assert_eq!(cidr("0.0.0.0/0").canonical().to_string(), "0.0.0.0/0");
        assert_eq!(cidr("1.2.3.4/32").canonical().to_string(), "1.2.3.4/32");
        assert!(!cidr("::/0").has_host_bits());
    }

    #[test]
    fn rejects_bad_blocks() {
        for bad in [
            "",
            "10.0.0.0",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "10.0.0/8",
            "10.0.0.0.0/8",
            "256.0.0.0/8",
            " 10.0.0.0/8",
            "10.0.0.0/8 ",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/255",
            "fe80::1%eth0/64",
            "2001:db8::g/32",
            "x/8",
            "010.0.0.0/8",
            "10.0.0.0/08",
            "::ffff:10.0.0.0/104",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Cidr::parse("010.0.0.0/8").is_err_and(|e| e.contains("leading zeros")));
        assert!(Cidr::parse("::ffff:10.0.0.0/104").is_err_and(|e| e.contains("IPv4-mapped")));
    }

    #[test]
    fn containment() {
        let block = cidr("10.20.0.0/16");
        assert!(block.strictly_contains(cidr("10.20.5.0/24")));
        assert!(!block.strictly_contains(cidr("10.21.5.0/24")));
        assert!(!block.strictly_contains(block));
        assert!(block.contains(block));
        assert!(!cidr("10.0.0.0/16").contains(cidr("10.0.0.0/8")));
        assert!(!block.strictly_contains(cidr("::/64")));
        assert!(!cidr("0.0.0.0/0").contains(cidr("::/0")));
        assert!(cidr("2001:db8::/32").contains(cidr("2001:db8:ffff::/48")));
        assert!(!cidr("2001:db8::/32").contains(cidr("2001:db9::/48")));
        assert!(cidr("::/0").contains_addr("fe80::1".parse().unwrap()));
        assert!(!cidr("::/0").contains_addr("1.2.3.4".parse().unwrap()));
        assert!(cidr("10.0.0.1/8").contains_addr("10.200.0.0".parse().unwrap()));
        assert!(cidr("0.0.0.0/0").contains_addr("255.255.255.255".parse().unwrap()));
        assert!(cidr("2001:db8::1/128").contains_addr("2001:db8::1".parse().unwrap()));
        assert!(!cidr("10.0.0.1/32").contains_addr("10.0.0.2".parse().unwrap()));
    }
}
