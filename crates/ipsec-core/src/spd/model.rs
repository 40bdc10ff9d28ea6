//! The policy model: everything an ipsecconf(8) file can say, as plain data.
//!
//! An ipsecconf parser produces a [`PolicySet`] (rules in file order); the engine compiles it.
//! The grammar maps onto the model as follows (illumos ipsecconf(8)):
//!
//! | ipsecconf | model |
//! |---|---|
//! | `laddr`/`local` `addr/plen`, `raddr`/`remote` | [`Selector::laddr`], [`Selector::raddr`] ([`Prefix`]; no plen = host prefix) |
//! | `lport`, `rport` (one port; ranges `a-b` are our extension) | [`Selector::lport`], [`Selector::rport`] ([`PortRange`]) |
//! | `ulp`/`proto` | [`Selector::ulp`] (protocol number) |
//! | `type n` / `type a-b`, `code n` / `code a-b` | [`Selector::icmp_type`], [`Selector::icmp_code`] ([`IcmpRange`]) |
//! | `dir in/out/both` | [`Rule::dir`] ([`PolicyDir`]; `ipsec` without `dir` is `both`) |
//! | `tunnel name`, `negotiate tunnel/transport` | [`Rule::tunnel`], [`Rule::negotiate`] |
//! | `bypass`/`pass`, `drop`, `ipsec` | [`Action::Bypass`], [`Action::Drop`], [`Action::Ipsec`] |
//! | `apply` / `permit` (old style) | `ipsec` with `dir out` / `dir in`; [`OldStyle`] maps `saddr`/`daddr`/`sport`/`dport` |
//! | `... or ipsec {...}` | further [`Protection`]s in [`Action::Ipsec`], in order |
//! | `auth_algs alg(keylen)` | [`Protection::ah`] |
//! | `encr_algs`, `encr_auth_algs` | [`Protection::esp`] ([`EspSpec::from_props`] applies the man page's rules) |
//! | `any`, `N`, `N..`, `..N`, `N..M` | [`AlgSpec::alg`] `None`, [`KeyLen`] |
//! | `sa shared/unique` | [`Protection::sa`] |
//!
//! Per-socket requests (`ipsec_req_t`) become the same [`Action`]s; see
//! [`socket`](super::socket).

use core::fmt;
use std::net::IpAddr;

use ipsec_crypto::{auth_info, encr_info, AuthAlg, EncrAlg};

pub use crate::sa::{Mode, Prefix};

use super::key::Dir;

/// IP protocol numbers the model refers to.
pub mod ulp {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IGMP.
    pub const IGMP: u8 = 2;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6 (`ipv6-icmp`).
    pub const ICMPV6: u8 = 58;
    /// PIM.
    pub const PIM: u8 = 103;
    /// SCTP.
    pub const SCTP: u8 = 132;

    /// Protocols whose packets carry ports the selectors can see (Solaris
    /// `ipsec_init_inbound_sel`: TCP, UDP, SCTP).
    pub const fn has_ports(p: u8) -> bool {
        matches!(p, TCP | UDP | SCTP)
    }

    /// ICMP for the family (`ICMP` for IPv4, `ICMPV6` for IPv6).
    pub const fn is_icmp(p: u8, v6: bool) -> bool {
        (p == ICMP && !v6) || (p == ICMPV6 && v6)
    }

    /// The ipsecconf / getprotobyname name of a protocol, if it has a common one.
    pub const fn name(p: u8) -> Option<&'static str> {
        match p {
            ICMP => Some("icmp"),
            IGMP => Some("igmp"),
            TCP => Some("tcp"),
            UDP => Some("udp"),
            ICMPV6 => Some("ipv6-icmp"),
            PIM => Some("pim"),
            SCTP => Some("sctp"),
            _ => None,
        }
    }
}

/// Address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(a: IpAddr) -> Self {
        if a.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
    /// Address width in bits.
    pub const fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// Which direction(s) a rule applies to (`dir`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyDir {
    /// Outbound only (`dir out`, old-style `apply`).
    Out,
    /// Inbound only (`dir in`, old-style `permit`).
    In,
    /// Both (`dir both`; the default for `ipsec`).
    Both,
}

impl PolicyDir {
    /// True when the rule applies to packets travelling in `d`.
    pub const fn covers(self, d: Dir) -> bool {
        matches!(
            (self, d),
            (PolicyDir::Both, _) | (PolicyDir::Out, Dir::Out) | (PolicyDir::In, Dir::In)
        )
    }
    /// `in`, `out` or `both`.
    pub const fn name(self) -> &'static str {
        match self {
            PolicyDir::Out => "out",
            PolicyDir::In => "in",
            PolicyDir::Both => "both",
        }
    }
}

/// An inclusive port range; a single port has `lo == hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl PortRange {
    /// One port.
    pub const fn single(p: u16) -> Self {
        Self { lo: p, hi: p }
    }
    /// `lo..=hi`.
    pub const fn new(lo: u16, hi: u16) -> Self {
        Self { lo, hi }
    }
    /// Whether `p` is in the range.
    pub const fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
    /// One port only.
    pub const fn is_single(&self) -> bool {
        self.lo == self.hi
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// An inclusive range of ICMP types or codes; a single value has `lo == hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IcmpRange {
    /// First value.
    pub lo: u8,
    /// Last value.
    pub hi: u8,
}

impl IcmpRange {
    /// One value.
    pub const fn single(v: u8) -> Self {
        Self { lo: v, hi: v }
    }
    /// `lo..=hi`.
    pub const fn new(lo: u8, hi: u8) -> Self {
        Self { lo, hi }
    }
    /// Whether `v` is in the range.
    pub const fn contains(&self, v: u8) -> bool {
        self.lo <= v && v <= self.hi
    }
}

impl fmt::Display for IcmpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// The pattern of a rule. Absent fields are wildcards. A field that is present never matches a
/// packet lacking it: port selectors never match portless packets (non-first fragments,
/// protocols without ports), ICMP selectors never match non-ICMP packets (RFC 4301 §7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    /// Local address prefix: source of outbound, destination of inbound packets.
    pub laddr: Option<Prefix>,
    /// Remote address prefix: destination of outbound, source of inbound packets.
    pub raddr: Option<Prefix>,
    /// Local port(s).
    pub lport: Option<PortRange>,
    /// Remote port(s).
    pub rport: Option<PortRange>,
    /// Upper-layer protocol.
    pub ulp: Option<u8>,
    /// ICMP type(s); requires `ulp` icmp or ipv6-icmp.
    pub icmp_type: Option<IcmpRange>,
    /// ICMP code(s); requires `icmp_type`.
    pub icmp_code: Option<IcmpRange>,
}

/// The fields of a packet as one rule direction sees them (local/remote instead of src/dst).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Oriented {
    /// Local address.
    pub local: IpAddr,
    /// Remote address.
    pub remote: IpAddr,
    /// Local port, if the packet has ports.
    pub lport: Option<u16>,
    /// Remote port.
    pub rport: Option<u16>,
    /// Protocol.
    pub proto: u8,
    /// ICMP type, for ICMP packets.
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub icmp_code: Option<u8>,
}

impl Selector {
    /// Matches everything.
    pub const fn any() -> Self {
        Self {
            laddr: None,
            raddr: None,
            lport: None,
            rport: None,
            ulp: None,
            icmp_type: None,
            icmp_code: None,
        }
    }

    /// The address family the selector is restricted to by its addresses (None: both).
    pub fn family(&self) -> Option<Family> {
        self.laddr.or(self.raddr).map(|p| Family::of(p.addr))
    }

    /// The reference matching rule, field by field (used by the naive SPD and explain).
    pub fn matches(&self, p: &Oriented) -> bool {
        fn addr_ok(pfx: &Option<Prefix>, a: IpAddr) -> bool {
            pfx.is_none_or(|x| x.contains(a))
        }
        fn port_ok(r: &Option<PortRange>, v: Option<u16>) -> bool {
            match (r, v) {
                (None, _) => true,
                (Some(r), Some(v)) => r.contains(v),
                (Some(_), None) => false,
            }
        }
        fn icmp_ok(r: &Option<IcmpRange>, v: Option<u8>) -> bool {
            match (r, v) {
                (None, _) => true,
                (Some(r), Some(v)) => r.contains(v),
                (Some(_), None) => false,
            }
        }
        addr_ok(&self.laddr, p.local)
            && addr_ok(&self.raddr, p.remote)
            && self.ulp.is_none_or(|u| u == p.proto)
            && port_ok(&self.lport, p.lport)
            && port_ok(&self.rport, p.rport)
            && icmp_ok(&self.icmp_type, p.icmp_type)
            && icmp_ok(&self.icmp_code, p.icmp_code)
    }

    /// Reasons the selector can never match a packet although it is well-formed.
    pub fn unmatchable(&self) -> Option<&'static str> {
        if let (Some(u), true) = (self.ulp, self.lport.is_some() || self.rport.is_some()) {
            if !ulp::has_ports(u) {
                return Some("port selectors with a protocol that carries no ports");
            }
        }
        if let (Some(u), Some(fam)) = (self.ulp, self.family()) {
            if self.icmp_type.is_some()
                && ((u == ulp::ICMP && fam == Family::V6)
                    || (u == ulp::ICMPV6 && fam == Family::V4))
            {
                return Some("ICMP selectors for the other address family's ICMP");
            }
        }
        if self.icmp_type.is_some() && (self.lport.is_some() || self.rport.is_some()) {
            return Some("both ICMP and port selectors");
        }
        None
    }
}

/// `negotiate tunnel|transport` of a tunnel rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Negotiate {
    /// Tunnel-mode SAs; the selectors are the inner addresses.
    Tunnel,
    /// Transport-mode SAs over the tunnel (Solaris 9 compatible); no addresses allowed.
    Transport,
}

/// `sa shared|unique`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SaSharing {
    /// Any existing SA for the address pair may be used (the default).
    #[default]
    Shared,
    /// An SA bound to the packet's 5-tuple, used by no other socket.
    Unique,
}

/// Key-length limits in bits (`(N)`, `(N..)`, `(..N)`, `(N..M)`); `None` is unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyLen {
    /// Smallest acceptable key size.
    pub min: Option<u16>,
    /// Largest acceptable key size.
    pub max: Option<u16>,
}

impl KeyLen {
    /// Any key size.
    pub const ANY: Self = Self {
        min: None,
        max: None,
    };
    /// Exactly `n` bits (`alg(n)`).
    pub const fn exactly(n: u16) -> Self {
        Self {
            min: Some(n),
            max: Some(n),
        }
    }
    /// `alg(min..max)` with either end open.
    pub const fn range(min: Option<u16>, max: Option<u16>) -> Self {
        Self { min, max }
    }
    /// Whether `bits` is acceptable.
    pub fn contains(&self, bits: usize) -> bool {
        self.min.is_none_or(|m| bits >= usize::from(m))
            && self.max.is_none_or(|m| bits <= usize::from(m))
    }
    /// `other ⊆ self`.
    pub fn covers(&self, other: &KeyLen) -> bool {
        let lo_ok = match (self.min, other.min) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => b >= a,
        };
        let hi_ok = match (self.max, other.max) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => b <= a,
        };
        lo_ok && hi_ok
    }
    /// No bound at all.
    pub const fn is_any(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }
}

impl fmt::Display for KeyLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (None, None) => Ok(()),
            (Some(a), Some(b)) if a == b => write!(f, "({a})"),
            (Some(a), Some(b)) => write!(f, "({a}..{b})"),
            (Some(a), None) => write!(f, "({a}..)"),
            (None, Some(b)) => write!(f, "(..{b})"),
        }
    }
}

/// One algorithm requirement: a specific algorithm or `any`, with key-length limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AlgSpec<A> {
    /// The algorithm; `None` is `any`.
    pub alg: Option<A>,
    /// Key-length limits.
    pub key_bits: KeyLen,
}

impl<A> AlgSpec<A> {
    /// `any` with no key-length limit.
    pub const fn any() -> Self {
        Self {
            alg: None,
            key_bits: KeyLen::ANY,
        }
    }
    /// A specific algorithm with no key-length limit.
    pub const fn of(alg: A) -> Self {
        Self {
            alg: Some(alg),
            key_bits: KeyLen::ANY,
        }
    }
    /// With key-length limits.
    pub const fn with_bits(mut self, key_bits: KeyLen) -> Self {
        self.key_bits = key_bits;
        self
    }
}

impl<A: PartialEq + Copy> AlgSpec<A> {
    /// `other ⊆ self`: every SA `other` accepts, `self` accepts too.
    pub fn covers(&self, other: &AlgSpec<A>) -> bool {
        let alg_ok = match (self.alg, other.alg) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a == b,
        };
        alg_ok && self.key_bits.covers(&other.key_bits)
    }
}

impl AlgSpec<EncrAlg> {
    /// Key bits the policy accepts for an SA of `alg`: the stated limits, and when the rule names
    /// the algorithm without a minimum, at least the table's default size (ipsecconf.c
    /// `emit_alg`: `minbits = defkeybits`).
    pub fn accepts(&self, alg: EncrAlg, bits: usize) -> bool {
        if self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        let mut kl = self.key_bits;
        if self.alg.is_some() && kl.min.is_none() {
            kl.min = Some(encr_info(alg).key_bits.default);
        }
        kl.contains(bits)
    }
}

impl AlgSpec<AuthAlg> {
    /// As [`AlgSpec::<EncrAlg>::accepts`] for integrity algorithms.
    pub fn accepts(&self, alg: AuthAlg, bits: usize) -> bool {
        if alg == AuthAlg::None || self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        let mut kl = self.key_bits;
        if self.alg.is_some() && kl.min.is_none() {
            kl.min = Some(auth_info(alg).key_bits.default);
        }
        kl.contains(bits)
    }
}

/// The ESP authentication requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EspAuth {
    /// No `encr_auth_algs`: any ESP SA, with or without authentication (ipsecconf(8): "the
    /// system will use an ESP SA regardless of whether the SA has an authentication algorithm").
    Optional,
    /// `encr_auth_algs`: authentication required, with this algorithm (`any` allowed).
    Required(AlgSpec<AuthAlg>),
}

/// ESP requirements of one alternative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EspSpec {
    /// `encr_algs` (NULL = RFC 2410 null encryption; `None` alg = any).
    pub encr: AlgSpec<EncrAlg>,
    /// `encr_auth_algs`.
    pub auth: EspAuth,
}

impl EspSpec {
    /// ESP from the two ipsecconf properties (ipsecconf(8)): `encr_algs` alone accepts any ESP
    /// SA with that cipher; `encr_auth_algs` alone means NULL encryption with that
    /// authentication; both means encryption with integrity; neither means no ESP.
    pub const fn from_props(
        encr_algs: Option<AlgSpec<EncrAlg>>,
        encr_auth_algs: Option<AlgSpec<AuthAlg>>,
    ) -> Option<Self> {
        match (encr_algs, encr_auth_algs) {
            (None, None) => None,
            (Some(e), None) => Some(Self {
                encr: e,
                auth: EspAuth::Optional,
            }),
            (None, Some(a)) => Some(Self {
                encr: AlgSpec::of(EncrAlg::Null),
                auth: EspAuth::Required(a),
            }),
            (Some(e), Some(a)) => Some(Self {
                encr: e,
                auth: EspAuth::Required(a),
            }),
        }
    }

    /// `other ⊆ self`.
    pub fn covers(&self, other: &EspSpec) -> bool {
        self.encr.covers(&other.encr)
            && match (&self.auth, &other.auth) {
                (EspAuth::Optional, _) => true,
                (EspAuth::Required(_), EspAuth::Optional) => false,
                (EspAuth::Required(a), EspAuth::Required(b)) => a.covers(b),
            }
    }
}

/// One `action {properties}` alternative of an `ipsec` rule, or a per-socket request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Protection {
    /// AH with this algorithm (`auth_algs`).
    pub ah: Option<AlgSpec<AuthAlg>>,
    /// ESP (`encr_algs`, `encr_auth_algs`).
    pub esp: Option<EspSpec>,
    /// `sa shared|unique` (outbound only; inbound uniqueness is not verified by policy).
    pub sa: SaSharing,
    /// Per-socket self-encapsulation (an extra outer IP header, `ipsr_self_encap_req`).
    pub self_encap: bool,
}

impl Protection {
    /// From the ipsecconf properties.
    pub const fn from_props(
        auth_algs: Option<AlgSpec<AuthAlg>>,
        encr_algs: Option<AlgSpec<EncrAlg>>,
        encr_auth_algs: Option<AlgSpec<AuthAlg>>,
        sa: SaSharing,
    ) -> Self {
        Self {
            ah: auth_algs,
            esp: EspSpec::from_props(encr_algs, encr_auth_algs),
            sa,
            self_encap: false,
        }
    }

    /// ESP with `encr` (and no authentication requirement).
    pub const fn esp(encr: AlgSpec<EncrAlg>) -> Self {
        Self {
            ah: None,
            esp: Some(EspSpec {
                encr,
                auth: EspAuth::Optional,
            }),
            sa: SaSharing::Shared,
            self_encap: false,
        }
    }

    /// AH with `auth`.
    pub const fn ah(auth: AlgSpec<AuthAlg>) -> Self {
        Self {
            ah: Some(auth),
            esp: None,
            sa: SaSharing::Shared,
            self_encap: false,
        }
    }

    /// Neither AH nor ESP nor self-encapsulation (only per-socket requests can say this).
    pub const fn is_empty(&self) -> bool {
        self.ah.is_none() && self.esp.is_none() && !self.self_encap
    }

    /// `other ⊆ self` (every SA bundle `other` accepts, `self` accepts), with the same
    /// protocols.
    pub fn covers(&self, other: &Protection) -> bool {
        let ah = match (&self.ah, &other.ah) {
            (None, None) => true,
            (Some(a), Some(b)) => a.covers(b),
            _ => false,
        };
        let esp = match (&self.esp, &other.esp) {
            (None, None) => true,
            (Some(a), Some(b)) => a.covers(b),
            _ => false,
        };
        ah && esp && self.self_encap == other.self_encap
    }
}

/// What to do with packets a rule matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `bypass` / `pass`: no IPsec, no checks.
    Bypass,
    /// `drop`.
    Drop,
    /// `ipsec`: protect with the first alternative that works (outbound); accept any
    /// acceptable alternative (inbound). Never empty.
    Ipsec(Vec<Protection>),
}

impl Action {
    /// `ipsec` with one alternative.
    pub fn ipsec(p: Protection) -> Self {
        Action::Ipsec(vec![p])
    }
    /// The alternatives of an `ipsec` action (empty for bypass and drop).
    pub fn alternatives(&self) -> &[Protection] {
        match self {
            Action::Ipsec(v) => v,
            _ => &[],
        }
    }
    /// `bypass`, `drop` or `ipsec`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Action::Bypass => "bypass",
            Action::Drop => "drop",
            Action::Ipsec(_) => "ipsec",
        }
    }
}

/// One policy entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The pattern.
    pub selector: Selector,
    /// Direction(s).
    pub dir: PolicyDir,
    /// The action (with its `or` alternatives).
    pub action: Action,
    /// `tunnel name`: the rule belongs to that tunnel's SPD instead of the host SPD.
    pub tunnel: Option<String>,
    /// `negotiate`.
    pub negotiate: Option<Negotiate>,
    /// Line of the policy file the rule starts on (diagnostics, explain).
    pub line: Option<u32>,
}

impl Rule {
    /// A host rule.
    pub fn new(selector: Selector, dir: PolicyDir, action: Action) -> Self {
        Self {
            selector,
            dir,
            action,
            tunnel: None,
            negotiate: None,
            line: None,
        }
    }

    /// The same rule in tunnel `name`'s SPD.
    pub fn in_tunnel(mut self, name: &str, negotiate: Option<Negotiate>) -> Self {
        self.tunnel = Some(name.to_owned());
        self.negotiate = negotiate;
        self
    }

    /// The same rule with a source line.
    pub fn at_line(mut self, line: u32) -> Self {
        self.line = Some(line);
        self
    }

    /// The SA mode protection under this rule uses: transport for host rules; for tunnel rules
    /// per `negotiate`, or without it tunnel mode when the rule names inner addresses, ports
    /// or a protocol, else transport mode (the Solaris 9 form).
    pub fn mode(&self) -> Mode {
        if self.tunnel.is_none() {
            return Mode::Transport;
        }
        match self.negotiate {
            Some(Negotiate::Tunnel) => Mode::Tunnel,
            Some(Negotiate::Transport) => Mode::Transport,
            None => {
                let s = &self.selector;
                if s.laddr.is_some()
                    || s.raddr.is_some()
                    || s.lport.is_some()
                    || s.rport.is_some()
                    || s.ulp.is_some()
                {
                    Mode::Tunnel
                } else {
                    Mode::Transport
                }
            }
        }
    }

    /// Structural checks: what a policy file may not say.
    pub fn validate(&self) -> Result<(), ModelError> {
        let s = &self.selector;
        for p in [s.laddr, s.raddr].into_iter().flatten() {
            if p.len > Family::of(p.addr).bits() {
                return Err(ModelError::PrefixTooLong(p));
            }
        }
        if let (Some(l), Some(r)) = (s.laddr, s.raddr) {
            if Family::of(l.addr) != Family::of(r.addr) {
                return Err(ModelError::FamilyMismatch);
            }
        }
        for r in [s.lport, s.rport].into_iter().flatten() {
            if r.lo > r.hi {
                return Err(ModelError::EmptyRange("port"));
            }
        }
        if let Some(t) = s.icmp_type {
            if t.lo > t.hi {
                return Err(ModelError::EmptyRange("type"));
            }
            if !matches!(s.ulp, Some(ulp::ICMP | ulp::ICMPV6)) {
                return Err(ModelError::TypeWithoutIcmp);
            }
        }
        if let Some(c) = s.icmp_code {
            if c.lo > c.hi {
                return Err(ModelError::EmptyRange("code"));
            }
            if s.icmp_type.is_none() {
                return Err(ModelError::CodeWithoutType);
            }
        }
        match (&self.tunnel, self.negotiate) {
            (None, Some(_)) => return Err(ModelError::NegotiateWithoutTunnel),
            (Some(t), _) if t.is_empty() => return Err(ModelError::EmptyTunnelName),
            (Some(_), Some(Negotiate::Transport)) if s.laddr.is_some() || s.raddr.is_some() => {
                return Err(ModelError::TransportWithAddresses)
            }
            _ => {}
        }
        if let Action::Ipsec(alts) = &self.action {
            if alts.is_empty() {
                return Err(ModelError::NoAlternative);
            }
            for p in alts {
                validate_protection(p, false)?;
            }
        }
        Ok(())
    }
}

/// Checks one alternative; `socket` allows alternatives without AH or ESP (per-socket requests).
pub(crate) fn validate_protection(p: &Protection, socket: bool) -> Result<(), ModelError> {
    if p.ah.is_none() && p.esp.is_none() && !socket {
        return Err(ModelError::NothingToApply);
    }
    let kl_ok = |k: &KeyLen| match (k.min, k.max) {
        (Some(a), Some(b)) => a <= b,
        _ => true,
    };
    if let Some(ah) = &p.ah {
        if ah.alg == Some(AuthAlg::None) {
            return Err(ModelError::NoneAlgorithm("auth_algs"));
        }
        if !kl_ok(&ah.key_bits) {
            return Err(ModelError::EmptyRange("key length"));
        }
    }
    if let Some(esp) = &p.esp {
        if !kl_ok(&esp.encr.key_bits) {
            return Err(ModelError::EmptyRange("key length"));
        }
        if let EspAuth::Required(a) = &esp.auth {
            if a.alg == Some(AuthAlg::None) {
                return Err(ModelError::NoneAlgorithm("encr_auth_algs"));
            }
            if matches!(
                a.alg,
                Some(AuthAlg::AesGmac128 | AuthAlg::AesGmac192 | AuthAlg::AesGmac256)
            ) {
                return Err(ModelError::AhOnlyAlgorithm);
            }
            if !kl_ok(&a.key_bits) {
                return Err(ModelError::EmptyRange("key length"));
            }
        }
    }
    Ok(())
}

/// A structural error in a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// Prefix length beyond 32 (IPv4) or 128 (IPv6).
    PrefixTooLong(Prefix),
    /// `laddr` and `raddr` of different families.
    FamilyMismatch,
    /// A range whose start is after its end.
    EmptyRange(&'static str),
    /// `type` without `ulp icmp` or `ulp ipv6-icmp` (ipsecconf(8)).
    TypeWithoutIcmp,
    /// `code` without `type` (ipsecconf(8)).
    CodeWithoutType,
    /// `negotiate` outside a tunnel rule.
    NegotiateWithoutTunnel,
    /// `tunnel` with an empty name.
    EmptyTunnelName,
    /// `negotiate transport` with addresses (ipsecconf(8): "no addresses can appear").
    TransportWithAddresses,
    /// `ipsec` with no alternative.
    NoAlternative,
    /// An `ipsec` alternative that applies neither AH nor ESP.
    NothingToApply,
    /// The `none` algorithm where an algorithm is required.
    NoneAlgorithm(&'static str),
    /// AES-GMAC named as ESP authentication (it is an AH algorithm; ESP uses aes-none-gmac).
    AhOnlyAlgorithm,
    /// More rules than priorities can order (more than 0xfffff).
    TooManyRules,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::PrefixTooLong(p) => write!(f, "prefix {p} is longer than the address"),
            ModelError::FamilyMismatch => {
                f.write_str("laddr and raddr are of different address families")
            }
            ModelError::EmptyRange(what) => write!(f, "empty {what} range"),
            ModelError::TypeWithoutIcmp => f.write_str("type requires ulp icmp or ipv6-icmp"),
            ModelError::CodeWithoutType => f.write_str("code requires type"),
            ModelError::NegotiateWithoutTunnel => f.write_str("negotiate requires tunnel"),
            ModelError::EmptyTunnelName => f.write_str("empty tunnel name"),
            ModelError::TransportWithAddresses => {
                f.write_str("negotiate transport allows no addresses")
            }
            ModelError::NoAlternative => f.write_str("ipsec without properties"),
            ModelError::NothingToApply => {
                f.write_str("ipsec needs auth_algs, encr_algs or encr_auth_algs")
            }
            ModelError::NoneAlgorithm(p) => write!(f, "{p} may not be none"),
            ModelError::AhOnlyAlgorithm => {
                f.write_str("AES-GMAC is an AH algorithm; ESP uses aes-none-gmac")
            }
            ModelError::TooManyRules => f.write_str("more than 1048575 rules"),
        }
    }
}

impl std::error::Error for ModelError {}

/// Old-style (`apply`/`permit`) source and destination selectors, mapped to local/remote by
/// the direction: `apply` is outbound (source = local), `permit` is inbound (source = remote).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OldStyle {
    /// `saddr`/`src`/`srcaddr` (with `smask`).
    pub saddr: Option<Prefix>,
    /// `daddr`/`dst`/`dstaddr` (with `dmask`).
    pub daddr: Option<Prefix>,
    /// `sport`.
    pub sport: Option<PortRange>,
    /// `dport`.
    pub dport: Option<PortRange>,
    /// `ulp`/`proto`.
    pub ulp: Option<u8>,
    /// `type`.
    pub icmp_type: Option<IcmpRange>,
    /// `code`.
    pub icmp_code: Option<IcmpRange>,
}

impl OldStyle {
    /// The new-style selector for a rule applying in `dir` (`Out` for `apply`, `In` for
    /// `permit`; for old-style `bypass` the `dir` property). `Both` is treated as outbound
    /// orientation (old-style rules have a single direction).
    pub fn selector(&self, dir: PolicyDir) -> Selector {
        let inbound = dir == PolicyDir::In;
        let (laddr, raddr, lport, rport) = if inbound {
            (self.daddr, self.saddr, self.dport, self.sport)
        } else {
            (self.saddr, self.daddr, self.sport, self.dport)
        };
        Selector {
            laddr,
            raddr,
            lport,
            rport,
            ulp: self.ulp,
            icmp_type: self.icmp_type,
            icmp_code: self.icmp_code,
        }
    }
}

/// A whole policy: rules in file order. The position of a rule is its index (and sets its
/// base priority `0x000fffff - index`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicySet {
    /// The rules.
    pub rules: Vec<Rule>,
}

impl PolicySet {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }
    /// From rules in file order.
    pub fn from_rules(rules: Vec<Rule>) -> Self {
        Self { rules }
    }
    /// Appends a rule; returns its index.
    pub fn push(&mut self, rule: Rule) -> usize {
        self.rules.push(rule);
        self.rules.len() - 1
    }
    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }
    /// No rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
    /// The names of the tunnels with rules, sorted, without duplicates.
    pub fn tunnel_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .rules
            .iter()
            .filter_map(|r| r.tunnel.as_deref())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
    /// Checks every rule; the first error with its rule index.
    pub fn validate(&self) -> Result<(), (usize, ModelError)> {
        if self.rules.len() > super::priority::MAX_RULES {
            return Err((self.rules.len(), ModelError::TooManyRules));
        }
        for (i, r) in self.rules.iter().enumerate() {
            r.validate().map_err(|e| (i, e))?;
        }
        Ok(())
    }
}

fn fmt_alg<A: Copy>(
    f: &mut fmt::Formatter<'_>,
    spec: &AlgSpec<A>,
    name: impl Fn(A) -> &'static str,
) -> fmt::Result {
    match spec.alg {
        None => f.write_str("any")?,
        Some(a) => f.write_str(name(a))?,
    }
    write!(f, "{}", spec.key_bits)
}

impl fmt::Display for Protection {
    /// The ipsecconf properties, e.g. `{encr_algs aes-cbc(128..) encr_auth_algs hmac-sha256 sa
    /// shared}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        let mut sep = "";
        if let Some(ah) = &self.ah {
            f.write_str("auth_algs ")?;
            fmt_alg(f, ah, |a| auth_info(a).name)?;
            sep = " ";
        }
        if let Some(esp) = &self.esp {
            let null_only = matches!(esp.auth, EspAuth::Required(_))
                && esp.encr.alg == Some(EncrAlg::Null)
                && esp.encr.key_bits.is_any();
            if !null_only {
                write!(f, "{sep}encr_algs ")?;
                fmt_alg(f, &esp.encr, |a| encr_info(a).name)?;
                sep = " ";
            }
            if let EspAuth::Required(a) = &esp.auth {
                write!(f, "{sep}encr_auth_algs ")?;
                fmt_alg(f, a, |a| auth_info(a).name)?;
                sep = " ";
            }
        }
        if self.self_encap {
            write!(f, "{sep}self_encap")?;
            sep = " ";
        }
        let sa = match self.sa {
            SaSharing::Shared => "shared",
            SaSharing::Unique => "unique",
        };
        write!(f, "{sep}sa {sa}}}")
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Bypass => f.write_str("bypass {}"),
            Action::Drop => f.write_str("drop {}"),
            Action::Ipsec(alts) => {
                for (i, p) in alts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "ipsec {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Selector {
    /// The pattern's name-value pairs, space separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut put = |f: &mut fmt::Formatter<'_>, s: fmt::Arguments<'_>| -> fmt::Result {
            f.write_str(sep)?;
            sep = " ";
            f.write_fmt(s)
        };
        if let Some(p) = self.laddr {
            put(f, format_args!("laddr {p}"))?;
        }
        if let Some(p) = self.raddr {
            put(f, format_args!("raddr {p}"))?;
        }
        if let Some(u) = self.ulp {
            match ulp::name(u) {
                Some(n) => put(f, format_args!("ulp {n}"))?,
                None => put(f, format_args!("ulp {u}"))?,
            }
        }
        if let Some(p) = self.lport {
            put(f, format_args!("lport {p}"))?;
        }
        if let Some(p) = self.rport {
            put(f, format_args!("rport {p}"))?;
        }
        if let Some(t) = self.icmp_type {
            put(f, format_args!("type {t}"))?;
        }
        if let Some(c) = self.icmp_code {
            put(f, format_args!("code {c}"))?;
        }
        Ok(())
    }
}

impl fmt::Display for Rule {
    /// The rule in new-style ipsecconf syntax, on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        let sel = self.selector.to_string();
        let mut parts: Vec<String> = Vec::new();
        if let Some(t) = &self.tunnel {
            parts.push(format!("tunnel {t}"));
            if let Some(n) = self.negotiate {
                parts.push(
                    match n {
                        Negotiate::Tunnel => "negotiate tunnel",
                        Negotiate::Transport => "negotiate transport",
                    }
                    .to_owned(),
                );
            }
        }
        if !sel.is_empty() {
            parts.push(sel);
        }
        parts.push(format!("dir {}", self.dir.name()));
        write!(f, "{}}} {}", parts.join(" "), self.action)
    }
}
