//! IKEv2 messages through the codec (parse, emit, re-parse) and through SK payload
//! decryption with fixed keys: see `ike::fuzz_support::ike_message`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ike::fuzz_support::ike_message(data) {
        panic!("ike invariant broken: {what}");
    }
});
