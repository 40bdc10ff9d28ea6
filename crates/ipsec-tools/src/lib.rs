//! Library parts of the Ironswan command-line tools.
#![forbid(unsafe_code)]

pub mod capture;
pub mod ipseckey;
pub mod pcaptool;
