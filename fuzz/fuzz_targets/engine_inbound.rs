//! Received packets through reassembly and the ESP/AH inbound engine: see
//! `ipsec_core::fuzz_support::engine_inbound`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ipsec_core::fuzz_support::engine_inbound(data) {
        panic!("ipsec-core invariant broken: {what}");
    }
});
