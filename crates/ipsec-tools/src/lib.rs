//! Library parts of the Ironswan command-line tools.
#![forbid(unsafe_code)]

pub mod capture;
pub mod ipsecconf;
pub mod ipseckey;
pub mod pcaptool;
