//! CREATE_CHILD_SA on an established IKE SA (RFC 7296 §1.3): new Child SAs requested by
//! either side, rekeying with and without a fresh key exchange (make before break: the old
//! pair lives until it is deleted), retransmitted requests answered from the cache without
//! a second SA, simultaneous rekeys of the same pair resolved by the lowest nonce, and
//! refusals (policy, unknown SPI) that create nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::time::Instant;

use ike::consts::notify;
use ike::dh::Group;
use ike::sa::{ChildSuite, Established, Event, IkeError};

fn pair_with(group: Group, pfs: bool, seed: u64) -> (Established, Established) {
    let child = ChildSuite { pfs, ..gcm_child() };
    let (ci, cr) = configs(GCM, group, child);
    let r = handshake(ci, cr, seed);
    (r.init, r.resp)
}

/// `a` requests, `b` answers, `a` takes the answer; returns both events.
fn exchange(
    a: &mut Established,
    b: &mut Established,
    req: Vec<u8>,
    ra: &mut TestRng,
    rb: &mut TestRng,
) -> (Event, Event) {
    let out = b.handle(&req, rb).unwrap();
    let eb = out.event;
    let ea = a.handle(&out.reply.unwrap(), ra).unwrap().event;
    (ea.unwrap(), eb.unwrap_or(Event::PeerChecked))
}

fn same_pair(a: &Established, a_spi: [u8; 4], b: &Established, b_spi: [u8; 4]) {
    let x = a.child_by_inbound(a_spi).unwrap();
    let y = b.child_by_inbound(b_spi).unwrap();
    assert_eq!(x, y);
    assert!(x.spi_i == a_spi || x.spi_r == a_spi);
    assert_ne!(x.keys.encr_i, x.keys.encr_r);
}

#[test]
fn new_child_sas_from_either_side() {
    let (mut i, mut r) = pair_with(Group::Curve25519, false, 1);
    let (mut ri, mut rr) = (TestRng(5), TestRng(6));
    let now = Instant::now();
    let req = i.create_child(None, now, &mut ri).unwrap();
    match exchange(&mut i, &mut r, req, &mut ri, &mut rr) {
        (Event::ChildCreated { inbound: a }, Event::ChildCreated { inbound: b }) => {
            same_pair(&i, a, &r, b);
            let c = i.child_by_inbound(a).unwrap();
            assert_eq!(
                (c.spi_i, c.spi_r),
                (a, b),
                "the requester's SPI comes first"
            );
        }
        other => panic!("{other:?}"),
    }
    // The IKE responder can ask too.
    let req = r.create_child(None, now, &mut rr).unwrap();
    match exchange(&mut r, &mut i, req, &mut rr, &mut ri) {
        (Event::ChildCreated { inbound: b }, Event::ChildCreated { inbound: a }) => {
            same_pair(&r, b, &i, a);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(i.children().count(), 3);
    assert_eq!(r.children().count(), 3);
    let mut keys: Vec<_> = i.children().map(|c| c.keys.encr_i.clone()).collect();
    keys.dedup();
    assert_eq!(keys.len(), 3, "every pair has its own keys");
}

#[test]
fn rekey_make_before_break_with_and_without_pfs() {
    for (group, pfs) in [
        (Group::Curve25519, true),
        (Group::Modp2048, true),
        (Group::Ecp256, false),
    ] {
        let (mut i, mut r) = pair_with(group, pfs, 2);
        let (mut ri, mut rr) = (TestRng(7), TestRng(8));
        let now = Instant::now();
        let old_i = i.child().unwrap().spi_i;
        let old_r = i.child().unwrap().spi_r;
        let old_keys = i.child().unwrap().keys.clone();
        let req = i.create_child(Some(old_i), now, &mut ri).unwrap();
        // The request carries REKEY_SA for the old pair, and a KE payload iff PFS.
        let k = i.ike_keys();
        let to_r = ike::sk::SkCipher::new(GCM, &k.sk_ei, &k.sk_ai).unwrap();
        let mut plain = zeroize::Zeroizing::new(Vec::new());
        let (_, inner) = to_r.open(&req, &mut plain).unwrap();
        let ke = inner.iter().find_map(|p| match p {
            ike::wire::Payload::Ke { group, data } => Some((*group, data.len())),
            _ => None,
        });
        assert_eq!(ke, pfs.then_some((group.id(), group.public_len())));
        assert!(inner.iter().any(|p| matches!(p,
            ike::wire::Payload::Notify(n) if n.ty == notify::REKEY_SA && n.spi == old_i)));
        let (ea, eb) = exchange(&mut i, &mut r, req, &mut ri, &mut rr);
        let (
            Event::ChildRekeyed {
                old: a_old,
                new: a_new,
            },
            Event::ChildRekeyed {
                old: b_old,
                new: b_new,
            },
        ) = (ea, eb)
        else {
            panic!("{ea:?} {eb:?}")
        };
        assert_eq!((a_old, b_old), (old_i, old_r));
        same_pair(&i, a_new, &r, b_new);
        assert_ne!(i.child_by_inbound(a_new).unwrap().keys, old_keys);
        // Make before break: both pairs exist until the requester deletes the old one.
        assert_eq!(i.children().count(), 2);
        assert_eq!(r.children().count(), 2);
        let req = i.delete_child(old_i, now, &mut ri).unwrap();
        let (ea, eb) = exchange(&mut i, &mut r, req, &mut ri, &mut rr);
        assert_eq!(
            ea,
            Event::ChildDeleted {
                inbound: old_i,
                outbound: old_r
            }
        );
        assert_eq!(
            eb,
            Event::ChildDeleted {
                inbound: old_r,
                outbound: old_i
            }
        );
        assert_eq!(i.children().count(), 1);
        assert_eq!(i.child().unwrap(), r.child().unwrap());
        assert_eq!(i.child().unwrap().spi_i, a_new);
        // The rekeyed pair can itself be rekeyed, by the other side this time.
        let req = r.create_child(Some(b_new), now, &mut rr).unwrap();
        let (ea, eb) = exchange(&mut r, &mut i, req, &mut rr, &mut ri);
        assert!(
            matches!(ea, Event::ChildRekeyed { old, .. } if old == b_new),
            "{ea:?}"
        );
        assert!(
            matches!(eb, Event::ChildRekeyed { old, .. } if old == a_new),
            "{eb:?}"
        );
    }
}

#[test]
fn retransmitted_request_makes_one_child() {
    let (mut i, mut r) = pair_with(Group::Curve25519, true, 3);
    let (mut ri, mut rr) = (TestRng(9), TestRng(10));
    let now = Instant::now();
    let req = i.create_child(None, now, &mut ri).unwrap();
    let first = r.handle(&req, &mut rr).unwrap();
    let again = r.handle(&req, &mut rr).unwrap();
    assert_eq!(
        first.reply, again.reply,
        "answered from the cache, bit for bit"
    );
    assert!(again.event.is_none());
    assert_eq!(r.children().count(), 2);
    // The retransmission the initiator sends is the same bytes.
    let due = i.poll_timeout().unwrap();
    assert_eq!(i.handle_timeout(due).unwrap().unwrap(), req);
    assert!(matches!(
        i.handle(&first.reply.unwrap(), &mut ri).unwrap().event,
        Some(Event::ChildCreated { .. })
    ));
    assert!(
        i.handle(&again.reply.unwrap(), &mut ri).is_err(),
        "duplicate response"
    );
    assert_eq!(i.children().count(), 2);
}

/// What a side must delete after the two rekeys of `old` completed.
fn to_delete(events: &[Event], old: [u8; 4]) -> [u8; 4] {
    let collision = events
        .iter()
        .find_map(|e| match e {
            Event::ChildRekeyCollision {
                old: o, redundant, ..
            } => {
                assert_eq!(*o, old);
                Some(*redundant)
            }
            _ => None,
        })
        .expect("a collision event");
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::ChildRekeyed { old: o, .. } if *o == old))
            .count(),
        1,
        "{events:?}"
    );
    collision.unwrap_or(old)
}

#[test]
fn simultaneous_rekeys_follow_the_lowest_nonce_rule() {
    let mut winners = [0, 0];
    for (seed, order) in (40..56).zip([false, true].into_iter().cycle()) {
        let (mut i, mut r) = pair_with(Group::Curve25519, false, seed);
        let (mut ri, mut rr) = (TestRng(seed + 100), TestRng(seed + 200));
        let now = Instant::now();
        let c = i.child().unwrap().clone();
        let qi = i.create_child(Some(c.spi_i), now, &mut ri).unwrap();
        let qr = r.create_child(Some(c.spi_r), now, &mut rr).unwrap();
        let (mut ei, mut er) = (Vec::new(), Vec::new());
        // Both requests are answered as usual, in two delivery orders.
        let ar = r.handle(&qi, &mut rr).unwrap();
        er.push(ar.event.unwrap());
        if order {
            ei.push(
                i.handle(&ar.reply.unwrap(), &mut ri)
                    .unwrap()
                    .event
                    .unwrap(),
            );
            let ai = i.handle(&qr, &mut ri).unwrap();
            ei.push(ai.event.unwrap());
            er.push(
                r.handle(&ai.reply.unwrap(), &mut rr)
                    .unwrap()
                    .event
                    .unwrap(),
            );
        } else {
            let ai = i.handle(&qr, &mut ri).unwrap();
            ei.push(ai.event.unwrap());
            ei.push(
                i.handle(&ar.reply.unwrap(), &mut ri)
                    .unwrap()
                    .event
                    .unwrap(),
            );
            er.push(
                r.handle(&ai.reply.unwrap(), &mut rr)
                    .unwrap()
                    .event
                    .unwrap(),
            );
        }
        assert_eq!(i.children().count(), 3);
        let di = to_delete(&ei, c.spi_i);
        let dr = to_delete(&er, c.spi_r);
        // Exactly one side deletes the old pair, the other its redundant new one.
        assert!((di == c.spi_i) != (dr == c.spi_r), "{ei:?} {er:?}");
        winners[usize::from(di == c.spi_i)] += 1;
        let qi = i.delete_child(di, now, &mut ri).unwrap();
        let qr = r.delete_child(dr, now, &mut rr).unwrap();
        let ai = i.handle(&qr, &mut ri).unwrap();
        let ar = r.handle(&qi, &mut rr).unwrap();
        let _ = i.handle(&ar.reply.unwrap(), &mut ri).unwrap();
        let _ = r.handle(&ai.reply.unwrap(), &mut rr).unwrap();
        // One pair is left, the same on both sides, and it is not the old one.
        assert_eq!(i.children().count(), 1);
        assert_eq!(r.children().count(), 1);
        assert_eq!(i.child().unwrap(), r.child().unwrap());
        assert_ne!(i.child().unwrap().spi_i, c.spi_i);
    }
    assert!(
        winners[0] > 0 && winners[1] > 0,
        "both sides win sometimes: {winners:?}"
    );
}

#[test]
fn refusals_create_nothing() {
    // The responder wants PFS, the initiator does not: NO_PROPOSAL_CHOSEN.
    let (ci, _) = configs(GCM, Group::Curve25519, gcm_child());
    let (_, cr) = configs(
        GCM,
        Group::Curve25519,
        ChildSuite {
            pfs: true,
            ..gcm_child()
        },
    );
    let run = handshake(ci, cr, 13);
    let (mut i, mut r) = (run.init, run.resp);
    let (mut ri, mut rr) = (TestRng(14), TestRng(15));
    let now = Instant::now();
    let req = i.create_child(None, now, &mut ri).unwrap();
    let (ea, eb) = exchange(&mut i, &mut r, req, &mut ri, &mut rr);
    assert_eq!(
        ea,
        Event::ChildFailed(IkeError::PeerNotify(notify::NO_PROPOSAL_CHOSEN))
    );
    assert_eq!(eb, Event::PeerChecked, "no event on the refusing side");
    assert_eq!((i.children().count(), r.children().count()), (1, 1));

    // Rekeying a pair the peer has just deleted: CHILD_SA_NOT_FOUND.
    let (mut i, mut r) = pair_with(Group::Curve25519, false, 16);
    let c = i.child().unwrap().clone();
    let rekey = i.create_child(Some(c.spi_i), now, &mut ri).unwrap();
    let del = r.delete_child(c.spi_r, now, &mut rr).unwrap();
    let out = i.handle(&del, &mut ri).unwrap();
    assert!(matches!(out.event, Some(Event::ChildDeleted { .. })));
    assert!(matches!(
        r.handle(&out.reply.unwrap(), &mut rr).unwrap().event,
        Some(Event::ChildDeleted { .. })
    ));
    let (ea, _) = exchange(&mut i, &mut r, rekey, &mut ri, &mut rr);
    assert_eq!(
        ea,
        Event::ChildFailed(IkeError::PeerNotify(notify::CHILD_SA_NOT_FOUND))
    );
    assert_eq!((i.children().count(), r.children().count()), (0, 0));
    // Unknown SPIs are refused locally.
    assert!(i.create_child(Some([1, 2, 3, 4]), now, &mut ri).is_err());
}

#[test]
fn ike_sa_rekey_from_either_side() {
    for requester_is_initiator in [true, false] {
        let (mut i, mut r) = pair_with(Group::Ecp256, true, 20);
        let (mut ri, mut rr) = (TestRng(21), TestRng(22));
        let now = Instant::now();
        // One more Child SA first, so that two move over.
        let req = i.create_child(None, now, &mut ri).unwrap();
        exchange(&mut i, &mut r, req, &mut ri, &mut rr);
        let children: Vec<_> = i.children().cloned().collect();
        let old_keys = i.ike_keys().clone();
        let (a, b, ra, rb) = if requester_is_initiator {
            (&mut i, &mut r, &mut ri, &mut rr)
        } else {
            (&mut r, &mut i, &mut rr, &mut ri)
        };
        let req = a.rekey_ike(now, ra).unwrap();
        let out_b = b.handle(&req, rb).unwrap();
        assert_eq!(out_b.event, Some(Event::IkeRekeyed));
        let mut new_b = out_b.rekeyed.unwrap();
        let out_a = a.handle(&out_b.reply.unwrap(), ra).unwrap();
        assert_eq!(out_a.event, Some(Event::IkeRekeyed));
        let mut new_a = out_a.rekeyed.unwrap();
        // Same new SA on both sides, new SPIs and keys, the requester is its initiator.
        assert_eq!(new_a.spis(), new_b.spis());
        assert_ne!(new_a.spis(), a.spis());
        assert_eq!(new_a.ike_keys(), new_b.ike_keys());
        assert_ne!(new_a.ike_keys().sk_d, old_keys.sk_d);
        assert!(new_a.is_initiator() && !new_b.is_initiator());
        // The Child SAs moved over, unchanged.
        let moved: Vec<_> = new_a.children().cloned().collect();
        assert_eq!(moved.len(), 2);
        for c in &children {
            assert!(moved.contains(c));
        }
        assert_eq!(a.children().count() + b.children().count(), 0);
        // The new SA works (message IDs from 0) ...
        assert_eq!(new_a.next_message_id(), 0);
        let req = new_b.check_liveness(now, rb).unwrap();
        let out = new_a.handle(&req, ra).unwrap();
        assert_eq!(
            new_b.handle(&out.reply.unwrap(), rb).unwrap().event,
            Some(Event::Alive)
        );
        let req = new_a.create_child(None, now, ra).unwrap();
        let (ea, eb) = exchange(&mut new_a, &mut new_b, req, ra, rb);
        assert!(matches!(ea, Event::ChildCreated { .. }), "{ea:?}");
        assert!(matches!(eb, Event::ChildCreated { .. }), "{eb:?}");
        // ... and the requester deletes the old one.
        let req = a.delete_ike(now, ra).unwrap();
        let out = b.handle(&req, rb).unwrap();
        assert_eq!(out.event, Some(Event::IkeDeleted));
        assert_eq!(
            a.handle(&out.reply.unwrap(), ra).unwrap().event,
            Some(Event::IkeDeleted)
        );
        assert!(a.is_closed() && b.is_closed());
        assert!(!new_a.is_closed() && !new_b.is_closed());
    }
}

#[test]
fn ike_rekey_refused_while_busy() {
    let (mut i, mut r) = pair_with(Group::Curve25519, false, 30);
    let (mut ri, mut rr) = (TestRng(31), TestRng(32));
    let now = Instant::now();
    let qi = i.rekey_ike(now, &mut ri).unwrap();
    let _qr = r.check_liveness(now, &mut rr).unwrap();
    // The responder has its own request outstanding: TEMPORARY_FAILURE, nothing moves.
    let out = r.handle(&qi, &mut rr).unwrap();
    assert!(out.event.is_none() && out.rekeyed.is_none());
    let got = i.handle(&out.reply.unwrap(), &mut ri).unwrap();
    assert_eq!(
        got.event,
        Some(Event::IkeRekeyFailed(IkeError::PeerNotify(
            notify::TEMPORARY_FAILURE
        )))
    );
    assert!(got.rekeyed.is_none());
    assert_eq!(i.children().count(), 1);
    assert_eq!(r.children().count(), 1);
}

/// Both sides rekey the IKE SA at once (RFC 7296 §2.8.2): each answers the other's
/// request as usual; when both exchanges are done, the new SA made with the lowest of the
/// four nonces is redundant. Both sides agree on the survivor (which holds the Child SA);
/// the loser deletes the redundant SA, the winner the old one. Seeds give both outcomes.
#[test]
fn simultaneous_ike_sa_rekeys_settled_by_lowest_nonce() {
    let mut outcomes = [0usize; 2];
    for seed in 0..12u64 {
        let (mut i, mut r) = pair_with(Group::Curve25519, false, 100 + seed);
        let (mut ri, mut rr) = (TestRng(200 + seed), TestRng(300 + seed));
        let now = Instant::now();
        let child = i.child().unwrap().clone();
        let qi = i.rekey_ike(now, &mut ri).unwrap();
        let qr = r.rekey_ike(now, &mut rr).unwrap();
        // Each answers the other's request; nothing is settled yet.
        let ai = i.handle(&qr, &mut ri).unwrap();
        let ar = r.handle(&qi, &mut rr).unwrap();
        assert!(ai.event.is_none() && ai.rekeyed.is_none());
        assert!(ar.event.is_none() && ar.rekeyed.is_none());
        // The responses arrive, in either order.
        let (oi, or) = if seed % 2 == 0 {
            let oi = i.handle(&ar.reply.unwrap(), &mut ri).unwrap();
            (oi, r.handle(&ai.reply.unwrap(), &mut rr).unwrap())
        } else {
            let or = r.handle(&ai.reply.unwrap(), &mut rr).unwrap();
            (i.handle(&ar.reply.unwrap(), &mut ri).unwrap(), or)
        };
        let won = |o: &ike::sa::Output| match o.event {
            Some(Event::IkeRekeyCollision { won }) => won,
            ref e => panic!("{e:?}"),
        };
        let (wi, wr) = (won(&oi), won(&or));
        assert_ne!(wi, wr, "exactly one side wins");
        outcomes[usize::from(wi)] += 1;
        let (mut si, mut sr) = (oi.rekeyed.unwrap(), or.rekeyed.unwrap());
        let (mut di, mut dr) = (oi.redundant.unwrap(), or.redundant.unwrap());
        // The same survivor and the same redundant SA on both sides.
        assert_eq!(si.spis(), sr.spis());
        assert_eq!(si.ike_keys(), sr.ike_keys());
        assert_eq!(di.spis(), dr.spis());
        assert_ne!(si.spis(), di.spis());
        // The winner is the survivor's initiator; the Child SA moved to the survivor.
        assert_eq!(si.is_initiator(), wi);
        assert_eq!(
            si.children().cloned().collect::<Vec<_>>(),
            vec![child.clone()]
        );
        assert_eq!(sr.children().count(), 1);
        assert_eq!(di.children().count() + dr.children().count(), 0);
        assert_eq!(i.children().count() + r.children().count(), 0);
        // The loser deletes the redundant SA ...
        let (loser_d, winner_d, rl, rw) = if wi {
            (&mut dr, &mut di, &mut rr, &mut ri)
        } else {
            (&mut di, &mut dr, &mut ri, &mut rr)
        };
        let del = loser_d.delete_ike(now, rl).unwrap();
        let out = winner_d.handle(&del, rw).unwrap();
        assert_eq!(out.event, Some(Event::IkeDeleted));
        assert_eq!(
            loser_d.handle(&out.reply.unwrap(), rl).unwrap().event,
            Some(Event::IkeDeleted)
        );
        // ... the winner the old one.
        let (old_w, old_l, rw, rl) = if wi {
            (&mut i, &mut r, &mut ri, &mut rr)
        } else {
            (&mut r, &mut i, &mut rr, &mut ri)
        };
        let del = old_w.delete_ike(now, rw).unwrap();
        let out = old_l.handle(&del, rl).unwrap();
        assert_eq!(out.event, Some(Event::IkeDeleted));
        assert!(out.rekeyed.is_none(), "nothing left to hand over");
        assert_eq!(
            old_w.handle(&out.reply.unwrap(), rw).unwrap().event,
            Some(Event::IkeDeleted)
        );
        assert!(i.is_closed() && r.is_closed() && di.is_closed() && dr.is_closed());
        // The survivor works.
        let q = sr.check_liveness(now, &mut rr).unwrap();
        let a = si.handle(&q, &mut ri).unwrap().reply.unwrap();
        assert_eq!(sr.handle(&a, &mut rr).unwrap().event, Some(Event::Alive));
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

/// The rekeys cross but one side sees its response before the other's request: it has
/// rekeyed and refuses the late request (TEMPORARY_FAILURE, §2.25.2), and deletes the old
/// SA. The other side, which answered the first request meanwhile, takes that new SA on
/// either message (refusal or delete), so both end on the same SA with the Child SA.
#[test]
fn crossed_ike_rekey_after_the_peer_completed() {
    for refusal_first in [true, false] {
        let (mut i, mut r) = pair_with(Group::Curve25519, false, 50);
        let (mut ri, mut rr) = (TestRng(51), TestRng(52));
        let now = Instant::now();
        let qi = i.rekey_ike(now, &mut ri).unwrap();
        let qr = r.rekey_ike(now, &mut rr).unwrap();
        let ar = r.handle(&qi, &mut rr).unwrap();
        assert!(ar.event.is_none());
        // i completes normally, then gets r's request late, then deletes the old SA.
        let oi = i.handle(&ar.reply.unwrap(), &mut ri).unwrap();
        assert_eq!(oi.event, Some(Event::IkeRekeyed));
        let si = oi.rekeyed.unwrap();
        let late = i.handle(&qr, &mut ri).unwrap();
        assert!(late.event.is_none() && late.rekeyed.is_none());
        let del = i.delete_ike(now, &mut ri).unwrap();
        let refusal = late.reply.unwrap();
        let first = if refusal_first { &refusal } else { &del };
        let o = r.handle(first, &mut rr).unwrap();
        assert_eq!(o.event, Some(Event::IkeRekeyCollision { won: false }));
        assert!(o.redundant.is_none());
        let sr = o.rekeyed.unwrap();
        assert_eq!(si.spis(), sr.spis());
        assert_eq!(si.children().count(), 1);
        assert_eq!(sr.children().count(), 1);
        if refusal_first {
            let o = r.handle(&del, &mut rr).unwrap();
            assert_eq!(o.event, Some(Event::IkeDeleted));
            assert!(o.rekeyed.is_none());
        } else {
            // The old SA is deleted: the late refusal finds nothing.
            assert!(r.is_closed());
            assert!(r.handle(&refusal, &mut rr).is_err());
        }
    }
}
