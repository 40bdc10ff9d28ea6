//! Random rule sets and packets through the compiled SPD and the naive reference, which must
//! name the same rule; every decision function runs on each packet: see
//! `ipsec_core::spd::fuzz_support::spd_lookup`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ipsec_core::spd::fuzz_support::spd_lookup(data) {
        panic!("compiled SPD differs from the naive reference: {what}");
    }
});
