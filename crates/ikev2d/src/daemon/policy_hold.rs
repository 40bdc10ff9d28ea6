//! The responder's side of Child SA algorithms from policy (see [`crate::policy`]): a
//! peer's request that makes a Child SA (IKE_AUTH, CREATE_CHILD_SA new or rekey) is held
//! until ipsecd has answered two PF_KEY questions, then handled:
//!
//! ```text
//!   peer request ─► child_request (selectors) ─► X_INVERSE_ACQUIRE ──► ipsecd SPD
//!                                             └► GETSPI (no SPI reserved) ─► larval SA
//!   held: the request and whatever follows it
//!   X_INVERSE_ACQUIRE reply ─► policy_answer ─┐ (and the GETSPI answer) ─► handle held:
//!        set_child_policy(suites) or, without policy (ENOENT), the rule's transforms;
//!        any other answer: none (NO_PROPOSAL_CHOSEN)
//!        the reserved SPI is the new inbound SPI; install() keys it with UPDATE
//! ```

use std::net::SocketAddr;

use ike::consts::exchange;
use ike::sa::{ChildSuite, Path};
use ipsec_pfkey::Message;

use super::{Daemon, Phase};
use crate::log;
use crate::policy::{inverse_acquire_message, PolicyAnswer};

/// Hands the policy's answer to the state about to handle the held request.
pub(super) fn apply(phase: &mut Phase, answer: Option<Vec<ChildSuite>>) {
    let Some(allowed) = answer else {
        return; // no policy for these selectors: the rule's transforms
    };
    match phase {
        Phase::HalfOpen(s) => s.set_child_policy(allowed),
        Phase::Up(e) => e.set_child_policy(allowed),
        Phase::Init(_) | Phase::Auth(_) => {}
    }
}

impl Daemon {
    /// Whether `msg` for SA `i` is held: it (or an earlier held message) is a Child SA
    /// request of the peer waiting for the policy's answer or for an SPI.
    pub(super) fn hold_for_policy(&mut self, i: usize, msg: &[u8], path: Path, natt: bool) -> bool {
        let sa = &self.sas[i];
        if sa.inverse.is_some() || (sa.policy_answer.is_some() && sa.getspi.is_some()) {
            if self.sas[i].held.len() < 8 {
                self.sas[i].held.push((msg.to_vec(), path, natt));
            }
            return true;
        }
        if sa.policy_answer.is_some() || self.pf.is_none() {
            return false;
        }
        // Only requests of the exchanges that make Child SAs are opened to look inside.
        let maybe = ike::wire::Header::parse(msg).is_ok_and(|(h, _, _)| {
            !h.is_response()
                && (h.exchange == exchange::IKE_AUTH || h.exchange == exchange::CREATE_CHILD_SA)
        });
        if !maybe {
            return false;
        }
        let req = match &sa.phase {
            Some(Phase::HalfOpen(s)) => s.child_request(msg),
            Some(Phase::Up(e)) => e.child_request(msg),
            _ => None,
        };
        let Some(req) = req else {
            return false;
        };
        let tunnel = self.config.rules.get(sa.rule).is_some_and(|r| r.tunnel);
        let Some(m) =
            inverse_acquire_message(sa.path.local.ip(), sa.path.remote.ip(), &req, tunnel)
        else {
            // Policy cannot be asked about these selectors as one pair: refused
            // (NO_PROPOSAL_CHOSEN), never keyed with the rule's transforms.
            log::info(format_args!(
                "Child SA request of {}: its traffic selectors cannot be checked against IPsec policy as one pair; refused",
                sa.path.remote
            ));
            self.sas[i].policy_answer = Some(Some(Vec::new()));
            return false;
        };
        let sent = match &mut self.pf {
            Some(p) => p.send(m),
            None => return false,
        };
        match sent {
            Ok(seq) => self.sas[i].inverse = Some(seq),
            Err(e) => {
                log::error(format_args!("PF_KEY X_INVERSE_ACQUIRE: {e}"));
                return false;
            }
        }
        // A new inbound SA: its SPI comes from ipsecd (larval SA, keyed by UPDATE). On an
        // established SA an SPI still reserved from an earlier refused exchange may be
        // near its larval timeout: a fresh one is asked for.
        if matches!(self.sas[i].phase, Some(Phase::Up(_))) {
            if let Some(spi) = self.sas[i].reserved.take() {
                self.drop_larval(spi);
            }
        }
        self.getspi(i);
        self.sas[i].held.push((msg.to_vec(), path, natt));
        true
    }

    /// ipsecd's answer to an X_INVERSE_ACQUIRE: the suites for the held request, then
    /// the held messages go on unless an SPI is still awaited.
    pub(super) fn got_policy(&mut self, m: &Message) {
        let Some(i) = self.sas.iter().position(|s| s.inverse == Some(m.seq)) else {
            return;
        };
        let sa = &self.sas[i];
        let rule = self.config.rules.get(sa.rule);
        let (transport, pfs) = rule.map_or((true, false), |r| (!r.tunnel, r.pfs));
        let peer: SocketAddr = sa.path.remote;
        let answer = PolicyAnswer::of(m, transport, pfs);
        match &answer {
            PolicyAnswer::Allows(v) => log::info(format_args!(
                "IPsec policy for the Child SA with {peer} allows {} suite(s){}",
                v.len(),
                describe(v)
            )),
            PolicyAnswer::NoPolicy => log::info(format_args!(
                "no IPsec policy protects the Child SA with {peer}: the rule's transforms apply"
            )),
            PolicyAnswer::Refused(errno) => log::error(format_args!(
                "X_INVERSE_ACQUIRE for the Child SA with {peer} failed (errno {errno}): refused"
            )),
        }
        // Without a rule (it cannot happen) nothing is allowed.
        let answer = match rule {
            Some(r) => Some(answer.suites(r.child.suite(transport, pfs))),
            None => Some(Vec::new()),
        };
        let sa = &mut self.sas[i];
        sa.inverse = None;
        sa.policy_answer = Some(answer);
        if sa.getspi.is_some() {
            return; // got_spi lets the held messages go
        }
        let held = std::mem::take(&mut sa.held);
        for (msg, path, natt) in held {
            self.datagram(&msg, path, natt);
        }
    }
}

/// ": ENCR/bits+INTEG, ..." for the log (at most four).
fn describe(v: &[ChildSuite]) -> String {
    let s: Vec<String> = v
        .iter()
        .take(4)
        .map(|c| match c.integ {
            Some(i) => format!("{}/{}+{i}", c.encr, c.key_bits),
            None => format!("{}/{}", c.encr, c.key_bits),
        })
        .collect();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {}", s.join(", "))
    }
}
