//! PF_KEY v2 messages through the codec (parse, emit, re-parse) and the key engine: see
//! `ipsec_pfkey::fuzz_support::pfkey_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ipsec_pfkey::fuzz_support::pfkey_decode(data) {
        panic!("ipsec-pfkey invariant broken: {what}");
    }
});
