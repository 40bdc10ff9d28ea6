//! The ipsecconf(8) policy language: parser, typed AST, printer and load-time warnings.
//!
//! # Grammar
//!
//! ```text
//! file        ::= entry*
//! entry       ::= '{' pattern-pair* '}' action '{' prop-pair* '}' ( 'or' action '{' prop-pair* '}' )*
//! action      ::= ipsec | bypass | pass | drop            (new style)
//!               | apply | permit | bypass | pass          (old style: apply = outbound, permit = inbound)
//! pattern-pair::= laddr|local ADDR | raddr|remote ADDR | lport PORT | rport PORT      (new style)
//!               | saddr|src|srcaddr ADDR | daddr|dst|dstaddr|dest ADDR
//!               | sport PORT | dport PORT | smask MASK | dmask MASK                  (old style)
//!               | ulp|proto PROTO | type ICMP-TYPE | code ICMP-CODE
//!               | tunnel IFNAME | negotiate (tunnel|transport) | dir (in|out|both)
//! prop-pair   ::= auth_algs AUTH | encr_algs ENCR | encr_auth_algs AUTH | sa (shared|unique)
//!               | dir (in|out)                                                       (old style)
//! ADDR        ::= address-or-host-name [ '/' prefix-length ]
//! MASK        ::= 0xHHHHHHHH | dotted-quad                (IPv4, contiguous, not 0)
//! PORT        ::= 1..65535 | service name                 (built-in table, see below)
//! PROTO       ::= 1..255 | protocol name                  (built-in table, see below)
//! ICMP-TYPE   ::= 0..255 | N-M | type name                (unreach, echo, ..., router-sol6, neigh-ad6, ...)
//! ICMP-CODE   ::= 0..255 | N-M | code name                (net-unr, ..., needfrag, ..., unreq-opt6)
//! AUTH, ENCR  ::= (any | none | name | PF_KEY number) [ '(' KEYLEN ')' ]
//! KEYLEN      ::= N | N.. | ..N | N..M                    (bits; no blanks inside the token)
//! ```
//!
//! Names (pattern and property names, actions, `dir`, `negotiate` and `sa` values) are
//! case-sensitive, as in Solaris; algorithm, protocol and service names are not. Numbers are
//! decimal or `0x` hexadecimal.
//!
//! ## Lexical rules
//!
//! * Tokens are separated by whitespace; `{` and `}` are tokens of their own wherever they
//!   appear (`{laddr 10.0.0.1}` is four tokens).
//! * `#` begins a comment that runs to the end of the line, anywhere on a line (Solaris cuts
//!   the line at the first `#`).
//! * An entry may span lines anywhere between its tokens, with one exception taken from
//!   Solaris' parser (ipsecconf(8) Example 12): after the `}` that closes an action's
//!   properties, the rest of the line may hold only `or` (which continues the entry) or a
//!   comment. So `or` may not begin a line, and two entries may not share a line. After `or`
//!   the next action may be on a later line.
//! * A backslash has no meaning ("avoid using the backslash character"): it is an ordinary
//!   character, so a `\` at the end of a line is reported as a stray token.
//! * Columns count Unicode scalar values from 1; a tab counts as one column.
//!
//! ## Pattern names (each at most once per entry)
//!
//! | name (synonyms) | value | AST |
//! |---|---|---|
//! | `laddr` (`local`) | ADDR | [`Endpoints::LocalRemote`] `local` |
//! | `raddr` (`remote`) | ADDR | [`Endpoints::LocalRemote`] `remote` |
//! | `lport`, `rport` | PORT | [`Endpoints::LocalRemote`] `lport`, `rport` |
//! | `saddr` (`src`, `srcaddr`) | ADDR | [`Endpoints::SrcDst`] `src` |
//! | `daddr` (`dst`, `dstaddr`, `dest`) | ADDR | [`Endpoints::SrcDst`] `dst` |
//! | `sport`, `dport` | PORT | [`Endpoints::SrcDst`] `sport`, `dport` |
//! | `smask`, `dmask` | MASK | the prefix length of `src` / `dst` |
//! | `ulp` (`proto`) | PROTO | [`Pattern::ulp`] |
//! | `type` | ICMP-TYPE | [`Pattern::icmp_type`] |
//! | `code` | ICMP-CODE | [`Pattern::icmp_code`] |
//! | `tunnel` | interface name | [`Pattern::tunnel`] |
//! | `negotiate` | `tunnel`, `transport` | [`Pattern::negotiate`] |
//! | `dir` | `in`, `out`, `both` | [`Pattern::dir`] |
//!
//! ## Property names (each at most once per action)
//!
//! | name | value | AST |
//! |---|---|---|
//! | `auth_algs` | AUTH | [`Properties::auth_algs`] (AH) |
//! | `encr_algs` | ENCR | [`Properties::encr_algs`] (ESP) |
//! | `encr_auth_algs` | AUTH | [`Properties::encr_auth_algs`] (ESP authentication) |
//! | `sa` | `shared`, `unique` | [`Properties::sa`] |
//! | `dir` | `in`, `out` | [`Properties::dir`] (old style) |
//!
//! # Semantics and checks
//!
//! * **Old and new style.** `saddr`, `daddr`, `sport`, `dport`, `smask`, `dmask` and a `dir`
//!   in the properties make an entry old style (addresses are the packet's source and
//!   destination); `laddr`, `raddr`, `lport`, `rport`, `dir both` and `or` make it new style
//!   (local and remote). One entry may not mix them (Solaris: `Bad "..."`).
//! * **Direction.** `apply` means outbound and `permit` inbound; a `dir` given with them must
//!   agree (Solaris: "Direction in conflict with action"). `ipsec` without `dir` covers both
//!   directions, except in old style, where a direction is required (Solaris: "Requires
//!   Direction"). `bypass`, `pass` and `drop` need a direction (ipsecconf(8): "This is
//!   mandatory when the action is bypass"); Solaris only warns ("dir string not found for
//!   bypass policy") and then installs no rule at all, because the rule has neither
//!   direction flag, so Ironswan refuses the entry. Solaris' Example 6 (`{lport 53} bypass
//!   {}`) is therefore refused: write `{lport 53 dir both} bypass {}`.
//! * **Actions and properties.** `bypass`/`pass`/`drop` take no algorithms and no `sa`
//!   (ipsecconf(8): "dir is the only field that should be present"); `ipsec`, `apply` and
//!   `permit` need at least one of `auth_algs`, `encr_algs`, `encr_auth_algs` with a value
//!   other than `none` (Solaris: "No IPsec algorithms given"). `encr_auth_algs` is refused
//!   with a combined-mode (AEAD) `encr_algs` (Solaris: "Combined mode and esp
//!   authentication not supported together") and with AES-GMAC (AH only).
//! * **Algorithms.** Names and synonyms come from the ipsec-crypto table ([`ipsec_crypto::encr_by_name`],
//!   [`ipsec_crypto::auth_by_name`]), case-insensitive; a number is a PF_KEY algorithm number and must
//!   name a known algorithm (Solaris refuses unknown numbers when it checks the key range
//!   against the kernel's table). `any` means no preference; `none` means "not this
//!   protocol" and is kept in the AST (Solaris ignores it), takes no key length, and does not
//!   count as an algorithm. A key length range must intersect the algorithm's key sizes (for
//!   `any`, only `min <= max` is checked).
//! * **ICMP.** `type` needs `ulp icmp` or `ulp ipv6-icmp`; `code` needs `type`. Type and code
//!   names are those of `ipsec_wire::icmpv4` and `ipsec_wire::icmpv6`; a name ending in `6`
//!   needs `ulp ipv6-icmp`, the others `ulp icmp`; a code name needs the single type it
//!   belongs to (`type unreach code needfrag`, `type timex6 code hop-limex6`). Ranges are
//!   numeric (`type 133-137`) and may not run backwards. ipsecconf(8): "If the ulp is icmp
//!   or ipv6-icmp, any action applying IPsec must be the same for all icmp rules": Ironswan
//!   refuses a file in which two entries for the same ICMP protocol (and the same tunnel, if
//!   any) apply different IPsec protection (the algorithms and `sa` of their `ipsec`,
//!   `apply` and `permit` actions, in order).
//! * **Tunnels.** `tunnel` and `negotiate` go together (Solaris: "tunnel and negotiate tokens
//!   must occur together"). `negotiate transport` allows no addresses (ipsecconf(8)) and no
//!   other selector either (ports, `ulp`, `type`, `code`): the Solaris kernel refuses any
//!   selector on a transport-mode tunnel rule. Interface names are 1 to 31 characters
//!   (letters, digits, `.`, `-`, `_`, `:`); the tunnel need not exist.
//! * **Masks.** `smask`/`dmask` are IPv4 only, must be contiguous and not 0, need `saddr` /
//!   `daddr` in the same entry (Solaris silently ignores them otherwise) and may not be
//!   combined with a `/prefix` (Solaris: "Can't set mask and /NN prefix"). They become the
//!   address' prefix length, so `saddr 10.0.0.0 smask 255.0.0.0` prints as `saddr 10.0.0.0/8`.
//! * **Addresses.** A literal without `/prefix` is a host (/32 or /128). A local and a remote
//!   address of different families are refused (Solaris: "No matching IPv4 or IPv6
//!   saddr/daddr pairs").
//! * **Host names** (when [`ParseOptions::numeric`] is off) are resolved with the system
//!   resolver when the file is parsed and kept with all their addresses
//!   ([`Address::Name`]); the printer writes the name. As in Solaris, a name with several
//!   addresses expands into one SPD rule per (local, remote) address pair of the same family,
//!   and such a name may not carry a `/prefix` ("Can't set /NN prefix on multi-host name").
//!   Network names (getnetbyname) are not supported. Numeric addresses are the tested path.
//! * **Ports** are 1 to 65535 or a name from a built-in table of common services
//!   (`/etc/services` names such as `telnet`, `domain`, `http`, `https`, `isakmp`,
//!   `ipsec-nat-t`); port 0 is refused (Solaris treats it as "no port"). **Protocols** are 1
//!   to 255 or a name from a built-in copy of the Linux `/etc/protocols` names with their
//!   aliases (`icmp`, `tcp`, `udp`, `ipv6-icmp`, also `icmp6` and `icmpv6`, `esp`, `ah`,
//!   `sctp`, ...). See [`protocol_by_name`] and [`service_by_name`].
//! * **`sa`** is kept as written ([`Properties::sa`]); absent means shared.
//!
//! Semantic checks that Solaris leaves to warnings are reported by [`PolicyFile::warnings`]
//! (encryption without authentication, RFC 8221 MUST NOT algorithms, `sa unique` in
//! tunnel-mode tunnels, where it is ignored). A text with any error yields no entries at all.
//!
//! # SPD rules
//!
//! [`PolicyFile::to_rules`] maps the AST onto `ipsec_core::spd::Rule`s in file order (the SPD
//! computes the Solaris priorities from the order and the actions): one rule per address
//! pair, old-style addresses oriented by the direction, `apply`/`permit` as `dir out`/`dir
//! in`. The SPD model cannot hold an entry whose `or` alternatives mix `ipsec` with `bypass`
//! or `drop` (Solaris accepts one); `to_rules` refuses such an entry.
//!
//! # Printer
//!
//! [`print()`] writes one entry per line, in canonical spelling (the first synonym of each
//! name, the canonical algorithm names of the ipsec-crypto table, protocol and ICMP names
//! where they exist, port numbers, masks as prefix lengths). `bypass` and `pass` are the same
//! action and print as `bypass`. The output parses back into an equal [`PolicyFile`]
//! (positions and the file name aside, which equality ignores).

mod lex;
mod names;
mod parse;
mod print;
mod rules;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use ipsec_core::Prefix;
use ipsec_crypto::{auth_info, encr_info, AuthAlg, EncrAlg, Rfc8221};

pub use crate::ipseckey::ParseError;
pub use names::{protocol_by_name, protocol_name, protocols, service_by_name, services};
pub use print::{print, print_entry};

/// A parsed policy file: the entries in file order.
///
/// Equality compares the entries only, not the file name.
#[derive(Debug, Clone, Eq, Default)]
pub struct PolicyFile {
    /// The file name given to the parser (used in the errors of [`PolicyFile::to_rules`]).
    pub file: String,
    /// The entries, in the order they appear in the file.
    pub entries: Vec<Entry>,
}

impl PartialEq for PolicyFile {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

/// One policy entry: `{pattern} action {properties} [or action {properties}]*`.
///
/// Equality compares the values only, not where the entry was written.
#[derive(Debug, Clone, Eq)]
pub struct Entry {
    /// 1-based line of the entry's opening `{`.
    pub line: usize,
    /// 1-based column of the entry's opening `{`.
    pub column: usize,
    /// The traffic selector.
    pub pattern: Pattern,
    /// The action-property pairs, at least one; the second and later were written after
    /// `or`. A transmitter uses the first that works, a receiver accepts any.
    pub alternatives: Vec<(Action, Properties)>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.alternatives == other.alternatives
    }
}

/// The pattern of an entry. Absent fields are wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pattern {
    /// Addresses and ports, in old (source/destination) or new (local/remote) style.
    pub endpoints: Endpoints,
    /// `ulp` / `proto`: the upper-layer protocol number.
    pub ulp: Option<u8>,
    /// `type`: ICMP type or range (only with `ulp` icmp or ipv6-icmp).
    pub icmp_type: Option<IcmpRange>,
    /// `code`: ICMP code or range (only with `type`).
    pub icmp_code: Option<IcmpRange>,
    /// `tunnel`: the tunnel interface whose SPD the entry belongs to.
    pub tunnel: Option<String>,
    /// `negotiate`: tunnel-mode or transport-mode SAs for a tunnel's traffic.
    pub negotiate: Option<Negotiate>,
    /// `dir` in the pattern.
    pub dir: Option<Dir>,
}

/// Addresses and ports of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Endpoints {
    /// No address or port given.
    #[default]
    Any,
    /// Old style (`saddr`, `daddr`, `sport`, `dport`, `smask`, `dmask`): the packet's source
    /// and destination. Outbound, the source is local; inbound, remote. The parser produces
    /// this variant only with at least one field set.
    SrcDst {
        /// `saddr` (with `smask` folded into its prefix length).
        src: Option<Address>,
        /// `daddr` (with `dmask` folded into its prefix length).
        dst: Option<Address>,
        /// `sport`.
        sport: Option<u16>,
        /// `dport`.
        dport: Option<u16>,
    },
    /// New style (`laddr`, `raddr`, `lport`, `rport`). The parser produces this variant only
    /// with at least one field set.
    LocalRemote {
        /// `laddr`.
        local: Option<Address>,
        /// `raddr`.
        remote: Option<Address>,
        /// `lport`.
        lport: Option<u16>,
        /// `rport`.
        rport: Option<u16>,
    },
}

/// An address selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A literal address with its prefix length (a host prefix when none was written).
    Prefix(Prefix),
    /// A host name, resolved when the file was parsed.
    Name {
        /// The name as written.
        name: String,
        /// The `/prefix` written after the name (only for a name with one address).
        prefix: Option<u8>,
        /// Every address the name resolved to, in resolver order.
        addrs: Vec<IpAddr>,
    },
}

impl Address {
    /// The prefixes this address stands for: one for a literal, one per resolved address
    /// for a name (host prefixes unless a `/prefix` was given).
    pub fn prefixes(&self) -> Vec<Prefix> {
        match self {
            Address::Prefix(p) => vec![*p],
            Address::Name { prefix, addrs, .. } => addrs
                .iter()
                .map(|&a| match prefix {
                    Some(len) => Prefix { addr: a, len: *len },
                    None => Prefix::host(a),
                })
                .collect(),
        }
    }
}

/// An ICMP type or code range, `first..=last` (one value when equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpRange {
    /// First value.
    pub first: u8,
    /// Last value (not below `first`).
    pub last: u8,
}

impl IcmpRange {
    /// A single value.
    pub fn single(v: u8) -> Self {
        Self { first: v, last: v }
    }

    /// Whether `v` lies in the range.
    pub fn contains(&self, v: u8) -> bool {
        (self.first..=self.last).contains(&v)
    }
}

/// `negotiate tunnel` or `negotiate transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiate {
    /// Tunnel-mode SAs, with inner selectors (`negotiate tunnel`).
    Tunnel,
    /// Transport-mode SAs on the tunnel's outer packets (`negotiate transport`).
    Transport,
}

/// A `dir` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// `in`: inbound datagrams only.
    In,
    /// `out`: outbound datagrams only.
    Out,
    /// `both` (pattern only, new style).
    Both,
}

impl Dir {
    /// The keyword.
    pub fn name(self) -> &'static str {
        match self {
            Dir::In => "in",
            Dir::Out => "out",
            Dir::Both => "both",
        }
    }

    /// Whether the direction covers inbound traffic.
    pub fn inbound(self) -> bool {
        matches!(self, Dir::In | Dir::Both)
    }

    /// Whether the direction covers outbound traffic.
    pub fn outbound(self) -> bool {
        matches!(self, Dir::Out | Dir::Both)
    }
}

/// An action. `bypass` and `pass` are one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `ipsec`: protect as the properties say (new style).
    Ipsec,
    /// `apply`: protect outbound traffic (old style).
    Apply,
    /// `permit`: accept inbound traffic only if protected as the properties say (old style).
    Permit,
    /// `bypass` / `pass`: no IPsec processing; checked before every other rule.
    Bypass,
    /// `drop`: discard.
    Drop,
}

impl Action {
    /// The keyword the printer writes.
    pub fn name(self) -> &'static str {
        match self {
            Action::Ipsec => "ipsec",
            Action::Apply => "apply",
            Action::Permit => "permit",
            Action::Bypass => "bypass",
            Action::Drop => "drop",
        }
    }

    /// Whether the action applies IPsec (`ipsec`, `apply`, `permit`).
    pub fn applies_ipsec(self) -> bool {
        matches!(self, Action::Ipsec | Action::Apply | Action::Permit)
    }
}

/// The properties of one action.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Properties {
    /// `auth_algs`: AH with this authentication algorithm.
    pub auth_algs: Option<AlgSpec<AuthAlg>>,
    /// `encr_algs`: ESP with this encryption algorithm.
    pub encr_algs: Option<AlgSpec<EncrAlg>>,
    /// `encr_auth_algs`: ESP authentication algorithm (ESP with NULL encryption when
    /// `encr_algs` is absent).
    pub encr_auth_algs: Option<AlgSpec<AuthAlg>>,
    /// `sa shared` / `sa unique` (absent: shared).
    pub sa: Option<SaSharing>,
    /// `dir in` / `dir out` in the properties (old style).
    pub dir: Option<Dir>,
}

impl Properties {
    /// Whether the properties ask for AH (`auth_algs` other than `none`).
    pub fn uses_ah(&self) -> bool {
        self.auth_algs.as_ref().is_some_and(AlgSpec::is_some)
    }

    /// Whether the properties ask for ESP (`encr_algs` or `encr_auth_algs` other than `none`).
    pub fn uses_esp(&self) -> bool {
        self.encr_algs.as_ref().is_some_and(AlgSpec::is_some)
            || self.encr_auth_algs.as_ref().is_some_and(AlgSpec::is_some)
    }
}

/// An algorithm choice with an optional key-length range: `aes(128..256)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgSpec<A> {
    /// The algorithm.
    pub alg: AlgChoice<A>,
    /// Acceptable key lengths in bits (unbounded when both ends are `None`).
    pub key_bits: KeyRange,
}

impl<A> AlgSpec<A> {
    /// An algorithm choice without a key range.
    pub fn new(alg: AlgChoice<A>) -> Self {
        Self {
            alg,
            key_bits: KeyRange::ANY,
        }
    }

    /// Whether the choice is anything but `none`.
    pub fn is_some(&self) -> bool {
        !matches!(self.alg, AlgChoice::None)
    }
}

/// `any`, `none`, or one algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgChoice<A> {
    /// `any`: no preference.
    Any,
    /// `none`: not this protocol (as if the property were absent).
    None,
    /// One algorithm from the ipsec-crypto table.
    Alg(A),
}

/// A key-length range in bits: `(N)`, `(N..)`, `(..N)`, `(N..M)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyRange {
    /// Smallest acceptable length.
    pub min: Option<u16>,
    /// Largest acceptable length.
    pub max: Option<u16>,
}

impl KeyRange {
    /// No constraint.
    pub const ANY: Self = Self {
        min: None,
        max: None,
    };

    /// Exactly `bits`.
    pub fn exact(bits: u16) -> Self {
        Self {
            min: Some(bits),
            max: Some(bits),
        }
    }

    /// Whether no bound is given.
    pub fn is_any(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }

    /// Whether `bits` lies in the range.
    pub fn contains(&self, bits: u16) -> bool {
        self.min.is_none_or(|m| bits >= m) && self.max.is_none_or(|m| bits <= m)
    }
}

/// `sa shared` or `sa unique`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaSharing {
    /// Any SA for the address pair may be used (the default).
    Shared,
    /// An SA used only by this 5-tuple.
    Unique,
}

impl SaSharing {
    /// The keyword.
    pub fn name(self) -> &'static str {
        match self {
            SaSharing::Shared => "shared",
            SaSharing::Unique => "unique",
        }
    }
}

impl Entry {
    /// The traffic direction the entry covers: its `dir` (pattern or properties), else the
    /// direction `apply` (out) or `permit` (in) implies, else both (new-style `ipsec`). The
    /// parser guarantees these agree.
    pub fn direction(&self) -> Dir {
        if let Some(d) = self.pattern.dir {
            return d;
        }
        for (a, p) in &self.alternatives {
            if let Some(d) = p.dir {
                return d;
            }
            match a {
                Action::Apply => return Dir::Out,
                Action::Permit => return Dir::In,
                _ => {}
            }
        }
        Dir::Both
    }
}

/// A load-time warning (Solaris prints these unless `-q` is given; none stops the load).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line of the entry.
    pub line: usize,
    /// What is dubious.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl PolicyFile {
    /// Load-time warnings, in entry order: IPsec actions that encrypt without authentication
    /// (Solaris: "DANGER: Rule on line N has encryption with no authentication"), RFC 8221
    /// MUST NOT algorithms (the SAs for them need `allow_legacy`), and `sa unique` in a
    /// tunnel-mode tunnel entry, where it is ignored.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut out = Vec::new();
        for e in &self.entries {
            let mut warn = |message: String| {
                out.push(Warning {
                    line: e.line,
                    message,
                })
            };
            for (a, p) in &e.alternatives {
                if !a.applies_ipsec() {
                    continue;
                }
                let encr = p.encr_algs.filter(AlgSpec::is_some);
                let aead =
                    matches!(encr.map(|s| s.alg), Some(AlgChoice::Alg(x)) if encr_info(x).aead);
                if encr.is_some()
                    && !aead
                    && !p.uses_ah()
                    && !p.encr_auth_algs.as_ref().is_some_and(AlgSpec::is_some)
                {
                    warn(
                        "encryption with no authentication (cut-and-paste and replay attacks)"
                            .to_string(),
                    );
                }
                if let Some(AlgChoice::Alg(x)) = p.encr_algs.map(|s| s.alg) {
                    let i = encr_info(x);
                    if i.status == Rfc8221::MustNot {
                        warn(format!(
                            "`{}` is RFC 8221 MUST NOT (its SAs need allow_legacy)",
                            i.name
                        ));
                    }
                }
                for (alg, esp) in [(p.auth_algs, false), (p.encr_auth_algs, true)] {
                    if let Some(AlgChoice::Alg(x)) = alg.map(|s| s.alg) {
                        let i = auth_info(x);
                        let status = if esp { i.status_esp } else { i.status_ah };
                        if status == Rfc8221::MustNot {
                            warn(format!(
                                "`{}` is RFC 8221 MUST NOT (its SAs need allow_legacy)",
                                i.name
                            ));
                        }
                    }
                }
                if p.sa == Some(SaSharing::Unique) && e.pattern.negotiate == Some(Negotiate::Tunnel)
                {
                    warn(
                        "`sa unique` is ignored in tunnel-mode tunnels (SAs are per rule)"
                            .to_string(),
                    );
                }
            }
        }
        out
    }
}

/// Options of [`parse_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    /// Accept only address literals; never call the resolver.
    pub numeric: bool,
}

/// Parses a whole policy file, resolving host names.
pub fn parse(text: &str, file: &str) -> Result<PolicyFile, ParseError> {
    parse_with(text, file, ParseOptions::default())
}

/// Parses with options (see [`ParseOptions`]).
pub fn parse_with(text: &str, file: &str, opts: ParseOptions) -> Result<PolicyFile, ParseError> {
    parse::parse_file_text(text, file, opts)
}

/// Reads and parses a file (I/O errors become a ParseError with line 0 and the OS error
/// text; text that is not UTF-8 is refused at the first bad byte).
pub fn parse_file(path: &Path) -> Result<PolicyFile, ParseError> {
    parse_file_with(path, ParseOptions::default())
}

/// [`parse_file`] with options.
pub fn parse_file_with(path: &Path, opts: ParseOptions) -> Result<PolicyFile, ParseError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ParseError {
        file: name.clone(),
        line: 0,
        column: 0,
        token: name.clone(),
        expected: format!("a readable file ({e})"),
    })?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let good =
                String::from_utf8_lossy(bytes.get(..e.valid_up_to()).unwrap_or(&[])).into_owned();
            let line = good.matches('\n').count() + 1;
            let column = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            return Err(ParseError {
                file: name,
                line,
                column,
                token: "invalid UTF-8".to_string(),
                expected: "UTF-8 text".to_string(),
            });
        }
    };
    parse_with(text, &name, opts)
}
