//! Distinguished names as configuration text and their DER comparison: see
//! `ike::fuzz_support::ike_dn`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ike::fuzz_support::ike_dn(data) {
        panic!("ike DN invariant broken: {what}");
    }
});
