//! The ikev2.config(5) language (the subset for pre-shared-key rules) and the
//! ikev2.preshared file.
//!
//! # ikev2.config
//!
//! ```text
//! file        ::= { global-param } { rule }
//! global-param::= ikesa_xform xform | ikesa_lifetime_secs N | childsa_lifetime_secs N
//!               | childsa_pfs yes|no | childsa_xform child-xform
//!               | childsa_mode transport|tunnel | cert_store DIRECTORY
//! rule        ::= "{" { rule-param } "}"
//! rule-param  ::= label STRING | auth_method METHOD
//!               | local_addr ADDR[/LEN] | remote_addr ADDR[/LEN]   (repeatable)
//!               | local_id TYPE [=] VALUE | remote_id TYPE [=] VALUE
//!               | local_ts ADDR[/LEN] | remote_ts ADDR[/LEN]              (Ironswan, repeatable)
//!               | ikesa_xform xform | ikesa_lifetime_secs N | childsa_lifetime_secs N
//!               | childsa_pfs yes|no | childsa_xform child-xform
//!               | childsa_mode transport|tunnel
//! xform       ::= "{" encr_alg ENCR auth_alg INTEG prf PRF dh_group N "}"  (any order)
//! child-xform ::= "{" encr_alg ENCR [auth_alg INTEG] "}"              (Ironswan)
//! ENCR        ::= aes | aes-cbc | aes-gcm | chacha20-poly1305, optionally (BITS)
//! INTEG, PRF  ::= sha256 | sha384 | sha512 (also hmac-sha256...); auth_alg none with AEAD
//! TYPE        ::= ip | ipv4 | ipv6 | fqdn | dns | user_fqdn | email | dn | asn1dn
//! METHOD      ::= preshared | cert | rsa_sig | rsa_pss | ecdsa | ecdsa_sha256
//!               | ecdsa_sha384 | ecdsa_sha512
//! ```
//!
//! Certificate rules (any METHOD but `preshared`, after Solaris's signature methods)
//! need a `local_id`: the daemon signs with the certificate of the store whose subject
//! or subjectAltName is that identity (and whose private key the store holds), and
//! checks the peer's certificate chain against the store's trust anchors and its ID
//! against `remote_id` (by default the peer's address, which must then be in the
//! certificate's subjectAltNames). `rsa_*` and `ecdsa*` also require the key type, of
//! our certificate and of the peer's, and the peer's signature: `rsa_sig` PKCS#1 v1.5,
//! `rsa_pss` RSASSA-PSS (which we then sign with too), `ecdsa_shaN` ECDSA with that
//! hash (`ecdsa` any), `cert` any. A DN is written `"C=US, O=Example, CN=gw"` (RDNs
//! in order, types C ST L O OU CN E DC SN SERIALNUMBER T G UID) and matches a peer's DN
//! RDN by RDN, ignoring ASCII case and the choice between PrintableString, UTF8String
//! and IA5String ([`ike::cert::dn_equal`]). The store is the directory
//! `ikev2cert` manages: `cert_store` (Ironswan's; Solaris keeps its keystore in the
//! ikeuser PKCS#11 softtoken) names it, default [`DEFAULT_CERT_STORE`].
//!
//! `#` starts a comment that runs to the end of the line; a `"` string may hold spaces.
//! Each rule needs a label, `auth_method preshared` and at least one local and one
//! remote address. Rule parameters not given take the global value, then the default
//! (IKE SA: AES-GCM-16 128, PRF HMAC-SHA-256, group 31; 3600 s IKE SA, 28800 s Child SA;
//! no PFS; Child SA: AES-GCM-16 128). A rule's identities default to its addresses.
//!
//! Child SA algorithms come from the IPsec policy, as Solaris does: the ACQUIRE's
//! proposal as initiator, ipsecd's answer to X_INVERSE_ACQUIRE as responder (see
//! [`crate::policy`]); `childsa_xform` (an Ironswan addition) is the initiator's
//! preference among what policy allows, and what the responder accepts only where no
//! IPsec policy protects the Child SA's selectors.
//! `local_ts` and `remote_ts` (Ironswan's) name the traffic selectors of the Child SAs
//! when they are not the two addresses (a tunnel-mode peer behind a NAT protects its
//! private address). `childsa_mode tunnel` (also Ironswan's) keys host-to-host Child SAs in tunnel mode
//! (the default is transport), for peers that do only tunnel mode (strongSwan's
//! kernel-libipsec); ipsecd applies such SAs under a transport-mode policy between the
//! hosts.
//!
//! Errors name the file, line and column and what was expected.
//!
//! # ikev2.preshared
//!
//! ```text
//! file  ::= { "{" label STRING key (STRING | 0xHEX) "}" }
//! ```
//!
//! Each entry gives the pre-shared key of the rule with that label. The file must be a
//! regular file of mode 0600 owned by root ([`load_preshared`] refuses it otherwise). Keys
//! are held in `Zeroizing` buffers and never printed.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ike::consts::id;
use ike::dh::Group;
use ike::prf::PrfAlg;
use ike::sa::{ChildSuite, Identity};
use ike::sk::SkSuite;
use zeroize::Zeroizing;

/// The certificate store directory when the configuration names none.
pub const DEFAULT_CERT_STORE: &str = "/etc/inet/ike/ikev2cert";

/// How a rule authenticates both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// The pre-shared key of the rule's label (ikev2.preshared).
    Preshared,
    /// Certificates and RFC 7427 signatures: any key type the store's certificate has.
    Cert,
    /// Certificates with an RSA key, PKCS#1 v1.5 signatures.
    RsaSig,
    /// Certificates with an RSA key, RSASSA-PSS signatures.
    RsaPss,
    /// Certificates with an ECDSA key; the hash preferred, if named.
    Ecdsa(Option<ike::cert::Hash>),
}

impl AuthMethod {
    /// Whether the method uses certificates.
    #[must_use]
    pub fn is_cert(self) -> bool {
        self != Self::Preshared
    }
}

/// A configuration error: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// Line (1-based; 0 when the error concerns the whole file).
    pub line: usize,
    /// Column (1-based).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// An address or prefix of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (32 or 128 for one address).
    pub len: u8,
}

impl Prefix {
    /// The first and last addresses inside.
    #[must_use]
    pub fn range(&self) -> (IpAddr, IpAddr) {
        match self.addr {
            IpAddr::V4(a) => {
                let m = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                let n = u32::from(a) & m;
                (
                    IpAddr::from(n.to_be_bytes()),
                    IpAddr::from((n | !m).to_be_bytes()),
                )
            }
            IpAddr::V6(a) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                let n = u128::from(a) & m;
                (
                    IpAddr::from(n.to_be_bytes()),
                    IpAddr::from((n | !m).to_be_bytes()),
                )
            }
        }
    }

    /// Whether `a` lies inside.
    #[must_use]
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let m = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(p) & m == u32::from(a) & m
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(p) & m == u128::from(a) & m
            }
            _ => false,
        }
    }

    /// Whether it names a single address.
    #[must_use]
    pub fn is_host(&self) -> bool {
        u32::from(self.len) == if self.addr.is_ipv4() { 32 } else { 128 }
    }
}

/// The IKE SA transforms of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeXform {
    /// SK payload protection.
    pub suite: SkSuite,
    /// PRF.
    pub prf: PrfAlg,
    /// Key exchange group.
    pub group: Group,
}

impl Default for IkeXform {
    fn default() -> Self {
        Self {
            suite: SkSuite {
                encr: 20,
                key_bits: 128,
                integ: None,
            },
            prf: PrfAlg::HmacSha256,
            group: Group::Curve25519,
        }
    }
}

/// The Child SA transforms a responder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildXform {
    /// ENCR transform ID.
    pub encr: u16,
    /// Key bits.
    pub key_bits: u16,
    /// INTEG transform ID (`None` with AEAD).
    pub integ: Option<u16>,
}

impl Default for ChildXform {
    fn default() -> Self {
        Self {
            encr: 20,
            key_bits: 128,
            integ: None,
        }
    }
}

impl ChildXform {
    /// The core's Child SA suite with this transform.
    #[must_use]
    pub fn suite(&self, transport: bool, pfs: bool) -> ChildSuite {
        ChildSuite {
            encr: self.encr,
            key_bits: self.key_bits,
            integ: self.integ,
            transport,
            pfs,
        }
    }
}

/// Parameters a rule may inherit from the global section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Params {
    ike: Option<IkeXform>,
    ike_lifetime: Option<u64>,
    child_lifetime: Option<u64>,
    pfs: Option<bool>,
    child: Option<ChildXform>,
    tunnel: Option<bool>,
}

/// One rule (a peer authentication database entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The rule's label (the key of its pre-shared key).
    pub label: String,
    /// How both sides authenticate.
    pub auth: AuthMethod,
    /// Local addresses.
    pub local_addr: Vec<Prefix>,
    /// Remote addresses.
    pub remote_addr: Vec<Prefix>,
    /// Our identity (`None`: our address).
    pub local_id: Option<Identity>,
    /// The identity the peer must show (`None`: its address).
    pub remote_id: Option<Identity>,
    /// Our side's traffic selectors (Ironswan; empty: our address).
    pub local_ts: Vec<Prefix>,
    /// The peer's side's traffic selectors (Ironswan; empty: its address), for a peer
    /// whose protected address is not its IKE address (behind a NAT).
    pub remote_ts: Vec<Prefix>,
    /// IKE SA transforms.
    pub ike: IkeXform,
    /// IKE SA lifetime, seconds.
    pub ike_lifetime: u64,
    /// Child SA hard lifetime, seconds (soft at 90 %).
    pub child_lifetime: u64,
    /// PFS on CREATE_CHILD_SA.
    pub pfs: bool,
    /// Child SA transforms accepted as responder.
    pub child: ChildXform,
    /// Child SAs in tunnel mode between the two hosts (inner selectors = the negotiated
    /// traffic selectors) rather than transport mode.
    pub tunnel: bool,
    /// Line of the rule's opening brace.
    pub line: usize,
}

impl Rule {
    /// Whether the rule covers this pair of addresses.
    #[must_use]
    pub fn matches(&self, local: IpAddr, remote: IpAddr) -> bool {
        self.local_addr.iter().any(|p| p.contains(local))
            && self.remote_addr.iter().any(|p| p.contains(remote))
    }
}

/// A parsed ikev2.config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// The rules in file order (the first match wins).
    pub rules: Vec<Rule>,
    /// The certificate store directory (`cert_store`; `None`: [`DEFAULT_CERT_STORE`]).
    pub cert_store: Option<PathBuf>,
    /// IKE fragmentation (RFC 7383), global parameters `fragmentation` and
    /// `fragment_size`.
    pub fragments: Fragments,
}

/// IKE fragmentation settings (the names are strongSwan's: `fragmentation yes|no`, and
/// `fragment_size` as charon's, the largest IP datagram of a fragment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragments {
    /// Announce support and fragment large protected messages when the peer does too.
    pub enabled: bool,
    /// The largest IP datagram (IP and UDP headers included) a fragment may need.
    pub size: u16,
}

impl Default for Fragments {
    /// On, 1280 bytes (the IPv6 minimum MTU, also safe on IPv4 paths).
    fn default() -> Self {
        Self {
            enabled: true,
            size: 1280,
        }
    }
}

/// The smallest `fragment_size` accepted: room for headers and some content.
pub const MIN_FRAGMENT_SIZE: u16 = 128;

impl Fragments {
    /// The longest IKE message sent whole to `remote` (the IKE core's fragment limit):
    /// the datagram size less the IP header, the UDP header and the non-ESP marker of
    /// port 4500; `None` when fragmentation is off.
    #[must_use]
    pub fn message_len(&self, remote: IpAddr) -> Option<usize> {
        let ip = if remote.is_ipv4() { 20 } else { 40 };
        self.enabled
            .then(|| usize::from(self.size).saturating_sub(ip + 8 + 4))
    }
}

impl Config {
    /// The certificate store directory.
    #[must_use]
    pub fn cert_store(&self) -> PathBuf {
        self.cert_store
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CERT_STORE))
    }

    /// Whether some rule uses certificates.
    #[must_use]
    pub fn uses_certs(&self) -> bool {
        self.rules.iter().any(|r| r.auth.is_cert())
    }

    /// Whether some rule uses a pre-shared key.
    #[must_use]
    pub fn uses_preshared(&self) -> bool {
        self.rules.iter().any(|r| !r.auth.is_cert())
    }

    /// The first rule covering `local` and `remote`.
    #[must_use]
    pub fn find(&self, local: IpAddr, remote: IpAddr) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(local, remote))
    }
}

// ---------------------------------------------------------------------------------------
// Lexer.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    Word(String),
    Str(String),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    column: usize,
}

struct Lexer<'a> {
    file: &'a str,
    toks: Vec<Token>,
    pos: usize,
    /// Position of the end of the file (for "unexpected end" errors).
    end: (usize, usize),
}

fn lex(file: &str, text: &str) -> Result<Vec<Token>, ConfigError> {
    let mut toks = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let column = i + 1;
            let at = |tok| Token {
                tok,
                line: ln + 1,
                column,
            };
            if c.is_whitespace() {
                i += 1;
            } else if c == '#' {
                break;
            } else if c == '{' {
                toks.push(at(Tok::Open));
                i += 1;
            } else if c == '}' {
                toks.push(at(Tok::Close));
                i += 1;
            } else if c == '"' {
                let start = i + 1;
                let Some(len) = chars[start..].iter().position(|&x| x == '"') else {
                    return Err(ConfigError {
                        file: file.into(),
                        line: ln + 1,
                        column,
                        message: "string not closed before the end of the line".into(),
                    });
                };
                toks.push(at(Tok::Str(chars[start..start + len].iter().collect())));
                i = start + len + 1;
            } else {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '{' | '}' | '"' | '#')
                {
                    i += 1;
                }
                toks.push(at(Tok::Word(chars[start..i].iter().collect())));
            }
        }
    }
    Ok(toks)
}

impl<'a> Lexer<'a> {
    fn new(file: &'a str, text: &str) -> Result<Self, ConfigError> {
        let toks = lex(file, text)?;
        let lines = text.lines().count();
        let last_len = text.lines().last().map_or(0, |l| l.chars().count());
        Ok(Self {
            file,
            toks,
            pos: 0,
            end: (lines.max(1), last_len + 1),
        })
    }

    fn err_at(&self, line: usize, column: usize, message: String) -> ConfigError {
        ConfigError {
            file: self.file.into(),
            line,
            column,
            message,
        }
    }

    fn err(&self, t: &Token, message: String) -> ConfigError {
        self.err_at(t.line, t.column, message)
    }

    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn next(&mut self, expected: &str) -> Result<Token, ConfigError> {
        match self.toks.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.clone())
            }
            None => Err(self.err_at(
                self.end.0,
                self.end.1,
                format!("expected {expected}, found the end of the file"),
            )),
        }
    }

    /// A word or a string.
    fn value(&mut self, expected: &str) -> Result<(String, Token), ConfigError> {
        let t = self.next(expected)?;
        match &t.tok {
            Tok::Word(w) | Tok::Str(w) => Ok((w.clone(), t)),
            other => Err(self.err(&t, format!("expected {expected}, found {}", show(other)))),
        }
    }

    fn open(&mut self, what: &str) -> Result<Token, ConfigError> {
        let t = self.next(&format!("'{{' opening {what}"))?;
        if t.tok == Tok::Open {
            Ok(t)
        } else {
            Err(self.err(
                &t,
                format!("expected '{{' opening {what}, found {}", show(&t.tok)),
            ))
        }
    }
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Open => "'{'".into(),
        Tok::Close => "'}'".into(),
        Tok::Word(w) => format!("{w:?}"),
        Tok::Str(s) => format!("string {s:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Values.

fn seconds(lx: &mut Lexer<'_>) -> Result<u64, ConfigError> {
    let v = lx.value("seconds")?;
    number(lx, v, "seconds")
}

fn number(lx: &Lexer<'_>, (v, t): (String, Token), what: &str) -> Result<u64, ConfigError> {
    v.parse::<u64>()
        .map_err(|_| lx.err(&t, format!("expected {what} (a number), found {v:?}")))
}

fn yes_no(lx: &mut Lexer<'_>) -> Result<bool, ConfigError> {
    let (v, t) = lx.value("yes or no")?;
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(lx.err(&t, format!("expected yes or no, found {v:?}"))),
    }
}

fn prefix(lx: &mut Lexer<'_>) -> Result<Prefix, ConfigError> {
    let (v, t) = lx.value("an address")?;
    let bad = || {
        lx.err(
            &t,
            format!("expected an IP address or ADDRESS/PREFIX, found {v:?}"),
        )
    };
    let (a, len) = match v.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (v.as_str(), None),
    };
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                return Err(lx.err(
                    &t,
                    format!("prefix length {l:?} is not a number from 0 to {max}"),
                ))
            }
        },
    };
    Ok(Prefix { addr, len })
}

fn identity(lx: &mut Lexer<'_>) -> Result<Identity, ConfigError> {
    let (ty, tt) = lx.value("an identity type (ip, fqdn, user_fqdn, dn)")?;
    let (mut v, mut vt) = lx.value("an identity value")?;
    if v == "=" && vt.tok == Tok::Word("=".into()) {
        (v, vt) = lx.value("an identity value")?;
    }
    match ty.to_ascii_lowercase().as_str() {
        "ip" | "ipv4" | "ipv6" | "ipv4_addr" | "ipv6_addr" => {
            let a: IpAddr = v
                .parse()
                .map_err(|_| lx.err(&vt, format!("expected an IP address, found {v:?}")))?;
            Ok(ip_identity(a))
        }
        "fqdn" | "dns" => Ok(Identity {
            id_type: id::FQDN,
            data: v.into_bytes(),
        }),
        "user_fqdn" | "email" | "mbox" => Ok(Identity {
            id_type: id::RFC822_ADDR,
            data: v.into_bytes(),
        }),
        "dn" | "asn1dn" | "der_asn1_dn" => Ok(Identity {
            id_type: id::DER_ASN1_DN,
            data: ike::cert::parse_dn(&v).map_err(|e| {
                lx.err(
                    &vt,
                    format!("expected a DN such as \"C=US, O=Example, CN=gw\": {e}"),
                )
            })?,
        }),
        _ => Err(lx.err(
            &tt,
            format!("expected an identity type (ip, fqdn, user_fqdn, dn), found {ty:?}"),
        )),
    }
}

/// The IKE identity of an address (ID_IPV4_ADDR or ID_IPV6_ADDR).
#[must_use]
pub fn ip_identity(a: IpAddr) -> Identity {
    match a {
        IpAddr::V4(a) => Identity {
            id_type: id::IPV4_ADDR,
            data: a.octets().to_vec(),
        },
        IpAddr::V6(a) => Identity {
            id_type: id::IPV6_ADDR,
            data: a.octets().to_vec(),
        },
    }
}

/// `NAME` or `NAME(BITS)`: an encryption algorithm's IKEv2 ID and key length.
fn encr(lx: &mut Lexer<'_>) -> Result<(u16, u16), ConfigError> {
    let (v, t) = lx.value("an encryption algorithm")?;
    let (name, bits) = match v.split_once('(') {
        Some((n, rest)) => {
            let b = rest.strip_suffix(')').and_then(|b| b.parse::<u16>().ok());
            match b {
                Some(b) => (n, Some(b)),
                None => {
                    return Err(lx.err(
                        &t,
                        format!("expected ALGORITHM(BITS) such as aes-gcm(256), found {v:?}"),
                    ))
                }
            }
        }
        None => (v.as_str(), None),
    };
    let id = match name.to_ascii_lowercase().as_str() {
        "aes" | "aes-cbc" => 12,
        "aes-gcm" | "aes-gcm-16" | "aes-gcm16" => 20,
        "chacha20-poly1305" | "chacha20poly1305" => 28,
        _ => {
            return Err(lx.err(
                &t,
                format!(
                    "expected an encryption algorithm (aes-cbc, aes-gcm, chacha20-poly1305), found {name:?}"
                ),
            ))
        }
    };
    let bits = bits.unwrap_or(if id == 28 { 256 } else { 128 });
    let ok = if id == 28 {
        bits == 256
    } else {
        matches!(bits, 128 | 192 | 256)
    };
    if !ok {
        return Err(lx.err(&t, format!("{name} cannot have a {bits}-bit key")));
    }
    Ok((id, bits))
}

/// An integrity algorithm's IKEv2 ID (`None` for `none`).
fn integ(lx: &mut Lexer<'_>) -> Result<Option<u16>, ConfigError> {
    let (v, t) = lx.value("an integrity algorithm")?;
    match v.to_ascii_lowercase().as_str() {
        "none" => Ok(None),
        "sha256" | "sha-256" | "hmac-sha256" | "sha2-256" => Ok(Some(12)),
        "sha384" | "sha-384" | "hmac-sha384" | "sha2-384" => Ok(Some(13)),
        "sha512" | "sha-512" | "hmac-sha512" | "sha2-512" => Ok(Some(14)),
        _ => Err(lx.err(
            &t,
            format!("expected an integrity algorithm (sha256, sha384, sha512, none), found {v:?}"),
        )),
    }
}

fn prf(lx: &mut Lexer<'_>) -> Result<PrfAlg, ConfigError> {
    let (v, t) = lx.value("a PRF")?;
    match v.to_ascii_lowercase().as_str() {
        "sha256" | "sha-256" | "hmac-sha256" | "sha2-256" => Ok(PrfAlg::HmacSha256),
        "sha384" | "sha-384" | "hmac-sha384" | "sha2-384" => Ok(PrfAlg::HmacSha384),
        "sha512" | "sha-512" | "hmac-sha512" | "sha2-512" => Ok(PrfAlg::HmacSha512),
        _ => Err(lx.err(
            &t,
            format!("expected a PRF (sha256, sha384, sha512), found {v:?}"),
        )),
    }
}

fn is_aead(encr: u16) -> bool {
    matches!(encr, 20 | 28)
}

fn check_integ(
    lx: &Lexer<'_>,
    t: &Token,
    encr: u16,
    integ: Option<u16>,
) -> Result<(), ConfigError> {
    match (is_aead(encr), integ) {
        (true, Some(_)) => Err(lx.err(
            t,
            "an AEAD cipher takes auth_alg none (or no auth_alg)".into(),
        )),
        (false, None) => Err(lx.err(
            t,
            "aes-cbc needs an auth_alg (sha256, sha384, sha512)".into(),
        )),
        _ => Ok(()),
    }
}

fn ike_xform(lx: &mut Lexer<'_>) -> Result<IkeXform, ConfigError> {
    let open = lx.open("ikesa_xform")?;
    let mut e = None;
    let mut a = None;
    let mut p = None;
    let mut g = None;
    loop {
        let t = lx.next("an ikesa_xform parameter or '}'")?;
        let key = match &t.tok {
            Tok::Close => break,
            Tok::Word(w) => w.clone(),
            other => {
                return Err(lx.err(
                    &t,
                    format!(
                        "expected encr_alg, auth_alg, prf, dh_group or '}}', found {}",
                        show(other)
                    ),
                ))
            }
        };
        match key.as_str() {
            "encr_alg" => e = Some(encr(lx)?),
            "auth_alg" => a = Some(integ(lx)?),
            "prf" => p = Some(prf(lx)?),
            "dh_group" => {
                let v = lx.value("a key exchange group number")?;
                let n = number(lx, v.clone(), "a key exchange group")?;
                g = Some(
                    u16::try_from(n)
                        .ok()
                        .and_then(Group::from_id)
                        .ok_or_else(|| {
                            lx.err(&v.1, format!("dh_group {n}: expected 14, 19, 20 or 31"))
                        })?,
                );
            }
            _ => {
                return Err(lx.err(
                    &t,
                    format!("expected encr_alg, auth_alg, prf, dh_group or '}}', found {key:?}"),
                ))
            }
        }
    }
    let d = IkeXform::default();
    let (encr, key_bits) = e.unwrap_or((d.suite.encr, d.suite.key_bits));
    let integ = a.unwrap_or(if is_aead(encr) { None } else { Some(12) });
    check_integ(lx, &open, encr, integ)?;
    Ok(IkeXform {
        suite: SkSuite {
            encr,
            key_bits,
            integ,
        },
        prf: p.unwrap_or(d.prf),
        group: g.unwrap_or(d.group),
    })
}

fn child_xform(lx: &mut Lexer<'_>) -> Result<ChildXform, ConfigError> {
    let open = lx.open("childsa_xform")?;
    let mut e = None;
    let mut a = None;
    loop {
        let t = lx.next("a childsa_xform parameter or '}'")?;
        match &t.tok {
            Tok::Close => break,
            Tok::Word(w) if w == "encr_alg" => {
                e = Some(encr(lx)?);
            }
            Tok::Word(w) if w == "auth_alg" => {
                a = Some(integ(lx)?);
            }
            other => {
                return Err(lx.err(
                    &t,
                    format!("expected encr_alg, auth_alg or '}}', found {}", show(other)),
                ))
            }
        }
    }
    let d = ChildXform::default();
    let (encr, key_bits) = e.unwrap_or((d.encr, d.key_bits));
    let integ = a.unwrap_or(if is_aead(encr) { None } else { Some(12) });
    check_integ(lx, &open, encr, integ)?;
    Ok(ChildXform {
        encr,
        key_bits,
        integ,
    })
}

fn auth_method(lx: &mut Lexer<'_>) -> Result<AuthMethod, ConfigError> {
    use ike::cert::Hash;
    let (m, mt) = lx.value("an authentication method")?;
    Ok(match m.as_str() {
        "preshared" => AuthMethod::Preshared,
        "cert" | "certificate" => AuthMethod::Cert,
        "rsa_sig" | "rsa_pkcs1" => AuthMethod::RsaSig,
        "rsa_pss" => AuthMethod::RsaPss,
        "ecdsa" => AuthMethod::Ecdsa(None),
        "ecdsa_sha256" | "ecdsa_256" => AuthMethod::Ecdsa(Some(Hash::Sha256)),
        "ecdsa_sha384" | "ecdsa_384" => AuthMethod::Ecdsa(Some(Hash::Sha384)),
        "ecdsa_sha512" | "ecdsa_521" => AuthMethod::Ecdsa(Some(Hash::Sha512)),
        _ => {
            return Err(lx.err(
                &mt,
                format!(
                    "expected an authentication method (preshared, cert, rsa_sig, rsa_pss, ecdsa, ecdsa_sha256, ecdsa_sha384, ecdsa_sha512), found {m:?}"
                ),
            ))
        }
    })
}

/// The parameters allowed before the first rule (and in rules).
const GLOBAL_PARAMS: [&str; 6] = [
    "childsa_mode",
    "ikesa_xform",
    "ikesa_lifetime_secs",
    "childsa_lifetime_secs",
    "childsa_pfs",
    "childsa_xform",
];

/// The global-only parameters of IKE fragmentation.
const FRAGMENT_PARAMS: [&str; 2] = ["fragmentation", "fragment_size"];

/// Parses a fragmentation parameter; `Ok(false)` if `key` is not one.
fn fragment_param(lx: &mut Lexer<'_>, key: &str, f: &mut Fragments) -> Result<bool, ConfigError> {
    match key {
        "fragmentation" => f.enabled = yes_no(lx)?,
        "fragment_size" => {
            let (v, t) = lx.value("a size in bytes")?;
            let n = number(lx, (v.clone(), t.clone()), "a size in bytes")?;
            f.size = u16::try_from(n)
                .ok()
                .filter(|n| *n >= MIN_FRAGMENT_SIZE)
                .ok_or_else(|| {
                    lx.err(
                        &t,
                        format!("fragment_size must be {MIN_FRAGMENT_SIZE} to 65535, found {v}"),
                    )
                })?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Parses a parameter allowed both globally and in a rule; `Ok(false)` if `key` is not one.
fn common_param(lx: &mut Lexer<'_>, key: &str, p: &mut Params) -> Result<bool, ConfigError> {
    match key {
        "ikesa_xform" => {
            let x = ike_xform(lx)?;
            // The core offers one proposal: the first transform set is used.
            p.ike.get_or_insert(x);
        }
        "ikesa_lifetime_secs" => {
            p.ike_lifetime = Some(seconds(lx)?);
        }
        "childsa_lifetime_secs" => {
            p.child_lifetime = Some(seconds(lx)?);
        }
        "childsa_pfs" => p.pfs = Some(yes_no(lx)?),
        "childsa_xform" => p.child = Some(child_xform(lx)?),
        "childsa_mode" => {
            let (v, t) = lx.value("transport or tunnel")?;
            p.tunnel = Some(match v.as_str() {
                "transport" => false,
                "tunnel" => true,
                _ => return Err(lx.err(&t, format!("expected transport or tunnel, found {v:?}"))),
            });
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn rule(lx: &mut Lexer<'_>, open: &Token, global: &Params) -> Result<Rule, ConfigError> {
    let mut label = None;
    let mut auth = None;
    let mut local_addr = Vec::new();
    let mut remote_addr = Vec::new();
    let mut local_id = None;
    let mut remote_id = None;
    let mut local_ts = Vec::new();
    let mut remote_ts = Vec::new();
    let mut p = Params {
        ike: None,
        ike_lifetime: None,
        child_lifetime: None,
        pfs: None,
        child: None,
        tunnel: None,
    };
    loop {
        let t = lx.next("a rule parameter or '}'")?;
        let key = match &t.tok {
            Tok::Close => break,
            Tok::Word(w) => w.clone(),
            other => {
                return Err(lx.err(
                    &t,
                    format!("expected a rule parameter or '}}', found {}", show(other)),
                ))
            }
        };
        if common_param(lx, &key, &mut p)? {
            continue;
        }
        match key.as_str() {
            "label" => label = Some(lx.value("a label")?.0),
            "auth_method" => auth = Some(auth_method(lx)?),
            "local_addr" => local_addr.push(prefix(lx)?),
            "remote_addr" => remote_addr.push(prefix(lx)?),
            "local_id" => local_id = Some(identity(lx)?),
            "local_ts" => local_ts.push(prefix(lx)?),
            "remote_ts" => remote_ts.push(prefix(lx)?),
            "remote_id" => remote_id = Some(identity(lx)?),
            _ => {
                return Err(lx.err(
                    &t,
                    format!(
                        "expected a rule parameter (label, auth_method, local_addr, remote_addr, local_id, remote_id, local_ts, remote_ts, ikesa_xform, ikesa_lifetime_secs, childsa_lifetime_secs, childsa_pfs, childsa_xform, childsa_mode) or '}}', found {key:?}"
                    ),
                ))
            }
        }
    }
    let missing = |what: &str| lx.err(open, format!("rule has no {what}"));
    let label = label.ok_or_else(|| missing("label"))?;
    let auth = auth.ok_or_else(|| missing("auth_method (preshared or cert)"))?;
    if auth.is_cert() && local_id.is_none() {
        return Err(missing(
            "local_id (a certificate rule names the identity of its certificate)",
        ));
    }
    if local_addr.is_empty() {
        return Err(missing("local_addr"));
    }
    if remote_addr.is_empty() {
        return Err(missing("remote_addr"));
    }
    Ok(Rule {
        label,
        auth,
        local_addr,
        remote_addr,
        local_id,
        remote_id,
        local_ts,
        remote_ts,
        ike: p.ike.or(global.ike).unwrap_or_default(),
        ike_lifetime: p.ike_lifetime.or(global.ike_lifetime).unwrap_or(3600),
        child_lifetime: p.child_lifetime.or(global.child_lifetime).unwrap_or(28_800),
        pfs: p.pfs.or(global.pfs).unwrap_or(false),
        child: p.child.or(global.child).unwrap_or_default(),
        tunnel: p.tunnel.or(global.tunnel).unwrap_or(false),
        line: open.line,
    })
}

/// Parses ikev2.config text; `file` names it in errors.
///
/// # Errors
/// The first error, with its line and column.
pub fn parse_config(file: &str, text: &str) -> Result<Config, ConfigError> {
    let mut lx = Lexer::new(file, text)?;
    let mut global = Params {
        ike: None,
        ike_lifetime: None,
        child_lifetime: None,
        pfs: None,
        child: None,
        tunnel: None,
    };
    let mut rules: Vec<Rule> = Vec::new();
    let mut fragments = Fragments::default();
    let mut cert_store = None;
    while let Some(t) = lx.peek().cloned() {
        lx.pos += 1;
        match &t.tok {
            Tok::Open => {
                let r = rule(&mut lx, &t, &global)?;
                if let Some(o) = rules.iter().find(|o| o.label == r.label) {
                    return Err(lx.err(
                        &t,
                        format!("label {:?} already used by the rule of line {}", r.label, o.line),
                    ));
                }
                rules.push(r);
            }
            Tok::Word(w) if rules.is_empty() && common_param(&mut lx, w, &mut global)? => {}
            Tok::Word(w) if rules.is_empty() && fragment_param(&mut lx, w, &mut fragments)? => {}
            Tok::Word(w) if rules.is_empty() && w == "cert_store" => {
                let (dir, dt) = lx.value("a directory")?;
                if !dir.starts_with('/') {
                    return Err(lx.err(
                        &dt,
                        format!("cert_store {dir:?}: expected an absolute directory path"),
                    ));
                }
                cert_store = Some(PathBuf::from(dir));
            }
            Tok::Word(w)
                if GLOBAL_PARAMS.contains(&w.as_str())
                    || FRAGMENT_PARAMS.contains(&w.as_str())
                    || w == "cert_store" =>
            {
                return Err(lx.err(
                    &t,
                    format!("global parameter {w:?} must come before the first rule"),
                ))
            }
            other => {
                return Err(lx.err(
                    &t,
                    format!(
                        "expected a global parameter (ikesa_xform, ikesa_lifetime_secs, childsa_lifetime_secs, childsa_pfs, childsa_xform, childsa_mode, cert_store, fragmentation, fragment_size) or '{{' opening a rule, found {}",
                        show(other)
                    ),
                ))
            }
        }
    }
    Ok(Config {
        rules,
        cert_store,
        fragments,
    })
}

/// Reads and parses an ikev2.config file.
///
/// # Errors
/// The file cannot be read, or its first error.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: name.clone(),
        line: 0,
        column: 0,
        message: e.to_string(),
    })?;
    parse_config(&name, &text)
}

// ---------------------------------------------------------------------------------------
// ikev2.preshared.

/// Pre-shared keys by rule label.
#[derive(Default)]
pub struct Preshared {
    keys: HashMap<String, Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for Preshared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Preshared")
            .field("labels", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Preshared {
    /// The key of the rule labelled `label`.
    #[must_use]
    pub fn get(&self, label: &str) -> Option<&Zeroizing<Vec<u8>>> {
        self.keys.get(label)
    }

    /// The labels that have a key, in no particular order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// How many keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn hex_key(v: &str) -> Option<Zeroizing<Vec<u8>>> {
    let h = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X"))?;
    if h.is_empty() || h.len() % 2 != 0 {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(h.len() / 2));
    for i in (0..h.len()).step_by(2) {
        out.push(u8::from_str_radix(h.get(i..i + 2)?, 16).ok()?);
    }
    Some(out)
}

/// What a token of ikev2.preshared is, for an error message: never its text, which could
/// be a key written in the wrong place.
fn preshared_kind(t: &Tok) -> &'static str {
    match t {
        Tok::Open => "'{'",
        Tok::Close => "'}'",
        Tok::Word(_) => "a word",
        Tok::Str(_) => "a string",
    }
}

/// Parses ikev2.preshared text (see the module docs). Error messages never include a key,
/// nor any other text of the file: they name the position and what was expected.
///
/// # Errors
/// The first error, with its line and column.
pub fn parse_preshared(file: &str, text: &str) -> Result<Preshared, ConfigError> {
    let mut lx = Lexer::new(file, text)?;
    let mut out = Preshared::default();
    let mut lines = std::collections::HashMap::new();
    while let Some(t) = lx.peek().cloned() {
        lx.pos += 1;
        if t.tok != Tok::Open {
            return Err(lx.err(
                &t,
                format!(
                    "expected '{{' opening an entry, found {}",
                    preshared_kind(&t.tok)
                ),
            ));
        }
        let mut label = None;
        let mut key = None;
        loop {
            let k = lx.next("label, key or '}'")?;
            match &k.tok {
                Tok::Close => break,
                Tok::Word(w) if w == "label" => {
                    let v = lx.next("a label")?;
                    match &v.tok {
                        Tok::Word(w) | Tok::Str(w) => label = Some(w.clone()),
                        other => {
                            let found = preshared_kind(other);
                            return Err(lx.err(&v, format!("expected a label, found {found}")));
                        }
                    }
                }
                Tok::Word(w) if w == "key" => {
                    let vt = lx.next("a key (a string or 0xHEX)")?;
                    key = Some(match &vt.tok {
                        Tok::Str(s) if !s.is_empty() => Zeroizing::new(s.as_bytes().to_vec()),
                        Tok::Word(w) => hex_key(w).ok_or_else(|| {
                            lx.err(
                                &vt,
                                "expected a key: a quoted string or 0x and an even number of hex digits".into(),
                            )
                        })?,
                        _ => {
                            return Err(lx.err(
                                &vt,
                                "expected a key: a quoted string or 0x and an even number of hex digits".into(),
                            ))
                        }
                    });
                }
                other => {
                    return Err(lx.err(
                        &k,
                        format!(
                            "expected label, key or '}}', found {}",
                            preshared_kind(other)
                        ),
                    ))
                }
            }
        }
        let label = label.ok_or_else(|| lx.err(&t, "entry has no label".into()))?;
        let key = key.ok_or_else(|| lx.err(&t, "entry has no key".into()))?;
        if let Some(first) = lines.insert(label.clone(), t.line) {
            return Err(lx.err(
                &t,
                format!("a second entry with the label of the entry at line {first}"),
            ));
        }
        out.keys.insert(label, key);
    }
    Ok(out)
}

/// Reads ikev2.preshared, refusing a file that is not a regular file of mode 0600 owned
/// by root (the keys must be readable by root alone).
///
/// # Errors
/// Unreadable, wrong mode or owner, or a parse error.
pub fn load_preshared(path: &Path) -> Result<Preshared, ConfigError> {
    let name = path.display().to_string();
    let whole = |message: String| ConfigError {
        file: name.clone(),
        line: 0,
        column: 0,
        message,
    };
    // One descriptor, opened without following a link, checked (fstat) and then read.
    let (f, md) = ike::cert::store::open_nofollow(path).map_err(|e| {
        whole(if ike::cert::store::is_link_refused(&e) {
            "a symbolic link: pre-shared keys must be in a regular file named itself".into()
        } else {
            e.to_string()
        })
    })?;
    ike::cert::store::FileRule::Private
        .check(&md, "pre-shared keys")
        .map_err(whole)?;
    let bytes = ike::cert::store::read_all(f).map_err(|e| whole(e.to_string()))?;
    let text = Zeroizing::new(
        core::str::from_utf8(&bytes)
            .map(str::to_owned)
            .map_err(|_| whole("not UTF-8 text".into()))?,
    );
    parse_preshared(&name, &text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
# global defaults
ikesa_lifetime_secs 7200
ikesa_xform { encr_alg aes-gcm(256) prf sha384 dh_group 14 }

{
    label "a-b"
    auth_method preshared
    local_addr 192.0.2.1
    remote_addr 192.0.2.0/24   # the peer's subnet
    remote_id fqdn "b.example"
    remote_ts 10.9.0.0/16
    childsa_pfs yes
}
{
    label "v6"
    auth_method preshared
    local_addr 2001:db8::1
    remote_addr 2001:db8::2
    ikesa_xform { encr_alg aes(256) auth_alg sha512 prf sha512 dh_group 31 }
    childsa_xform { encr_alg aes-cbc auth_alg sha256 }
    childsa_mode tunnel
}
"#;

    #[test]
    fn good_file_parses_with_defaults_and_globals() {
        let c = parse_config("ikev2.config", GOOD).unwrap();
        assert_eq!(c.rules.len(), 2);
        let a = &c.rules[0];
        assert_eq!(a.label, "a-b");
        assert_eq!(a.ike_lifetime, 7200);
        assert_eq!(a.child_lifetime, 28_800);
        assert_eq!(a.ike.suite.encr, 20);
        assert_eq!(a.ike.suite.key_bits, 256);
        assert_eq!(a.ike.prf, PrfAlg::HmacSha384);
        assert_eq!(a.ike.group, Group::Modp2048);
        assert!(a.pfs);
        assert_eq!(
            a.remote_id,
            Some(Identity {
                id_type: id::FQDN,
                data: b"b.example".to_vec()
            })
        );
        assert!(a.matches("192.0.2.1".parse().unwrap(), "192.0.2.77".parse().unwrap()));
        assert!(!a.matches("192.0.2.2".parse().unwrap(), "192.0.2.77".parse().unwrap()));
        let b = &c.rules[1];
        assert_eq!(b.ike.suite.integ, Some(14));
        assert_eq!(b.ike.group, Group::Curve25519);
        assert_eq!(b.child.encr, 12);
        assert_eq!(b.child.integ, Some(12));
        assert!(b.tunnel && !a.tunnel);
        assert_eq!(
            a.remote_ts[0].range(),
            ("10.9.0.0".parse().unwrap(), "10.9.255.255".parse().unwrap())
        );
        assert!(a.local_ts.is_empty());
        assert_eq!(
            c.find(
                "2001:db8::1".parse().unwrap(),
                "2001:db8::2".parse().unwrap()
            )
            .map(|r| r.label.as_str()),
            Some("v6")
        );
    }

    #[test]
    fn certificate_rules_parse() {
        let c = parse_config(
            "f",
            r#"cert_store "/var/lib/ironswan/certs"
{ label "dn" auth_method rsa_sig local_addr 10.0.0.1 remote_addr 10.0.0.2
  local_id dn "C=US, O=Example, CN=gw" remote_id DN = "C=US, O=Example, CN=peer" }
{ label "fq" auth_method ecdsa_sha384 local_addr 10.0.0.1 remote_addr 10.0.0.3
  local_id fqdn gw.example.com remote_id user_fqdn = "bob@example.com" }
{ label "ip" auth_method cert local_addr 10.0.0.1 remote_addr 10.0.0.4 local_id ip 10.0.0.1 }
"#,
        )
        .unwrap();
        assert_eq!(c.cert_store(), PathBuf::from("/var/lib/ironswan/certs"));
        assert!(c.uses_certs() && !c.uses_preshared());
        let [dn, fq, ip] = c.rules.as_slice() else {
            panic!("{c:?}")
        };
        assert_eq!(dn.auth, AuthMethod::RsaSig);
        let l = dn.local_id.as_ref().unwrap();
        assert_eq!(l.id_type, id::DER_ASN1_DN);
        assert!(ike::cert::dn_equal(
            &l.data,
            &ike::cert::parse_dn("c=us,o=example,cn=GW").unwrap()
        ));
        assert_eq!(fq.auth, AuthMethod::Ecdsa(Some(ike::cert::Hash::Sha384)));
        assert_eq!(fq.remote_id.as_ref().unwrap().data, b"bob@example.com");
        assert_eq!(fq.remote_id.as_ref().unwrap().id_type, id::RFC822_ADDR);
        assert_eq!(ip.auth, AuthMethod::Cert);
        assert_eq!(ip.remote_id, None);
        assert_eq!(
            parse_config("f", "").unwrap().cert_store(),
            PathBuf::from(DEFAULT_CERT_STORE)
        );
    }

    fn err(text: &str) -> String {
        parse_config("f", text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_line_column_and_expectation() {
        let base =
            "{\n label x\n auth_method preshared\n local_addr 10.0.0.1\n remote_addr 10.0.0.2\n";
        assert_eq!(
            err(&format!("{base} bogus 1\n}}")),
            "f:6:2: expected a rule parameter (label, auth_method, local_addr, remote_addr, local_id, remote_id, local_ts, remote_ts, ikesa_xform, ikesa_lifetime_secs, childsa_lifetime_secs, childsa_pfs, childsa_xform, childsa_mode) or '}', found \"bogus\""
        );
        assert_eq!(
            err(&format!("{base} ikesa_xform {{ dh_group 5 }}\n}}")),
            "f:6:25: dh_group 5: expected 14, 19, 20 or 31"
        );
        assert_eq!(
            err(&format!(
                "{base} ikesa_xform {{ encr_alg aes-gcm auth_alg sha256 }}\n}}"
            )),
            "f:6:14: an AEAD cipher takes auth_alg none (or no auth_alg)"
        );
        assert_eq!(
            err(&format!("{base} ikesa_xform {{ encr_alg des }}\n}}")),
            "f:6:25: expected an encryption algorithm (aes-cbc, aes-gcm, chacha20-poly1305), found \"des\""
        );
        assert_eq!(
            err("{\n label x\n auth_method preshared\n local_addr 10.0.0.999\n}"),
            "f:4:13: expected an IP address or ADDRESS/PREFIX, found \"10.0.0.999\""
        );
        assert_eq!(
            err("{\n label x\n auth_method certs\n}"),
            "f:3:14: expected an authentication method (preshared, cert, rsa_sig, rsa_pss, ecdsa, ecdsa_sha256, ecdsa_sha384, ecdsa_sha512), found \"certs\""
        );
        assert_eq!(
            err("{\n label x\n auth_method cert\n local_addr 10.0.0.1\n remote_addr 10.0.0.2\n}"),
            "f:1:1: rule has no local_id (a certificate rule names the identity of its certificate)"
        );
        assert_eq!(
            err("{\n label x\n local_id dn \"C=US, XO=a\"\n}"),
            "f:3:14: expected a DN such as \"C=US, O=Example, CN=gw\": unknown DN attribute type \"XO\": expected C, ST, L, O, OU, CN, E, DC, SN, SERIALNUMBER, T, G or UID"
        );
        assert_eq!(
            err("{\n label x\n remote_id DN = \"CN\"\n}"),
            "f:3:17: expected a DN such as \"C=US, O=Example, CN=gw\": \"CN\": expected TYPE=value (such as CN=gw)"
        );
        assert_eq!(
            err("cert_store relative/dir\n"),
            "f:1:12: cert_store \"relative/dir\": expected an absolute directory path"
        );
        assert_eq!(
            err("{\n label x\n"),
            "f:2:9: expected a rule parameter or '}', found the end of the file"
        );
        assert_eq!(
            err("{ label x auth_method preshared local_addr 10.0.0.1 }"),
            "f:1:1: rule has no remote_addr"
        );
        assert_eq!(
            err(&format!("{base}}}\nikesa_lifetime_secs 5\n")),
            "f:7:1: global parameter \"ikesa_lifetime_secs\" must come before the first rule"
        );
        assert_eq!(
            err(&format!("{base}}}\n{base}}}\n")),
            "f:7:1: label \"x\" already used by the rule of line 1"
        );
        assert_eq!(
            err("label \"unclosed\n"),
            "f:1:7: string not closed before the end of the line"
        );
        assert_eq!(
            err("bogus"),
            "f:1:1: expected a global parameter (ikesa_xform, ikesa_lifetime_secs, childsa_lifetime_secs, childsa_pfs, childsa_xform, childsa_mode, cert_store, fragmentation, fragment_size) or '{' opening a rule, found \"bogus\""
        );
    }

    #[test]
    fn fragmentation_parameters() {
        let rule =
            "{\n label x\n auth_method preshared\n local_addr 10.0.0.1\n remote_addr 10.0.0.2\n}\n";
        let c = parse_config("f", rule).unwrap();
        assert_eq!(c.fragments, Fragments::default());
        assert!(c.fragments.enabled);
        let v4: IpAddr = "10.0.0.2".parse().unwrap();
        let v6: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(c.fragments.message_len(v4), Some(1280 - 32));
        assert_eq!(c.fragments.message_len(v6), Some(1280 - 52));
        let c = parse_config("f", &format!("fragmentation no\nfragment_size 576\n{rule}")).unwrap();
        assert_eq!(
            c.fragments,
            Fragments {
                enabled: false,
                size: 576
            }
        );
        assert_eq!(c.fragments.message_len(v4), None);
        assert_eq!(
            err("fragment_size 100\n"),
            "f:1:15: fragment_size must be 128 to 65535, found 100"
        );
        assert_eq!(
            err("fragmentation maybe\n"),
            "f:1:15: expected yes or no, found \"maybe\""
        );
        assert_eq!(
            err(&format!("{rule}fragment_size 600\n")),
            "f:7:1: global parameter \"fragment_size\" must come before the first rule"
        );
    }

    #[test]
    fn preshared_entries_and_errors_without_keys() {
        let p = parse_preshared(
            "p",
            "{ label \"a-b\" key \"s3cret phrase\" }\n{ label v6 key 0x00ff10 }\n",
        )
        .unwrap();
        assert_eq!(p.get("a-b").unwrap().as_slice(), b"s3cret phrase");
        assert_eq!(p.get("v6").unwrap().as_slice(), &[0, 0xff, 0x10]);
        assert!(!format!("{p:?}").contains("s3cret"));
        let e = parse_preshared("p", "{ label x key 0xabc }").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p:1:15: expected a key: a quoted string or 0x and an even number of hex digits"
        );
        assert!(!e.to_string().contains("abc"));
        let e = parse_preshared("p", "{ label x }").unwrap_err();
        assert_eq!(e.to_string(), "p:1:1: entry has no key");
        let e = parse_preshared("p", "{ label x key \"k\" }\n{ label x key \"j\" }").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p:2:1: a second entry with the label of the entry at line 1"
        );
    }

    #[test]
    fn preshared_errors_never_show_the_file_text() {
        for (text, want) in [
            // The keyword `key` forgotten: the secret is where a keyword was expected.
            (
                "{ label x \"s3cret\" }",
                "p:1:11: expected label, key or '}', found a string",
            ),
            (
                "{ label x 0x5ec7e7 }",
                "p:1:11: expected label, key or '}', found a word",
            ),
            (
                "\"s3cret\" { label x }",
                "p:1:1: expected '{' opening an entry, found a string",
            ),
            (
                "{ label { key \"s3cret\" }",
                "p:1:9: expected a label, found '{'",
            ),
            (
                "{ label s3cret key \"a\" }\n{ label s3cret key \"b\" }",
                "p:2:1: a second entry with the label of the entry at line 1",
            ),
        ] {
            let e = parse_preshared("p", text).unwrap_err().to_string();
            assert_eq!(e, want, "{text}");
            assert!(!e.contains("s3cret") && !e.contains("5ec7e7"), "{e}");
        }
    }

    #[test]
    fn preshared_file_must_be_0600_and_root_owned() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ikev2d-psk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("ikev2.preshared");
        std::fs::write(&f, "{ label x key \"k\" }\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_preshared(&f).unwrap_err().to_string();
        assert!(
            e.ends_with("mode 0644: pre-shared keys must be in a file of mode 0600"),
            "{e}"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        if ipsec_sys::geteuid() == 0 {
            assert_eq!(load_preshared(&f).unwrap().len(), 1);
            std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
            let e = load_preshared(&f).unwrap_err().to_string();
            assert!(e.contains("owned by uid 65534"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The keys file is opened without following a link and checked on the descriptor
    /// it is read from: a link to a good file is refused, a FIFO too (never read).
    #[test]
    fn preshared_file_is_not_reached_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ikev2d-psk-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("real.preshared");
        std::fs::write(&f, "{ label x key \"k\" }\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("ikev2.preshared");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let e = load_preshared(&link).unwrap_err().to_string();
        assert!(
            e.ends_with("ikev2.preshared: a symbolic link: pre-shared keys must be in a regular file named itself"),
            "{e}"
        );
        let fifo = dir.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_preshared(&fifo).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
