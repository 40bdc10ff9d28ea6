//! ESP header and trailer, AH header and lengths: see `ipsec_wire::fuzz_support::wire_esp_ah`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ipsec_wire::fuzz_support::wire_esp_ah(data) {
        panic!("ipsec-wire invariant broken: {what}");
    }
});
