//! INFORMATIONAL exchanges on an established IKE SA, both directions: liveness checks,
//! Child SA and IKE SA deletion, window size 1, bit-identical retransmission with
//! exponential back-off ending in dead-peer detection, and the peer's retransmitted
//! request answered from the cache.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::time::{Duration, Instant};

use ike::dh::Group;
use ike::sa::{Established, Event, IkeError};

fn pair() -> (Established, Established, TestRng, TestRng) {
    let (ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    let r = handshake(ci, cr, 77);
    (r.init, r.resp, TestRng(1), TestRng(2))
}

#[test]
fn liveness_both_ways() {
    let (mut i, mut r, mut ri, mut rr) = pair();
    let now = Instant::now();
    assert_eq!(i.next_message_id(), 2);
    assert_eq!(r.next_message_id(), 0);
    for round in 0..3 {
        // Initiator asks.
        let req = i.check_liveness(now, &mut ri).unwrap();
        let out = r.handle(&req, &mut rr).unwrap();
        assert_eq!(out.event, Some(Event::PeerChecked));
        let resp = out.reply.unwrap();
        // A retransmitted request is answered with the same bytes.
        assert_eq!(r.handle(&req, &mut rr).unwrap().reply, Some(resp.clone()));
        let got = i.handle(&resp, &mut ri).unwrap();
        assert_eq!(got.event, Some(Event::Alive));
        assert!(got.reply.is_none());
        // The response again is stale.
        assert!(i.handle(&resp, &mut ri).is_err());
        // Responder asks (its own message IDs start at 0).
        assert_eq!(r.next_message_id(), round);
        let req = r.check_liveness(now, &mut rr).unwrap();
        let out = i.handle(&req, &mut ri).unwrap();
        assert_eq!(out.event, Some(Event::PeerChecked));
        assert_eq!(
            r.handle(&out.reply.unwrap(), &mut rr).unwrap().event,
            Some(Event::Alive)
        );
    }
    assert_eq!(i.next_message_id(), 5);
    assert!(!i.is_closed() && !r.is_closed());
}

#[test]
fn window_of_one_and_message_id_order() {
    let (mut i, mut r, mut ri, mut rr) = pair();
    let now = Instant::now();
    let first = i.check_liveness(now, &mut ri).unwrap();
    assert_eq!(i.check_liveness(now, &mut ri), Err(IkeError::Busy));
    let spi = i.child().unwrap().spi_i;
    assert_eq!(i.delete_child(spi, now, &mut ri), Err(IkeError::Busy));
    // Requests both ways at once are fine: each side has its own window.
    let theirs = r.check_liveness(now, &mut rr).unwrap();
    let a = i.handle(&theirs, &mut ri).unwrap();
    let b = r.handle(&first, &mut rr).unwrap();
    assert_eq!(
        i.handle(&b.reply.unwrap(), &mut ri).unwrap().event,
        Some(Event::Alive)
    );
    assert_eq!(
        r.handle(&a.reply.unwrap(), &mut rr).unwrap().event,
        Some(Event::Alive)
    );
    // Requests sealed with the right keys but outside the window are dropped: the
    // responder expects ID 3 now; 2 (again, but not bit-identical) and 4 are refused.
    let k = i.ike_keys();
    let to_r = ike::sk::SkCipher::new(GCM, &k.sk_ei, &k.sk_ai).unwrap();
    let (spi_i, spi_r) = i.spis();
    let forge = |id: u32| {
        let h = ike::wire::Header {
            spi_i,
            spi_r,
            minor: 0,
            exchange: ike::consts::exchange::INFORMATIONAL,
            flags: ike::consts::flags::INITIATOR,
            message_id: id,
        };
        to_r.seal(&h, &[], &[0x77; 8]).unwrap()
    };
    assert!(r.handle(&forge(2), &mut rr).is_err());
    assert!(r.handle(&forge(4), &mut rr).is_err());
    let out = r.handle(&forge(3), &mut rr).unwrap();
    assert_eq!(out.event, Some(Event::PeerChecked));
}

#[test]
fn retransmission_and_dead_peer() {
    let (mut i, _r, mut ri, _) = pair();
    let t0 = Instant::now();
    assert_eq!(i.poll_timeout(), None);
    assert_eq!(i.handle_timeout(t0).unwrap(), None, "nothing outstanding");
    let req = i.check_liveness(t0, &mut ri).unwrap();
    let mut waits = Vec::new();
    let mut last = t0;
    loop {
        let due = i.poll_timeout().unwrap();
        assert_eq!(
            i.handle_timeout(due - Duration::from_millis(1)).unwrap(),
            None
        );
        match i.handle_timeout(due) {
            Ok(Some(again)) => {
                assert_eq!(again, req, "bit-identical");
                waits.push(due - last);
                last = due;
            }
            Ok(None) => panic!("nothing due at the deadline"),
            Err(e) => {
                assert_eq!(e, IkeError::Timeout, "dead peer");
                break;
            }
        }
    }
    // Default back-off: 0.5 s doubling, 7 sends in all.
    assert_eq!(
        waits,
        [500, 1000, 2000, 4000, 8000, 16000].map(Duration::from_millis)
    );
    assert_eq!(i.poll_timeout(), None);
    // A new request can go out after the failure is reported.
    assert!(i.check_liveness(last, &mut ri).is_ok());
}

#[test]
fn delete_child_then_ike() {
    let (mut i, mut r, mut ri, mut rr) = pair();
    let now = Instant::now();
    let child = i.child().unwrap().clone();
    assert!(
        i.delete_child([9; 4], now, &mut ri).is_err(),
        "no such Child SA"
    );
    let req = i.delete_child(child.spi_i, now, &mut ri).unwrap();
    let out = r.handle(&req, &mut rr).unwrap();
    // Each side names the pair by its own inbound SPI.
    assert_eq!(
        out.event,
        Some(Event::ChildDeleted {
            inbound: child.spi_r,
            outbound: child.spi_i
        })
    );
    assert!(r.child().is_none());
    // The response deletes the other half: the responder's inbound SPI.
    let resp = out.reply.unwrap();
    let k = r.ike_keys();
    let to_i = ike::sk::SkCipher::new(GCM, &k.sk_er, &k.sk_ar).unwrap();
    let mut plain = zeroize::Zeroizing::new(Vec::new());
    let (_, inner) = to_i.open(&resp, &mut plain).unwrap();
    match &inner[..] {
        [ike::wire::Payload::Delete(d)] => {
            assert_eq!(d.iter().collect::<Vec<_>>(), vec![&child.spi_r[..]]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        i.handle(&resp, &mut ri).unwrap().event,
        Some(Event::ChildDeleted {
            inbound: child.spi_i,
            outbound: child.spi_r
        })
    );
    assert!(i.child().is_none());

    // The responder deletes the IKE SA.
    let req = r.delete_ike(now, &mut rr).unwrap();
    let out = i.handle(&req, &mut ri).unwrap();
    assert_eq!(out.event, Some(Event::IkeDeleted));
    assert!(i.is_closed());
    assert_eq!(
        r.handle(&out.reply.unwrap(), &mut rr).unwrap().event,
        Some(Event::IkeDeleted)
    );
    assert!(r.is_closed());
    // Nothing more on a deleted SA.
    assert!(i.check_liveness(now, &mut ri).is_err());
    assert!(r.handle(&req, &mut rr).is_err());
}

#[test]
fn forged_or_misdirected_informational_dropped() {
    let (mut i, mut r, mut ri, mut rr) = pair();
    let now = Instant::now();
    let req = i.check_liveness(now, &mut ri).unwrap();
    // Tampered: integrity failure, dropped, the real one still works.
    let mut bad = req.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(r.handle(&bad, &mut rr).is_err());
    // Our own request reflected back to us is not a request from the peer.
    assert!(i.handle(&req, &mut ri).is_err());
    let out = r.handle(&req, &mut rr).unwrap();
    assert_eq!(out.event, Some(Event::PeerChecked));
    // An unsolicited response (nothing asked by the responder) is dropped.
    let resp = out.reply.unwrap();
    assert!(r.handle(&resp, &mut rr).is_err());
    assert_eq!(i.handle(&resp, &mut ri).unwrap().event, Some(Event::Alive));
}
