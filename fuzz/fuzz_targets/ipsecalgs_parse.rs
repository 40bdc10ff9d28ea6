//! The ipsecalgs(8) file: see `ipsec_config::fuzz_support::ipsecalgs_parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ipsec_config::fuzz_support::ipsecalgs_parse(data) {
        panic!("ipsecalgs invariant broken: {what}");
    }
});
