//! The exclusive-listen check: before the swarm listens, each TCP or QUIC
//! (UDP) listen address with a fixed port is bound once without port
//! sharing, and released again.
//!
//! libp2p's TCP transport binds its listen sockets with `SO_REUSEPORT` (so
//! that dials can leave from the listen port), which lets a second node of
//! the same user bind a port another node is listening on: the kernel then
//! splits incoming connections between the two. A probe socket that does not
//! share its port is refused while any other socket listens there, so a busy
//! port becomes a listen error at start instead. This module only checks; it
//! does not listen, and skips addresses it cannot map to a socket (port 0,
//! DNS names, relayed addresses).

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use socket2::{Domain, Socket, Type};
use std::net::{IpAddr, SocketAddr};

/// Which transport an address listens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    Udp,
}

/// Fails with the system's reason if `address` names a fixed TCP or UDP port
/// that another socket holds.
pub(crate) fn ensure_free(address: &Multiaddr) -> Result<(), String> {
    let Some((kind, socket_addr)) = socket_of(address) else {
        return Ok(());
    };
    if socket_addr.port() == 0 {
        return Ok(());
    }
    probe(kind, socket_addr).map_err(|e| e.to_string())
}

/// The socket an address listens on: `/ip4|ip6/…/tcp/N` or
/// `/ip4|ip6/…/udp/N/quic-v1`.
fn socket_of(address: &Multiaddr) -> Option<(Kind, SocketAddr)> {
    let mut parts = address.iter();
    let ip: IpAddr = match parts.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    match parts.next()? {
        Protocol::Tcp(port) => Some((Kind::Tcp, SocketAddr::new(ip, port))),
        Protocol::Udp(port) => Some((Kind::Udp, SocketAddr::new(ip, port))),
        _ => None,
    }
}

/// Binds (and drops) a socket like the transport's, but without
/// `SO_REUSEPORT`: IPv6 sockets are IPv6-only as libp2p's are, and TCP ones
/// allow `SO_REUSEADDR` (a port whose old connections linger in TIME_WAIT is
/// free; one with a listener is not).
fn probe(kind: Kind, address: SocketAddr) -> std::io::Result<()> {
    let ty = match kind {
        Kind::Tcp => Type::STREAM,
        Kind::Udp => Type::DGRAM,
    };
    let socket = Socket::new(Domain::for_address(address), ty, None)?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if kind == Kind::Tcp {
        socket.set_reuse_address(true)?;
    }
    socket.bind(&address.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_port_held_by_a_shared_listener_is_refused() {
        // A listener that shares its port, as libp2p's TCP transport binds one.
        let held = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        held.set_reuse_address(true).unwrap();
        held.set_reuse_port(true).unwrap();
        held.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        held.listen(8).unwrap();
        let port = held.local_addr().unwrap().as_socket().unwrap().port();
        let busy = ensure_free(&addr(&format!("/ip4/127.0.0.1/tcp/{port}")));
        assert!(busy.is_err(), "a held TCP port passed");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let busy = ensure_free(&addr(&format!("/ip4/127.0.0.1/udp/{port}/quic-v1")));
        assert!(busy.is_err(), "a held UDP port passed");
        drop((held, udp));
    }

    #[test]
    fn free_ports_and_other_addresses_pass() {
        for text in [
            "/ip4/127.0.0.1/tcp/0",
            "/ip4/127.0.0.1/udp/0/quic-v1",
            "/dns4/example.com/tcp/4040",
        ] {
            assert_eq!(ensure_free(&addr(text)), Ok(()), "{text}");
        }
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        assert_eq!(
            ensure_free(&addr(&format!("/ip4/127.0.0.1/tcp/{port}"))),
            Ok(())
        );
    }
}
