//! More than one IKE SA proposal per configuration (RFC 7296 §2.7, §3.3.6) and the
//! group guess that goes with it (§1.2): the initiator offers its proposals in order of
//! preference with a KE payload for the first one's group; the responder takes the
//! first of the initiator's proposals that it accepts and, when the KE payload is of
//! another group, answers INVALID_KE_PAYLOAD naming the group it wants; the initiator
//! then sends IKE_SA_INIT again, once, with a key share in that group (keeping its SPI,
//! nonce and any cookie).
//!
//! The chosen proposal becomes the SA's configuration ([`IkeConfig::with_proposal`]):
//! keys, ciphers and later rekeys use it.

use super::*;

/// One IKE SA proposal: SK payload protection, PRF and key exchange group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IkeProposal {
    /// SK payload protection.
    pub suite: SkSuite,
    /// PRF.
    pub prf: PrfAlg,
    /// Key exchange group.
    pub group: Group,
}

impl IkeConfig {
    /// Our IKE proposals in order of preference: the configuration's own suite, PRF and
    /// group, then [`IkeConfig::more_proposals`].
    #[must_use]
    pub fn ike_proposals(&self) -> Vec<IkeProposal> {
        let mut v = vec![IkeProposal {
            suite: self.suite,
            prf: self.prf,
            group: self.group,
        }];
        v.extend(self.more_proposals.iter().copied());
        v
    }

    /// This configuration with `p` as its suite, PRF and group (the values negotiated).
    #[must_use]
    pub fn with_proposal(&self, p: IkeProposal) -> Self {
        Self {
            suite: p.suite,
            prf: p.prf,
            group: p.group,
            ..self.clone()
        }
    }
}

/// The IKE proposal numbered `num` for `p`, with `spi` (empty in IKE_SA_INIT).
pub(super) fn proposal_of<'a>(p: &IkeProposal, num: u8, spi: &'a [u8]) -> Proposal<'a> {
    let mut t = vec![encr_transform(p.suite.encr, p.suite.key_bits)];
    t.push(plain(transform::PRF, p.prf.id()));
    if let Some(i) = p.suite.integ {
        t.push(plain(transform::INTEG, i));
    }
    t.push(plain(transform::DH, p.group.id()));
    Proposal {
        num,
        protocol: protocol::IKE,
        spi,
        transforms: t,
    }
}

/// The SA payload of our IKE_SA_INIT request: every proposal, numbered from 1.
pub(super) fn offered(cfg: &IkeConfig) -> Vec<Proposal<'static>> {
    cfg.ike_proposals()
        .iter()
        .zip(1u8..)
        .map(|(p, n)| proposal_of(p, n, &[]))
        .collect()
}

/// Responder: the first of the initiator's `props` (in its order) that one of our
/// proposals matches, with that proposal of ours; among ours that match it, one of the
/// KE payload's group `ke_group` is preferred (no extra round trip).
pub(super) fn choose(
    cfg: &IkeConfig,
    props: &[Proposal<'_>],
    ke_group: u16,
) -> Option<(u8, IkeProposal)> {
    let ours = cfg.ike_proposals();
    props
        .iter()
        .filter(|p| p.protocol == protocol::IKE && p.spi.is_empty())
        .find_map(|p| {
            let fits: Vec<IkeProposal> = ours
                .iter()
                .copied()
                .filter(|q| offers(p, &proposal_of(q, 1, &[]).transforms))
                .collect();
            let best = fits
                .iter()
                .find(|q| q.group.id() == ke_group)
                .or_else(|| fits.first())?;
            Some((p.num, *best))
        })
}

/// Initiator: which of our proposals the responder's single answer `p` is.
pub(super) fn answered(cfg: &IkeConfig, p: &Proposal<'_>) -> Option<IkeProposal> {
    cfg.ike_proposals()
        .into_iter()
        .zip(1u8..)
        .find(|(q, n)| p.num == *n && chosen_is(p, &proposal_of(q, *n, &[])))
        .map(|(q, _)| q)
}
