//! Commands and extensions: from tokens to [`Command`]s.

use std::net::{IpAddr, ToSocketAddrs};

use ipsec_core::{Direction, Identity, IdentityType, KeyMaterial, Prefix, SaState, UniqueBinding};
use ipsec_crypto::{auth_by_name, auth_by_pfkey, encr_by_name, encr_by_pfkey};
use zeroize::Zeroizing;

use super::lex::{self, RawCommand, Token};
use super::spec::{Slot, Spans};
use super::{Command, LifetimeSpec, ParseError, ParseOptions, SaSpec, SaType};

const COMMANDS: &str = "a command (add, update, update-pair, delete, delete-pair, get, \
                        flush, dump, save, monitor, passive_monitor, pmonitor, help)";

const EXTENSIONS: &str = "an extension (spi, pair-spi, inbound, outbound, replay, replay_value, \
     state, auth_alg, encr_alg, authkey, encrkey, src, dst, sport, dport, proto, encap, nat_loc, \
     nat_rem, nat_lport, nat_rport, isrc, idst, isport, idport, iproto, soft_*, hard_*, idle_*, \
     srcidtype, dstidtype, esn, allow_legacy, no_copy_dscp, no_padding_check, unique)";

/// Extensions `delete`, `delete-pair` and `get` accept (Solaris `dodelget`).
const LOOKUP_SLOTS: [Slot; 7] = [
    Slot::Spi,
    Slot::Src,
    Slot::Dst,
    Slot::Sport,
    Slot::Dport,
    Slot::Proto,
    Slot::Direction,
];

/// Solaris extensions Ironswan does not implement.
const UNSUPPORTED: [&str; 14] = [
    "flags",
    "current_alloc",
    "current_bytes",
    "current_addtime",
    "current_usetime",
    "dpd",
    "sens_level",
    "sens_map",
    "integ_level",
    "integ_map",
    "reserved_bits",
    "label",
    "outer-label",
    "implicit-label",
];

pub(crate) fn parse_commands(
    text: &str,
    file: &str,
    opts: ParseOptions,
) -> Result<Vec<Command>, ParseError> {
    let raw = lex::lex(text, file)?;
    raw.iter()
        .map(|rc| {
            Parser {
                rc,
                file,
                opts,
                pos: 0,
            }
            .command()
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Update,
    UpdatePair,
    Delete,
    DeletePair,
    Get,
}

impl Kind {
    fn is_lookup(self) -> bool {
        matches!(self, Kind::Delete | Kind::DeletePair | Kind::Get)
    }
}

/// Extension keyword → (slot, IPv6-only address form).
fn keyword(text: &str) -> Option<(Slot, bool)> {
    let s = match text {
        "spi" => Slot::Spi,
        "pair-spi" => Slot::PairSpi,
        "inbound" | "outbound" => Slot::Direction,
        "replay" => Slot::Replay,
        "replay_value" => Slot::ReplayValue,
        "state" => Slot::State,
        "auth_alg" | "authalg" => Slot::AuthAlg,
        "encr_alg" | "encralg" => Slot::EncrAlg,
        "authkey" => Slot::AuthKey,
        "encrkey" => Slot::EncrKey,
        "saddr" | "srcaddr" | "src" => Slot::Src,
        "saddr6" | "srcaddr6" | "src6" => return Some((Slot::Src, true)),
        "daddr" | "dstaddr" | "dst" => Slot::Dst,
        "daddr6" | "dstaddr6" | "dst6" => return Some((Slot::Dst, true)),
        "sport" => Slot::Sport,
        "dport" => Slot::Dport,
        "proto" | "ulp" => Slot::Proto,
        "encap" => Slot::Encap,
        "nat_loc" => Slot::NatLoc,
        "nat_rem" => Slot::NatRem,
        "nat_lport" => Slot::NatLport,
        "nat_rport" => Slot::NatRport,
        "isrc" | "innersrc" | "proxyaddr" | "proxy" => Slot::InnerSrc,
        "isrc6" | "innersrc6" | "proxyaddr6" | "proxy6" => return Some((Slot::InnerSrc, true)),
        "idst" | "innerdst" => Slot::InnerDst,
        "idst6" | "innerdst6" => return Some((Slot::InnerDst, true)),
        "innersport" | "isport" => Slot::InnerSport,
        "innerdport" | "idport" => Slot::InnerDport,
        "iproto" | "iulp" => Slot::InnerProto,
        "soft_alloc" | "soft_allocations" => Slot::SoftAlloc,
        "soft_bytes" => Slot::SoftBytes,
        "soft_addtime" => Slot::SoftAddtime,
        "soft_usetime" => Slot::SoftUsetime,
        "hard_alloc" | "hard_allocations" => Slot::HardAlloc,
        "hard_bytes" => Slot::HardBytes,
        "hard_addtime" => Slot::HardAddtime,
        "hard_usetime" => Slot::HardUsetime,
        "idle_addtime" => Slot::IdleAddtime,
        "idle_usetime" => Slot::IdleUsetime,
        "srcidtype" => Slot::SrcId,
        "dstidtype" => Slot::DstId,
        "esn" => Slot::Esn,
        "allow_legacy" => Slot::AllowLegacy,
        "no_copy_dscp" => Slot::NoCopyDscp,
        "no_padding_check" => Slot::NoPaddingCheck,
        "unique" => Slot::Unique,
        _ => return None,
    };
    Some((s, false))
}

/// Parses an ipseckey number: decimal, hex `0x..`, or octal with a leading `0`.
pub(crate) fn parse_number(text: &str) -> Option<u64> {
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
        return u64::from_str_radix(&text[1..], 8).ok();
    }
    text.parse().ok()
}

fn satype(tok: &Token) -> Option<SaType> {
    let t = tok.text.to_ascii_lowercase();
    match t.as_str() {
        "all" => Some(SaType::All),
        "ah" => Some(SaType::Ah),
        "esp" => Some(SaType::Esp),
        _ => match parse_number(&t)? {
            0 => Some(SaType::All),
            2 => Some(SaType::Ah),
            3 => Some(SaType::Esp),
            _ => None,
        },
    }
}

/// Parses an ipseckey hex key: optional `0x`, hex digits, optional `/bits`.
fn parse_hex_key(text: &str) -> Result<(KeyMaterial, Option<usize>), String> {
    const WHAT: &str = "a hex key (hex digits, optionally `/bits`)";
    let body = match text.get(..2) {
        Some(p) if text.len() > 2 && p.eq_ignore_ascii_case("0x") => &text[2..],
        _ => text,
    };
    let (hex, bits) = match body.split_once('/') {
        Some((h, b)) => (h, Some(b)),
        None => (body, None),
    };
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(WHAT.to_string());
    }
    let nibbles = hex.len();
    let bits = match bits {
        None => None,
        Some(b) => {
            if b.is_empty() || b.len() > 6 || !b.bytes().all(|c| c.is_ascii_digit()) {
                return Err(format!("a bit count after `/` in {WHAT}"));
            }
            let n: usize = b.parse().map_err(|_| WHAT.to_string())?;
            if n == 0 {
                return Err("a bit count of at least 1".to_string());
            }
            if n.div_ceil(4) > nibbles {
                return Err(format!(
                    "a bit count of at most {} for {nibbles} hex digits",
                    nibbles * 4
                ));
            }
            if nibbles * 4 > n + 3 {
                return Err(format!(
                    "a bit count covering all {nibbles} hex digits (got {n}; Ironswan does not \
                     truncate keys)"
                ));
            }
            Some(n)
        }
    };
    let mut out = Zeroizing::new(Vec::with_capacity(nibbles.div_ceil(2)));
    let digits = hex.as_bytes();
    for pair in digits.chunks(2) {
        let hi = hex_val(pair[0]);
        let lo = pair.get(1).map_or(0, |&c| hex_val(c));
        out.push((hi << 4) | lo);
    }
    if let Some(n) = bits {
        if n % 8 != 0 {
            if let Some(last) = out.last_mut() {
                *last &= 0xffu8 << (8 - n % 8);
            }
        }
    }
    Ok((KeyMaterial::new(&out), bits))
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && !s.starts_with('-')
        && !s.starts_with('.')
}

/// An address operand whose host name (if any) is resolved at the end of the command.
struct AddrArg<'a> {
    tok: &'a Token,
    kw: &'a str,
    host: String,
    prefix: Option<u8>,
    v6only: bool,
    literal: Option<IpAddr>,
}

#[derive(Default)]
struct Pending<'a> {
    src: Option<AddrArg<'a>>,
    dst: Option<AddrArg<'a>>,
    nat_loc: Option<AddrArg<'a>>,
    nat_rem: Option<AddrArg<'a>>,
    isrc: Option<AddrArg<'a>>,
    idst: Option<AddrArg<'a>>,
}

struct Parser<'a> {
    rc: &'a RawCommand,
    file: &'a str,
    opts: ParseOptions,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<&'a Token> {
        let t = self.rc.tokens.get(self.pos);
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

    /// An error about a key operand: the key itself is never echoed.
    fn err_key(&self, tok: &Token, expected: impl Into<String>) -> ParseError {
        ParseError {
            token: format!("<key of {} characters>", tok.text.chars().count()),
            ..self.err(tok, expected)
        }
    }

    fn err_end(&self, expected: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            line: self.rc.end_line,
            column: self.rc.end_col,
            token: self.rc.end_token().to_string(),
            expected: expected.into(),
        }
    }

    fn expect_end(&mut self) -> Result<(), ParseError> {
        match self.next() {
            Some(t) => Err(self.err(t, "the end of the command")),
            None => Ok(()),
        }
    }

    fn value(&mut self, kw: &Token, what: &str) -> Result<&'a Token, ParseError> {
        match self.next() {
            Some(t) => Ok(t),
            None => Err(self.err_end(format!("{what} after `{}`", kw.text))),
        }
    }

    fn num(&mut self, kw: &Token, max: u64, what: &str) -> Result<u64, ParseError> {
        let t = self.value(kw, what)?;
        match parse_number(&t.text) {
            Some(n) if n <= max => Ok(n),
            _ => Err(self.err(t, what)),
        }
    }

    fn port(&mut self, kw: &Token) -> Result<u16, ParseError> {
        let n = self.num(kw, u64::from(u16::MAX), "a port number (0-65535)")?;
        Ok(u16::try_from(n).unwrap_or(u16::MAX))
    }

    fn protocol(&mut self, kw: &Token) -> Result<u8, ParseError> {
        let n = self.num(kw, u64::from(u8::MAX), "a protocol number (0-255)")?;
        Ok(u8::try_from(n).unwrap_or(u8::MAX))
    }

    fn spi(&mut self, kw: &Token) -> Result<u32, ParseError> {
        const WHAT: &str = "an SPI (a number from 1 to 0xffffffff)";
        let t = self.value(kw, WHAT)?;
        match parse_number(&t.text).and_then(|n| u32::try_from(n).ok()) {
            Some(0) | None => Err(self.err(t, WHAT)),
            Some(n) => Ok(n),
        }
    }

    fn command(mut self) -> Result<Command, ParseError> {
        let Some(first) = self.next() else {
            return Err(self.err_end(COMMANDS));
        };
        let cmd = match first.text.as_str() {
            "add" => Command::Add(self.spec(first, Kind::Add)?),
            "update" => Command::Update(self.spec(first, Kind::Update)?),
            "update-pair" => Command::UpdatePair(self.spec(first, Kind::UpdatePair)?),
            "delete" => Command::Delete(self.spec(first, Kind::Delete)?),
            "delete-pair" => Command::DeletePair(self.spec(first, Kind::DeletePair)?),
            "get" => Command::Get(self.spec(first, Kind::Get)?),
            "flush" | "dump" => {
                let t = match self.next() {
                    None => SaType::All,
                    Some(tok) => satype(tok).ok_or_else(|| {
                        self.err(tok, "an SA type (all, ah, esp) or the end of the command")
                    })?,
                };
                self.expect_end()?;
                if first.text == "flush" {
                    Command::Flush(t)
                } else {
                    Command::Dump(t)
                }
            }
            "save" => {
                const WHAT: &str = "an SA type (all, ah, esp)";
                let tok = self.value(first, WHAT)?;
                let t = satype(tok).ok_or_else(|| self.err(tok, WHAT))?;
                let file = self.next().map(|f| f.text.clone());
                self.expect_end()?;
                Command::Save { satype: t, file }
            }
            "monitor" => {
                self.expect_end()?;
                Command::Monitor
            }
            "passive_monitor" | "pmonitor" => {
                self.expect_end()?;
                Command::PassiveMonitor
            }
            "help" | "?" => {
                let w = self.next().map(|t| t.text.clone());
                self.expect_end()?;
                Command::Help(w)
            }
            _ => return Err(self.err(first, COMMANDS)),
        };
        Ok(cmd)
    }

    fn spec(&mut self, cmd: &'a Token, kind: Kind) -> Result<SaSpec, ParseError> {
        const SATYPE: &str = "an SA type (ah, esp)";
        let st = self.value(cmd, SATYPE)?;
        let satype = match satype(st) {
            Some(SaType::All) => {
                return Err(self.err(
                    st,
                    "an SA type (ah, esp); `all` is only for flush, dump and save",
                ))
            }
            Some(t) => t,
            None => return Err(self.err(st, SATYPE)),
        };
        let mut s = SaSpec {
            satype,
            line: cmd.line,
            spi: None,
            pair_spi: None,
            direction: None,
            replay: None,
            replay_value: None,
            state: None,
            auth_alg: None,
            encr_alg: None,
            auth_key: None,
            auth_key_bits: None,
            encr_key: None,
            encr_key_bits: None,
            src: None,
            dst: None,
            sport: None,
            dport: None,
            proto: None,
            encap_udp: false,
            nat_loc: None,
            nat_rem: None,
            nat_lport: None,
            nat_rport: None,
            inner_src: None,
            inner_dst: None,
            inner_sport: None,
            inner_dport: None,
            inner_proto: None,
            soft: LifetimeSpec::default(),
            hard: LifetimeSpec::default(),
            idle: LifetimeSpec::default(),
            src_id: None,
            dst_id: None,
            esn: false,
            allow_legacy: false,
            no_copy_dscp: false,
            no_padding_check: false,
            unique: None,
            spans: Spans {
                file: self.file.to_string(),
                cmd_col: cmd.col,
                cmd_word: cmd.text.clone(),
                end_line: self.rc.end_line,
                end_col: self.rc.end_col,
                end_token: self.rc.end_token(),
                exts: Vec::new(),
            },
        };
        let mut addrs = Pending::default();
        while let Some(kw) = self.next() {
            let Some((slot, v6only)) = keyword(&kw.text) else {
                if UNSUPPORTED.contains(&kw.text.as_str()) {
                    return Err(self.err(
                        kw,
                        format!(
                            "an extension Ironswan supports (`{}` is a Solaris extension it does \
                             not implement)",
                            kw.text
                        ),
                    ));
                }
                return Err(self.err(kw, EXTENSIONS));
            };
            if kind.is_lookup() && !LOOKUP_SLOTS.contains(&slot) {
                return Err(self.err(
                    kw,
                    format!(
                        "an extension used by {} (spi, src, dst, sport, dport, proto, inbound, \
                         outbound)",
                        cmd.text
                    ),
                ));
            }
            if let Some((_, l, c, w)) = s.spans.find(slot) {
                return Err(self.err(
                    kw,
                    format!(
                        "a single {} (`{w}` already given at {l}:{c})",
                        slot.describe()
                    ),
                ));
            }
            if slot == Slot::PairSpi && kind == Kind::UpdatePair {
                return Err(self.err(kw, "no `pair-spi` with update-pair"));
            }
            if slot == Slot::EncrAlg && satype == SaType::Ah {
                return Err(self.err(kw, "no encryption algorithm with SA type ah"));
            }
            self.extension(kw, slot, v6only, &mut s, &mut addrs)?;
            s.spans.exts.push((slot, kw.line, kw.col, kw.text.clone()));
        }
        self.resolve(&mut s, addrs)?;
        if s.spi.is_none() {
            return Err(self.err_end(format!("`spi` ({} needs an SPI)", cmd.text)));
        }
        if s.dst.is_none() {
            return Err(self.err_end(format!("`dst` ({} needs a destination address)", cmd.text)));
        }
        if kind == Kind::Add {
            s.to_config()?;
        }
        Ok(s)
    }

    fn extension(
        &mut self,
        kw: &'a Token,
        slot: Slot,
        v6only: bool,
        s: &mut SaSpec,
        addrs: &mut Pending<'a>,
    ) -> Result<(), ParseError> {
        const U64: u64 = u64::MAX;
        const NUMBER: &str = "a number";
        match slot {
            Slot::Spi => s.spi = Some(self.spi(kw)?),
            Slot::PairSpi => s.pair_spi = Some(self.spi(kw)?),
            Slot::Direction => {
                s.direction = Some(if kw.text == "inbound" {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                })
            }
            Slot::Replay => {
                let n = self.num(kw, 4096, "a replay window size (0-4096)")?;
                s.replay = Some(u32::try_from(n).unwrap_or(0));
            }
            Slot::ReplayValue => s.replay_value = Some(self.num(kw, U64, NUMBER)?),
            Slot::State => {
                const WHAT: &str = "a state (larval, mature, dying, dead or 0-3)";
                let t = self.value(kw, WHAT)?;
                let st = match t.text.to_ascii_lowercase().as_str() {
                    "larval" => Some(SaState::Larval),
                    "mature" => Some(SaState::Mature),
                    "dying" => Some(SaState::Dying),
                    "dead" => Some(SaState::Dead),
                    other => parse_number(other)
                        .and_then(|n| u8::try_from(n).ok())
                        .and_then(SaState::from_number),
                };
                s.state = Some(st.ok_or_else(|| self.err(t, WHAT))?);
            }
            Slot::AuthAlg => {
                const WHAT: &str =
                    "an authentication algorithm (a name such as hmac-sha256, or a PF_KEY number)";
                let t = self.value(kw, WHAT)?;
                let info = auth_by_name(&t.text).or_else(|| {
                    parse_number(&t.text)
                        .and_then(|n| u8::try_from(n).ok())
                        .and_then(auth_by_pfkey)
                });
                s.auth_alg = Some(info.ok_or_else(|| self.err(t, WHAT))?.alg);
            }
            Slot::EncrAlg => {
                const WHAT: &str =
                    "an encryption algorithm (a name such as aes-gcm, or a PF_KEY number)";
                let t = self.value(kw, WHAT)?;
                let info = encr_by_name(&t.text).or_else(|| {
                    parse_number(&t.text)
                        .and_then(|n| u8::try_from(n).ok())
                        .and_then(encr_by_pfkey)
                });
                s.encr_alg = Some(info.ok_or_else(|| self.err(t, WHAT))?.alg);
            }
            Slot::AuthKey | Slot::EncrKey => {
                let t = self.value(kw, "a hex key")?;
                let (k, bits) = parse_hex_key(&t.text).map_err(|e| self.err_key(t, e))?;
                if slot == Slot::AuthKey {
                    s.auth_key = Some(k);
                    s.auth_key_bits = bits;
                } else {
                    s.encr_key = Some(k);
                    s.encr_key_bits = bits;
                }
            }
            Slot::Src | Slot::Dst | Slot::NatLoc | Slot::NatRem => {
                let a = self.address(kw, v6only, false)?;
                let place = match slot {
                    Slot::Src => &mut addrs.src,
                    Slot::Dst => &mut addrs.dst,
                    Slot::NatLoc => &mut addrs.nat_loc,
                    _ => &mut addrs.nat_rem,
                };
                *place = Some(a);
            }
            Slot::InnerSrc => addrs.isrc = Some(self.address(kw, v6only, true)?),
            Slot::InnerDst => addrs.idst = Some(self.address(kw, v6only, true)?),
            Slot::Sport => s.sport = Some(self.port(kw)?),
            Slot::Dport => s.dport = Some(self.port(kw)?),
            Slot::NatLport => s.nat_lport = Some(self.port(kw)?),
            Slot::NatRport => s.nat_rport = Some(self.port(kw)?),
            Slot::InnerSport => s.inner_sport = Some(self.port(kw)?),
            Slot::InnerDport => s.inner_dport = Some(self.port(kw)?),
            Slot::Proto => s.proto = Some(self.protocol(kw)?),
            Slot::InnerProto => s.inner_proto = Some(self.protocol(kw)?),
            Slot::Encap => {
                const WHAT: &str = "`udp` (the only encapsulation)";
                let t = self.value(kw, WHAT)?;
                if !t.text.eq_ignore_ascii_case("udp") {
                    return Err(self.err(t, WHAT));
                }
                s.encap_udp = true;
            }
            Slot::SoftAlloc => s.soft.packets = Some(self.num(kw, U64, NUMBER)?),
            Slot::SoftBytes => s.soft.bytes = Some(self.num(kw, U64, NUMBER)?),
            Slot::SoftAddtime => s.soft.addtime = Some(self.num(kw, U64, NUMBER)?),
            Slot::SoftUsetime => s.soft.usetime = Some(self.num(kw, U64, NUMBER)?),
            Slot::HardAlloc => s.hard.packets = Some(self.num(kw, U64, NUMBER)?),
            Slot::HardBytes => s.hard.bytes = Some(self.num(kw, U64, NUMBER)?),
            Slot::HardAddtime => s.hard.addtime = Some(self.num(kw, U64, NUMBER)?),
            Slot::HardUsetime => s.hard.usetime = Some(self.num(kw, U64, NUMBER)?),
            Slot::IdleAddtime => s.idle.addtime = Some(self.num(kw, U64, NUMBER)?),
            Slot::IdleUsetime => s.idle.usetime = Some(self.num(kw, U64, NUMBER)?),
            Slot::SrcId | Slot::DstId => {
                let id = self.identity(kw)?;
                if slot == Slot::SrcId {
                    s.src_id = Some(id);
                } else {
                    s.dst_id = Some(id);
                }
            }
            Slot::Esn => s.esn = true,
            Slot::AllowLegacy => s.allow_legacy = true,
            Slot::NoCopyDscp => s.no_copy_dscp = true,
            Slot::NoPaddingCheck => s.no_padding_check = true,
            Slot::Unique => {
                let sport = self.port(kw)?;
                let dport = self.port(kw)?;
                let proto = self.protocol(kw)?;
                s.unique = Some(UniqueBinding {
                    sport,
                    dport,
                    proto,
                });
            }
        }
        Ok(())
    }

    fn identity(&mut self, kw: &Token) -> Result<Identity, ParseError> {
        const WHAT: &str = "an identity type (prefix, fqdn, domain, domainname, user_fqdn, \
                            mailbox, der_dn, key_id, or 1, 2, 3, 4, 6)";
        let t = self.value(kw, WHAT)?;
        let lower = t.text.to_ascii_lowercase();
        let kind = match lower.as_str() {
            "prefix" => IdentityType::Prefix,
            "fqdn" | "domain" | "domainname" => IdentityType::Fqdn,
            "user_fqdn" | "mailbox" => IdentityType::UserFqdn,
            "der_dn" => IdentityType::Dn,
            "key_id" | "keyid" => IdentityType::KeyId,
            other => match parse_number(other) {
                Some(1) => IdentityType::Prefix,
                Some(2) => IdentityType::Fqdn,
                Some(3) => IdentityType::UserFqdn,
                Some(4) => IdentityType::Dn,
                Some(6) => IdentityType::KeyId,
                _ if other == "der_gn" || parse_number(other) == Some(5) => {
                    return Err(
                        self.err(t, "an identity type Ironswan supports (der_gn is not one)")
                    )
                }
                Some(7) => {
                    return Err(self.err(
                        t,
                        "an identity type Ironswan supports (address ranges are not one)",
                    ))
                }
                _ => return Err(self.err(t, WHAT)),
            },
        };
        const VALUE: &str = "an identity value";
        let v = self.value(kw, VALUE)?;
        if v.text.is_empty() {
            return Err(self.err(v, "a non-empty identity value"));
        }
        Ok(Identity {
            kind,
            value: v.text.clone(),
        })
    }

    fn address(
        &mut self,
        kw: &'a Token,
        v6only: bool,
        with_prefix: bool,
    ) -> Result<AddrArg<'a>, ParseError> {
        let what = match (v6only, with_prefix) {
            (true, true) => "an IPv6 address or host name, with an optional /prefix",
            (true, false) => "an IPv6 address or host name",
            (false, true) => "an IPv4 or IPv6 address or host name, with an optional /prefix",
            (false, false) => "an IPv4 or IPv6 address or host name",
        };
        let what_numeric = match (v6only, with_prefix) {
            (true, true) => "an IPv6 address with an optional /prefix (name lookups are off)",
            (true, false) => "an IPv6 address (name lookups are off)",
            (false, true) => {
                "an IPv4 or IPv6 address with an optional /prefix (name lookups are off)"
            }
            (false, false) => "an IPv4 or IPv6 address (name lookups are off)",
        };
        let t = self.value(
            kw,
            if self.opts.numeric {
                what_numeric
            } else {
                what
            },
        )?;
        let (host, prefix) = if with_prefix {
            let Ok(split) = crate::text::split_prefix(&t.text) else {
                return Err(self.err(t, "a prefix length (0-128) after `/`"));
            };
            split
        } else {
            (t.text.as_str(), None)
        };
        let literal = host.parse::<IpAddr>().ok();
        match literal {
            Some(ip) => {
                if v6only && ip.is_ipv4() {
                    return Err(self.err(
                        t,
                        format!("an IPv6 address (`{}` takes IPv6 only)", kw.text),
                    ));
                }
                if ip.is_ipv4() && prefix.is_some_and(|p| p > 32) {
                    return Err(self.err(t, "a prefix length of at most 32 for an IPv4 address"));
                }
            }
            None if self.opts.numeric => return Err(self.err(t, what_numeric)),
            None if !is_host_name(host) => return Err(self.err(t, what)),
            None => {}
        }
        Ok(AddrArg {
            tok: t,
            kw: &kw.text,
            host: host.to_string(),
            prefix,
            v6only,
            literal,
        })
    }

    /// Resolves a host name (or returns the literal), choosing the first address of the
    /// wanted family.
    fn lookup(&self, a: &AddrArg<'_>, want_v4: Option<bool>) -> Result<IpAddr, ParseError> {
        if let Some(ip) = a.literal {
            return Ok(ip);
        }
        let found: Vec<IpAddr> = (a.host.as_str(), 0u16)
            .to_socket_addrs()
            .map_err(|e| self.err(a.tok, format!("a resolvable host name ({e})")))?
            .map(|sa| sa.ip())
            .collect();
        let want_v4 = if a.v6only { Some(false) } else { want_v4 };
        found
            .iter()
            .copied()
            .find(|ip| want_v4.is_none_or(|v4| ip.is_ipv4() == v4))
            .ok_or_else(|| {
                let fam = match want_v4 {
                    Some(true) => "an IPv4",
                    Some(false) => "an IPv6",
                    None => "an",
                };
                self.err(
                    a.tok,
                    format!("a host name with {fam} address for `{}`", a.kw),
                )
            })
    }

    fn prefix_of(&self, a: &AddrArg<'_>, want_v4: Option<bool>) -> Result<Prefix, ParseError> {
        let ip = self.lookup(a, want_v4)?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = a.prefix.unwrap_or(max);
        if len > max {
            return Err(self.err(
                a.tok,
                format!("a prefix length of at most {max} for this address"),
            ));
        }
        Ok(Prefix { addr: ip, len })
    }

    fn resolve(&self, s: &mut SaSpec, p: Pending<'_>) -> Result<(), ParseError> {
        if let Some(a) = &p.dst {
            s.dst = Some(self.lookup(a, None)?);
        }
        let dst_v4 = s.dst.map(|d| d.is_ipv4());
        if let Some(a) = &p.src {
            s.src = Some(self.lookup(a, dst_v4)?);
        }
        if let Some(a) = &p.nat_loc {
            s.nat_loc = Some(self.lookup(a, dst_v4)?);
        }
        if let Some(a) = &p.nat_rem {
            s.nat_rem = Some(self.lookup(a, dst_v4)?);
        }
        if let Some(a) = &p.isrc {
            s.inner_src = Some(self.prefix_of(a, None)?);
        }
        if let Some(a) = &p.idst {
            let want = s.inner_src.map(|x| x.addr.is_ipv4());
            s.inner_dst = Some(self.prefix_of(a, want)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn numbers_in_three_bases() {
        assert_eq!(parse_number("4660"), Some(4660));
        assert_eq!(parse_number("0x1234"), Some(0x1234));
        assert_eq!(parse_number("0X1234"), Some(0x1234));
        assert_eq!(parse_number("011064"), Some(0o11064));
        assert_eq!(parse_number("0"), Some(0));
        assert_eq!(parse_number("00"), Some(0));
        assert_eq!(parse_number("08"), None);
        assert_eq!(parse_number("0x"), None);
        assert_eq!(parse_number("+5"), None);
        assert_eq!(parse_number("-5"), None);
        assert_eq!(parse_number("0x+5"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_number("18446744073709551616"), None);
    }

    #[test]
    fn hex_keys() {
        let k = |s: &str| parse_hex_key(s).map(|(k, b)| (k.expose().to_vec(), b));
        assert_eq!(k("0011aAfF"), Ok((vec![0x00, 0x11, 0xaa, 0xff], None)));
        assert_eq!(k("0x0011"), Ok((vec![0x00, 0x11], None)));
        assert_eq!(k("123"), Ok((vec![0x12, 0x30], None)));
        assert_eq!(k("e/3"), Ok((vec![0xe0], Some(3))));
        assert_eq!(k("ff/5"), Ok((vec![0xf8], Some(5))));
        assert_eq!(k("123/12"), Ok((vec![0x12, 0x30], Some(12))));
        assert_eq!(k("1234/16"), Ok((vec![0x12, 0x34], Some(16))));
        assert!(k("0x").is_err());
        assert!(k("12g4").is_err());
        assert!(k("12/").is_err());
        assert!(k("12/0").is_err());
        assert!(k("12/9").is_err(), "bits beyond the digits");
        assert!(k("1234/8").is_err(), "digits beyond the bits");
        assert!(k("").is_err());
    }
}
