//! ipseckey(8) text: parse, and re-print and re-parse every `add`; see
//! `ipsec_config::fuzz_support::ipseckey_parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ipsec_config::fuzz_support::ipseckey_parse(data) {
        panic!("ipsec-config invariant broken: {what}");
    }
});
