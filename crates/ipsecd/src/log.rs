//! The daemon's operational log on standard error: [`ipsec_sys::log`], named `ipsecd`.

pub use ipsec_sys::log::{debug, error, info};

/// Names the daemon in every line and sets the level (0 errors, 1 info, 2 debug).
pub fn set_level(level: u8) {
    ipsec_sys::log::init("ipsecd", level);
}
