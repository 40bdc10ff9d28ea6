//! Child SA transforms chosen by policy: the initiator offers several suites in order, the
//! responder takes the first of the initiator's proposals that its policy allows (set per
//! exchange from the IPsec policy, as in.ikev2d does after PF_KEY X_INVERSE_ACQUIRE), and a
//! policy allowing none of them ends in NO_PROPOSAL_CHOSEN with no Child SA. The caller sees
//! a request's selectors before handling it (`child_request`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::time::Instant;

use ike::consts::notify;
use ike::dh::Group;
use ike::sa::{respond_sa_init, ChildSuite, Event, ExpectSaInitResp, IkeError};

fn cbc_sha256() -> ChildSuite {
    ChildSuite {
        encr: 12,
        key_bits: 256,
        integ: Some(12),
        ..gcm_child()
    }
}

/// Initiator offering GCM then CBC; responder configured for GCM only (its policy decides).
fn offer_gcm_then_cbc() -> (ike::sa::IkeConfig, ike::sa::IkeConfig) {
    let (mut ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    ci.child_more = vec![cbc_sha256()];
    (ci, cr)
}

#[test]
fn responder_policy_picks_among_the_initiators_proposals() {
    let (ci, cr) = offer_gcm_then_cbc();
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(1), TestRng(2));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let (mut r1, init_resp) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let (i2, auth_req) = next(i1.handle(&init_resp, now, &mut ri));
    let auth_req = auth_req.unwrap();
    // The selectors are visible before the request is handled.
    let seen = r1.child_request(&auth_req).unwrap();
    assert_eq!(seen.ts_local, ts([10, 2, 0, 0], [10, 2, 255, 255]));
    assert_eq!(seen.ts_remote, ts([10, 1, 0, 0], [10, 1, 255, 255]));
    assert_eq!(seen.rekey, None);
    // Policy allows only AES-CBC with HMAC-SHA-256: the initiator's second proposal.
    r1.set_child_policy(vec![cbc_sha256()]);
    let (resp, auth_resp) = next(r1.handle(&auth_req, &mut rr));
    let (init, _) = next(i2.handle(&auth_resp.unwrap()));
    assert_eq!(resp.child().unwrap().suite, cbc_sha256());
    assert_eq!(init.child().unwrap(), resp.child().unwrap());

    // Without a policy answer the configuration's suite (GCM) is taken: the first offered.
    let r = handshake(offer_gcm_then_cbc().0, offer_gcm_then_cbc().1, 9);
    assert_eq!(r.resp.child().unwrap().suite, gcm_child());
    assert_eq!(r.init.child().unwrap(), r.resp.child().unwrap());
}

#[test]
fn a_policy_allowing_nothing_offered_is_no_proposal_chosen() {
    let (ci, cr) = offer_gcm_then_cbc();
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(3), TestRng(4));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let (mut r1, init_resp) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let (i2, auth_req) = next(i1.handle(&init_resp, now, &mut ri));
    // ChaCha20-Poly1305 only.
    r1.set_child_policy(vec![ChildSuite {
        encr: 28,
        key_bits: 256,
        ..gcm_child()
    }]);
    // The IKE SA stands without a Child SA (RFC 7296 §1.2, §2.21.2).
    let (resp, reply) = next(r1.handle(&auth_req.unwrap(), &mut rr));
    assert_eq!(
        resp.ike_auth_child_error(),
        Some(IkeError::NoProposalChosen)
    );
    let (init, _) = next(i2.handle(&reply.unwrap()));
    assert_eq!(
        init.ike_auth_child_error(),
        Some(IkeError::PeerNotify(notify::NO_PROPOSAL_CHOSEN))
    );
    assert_eq!(init.children().count() + resp.children().count(), 0);
}

#[test]
fn create_child_and_rekey_follow_the_policy_of_each_request() {
    let (ci, cr) = offer_gcm_then_cbc();
    let r = handshake(ci, cr, 5);
    let (mut i, mut resp) = (r.init, r.resp);
    let (mut ri, mut rr) = (TestRng(7), TestRng(8));
    let now = Instant::now();

    // A new Child SA: policy for these selectors allows CBC only.
    let req = i.create_child(None, now, &mut ri).unwrap();
    let seen = resp.child_request(&req).unwrap();
    assert_eq!(seen.rekey, None);
    resp.set_child_policy(vec![cbc_sha256()]);
    let out = resp.handle(&req, &mut rr).unwrap();
    let Some(Event::ChildCreated { inbound }) = out.event else {
        panic!("{:?}", out.event)
    };
    assert_eq!(resp.child_by_inbound(inbound).unwrap().suite, cbc_sha256());
    let ev = i.handle(&out.reply.unwrap(), &mut ri).unwrap().event;
    let Some(Event::ChildCreated { inbound: mine }) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(i.child_by_inbound(mine).unwrap().suite, cbc_sha256());
    // A retransmission is answered from the cache: nothing to ask the policy about.
    assert!(resp.child_request(&req).is_none());

    // Its rekey offers the pair's own suite first; the policy answer is per request.
    let req = i.create_child(Some(mine), now, &mut ri).unwrap();
    let seen = resp.child_request(&req).unwrap();
    assert_eq!(seen.rekey, Some(inbound));
    resp.set_child_policy(vec![]);
    let out = resp.handle(&req, &mut rr).unwrap();
    assert!(out.event.is_none(), "nothing created: {:?}", out.event);
    let ev = i.handle(&out.reply.unwrap(), &mut ri).unwrap().event;
    assert_eq!(
        ev,
        Some(Event::ChildFailed(IkeError::PeerNotify(
            notify::NO_PROPOSAL_CHOSEN
        )))
    );
    // The next request without a policy answer: the responder's configuration (GCM only)
    // applies, so of the rekey's proposals (the pair's CBC first, then GCM) GCM is taken.
    let req = i.create_child(Some(mine), now, &mut ri).unwrap();
    let out = resp.handle(&req, &mut rr).unwrap();
    assert!(matches!(out.event, Some(Event::ChildRekeyed { .. })));
    let ev = i.handle(&out.reply.unwrap(), &mut ri).unwrap().event;
    let Some(Event::ChildRekeyed { new, .. }) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(i.child_by_inbound(new).unwrap().suite, gcm_child());
}
