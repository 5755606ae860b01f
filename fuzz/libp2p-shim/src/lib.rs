//! The part of `libp2p` that `crates/shoal-net/src/invite.rs` names —
//! `Multiaddr` and the `multiaddr` module, re-exported from the same
//! `multiaddr` crate libp2p re-exports — so the fuzz targets can compile
//! that file alone. Owns nothing else; must never grow logic of its own.

pub use ::multiaddr::Multiaddr;

/// `libp2p::multiaddr`.
pub mod multiaddr {
    pub use ::multiaddr::*;
}
