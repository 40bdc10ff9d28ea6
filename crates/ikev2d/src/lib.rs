//! in.ikev2d: Ironswan's IKEv2 daemon (issue 9). It keys ipsecd automatically: it
//! REGISTERs with ipsecd over PF_KEY, answers ACQUIREs by negotiating IKE and Child SAs
//! with the peer named by the configuration (the sans-IO core of the `ike` crate), and
//! installs the resulting ESP SAs with PF_KEY UPDATE (of the SPI GETSPI reserved) and ADD,
//! with the algorithms IPsec policy allows; as responder it accepts IKE from
//! peers its rules name and installs SAs likewise.
//!
//! * [`config`]: ikev2.config(5) (pre-shared-key and certificate rules) and
//!   ikev2.preshared.
//! * [`certs`]: the certificate rules' credentials, from the `ikev2cert` store.
//! * [`pfkey`]: the PF_KEY connection and the messages a key manager sends.
//! * [`daemon`]: the event loop.
//! * [`policy`]: Child SA algorithms from the IPsec policy (ACQUIRE, X_INVERSE_ACQUIRE).
//!
//! Talks to ipsecd only through PF_KEY and, for IKE on the NAT-T port that ipsecd owns,
//! its `natt-relay` control request.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Where in.ikev2d listens for ikev2adm by default.
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/ironswan/ikev2d.sock";

pub mod certs;
pub mod config;
pub mod daemon;
pub mod fuzz_support;
pub mod pfkey;
pub mod policy;

/// The operational log on standard error: [`ipsec_sys::log`], named `in.ikev2d`. Never
/// given key material.
pub mod log {
    pub use ipsec_sys::log::{debug, error, info};

    /// Names the daemon in every line and sets the level (0 errors, 1 info, 2 debug).
    pub fn set_level(level: u8) {
        ipsec_sys::log::init("in.ikev2d", level);
    }
}

/// The kernel's random source as the IKE core's [`ike::Random`], with the SPI the
/// daemon reserved with PF_KEY GETSPI for the next inbound Child SA.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom {
    reserved: Option<[u8; 4]>,
}

impl OsRandom {
    /// Hands `spi` to the next exchange that allocates an inbound Child SA SPI.
    pub fn reserve(&mut self, spi: u32) {
        self.reserved = Some(spi.to_be_bytes());
    }

    /// Takes back a reserved SPI that no exchange used.
    pub fn unreserve(&mut self) -> Option<u32> {
        self.reserved.take().map(u32::from_be_bytes)
    }
}

impl ike::Random for OsRandom {
    fn fill(&mut self, out: &mut [u8]) {
        if let Err(e) = ipsec_sys::random_bytes(out) {
            // Without randomness no key can be made: stop rather than continue weakly.
            log::error(format_args!("getrandom failed: {e}"));
            std::process::exit(1);
        }
    }

    fn reserved_spi(&mut self) -> Option<[u8; 4]> {
        self.reserved.take()
    }
}
