//! IPv4 options, IPv6 extension header chains and upper layers: see `ipsec_wire::fuzz_support::wire_ip`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ipsec_wire::fuzz_support::wire_ip(data) {
        panic!("ipsec-wire invariant broken: {what}");
    }
});
