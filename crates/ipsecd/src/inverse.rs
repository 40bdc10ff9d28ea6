//! The SPD's answer to PF_KEY X_INVERSE_ACQUIRE (Solaris `ipsec_construct_inverse_acquire`):
//! a key manager that is the *responder* of a negotiation names the selectors of the SA
//! pair the peer proposes, and ipsecd answers with the extended proposal (X_EPROP) that its
//! policy would demand for that traffic, so the key manager accepts only what policy allows.
//!
//! ```text
//!  in.ikev2d ──X_INVERSE_ACQUIRE SRC=us DST=peer [INNER_SRC INNER_DST]──► server (lock)
//!     install(): a fresh SpdAnswer (current compiled SPD + properties) into the KeyEngine
//!     KeyEngine ──PolicyQuery::inverse_acquire──► SpdAnswer ──► EPROP reply, or ENOENT
//! ```
//!
//! Lookup: the selectors as an outbound packet from SRC to DST (the host SPD, or with inner
//! selectors every tunnel's SPD with the inner addresses); when that finds no `ipsec` rule,
//! as an inbound packet from DST to SRC (rules of `dir in`). A rule that bypasses or drops,
//! or no rule at all, is `ENOENT`: no policy protects these selectors.
//!
//! The proposal: one extended combination per `or` alternative of the rule, in the rule's
//! order, as ACQUIRE lists them; an `any` algorithm expands to every algorithm of the table
//! that can serve (ACQUIRE's default first: AES-GCM-16 for ESP encryption, HMAC-SHA-256
//! for authentication). ESP without `encr_auth_algs` carries no ESP authentication
//! descriptor: policy accepts such an SA with or without integrity. Key sizes are the
//! rule's limits; a named algorithm without a lower limit starts at the table's default
//! size, as the inbound check does (`AlgSpec::accepts`). Lifetimes and the replay window
//! are those of ACQUIRE (`default-*-addtime`, `replay-size`).
//!
//! The answer is built under the daemon's lock just before the engine handles the request
//! (see [`install`]), so `ipsecconf -a/-d/-f/-r` is reflected immediately.

use std::net::IpAddr;
use std::sync::Arc;

use ipsec_core::spd::{
    AlgSpec, CompiledSpd, Dir, EspAuth, PacketKey, PolicyEntry, Prefix, Protection, TunnelId,
};
use ipsec_crypto::{auth_info, auth_table, encr_info, encr_table, AuthAlg, EncrAlg};
use ipsec_pfkey::consts::{
    EINVAL, ENOENT, SADB_SATYPE_AH, SADB_SATYPE_ESP, SADB_X_ALGTYPE_AUTH, SADB_X_ALGTYPE_CRYPT,
};
use ipsec_pfkey::engine::{InverseQuery, PolicyQuery};
use ipsec_pfkey::wire::{Address, AlgDesc, Comb, EComb, EProp};

use crate::core::Shared;

/// Message type byte of a PF_KEY header (offset 1).
const MSG_TYPE_AT: usize = 1;

/// Installs the current SPD's answer into the key engine when `msg` (a raw PF_KEY
/// message about to be handled) is an X_INVERSE_ACQUIRE.
pub fn install_for(g: &mut Shared, msg: &[u8]) {
    if msg.get(MSG_TYPE_AT) == Some(&ipsec_pfkey::consts::SADB_X_INVERSE_ACQUIRE) {
        install(g);
    }
}

/// Installs an answer made of the active policy and properties.
pub fn install(g: &mut Shared) {
    let names = g.spd.tunnel_names();
    let tunnels: Vec<(TunnelId, Option<(IpAddr, IpAddr)>)> = (0u32..)
        .map(TunnelId)
        .map_while(|t| {
            let name = names.name(t)?;
            let ends = crate::iptun::ends_of(&g.tunnel_ends, name).map(|e| (e.local, e.remote));
            Some((t, ends))
        })
        .collect();
    let mut lifetimes = Comb::default();
    crate::props::set_lifetimes(&mut lifetimes, &g.props);
    let answer = SpdAnswer {
        spd: g.spd.snapshot(),
        tunnels,
        replay: crate::props::replay(&g.props),
        lifetimes,
    };
    g.keys.set_policy(Box::new(answer));
}

/// The policy, frozen for one request.
#[derive(Debug)]
pub struct SpdAnswer {
    spd: Arc<CompiledSpd>,
    /// Every tunnel, with its outer endpoints (ours, the peer's) when configured.
    tunnels: Vec<(TunnelId, Option<(IpAddr, IpAddr)>)>,
    replay: u8,
    lifetimes: Comb,
}

impl PolicyQuery for SpdAnswer {
    fn inverse_acquire(&self, q: &InverseQuery) -> Result<EProp, u8> {
        let entry = self.lookup(q)?.ok_or(ENOENT)?;
        let alts = entry.action.alternatives();
        let ecombs: Vec<EComb> = alts
            .iter()
            .flat_map(|p| self.ecombs(p))
            .take(usize::from(u16::MAX))
            .collect();
        if ecombs.is_empty() {
            return Err(ENOENT);
        }
        Ok(EProp {
            replay: self.replay,
            ecombs,
        })
    }
}

impl SpdAnswer {
    /// The `ipsec` rule protecting the selectors: outbound first, then inbound. With inner
    /// selectors only tunnels between SRC and DST are searched (and those without
    /// configured endpoints, whose SAs are keyed between the hosts themselves).
    ///
    /// Inner selectors are ranges, looked up by their first addresses: a rule found that
    /// does not hold all of both ranges protects only part of them, and the answer is
    /// EINVAL (never ENOENT, which would let the key manager fall back to its own
    /// algorithms).
    fn lookup(&self, q: &InverseQuery) -> Result<Option<&Arc<PolicyEntry>>, u8> {
        let (src, dst, tunnels) = match (q.inner_src, q.inner_dst) {
            (Some(s), Some(d)) => {
                let ends = (q.src.ip(), q.dst.ip());
                let ts = self
                    .tunnels
                    .iter()
                    .filter(|(_, e)| e.is_none_or(|e| e == ends))
                    .map(|(t, _)| Some(*t))
                    .collect();
                (s, d, ts)
            }
            _ => (q.src, q.dst, vec![None]),
        };
        for dir in [Dir::Out, Dir::In] {
            for t in &tunnels {
                let key = packet_key(dir, &src, &dst, *t);
                if let Some(e) = self.spd.lookup(&key) {
                    if q.inner_src.is_some() && !self.holds_ranges(e, &src, &dst) {
                        return Err(EINVAL);
                    }
                    if e.action.alternatives().iter().any(|p| !p.is_empty()) {
                        return Ok(Some(e));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Whether the file rule of `e` holds the whole inner prefixes `src` (ours) and `dst`
    /// (the peer's), not only their first addresses.
    fn holds_ranges(&self, e: &PolicyEntry, src: &Address, dst: &Address) -> bool {
        let Some(rule) = e
            .source
            .rule_index()
            .and_then(|i| self.spd.policy().rules.get(i))
        else {
            return true; // a socket's policy: no inner selectors
        };
        let holds = |p: Option<Prefix>, a: &Address| {
            p.is_none_or(|p| p.len <= a.prefixlen && p.contains(a.ip()))
        };
        holds(rule.selector.laddr, src) && holds(rule.selector.raddr, dst)
    }

    /// The extended combinations of one alternative: AH and ESP descriptors, every `any`
    /// expanded.
    fn ecombs(&self, p: &Protection) -> Vec<EComb> {
        let ah: Vec<Option<AlgDesc>> = match &p.ah {
            Some(spec) => auth_choices(spec)
                .into_iter()
                .map(|(a, min, max)| Some(auth_desc(SADB_SATYPE_AH, a, min, max)))
                .collect(),
            None => vec![None],
        };
        let esp: Vec<Vec<AlgDesc>> = match &p.esp {
            Some(e) => {
                let auths: Vec<Option<AlgDesc>> = match &e.auth {
                    EspAuth::Optional => vec![None],
                    EspAuth::Required(spec) => auth_choices(spec)
                        .into_iter()
                        .map(|(a, min, max)| Some(auth_desc(SADB_SATYPE_ESP, a, min, max)))
                        .collect(),
                };
                let mut v = Vec::new();
                for (alg, min, max) in encr_choices(&e.encr) {
                    for a in &auths {
                        let mut descs = vec![encr_desc(alg, min, max)];
                        descs.extend(a.iter().copied());
                        v.push(descs);
                    }
                }
                v
            }
            None => vec![Vec::new()],
        };
        let mut out = Vec::new();
        for a in &ah {
            for e in &esp {
                let mut algs: Vec<AlgDesc> = a.iter().copied().collect();
                algs.extend(e.iter().copied());
                if algs.is_empty() {
                    continue;
                }
                out.push(EComb {
                    flags: 0,
                    soft_addtime: self.lifetimes.soft_addtime,
                    hard_addtime: self.lifetimes.hard_addtime,
                    algs,
                    ..EComb::default()
                });
            }
        }
        out
    }
}

/// An SPD lookup key for the selectors, as a packet in `dir` (inbound: from `dst` to `src`).
fn packet_key(dir: Dir, src: &Address, dst: &Address, tunnel: Option<TunnelId>) -> PacketKey {
    let (from, to) = match dir {
        Dir::Out => (src, dst),
        Dir::In => (dst, src),
    };
    let proto = if src.proto != 0 { src.proto } else { dst.proto };
    let mut k = PacketKey::new(dir, from.ip(), to.ip(), proto);
    if from.port() != 0 || to.port() != 0 {
        k = k.with_ports(from.port(), to.port());
    }
    k.tunnel = tunnel;
    k
}

/// Key-bit limits for an algorithm under a spec: the rule's, with a named algorithm's
/// lower limit defaulting to the table's default size (`AlgSpec::accepts`).
fn limits<A>(spec: &AlgSpec<A>, min: u16, max: u16, default: u16) -> Option<(u16, u16)> {
    let lo = spec
        .key_bits
        .min
        .unwrap_or(if spec.alg.is_some() { default } else { min })
        .max(min);
    let hi = spec.key_bits.max.unwrap_or(max).min(max);
    (lo <= hi).then_some((lo, hi))
}

/// The encryption algorithms a spec accepts, ACQUIRE's default (AES-GCM-16) first for `any`.
fn encr_choices(spec: &AlgSpec<EncrAlg>) -> Vec<(EncrAlg, u16, u16)> {
    let algs: Vec<EncrAlg> = match spec.alg {
        Some(a) => vec![a],
        None => std::iter::once(EncrAlg::AesGcm16)
            .chain(
                encr_table()
                    .iter()
                    .filter(|e| !e.legacy && e.alg != EncrAlg::Null && e.alg != EncrAlg::AesGcm16)
                    .map(|e| e.alg),
            )
            .collect(),
    };
    algs.into_iter()
        .filter_map(|a| {
            let k = encr_info(a).key_bits;
            limits(spec, k.min, k.max, k.default).map(|(lo, hi)| (a, lo, hi))
        })
        .collect()
}

/// The integrity algorithms a spec accepts, HMAC-SHA-256 first for `any`.
fn auth_choices(spec: &AlgSpec<AuthAlg>) -> Vec<(AuthAlg, u16, u16)> {
    let algs: Vec<AuthAlg> = match spec.alg {
        Some(a) => vec![a],
        None => std::iter::once(AuthAlg::HmacSha256)
            .chain(
                auth_table()
                    .iter()
                    .filter(|a| {
                        !a.legacy_esp
                            && !matches!(
                                a.alg,
                                AuthAlg::None
                                    | AuthAlg::HmacSha256
                                    | AuthAlg::AesGmac128
                                    | AuthAlg::AesGmac192
                                    | AuthAlg::AesGmac256
                            )
                    })
                    .map(|a| a.alg),
            )
            .collect(),
    };
    algs.into_iter()
        .filter_map(|a| {
            let k = auth_info(a).key_bits;
            limits(spec, k.min, k.max, k.default).map(|(lo, hi)| (a, lo, hi))
        })
        .collect()
}

fn encr_desc(a: EncrAlg, min: u16, max: u16) -> AlgDesc {
    let i = encr_info(a);
    AlgDesc {
        satype: SADB_SATYPE_ESP,
        algtype: SADB_X_ALGTYPE_CRYPT,
        alg: i.pfkey,
        saltbits: u8::try_from(i.salt_bytes * 8).unwrap_or(0),
        minbits: min,
        maxbits: max,
    }
}

fn auth_desc(satype: u8, a: AuthAlg, min: u16, max: u16) -> AlgDesc {
    AlgDesc {
        satype,
        algtype: SADB_X_ALGTYPE_AUTH,
        alg: auth_info(a).pfkey,
        saltbits: 0,
        minbits: min,
        maxbits: max,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ipsec_core::spd::{Action, PolicyDir, PolicySet, Rule, Selector, Spd};
    use ipsec_crypto::encr_info;
    use std::net::SocketAddr;

    fn answer(set: PolicySet) -> SpdAnswer {
        let spd = Spd::with_policy(set).unwrap();
        SpdAnswer {
            spd: spd.snapshot(),
            tunnels: Vec::new(),
            replay: 64,
            lifetimes: Comb::default(),
        }
    }

    fn q(src: &str, dst: &str) -> InverseQuery {
        let a = |s: &str| Address::new(SocketAddr::new(s.parse().unwrap(), 0));
        InverseQuery {
            src: a(src),
            dst: a(dst),
            inner_src: None,
            inner_dst: None,
        }
    }

    #[test]
    fn alternatives_in_order_and_any_expanded() {
        let cbc = Protection::from_props(
            None,
            Some(AlgSpec::of(EncrAlg::AesCbc)),
            Some(AlgSpec::of(AuthAlg::HmacSha256)),
            Default::default(),
        );
        let gcm_any = Protection::esp(AlgSpec::any());
        let mut set = PolicySet::new();
        set.rules.push(Rule::new(
            Selector::any(),
            PolicyDir::Both,
            Action::Ipsec(vec![cbc, gcm_any]),
        ));
        let e = answer(set)
            .inverse_acquire(&q("10.0.0.1", "10.0.0.2"))
            .unwrap();
        let first = &e.ecombs[0];
        assert_eq!(first.algs.len(), 2);
        assert_eq!(first.algs[0].alg, encr_info(EncrAlg::AesCbc).pfkey);
        assert_eq!(
            first.algs[0].minbits,
            encr_info(EncrAlg::AesCbc).key_bits.default
        );
        assert_eq!(first.algs[1].alg, auth_info(AuthAlg::HmacSha256).pfkey);
        // `any` encryption: AES-GCM-16 first, then the rest of the table.
        assert_eq!(e.ecombs[1].algs[0].alg, encr_info(EncrAlg::AesGcm16).pfkey);
        assert!(e.ecombs.len() > 3);
    }

    #[test]
    fn bypass_or_no_rule_is_enoent() {
        let mut set = PolicySet::new();
        set.rules
            .push(Rule::new(Selector::any(), PolicyDir::Both, Action::Bypass));
        assert_eq!(
            answer(set).inverse_acquire(&q("10.0.0.1", "10.0.0.2")),
            Err(ENOENT)
        );
        assert_eq!(
            answer(PolicySet::new()).inverse_acquire(&q("10.0.0.1", "10.0.0.2")),
            Err(ENOENT)
        );
    }

    #[test]
    fn only_tunnels_between_src_and_dst_answer() {
        use ipsec_core::spd::Negotiate;
        let cbc = Protection::from_props(
            None,
            Some(AlgSpec::of(EncrAlg::AesCbc)),
            Some(AlgSpec::of(AuthAlg::HmacSha256)),
            Default::default(),
        );
        let gcm = Protection::esp(AlgSpec::of(EncrAlg::AesGcm16));
        let mut set = PolicySet::new();
        for (name, p) in [("tun-a", cbc), ("tun-b", gcm)] {
            set.rules.push(
                Rule::new(Selector::any(), PolicyDir::Both, Action::Ipsec(vec![p]))
                    .in_tunnel(name, Some(Negotiate::Tunnel)),
            );
        }
        let mut spd = Spd::with_policy(set).unwrap();
        let (a, b) = (spd.tunnel_id("tun-a"), spd.tunnel_id("tun-b"));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let answer = SpdAnswer {
            spd: spd.snapshot(),
            tunnels: vec![
                (a, Some((ip("192.0.2.1"), ip("192.0.2.2")))),
                (b, Some((ip("192.0.2.1"), ip("192.0.2.9")))),
            ],
            replay: 64,
            lifetimes: Comb::default(),
        };
        let net = |s: &str| Address {
            prefixlen: 24,
            ..Address::new(SocketAddr::new(s.parse().unwrap(), 0))
        };
        let tunnel_q = |dst: &str| InverseQuery {
            inner_src: Some(net("10.1.0.0")),
            inner_dst: Some(net("10.2.0.0")),
            ..q("192.0.2.1", dst)
        };
        let first_encr = |dst: &str| {
            answer
                .inverse_acquire(&tunnel_q(dst))
                .map(|e| e.ecombs[0].algs[0].alg)
        };
        // The peer at the end of tun-b gets tun-b's policy, not tun-a's (searched first).
        assert_eq!(
            first_encr("192.0.2.9"),
            Ok(encr_info(EncrAlg::AesGcm16).pfkey)
        );
        assert_eq!(
            first_encr("192.0.2.2"),
            Ok(encr_info(EncrAlg::AesCbc).pfkey)
        );
        // A peer at the end of no tunnel: no tunnel policy applies.
        assert_eq!(first_encr("192.0.2.77"), Err(ENOENT));
    }

    #[test]
    fn a_rule_holding_part_of_the_range_is_no_answer() {
        use ipsec_core::spd::Negotiate;
        let pfx = |a: &str, len| Prefix {
            addr: a.parse().unwrap(),
            len,
        };
        let sel = Selector {
            laddr: Some(pfx("10.1.0.0", 24)),
            raddr: Some(pfx("10.2.0.0", 24)),
            ..Selector::any()
        };
        let mut set = PolicySet::new();
        set.rules.push(
            Rule::new(
                sel,
                PolicyDir::Both,
                Action::Ipsec(vec![Protection::esp(AlgSpec::any())]),
            )
            .in_tunnel("t", Some(Negotiate::Tunnel)),
        );
        let mut spd = Spd::with_policy(set).unwrap();
        let t = spd.tunnel_id("t");
        let answer = SpdAnswer {
            spd: spd.snapshot(),
            tunnels: vec![(t, None)],
            replay: 64,
            lifetimes: Comb::default(),
        };
        let net = |s: &str, len| Address {
            prefixlen: len,
            ..Address::new(SocketAddr::new(s.parse().unwrap(), 0))
        };
        let ask = |ours: Address, peers: Address| {
            answer
                .inverse_acquire(&InverseQuery {
                    inner_src: Some(ours),
                    inner_dst: Some(peers),
                    ..q("192.0.2.1", "192.0.2.2")
                })
                .map(|_| ())
        };
        assert_eq!(ask(net("10.1.0.0", 24), net("10.2.0.0", 24)), Ok(()));
        assert_eq!(ask(net("10.1.0.0", 25), net("10.2.0.7", 32)), Ok(()));
        // 10.1.0.0/16 starts inside the rule's /24 but goes beyond it.
        assert_eq!(ask(net("10.1.0.0", 16), net("10.2.0.0", 24)), Err(EINVAL));
        assert_eq!(ask(net("10.1.0.0", 24), net("10.2.0.0", 0)), Err(EINVAL));
    }
}
