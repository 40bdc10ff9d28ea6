//! A caller that reserves its inbound Child SA SPIs (a daemon allocates them with PF_KEY
//! GETSPI) gets exactly those in the Child SA made by IKE_AUTH, each used once; an SPI in
//! the reserved range 0..=255 is ignored and one is drawn instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Instant;

use common::*;
use ike::dh::Group;
use ike::sa::{respond_sa_init, ExpectSaInitResp, Random};
use ike::sk::SkSuite;

/// [`TestRng`] with one reserved SPI.
struct Reserving {
    rng: TestRng,
    spi: Option<[u8; 4]>,
}

impl Random for Reserving {
    fn fill(&mut self, out: &mut [u8]) {
        self.rng.fill(out);
    }

    fn reserved_spi(&mut self) -> Option<[u8; 4]> {
        self.spi.take()
    }
}

fn run(spi_i: u32, spi_r: u32) -> ([u8; 4], [u8; 4], bool, bool) {
    let suite = SkSuite {
        encr: 20,
        key_bits: 128,
        integ: None,
    };
    let (ci, cr) = configs(suite, Group::Curve25519, gcm_child());
    let now = Instant::now();
    let mut ri = Reserving {
        rng: TestRng(7),
        spi: Some(spi_i.to_be_bytes()),
    };
    let mut rr = Reserving {
        rng: TestRng(8),
        spi: Some(spi_r.to_be_bytes()),
    };
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let (r1, init_resp) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let (i2, auth_req) = next(i1.handle(&init_resp, now, &mut ri));
    let (resp, auth_resp) = next(r1.handle(&auth_req.unwrap(), &mut rr));
    let (init, _) = next(i2.handle(&auth_resp.unwrap()));
    let (a, b) = (init.child().unwrap(), resp.child().unwrap());
    assert_eq!(a, b);
    (a.spi_i, a.spi_r, ri.spi.is_none(), rr.spi.is_none())
}

#[test]
fn reserved_spis_name_the_child_sa() {
    let (i, r, used_i, used_r) = run(0x1111_2222, 0x3333_4444);
    assert_eq!(u32::from_be_bytes(i), 0x1111_2222);
    assert_eq!(u32::from_be_bytes(r), 0x3333_4444);
    assert!(used_i && used_r);
}

#[test]
fn a_reserved_spi_below_256_is_not_used() {
    let (i, r, _, _) = run(255, 0x3333_4444);
    assert!(u32::from_be_bytes(i) >= 256);
    assert_eq!(u32::from_be_bytes(r), 0x3333_4444);
}
