//! Child SA algorithms from the IPsec policy, as Solaris in.ikev2d takes them.
//!
//! * **Initiator**: ipsecd's ACQUIRE carries the policy's proposal, one combination per
//!   `or` alternative in policy order; every combination the IKE core can key becomes one
//!   ESP proposal, in that order ([`suites_from_proposal`]); the rule's `childsa_xform`
//!   goes first when the policy allows it.
//! * **Responder** (IKE_AUTH and the peer's CREATE_CHILD_SA, new or rekey): before the
//!   request is handled the daemon asks ipsecd with PF_KEY X_INVERSE_ACQUIRE for the
//!   Child SA's selectors ([`inverse_acquire_message`]: our address as SRC, the peer's as
//!   DST, the narrowed traffic selectors as protocol and ports, and for tunnel mode as
//!   inner addresses). ipsecd's SPD answers with the extended proposal policy would
//!   demand (X_EPROP), and only those suites may be chosen from the peer's proposals
//!   ([`suites_from_eprop`]); if none is offered, NO_PROPOSAL_CHOSEN and no SA.
//!
//! Precedence: where IPsec policy protects the selectors it alone decides (Solaris has no
//! Child SA transforms in ikev2.config at all). The rule's `childsa_xform` is the fallback
//! when ipsecd answers that no policy protects them (ENOENT), so that configurations
//! keying traffic ipsecd has no `ipsec` rule for keep working; as initiator it is only a
//! preference among what the ACQUIRE allows. Every other outcome refuses the Child SA
//! (NO_PROPOSAL_CHOSEN): another errno or an answer without X_EPROP ([`PolicyAnswer`]),
//! selectors that cannot be asked about as one pair ([`inverse_acquire_message`]), no
//! PF_KEY connection or a failed send (the core refuses a request whose policy answer
//! was never set, `IkeConfig::child_policy_required`).

use std::net::{IpAddr, SocketAddr};

use ike::sa::{ChildSuite, PeerChildRequest};
use ike::wire::TrafficSelector;
use ipsec_crypto::{auth_by_pfkey, encr_by_pfkey, AuthAlg};
use ipsec_pfkey::consts::{
    ENOENT, SADB_SATYPE_AH, SADB_SATYPE_ESP, SADB_X_ALGTYPE_AUTH, SADB_X_ALGTYPE_CRYPT,
    SADB_X_INVERSE_ACQUIRE,
};
use ipsec_pfkey::wire::{Address, EProp, Proposal};
use ipsec_pfkey::Message;

use crate::pfkey::{suite_from_proposal, ts_prefix};

/// IKEv2 ENCR IDs the core keys: AES-CBC, AES-GCM-16, ChaCha20-Poly1305.
const KEYABLE_ENCR: [u16; 3] = [12, 20, 28];
/// IKEv2 INTEG IDs the core keys: HMAC-SHA2-256-128, -384-192, -512-256.
const KEYABLE_INTEG: [u16; 3] = [12, 13, 14];

/// The suites of one combination: ESP encryption `encr` (PF_KEY number) with key sizes in
/// `min..=max` (0: unbounded), and integrity `auth` (PF_KEY number; `None`: the policy
/// does not require it, so an AEAD cipher goes alone and any HMAC-SHA2 serves another).
fn suites_of(
    encr: u8,
    min: u16,
    max: u16,
    auth: Option<u8>,
    transport: bool,
    pfs: bool,
) -> Vec<ChildSuite> {
    let Some(e) = encr_by_pfkey(encr).filter(|e| KEYABLE_ENCR.contains(&e.ikev2)) else {
        return Vec::new();
    };
    let integs: Vec<Option<u16>> = match (e.aead, auth) {
        (true, None) => vec![None],
        (true, Some(a)) if auth_by_pfkey(a).is_some_and(|a| a.alg == AuthAlg::None) => {
            vec![None]
        }
        (true, Some(_)) => Vec::new(),
        (false, None) => KEYABLE_INTEG.iter().map(|i| Some(*i)).collect(),
        (false, Some(a)) => match auth_by_pfkey(a) {
            Some(a) if KEYABLE_INTEG.contains(&a.ikev2) => vec![Some(a.ikev2)],
            _ => Vec::new(),
        },
    };
    let sizes: &[u16] = if e.ikev2 == 28 {
        &[256]
    } else {
        &[128, 192, 256]
    };
    let fits = |b: u16| (min == 0 || min <= b) && (max == 0 || b <= max);
    let mut v = Vec::new();
    for &bits in sizes.iter().filter(|b| fits(**b)) {
        for integ in &integs {
            v.push(ChildSuite {
                encr: e.ikev2,
                key_bits: bits,
                integ: *integ,
                transport,
                pfs,
            });
        }
    }
    v
}

/// The suites an X_EPROP allows, in its order: for each extended combination without AH
/// (the core negotiates ESP only), its ESP encryption and authentication descriptors.
#[must_use]
pub fn suites_from_eprop(e: &EProp, transport: bool, pfs: bool) -> Vec<ChildSuite> {
    let mut v: Vec<ChildSuite> = Vec::new();
    for c in &e.ecombs {
        if c.algs.iter().any(|d| d.satype == SADB_SATYPE_AH) {
            continue;
        }
        let esp = |t: u8| {
            c.algs
                .iter()
                .find(|d| d.satype == SADB_SATYPE_ESP && d.algtype == t)
        };
        let Some(encr) = esp(SADB_X_ALGTYPE_CRYPT) else {
            continue;
        };
        let auth = esp(SADB_X_ALGTYPE_AUTH).map(|d| d.alg);
        for s in suites_of(encr.alg, encr.minbits, encr.maxbits, auth, transport, pfs) {
            if !v.contains(&s) {
                v.push(s);
            }
        }
    }
    v
}

/// The suites an ACQUIRE's proposal allows, in its order, with `preferred` (the rule's)
/// first when the proposal allows it: the first is what `suite_from_proposal` picks.
#[must_use]
pub fn suites_from_proposal(p: &Proposal, preferred: ChildSuite) -> Vec<ChildSuite> {
    let Some(first) = suite_from_proposal(p, preferred) else {
        return Vec::new();
    };
    let mut v = vec![first];
    for c in &p.combs {
        let auth = (c.auth != 0).then_some(c.auth);
        for s in suites_of(
            c.encrypt,
            c.encrypt_minbits,
            c.encrypt_maxbits,
            auth,
            preferred.transport,
            preferred.pfs,
        ) {
            if !v.contains(&s) {
                v.push(s);
            }
        }
    }
    v
}

/// What ipsecd's answer to an X_INVERSE_ACQUIRE lets a responder accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAnswer {
    /// Policy protects the selectors and allows these suites (its X_EPROP; empty: none
    /// the core can key).
    Allows(Vec<ChildSuite>),
    /// No policy protects the selectors (ENOENT): the rule's transforms apply.
    NoPolicy,
    /// Any other answer (another errno, or success without X_EPROP): nothing is allowed.
    Refused(u8),
}

impl PolicyAnswer {
    /// The answer of reply `m`.
    #[must_use]
    pub fn of(m: &Message, transport: bool, pfs: bool) -> Self {
        match (&m.eprop, m.errno) {
            (Some(e), 0) => Self::Allows(suites_from_eprop(e, transport, pfs)),
            (_, ENOENT) => Self::NoPolicy,
            (_, errno) => Self::Refused(errno),
        }
    }

    /// The suites the held request may use, `rule` being the rule's own.
    #[must_use]
    pub fn suites(self, rule: ChildSuite) -> Vec<ChildSuite> {
        match self {
            Self::Allows(v) => v,
            Self::NoPolicy => vec![rule],
            Self::Refused(_) => Vec::new(),
        }
    }
}

/// The one selector of a side that stands for all of them: its only one, or the one that
/// holds all the others (a traffic-triggered initiator puts its packet's selector first,
/// RFC 7296 §2.9), as the SA installed for the side will (`inner_selector` in the
/// daemon). `None` when there is no such selector.
fn holding(ts: &[TrafficSelector]) -> Option<&TrafficSelector> {
    ts.iter()
        .find(|t| ike::ts::within(ts, core::slice::from_ref(t)))
}

/// The protocol and port of a selector as PF_KEY names them: one port, or 0 for all;
/// `None` for a partial port range (PF_KEY addresses cannot express it).
fn proto_port(t: &TrafficSelector) -> Option<(u8, u16)> {
    match (t.start_port, t.end_port) {
        (0, 65535) => Some((t.ip_protocol, 0)),
        (a, b) if a == b => Some((t.ip_protocol, a)),
        _ => None,
    }
}

/// The X_INVERSE_ACQUIRE for the Child SA `req` between `local` (us) and `remote`:
/// transport mode names the hosts with the selectors' protocol and ports; tunnel mode
/// adds the selectors as inner addresses.
///
/// `None` when the narrowed selectors cannot be asked about as one pair (PF_KEY
/// addresses are a prefix, one protocol and one port or all): several selectors on a side
/// with none holding the others, a tunnel-mode range that is not a prefix, a partial port
/// range, or two protocols. Such a request must be refused, not handled as if no policy
/// protected it.
#[must_use]
pub fn inverse_acquire_message(
    local: IpAddr,
    remote: IpAddr,
    req: &PeerChildRequest,
    tunnel: bool,
) -> Option<Message> {
    let (lt, rt) = (holding(&req.ts_local)?, holding(&req.ts_remote)?);
    let ((lp, lport), (rp, rport)) = (proto_port(lt)?, proto_port(rt)?);
    let proto = match (lp, rp) {
        (0, p) | (p, 0) => p,
        (a, b) if a == b => a,
        _ => return None,
    };
    let mut m = Message::new(SADB_X_INVERSE_ACQUIRE, SADB_SATYPE_ESP);
    let outer = |a: IpAddr, port: u16| Address {
        proto: if tunnel { 0 } else { proto },
        ..Address::new(SocketAddr::new(a, if tunnel { 0 } else { port }))
    };
    m.src = Some(outer(local, lport));
    m.dst = Some(outer(remote, rport));
    if tunnel {
        let inner = |t: &TrafficSelector, port: u16| {
            ts_prefix(t).map(|p| Address {
                proto,
                prefixlen: p.len,
                ..Address::new(SocketAddr::new(p.addr, port))
            })
        };
        m.inner_src = Some(inner(lt, lport)?);
        m.inner_dst = Some(inner(rt, rport)?);
    }
    Some(m)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ipsec_crypto::{auth_by_ikev2, encr_by_ikev2};
    use ipsec_pfkey::wire::{AlgDesc, EComb};

    fn desc(algtype: u8, alg: u8, min: u16, max: u16) -> AlgDesc {
        AlgDesc {
            satype: SADB_SATYPE_ESP,
            algtype,
            alg,
            saltbits: 0,
            minbits: min,
            maxbits: max,
        }
    }

    #[test]
    fn eprop_maps_to_suites_in_order() {
        let gcm = encr_by_ikev2(20).unwrap().pfkey;
        let cbc = encr_by_ikev2(12).unwrap().pfkey;
        let sha256 = auth_by_ikev2(12).unwrap().pfkey;
        let e = EProp {
            replay: 64,
            ecombs: vec![
                EComb {
                    algs: vec![
                        desc(SADB_X_ALGTYPE_CRYPT, cbc, 256, 256),
                        desc(SADB_X_ALGTYPE_AUTH, sha256, 256, 256),
                    ],
                    ..EComb::default()
                },
                EComb {
                    algs: vec![desc(SADB_X_ALGTYPE_CRYPT, gcm, 128, 256)],
                    ..EComb::default()
                },
            ],
        };
        let v = suites_from_eprop(&e, true, false);
        let got: Vec<(u16, u16, Option<u16>)> =
            v.iter().map(|s| (s.encr, s.key_bits, s.integ)).collect();
        assert_eq!(
            got,
            vec![
                (12, 256, Some(12)),
                (20, 128, None),
                (20, 192, None),
                (20, 256, None)
            ]
        );
        assert!(v.iter().all(|s| s.transport && !s.pfs));
        // CBC without an authentication descriptor: any HMAC-SHA2.
        let e = EProp {
            replay: 64,
            ecombs: vec![EComb {
                algs: vec![desc(SADB_X_ALGTYPE_CRYPT, cbc, 128, 128)],
                ..EComb::default()
            }],
        };
        assert_eq!(suites_from_eprop(&e, false, false).len(), 3);
    }

    #[test]
    fn inverse_acquire_names_hosts_or_inner_prefixes() {
        let ts = |a: &str, b: &str| TrafficSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: a.parse().unwrap(),
            end: b.parse().unwrap(),
        };
        let req = PeerChildRequest {
            ts_local: vec![ts("10.1.0.0", "10.1.255.255")],
            ts_remote: vec![ts("10.2.0.5", "10.2.0.5")],
            transport: false,
            rekey: None,
        };
        let (l, r): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let m = inverse_acquire_message(l, r, &req, true).unwrap();
        assert_eq!(m.src.unwrap().ip(), l);
        assert_eq!(m.dst.unwrap().ip(), r);
        let (is, id) = (m.inner_src.unwrap(), m.inner_dst.unwrap());
        assert_eq!((is.ip().to_string(), is.prefixlen), ("10.1.0.0".into(), 16));
        assert_eq!((id.ip().to_string(), id.prefixlen), ("10.2.0.5".into(), 32));
        let m = inverse_acquire_message(l, r, &req, false).unwrap();
        assert!(m.inner_src.is_none() && m.inner_dst.is_none());
        Message::parse(&m.emit().unwrap()).unwrap();
    }

    #[test]
    fn selectors_not_expressible_are_not_asked_about() {
        let ts = |a: &str, b: &str, ports: (u16, u16)| TrafficSelector {
            ip_protocol: 6,
            start_port: ports.0,
            end_port: ports.1,
            start: a.parse().unwrap(),
            end: b.parse().unwrap(),
        };
        let all = (0, 65535);
        let net = ts("10.1.0.0", "10.1.0.255", all);
        let other = ts("10.9.0.0", "10.9.0.255", all);
        let peer = ts("10.2.0.0", "10.2.0.255", all);
        let (l, r): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let ask = |ours: Vec<TrafficSelector>, peers: Vec<TrafficSelector>, tunnel: bool| {
            let req = PeerChildRequest {
                ts_local: ours,
                ts_remote: peers,
                transport: !tunnel,
                rekey: None,
            };
            inverse_acquire_message(l, r, &req, tunnel)
        };
        // Two selectors on a side, neither holding the other: no one question.
        assert!(ask(vec![net, other], vec![peer], true).is_none());
        assert!(ask(vec![net, other], vec![peer], false).is_none());
        // A range that is not a prefix, in tunnel mode.
        let range = ts("10.1.0.1", "10.1.0.2", all);
        assert!(ask(vec![range], vec![peer], true).is_none());
        // A partial port range.
        let ports = ts("10.1.0.0", "10.1.0.255", (1000, 2000));
        assert!(ask(vec![ports], vec![peer], true).is_none());
        // A host inside a net (traffic-triggered): asked about the net.
        let host = ts("10.1.0.7", "10.1.0.7", all);
        let m = ask(vec![host, net], vec![peer], true).unwrap();
        let is = m.inner_src.unwrap();
        assert_eq!(
            (is.ip().to_string(), is.prefixlen, is.proto),
            ("10.1.0.0".into(), 24, 6)
        );
        // One port: named.
        let https = ts("10.2.0.0", "10.2.0.255", (443, 443));
        let m = ask(vec![net], vec![https], true).unwrap();
        assert_eq!(m.inner_dst.unwrap().addr.port(), 443);
    }

    #[test]
    fn only_enoent_falls_back_to_the_rule() {
        let rule = ChildSuite {
            encr: 20,
            key_bits: 256,
            integ: None,
            transport: true,
            pfs: false,
        };
        let reply = |errno: u8, eprop: Option<EProp>| {
            let mut m = Message::new(SADB_X_INVERSE_ACQUIRE, SADB_SATYPE_ESP);
            m.errno = errno;
            m.eprop = eprop;
            PolicyAnswer::of(&m, true, false)
        };
        assert_eq!(reply(ENOENT, None), PolicyAnswer::NoPolicy);
        assert_eq!(reply(ENOENT, None).suites(rule), vec![rule]);
        // Any other failure, or success without an X_EPROP: nothing is accepted.
        for (errno, eprop) in [(5, None), (22, None), (0, None)] {
            assert_eq!(
                reply(errno, eprop).suites(rule),
                Vec::new(),
                "errno {errno}"
            );
        }
        let none_keyable = EProp {
            replay: 64,
            ecombs: vec![],
        };
        assert_eq!(reply(0, Some(none_keyable)).suites(rule), Vec::new());
    }
}
