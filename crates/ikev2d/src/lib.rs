//! in.ikev2d: Ironswan's IKEv2 daemon (issue 9). It keys ipsecd automatically: it
//! REGISTERs with ipsecd over PF_KEY, answers ACQUIREs by negotiating IKE and Child SAs
//! with the peer named by the configuration (the sans-IO core of the `ike` crate), and
//! installs the resulting ESP SAs with PF_KEY ADD; as responder it accepts IKE from
//! peers its rules name and installs SAs likewise.
//!
//! * [`config`]: ikev2.config(5) (pre-shared-key rules) and ikev2.preshared.
//! * [`pfkey`]: the PF_KEY connection and the messages a key manager sends.
//! * [`daemon`]: the event loop.
//!
//! Talks to ipsecd only through PF_KEY and, for IKE on the NAT-T port that ipsecd owns,
//! its `natt-relay` control request.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Where in.ikev2d listens for ikev2adm by default.
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/ironswan/ikev2d.sock";

pub mod config;
pub mod daemon;
pub mod pfkey;

/// The operational log on standard error. Never given key material.
pub mod log {
    use std::fmt::Arguments;
    use std::io::Write;
    use std::sync::atomic::{AtomicU8, Ordering};

    static LEVEL: AtomicU8 = AtomicU8::new(1);

    /// 0: errors only, 1: info (default), 2: debug.
    pub fn set_level(level: u8) {
        LEVEL.store(level, Ordering::Relaxed);
    }

    fn emit(tag: &str, args: Arguments<'_>) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "in.ikev2d: {tag}{args}");
    }

    /// Logs an error.
    pub fn error(args: Arguments<'_>) {
        emit("error: ", args);
    }

    /// Logs an operational message.
    pub fn info(args: Arguments<'_>) {
        if LEVEL.load(Ordering::Relaxed) >= 1 {
            emit("", args);
        }
    }

    /// Logs a debugging message.
    pub fn debug(args: Arguments<'_>) {
        if LEVEL.load(Ordering::Relaxed) >= 2 {
            emit("", args);
        }
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
