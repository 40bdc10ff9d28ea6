//! The ipseckey(8) command language: parser, [`SaSpec::to_config`], and printer.
//!
//! # Grammar
//!
//! ```text
//! file      ::= { command? comment? line-end }
//! command   ::= add SA_TYPE ext* | update SA_TYPE ext* | update-pair SA_TYPE ext*
//!             | delete SA_TYPE ext* | delete-pair SA_TYPE ext* | get SA_TYPE ext*
//!             | flush [SA_TYPE|all] | dump [SA_TYPE|all] | save (SA_TYPE|all) [filename]
//!             | monitor | passive_monitor | pmonitor | help [word] | ? [word]
//! SA_TYPE   ::= ah | esp            (case-insensitive; also the PF_KEY numbers 2, 3, and 0 = all)
//! ```
//!
//! Tokens are separated by whitespace. A command ends at the end of its line; a `\` right
//! before the line end continues it on the next line. `#` at the start of a token begins a
//! comment that runs to the end of the physical line. A `"` toggles quoting (as Solaris'
//! `create_argv` does): inside quotes whitespace and `#` are ordinary characters; the quote
//! characters themselves are dropped, and a quote may not run past the end of its line.
//! Command and extension keywords are case-sensitive, as in Solaris; SA types, states,
//! algorithm names, identity types and `udp` are not.
//!
//! Numbers are decimal, hex (`0x..`) or octal (leading `0`). Addresses are IPv4 or IPv6
//! literals, or host names resolved with the system resolver unless
//! [`ParseOptions::numeric`] is set.
//!
//! # Extensions
//!
//! | keyword (synonyms) | value | `SaSpec` field |
//! |---|---|---|
//! | `spi` | number, not 0 | `spi` |
//! | `pair-spi` | number, not 0 (not with `update-pair`) | `pair_spi` |
//! | `inbound`, `outbound` | – | `direction` |
//! | `replay` | number 0..=4096 | `replay` |
//! | `replay_value` | number | `replay_value` |
//! | `state` | `larval`, `mature`, `dying`, `dead` or 0..=3 | `state` |
//! | `auth_alg` (`authalg`) | name or synonym from the ipsec-crypto table, or PF_KEY number | `auth_alg` |
//! | `encr_alg` (`encralg`) | likewise (ESP only) | `encr_alg` |
//! | `authkey`, `encrkey` | hex digits, optional `0x`, optional `/bits` | `auth_key`, `encr_key` (+ `_bits`) |
//! | `soft_alloc` (`soft_allocations`), `soft_bytes`, `soft_addtime`, `soft_usetime` | number | `soft` |
//! | `hard_alloc` (`hard_allocations`), `hard_bytes`, `hard_addtime`, `hard_usetime` | number | `hard` |
//! | `idle_addtime`, `idle_usetime` | number | `idle` |
//! | `saddr` (`srcaddr`, `src`), `saddr6` (`srcaddr6`, `src6`) | address | `src` |
//! | `daddr` (`dstaddr`, `dst`), `daddr6` (`dstaddr6`, `dst6`) | address | `dst` |
//! | `sport`, `dport` | port | `sport`, `dport` |
//! | `proto` (`ulp`) | number 0..=255 | `proto` |
//! | `encap` | `udp` | `encap_udp` |
//! | `nat_loc`, `nat_rem` | address | `nat_loc`, `nat_rem` |
//! | `nat_lport`, `nat_rport` | port | `nat_lport`, `nat_rport` |
//! | `isrc` (`innersrc`, `proxyaddr`, `proxy`), `isrc6` (`innersrc6`, `proxyaddr6`, `proxy6`) | address[/prefix] | `inner_src` |
//! | `idst` (`innerdst`), `idst6` (`innerdst6`) | address[/prefix] | `inner_dst` |
//! | `innersport` (`isport`), `innerdport` (`idport`) | port | `inner_sport`, `inner_dport` |
//! | `iproto` (`iulp`) | number 0..=255 | `inner_proto` |
//! | `srcidtype`, `dstidtype` | type value | `src_id`, `dst_id` |
//! | `esn` *(Ironswan)* | – | `esn` |
//! | `allow_legacy` *(Ironswan)* | – | `allow_legacy` |
//! | `no_copy_dscp` *(Ironswan)* | – | `no_copy_dscp` |
//! | `no_padding_check` *(Ironswan)* | – | `no_padding_check` |
//! | `unique` *(Ironswan)* | sport dport proto | `unique` |
//!
//! Identity types: `prefix`; `fqdn`, `domain`, `domainname`; `user_fqdn`, `mailbox`;
//! `der_dn`; `key_id` (Ironswan); or the PF_KEY numbers 1, 2, 3, 4, 6. `der_gn` (5) and address
//! ranges (7) are refused: ipsec-core has no such identity types.
//!
//! `delete`, `delete-pair` and `get` take only `spi`, the addresses, `sport`, `dport`, `proto`,
//! `inbound` and `outbound` (Solaris: "Don't use extension ... for ... command"). Every
//! extension may be given once per command (Solaris: "Can only specify single ...").
//!
//! The Solaris extensions that Ironswan does not implement (`flags`, `current_*`, `dpd`,
//! `sens_level`, `sens_map`, `integ_level`, `integ_map`, `reserved_bits`, `label`,
//! `outer-label`, `implicit-label`) are refused with an error that says so.
//!
//! # Decisions where Solaris is unclear or differs
//!
//! * **Required extensions.** `add`, `update`, `update-pair`, `delete`, `delete-pair` and
//!   `get` need `spi` and `dst` (the man page says so; Solaris' parser leaves the missing
//!   destination to the kernel). `add` is additionally checked in full by
//!   [`SaSpec::to_config`] while parsing, so a file whose `add` has a wrong key length, a weak
//!   key or a bad algorithm combination is refused as a whole.
//! * **Tunnel mode.** An SA is tunnel mode exactly when an inner extension (`isrc`, `idst`,
//!   `isport`, `idport` or `iproto`) is given, and its `proto` is then 4 or 41. As in the
//!   illumos kernel, an omitted `proto` is filled in from the inner address family (4 for
//!   IPv4, 41 for IPv6; with no inner address, from the outer destination's family); a
//!   `proto` that is neither 4 nor 41 (e.g. `proto 6 isrc ...`) is an error (Solaris:
//!   "Protocol type 6 not for use with Tunnel-Mode SA"), and so is 4 with IPv6 inner
//!   addresses or 41 with IPv4 ones (illumos `SADB_X_DIAGNOSTIC_INNER_AF_MISMATCH`).
//!   `proto 4` without inner extensions is a transport-mode SA whose selector protocol is 4.
//! * **Keys.** Hex digits with an optional `0x` and an optional `/bits`. An odd number of
//!   digits without `/bits` fills the last byte's high nibble (`123` is 0x12 0x30, 16 bits),
//!   as Solaris' `parsekey` does. With `/bits` the digits must cover exactly the bits
//!   (Solaris truncates extra digits with a warning; Ironswan refuses, as it has no warning
//!   channel and silently dropping key material is dangerous); bits beyond the count are
//!   zeroed (`e/3` is one byte 0xe0 of 3 bits). Every algorithm takes whole-byte keys, so a
//!   bit count that is not a multiple of 8 is refused by `to_config`.
//! * **Replay window.** 0..=4096 (Solaris: 0..=255, an 8-bit PF_KEY field); `esn` enables
//!   64-bit extended sequence numbers and `replay_value` takes 64-bit values.
//! * **`state larval`** is accepted (Solaris' parser refuses it); a larval SA may omit
//!   algorithms and keys.
//! * **NAT-T.** Any `nat_*` extension needs `encap udp`, and `encap udp` needs at least one
//!   `nat_*` extension (both as Solaris). Ports not given default to 4500. `encap udp` is
//!   refused for AH.
//! * **Idle lifetime.** The man page's default (half of `hard_addtime`) is applied by the
//!   Solaris kernel, not by ipseckey; `to_config` leaves an absent idle lifetime at 0 (none),
//!   and the SADB layer owns that default.
//! * **Host names.** With name lookups on, a name that resolves to several addresses uses
//!   the first of the right family: `dst` the first address (`dst6` the first IPv6 one);
//!   `src`, `nat_loc` and `nat_rem` the first of the destination's family; inner addresses
//!   the first (IPv6 for the `6` forms, else the family of the other inner address). Solaris
//!   instead repeats the command for every destination address.
//! * **Addresses** are kept as written: an IPv4-mapped IPv6 literal stays IPv6.
//! * **Commands that only make sense interactively** (`monitor`, `dump`, `save`, `help`)
//!   parse anywhere; refusing them in files is the caller's business, as is `quit`/`exit`,
//!   which are not commands of this parser.
//! * **Columns** count Unicode scalar values from 1; a tab counts as one column.

mod lex;
mod parse;
mod print;
pub mod request;
mod spec;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use ipsec_core::{Direction, Identity, KeyMaterial, Prefix, SaState, UniqueBinding};
use ipsec_crypto::{AuthAlg, EncrAlg};

pub use print::{print_add, save};

/// A syntax or semantic error: names the file, 1-based line and column, the offending token
/// and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The file name given to the parser.
    pub file: String,
    /// 1-based line of the offending token (0 for I/O errors).
    pub line: usize,
    /// 1-based column, in characters, of the offending token (0 for I/O errors).
    pub column: usize,
    /// The offending token, `end of line` or `end of input` when a value is missing. Key
    /// material is never echoed: a bad key shows as `<key of N characters>`.
    pub token: String,
    /// What was expected instead.
    pub expected: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: unexpected `{}`, expected {}",
            self.file, self.line, self.column, self.token, self.expected
        )
    }
}

impl std::error::Error for ParseError {}

/// The SA type operand of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaType {
    /// Every SA type (`all`, or no type, for flush/dump/save).
    All,
    /// Authentication Header.
    Ah,
    /// Encapsulating Security Payload.
    Esp,
}

impl SaType {
    /// The keyword (`all`, `ah`, `esp`).
    pub fn name(self) -> &'static str {
        match self {
            SaType::All => "all",
            SaType::Ah => "ah",
            SaType::Esp => "esp",
        }
    }

    /// The protocol this type selects (`None` for all).
    pub fn proto(self) -> Option<ipsec_core::Proto> {
        match self {
            SaType::All => None,
            SaType::Ah => Some(ipsec_core::Proto::Ah),
            SaType::Esp => Some(ipsec_core::Proto::Esp),
        }
    }
}

impl fmt::Display for SaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One parsed command with every extension given (exactly what the user wrote, resolved to
/// values).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `add`: create an SA.
    Add(SaSpec),
    /// `update`: change an SA (lifetimes; keys of a larval SA).
    Update(SaSpec),
    /// `update-pair`: update an SA and its paired SA.
    UpdatePair(SaSpec),
    /// `delete`: delete an SA (its partner is unpaired).
    Delete(SaSpec),
    /// `delete-pair`: delete an SA and its paired SA.
    DeletePair(SaSpec),
    /// `get`: show an SA.
    Get(SaSpec),
    /// `flush [type]`.
    Flush(SaType),
    /// `dump [type]`.
    Dump(SaType),
    /// `save type [file]` (`file` absent: standard output).
    Save {
        /// Which SAs.
        satype: SaType,
        /// Where to write (`-` or absent: standard output).
        file: Option<String>,
    },
    /// `monitor`: report every PF_KEY message (SADB_X_PROMISC).
    Monitor,
    /// `passive_monitor` / `pmonitor`: report PF_KEY messages without PROMISC.
    PassiveMonitor,
    /// `help [command]` (also `?`).
    Help(Option<String>),
}

/// Lifetime limits as written (soft, hard or idle); `None` = not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LifetimeSpec {
    /// `*_alloc` / `*_allocations`: packets.
    pub packets: Option<u64>,
    /// `*_bytes`.
    pub bytes: Option<u64>,
    /// `*_addtime`: seconds after add.
    pub addtime: Option<u64>,
    /// `*_usetime`: seconds after first use.
    pub usetime: Option<u64>,
}

impl LifetimeSpec {
    /// The lifetime with absent fields as 0 (no limit).
    pub fn resolve(&self) -> ipsec_core::Lifetime {
        ipsec_core::Lifetime {
            packets: self.packets.unwrap_or(0),
            bytes: self.bytes.unwrap_or(0),
            addtime: self.addtime.unwrap_or(0),
            usetime: self.usetime.unwrap_or(0),
        }
    }

    /// True when no field was given.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The extensions of an add/update/update-pair/delete/delete-pair/get command, as written
/// (addresses resolved). `Debug` never shows key material.
///
/// Equality compares the values only, not where in the text they were written.
#[derive(Debug, Clone, PartialEq)]
pub struct SaSpec {
    /// `ah` or `esp`.
    pub satype: SaType,
    /// 1-based line of the command keyword.
    pub line: usize,
    /// `spi`.
    pub spi: Option<u32>,
    /// `pair-spi`.
    pub pair_spi: Option<u32>,
    /// `inbound` / `outbound`.
    pub direction: Option<Direction>,
    /// `replay`: window size in packets.
    pub replay: Option<u32>,
    /// `replay_value`.
    pub replay_value: Option<u64>,
    /// `state`.
    pub state: Option<SaState>,
    /// `auth_alg` / `authalg`.
    pub auth_alg: Option<AuthAlg>,
    /// `encr_alg` / `encralg`.
    pub encr_alg: Option<EncrAlg>,
    /// `authkey` (bits beyond a `/bits` count zeroed).
    pub auth_key: Option<KeyMaterial>,
    /// The `/bits` of `authkey`, when given.
    pub auth_key_bits: Option<usize>,
    /// `encrkey` (key || salt for the algorithms with a salt).
    pub encr_key: Option<KeyMaterial>,
    /// The `/bits` of `encrkey`, when given.
    pub encr_key_bits: Option<usize>,
    /// `saddr` / `srcaddr` / `src` (and the `6` forms).
    pub src: Option<IpAddr>,
    /// `daddr` / `dstaddr` / `dst` (and the `6` forms).
    pub dst: Option<IpAddr>,
    /// `sport`.
    pub sport: Option<u16>,
    /// `dport`.
    pub dport: Option<u16>,
    /// `proto` / `ulp`.
    pub proto: Option<u8>,
    /// `encap udp`.
    pub encap_udp: bool,
    /// `nat_loc`.
    pub nat_loc: Option<IpAddr>,
    /// `nat_rem`.
    pub nat_rem: Option<IpAddr>,
    /// `nat_lport`.
    pub nat_lport: Option<u16>,
    /// `nat_rport`.
    pub nat_rport: Option<u16>,
    /// `isrc` / `innersrc` / `proxyaddr` / `proxy` (and the `6` forms); a bare address is a
    /// host prefix.
    pub inner_src: Option<Prefix>,
    /// `idst` / `innerdst` (and the `6` forms).
    pub inner_dst: Option<Prefix>,
    /// `innersport` / `isport`.
    pub inner_sport: Option<u16>,
    /// `innerdport` / `idport`.
    pub inner_dport: Option<u16>,
    /// `iproto` / `iulp`.
    pub inner_proto: Option<u8>,
    /// `soft_*`.
    pub soft: LifetimeSpec,
    /// `hard_*`.
    pub hard: LifetimeSpec,
    /// `idle_addtime`, `idle_usetime` (`packets` and `bytes` are always `None`).
    pub idle: LifetimeSpec,
    /// `srcidtype type value`.
    pub src_id: Option<Identity>,
    /// `dstidtype type value`.
    pub dst_id: Option<Identity>,
    /// `esn` (Ironswan): 64-bit extended sequence numbers.
    pub esn: bool,
    /// `allow_legacy` (Ironswan): permit RFC 8221 MUST NOT algorithms (DES, Blowfish, HMAC-MD5).
    pub allow_legacy: bool,
    /// `no_copy_dscp` (Ironswan): do not copy the inner DSCP to the outer header.
    pub no_copy_dscp: bool,
    /// `no_padding_check` (Ironswan): do not check ESP padding bytes.
    pub no_padding_check: bool,
    /// `unique sport dport proto` (Ironswan): bind the SA to one 5-tuple.
    pub unique: Option<UniqueBinding>,
    pub(crate) spans: spec::Spans,
}

/// Options of [`parse_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    /// Accept only address literals; never call the resolver (ipseckey `-n`).
    pub numeric: bool,
}

/// Parses a whole file's text (or one interactive line), resolving host names.
pub fn parse(text: &str, file: &str) -> Result<Vec<Command>, ParseError> {
    parse_with(text, file, ParseOptions::default())
}

/// Parses with options (see [`ParseOptions`]).
pub fn parse_with(text: &str, file: &str, opts: ParseOptions) -> Result<Vec<Command>, ParseError> {
    parse::parse_commands(text, file, opts)
}

/// Reads and parses a file (I/O errors become a ParseError with line 0 and the OS error
/// text; text that is not UTF-8 is refused at the first bad byte).
pub fn parse_file(path: &Path) -> Result<Vec<Command>, ParseError> {
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
    parse(text, &name)
}
