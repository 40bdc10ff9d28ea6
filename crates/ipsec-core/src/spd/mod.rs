//! The Security Policy Database and policy engine (sans-IO), with Solaris semantics.
//!
//! ```text
//!  ipsecconf file ──parser (ipsec-config)──> PolicySet ──Spd::replace──> CompiledSpd (Arc, swapped whole)
//!  setsockopt(IP_SEC_OPT) ──Spd::set_socket_policy──> per-socket policy ──connect/accept──> latch
//!
//!  packet ──PacketKey::from_ip_packet──> PacketKey ──Spd::outbound──────> Bypass | Drop(reason) | Protect(bundles, mode)
//!                                                  ──Spd::inbound_clear─> Accept | Drop(reason)   (+ InboundProtection)
//!  Engine::inbound ──InboundOk──> Spd::inbound_protected(inner key, sadb) ─> Accept | Drop(reason)
//!  daemon-generated reply ──Spd::reply_outbound(InboundProtection)──> protected like the request, or clear
//!  intra-machine packet ──Spd::loopback──> outbound decision carried to the inbound check, no crypto
//! ```
//!
//! Precedence (illumos ipsecconf.c, spd.c): every rule has priority `0x000fffff - index`
//! (file order) OR'ed with `0x800000` for bypass, `0x400000` when any alternative uses ESP and
//! `0x200000` when any uses AH; per-socket policy has `0x1000000`; the highest priority among
//! matching entries wins. Host SPD: no match means pass. A tunnel SPD with at least one rule:
//! no match means drop. UDP to or from the local IKE port (500) and NAT-T port (4500) is always
//! bypassed for the key manager.
//!
//! Decisions never allocate on the packet path and read no clock; the engine is `Sync`, so
//! data-plane threads can share it (or share [`CompiledSpd`] snapshots) behind a read lock.
//!
//! # Where we follow Solaris, and where we chose
//!
//! * Cleartext ICMP: the IP stack's own ICMP (`key.socket == None`, host SPD) is accepted
//!   without a check while `icmp-accept-clear` is on, as illumos `ip_fanout_v4` does, so a clear
//!   ping is answered in clear. The accept/reject table ([`icmp`]) decides where spd.c uses
//!   `ipsec_inbound_accept_clear()`: cleartext to a latched connection whose policy requires
//!   protection, and a packet missing a required AH, ESP or self-encapsulation. Elsewhere policy
//!   that requires protection drops clear ICMP (`spd_got_clear`), as `ipsec_check_global_policy`
//!   does.
//! * Inbound algorithm checks also enforce the rule's key-length limits (Solaris compares only
//!   algorithm numbers inbound); a named algorithm without a minimum accepts its default size
//!   and up, the minimum ipsecconf.c sends to the kernel.
//! * Intra-machine traffic: the applied outbound alternative must satisfy an inbound alternative
//!   (same protocols, algorithms and key sizes within the inbound ones), where illumos compares
//!   action pointers.
//! * A protected packet for a connection latched without policy is dropped (`spd_got_secure`),
//!   as it would be unlatched; illumos lets it through ("weird null inbound policy").
//! * The key-management bypass looks at the local port only (500 and the NAT-T port, UDP), so a
//!   remote port of 500 cannot smuggle cleartext in.
//! * `persock-require-priv` (Solaris 11.4 name; semantics not documented publicly): an
//!   unprivileged socket may only name algorithms that host policy uses for the same role
//!   (`EPERM` otherwise); "any" is always allowed; bypass always needs privilege.

mod analysis;
mod check;
mod drop;
mod explain;
pub mod fuzz_support;
pub mod icmp;
mod index;
mod key;
pub mod model;
mod naive;
mod priority;
pub mod socket;
mod tunables;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use ipsec_crypto::{AuthAlg, EncrAlg};

pub use analysis::{analyze, AnalysisLimits, Warning};
pub use check::{choose_sas, Applied, SaView};
pub use drop::PolicyDrop;
pub use explain::{ExplainedRule, Explanation};
pub use index::{CompileError, CompiledSpd, PolicyEntry, PolicySource, TunnelNames};
pub use key::{Dir, PacketKey, SocketId, TunnelId};
pub use model::{
    Action, AlgSpec, EspAuth, EspSpec, Family, IcmpRange, KeyLen, Mode, ModelError, Negotiate,
    OldStyle, PolicyDir, PolicySet, PortRange, Prefix, Protection, Rule, SaSharing, Selector,
};
pub use naive::NaiveSpd;
pub use priority::{
    Priority, AH_POLICY_BOOST, BYPASS_POLICY_BOOST, ESP_POLICY_BOOST, INITIAL_BASE_PRIORITY,
    IPSEC_PRIO_SOCKET, MAX_RULES,
};
pub use socket::{IpsecReq, SockOptError, SocketInfo};
pub use tunables::{TunableError, Tunables};

use crate::engine::InboundOk;
use crate::sadb::Sadb;
use model::ulp;
use socket::{Latch, SocketState};

/// Why a decision came out as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Basis {
    /// The policy entry in the decision decided.
    Rule,
    /// No rule matched in the host SPD (or the tunnel has no policy): pass.
    NoPolicy,
    /// The tunnel has policy but no rule matched: drop.
    TunnelNoMatch,
    /// UDP on the local IKE or NAT-T port: always bypassed for the key manager.
    KeyManagement,
    /// `icmp-accept-clear`: ICMP the stack consumes is accepted in clear without a check.
    IcmpAcceptClear,
    /// `igmp-accept-clear`.
    IgmpAcceptClear,
    /// `pim-accept-clear`.
    PimAcceptClear,
    /// The ICMP accept/reject table decided for a receiver that requires protection.
    IcmpTable,
    /// A reply protected like the request that caused it.
    ReplyInherited,
    /// A reply sent in clear because the request came in clear.
    ReplyClear,
    /// An intra-machine packet checked as if its outbound protection had been applied.
    Loopback,
    /// The packet description is unusable.
    Malformed,
}

impl Basis {
    /// A short description.
    pub const fn describe(self) -> &'static str {
        match self {
            Basis::Rule => "matching policy entry",
            Basis::NoPolicy => "no matching policy (host default: pass)",
            Basis::TunnelNoMatch => "tunnel has policy but no entry matches (tunnel default: drop)",
            Basis::KeyManagement => "key management traffic (IKE/NAT-T port) is always bypassed",
            Basis::IcmpAcceptClear => {
                "icmp-accept-clear: ICMP consumed by the IP stack is accepted in clear"
            }
            Basis::IgmpAcceptClear => "igmp-accept-clear: IGMP is accepted in clear",
            Basis::PimAcceptClear => "pim-accept-clear: PIM is accepted in clear",
            Basis::IcmpTable => "ICMP accept-clear table",
            Basis::ReplyInherited => "reply protected like its request",
            Basis::ReplyClear => "reply sent clear because its request was clear",
            Basis::Loopback => "intra-machine traffic checked as if protected",
            Basis::Malformed => "malformed packet description",
        }
    }
}

/// What to do with an outbound packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbound<'a> {
    /// Send in clear.
    Bypass,
    /// Drop.
    Drop(PolicyDrop),
    /// Protect with the first alternative for which SAs can be had (in order).
    Protect {
        /// Acceptable SA bundles, in order of preference.
        bundles: &'a [Protection],
        /// SA mode.
        mode: Mode,
    },
}

/// An outbound decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboundDecision<'a> {
    /// The verdict.
    pub verdict: Outbound<'a>,
    /// Why.
    pub basis: Basis,
    /// The deciding rule or socket policy, if one decided.
    pub policy: Option<&'a PolicyEntry>,
    /// The decision comes from a connection's latched policy.
    pub latched: bool,
}

/// The verdict on an inbound packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// Deliver.
    Accept,
    /// Drop.
    Drop(PolicyDrop),
}

/// How an accepted inbound packet was protected: carried with the packet so that replies the
/// daemon generates for it (ICMP echo reply, TCP RST) are protected exactly like it, or sent
/// clear when it came clear (Solaris `ipsec_in_to_out()` / `IXAF_NO_IPSEC`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundProtection {
    /// Arrived in clear.
    Clear,
    /// Arrived protected by these SAs.
    Protected {
        /// The protection a reply uses: the request's protocols, algorithms and key sizes.
        bundle: Protection,
        /// SA mode.
        mode: Mode,
        /// SPI of the AH SA.
        ah_spi: Option<u32>,
        /// SPI of the ESP SA.
        esp_spi: Option<u32>,
    },
    /// Arrived over loopback with this (virtual) protection.
    Loopback {
        /// The protection applied.
        bundle: Protection,
        /// SA mode.
        mode: Mode,
    },
}

/// An inbound decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboundDecision<'a> {
    /// The verdict.
    pub verdict: Inbound,
    /// Why.
    pub basis: Basis,
    /// The deciding rule or socket policy, if one decided.
    pub policy: Option<&'a PolicyEntry>,
    /// For protected packets: the alternative (`or` branch) that accepted.
    pub alternative: Option<usize>,
    /// The decision comes from a connection's latched policy.
    pub latched: bool,
    /// How the packet was protected (meaningful when accepted).
    pub protection: InboundProtection,
}

/// The two halves of an intra-machine packet's check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopbackDecision<'a> {
    /// The sending side.
    pub outbound: OutboundDecision<'a>,
    /// The receiving side, checked as if the outbound protection had been applied.
    pub inbound: InboundDecision<'a>,
}

impl<'a> OutboundDecision<'a> {
    const fn new(
        verdict: Outbound<'a>,
        basis: Basis,
        policy: Option<&'a PolicyEntry>,
        latched: bool,
    ) -> Self {
        Self {
            verdict,
            basis,
            policy,
            latched,
        }
    }
}

impl<'a> InboundDecision<'a> {
    const fn accept(basis: Basis, policy: Option<&'a PolicyEntry>, latched: bool) -> Self {
        Self {
            verdict: Inbound::Accept,
            basis,
            policy,
            alternative: None,
            latched,
            protection: InboundProtection::Clear,
        }
    }
    const fn drop(
        r: PolicyDrop,
        basis: Basis,
        policy: Option<&'a PolicyEntry>,
        latched: bool,
    ) -> Self {
        Self {
            verdict: Inbound::Drop(r),
            basis,
            policy,
            alternative: None,
            latched,
            protection: InboundProtection::Clear,
        }
    }
}

/// `ipsecconf -Fa` or `-r` (Solaris 11.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplaceScope {
    /// `-Fa file`: flush the host SPD and every tunnel SPD, then add the file: the new policy
    /// is exactly the file.
    All,
    /// `-r file`: replace the host SPD and the SPD of every tunnel the file names; tunnels the
    /// file does not name keep their rules.
    Named,
}

/// How to replace the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplaceOptions {
    /// What is replaced.
    pub scope: ReplaceScope,
    /// Build, validate and diff only; leave the active policy alone.
    pub dry_run: bool,
    /// Work bound for the shadow/overlap analysis.
    pub limits: AnalysisLimits,
}

impl ReplaceOptions {
    /// `-Fa` (or with `dry_run`, its check).
    pub fn all(dry_run: bool) -> Self {
        Self {
            scope: ReplaceScope::All,
            dry_run,
            limits: AnalysisLimits::default(),
        }
    }
    /// `-r`.
    pub fn named(dry_run: bool) -> Self {
        Self {
            scope: ReplaceScope::Named,
            dry_run,
            limits: AnalysisLimits::default(),
        }
    }
}

/// Rules added and removed by a replacement, compared per SPD as multisets (the source line is
/// ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyDiff {
    /// Indexes (in the new policy) of rules the old policy did not have.
    pub added: Vec<usize>,
    /// Indexes (in the old policy) of rules the new policy does not have.
    pub removed: Vec<usize>,
    /// Rules present in both.
    pub kept: usize,
    /// The kept rules are in a different relative order (their priorities change).
    pub reordered: bool,
}

/// What a replacement did (or, in a dry run, would do).
#[derive(Clone, Debug)]
pub struct ReplaceReport {
    /// The new policy is active.
    pub applied: bool,
    /// The new policy (applied or not).
    pub policy: Arc<PolicySet>,
    /// Compared with the active policy before the call.
    pub diff: PolicyDiff,
    /// Load-time warnings about the new policy.
    pub warnings: Vec<Warning>,
    /// Generation of the active policy after the call.
    pub generation: u64,
}

/// The policy engine: the compiled host and tunnel SPDs, the sockets and their policies,
/// and the tunables.
#[derive(Debug)]
pub struct Spd {
    compiled: Arc<CompiledSpd>,
    names: TunnelNames,
    sockets: HashMap<SocketId, SocketState>,
    tunables: Tunables,
    generation: u64,
}

impl Default for Spd {
    fn default() -> Self {
        Self::new()
    }
}

fn fam(key: &PacketKey) -> Family {
    Family::of(key.src)
}

impl Spd {
    /// An engine with no policy and Solaris default tunables.
    pub fn new() -> Self {
        Self {
            compiled: Arc::new(CompiledSpd::empty()),
            names: TunnelNames::default(),
            sockets: HashMap::new(),
            tunables: Tunables::default(),
            generation: 0,
        }
    }

    /// An engine with `set` loaded.
    pub fn with_policy(set: PolicySet) -> Result<Self, CompileError> {
        let mut s = Self::new();
        s.replace(set, ReplaceOptions::all(false))?;
        Ok(s)
    }

    /// The tunables.
    pub fn tunables(&self) -> &Tunables {
        &self.tunables
    }
    /// The tunables, to change.
    pub fn tunables_mut(&mut self) -> &mut Tunables {
        &mut self.tunables
    }
    /// The number packets use for tunnel `name` (allocated on first use).
    pub fn tunnel_id(&mut self, name: &str) -> TunnelId {
        self.names.id(name)
    }
    /// The name of a tunnel number.
    pub fn tunnel_name(&self, id: TunnelId) -> Option<&str> {
        self.names.name(id)
    }
    /// The tunnel numbering.
    pub fn tunnel_names(&self) -> &TunnelNames {
        &self.names
    }
    /// The active compiled policy (share it with data-plane threads).
    pub fn snapshot(&self) -> Arc<CompiledSpd> {
        Arc::clone(&self.compiled)
    }
    /// The active policy.
    pub fn policy(&self) -> &PolicySet {
        self.compiled.policy()
    }
    /// Incremented by every policy change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn is_key_mgmt(&self, key: &PacketKey) -> bool {
        key.tunnel.is_none()
            && key.proto == ulp::UDP
            && key
                .lport()
                .is_some_and(|p| p == self.tunables.ike_port || p == self.tunables.natt_port)
    }

    fn latch_of(&self, key: &PacketKey) -> Option<&Arc<Latch>> {
        if key.tunnel.is_some() {
            return None;
        }
        key.socket
            .and_then(|s| self.sockets.get(&s))
            .and_then(|s| s.latch.as_ref())
    }

    /// The deciding policy entry for `key`, ignoring latches and the key-management bypass:
    /// the socket's own policy when it has one for the packet's family (priority 0x1000000
    /// beats every rule), else the best rule of the packet's SPD.
    pub fn select(&self, key: &PacketKey) -> Option<&Arc<PolicyEntry>> {
        if key.tunnel.is_none() {
            if let Some(p) = key
                .socket
                .and_then(|s| self.sockets.get(&s))
                .and_then(|s| s.policy_for(fam(key)))
            {
                return Some(p);
            }
        }
        self.compiled.lookup(key)
    }

    fn tunnel_has_rules(&self, key: &PacketKey) -> bool {
        key.tunnel.is_some() && self.compiled.head_rules(key.tunnel) > 0
    }

    fn out_from<'a>(p: &'a PolicyEntry, latched: bool) -> OutboundDecision<'a> {
        let v = match &p.action {
            Action::Bypass => Outbound::Bypass,
            Action::Drop => Outbound::Drop(PolicyDrop::Explicit),
            Action::Ipsec(alts) => {
                if alts.iter().all(Protection::is_empty) {
                    Outbound::Bypass
                } else {
                    Outbound::Protect {
                        bundles: alts,
                        mode: p.mode,
                    }
                }
            }
        };
        OutboundDecision::new(v, Basis::Rule, Some(p), latched)
    }

    /// The outbound decision for `key`: bypass, drop (with the reason) or protect with an
    /// ordered list of acceptable SA bundles.
    pub fn outbound(&self, key: &PacketKey) -> OutboundDecision<'_> {
        if !key.families_agree() {
            return OutboundDecision::new(
                Outbound::Drop(PolicyDrop::MalformedPacket),
                Basis::Malformed,
                None,
                false,
            );
        }
        if self.is_key_mgmt(key) {
            return OutboundDecision::new(Outbound::Bypass, Basis::KeyManagement, None, false);
        }
        if let Some(l) = self.latch_of(key) {
            return match l.out.as_deref() {
                Some(p) => Self::out_from(p, true),
                None => OutboundDecision::new(Outbound::Bypass, Basis::NoPolicy, None, true),
            };
        }
        match self.select(key) {
            Some(p) => Self::out_from(p, false),
            None if self.tunnel_has_rules(key) => OutboundDecision::new(
                Outbound::Drop(PolicyDrop::NoPolicy),
                Basis::TunnelNoMatch,
                None,
                false,
            ),
            None => OutboundDecision::new(Outbound::Bypass, Basis::NoPolicy, None, false),
        }
    }

    /// The inbound decision for a packet that arrived in clear.
    ///
    /// With `key.socket` and `key.tunnel` both `None` the packet is one the IP stack itself
    /// consumes: with `icmp-accept-clear` (`igmp-`, `pim-`) on, ICMP (IGMP, PIM) is accepted
    /// without a policy check (illumos ip.c). A latched connection that requires protection
    /// takes a clear ICMP message only if the accept-clear table accepts it (spd.c
    /// `ipsec_check_inbound_policy`); otherwise policy requiring protection drops it
    /// (`spd_got_clear`).
    pub fn inbound_clear(&self, key: &PacketKey) -> InboundDecision<'_> {
        if !key.families_agree() {
            return InboundDecision::drop(
                PolicyDrop::MalformedPacket,
                Basis::Malformed,
                None,
                false,
            );
        }
        if self.is_key_mgmt(key) {
            return InboundDecision::accept(Basis::KeyManagement, None, false);
        }
        if key.tunnel.is_none() && key.socket.is_none() {
            let t = &self.tunables;
            if t.icmp_accept_clear && key.is_icmp() {
                return InboundDecision::accept(Basis::IcmpAcceptClear, None, false);
            }
            if t.igmp_accept_clear && key.proto == ulp::IGMP {
                return InboundDecision::accept(Basis::IgmpAcceptClear, None, false);
            }
            if t.pim_accept_clear && key.proto == ulp::PIM {
                return InboundDecision::accept(Basis::PimAcceptClear, None, false);
            }
        }
        if let Some(l) = self.latch_of(key) {
            let Some(p) = l.inb.as_deref() else {
                return InboundDecision::accept(Basis::NoPolicy, None, true);
            };
            return match &p.action {
                Action::Bypass => InboundDecision::accept(Basis::Rule, Some(p), true),
                Action::Drop => {
                    InboundDecision::drop(PolicyDrop::Explicit, Basis::Rule, Some(p), true)
                }
                Action::Ipsec(alts) if alts.iter().any(Protection::is_empty) => {
                    InboundDecision::accept(Basis::Rule, Some(p), true)
                }
                Action::Ipsec(_) => {
                    if icmp::accept_clear(key.proto, key.is_v6(), key.icmp_type, key.icmp_code) {
                        InboundDecision::accept(Basis::IcmpTable, Some(p), true)
                    } else {
                        InboundDecision::drop(PolicyDrop::GotClear, Basis::IcmpTable, Some(p), true)
                    }
                }
            };
        }
        match self.select(key) {
            None if self.tunnel_has_rules(key) => {
                InboundDecision::drop(PolicyDrop::NoPolicy, Basis::TunnelNoMatch, None, false)
            }
            None => InboundDecision::accept(Basis::NoPolicy, None, false),
            Some(p) => match &p.action {
                Action::Bypass => InboundDecision::accept(Basis::Rule, Some(p), false),
                Action::Drop => {
                    InboundDecision::drop(PolicyDrop::Explicit, Basis::Rule, Some(p), false)
                }
                Action::Ipsec(alts) if alts.iter().any(Protection::is_empty) => {
                    InboundDecision::accept(Basis::Rule, Some(p), false)
                }
                Action::Ipsec(_) => {
                    InboundDecision::drop(PolicyDrop::GotClear, Basis::Rule, Some(p), false)
                }
            },
        }
    }

    /// The inbound decision for a packet the engine decapsulated: `key` describes the packet
    /// now in the buffer (the inner packet in tunnel mode), `ok` what the engine reported; the
    /// SAs are read from `sadb`.
    pub fn inbound_protected(
        &self,
        key: &PacketKey,
        ok: &InboundOk,
        sadb: &Sadb,
    ) -> InboundDecision<'_> {
        match Applied::from_inbound(ok, sadb) {
            Ok(a) => self.inbound_applied(key, &a),
            Err(r) => InboundDecision::drop(r, Basis::Malformed, None, false),
        }
    }

    /// As [`inbound_protected`](Self::inbound_protected), with the SAs already looked up.
    pub fn inbound_applied(&self, key: &PacketKey, a: &Applied<'_>) -> InboundDecision<'_> {
        if !key.families_agree() {
            return InboundDecision::drop(
                PolicyDrop::MalformedPacket,
                Basis::Malformed,
                None,
                false,
            );
        }
        if self.is_key_mgmt(key) {
            return InboundDecision::drop(PolicyDrop::GotSecure, Basis::KeyManagement, None, false);
        }
        if let Some(l) = self.latch_of(key) {
            return Self::in_latched(l, key, a);
        }
        match self.select(key) {
            None if self.tunnel_has_rules(key) => {
                InboundDecision::drop(PolicyDrop::NoPolicy, Basis::TunnelNoMatch, None, false)
            }
            None => InboundDecision::drop(PolicyDrop::GotSecure, Basis::NoPolicy, None, false),
            Some(p) => Self::decide_protected(p, key, a, false),
        }
    }

    fn protected_accept<'a>(
        p: &'a PolicyEntry,
        alt: usize,
        a: &Applied<'_>,
        latched: bool,
    ) -> InboundDecision<'a> {
        InboundDecision {
            verdict: Inbound::Accept,
            basis: Basis::Rule,
            policy: Some(p),
            alternative: Some(alt),
            latched,
            protection: InboundProtection::Protected {
                bundle: a.reply_bundle(),
                mode: a.mode(),
                ah_spi: a.ah.map(|v| v.spi),
                esp_spi: a.esp.map(|v| v.spi),
            },
        }
    }

    fn check_protected(
        p: &PolicyEntry,
        key: &PacketKey,
        a: &Applied<'_>,
    ) -> Result<usize, PolicyDrop> {
        check::check_ids(a)?;
        check::check_inner(a, key)?;
        match &p.action {
            Action::Bypass => Err(PolicyDrop::GotSecure),
            Action::Drop => Err(PolicyDrop::Explicit),
            Action::Ipsec(alts) => {
                let mut last = PolicyDrop::GotSecure;
                for (i, alt) in alts.iter().enumerate() {
                    let decaps = alt.self_encap || p.mode == Mode::Tunnel;
                    match check::check_alternative(alt, decaps, a, key) {
                        Ok(()) => return Ok(i),
                        Err(r) => last = r,
                    }
                }
                Err(last)
            }
        }
    }

    fn decide_protected<'a>(
        p: &'a PolicyEntry,
        key: &PacketKey,
        a: &Applied<'_>,
        latched: bool,
    ) -> InboundDecision<'a> {
        match Self::check_protected(p, key, a) {
            Ok(i) => Self::protected_accept(p, i, a, latched),
            Err(r) => InboundDecision::drop(r, Basis::Rule, Some(p), latched),
        }
    }

    fn in_latched<'a>(l: &'a Latch, key: &PacketKey, a: &Applied<'_>) -> InboundDecision<'a> {
        let Some(p) = l.inb.as_deref() else {
            return InboundDecision::drop(PolicyDrop::GotSecure, Basis::NoPolicy, None, true);
        };
        if let Some(&alt) = l.in_action.get() {
            // spd.c ipsec_check_ipsecin_latch: identities, unique binding, the latched action.
            if let Some((remote, local)) = l.ids.get() {
                let same =
                    |v: &SaView<'_>| v.src_id == remote.as_ref() && v.dst_id == local.as_ref();
                if a.ah.as_ref().is_some_and(|v| !same(v)) {
                    return InboundDecision::drop(PolicyDrop::AhBadId, Basis::Rule, Some(p), true);
                }
                if a.esp.as_ref().is_some_and(|v| !same(v)) {
                    return InboundDecision::drop(PolicyDrop::EspBadId, Basis::Rule, Some(p), true);
                }
            }
            if let Err(r) = check::check_inner(a, key) {
                return InboundDecision::drop(r, Basis::Rule, Some(p), true);
            }
            let Some(prot) = p.action.alternatives().get(alt) else {
                return InboundDecision::drop(PolicyDrop::GotSecure, Basis::Rule, Some(p), true);
            };
            let decaps = prot.self_encap || p.mode == Mode::Tunnel;
            return match check::check_alternative(prot, decaps, a, key) {
                Ok(()) => Self::protected_accept(p, alt, a, true),
                Err(r) => InboundDecision::drop(r, Basis::Rule, Some(p), true),
            };
        }
        let d = Self::decide_protected(p, key, a, true);
        if let (Inbound::Accept, Some(alt)) = (d.verdict, d.alternative) {
            let _ = l.in_action.set(alt);
            if let Some(v) = a.identity_sa() {
                let _ = l.ids.set((v.src_id.cloned(), v.dst_id.cloned()));
            }
        }
        d
    }

    /// The decision for a reply the daemon generates to an accepted inbound packet (ICMP echo
    /// reply, TCP RST): protected exactly like the request (`Protect` with the request's
    /// protocols, algorithms and key sizes, whatever outbound policy says), or sent clear when
    /// the request came clear.
    pub fn reply_outbound<'a>(
        &'a self,
        reply: &PacketKey,
        request: &'a InboundProtection,
    ) -> OutboundDecision<'a> {
        let _ = reply;
        match request {
            InboundProtection::Clear => {
                OutboundDecision::new(Outbound::Bypass, Basis::ReplyClear, None, false)
            }
            InboundProtection::Protected { bundle, mode, .. }
            | InboundProtection::Loopback { bundle, mode } => OutboundDecision::new(
                Outbound::Protect {
                    bundles: core::slice::from_ref(bundle),
                    mode: *mode,
                },
                Basis::ReplyInherited,
                None,
                false,
            ),
        }
    }

    /// Intra-machine traffic: policy is enforced but no crypto is applied. The outbound
    /// decision for `out` is made as usual; a protected packet is then checked inbound (at
    /// `receiver`) as if the first bundle had been applied, a bypassed one as cleartext.
    pub fn loopback(&self, out: &PacketKey, receiver: Option<SocketId>) -> LoopbackDecision<'_> {
        let o = self.outbound(out);
        let mut ik = *out;
        ik.dir = Dir::In;
        ik.socket = receiver;
        ik.tunnel = None;
        let inbound = match o.verdict {
            Outbound::Drop(r) => InboundDecision::drop(r, o.basis, o.policy, o.latched),
            Outbound::Bypass => self.inbound_clear(&ik),
            Outbound::Protect { bundles, mode } => match bundles.first() {
                Some(b) => self.inbound_loopback(&ik, b, mode),
                None => self.inbound_clear(&ik),
            },
        };
        LoopbackDecision {
            outbound: o,
            inbound,
        }
    }

    fn inbound_loopback(
        &self,
        key: &PacketKey,
        applied: &Protection,
        mode: Mode,
    ) -> InboundDecision<'_> {
        if self.is_key_mgmt(key) {
            return InboundDecision::drop(PolicyDrop::GotSecure, Basis::KeyManagement, None, false);
        }
        let latch = self.latch_of(key);
        let (p, latched) = match latch {
            Some(l) => (l.inb.as_ref(), true),
            None => (self.select(key), false),
        };
        let Some(p) = p else {
            return InboundDecision::drop(PolicyDrop::GotSecure, Basis::NoPolicy, None, latched);
        };
        match &p.action {
            Action::Bypass => {
                InboundDecision::drop(PolicyDrop::GotSecure, Basis::Loopback, Some(p), latched)
            }
            Action::Drop => {
                InboundDecision::drop(PolicyDrop::Explicit, Basis::Loopback, Some(p), latched)
            }
            Action::Ipsec(alts) => match alts
                .iter()
                .position(|w| check::loopback_satisfies(w, applied))
            {
                Some(i) => InboundDecision {
                    verdict: Inbound::Accept,
                    basis: Basis::Loopback,
                    policy: Some(p),
                    alternative: Some(i),
                    latched,
                    protection: InboundProtection::Loopback {
                        bundle: *applied,
                        mode,
                    },
                },
                None => InboundDecision::drop(
                    PolicyDrop::LoopbackMismatch,
                    Basis::Loopback,
                    Some(p),
                    latched,
                ),
            },
        }
    }

    // ----- sockets -------------------------------------------------------------------------

    /// Registers a socket.
    pub fn socket_open(&mut self, id: SocketId, info: SocketInfo) -> Result<(), SockOptError> {
        if self.sockets.contains_key(&id) {
            return Err(SockOptError::Invalid("socket already registered"));
        }
        self.sockets.insert(id, SocketState::new(info));
        Ok(())
    }

    /// Forgets a socket (close).
    pub fn socket_close(&mut self, id: SocketId) {
        self.sockets.remove(&id);
    }

    /// `listen()` on the socket.
    pub fn socket_listen(&mut self, id: SocketId) -> Result<(), SockOptError> {
        let s = self.sockets.get_mut(&id).ok_or(SockOptError::NoSocket)?;
        s.listening = true;
        Ok(())
    }

    /// `setsockopt(IP_SEC_OPT | IPV6_SEC_OPT)` with the socket owner's privilege.
    pub fn set_socket_policy(&mut self, id: SocketId, req: &IpsecReq) -> Result<(), SockOptError> {
        let s = self.sockets.get(&id).ok_or(SockOptError::NoSocket)?;
        if s.listening && matches!(s.info.proto, ulp::TCP | ulp::SCTP) {
            return Err(SockOptError::Invalid("socket is listening"));
        }
        // The order of spd.c ipsec_set_req(): a reset request skips the checks; unknown bits,
        // then privilege for NEVER, then NEVER with REQUIRED; then the latch.
        if !req.is_reset() {
            req.check_known_bits()?;
            if req.needs_privilege() && !s.info.privileged {
                return Err(SockOptError::Permission(
                    "only privileged sockets may bypass IPsec",
                ));
            }
            req.check_exclusive()?;
        }
        if s.latch.is_some() {
            return Err(SockOptError::Invalid(
                "policy is latched on a connected socket",
            ));
        }
        let action = req.to_action()?;
        if let Some(Action::Ipsec(alts)) = &action {
            if self.tunables.persock_require_priv && !s.info.privileged {
                let sys = SystemAlgs::of(self.compiled.policy());
                if alts.iter().any(|p| !sys.allows(p)) {
                    return Err(SockOptError::Permission(
                        "persock-require-priv: algorithm not used by system policy",
                    ));
                }
            }
        }
        let Some(s) = self.sockets.get_mut(&id) else {
            return Err(SockOptError::NoSocket);
        };
        match action {
            None => {
                s.req = None;
                s.policy = None;
            }
            Some(action) => {
                s.req = Some(*req);
                s.policy = Some(Arc::new(PolicyEntry {
                    source: PolicySource::Socket(id),
                    priority: Priority::socket(),
                    action,
                    mode: Mode::Transport,
                }));
            }
        }
        Ok(())
    }

    /// `getsockopt(IP_SEC_OPT)`: the latched inbound action if the connection latched one,
    /// else the socket's request (spd.c `ipsec_req_from_conn`).
    pub fn socket_policy(&self, id: SocketId) -> Option<IpsecReq> {
        let s = self.sockets.get(&id)?;
        if let Some(l) = &s.latch {
            if let Some(p) = &l.inb {
                if let Some(&alt) = l.in_action.get() {
                    if let Some(prot) = p.action.alternatives().get(alt) {
                        return Some(IpsecReq::from_action(&Action::ipsec(*prot)));
                    }
                }
                return Some(IpsecReq::from_action(&p.action));
            }
        }
        s.req
    }

    /// `connect()` (or the accepted side of `accept()`): latches the policy that applies to the
    /// connection's 5-tuple now (TCP, UDP, SCTP); later policy changes do not affect it.
    pub fn socket_connected(
        &mut self,
        id: SocketId,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<(), SockOptError> {
        let s = self.sockets.get(&id).ok_or(SockOptError::NoSocket)?;
        if !s.latches() {
            return Ok(());
        }
        let proto = s.info.proto;
        let out_key = PacketKey::new(Dir::Out, local.ip(), remote.ip(), proto)
            .with_ports(local.port(), remote.port())
            .with_socket(id);
        let in_key = PacketKey::new(Dir::In, remote.ip(), local.ip(), proto)
            .with_ports(remote.port(), local.port())
            .with_socket(id);
        let out = self.select(&out_key).cloned();
        let inb = self.select(&in_key).cloned();
        let latch = Arc::new(Latch {
            out,
            inb,
            in_action: OnceLock::new(),
            ids: OnceLock::new(),
            local,
            remote,
        });
        if let Some(s) = self.sockets.get_mut(&id) {
            s.latch = Some(latch);
        }
        Ok(())
    }

    /// `accept()` on `listener` created `id`: the new socket inherits the listener's info and
    /// policy, then latches.
    pub fn socket_accepted(
        &mut self,
        listener: SocketId,
        id: SocketId,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<(), SockOptError> {
        let l = self.sockets.get(&listener).ok_or(SockOptError::NoSocket)?;
        let mut st = SocketState::new(l.info);
        st.req = l.req;
        st.policy = l.policy.as_ref().map(|p| {
            Arc::new(PolicyEntry {
                source: PolicySource::Socket(id),
                ..(**p).clone()
            })
        });
        self.sockets.insert(id, st);
        self.socket_connected(id, local, remote)
    }

    /// Whether the socket's policy is latched.
    pub fn socket_latched(&self, id: SocketId) -> bool {
        self.sockets.get(&id).is_some_and(|s| s.latch.is_some())
    }

    /// Endpoints of a latched connection.
    pub fn socket_endpoints(&self, id: SocketId) -> Option<(SocketAddr, SocketAddr)> {
        let l = self.sockets.get(&id)?.latch.as_ref()?;
        Some((l.local, l.remote))
    }

    // ----- policy changes ------------------------------------------------------------------

    /// Atomic replacement (`ipsecconf -Fa file` / `-r file`): the new policy is built, validated
    /// and compiled off to the side, then swapped in whole. With `dry_run` nothing changes and
    /// the report says what would. Latched connections keep their policy.
    pub fn replace(
        &mut self,
        set: PolicySet,
        opts: ReplaceOptions,
    ) -> Result<ReplaceReport, CompileError> {
        let old = Arc::clone(self.compiled.policy());
        let new_set = match opts.scope {
            ReplaceScope::All => set,
            ReplaceScope::Named => {
                let named: Vec<String> =
                    set.tunnel_names().into_iter().map(str::to_owned).collect();
                let mut rules = set.rules;
                rules.extend(
                    old.rules
                        .iter()
                        .filter(|r| r.tunnel.as_ref().is_some_and(|t| !named.contains(t)))
                        .cloned(),
                );
                PolicySet::from_rules(rules)
            }
        };
        let new_set = Arc::new(new_set);
        let mut names = self.names.clone();
        let compiled = CompiledSpd::compile(Arc::clone(&new_set), &mut names)?;
        let diff = diff_policies(&old, &new_set);
        let warnings = analyze(&new_set, opts.limits);
        let applied = !opts.dry_run;
        if applied {
            self.names = names;
            self.compiled = Arc::new(compiled);
            self.generation += 1;
        }
        Ok(ReplaceReport {
            applied,
            policy: new_set,
            diff,
            warnings,
            generation: self.generation,
        })
    }

    /// `ipsecconf -a`: appends rules after the existing ones (atomically; `dry_run` checks).
    pub fn add(&mut self, rules: Vec<Rule>, dry_run: bool) -> Result<ReplaceReport, CompileError> {
        let mut all = self.policy().rules.clone();
        all.extend(rules);
        self.replace(PolicySet::from_rules(all), ReplaceOptions::all(dry_run))
    }

    /// `ipsecconf -d index`: removes one rule. `None` if there is no such rule ("Non-existent
    /// index").
    pub fn delete(&mut self, index: usize) -> Option<Result<ReplaceReport, CompileError>> {
        let mut all = self.policy().rules.clone();
        if index >= all.len() {
            return None;
        }
        all.remove(index);
        Some(self.replace(PolicySet::from_rules(all), ReplaceOptions::all(false)))
    }

    /// `ipsecconf -f [-i tunnel]` (flush the host SPD, or one tunnel's) and `-F`
    /// (`everything`: host and all tunnels).
    pub fn flush(
        &mut self,
        tunnel: Option<&str>,
        everything: bool,
    ) -> Result<ReplaceReport, CompileError> {
        let rules: Vec<Rule> = if everything {
            Vec::new()
        } else {
            self.policy()
                .rules
                .iter()
                .filter(|r| r.tunnel.as_deref() != tunnel)
                .cloned()
                .collect()
        };
        self.replace(PolicySet::from_rules(rules), ReplaceOptions::all(false))
    }

    /// Load-time warnings for the active policy.
    pub fn lint(&self, limits: AnalysisLimits) -> Vec<Warning> {
        analyze(self.policy(), limits)
    }

    /// Which rule decides `key` and why (see [`Explanation`]).
    pub fn explain(&self, key: &PacketKey) -> Explanation {
        explain::explain(self, key)
    }
}

/// Algorithms the host policy uses, per role, for `persock-require-priv`.
struct SystemAlgs {
    ah_any: bool,
    ah: Vec<AuthAlg>,
    encr_any: bool,
    encr: Vec<EncrAlg>,
    espa_any: bool,
    espa: Vec<AuthAlg>,
}

impl SystemAlgs {
    fn of(set: &PolicySet) -> Self {
        let mut s = SystemAlgs {
            ah_any: false,
            ah: Vec::new(),
            encr_any: false,
            encr: Vec::new(),
            espa_any: false,
            espa: Vec::new(),
        };
        for r in set.rules.iter().filter(|r| r.tunnel.is_none()) {
            for p in r.action.alternatives() {
                if let Some(a) = &p.ah {
                    match a.alg {
                        None => s.ah_any = true,
                        Some(x) => s.ah.push(x),
                    }
                }
                if let Some(e) = &p.esp {
                    match e.encr.alg {
                        None => s.encr_any = true,
                        Some(x) => s.encr.push(x),
                    }
                    if let EspAuth::Required(a) = &e.auth {
                        match a.alg {
                            None => s.espa_any = true,
                            Some(x) => s.espa.push(x),
                        }
                    }
                }
            }
        }
        s
    }

    /// The request names no algorithm the system policy does not use for the same role.
    fn allows(&self, p: &Protection) -> bool {
        let ah_ok =
            p.ah.and_then(|a| a.alg)
                .is_none_or(|x| self.ah_any || self.ah.contains(&x));
        let (encr_ok, espa_ok) = match &p.esp {
            None => (true, true),
            Some(e) => (
                e.encr
                    .alg
                    .is_none_or(|x| self.encr_any || self.encr.contains(&x)),
                match &e.auth {
                    EspAuth::Required(a) => a
                        .alg
                        .is_none_or(|x| self.espa_any || self.espa.contains(&x)),
                    EspAuth::Optional => true,
                },
            ),
        };
        ah_ok && encr_ok && espa_ok
    }
}

fn diff_policies(old: &PolicySet, new: &PolicySet) -> PolicyDiff {
    // Compare rules without their source line.
    let norm = |r: &Rule| {
        let mut r = r.clone();
        r.line = None;
        r
    };
    let mut pool: HashMap<Rule, Vec<usize>> = HashMap::new();
    for (i, r) in old.rules.iter().enumerate() {
        pool.entry(norm(r)).or_default().push(i);
    }
    for v in pool.values_mut() {
        v.reverse();
    }
    let mut diff = PolicyDiff::default();
    let mut kept_old_positions = Vec::new();
    for (i, r) in new.rules.iter().enumerate() {
        match pool.get_mut(&norm(r)).and_then(Vec::pop) {
            Some(oi) => {
                diff.kept += 1;
                kept_old_positions.push((r.tunnel.clone(), oi));
            }
            None => diff.added.push(i),
        }
    }
    let mut removed: Vec<usize> = pool.into_values().flatten().collect();
    removed.sort_unstable();
    diff.removed = removed;
    // Reordered: within one SPD, kept rules no longer in their old relative order.
    let mut last: HashMap<Option<String>, usize> = HashMap::new();
    for (t, oi) in kept_old_positions {
        if let Some(prev) = last.get(&t) {
            if *prev > oi {
                diff.reordered = true;
            }
        }
        last.insert(t, oi);
    }
    diff
}
