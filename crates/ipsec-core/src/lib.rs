//! Ironswan's sans-IO IPsec core: Security Associations and the SADB, the anti-replay window with
//! ESN, lifetimes, and the ESP/AH engine (transport and tunnel mode, IPv4 and IPv6, AH+ESP
//! bundles, NAT-T) working in place on caller-owned buffers. No sockets, threads or clock reads:
//! time is an input.
#![forbid(unsafe_code)]

pub mod buf;
pub mod civil;
pub mod drop;
pub mod engine;
pub mod frag;
pub mod fuzz_support;
mod hdr;
pub mod replay;
pub mod sa;
pub mod sadb;
pub mod spd;

pub use buf::PacketBuf;
pub use drop::{DropCounters, DropReason};
pub use engine::{Engine, InboundOk};
pub use replay::{ReplayError, ReplayWindow, MAX_REPLAY_WINDOW};
pub use sa::{
    Direction, Expiry, Identity, IdentityType, InnerSelectors, KeyMaterial, Lifetime, Mode, NatT,
    Prefix, Proto, Sa, SaConfig, SaError, SaState, SaStats, UniqueBinding,
};
pub use sadb::{SaEvent, SaEventKind, SaId, SaKey, Sadb};
