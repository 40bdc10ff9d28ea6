//! PF_KEY ACQUIRE proposals and X_EPROP answers as in.ikev2d reads them: see `ikev2d::fuzz_support::ikev2_pfkey`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ikev2d::fuzz_support::ikev2_pfkey(data) {
        panic!("ikev2_pfkey invariant broken: {what}");
    }
});
