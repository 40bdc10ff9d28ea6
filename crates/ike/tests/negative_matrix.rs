//! A negative-test matrix (issue 9, robustness): for each exchange and role not covered
//! by `exchange.rs` (the initiator taking IKE_SA_INIT and IKE_AUTH responses, both roles
//! of CREATE_CHILD_SA — new child, child rekey, IKE rekey — and of INFORMATIONAL —
//! delete, liveness — on an established SA), a message is edited: a payload missing,
//! empty, duplicated, an unknown payload with and without the critical bit, bad lengths,
//! a KE payload of another group than the proposal's. Encrypted messages are re-sealed
//! with the right SK keys, so that the payload checks of the state machine are reached,
//! not the integrity check. Each row says what the RFC wants: the error notification,
//! a silent drop (and then nothing changed: the genuine message still works), our
//! exchange failing without an SA, or the message working as usual. Never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::time::Instant;

use ike::consts::{notify, payload as pt};
use ike::dh::Group;
use ike::sa::{
    respond_sa_init, ChildSuite, Established, Event, ExpectSaInitResp, InitRejected, Step,
};
use ike::sk::SkCipher;
use ike::wire::{emit_chain, Header, Message, Payload, HEADER_LEN};
use zeroize::Zeroizing;

/// An unassigned (private use) payload type.
const UNKNOWN: u8 = 222;

/// An edit of a message.
#[derive(Clone, Copy, Debug)]
enum Mutation {
    /// The first payload of this type removed.
    Missing(u8),
    /// The first payload of this type with a zero-length body.
    Empty(u8),
    /// The first payload of this type sent twice.
    Duplicated(u8),
    /// An unknown payload with the critical bit appended.
    UnknownCritical,
    /// An unknown payload without the critical bit appended.
    UnknownNonCritical,
    /// The last payload's length runs past the end of the message (or SK plaintext).
    PayloadLenBeyond,
    /// The first payload's length is below its own 4-byte generic header.
    GenericLenShort,
    /// The first payload's length one byte too long: the chain no longer adds up.
    GenericLenOff,
    /// The IKE header's Length field is not the datagram's length.
    MessageLen,
    /// The KE payload names another group than the one the proposal selects.
    WrongKeGroup,
}
use Mutation::*;

/// One payload of a chain: type, critical/reserved byte, body.
type Raw = (u8, u8, Vec<u8>);

fn split(first: u8, mut buf: &[u8]) -> Vec<Raw> {
    let mut out = Vec::new();
    let mut ty = first;
    while ty != pt::NONE {
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        out.push((ty, buf[1], buf[4..len].to_vec()));
        ty = buf[0];
        buf = &buf[len..];
    }
    assert!(buf.is_empty());
    out
}

/// Encodes `v`; returns the first type, the bytes and where each payload starts.
fn join(v: &[Raw]) -> (u8, Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut at = Vec::new();
    for (i, (_, flags, body)) in v.iter().enumerate() {
        at.push(out.len());
        out.push(v.get(i + 1).map_or(pt::NONE, |p| p.0));
        out.push(*flags);
        out.extend_from_slice(&u16::try_from(body.len() + 4).unwrap().to_be_bytes());
        out.extend_from_slice(body);
    }
    (v.first().map_or(pt::NONE, |p| p.0), out, at)
}

fn set_len(chain: &mut [u8], at: usize, len: usize) {
    chain[at + 2..at + 4].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
}

/// Applies `m` to a payload chain; `None` when the chain has no payload to edit (a
/// table row must not name such a case).
fn edit_chain(m: Mutation, first: u8, chain: &[u8]) -> Option<(u8, Vec<u8>)> {
    let mut v = split(first, chain);
    let find = |v: &[Raw], ty: u8| v.iter().position(|p| p.0 == ty);
    match m {
        Missing(ty) => {
            let i = find(&v, ty)?;
            v.remove(i);
        }
        Empty(ty) => {
            let i = find(&v, ty)?;
            v[i].2.clear();
        }
        Duplicated(ty) => {
            let i = find(&v, ty)?;
            let d = v[i].clone();
            v.insert(i, d);
        }
        UnknownCritical => v.push((UNKNOWN, 0x80, b"x".to_vec())),
        UnknownNonCritical => v.push((UNKNOWN, 0, b"x".to_vec())),
        WrongKeGroup => {
            let i = find(&v, pt::KE)?;
            let g = u16::from_be_bytes([v[i].2[0], v[i].2[1]]);
            // Curve25519 is the configured group; offer group 19 instead (and vice versa).
            let other: u16 = if g == 19 { 31 } else { 19 };
            v[i].2[..2].copy_from_slice(&other.to_be_bytes());
        }
        PayloadLenBeyond | GenericLenShort | GenericLenOff | MessageLen => {}
    }
    let (first, mut bytes, at) = join(&v);
    match m {
        PayloadLenBeyond => {
            let last = *at.last()?;
            let len = bytes.len() - last + 64;
            set_len(&mut bytes, last, len);
        }
        GenericLenShort => set_len(&mut bytes, *at.first()?, 3),
        GenericLenOff => {
            let (a, len) = (at[0], at.get(1).copied().unwrap_or(bytes.len()) - at[0]);
            if at.len() < 2 {
                return None;
            }
            set_len(&mut bytes, a, len + 1);
        }
        _ => {}
    }
    Some((first, bytes))
}

fn fix_message_len(msg: &mut [u8], m: Mutation) {
    if matches!(m, MessageLen) {
        let wrong = u32::try_from(msg.len() + 8).unwrap();
        msg[24..28].copy_from_slice(&wrong.to_be_bytes());
    }
}

/// An unencrypted message (IKE_SA_INIT) edited by `m`.
fn edit_plain(msg: &[u8], m: Mutation) -> Vec<u8> {
    let (h, first, _) = Header::parse(msg).unwrap();
    let (first, chain) = edit_chain(m, first, &msg[HEADER_LEN..]).expect("row does not apply");
    let mut out = Vec::new();
    h.emit(
        first,
        u32::try_from(HEADER_LEN + chain.len()).unwrap(),
        &mut out,
    );
    out.extend_from_slice(&chain);
    fix_message_len(&mut out, m);
    out
}

/// A protected message opened with `c`, edited by `m` and sealed again with `c`.
fn edit_sealed(msg: &[u8], c: &SkCipher, m: Mutation) -> Vec<u8> {
    let mut plain = Zeroizing::new(Vec::new());
    let (h, inner) = c.open(msg, &mut plain).unwrap();
    let mut chain = Vec::new();
    let first = emit_chain(&inner, &mut chain).unwrap();
    let (first, chain) = edit_chain(m, first, &chain).expect("row does not apply");
    let mut out = c
        .seal_content(&h, first, &chain, &vec![5; c.iv_len()])
        .unwrap();
    fix_message_len(&mut out, m);
    out
}

/// UNSUPPORTED_CRITICAL_PAYLOAD names the payload type, INVALID_KE_PAYLOAD the group
/// wanted (the configured Curve25519) (RFC 7296 §3.10.1).
fn check_data(ty: u16, data: &[u8]) {
    match ty {
        notify::UNSUPPORTED_CRITICAL_PAYLOAD => assert_eq!(data, [UNKNOWN]),
        notify::INVALID_KE_PAYLOAD => assert_eq!(data, 31u16.to_be_bytes()),
        _ => {}
    }
}

/// The error notification types (below 16384) in a protected message.
fn errors_in(msg: &[u8], c: &SkCipher) -> Vec<u16> {
    let mut plain = Zeroizing::new(Vec::new());
    let (_, inner) = c.open(msg, &mut plain).unwrap();
    inner
        .iter()
        .filter_map(|p| match p {
            Payload::Notify(n) if n.ty < 16384 => {
                check_data(n.ty, n.data);
                Some(n.ty)
            }
            _ => None,
        })
        .collect()
}

/// What the side under test did with the edited message.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// A request answered with these error notifications, nothing made or changed.
    Notified(Vec<u16>),
    /// Dropped without an answer; nothing changed (the genuine message still works).
    Dropped,
    /// Our exchange ended without an SA and nothing was sent.
    Failed,
    /// The message worked as the genuine one does.
    Works,
    /// A request answered without error and without the genuine message's effect (a
    /// delete without its Delete payload is a liveness check).
    Ignored,
}
use Outcome::*;

#[derive(Clone, Copy, Debug)]
enum Scenario {
    /// The responder takes the IKE_SA_INIT request (completing exchange.rs's rows).
    RespSaInitReq,
    /// The responder takes the IKE_AUTH request (completing exchange.rs's rows).
    RespAuthReq,
    /// The initiator takes the IKE_SA_INIT response.
    InitSaInitResp,
    /// The initiator takes the IKE_AUTH response.
    InitAuthResp,
    /// The responder / the requester of CREATE_CHILD_SA for a new Child SA (with PFS).
    NewChildReq,
    NewChildResp,
    /// ... rekeying the Child SA.
    RekeyChildReq,
    RekeyChildResp,
    /// ... rekeying the IKE SA.
    RekeyIkeReq,
    RekeyIkeResp,
    /// INFORMATIONAL deleting the Child SA, both roles.
    DeleteReq,
    DeleteResp,
    /// An empty INFORMATIONAL (liveness check), both roles.
    LivenessReq,
    LivenessResp,
}
use Scenario::*;

fn pfs_child() -> ChildSuite {
    ChildSuite {
        pfs: true,
        ..gcm_child()
    }
}

/// The two ciphers of an IKE SA: to the responder, to the initiator.
fn ciphers(e: &Established) -> (SkCipher, SkCipher) {
    let k = e.ike_keys();
    (
        SkCipher::new(GCM, &k.sk_ei, &k.sk_ai).unwrap(),
        SkCipher::new(GCM, &k.sk_er, &k.sk_ar).unwrap(),
    )
}

fn run_sa_init_resp(m: Mutation) -> Outcome {
    let (ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(21), TestRng(22));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let (_, resp) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    match i1.handle(&edit_plain(&resp, m), now, &mut ri) {
        Step::Next { .. } => Works,
        Step::Failed { reply, .. } => {
            assert!(reply.is_none(), "{m:?}: a response answered");
            Failed
        }
        Step::Stay { state, reply, .. } => {
            assert!(reply.is_none(), "{m:?}: a response answered");
            // Nothing changed: the genuine response still gets IKE_AUTH going.
            let (_, auth) = next(state.handle(&resp, now, &mut ri));
            assert!(auth.is_some());
            Dropped
        }
    }
}

fn run_auth_resp(m: Mutation) -> Outcome {
    let (ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(23), TestRng(24));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let (r1, resp) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let (i2, req) = next(i1.handle(&resp, now, &mut ri));
    let k = i2.ike_keys();
    let to_i = SkCipher::new(GCM, &k.sk_er, &k.sk_ar).unwrap();
    let (_, resp) = next(r1.handle(&req.unwrap(), &mut rr));
    let resp = resp.unwrap();
    match i2.handle(&edit_sealed(&resp, &to_i, m)) {
        Step::Next { state, reply } => {
            assert!(reply.is_none());
            // Working means the genuine result: the Child SA of IKE_AUTH exists.
            assert!(
                state.child().is_some(),
                "{m:?}: established without a Child SA"
            );
            Works
        }
        Step::Failed { reply, .. } => {
            assert!(reply.is_none(), "{m:?}: a response answered");
            Failed
        }
        Step::Stay { state, reply, .. } => {
            assert!(reply.is_none(), "{m:?}: a response answered");
            let (est, _) = next(state.handle(&resp));
            assert!(est.child().is_some());
            Dropped
        }
    }
}

/// Our request for `s` on `e` (the IKE SA initiator).
fn request(s: Scenario, e: &mut Established, rng: &mut TestRng) -> Vec<u8> {
    let now = Instant::now();
    let spi = e.child().map(|c| c.spi_i).unwrap();
    match s {
        NewChildReq | NewChildResp => e.create_child(None, now, rng),
        RekeyChildReq | RekeyChildResp => e.create_child(Some(spi), now, rng),
        RekeyIkeReq | RekeyIkeResp => e.rekey_ike(now, rng),
        DeleteReq | DeleteResp => e.delete_child(spi, now, rng),
        LivenessReq | LivenessResp => e.check_liveness(now, rng),
        RespSaInitReq | RespAuthReq | InitSaInitResp | InitAuthResp => unreachable!(),
    }
    .unwrap()
}

/// The event the genuine message of `s` gives.
fn works(s: Scenario, ev: Option<Event>) -> bool {
    matches!(
        (s, ev),
        (NewChildReq | NewChildResp, Some(Event::ChildCreated { .. }))
            | (
                RekeyChildReq | RekeyChildResp,
                Some(Event::ChildRekeyed { .. })
            )
            | (RekeyIkeReq | RekeyIkeResp, Some(Event::IkeRekeyed))
            | (DeleteReq | DeleteResp, Some(Event::ChildDeleted { .. }))
            | (LivenessReq, Some(Event::PeerChecked))
            | (LivenessResp, Some(Event::Alive))
    )
}

fn is_response_side(s: Scenario) -> bool {
    matches!(
        s,
        NewChildResp | RekeyChildResp | RekeyIkeResp | DeleteResp | LivenessResp
    )
}

fn run_established(s: Scenario, m: Mutation) -> Outcome {
    let (ci, cr) = configs(GCM, Group::Curve25519, pfs_child());
    let run = handshake(ci, cr, 0x77);
    let (mut init, mut resp) = (run.init, run.resp);
    let (to_r, to_i) = ciphers(&init);
    let (mut ri, mut rr) = (TestRng(31), TestRng(32));
    let req = request(s, &mut init, &mut ri);
    let children = |e: &Established| e.children().count();
    if !is_response_side(s) {
        // The responder takes the edited request.
        let before = children(&resp);
        match resp.handle(&edit_sealed(&req, &to_r, m), &mut rr) {
            Err(_) => {
                assert_eq!(children(&resp), before, "{s:?} {m:?}");
                let out = resp.handle(&req, &mut rr).unwrap();
                assert!(works(s, out.event), "{s:?} {m:?}: genuine after drop");
                Dropped
            }
            Ok(out) => {
                let reply = out.reply.expect("request answered");
                let errors = errors_in(&reply, &to_i);
                if works(s, out.event) {
                    assert!(errors.is_empty(), "{s:?} {m:?}: {errors:?}");
                    return Works;
                }
                assert!(out.rekeyed.is_none(), "{s:?} {m:?}: IKE SA made");
                assert_eq!(children(&resp), before, "{s:?} {m:?}: Child SA changed");
                assert!(
                    matches!(out.event, None | Some(Event::PeerChecked)),
                    "{s:?} {m:?}: {:?}",
                    out.event
                );
                if errors.is_empty() {
                    Ignored
                } else {
                    Notified(errors)
                }
            }
        }
    } else {
        // The requester takes the edited response.
        let reply = resp.handle(&req, &mut rr).unwrap().reply.unwrap();
        let before = children(&init);
        match init.handle(&edit_sealed(&reply, &to_i, m), &mut ri) {
            Err(_) => {
                assert_eq!(children(&init), before, "{s:?} {m:?}");
                let out = init.handle(&reply, &mut ri).unwrap();
                assert!(works(s, out.event), "{s:?} {m:?}: genuine after drop");
                Dropped
            }
            Ok(out) => {
                assert!(out.reply.is_none(), "{s:?} {m:?}: a response answered");
                if works(s, out.event) {
                    return Works;
                }
                assert!(out.rekeyed.is_none(), "{s:?} {m:?}: IKE SA made");
                assert_eq!(children(&init), before, "{s:?} {m:?}: Child SA changed");
                assert!(
                    matches!(
                        out.event,
                        Some(Event::ChildFailed(_) | Event::IkeRekeyFailed(_))
                    ),
                    "{s:?} {m:?}: {:?}",
                    out.event
                );
                Failed
            }
        }
    }
}

fn run_sa_init_req(m: Mutation) -> Outcome {
    let (ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(25), TestRng(26));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    match respond_sa_init(&cr, &edit_plain(i1.request(), m), &ctx(), &mut rr) {
        Ok(_) => Works,
        Err(InitRejected::Drop(_)) => Dropped,
        Err(InitRejected::Reply(_, reply)) => {
            let msg = Message::parse(&reply).unwrap();
            // An error answer is the notification alone (§1.2).
            match &msg.payloads[..] {
                [Payload::Notify(n)] => {
                    check_data(n.ty, n.data);
                    Notified(vec![n.ty])
                }
                other => panic!("{m:?}: {other:?}"),
            }
        }
    }
}

fn run_auth_req(m: Mutation) -> Outcome {
    let (ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(27), TestRng(28));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let (r1, resp) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let (i2, req) = next(i1.handle(&resp, now, &mut ri));
    let k = i2.ike_keys();
    let to_r = SkCipher::new(GCM, &k.sk_ei, &k.sk_ai).unwrap();
    let to_i = SkCipher::new(GCM, &k.sk_er, &k.sk_ar).unwrap();
    let req = req.unwrap();
    match r1.handle(&edit_sealed(&req, &to_r, m), &mut rr) {
        Step::Next { state, .. } => {
            assert!(
                state.child().is_some(),
                "{m:?}: established without a Child SA"
            );
            Works
        }
        Step::Failed { reply: Some(r), .. } => Notified(errors_in(&r, &to_i)),
        Step::Failed { reply: None, .. } => Failed,
        Step::Stay {
            state, reply: None, ..
        } => {
            let (est, _) = next(state.handle(&req, &mut rr));
            assert!(est.child().is_some());
            Dropped
        }
        Step::Stay { reply: Some(_), .. } => panic!("{m:?}: answered and stayed"),
    }
}

fn run(s: Scenario, m: Mutation) -> Outcome {
    match s {
        RespSaInitReq => run_sa_init_req(m),
        RespAuthReq => run_auth_req(m),
        InitSaInitResp => run_sa_init_resp(m),
        InitAuthResp => run_auth_resp(m),
        _ => run_established(s, m),
    }
}

const UCP: u16 = notify::UNSUPPORTED_CRITICAL_PAYLOAD;
const SYNTAX: u16 = notify::INVALID_SYNTAX;
const KE: u16 = notify::INVALID_KE_PAYLOAD;

/// (scenario, edit, what must happen, the rule).
type Row = (Scenario, Mutation, Outcome, &'static str);

fn rows() -> Vec<Row> {
    let n = |t: u16| Notified(vec![t]);
    vec![
        // --- Responder, IKE_SA_INIT request: the cells exchange.rs leaves open (no state
        // is kept for a bad request; unauthenticated, so mostly silence, §2.21.1).
        (
            RespSaInitReq,
            Empty(pt::SA),
            Dropped,
            "§3.3 SA needs a proposal",
        ),
        (RespSaInitReq, Empty(pt::KE), Dropped, "§3.4 KE header"),
        (
            RespSaInitReq,
            Empty(pt::NONCE),
            Dropped,
            "§3.9 nonce 16..256 bytes",
        ),
        (
            RespSaInitReq,
            PayloadLenBeyond,
            Dropped,
            "§3.2 length within message",
        ),
        (
            RespSaInitReq,
            GenericLenShort,
            Dropped,
            "§3.2 length includes header",
        ),
        (RespSaInitReq, GenericLenOff, Dropped, "§3.2 chain adds up"),
        (RespSaInitReq, MessageLen, Dropped, "§3.1 Length = datagram"),
        (
            RespSaInitReq,
            WrongKeGroup,
            n(KE),
            "§1.2 INVALID_KE_PAYLOAD",
        ),
        // --- Responder, IKE_AUTH request: the cells exchange.rs leaves open.
        (RespAuthReq, Empty(pt::AUTH), Dropped, "§3.8 AUTH header"),
        (RespAuthReq, Empty(pt::TSI), Dropped, "§3.13 TS header"),
        (
            RespAuthReq,
            UnknownCritical,
            n(UCP),
            "§2.5 MUST answer UNSUPPORTED_CRITICAL_PAYLOAD",
        ),
        (
            RespAuthReq,
            UnknownNonCritical,
            Works,
            "§2.5 skip non-critical",
        ),
        (RespAuthReq, PayloadLenBeyond, Dropped, "§3.2"),
        (RespAuthReq, GenericLenShort, Dropped, "§3.2"),
        (RespAuthReq, GenericLenOff, Dropped, "§3.2"),
        (RespAuthReq, MessageLen, Dropped, "§3.1"),
        // --- Initiator, IKE_SA_INIT response (unprotected: anyone could have sent it,
        // so a bad one is dropped and the genuine one still awaited, §2.21.1 / §2.4).
        (InitSaInitResp, Missing(pt::SA), Dropped, "§1.2 SA required"),
        (InitSaInitResp, Missing(pt::KE), Dropped, "§1.2 KE required"),
        (
            InitSaInitResp,
            Missing(pt::NONCE),
            Dropped,
            "§1.2 Nr required",
        ),
        (
            InitSaInitResp,
            Empty(pt::SA),
            Dropped,
            "§3.3 SA needs a proposal",
        ),
        (InitSaInitResp, Empty(pt::KE), Dropped, "§3.4 KE header"),
        (
            InitSaInitResp,
            Empty(pt::NONCE),
            Dropped,
            "§3.9 nonce 16..256 bytes",
        ),
        (InitSaInitResp, Duplicated(pt::SA), Dropped, "§1.2 one SA"),
        (InitSaInitResp, Duplicated(pt::KE), Dropped, "§1.2 one KE"),
        (
            InitSaInitResp,
            Duplicated(pt::NONCE),
            Dropped,
            "§1.2 one Nr",
        ),
        (
            InitSaInitResp,
            UnknownCritical,
            Dropped,
            "§2.5 reject; no answer to a response",
        ),
        (
            InitSaInitResp,
            UnknownNonCritical,
            Works,
            "§2.5 skip non-critical",
        ),
        (
            InitSaInitResp,
            PayloadLenBeyond,
            Dropped,
            "§3.2 length within message",
        ),
        (
            InitSaInitResp,
            GenericLenShort,
            Dropped,
            "§3.2 length includes header",
        ),
        (InitSaInitResp, GenericLenOff, Dropped, "§3.2 chain adds up"),
        (
            InitSaInitResp,
            MessageLen,
            Dropped,
            "§3.1 Length = datagram",
        ),
        (
            InitSaInitResp,
            WrongKeGroup,
            Dropped,
            "§1.2 KE group = chosen group",
        ),
        // --- Initiator, IKE_AUTH response (protected: a malformed authenticated
        // response ends the attempt, never with an SA, §2.21.2).
        (InitAuthResp, Missing(pt::IDR), Failed, "§1.2 IDr required"),
        (
            InitAuthResp,
            Missing(pt::AUTH),
            Failed,
            "§1.2 AUTH required",
        ),
        (InitAuthResp, Missing(pt::SA), Failed, "§1.2 SAr2 required"),
        (InitAuthResp, Missing(pt::TSI), Failed, "§1.2 TSi required"),
        (InitAuthResp, Missing(pt::TSR), Failed, "§1.2 TSr required"),
        (InitAuthResp, Empty(pt::AUTH), Dropped, "§3.8 AUTH header"),
        (InitAuthResp, Empty(pt::TSI), Dropped, "§3.13 TS header"),
        (InitAuthResp, Empty(pt::IDR), Dropped, "§3.5 ID header"),
        (InitAuthResp, Duplicated(pt::IDR), Failed, "§1.2 one IDr"),
        (InitAuthResp, Duplicated(pt::TSR), Failed, "§1.2 one TSr"),
        (InitAuthResp, Duplicated(pt::AUTH), Failed, "§1.2 one AUTH"),
        (InitAuthResp, Duplicated(pt::SA), Failed, "§1.2 one SA"),
        (InitAuthResp, UnknownCritical, Dropped, "§2.5 reject"),
        (
            InitAuthResp,
            UnknownNonCritical,
            Works,
            "§2.5 skip non-critical",
        ),
        (InitAuthResp, PayloadLenBeyond, Dropped, "§3.2"),
        (InitAuthResp, GenericLenShort, Dropped, "§3.2"),
        (InitAuthResp, GenericLenOff, Dropped, "§3.2"),
        (InitAuthResp, MessageLen, Dropped, "§3.1"),
        // --- Responder, CREATE_CHILD_SA new Child SA (with PFS: SA, Ni, KEi, TSi, TSr).
        (
            NewChildReq,
            Missing(pt::SA),
            n(SYNTAX),
            "§1.3.1 SA required",
        ),
        (
            NewChildReq,
            Missing(pt::NONCE),
            n(SYNTAX),
            "§1.3.1 Ni required",
        ),
        (
            NewChildReq,
            Missing(pt::TSI),
            n(SYNTAX),
            "§1.3.1 TSi required",
        ),
        (
            NewChildReq,
            Missing(pt::TSR),
            n(SYNTAX),
            "§1.3.1 TSr required",
        ),
        // Every proposal offered names a group and no KE came: the request is malformed
        // (INVALID_KE_PAYLOAD is for a KE of another group, below).
        (
            NewChildReq,
            Missing(pt::KE),
            n(SYNTAX),
            "§1.3.1 KEi with a PFS proposal, §3.10.1",
        ),
        (NewChildReq, Empty(pt::SA), Dropped, "§3.3"),
        (
            NewChildReq,
            Empty(pt::NONCE),
            n(SYNTAX),
            "§3.9 nonce 16..256 bytes, §3.10.1",
        ),
        (NewChildReq, Empty(pt::KE), Dropped, "§3.4 KE header"),
        (NewChildReq, Empty(pt::TSI), Dropped, "§3.13 TS header"),
        (NewChildReq, Duplicated(pt::KE), n(SYNTAX), "§1.3.1 one KEi"),
        (
            NewChildReq,
            Duplicated(pt::TSR),
            n(SYNTAX),
            "§1.3.1 one TSr",
        ),
        (NewChildReq, Duplicated(pt::SA), n(SYNTAX), "§1.3.1 one SA"),
        (
            NewChildReq,
            Duplicated(pt::NONCE),
            n(SYNTAX),
            "§1.3.1 one Ni",
        ),
        (
            NewChildReq,
            UnknownCritical,
            n(UCP),
            "§2.5 MUST answer UNSUPPORTED_CRITICAL_PAYLOAD",
        ),
        (
            NewChildReq,
            UnknownNonCritical,
            Works,
            "§2.5 skip non-critical",
        ),
        (NewChildReq, PayloadLenBeyond, Dropped, "§3.2"),
        (NewChildReq, GenericLenShort, Dropped, "§3.2"),
        (NewChildReq, GenericLenOff, Dropped, "§3.2"),
        (NewChildReq, MessageLen, Dropped, "§3.1"),
        (NewChildReq, WrongKeGroup, n(KE), "§1.3 INVALID_KE_PAYLOAD"),
        // --- Requester, CREATE_CHILD_SA new Child SA response.
        (NewChildResp, Missing(pt::SA), Failed, "§1.3.1 SA required"),
        (
            NewChildResp,
            Missing(pt::NONCE),
            Failed,
            "§1.3.1 Nr required",
        ),
        (NewChildResp, Missing(pt::KE), Failed, "§1.3.1 KEr with PFS"),
        (
            NewChildResp,
            Missing(pt::TSI),
            Failed,
            "§1.3.1 TSi required",
        ),
        (NewChildResp, Duplicated(pt::NONCE), Failed, "§1.3.1 one Nr"),
        (
            NewChildResp,
            Empty(pt::NONCE),
            Failed,
            "§3.9 nonce 16..256 bytes",
        ),
        (
            NewChildResp,
            Missing(pt::TSR),
            Failed,
            "§1.3.1 TSr required",
        ),
        (NewChildResp, Duplicated(pt::SA), Failed, "§1.3.1 one SA"),
        (NewChildResp, Duplicated(pt::KE), Failed, "§1.3.1 one KEr"),
        (NewChildResp, Empty(pt::SA), Dropped, "§3.3"),
        (NewChildResp, GenericLenShort, Dropped, "§3.2"),
        (NewChildResp, UnknownCritical, Dropped, "§2.5 reject"),
        (
            NewChildResp,
            UnknownNonCritical,
            Works,
            "§2.5 skip non-critical",
        ),
        (NewChildResp, PayloadLenBeyond, Dropped, "§3.2"),
        (NewChildResp, GenericLenOff, Dropped, "§3.2"),
        (NewChildResp, MessageLen, Dropped, "§3.1"),
        (
            NewChildResp,
            WrongKeGroup,
            Failed,
            "§1.3 KEr of the chosen group",
        ),
        // --- CREATE_CHILD_SA rekeying the Child SA (REKEY_SA notify, §1.3.3).
        (
            RekeyChildReq,
            Missing(pt::SA),
            n(SYNTAX),
            "§1.3.3 SA required",
        ),
        (
            RekeyChildReq,
            Missing(pt::NONCE),
            n(SYNTAX),
            "§1.3.3 Ni required",
        ),
        // Observed and kept: two identical REKEY_SA notifications name one pair, which is
        // unambiguous; the rekey goes ahead.
        (
            RekeyChildReq,
            Duplicated(pt::NOTIFY),
            Works,
            "§1.3.3 REKEY_SA names the pair",
        ),
        (RekeyChildReq, UnknownCritical, n(UCP), "§2.5"),
        (RekeyChildReq, UnknownNonCritical, Works, "§2.5"),
        (RekeyChildReq, GenericLenShort, Dropped, "§3.2"),
        (
            RekeyChildReq,
            WrongKeGroup,
            n(KE),
            "§1.3 INVALID_KE_PAYLOAD",
        ),
        (
            RekeyChildReq,
            Missing(pt::TSI),
            n(SYNTAX),
            "§1.3.3 TSi required",
        ),
        (
            RekeyChildReq,
            Missing(pt::KE),
            n(SYNTAX),
            "§1.3.3 KEi with a PFS proposal",
        ),
        (RekeyChildReq, Empty(pt::SA), Dropped, "§3.3"),
        (
            RekeyChildReq,
            Empty(pt::NOTIFY),
            Dropped,
            "§3.10 Notify header",
        ),
        (
            RekeyChildReq,
            Duplicated(pt::SA),
            n(SYNTAX),
            "§1.3.3 one SA",
        ),
        (
            RekeyChildReq,
            Duplicated(pt::KE),
            n(SYNTAX),
            "§1.3.3 one KEi",
        ),
        (RekeyChildReq, PayloadLenBeyond, Dropped, "§3.2"),
        (RekeyChildReq, GenericLenOff, Dropped, "§3.2"),
        (RekeyChildReq, MessageLen, Dropped, "§3.1"),
        (RekeyChildResp, Missing(pt::SA), Failed, "§1.3.3"),
        (RekeyChildResp, Missing(pt::NONCE), Failed, "§1.3.3"),
        (
            RekeyChildResp,
            Missing(pt::KE),
            Failed,
            "§1.3.3 KEr with PFS",
        ),
        (RekeyChildResp, Duplicated(pt::SA), Failed, "§1.3.3 one SA"),
        (RekeyChildResp, Empty(pt::SA), Dropped, "§3.3"),
        (RekeyChildResp, PayloadLenBeyond, Dropped, "§3.2"),
        (RekeyChildResp, MessageLen, Dropped, "§3.1"),
        (RekeyChildResp, UnknownCritical, Dropped, "§2.5 reject"),
        (RekeyChildResp, UnknownNonCritical, Works, "§2.5"),
        (RekeyChildResp, WrongKeGroup, Failed, "§1.3"),
        // --- CREATE_CHILD_SA rekeying the IKE SA (SA, Ni, KEi; §1.3.2).
        (
            RekeyIkeReq,
            Missing(pt::KE),
            n(SYNTAX),
            "§1.3.2 KEi required",
        ),
        (
            RekeyIkeReq,
            Missing(pt::NONCE),
            n(SYNTAX),
            "§1.3.2 Ni required",
        ),
        (RekeyIkeReq, Duplicated(pt::KE), n(SYNTAX), "§1.3.2 one KEi"),
        (RekeyIkeReq, Empty(pt::KE), Dropped, "§3.4"),
        (
            RekeyIkeReq,
            Missing(pt::SA),
            n(SYNTAX),
            "§1.3.2 SA required",
        ),
        (RekeyIkeReq, Duplicated(pt::SA), n(SYNTAX), "§1.3.2 one SA"),
        (
            RekeyIkeReq,
            Duplicated(pt::NONCE),
            n(SYNTAX),
            "§1.3.2 one Ni",
        ),
        (
            RekeyIkeReq,
            Empty(pt::NONCE),
            n(SYNTAX),
            "§3.9 nonce 16..256 bytes",
        ),
        (RekeyIkeReq, GenericLenShort, Dropped, "§3.2"),
        (RekeyIkeReq, GenericLenOff, Dropped, "§3.2"),
        (RekeyIkeReq, UnknownCritical, n(UCP), "§2.5"),
        (RekeyIkeReq, UnknownNonCritical, Works, "§2.5"),
        (RekeyIkeReq, PayloadLenBeyond, Dropped, "§3.2"),
        (RekeyIkeReq, MessageLen, Dropped, "§3.1"),
        (
            RekeyIkeReq,
            WrongKeGroup,
            n(KE),
            "§1.3 / §1.2 INVALID_KE_PAYLOAD",
        ),
        (RekeyIkeResp, Missing(pt::KE), Failed, "§1.3.2 KEr required"),
        (RekeyIkeResp, Missing(pt::SA), Failed, "§1.3.2 SA required"),
        (RekeyIkeResp, Duplicated(pt::NONCE), Failed, "§1.3.2 one Nr"),
        (
            RekeyIkeResp,
            Missing(pt::NONCE),
            Failed,
            "§1.3.2 Nr required",
        ),
        (RekeyIkeResp, Duplicated(pt::KE), Failed, "§1.3.2 one KEr"),
        (RekeyIkeResp, Empty(pt::KE), Dropped, "§3.4"),
        (RekeyIkeResp, PayloadLenBeyond, Dropped, "§3.2"),
        (RekeyIkeResp, GenericLenShort, Dropped, "§3.2"),
        (RekeyIkeResp, MessageLen, Dropped, "§3.1"),
        (RekeyIkeResp, UnknownCritical, Dropped, "§2.5 reject"),
        (RekeyIkeResp, UnknownNonCritical, Works, "§2.5"),
        (
            RekeyIkeResp,
            WrongKeGroup,
            Failed,
            "§1.3.2 KEr of the chosen group",
        ),
        // --- INFORMATIONAL delete (§1.4.1).
        (
            DeleteReq,
            Missing(pt::DELETE),
            Ignored,
            "§1.4 an empty INFORMATIONAL is liveness",
        ),
        (DeleteReq, Empty(pt::DELETE), Dropped, "§3.11 Delete header"),
        (
            DeleteReq,
            Duplicated(pt::DELETE),
            Works,
            "§1.4.1 deleting twice deletes once",
        ),
        (DeleteReq, UnknownCritical, n(UCP), "§2.5"),
        (DeleteReq, UnknownNonCritical, Works, "§2.5"),
        (DeleteReq, PayloadLenBeyond, Dropped, "§3.2"),
        (DeleteReq, GenericLenShort, Dropped, "§3.2"),
        (DeleteReq, MessageLen, Dropped, "§3.1"),
        // An answer without Delete payloads is legitimate when the peer deleted the pair
        // first (simultaneous deletes): the pair is gone once the request is answered.
        (
            DeleteResp,
            Missing(pt::DELETE),
            Works,
            "§1.4.1 empty answer",
        ),
        (DeleteResp, Duplicated(pt::DELETE), Works, "§1.4.1"),
        (DeleteResp, PayloadLenBeyond, Dropped, "§3.2"),
        (DeleteResp, GenericLenShort, Dropped, "§3.2"),
        (DeleteResp, Empty(pt::DELETE), Dropped, "§3.11"),
        (DeleteResp, UnknownCritical, Dropped, "§2.5 reject"),
        (DeleteResp, UnknownNonCritical, Works, "§2.5"),
        (DeleteResp, MessageLen, Dropped, "§3.1"),
        // --- INFORMATIONAL liveness (empty, §2.4).
        (LivenessReq, UnknownCritical, n(UCP), "§2.5"),
        (LivenessReq, UnknownNonCritical, Works, "§2.5"),
        (LivenessReq, MessageLen, Dropped, "§3.1"),
        (LivenessResp, UnknownCritical, Dropped, "§2.5 reject"),
        (LivenessResp, UnknownNonCritical, Works, "§2.5"),
        (LivenessResp, MessageLen, Dropped, "§3.1"),
    ]
}

#[test]
fn every_exchange_and_role_rejects_bad_payloads_per_rfc() {
    let mut wrong = Vec::new();
    for (s, m, want, rule) in rows() {
        let got = run(s, m);
        if got != want {
            wrong.push(format!("{s:?} {m:?} ({rule}): want {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// After an UNSUPPORTED_CRITICAL_PAYLOAD answer (RFC 7296 §2.5) the request counts as
/// answered: its retransmission gets the same answer from the cache, the requester's
/// exchange fails without a Child SA, and the next request on the IKE SA works.
#[test]
fn unsupported_critical_answer_is_a_complete_exchange() {
    let (ci, cr) = configs(GCM, Group::Curve25519, pfs_child());
    let run = handshake(ci, cr, 0x78);
    let (mut init, mut resp) = (run.init, run.resp);
    let (to_r, _) = ciphers(&init);
    let (mut ri, mut rr) = (TestRng(41), TestRng(42));
    let req = request(NewChildReq, &mut init, &mut ri);
    let crit = edit_sealed(&req, &to_r, UnknownCritical);
    let first = resp.handle(&crit, &mut rr).unwrap().reply.unwrap();
    let again = resp.handle(&crit, &mut rr).unwrap().reply.unwrap();
    assert_eq!(first, again);
    let out = init.handle(&first, &mut ri).unwrap();
    assert_eq!(
        out.event,
        Some(Event::ChildFailed(ike::sa::IkeError::PeerNotify(UCP)))
    );
    assert_eq!((init.children().count(), resp.children().count()), (1, 1));
    let req = request(NewChildReq, &mut init, &mut ri);
    let out = resp.handle(&req, &mut rr).unwrap();
    assert!(works(NewChildReq, out.event));
    let out = init.handle(&out.reply.unwrap(), &mut ri).unwrap();
    assert!(works(NewChildResp, out.event));
}
