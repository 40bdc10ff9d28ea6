//! ikev2.config and ikev2.preshared text: see `ikev2d::fuzz_support::ikev2_config`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ikev2d::fuzz_support::ikev2_config(data) {
        panic!("ikev2_config invariant broken: {what}");
    }
});
