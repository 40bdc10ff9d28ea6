//! ipsecconf(8) policy text: parse, print, re-parse and compare; see
//! `ipsec_config::fuzz_support::ipsecconf_parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ipsec_config::fuzz_support::ipsecconf_parse(data) {
        panic!("ipsec-config invariant broken: {what}");
    }
});
