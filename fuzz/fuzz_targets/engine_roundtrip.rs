//! Fuzzed SA choice and payload: outbound then inbound must give the packet back unchanged.
//! See `ipsec_core::fuzz_support::engine_roundtrip`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ipsec_core::fuzz_support::engine_roundtrip(data) {
        panic!("ipsec-core invariant broken: {what}");
    }
});
