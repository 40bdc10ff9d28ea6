//! Child SA transforms as IPsec policy decides them (Solaris: the Child SA algorithms come
//! from the IPsec policy, not from the IKE configuration).
//!
//! * An initiator offers every suite of [`IkeConfig::child_suites`], one ESP proposal each,
//!   in order (numbered from 1), and accepts the responder's choice of any of them.
//! * A responder takes the first of the peer's proposals, in the peer's order, that offers
//!   one of the suites it accepts: [`IkeConfig::child_suites`], or for one exchange the
//!   list the caller set from its policy ([`Established::set_child_policy`],
//!   `ExpectAuthReq::set_child_policy`). An empty list accepts nothing
//!   (NO_PROPOSAL_CHOSEN).
//! * Before handling a request, the caller can see which Child SA it asks for
//!   ([`PeerChildRequest`]: the selectors narrowed to ours, the mode, the pair rekeyed), to
//!   ask its policy (PF_KEY X_INVERSE_ACQUIRE) and to reserve an inbound SPI.

use crate::consts::{exchange, notify, payload as pt, protocol, transform};
use crate::dh::Group;
use crate::ts;
use crate::wire::{Payload, Proposal, TrafficSelector};

use super::{
    esp_proposal, has_notify, offers, plain, selectors, ChildSuite, Established, IkeConfig,
};

impl IkeConfig {
    /// The Child SA suites in order of preference: `child`, then `child_more` (repeats
    /// dropped).
    #[must_use]
    pub fn child_suites(&self) -> Vec<ChildSuite> {
        let mut v = vec![self.child];
        for s in &self.child_more {
            if !v.contains(s) {
                v.push(*s);
            }
        }
        v
    }
}

/// The Child SA a peer's request (IKE_AUTH or CREATE_CHILD_SA) would make, seen before
/// it is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerChildRequest {
    /// Our side's traffic selectors, narrowed to our configuration.
    pub ts_local: Vec<TrafficSelector>,
    /// The peer's side's traffic selectors, narrowed.
    pub ts_remote: Vec<TrafficSelector>,
    /// Transport mode (the peer asked and our configuration allows it).
    pub transport: bool,
    /// Our inbound SPI of the pair the request rekeys, if it is a rekey.
    pub rekey: Option<[u8; 4]>,
}

/// The proposals for `suites`, numbered from 1, with `spi`; with the key exchange
/// transform of `dh` (CREATE_CHILD_SA with PFS).
pub(super) fn child_proposals<'a>(
    suites: &[ChildSuite],
    spi: &'a [u8],
    dh: Option<Group>,
) -> Vec<Proposal<'a>> {
    suites
        .iter()
        .zip(1u8..)
        .map(|(s, num)| {
            let mut p = esp_proposal(s, spi, num);
            if let Some(g) = dh {
                p.transforms.push(plain(transform::DH, g.id()));
            }
            p
        })
        .collect()
}

/// The responder's choice: the first of the peer's ESP proposals (in its order) with a
/// 4-byte SPI that offers one of `allowed` (in our order), and that suite.
pub(super) fn choose_child<'p, 'a>(
    props: &'p [Proposal<'a>],
    allowed: &[ChildSuite],
    dh: Option<Group>,
) -> Option<(&'p Proposal<'a>, ChildSuite)> {
    props
        .iter()
        .filter(|p| p.protocol == protocol::ESP && p.spi.len() == 4)
        .find_map(|p| {
            allowed.iter().find_map(|s| {
                let w = child_proposals(core::slice::from_ref(s), &[], dh);
                w.first()
                    .filter(|w| offers(p, &w.transforms))
                    .map(|_| (p, *s))
            })
        })
}

/// The suites a responder may accept for one request: the policy's answer, or without
/// one the configuration's (none when [`IkeConfig::child_policy_required`]).
pub(super) fn allowed_suites(cfg: &IkeConfig, policy: Option<Vec<ChildSuite>>) -> Vec<ChildSuite> {
    match policy {
        Some(v) => v,
        None if cfg.child_policy_required => Vec::new(),
        None => cfg.child_suites(),
    }
}

/// What a decrypted request asks for, if it makes a Child SA (`rekey`: our inbound SPI of
/// the pair it replaces).
pub(super) fn peer_child_request(
    cfg: &IkeConfig,
    inner: &[Payload<'_>],
    rekey: Option<[u8; 4]>,
) -> Option<PeerChildRequest> {
    let (tsi, tsr) = selectors(inner).ok()?;
    Some(PeerChildRequest {
        ts_remote: ts::narrow(tsi, &cfg.ts_remote),
        ts_local: ts::narrow(tsr, &cfg.ts_local),
        transport: cfg.child.transport && has_notify(inner, notify::USE_TRANSPORT_MODE),
        rekey,
    })
}

impl Established {
    /// The suites the peer's next Child SA request may use, for that request only (what
    /// the IPsec policy allows for its selectors); empty: none (NO_PROPOSAL_CHOSEN).
    /// Without it the configuration's [`IkeConfig::child_suites`] apply.
    pub fn set_child_policy(&mut self, allowed: Vec<ChildSuite>) {
        self.child_policy = Some(allowed);
    }

    /// The suites offered by our next CREATE_CHILD_SA requests (a new ACQUIRE's
    /// proposal), in order; ignored when empty.
    pub fn set_child_offer(&mut self, suites: &[ChildSuite]) {
        if let Some((first, rest)) = suites.split_first() {
            self.cfg.child = *first;
            self.cfg.child_more = rest.to_vec();
        }
    }

    /// The Child SA that `datagram` asks for, if it is the peer's next request and a
    /// CREATE_CHILD_SA for a new or rekeyed Child SA (not an IKE SA rekey, not a
    /// retransmission we answer from the cache). Changes nothing.
    #[must_use]
    pub fn child_request(&self, datagram: &[u8]) -> Option<PeerChildRequest> {
        if self.closed
            || self
                .cached
                .as_ref()
                .is_some_and(|(req, _)| req.as_slice() == datagram)
        {
            return None;
        }
        let mut plain = zeroize::Zeroizing::new(Vec::new());
        // A fragment shows the request only if it completes it (RFC 7383).
        let id = u32::try_from(self.expect_request_id).ok()?;
        let (h, inner) = self
            .frag
            .peek(&self.ciphers.inp, datagram, &mut plain, id)?;
        if h.is_response()
            || h.exchange != exchange::CREATE_CHILD_SA
            || h.spi_i != self.spi_i
            || h.spi_r != self.spi_r
            || u64::from(h.message_id) != self.expect_request_id
        {
            return None;
        }
        // Any SA payload that is not an IKE SA rekey (no IKE proposal, as `handle`
        // decides) asks for a Child SA, whatever else its proposals name.
        let child = matches!(inner.iter().find(|p| p.ty() == pt::SA),
            Some(Payload::Sa(props)) if !props.iter().any(|p| p.protocol == protocol::IKE));
        if !child {
            return None;
        }
        let rekey = inner.iter().find_map(|p| match p {
            Payload::Notify(n) if n.ty == notify::REKEY_SA => self
                .children
                .iter()
                .find(|c| c.outbound() == n.spi)
                .map(super::Child::inbound),
            _ => None,
        });
        peer_child_request(&self.cfg, &inner, rekey)
    }
}
