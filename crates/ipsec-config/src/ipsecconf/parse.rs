//! Entries: from tokens to the AST, with every check of the module documentation.

use std::net::{IpAddr, ToSocketAddrs};

use ipsec_core::Prefix;
use ipsec_crypto::{
    auth_by_name, auth_by_pfkey, auth_info, encr_by_name, encr_by_pfkey, encr_info,
};
use ipsec_crypto::{AuthAlg, EncrAlg, KeyBits};

use super::lex::{self, Kind, Token};
use super::names::{self, ICMP, ICMPV6};
use super::{
    Action, Address, AlgChoice, AlgSpec, Dir, Endpoints, Entry, IcmpRange, KeyRange, Negotiate,
    ParseError, ParseOptions, Pattern, PolicyFile, Properties, SaSharing,
};

const ACTIONS: &str = "an action (ipsec, bypass, pass, drop, apply, permit)";
const PATTERN_NAMES: &str = "a pattern name (laddr, raddr, lport, rport, saddr, daddr, sport, \
     dport, smask, dmask, ulp, type, code, tunnel, negotiate, dir) or `}`";
const PROPERTY_NAMES: &str =
    "a property name (auth_algs, encr_algs, encr_auth_algs, sa, dir) or `}`";
const OLD_NAMES: &str = "saddr, daddr, sport, dport, smask, dmask, dir in the properties";
const NEW_NAMES: &str = "laddr, raddr, lport, rport, dir both, or";
/// Longest tunnel interface name (Solaris LIFNAMSIZ - 1).
const MAX_IFNAME: usize = 31;

pub(crate) fn parse_file_text(
    text: &str,
    file: &str,
    opts: ParseOptions,
) -> Result<PolicyFile, ParseError> {
    let lexed = lex::lex(text);
    let mut p = Parser {
        toks: &lexed.tokens,
        pos: 0,
        file,
        opts,
        end: (lexed.end_line, lexed.end_col),
    };
    let mut entries = Vec::new();
    let mut icmp: Vec<IcmpGroup> = Vec::new();
    while p.peek().is_some() {
        let (e, first_ipsec) = p.entry()?;
        if let Some(tok) = first_ipsec {
            p.check_icmp(&e, tok, &mut icmp)?;
        }
        entries.push(e);
    }
    Ok(PolicyFile {
        file: file.to_string(),
        entries,
    })
}

/// Duplicate-detection slot of a name (synonyms share one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Local,
    Remote,
    Lport,
    Rport,
    Src,
    Dst,
    Sport,
    Dport,
    Smask,
    Dmask,
    Ulp,
    Type,
    Code,
    Tunnel,
    Negotiate,
    Dir,
    AuthAlgs,
    EncrAlgs,
    EncrAuthAlgs,
    Sa,
}

impl Slot {
    fn describe(self) -> &'static str {
        match self {
            Slot::Local => "local address",
            Slot::Remote => "remote address",
            Slot::Lport => "local port",
            Slot::Rport => "remote port",
            Slot::Src => "source address",
            Slot::Dst => "destination address",
            Slot::Sport => "source port",
            Slot::Dport => "destination port",
            Slot::Smask => "source mask",
            Slot::Dmask => "destination mask",
            Slot::Ulp => "upper-layer protocol",
            Slot::Type => "ICMP type",
            Slot::Code => "ICMP code",
            Slot::Tunnel => "tunnel",
            Slot::Negotiate => "negotiate",
            Slot::Dir => "direction",
            Slot::AuthAlgs => "authentication algorithm",
            Slot::EncrAlgs => "encryption algorithm",
            Slot::EncrAuthAlgs => "ESP authentication algorithm",
            Slot::Sa => "sa",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Old,
    New,
}

fn pattern_name(text: &str) -> Option<(Slot, Option<Style>)> {
    let (s, style) = match text {
        "laddr" | "local" => (Slot::Local, Some(Style::New)),
        "raddr" | "remote" => (Slot::Remote, Some(Style::New)),
        "lport" => (Slot::Lport, Some(Style::New)),
        "rport" => (Slot::Rport, Some(Style::New)),
        "saddr" | "src" | "srcaddr" => (Slot::Src, Some(Style::Old)),
        "daddr" | "dst" | "dstaddr" | "dest" => (Slot::Dst, Some(Style::Old)),
        "sport" => (Slot::Sport, Some(Style::Old)),
        "dport" => (Slot::Dport, Some(Style::Old)),
        "smask" => (Slot::Smask, Some(Style::Old)),
        "dmask" => (Slot::Dmask, Some(Style::Old)),
        "ulp" | "proto" => (Slot::Ulp, None),
        "type" => (Slot::Type, None),
        "code" => (Slot::Code, None),
        "tunnel" => (Slot::Tunnel, None),
        "negotiate" => (Slot::Negotiate, None),
        "dir" => (Slot::Dir, None),
        _ => return None,
    };
    Some((s, style))
}

fn property_name(text: &str) -> Option<Slot> {
    Some(match text {
        "auth_algs" => Slot::AuthAlgs,
        "encr_algs" => Slot::EncrAlgs,
        "encr_auth_algs" => Slot::EncrAuthAlgs,
        "sa" => Slot::Sa,
        "dir" => Slot::Dir,
        _ => return None,
    })
}

/// A number: decimal without leading zeros, or `0x` hexadecimal. (Solaris reads numbers
/// with `strtol(.., 0)`, where a leading zero means octal; Ironswan refuses the ambiguity.)
pub(crate) fn number(text: &str) -> Option<u64> {
    if let Some(h) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return u64::from_str_radix(h, 16).ok();
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && !s.starts_with('-')
        && !s.starts_with('.')
}

fn is_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_IFNAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

fn pos(t: &Token) -> String {
    format!("{}:{}", t.line, t.col)
}

/// An address operand before resolution.
struct AddrArg<'a> {
    name: &'a Token,
    value: &'a Token,
    host: String,
    prefix: Option<u8>,
    literal: Option<IpAddr>,
}

/// A mask operand: the prefix length it stands for.
struct MaskArg<'a> {
    name: &'a Token,
    len: u8,
}

/// What the pattern's names said, with their tokens for error positions.
#[derive(Default)]
struct PatternParts<'a> {
    local: Option<AddrArg<'a>>,
    remote: Option<AddrArg<'a>>,
    src: Option<AddrArg<'a>>,
    dst: Option<AddrArg<'a>>,
    lport: Option<u16>,
    rport: Option<u16>,
    sport: Option<u16>,
    dport: Option<u16>,
    smask: Option<MaskArg<'a>>,
    dmask: Option<MaskArg<'a>>,
    ulp: Option<u8>,
    /// `type`; `named` is the protocol of the type name, if a name was used.
    icmp_type: Option<IcmpArg<'a, u8>>,
    /// `code`; `named` is the (type, protocol) of the code name, if a name was used.
    icmp_code: Option<IcmpArg<'a, (u8, u8)>>,
    tunnel: Option<String>,
    negotiate: Option<Negotiate>,
    dir: Option<(Dir, &'a Token)>,
}

/// An ICMP type or code operand.
struct IcmpArg<'a, N> {
    range: IcmpRange,
    named: Option<N>,
    name: &'a Token,
    value: &'a Token,
}

/// Tokens of one action-properties pair, for the checks made once the entry is complete.
struct AltToks<'a> {
    action: &'a Token,
    close: &'a Token,
    /// (slot, name token) of every property given.
    names: Vec<(Slot, &'a Token)>,
    /// `dir` in the properties: value and token.
    dir: Option<(Dir, &'a Token)>,
}

/// Names seen so far in an entry: the pattern's (and a `dir` in the properties), and the
/// first old-style and new-style markers.
#[derive(Default)]
struct Seen<'a> {
    pattern: Vec<(Slot, &'a Token)>,
    old: Option<&'a Token>,
    new: Option<&'a Token>,
}

/// The first entry seen per (tunnel, ICMP protocol) that applies IPsec.
struct IcmpGroup {
    tunnel: Option<String>,
    ulp: u8,
    line: usize,
    protection: Vec<Protection>,
}

type Protection = (
    Option<AlgSpec<AuthAlg>>,
    Option<AlgSpec<EncrAlg>>,
    Option<AlgSpec<AuthAlg>>,
    SaSharing,
);

fn protection(e: &Entry) -> Vec<Protection> {
    e.alternatives
        .iter()
        .filter(|(a, _)| a.applies_ipsec())
        .map(|(_, p)| {
            (
                p.auth_algs.filter(AlgSpec::is_some),
                p.encr_algs.filter(AlgSpec::is_some),
                p.encr_auth_algs.filter(AlgSpec::is_some),
                p.sa.unwrap_or(SaSharing::Shared),
            )
        })
        .collect()
}

struct Parser<'a> {
    toks: &'a [Token],
    pos: usize,
    file: &'a str,
    opts: ParseOptions,
    end: (usize, usize),
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<&'a Token> {
        let t = self.toks.get(self.pos);
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn err(&self, tok: &Token, expected: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            line: tok.line,
            column: tok.col,
            token: tok.text.clone(),
            expected: expected.into(),
        }
    }

    fn err_end(&self, expected: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            line: self.end.0,
            column: self.end.1,
            token: "end of input".to_string(),
            expected: expected.into(),
        }
    }

    /// The value after a name: a word on any line.
    fn value(&mut self, name: &Token, what: &str) -> Result<&'a Token, ParseError> {
        match self.next() {
            Some(t) if t.kind == Kind::Word => Ok(t),
            Some(t) => Err(self.err(t, format!("{what} after `{}`", name.text))),
            None => Err(self.err_end(format!("{what} after `{}`", name.text))),
        }
    }

    /// Records a style marker; an entry may not mix old and new style.
    fn mark(&self, seen: &mut Seen<'a>, style: Style, tok: &'a Token) -> Result<(), ParseError> {
        let (mine, other) = match style {
            Style::Old => (&mut seen.old, seen.new),
            Style::New => (&mut seen.new, seen.old),
        };
        if let Some(o) = other {
            let (this_kind, other_kind) = match style {
                Style::Old => ("old-style", "new-style"),
                Style::New => ("new-style", "old-style"),
            };
            return Err(self.err(
                tok,
                format!(
                    "no {this_kind} `{}` in an entry that already uses {other_kind} `{}` at {} \
                     (old style: {OLD_NAMES}; new style: {NEW_NAMES})",
                    tok.text,
                    o.text,
                    pos(o)
                ),
            ));
        }
        if mine.is_none() {
            *mine = Some(tok);
        }
        Ok(())
    }

    fn duplicate(
        &self,
        list: &[(Slot, &'a Token)],
        slot: Slot,
        tok: &Token,
    ) -> Result<(), ParseError> {
        if let Some((_, first)) = list.iter().find(|(s, _)| *s == slot) {
            return Err(self.err(
                tok,
                format!(
                    "a single {} (`{}` already given at {}; each name may appear once per entry)",
                    slot.describe(),
                    first.text,
                    pos(first)
                ),
            ));
        }
        Ok(())
    }

    /// One entry; also returns the first action token that applies IPsec, if any.
    fn entry(&mut self) -> Result<(Entry, Option<&'a Token>), ParseError> {
        let open = match self.next() {
            Some(t) if t.kind == Kind::Open => t,
            Some(t) => return Err(self.err(t, "`{` to start a policy entry")),
            None => return Err(self.err_end("`{` to start a policy entry")),
        };
        let mut seen = Seen::default();
        let mut parts = PatternParts::default();
        loop {
            let name = match self.next() {
                Some(t) if t.kind == Kind::Close => break,
                Some(t) if t.kind == Kind::Word => t,
                Some(t) => return Err(self.err(t, PATTERN_NAMES)),
                None => {
                    return Err(
                        self.err_end(format!("`}}` to close the pattern opened at {}", pos(open)))
                    )
                }
            };
            let Some((slot, style)) = pattern_name(&name.text) else {
                return Err(self.err(name, PATTERN_NAMES));
            };
            self.duplicate(&seen.pattern, slot, name)?;
            if let Some(s) = style {
                self.mark(&mut seen, s, name)?;
            }
            self.pattern_value(name, slot, &mut parts, &mut seen)?;
            seen.pattern.push((slot, name));
        }

        let mut alternatives = Vec::new();
        let mut alt_toks: Vec<AltToks<'a>> = Vec::new();
        loop {
            let (action, props, toks) = self.alternative(&mut seen)?;
            alternatives.push((action, props));
            let close = toks.close;
            alt_toks.push(toks);
            match self.peek() {
                Some(t) if t.line == close.line => {
                    if t.is_word("or") {
                        self.next();
                        self.mark(&mut seen, Style::New, t)?;
                    } else {
                        return Err(self.err(
                            t,
                            "`or` or the end of the line after the properties (each policy \
                             entry begins on a new line)",
                        ));
                    }
                }
                Some(t) if t.is_word("or") => {
                    return Err(self.err(
                        t,
                        format!(
                            "`{{` to start a new entry: `or` must be on the same line as the `}}` \
                             at {} that closes the properties before it (ipsecconf(8) Example 12)",
                            pos(close)
                        ),
                    ))
                }
                _ => break,
            }
        }

        let pattern_dir = parts.dir;
        let pattern = self.pattern(parts, &seen)?;
        self.check_actions(pattern_dir, &alternatives, &alt_toks, &seen)?;
        let first_ipsec = alternatives
            .iter()
            .zip(&alt_toks)
            .find(|((a, _), _)| a.applies_ipsec())
            .map(|(_, t)| t.action);
        Ok((
            Entry {
                line: open.line,
                column: open.col,
                pattern,
                alternatives,
            },
            first_ipsec,
        ))
    }

    fn alternative(
        &mut self,
        seen: &mut Seen<'a>,
    ) -> Result<(Action, Properties, AltToks<'a>), ParseError> {
        let tok = match self.next() {
            Some(t) if t.kind == Kind::Word => t,
            Some(t) => return Err(self.err(t, ACTIONS)),
            None => return Err(self.err_end(ACTIONS)),
        };
        let action = match tok.text.as_str() {
            "ipsec" => Action::Ipsec,
            "apply" => Action::Apply,
            "permit" => Action::Permit,
            "bypass" | "pass" => Action::Bypass,
            "drop" => Action::Drop,
            _ => return Err(self.err(tok, ACTIONS)),
        };
        let what = format!("`{{` to open the properties of `{}`", tok.text);
        match self.next() {
            Some(t) if t.kind == Kind::Open => {}
            Some(t) => return Err(self.err(t, what)),
            None => return Err(self.err_end(what)),
        }
        let mut props = Properties::default();
        let mut names: Vec<(Slot, &'a Token)> = Vec::new();
        let mut dir = None;
        let close = loop {
            let name = match self.next() {
                Some(t) if t.kind == Kind::Close => break t,
                Some(t) if t.kind == Kind::Word => t,
                Some(t) => return Err(self.err(t, PROPERTY_NAMES)),
                None => {
                    return Err(self.err_end(format!(
                        "`}}` to close the properties of `{}` at {}",
                        tok.text,
                        pos(tok)
                    )))
                }
            };
            let Some(slot) = property_name(&name.text) else {
                return Err(self.err(name, PROPERTY_NAMES));
            };
            self.duplicate(&names, slot, name)?;
            match slot {
                Slot::AuthAlgs => {
                    props.auth_algs = Some(self.auth_alg(name, false)?);
                }
                Slot::EncrAuthAlgs => {
                    props.encr_auth_algs = Some(self.auth_alg(name, true)?);
                }
                Slot::EncrAlgs => props.encr_algs = Some(self.encr_alg(name)?),
                Slot::Sa => {
                    const WHAT: &str = "`shared` or `unique`";
                    let v = self.value(name, WHAT)?;
                    props.sa = Some(match v.text.as_str() {
                        "shared" => SaSharing::Shared,
                        "unique" => SaSharing::Unique,
                        _ => return Err(self.err(v, WHAT)),
                    });
                }
                _ => {
                    // `dir` in the properties: old style; one direction per entry.
                    self.duplicate(&seen.pattern, Slot::Dir, name)?;
                    self.mark(seen, Style::Old, name)?;
                    const WHAT: &str = "`in` or `out`";
                    let v = self.value(name, WHAT)?;
                    let d = match v.text.as_str() {
                        "in" => Dir::In,
                        "out" => Dir::Out,
                        "both" => {
                            return Err(self.err(
                                v,
                                "`in` or `out` (`dir both` belongs in the pattern, new style)",
                            ))
                        }
                        _ => return Err(self.err(v, WHAT)),
                    };
                    props.dir = Some(d);
                    dir = Some((d, v));
                    seen.pattern.push((Slot::Dir, name));
                }
            }
            names.push((slot, name));
        };
        Ok((
            action,
            props,
            AltToks {
                action: tok,
                close,
                names,
                dir,
            },
        ))
    }

    fn pattern_value(
        &mut self,
        name: &'a Token,
        slot: Slot,
        parts: &mut PatternParts<'a>,
        seen: &mut Seen<'a>,
    ) -> Result<(), ParseError> {
        match slot {
            Slot::Local => parts.local = Some(self.address(name)?),
            Slot::Remote => parts.remote = Some(self.address(name)?),
            Slot::Src => parts.src = Some(self.address(name)?),
            Slot::Dst => parts.dst = Some(self.address(name)?),
            Slot::Lport => parts.lport = Some(self.port(name)?),
            Slot::Rport => parts.rport = Some(self.port(name)?),
            Slot::Sport => parts.sport = Some(self.port(name)?),
            Slot::Dport => parts.dport = Some(self.port(name)?),
            Slot::Smask => parts.smask = Some(self.mask(name)?),
            Slot::Dmask => parts.dmask = Some(self.mask(name)?),
            Slot::Ulp => {
                const WHAT: &str =
                    "a protocol (1-255) or a protocol name such as tcp, udp, icmp, ipv6-icmp";
                let v = self.value(name, WHAT)?;
                let p = match number(&v.text) {
                    Some(n) => u8::try_from(n).ok().filter(|&n| n != 0),
                    None => names::protocol_by_name(&v.text),
                };
                parts.ulp = Some(p.ok_or_else(|| self.err(v, WHAT))?);
            }
            Slot::Type => {
                const WHAT: &str = "an ICMP type (0-255), a range N-M, or a type name such as \
                                    echo, unreach, router-sol6, neigh-ad6";
                let v = self.value(name, WHAT)?;
                let (range, by_name) = match self.icmp_range(v) {
                    Some(r) => (r, None),
                    None => match names::icmp_type_by_name(&v.text) {
                        Some((t, ulp)) => (IcmpRange::single(t), Some(ulp)),
                        None => return Err(self.err(v, WHAT)),
                    },
                };
                parts.icmp_type = Some(IcmpArg {
                    range,
                    named: by_name,
                    name,
                    value: v,
                });
            }
            Slot::Code => {
                const WHAT: &str = "an ICMP code (0-255), a range N-M, or a code name such as \
                                    port-unr, needfrag, no-route6, unreq-opt6";
                let v = self.value(name, WHAT)?;
                let (range, by_name) = match self.icmp_range(v) {
                    Some(r) => (r, None),
                    None => match names::icmp_code_by_name(&v.text) {
                        Some((c, t, ulp)) => (IcmpRange::single(c), Some((t, ulp))),
                        None => return Err(self.err(v, WHAT)),
                    },
                };
                parts.icmp_code = Some(IcmpArg {
                    range,
                    named: by_name,
                    name,
                    value: v,
                });
            }
            Slot::Tunnel => {
                const WHAT: &str =
                    "a tunnel interface name (1 to 31 letters, digits, `.`, `-`, `_`, `:`)";
                let v = self.value(name, WHAT)?;
                if !is_ifname(&v.text) {
                    return Err(self.err(v, WHAT));
                }
                parts.tunnel = Some(v.text.clone());
            }
            Slot::Negotiate => {
                const WHAT: &str = "`tunnel` or `transport`";
                let v = self.value(name, WHAT)?;
                parts.negotiate = Some(match v.text.as_str() {
                    "tunnel" => Negotiate::Tunnel,
                    "transport" => Negotiate::Transport,
                    _ => return Err(self.err(v, WHAT)),
                });
            }
            _ => {
                const WHAT: &str = "`in`, `out` or `both`";
                let v = self.value(name, WHAT)?;
                let d = match v.text.as_str() {
                    "in" => Dir::In,
                    "out" => Dir::Out,
                    "both" => {
                        self.mark(seen, Style::New, v)?;
                        Dir::Both
                    }
                    _ => return Err(self.err(v, WHAT)),
                };
                parts.dir = Some((d, v));
            }
        }
        Ok(())
    }

    /// A numeric ICMP value or range `N-M` (None when the text does not start with a digit).
    fn icmp_range(&self, v: &Token) -> Option<IcmpRange> {
        if !v.text.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let byte = |s: &str| number(s).and_then(|n| u8::try_from(n).ok());
        match v.text.split_once('-') {
            None => byte(&v.text).map(IcmpRange::single),
            Some((a, b)) => {
                let (first, last) = (byte(a)?, byte(b)?);
                (first <= last).then_some(IcmpRange { first, last })
            }
        }
    }

    fn port(&mut self, name: &Token) -> Result<u16, ParseError> {
        const WHAT: &str = "a port (1-65535) or a service name such as telnet, domain, https";
        let v = self.value(name, WHAT)?;
        let p = match number(&v.text) {
            Some(n) => u16::try_from(n).ok().filter(|&n| n != 0),
            None => names::service_by_name(&v.text),
        };
        p.ok_or_else(|| self.err(v, WHAT))
    }

    fn mask(&mut self, name: &'a Token) -> Result<MaskArg<'a>, ParseError> {
        const WHAT: &str =
            "an IPv4 mask: contiguous and not 0, as 0xffffff00 or a dotted quad such as 255.255.255.0";
        let v = self.value(name, WHAT)?;
        let bits = if v.text.starts_with("0x") || v.text.starts_with("0X") {
            number(&v.text).and_then(|n| u32::try_from(n).ok())
        } else {
            v.text.parse::<std::net::Ipv4Addr>().ok().map(u32::from)
        };
        match bits {
            Some(m) if m != 0 && m.leading_ones() + m.trailing_zeros() == 32 => Ok(MaskArg {
                name,
                len: u8::try_from(m.leading_ones()).unwrap_or(32),
            }),
            _ => Err(self.err(v, WHAT)),
        }
    }

    fn address(&mut self, name: &'a Token) -> Result<AddrArg<'a>, ParseError> {
        let what = if self.opts.numeric {
            "an IPv4 or IPv6 address with an optional /prefix (name lookups are off)"
        } else {
            "an IPv4 or IPv6 address or host name, with an optional /prefix"
        };
        let v = self.value(name, what)?;
        let Ok((host, prefix)) = crate::text::split_prefix(&v.text) else {
            return Err(self.err(v, "a prefix length (0-128) after `/`"));
        };
        let literal = host.parse::<IpAddr>().ok();
        match literal {
            Some(ip) if ip.is_ipv4() && prefix.is_some_and(|p| p > 32) => {
                return Err(self.err(v, "a prefix length of at most 32 for an IPv4 address"));
            }
            Some(_) => {}
            None if self.opts.numeric => return Err(self.err(v, what)),
            None if !is_host_name(host) => return Err(self.err(v, what)),
            None => {}
        }
        Ok(AddrArg {
            name,
            value: v,
            host: host.to_string(),
            prefix,
            literal,
        })
    }

    /// Resolves an address operand (literal or host name), folding a mask into it.
    fn resolve(&self, a: &AddrArg<'_>, mask: Option<&MaskArg<'_>>) -> Result<Address, ParseError> {
        if let Some(m) = mask {
            if a.prefix.is_some() {
                return Err(self.err(
                    m.name,
                    format!(
                        "no `{}` together with the /prefix of `{}` at {} (give one or the other)",
                        m.name.text,
                        a.value.text,
                        pos(a.value)
                    ),
                ));
            }
        }
        if let Some(ip) = a.literal {
            let len = match (mask, a.prefix) {
                (Some(m), _) => {
                    if !ip.is_ipv4() {
                        return Err(self.err(
                            m.name,
                            format!(
                                "no `{}` with the IPv6 address `{}` (masks are IPv4 only; use a \
                                 /prefix)",
                                m.name.text, a.value.text
                            ),
                        ));
                    }
                    m.len
                }
                (None, Some(p)) => p,
                (None, None) => Prefix::host(ip).len,
            };
            return Ok(Address::Prefix(Prefix { addr: ip, len }));
        }
        let mut addrs: Vec<IpAddr> = Vec::new();
        let found = (a.host.as_str(), 0u16)
            .to_socket_addrs()
            .map_err(|e| self.err(a.value, format!("a resolvable host name ({e})")))?;
        for sa in found {
            if !addrs.contains(&sa.ip()) {
                addrs.push(sa.ip());
            }
        }
        if addrs.is_empty() {
            return Err(self.err(a.value, "a host name with at least one address"));
        }
        let prefix = match (mask, a.prefix) {
            (Some(m), _) => {
                if addrs.iter().any(|x| !x.is_ipv4()) {
                    return Err(self.err(
                        m.name,
                        format!(
                            "no `{}` with `{}`, which has IPv6 addresses (masks are IPv4 only)",
                            m.name.text, a.host
                        ),
                    ));
                }
                Some((m.len, m.name))
            }
            (None, Some(p)) => Some((p, a.value)),
            (None, None) => None,
        };
        if let Some((len, at)) = prefix {
            if addrs.len() > 1 {
                return Err(self.err(
                    at,
                    format!(
                        "no prefix length or mask for `{}`, which has {} addresses (a prefix \
                         cannot be set on a multi-address host name)",
                        a.host,
                        addrs.len()
                    ),
                ));
            }
            if addrs.iter().any(|x| x.is_ipv4() && len > 32) {
                return Err(self.err(
                    at,
                    format!("a prefix length of at most 32 (`{}` is IPv4)", a.host),
                ));
            }
        }
        Ok(Address::Name {
            name: a.host.clone(),
            prefix: prefix.map(|(l, _)| l),
            addrs,
        })
    }

    /// Checks that two address selectors can pair up (same family) and returns them.
    fn address_pair(
        &self,
        first: Option<&AddrArg<'_>>,
        first_mask: Option<&MaskArg<'_>>,
        second: Option<&AddrArg<'_>>,
        second_mask: Option<&MaskArg<'_>>,
    ) -> Result<(Option<Address>, Option<Address>), ParseError> {
        let a = first.map(|x| self.resolve(x, first_mask)).transpose()?;
        let b = second.map(|x| self.resolve(x, second_mask)).transpose()?;
        if let (Some(x), Some(y), Some(fa), Some(sa)) = (&a, &b, first, second) {
            let px = x.prefixes();
            let py = y.prefixes();
            let pairs = px
                .iter()
                .any(|p| py.iter().any(|q| p.addr.is_ipv4() == q.addr.is_ipv4()));
            if !pairs {
                let later = if (sa.value.line, sa.value.col) > (fa.value.line, fa.value.col) {
                    sa
                } else {
                    fa
                };
                let other = if std::ptr::eq(later, sa) { fa } else { sa };
                return Err(self.err(
                    later.value,
                    format!(
                        "an address of the same family as `{} {}` at {} (no IPv4 or IPv6 \
                         address pair)",
                        other.name.text,
                        other.value.text,
                        pos(other.value)
                    ),
                ));
            }
        }
        Ok((a, b))
    }

    /// The pattern, once the whole entry is read: resolution and cross-name checks.
    fn pattern(&self, parts: PatternParts<'a>, seen: &Seen<'a>) -> Result<Pattern, ParseError> {
        // Tunnel and negotiate go together.
        let find = |slot: Slot| seen.pattern.iter().find(|(s, _)| *s == slot).map(|x| x.1);
        match (find(Slot::Tunnel), find(Slot::Negotiate)) {
            (Some(t), None) => {
                return Err(self.err(
                    t,
                    "`negotiate tunnel` or `negotiate transport` with `tunnel` (the two go \
                     together)",
                ))
            }
            (None, Some(n)) => {
                return Err(self.err(n, "`tunnel <name>` with `negotiate` (the two go together)"))
            }
            _ => {}
        }
        if parts.negotiate == Some(Negotiate::Transport) {
            let selectors = [
                Slot::Local,
                Slot::Remote,
                Slot::Lport,
                Slot::Rport,
                Slot::Src,
                Slot::Dst,
                Slot::Sport,
                Slot::Dport,
                Slot::Smask,
                Slot::Dmask,
                Slot::Ulp,
                Slot::Type,
                Slot::Code,
            ];
            if let Some((_, t)) = seen
                .pattern
                .iter()
                .filter(|(s, _)| selectors.contains(s))
                .min_by_key(|(_, t)| (t.line, t.col))
            {
                return Err(self.err(
                    t,
                    "only `tunnel`, `negotiate` and `dir` with `negotiate transport` (a \
                     transport-mode tunnel rule has no addresses or other selectors)",
                ));
            }
        }
        // ICMP type and code.
        if let Some(t) = &parts.icmp_type {
            if !matches!(parts.ulp, Some(ICMP | ICMPV6)) {
                return Err(self.err(
                    t.name,
                    "`ulp icmp` or `ulp ipv6-icmp` in an entry with `type`",
                ));
            }
            if let Some(u) = t.named.filter(|u| Some(*u) != parts.ulp) {
                return Err(self.err(t.value, icmp_family_hint(u, "type")));
            }
        }
        if let Some(c) = &parts.icmp_code {
            let Some(t) = &parts.icmp_type else {
                return Err(self.err(
                    c.name,
                    "`type` in an entry with `code` (a code needs its type)",
                ));
            };
            if let Some((ty, u)) = c.named {
                if Some(u) != parts.ulp {
                    return Err(self.err(c.value, icmp_family_hint(u, "code")));
                }
                if t.range != IcmpRange::single(ty) {
                    let tname = names::icmp_type_name(u, ty).unwrap_or("?");
                    return Err(self.err(
                        c.value,
                        format!(
                            "a code of the entry's type (`{}` is a code of type {ty}, \
                             `{tname}`; give `type {tname}` or a numeric code)",
                            c.value.text
                        ),
                    ));
                }
            }
        }
        // Masks need their address.
        if let (Some(m), None) = (&parts.smask, &parts.src) {
            return Err(self.err(
                m.name,
                "`saddr` in an entry with `smask` (a mask needs its address)",
            ));
        }
        if let (Some(m), None) = (&parts.dmask, &parts.dst) {
            return Err(self.err(
                m.name,
                "`daddr` in an entry with `dmask` (a mask needs its address)",
            ));
        }
        let endpoints = if seen.old.is_some()
            && (parts.src.is_some()
                || parts.dst.is_some()
                || parts.sport.is_some()
                || parts.dport.is_some())
        {
            let (src, dst) = self.address_pair(
                parts.src.as_ref(),
                parts.smask.as_ref(),
                parts.dst.as_ref(),
                parts.dmask.as_ref(),
            )?;
            Endpoints::SrcDst {
                src,
                dst,
                sport: parts.sport,
                dport: parts.dport,
            }
        } else if parts.local.is_some()
            || parts.remote.is_some()
            || parts.lport.is_some()
            || parts.rport.is_some()
        {
            let (local, remote) =
                self.address_pair(parts.local.as_ref(), None, parts.remote.as_ref(), None)?;
            Endpoints::LocalRemote {
                local,
                remote,
                lport: parts.lport,
                rport: parts.rport,
            }
        } else {
            Endpoints::Any
        };
        Ok(Pattern {
            endpoints,
            ulp: parts.ulp,
            icmp_type: parts.icmp_type.map(|x| x.range),
            icmp_code: parts.icmp_code.map(|x| x.range),
            tunnel: parts.tunnel,
            negotiate: parts.negotiate,
            dir: parts.dir.map(|x| x.0),
        })
    }

    /// Direction and per-action checks, once the entry is complete.
    fn check_actions(
        &self,
        pattern_dir: Option<(Dir, &'a Token)>,
        alts: &[(Action, Properties)],
        toks: &[AltToks<'a>],
        seen: &Seen<'a>,
    ) -> Result<(), ParseError> {
        for ((action, props), t) in alts.iter().zip(toks) {
            if !action.applies_ipsec() {
                if let Some((_, name)) = t.names.iter().find(|(s, _)| *s != Slot::Dir) {
                    return Err(self.err(
                        name,
                        format!(
                            "`}}` or `dir`: `{}` takes no algorithms and no `sa`",
                            t.action.text
                        ),
                    ));
                }
                continue;
            }
            let has_alg = props.auth_algs.as_ref().is_some_and(AlgSpec::is_some)
                || props.encr_algs.as_ref().is_some_and(AlgSpec::is_some)
                || props.encr_auth_algs.as_ref().is_some_and(AlgSpec::is_some);
            if !has_alg {
                return Err(self.err(
                    t.close,
                    format!(
                        "auth_algs, encr_algs or encr_auth_algs (other than `none`): `{}` at {} \
                         needs at least one algorithm",
                        t.action.text,
                        pos(t.action)
                    ),
                ));
            }
            if let (
                Some(AlgSpec {
                    alg: AlgChoice::Alg(e),
                    ..
                }),
                Some(ea),
            ) = (props.encr_algs, props.encr_auth_algs)
            {
                let info = encr_info(e);
                if info.aead && ea.is_some() {
                    let name = t
                        .names
                        .iter()
                        .find(|(s, _)| *s == Slot::EncrAuthAlgs)
                        .map_or(t.close, |x| x.1);
                    return Err(self.err(
                        name,
                        format!(
                            "no `encr_auth_algs` with the combined-mode `{}`, which \
                             authenticates by itself",
                            info.name
                        ),
                    ));
                }
            }
        }

        // Direction: an explicit `dir` (pattern or properties; at most one), and what
        // apply (out) and permit (in) imply.
        let explicit = pattern_dir.or_else(|| toks.iter().find_map(|t| t.dir));
        let mut resolved: Option<(Dir, &Token, bool)> = explicit.map(|(d, t)| (d, t, true));
        for ((action, _), t) in alts.iter().zip(toks) {
            let implied = match action {
                Action::Apply => Dir::Out,
                Action::Permit => Dir::In,
                _ => continue,
            };
            match resolved {
                None => resolved = Some((implied, t.action, false)),
                Some((d, dt, explicit)) if d != implied => {
                    let want = if implied == Dir::Out {
                        "`out`: `apply` protects outbound traffic"
                    } else {
                        "`in`: `permit` checks inbound traffic"
                    };
                    return Err(if explicit {
                        self.err(dt, format!("{want} (action at {})", pos(t.action)))
                    } else {
                        self.err(
                            t.action,
                            format!(
                                "an action for the same direction as `{}` at {} (apply is \
                                 outbound, permit inbound)",
                                dt.text,
                                pos(dt)
                            ),
                        )
                    });
                }
                _ => {}
            }
        }
        if resolved.is_none() {
            if let Some(((_, _), t)) = alts
                .iter()
                .zip(toks)
                .find(|((a, _), _)| matches!(a, Action::Bypass | Action::Drop))
            {
                return Err(self.err(
                    t.action,
                    format!(
                        "a direction for `{}`: `dir in`, `dir out` or `dir both` in the pattern \
                         (bypass, pass and drop need one; Solaris would add no rule)",
                        t.action.text
                    ),
                ));
            }
            if let Some(old) = seen.old {
                return Err(self.err(
                    toks.first().map_or(old, |t| t.action),
                    format!(
                        "a direction (`dir in` or `dir out`): an old-style entry (`{}` at {}) \
                         with `ipsec` needs one",
                        old.text,
                        pos(old)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_icmp(
        &self,
        e: &Entry,
        action: &'a Token,
        groups: &mut Vec<IcmpGroup>,
    ) -> Result<(), ParseError> {
        let Some(ulp) = e.pattern.ulp.filter(|u| *u == ICMP || *u == ICMPV6) else {
            return Ok(());
        };
        let prot = protection(e);
        match groups
            .iter()
            .find(|g| g.ulp == ulp && g.tunnel == e.pattern.tunnel)
        {
            Some(g) if g.protection != prot => Err(self.err(
                action,
                format!(
                    "the same IPsec protection as the {} entry on line {} (ipsecconf(8): any \
                     action applying IPsec must be the same for all icmp rules)",
                    names::protocol_name(ulp).unwrap_or("icmp"),
                    g.line
                ),
            )),
            Some(_) => Ok(()),
            None => {
                groups.push(IcmpGroup {
                    tunnel: e.pattern.tunnel.clone(),
                    ulp,
                    line: e.line,
                    protection: prot,
                });
                Ok(())
            }
        }
    }

    /// `name[(keylen)]` → the name part, the key range, and the token.
    fn alg_parts(
        &mut self,
        name: &Token,
        what: &str,
    ) -> Result<(&'a Token, String, KeyRange), ParseError> {
        let v = self.value(name, what)?;
        let (alg, range) = match v.text.split_once('(') {
            None => (v.text.as_str(), None),
            Some((a, rest)) => match rest.strip_suffix(')') {
                Some(inner) if !inner.contains(['(', ')']) => (a, Some(inner)),
                _ => {
                    return Err(self.err(
                        v,
                        "a key length in parentheses at the end: (N), (N..), (..N) or (N..M)",
                    ))
                }
            },
        };
        if alg.is_empty() {
            return Err(self.err(v, what));
        }
        let key_bits = match range {
            None => KeyRange::ANY,
            Some(r) => key_range(r).ok_or_else(|| {
                self.err(
                    v,
                    "a key length in bits: (N), (N..), (..N) or (N..M) with N <= M",
                )
            })?,
        };
        Ok((v, alg.to_ascii_lowercase(), key_bits))
    }

    fn encr_alg(&mut self, name: &Token) -> Result<AlgSpec<EncrAlg>, ParseError> {
        const WHAT: &str = "an encryption algorithm (any, none, a name such as aes, aes-gcm, 3des, \
                            null, or a PF_KEY number), optionally with a key length such as (128..256)";
        let (v, alg, key_bits) = self.alg_parts(name, WHAT)?;
        let choice = match alg.as_str() {
            "any" => AlgChoice::Any,
            "none" => AlgChoice::None,
            a => {
                // A name first (`3des` is a name), then a PF_KEY number.
                let info = encr_by_name(a).or_else(|| {
                    number(a)
                        .and_then(|n| u8::try_from(n).ok())
                        .filter(|n| *n != 0)
                        .and_then(encr_by_pfkey)
                });
                AlgChoice::Alg(info.ok_or_else(|| self.err(v, WHAT))?.alg)
            }
        };
        let bits = match choice {
            AlgChoice::Alg(e) => Some((encr_info(e).name, encr_info(e).key_bits)),
            _ => None,
        };
        self.check_key_range(v, choice == AlgChoice::None, bits, key_bits)?;
        Ok(AlgSpec {
            alg: choice,
            key_bits,
        })
    }

    fn auth_alg(&mut self, name: &Token, esp: bool) -> Result<AlgSpec<AuthAlg>, ParseError> {
        const WHAT: &str = "an authentication algorithm (any, none, a name such as sha1, \
                            hmac-sha256, md5, or a PF_KEY number), optionally with a key length";
        let (v, alg, key_bits) = self.alg_parts(name, WHAT)?;
        let choice = match alg.as_str() {
            "any" => AlgChoice::Any,
            "none" => AlgChoice::None,
            a => {
                // A name first (`3des` is a name), then a PF_KEY number.
                let info = auth_by_name(a).or_else(|| {
                    number(a)
                        .and_then(|n| u8::try_from(n).ok())
                        .filter(|n| *n != 0)
                        .and_then(auth_by_pfkey)
                });
                AlgChoice::Alg(info.ok_or_else(|| self.err(v, WHAT))?.alg)
            }
        };
        if let AlgChoice::Alg(x) = choice {
            if x == AuthAlg::None {
                return Err(self.err(v, WHAT));
            }
            if esp
                && matches!(
                    x,
                    AuthAlg::AesGmac128 | AuthAlg::AesGmac192 | AuthAlg::AesGmac256
                )
            {
                return Err(self.err(
                    v,
                    "an ESP authentication algorithm (AES-GMAC is for AH only; for ESP use \
                     encr_algs aes-none-gmac)",
                ));
            }
        }
        let bits = match choice {
            AlgChoice::Alg(a) => Some((auth_info(a).name, auth_info(a).key_bits)),
            _ => None,
        };
        self.check_key_range(v, choice == AlgChoice::None, bits, key_bits)?;
        Ok(AlgSpec {
            alg: choice,
            key_bits,
        })
    }

    fn check_key_range(
        &self,
        v: &Token,
        none: bool,
        alg: Option<(&str, KeyBits)>,
        r: KeyRange,
    ) -> Result<(), ParseError> {
        if r.is_any() {
            return Ok(());
        }
        if none {
            return Err(self.err(v, "`none` without a key length"));
        }
        if let Some((name, kb)) = alg {
            let lo = r.min.unwrap_or(0).max(kb.min);
            let hi = r.max.unwrap_or(u16::MAX).min(kb.max);
            if lo > hi {
                let sizes = if kb.min == kb.max {
                    format!("{} bits", kb.min)
                } else {
                    format!("{}..{} bits", kb.min, kb.max)
                };
                return Err(self.err(
                    v,
                    format!("a key length range that meets the key sizes of `{name}` ({sizes})"),
                ));
            }
        }
        Ok(())
    }
}

fn icmp_family_hint(ulp: u8, what: &str) -> String {
    if ulp == ICMPV6 {
        format!("an ICMP {what} of the entry's protocol (names ending in 6 are ICMPv6: they need `ulp ipv6-icmp`)")
    } else {
        format!("an ICMP {what} of the entry's protocol (names without a final 6 are ICMPv4: they need `ulp icmp`)")
    }
}

/// `N`, `N..`, `..N`, `N..M` (N <= M).
fn key_range(r: &str) -> Option<KeyRange> {
    let bits = |s: &str| number(s).and_then(|n| u16::try_from(n).ok());
    let range = match r.split_once("..") {
        None => KeyRange::exact(bits(r)?),
        Some(("", "")) => return None,
        Some(("", b)) => KeyRange {
            min: None,
            max: Some(bits(b)?),
        },
        Some((a, "")) => KeyRange {
            min: Some(bits(a)?),
            max: None,
        },
        Some((a, b)) => KeyRange {
            min: Some(bits(a)?),
            max: Some(bits(b)?),
        },
    };
    match (range.min, range.max) {
        (Some(a), Some(b)) if a > b => None,
        _ => Some(range),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number("0"), Some(0));
        assert_eq!(number("23"), Some(23));
        assert_eq!(number("0x17"), Some(23));
        assert_eq!(number("0X17"), Some(23));
        assert_eq!(number("023"), None, "leading zero (Solaris: octal) refused");
        assert_eq!(number("0x"), None);
        assert_eq!(number(""), None);
        assert_eq!(number("-1"), None);
        assert_eq!(number("+1"), None);
        assert_eq!(number("1a"), None);
    }

    #[test]
    fn key_ranges() {
        assert_eq!(key_range("128"), Some(KeyRange::exact(128)));
        assert_eq!(
            key_range("128.."),
            Some(KeyRange {
                min: Some(128),
                max: None
            })
        );
        assert_eq!(
            key_range("..256"),
            Some(KeyRange {
                min: None,
                max: Some(256)
            })
        );
        assert_eq!(
            key_range("128..256"),
            Some(KeyRange {
                min: Some(128),
                max: Some(256)
            })
        );
        for bad in [
            "", "..", "256..128", "1...2", "a", "128..x", "70000", ". .1",
        ] {
            assert_eq!(key_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_and_ifnames() {
        assert!(is_ifname("ip.tun0"));
        assert!(is_ifname("vti0:1"));
        assert!(!is_ifname(""));
        assert!(!is_ifname(&"a".repeat(32)));
        assert!(!is_ifname("tun/0"));
        assert!(is_host_name("spiderweb"));
        assert!(!is_host_name("-x"));
    }
}
