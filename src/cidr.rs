//! IP blocks: parsing, canonical form, containment.

use std::fmt;
use std::net::IpAddr;

/// An IPv4 or IPv6 network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    /// The address as written (may have host bits set).
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX`; the message says what is wrong.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let Some((addr, prefix)) = text.split_once('/') else {
            return Err(format!("`{text}` has no prefix length (write it as `{text}/32` for one address)"));
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("`{addr}` is not an IP address"))?;
        let max = Self::max_prefix(addr);
        let prefix = if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            prefix.parse::<u8>().ok().filter(|&p| p <= max)
        };
        let prefix = prefix.ok_or_else(|| format!("the prefix length must be a number from 0 to {max}"))?;
        Ok(Cidr { addr, prefix })
    }

    fn max_prefix(addr: IpAddr) -> u8 {
        if addr.is_ipv4() { 32 } else { 128 }
    }

    fn bits(addr: IpAddr) -> u128 {
        match addr {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        }
    }

    fn mask(self) -> u128 {
        let width = u32::from(Self::max_prefix(self.addr));
        let host = width - u32::from(self.prefix);
        let all = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
        if host >= 128 { 0 } else { all & !((1u128 << host) - 1) }
    }

    /// The same network with host bits cleared.
    pub fn canonical(self) -> Cidr {
        let bits = Self::bits(self.addr) & self.mask();
        let addr = match self.addr {
            IpAddr::V4(_) => IpAddr::V4((bits as u32).into()),
            IpAddr::V6(_) => IpAddr::V6(bits.into()),
        };
        Cidr { addr, prefix: self.prefix }
    }

    /// Whether host bits are set (`10.0.0.1/8`).
    pub fn has_host_bits(self) -> bool {
        self.canonical() != self
    }

    /// Whether `addr` is inside this network.
    pub fn contains_addr(self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.addr.is_ipv4() && (Self::bits(addr) & self.mask()) == (Self::bits(self.addr) & self.mask())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_clears_host_bits() {
        let c = Cidr::parse("10.0.0.1/8").unwrap();
        assert!(c.has_host_bits());
        assert_eq!(c.canonical().to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse("2001:db8::1/32").unwrap().canonical().to_string(), "2001:db8::/32");
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().canonical().to_string(), "0.0.0.0/0");
        assert_eq!(Cidr::parse("1.2.3.4/32").unwrap().canonical().to_string(), "1.2.3.4/32");
    }

    #[test]
    fn rejects_bad_blocks() {
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("300.0.0.0/8").is_err());
        assert!(Cidr::parse("::/129").is_err());
        assert!(Cidr::parse("10.0.0.0/-1").is_err());
    }

    #[test]
    fn containment() {
        let block = Cidr::parse("10.20.0.0/16").unwrap();
        assert!(block.strictly_contains(Cidr::parse("10.20.5.0/24").unwrap()));
        assert!(!block.strictly_contains(Cidr::parse("10.21.5.0/24").unwrap()));
        assert!(!block.strictly_contains(block));
        assert!(!block.strictly_contains(Cidr::parse("::/64").unwrap()));
        assert!(Cidr::parse("::/0").unwrap().contains_addr("fe80::1".parse().unwrap()));
        assert!(!Cidr::parse("::/0").unwrap().contains_addr("1.2.3.4".parse().unwrap()));
    }
}
