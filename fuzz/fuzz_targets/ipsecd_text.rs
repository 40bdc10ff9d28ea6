//! ipsecd's `--tunnel NAME=LOCAL,REMOTE` argument and policy logger properties file: see
//! `crates/ipsecd/src/fuzz_text.rs`. ipsecd is a binary, so the target compiles the
//! modules concerned itself, at the paths they have in ipsecd.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../crates/ipsecd/src/fuzz_text.rs"]
mod fuzz_text;
#[allow(dead_code)]
#[path = "../../crates/ipsecd/src/iptun.rs"]
mod iptun;
#[allow(dead_code)]
#[path = "../../crates/ipsecd/src/logger/props.rs"]
mod logger_props;
mod logger {
    pub(crate) use super::logger_props as props;
}

fuzz_target!(|data: &[u8]| {
    if let Err(what) = fuzz_text::ipsecd_text(data) {
        panic!("ipsecd_text invariant broken: {what}");
    }
});
