//! The steady-state packet path allocates nothing: after warm-up, encapsulating and
//! decapsulating packets through reused buffers performs zero heap allocations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::alloc::System;

use common::*;
use ipsec_core::{Engine, Mode, PacketBuf, Sadb};
use ipsec_crypto::{AuthAlg, EncrAlg};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn steady_state_path_does_not_allocate() {
    let cases = [
        (EncrAlg::AesGcm16, 20, None, 0, Mode::Transport, false),
        (EncrAlg::AesGcm16, 20, None, 0, Mode::Tunnel, true),
        (
            EncrAlg::ChaCha20Poly1305,
            36,
            None,
            0,
            Mode::Transport,
            false,
        ),
        (
            EncrAlg::AesCbc,
            16,
            Some(AuthAlg::HmacSha256),
            32,
            Mode::Transport,
            false,
        ),
        (
            EncrAlg::AesCtr,
            20,
            Some(AuthAlg::HmacSha1),
            20,
            Mode::Tunnel,
            false,
        ),
    ];
    for (encr, ek, auth, ak, mode, natt) in cases {
        for (s, d) in [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db8::2")] {
            let cfg = if encr == EncrAlg::Null {
                ah_cfg(AuthAlg::HmacSha256, 32, v4(s), v4(d), mode, true)
            } else {
                esp_cfg(encr, ek, auth, ak, v4(s), v4(d), mode, true, natt)
            };
            let mut tx = Sadb::new();
            let mut rx = Sadb::new();
            let a = tx.add(cfg.clone(), 0).unwrap();
            rx.add(cfg, 0).unwrap();
            let mut eng = Engine::new();
            let pkt = udp_packet(v4(s), v4(d), 1, 2, 1000);
            let mut bufs: Vec<PacketBuf> = (0..32).map(|_| PacketBuf::with_mtu(1500)).collect();
            let mut out = vec![Ok(()); 32];
            let mut inr = vec![Ok(Default::default()); 32];
            let mut round = |eng: &mut Engine, tx: &mut Sadb, rx: &mut Sadb| {
                for b in bufs.iter_mut() {
                    b.set_packet(&pkt).unwrap();
                }
                eng.outbound_batch(tx, &[a], &mut bufs, &mut out, 1);
                eng.inbound_batch(rx, &mut bufs, &mut inr, 1);
                assert!(out.iter().all(|r| r.is_ok()) && inr.iter().all(|r| r.is_ok()));
            };
            round(&mut eng, &mut tx, &mut rx);
            let reg = Region::new(GLOBAL);
            for _ in 0..10 {
                round(&mut eng, &mut tx, &mut rx);
            }
            let stats = reg.change();
            assert_eq!(stats.allocations, 0, "{encr:?} {mode:?} {s}: {stats:?}");
            assert_eq!(stats.reallocations, 0, "{encr:?} {mode:?} {s}: {stats:?}");
        }
    }
}
