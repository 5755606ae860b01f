//! Whether this node is reachable from the internet, from the AutoNAT v2
//! probes its relays ran: each probe asks a relay to dial one of the
//! node's observed public addresses back. [`Probes`] keeps the last result
//! per address and judges by the public IP probed most recently (a node
//! that moved to another network is judged by its new address, not by what
//! held at the old one): public if any address at that IP was dialed back,
//! behind NAT if none was, unknown before any probe.
//!
//! Bookkeeping only (no clock, no socket); the swarm loop (`driver.rs`)
//! feeds it the AutoNAT client's events.

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use std::collections::HashMap;
use std::net::IpAddr;

/// Whether the node can be dialed from the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reachability {
    /// No probe answered yet (no relay, or none that runs AutoNAT).
    #[default]
    Unknown,
    /// A relay dialed the node back at its public address.
    Public,
    /// Dial-backs failed: peers reach the node through its relays (or by
    /// hole punching).
    BehindNat,
}

impl Reachability {
    /// `public`, `behind NAT` or `unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reachability::Unknown => "unknown",
            Reachability::Public => "public",
            Reachability::BehindNat => "behind NAT",
        }
    }
}

/// The last probe result per tested address.
#[derive(Debug, Default)]
pub(crate) struct Probes {
    results: HashMap<Multiaddr, bool>,
    latest_ip: Option<IpAddr>,
}

/// The IP an address names, if any.
fn ip_of(address: &Multiaddr) -> Option<IpAddr> {
    address.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl Probes {
    /// A probe of `address` came back: dialed back (`reached`) or not.
    /// Returns the verdict now.
    pub(crate) fn record(&mut self, address: &Multiaddr, reached: bool) -> Reachability {
        self.results.insert(address.clone(), reached);
        if let Some(ip) = ip_of(address) {
            self.latest_ip = Some(ip);
        }
        self.verdict()
    }

    /// Public if an address at the latest probed IP was reached, behind NAT
    /// if probes there all failed, unknown before any probe.
    pub(crate) fn verdict(&self) -> Reachability {
        let mut there = self
            .results
            .iter()
            .filter(|(address, _)| ip_of(address) == self.latest_ip)
            .map(|(_, reached)| *reached)
            .peekable();
        if there.peek().is_none() {
            return Reachability::Unknown;
        }
        if there.any(|reached| reached) {
            Reachability::Public
        } else {
            Reachability::BehindNat
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    #[test]
    fn judged_by_the_latest_public_ip() {
        let mut probes = Probes::default();
        assert_eq!(probes.verdict(), Reachability::Unknown);
        let home_tcp = addr("/ip4/198.18.0.2/tcp/4040");
        let home_quic = addr("/ip4/198.18.0.2/udp/4040/quic-v1");
        assert_eq!(probes.record(&home_tcp, false), Reachability::BehindNat);
        // One transport dialed back is enough.
        assert_eq!(probes.record(&home_quic, true), Reachability::Public);
        assert_eq!(probes.record(&home_tcp, false), Reachability::Public);
        // Moved: the old address's success no longer counts.
        let cafe = addr("/ip4/203.0.113.7/tcp/4040");
        assert_eq!(probes.record(&cafe, false), Reachability::BehindNat);
        assert_eq!(Reachability::BehindNat.as_str(), "behind NAT");
    }
}
