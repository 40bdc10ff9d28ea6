//! IKE fragmentation (RFC 7383): sealing into fragments, delivery in any order with
//! duplicates, authentication and bounded reassembly: see `ike::fuzz_support::ike_fragments`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ike::fuzz_support::ike_fragments(data) {
        panic!("ike invariant broken: {what}");
    }
});
