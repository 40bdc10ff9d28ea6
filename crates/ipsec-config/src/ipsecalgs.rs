//! The ipsecalgs(8) table: Solaris's `/etc/inet/ipsecalgs` file of IPsec protocols and
//! algorithms, parsed, edited, written back, and checked against what ipsec-crypto implements.
//!
//! ```text
//! PROTO|protocol-id|protocol-name|exec-mode
//! ALG|protocol-id|alg-id|name,name,...|mechanism|{default/}{key,key..}or{min-max,inc}|block-or-MAC-sizes|[iv,icv,salt]|[flags]
//! ```
//!
//! Protocol 2 (`PROTO_IPSEC_AH`) lists the authentication algorithms (used by AH and by ESP
//! authentication), protocol 3 (`PROTO_IPSEC_ESP`) the encryption algorithms; algorithm
//! numbers are PF_KEY `sadb_sa_auth`/`sadb_sa_encrypt` values. Key sizes are in bits (salt
//! excluded), block, MAC, IV, ICV and salt sizes in bytes. Flags are Solaris's `ALG_FLAG_*`
//! bits (`VALID 0x01, COUNTER 0x02, COMBINED 0x04, CCM 0x08, GCM 0x10`, and `0x20` for GMAC).
//!
//! [`Table::builtin`] is the file that describes ipsec-crypto's table exactly (the content when
//! no file exists). [`Table::validate`] is what ipsecd does on a sync: every entry must name an
//! algorithm ipsec-crypto implements under the same PF_KEY number and mechanism, with key,
//! block/MAC and IV/ICV/salt sizes it supports; the result is the [`AlgFilter`] of algorithms
//! and key sizes the daemon then allows. Names are kept and shown but do not change how the
//! tools resolve algorithm names (they use the built-in names).

use std::fmt;

use ipsec_crypto::{auth_table, encr_table, AuthInfo, EncrInfo, KeyBits, Rfc8221};
use ipsec_pfkey::engine::AlgFilter;

/// PF_KEY/ipsecalgs protocol number of AH (authentication algorithms).
pub const PROTO_AH: u32 = 2;
/// PF_KEY/ipsecalgs protocol number of ESP (encryption algorithms).
pub const PROTO_ESP: u32 = 3;

/// `ALG_FLAG_VALID`.
pub const FLAG_VALID: u32 = 0x01;
/// `ALG_FLAG_COUNTERMODE`.
pub const FLAG_COUNTER: u32 = 0x02;
/// `ALG_FLAG_COMBINED`.
pub const FLAG_COMBINED: u32 = 0x04;
/// `ALG_FLAG_CCM`.
pub const FLAG_CCM: u32 = 0x08;
/// `ALG_FLAG_GCM`.
pub const FLAG_GCM: u32 = 0x10;
/// GMAC (Solaris 11's 0x20, inferred from its table).
pub const FLAG_GMAC: u32 = 0x20;

const FLAG_NAMES: [(&str, u32); 6] = [
    ("VALID", FLAG_VALID),
    ("COUNTER", FLAG_COUNTER),
    ("COMBINED", FLAG_COMBINED),
    ("CCM", FLAG_CCM),
    ("GCM", FLAG_GCM),
    ("GMAC", FLAG_GMAC),
];

/// A file position and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlgsError {
    /// The file (or `<builtin>`, `<stdin>`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (of the offending field).
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for AlgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for AlgsError {}

/// Execution mode of a protocol's cryptographic requests (`ipsecalgs -e`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecMode {
    /// Synchronous (the default).
    Sync,
    /// Asynchronous.
    Async,
}

impl ExecMode {
    /// `sync` or `async`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Async => "async",
        }
    }

    /// Parses `sync` or `async`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sync" => Some(Self::Sync),
            "async" => Some(Self::Async),
            _ => None,
        }
    }
}

/// A `PROTO` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtoEntry {
    /// Protocol number (2 AH, 3 ESP).
    pub number: u32,
    /// Protocol name, e.g. `PROTO_IPSEC_ESP`.
    pub name: String,
    /// Execution mode.
    pub exec: ExecMode,
    /// Line in the file it came from (0 when made by a command).
    pub line: usize,
}

/// Supported key sizes of an algorithm, in bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySizes {
    /// `min` to `max` in steps of `inc`, with a default.
    Range {
        /// Smallest size.
        min: u16,
        /// Largest size.
        max: u16,
        /// Increment (> 0).
        inc: u16,
        /// Default size.
        default: u16,
    },
    /// An enumeration; the first is the default.
    List(Vec<u16>),
}

impl KeySizes {
    /// Every accepted size.
    pub fn sizes(&self) -> Vec<u16> {
        match self {
            Self::Range { min, max, inc, .. } => (*min..=*max).step_by(usize::from(*inc)).collect(),
            Self::List(l) => l.clone(),
        }
    }

    /// The default size.
    pub fn default_size(&self) -> u16 {
        match self {
            Self::Range { default, .. } => *default,
            Self::List(l) => l.first().copied().unwrap_or(0),
        }
    }

    fn from_bits(k: KeyBits) -> Self {
        if k.step == 0 {
            Self::List(vec![k.min])
        } else {
            Self::Range {
                min: k.min,
                max: k.max,
                inc: k.step,
                default: k.default,
            }
        }
    }

    /// The file form: `default/min-max,inc` or `k1,k2,...`.
    pub fn file_form(&self) -> String {
        match self {
            Self::Range {
                min,
                max,
                inc,
                default,
            } => format!("{default}/{min}-{max},{inc}"),
            Self::List(l) => join(l),
        }
    }
}

/// An `ALG` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlgEntry {
    /// Protocol number it belongs to.
    pub proto: u32,
    /// Algorithm number (PF_KEY).
    pub number: u8,
    /// Names, canonical first.
    pub names: Vec<String>,
    /// Cryptographic mechanism name (`CKM_...`, or `-`).
    pub mech: String,
    /// Key sizes.
    pub keys: KeySizes,
    /// Block sizes (ESP) or MAC sizes (AH), bytes.
    pub blocks: Vec<u16>,
    /// Mechanism parameters: IV, ICV and salt bytes (may be empty).
    pub params: Vec<u16>,
    /// `ALG_FLAG_*` bits, when given.
    pub flags: Option<u32>,
    /// Line in the file it came from (0 when made by a command).
    pub line: usize,
}

impl AlgEntry {
    /// The `ALG|...` line.
    pub fn file_line(&self) -> String {
        let mut s = format!(
            "ALG|{}|{}|{}|{}|{}|{}",
            self.proto,
            self.number,
            self.names.join(","),
            self.mech,
            self.keys.file_form(),
            join(&self.blocks)
        );
        if !self.params.is_empty() || self.flags.is_some() {
            s.push('|');
            s.push_str(&join(&self.params));
        }
        if let Some(f) = self.flags {
            s.push_str(&format!("|{f}"));
        }
        s
    }

    /// Whether `name` is one of its names.
    pub fn has_name(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

fn join(v: &[u16]) -> String {
    v.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
}

/// The whole table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Protocols, in file order.
    pub protos: Vec<ProtoEntry>,
    /// Algorithms, in file order.
    pub algs: Vec<AlgEntry>,
}

/// Solaris's mechanism name of an encryption row.
fn encr_mech(e: &EncrInfo) -> &'static str {
    use ipsec_crypto::EncrAlg as E;
    match e.alg {
        E::Null => "-",
        E::DesCbc => "CKM_DES_CBC",
        E::TripleDesCbc => "CKM_DES3_CBC",
        E::BlowfishCbc => "CKM_BLOWFISH_CBC",
        E::AesCbc => "CKM_AES_CBC",
        E::AesCtr => "CKM_AES_CTR",
        E::AesCcm8 | E::AesCcm12 | E::AesCcm16 => "CKM_AES_CCM",
        E::AesGcm8 | E::AesGcm12 | E::AesGcm16 => "CKM_AES_GCM",
        E::AesNullGmac => "CKM_AES_GMAC",
        E::CamelliaCbc => "CKM_CAMELLIA_CBC",
        E::ChaCha20Poly1305 => "CKM_CHACHA20_POLY1305",
    }
}

/// Solaris's mechanism name of an authentication row.
fn auth_mech(a: &AuthInfo) -> &'static str {
    use ipsec_crypto::AuthAlg as A;
    match a.alg {
        A::None => "-",
        A::HmacMd5 => "CKM_MD5_HMAC_GENERAL",
        A::HmacSha1 => "CKM_SHA_1_HMAC_GENERAL",
        A::HmacSha256 => "CKM_SHA256_HMAC_GENERAL",
        A::HmacSha384 => "CKM_SHA384_HMAC_GENERAL",
        A::HmacSha512 => "CKM_SHA512_HMAC_GENERAL",
        A::AesXcbcMac => "CKM_AES_XCBC_MAC_96",
        A::AesCmac => "CKM_AES_CMAC",
        A::AesGmac128 | A::AesGmac192 | A::AesGmac256 => "CKM_AES_GMAC",
    }
}

/// The ipsecalgs block size of an encryption row: the cipher's block (Solaris writes 16 for
/// the AES counter modes), 0 for null, 1 for ChaCha20.
fn encr_block(e: &EncrInfo) -> u16 {
    match encr_mech(e) {
        "-" => 0,
        m if m.starts_with("CKM_AES") || m.starts_with("CKM_CAMELLIA") => 16,
        _ => u16::try_from(e.block_bytes).unwrap_or(0),
    }
}

fn encr_flags(e: &EncrInfo) -> u32 {
    let m = encr_mech(e);
    let mut f = FLAG_VALID;
    if e.aead || m == "CKM_AES_CTR" {
        f |= FLAG_COUNTER;
    }
    if e.aead {
        f |= FLAG_COMBINED;
    }
    f | match m {
        "CKM_AES_CCM" => FLAG_CCM,
        "CKM_AES_GCM" => FLAG_GCM,
        "CKM_AES_GMAC" => FLAG_GMAC,
        _ => 0,
    }
}

fn encr_params(e: &EncrInfo) -> Vec<u16> {
    let p = [e.iv_bytes, e.icv_bytes, e.salt_bytes].map(|v| u16::try_from(v).unwrap_or(0));
    if p[1] == 0 && p[2] == 0 {
        Vec::new()
    } else {
        p.to_vec()
    }
}

fn auth_params(a: &AuthInfo) -> Vec<u16> {
    if a.salt_bytes == 0 {
        Vec::new()
    } else {
        [a.iv_bytes, a.icv_bytes, a.salt_bytes]
            .map(|v| u16::try_from(v).unwrap_or(0))
            .to_vec()
    }
}

fn auth_flags(a: &AuthInfo) -> Option<u32> {
    (a.salt_bytes != 0).then_some(FLAG_VALID | FLAG_COUNTER | FLAG_COMBINED | FLAG_GMAC)
}

fn names_of(name: &str, synonyms: &[&str]) -> Vec<String> {
    std::iter::once(name)
        .chain(synonyms.iter().copied())
        .map(str::to_string)
        .collect()
}

/// The RFC 8221 requirement level as the RFC writes it.
pub fn rfc8221_name(s: Rfc8221) -> &'static str {
    match s {
        Rfc8221::Must => "MUST",
        Rfc8221::MustMinus => "MUST-",
        Rfc8221::ShouldPlus => "SHOULD+",
        Rfc8221::Should => "SHOULD",
        Rfc8221::ShouldNot => "SHOULD NOT",
        Rfc8221::May => "MAY",
        Rfc8221::MustNot => "MUST NOT",
    }
}

impl Table {
    /// The table describing ipsec-crypto's algorithms: what applies when no file exists.
    pub fn builtin() -> Self {
        let protos = [(PROTO_AH, "PROTO_IPSEC_AH"), (PROTO_ESP, "PROTO_IPSEC_ESP")]
            .into_iter()
            .map(|(number, name)| ProtoEntry {
                number,
                name: name.into(),
                exec: ExecMode::Sync,
                line: 0,
            })
            .collect();
        let mut algs: Vec<AlgEntry> = auth_table()
            .iter()
            .map(|a| AlgEntry {
                proto: PROTO_AH,
                number: a.pfkey,
                names: if a.pfkey == 0 {
                    vec!["none".into(), "any".into()]
                } else {
                    names_of(a.name, a.synonyms)
                },
                mech: auth_mech(a).into(),
                keys: KeySizes::from_bits(a.key_bits),
                blocks: vec![u16::try_from(a.icv_bytes).unwrap_or(0)],
                params: auth_params(a),
                flags: auth_flags(a),
                line: 0,
            })
            .collect();
        algs.push(AlgEntry {
            proto: PROTO_ESP,
            number: 0,
            names: vec!["any".into()],
            mech: "-".into(),
            keys: KeySizes::List(vec![0]),
            blocks: vec![0],
            params: Vec::new(),
            flags: None,
            line: 0,
        });
        let mut encr: Vec<&EncrInfo> = encr_table().iter().collect();
        encr.sort_by_key(|e| e.pfkey);
        algs.extend(encr.into_iter().map(|e| {
            let params = encr_params(e);
            AlgEntry {
                proto: PROTO_ESP,
                number: e.pfkey,
                names: names_of(e.name, e.synonyms),
                mech: encr_mech(e).into(),
                keys: KeySizes::from_bits(e.key_bits),
                blocks: vec![encr_block(e)],
                flags: (!params.is_empty()).then(|| encr_flags(e)),
                params,
                line: 0,
            }
        }));
        Self { protos, algs }
    }

    /// The protocol with this number.
    pub fn proto(&self, number: u32) -> Option<&ProtoEntry> {
        self.protos.iter().find(|p| p.number == number)
    }

    /// The number of the protocol with this name.
    pub fn proto_by_name(&self, name: &str) -> Option<u32> {
        self.protos
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.number)
    }

    /// The file text (Solaris's layout), ending in a newline.
    pub fn to_file_text(&self) -> String {
        let mut o = String::from(
            "#\n# IPsec protocols and algorithms of ipsecd (ipsecalgs(8) format).\n\
             # Use the ipsecalgs command to change this file; `ipsecalgs -s` syncs it to ipsecd,\n\
             # which checks every entry against the algorithms it implements.\n#\n\n\
             # PROTO|protocol-id|protocol-name|exec-mode\n",
        );
        for p in &self.protos {
            o.push_str(&format!(
                "PROTO|{}|{}|{}\n",
                p.number,
                p.name,
                p.exec.name()
            ));
        }
        o.push_str(
            "\n# ALG|protocol-id|alg-id|name,name,...|mechanism| \\\n\
             #\t{default/}{key,key..}or{key-key,inc}|block_size or MAC-size| \\\n\
             #\t[iv,icv,salt]|[flags]\n",
        );
        for a in &self.algs {
            o.push_str(&a.file_line());
            o.push('\n');
        }
        o
    }

    /// The listing of `ipsecalgs` (Solaris's layout), each algorithm followed by its RFC 8221
    /// requirement level (an Ironswan addition). `header` is the first line.
    pub fn listing(&self, header: &str) -> String {
        let mut o = format!("{header}\n\n");
        for p in &self.protos {
            o.push_str(&format!(
                "Protocol {}/{} (execution mode: {})\n\n",
                p.number,
                p.name,
                p.exec.name()
            ));
            for a in self.algs.iter().filter(|a| a.proto == p.number) {
                let keys = match &a.keys {
                    KeySizes::Range {
                        min,
                        max,
                        inc,
                        default,
                    } => format!("{min}-{max}, increment {inc}, default {default}"),
                    KeySizes::List(l) => join(l),
                };
                let flags: String = FLAG_NAMES
                    .iter()
                    .filter(|(_, b)| a.flags.unwrap_or(FLAG_VALID) & b != 0)
                    .map(|(n, _)| format!("{n} "))
                    .collect();
                o.push_str(&format!(
                    "\tProtocol number: {}\n\tAlgorithm number: {}\n\tAlgorithm names: {}\n\
                     \tMechanism Name: {}\n\tBlock sizes or MAC sizes: {}\n\tKey sizes: {}\n\
                     \tAlgorithm parameters: {}\n\tAlgorithm flags: {}\n\tRFC 8221: {}\n\n",
                    a.proto,
                    a.number,
                    a.names.join(","),
                    a.mech,
                    join(&a.blocks),
                    keys,
                    join(&a.params),
                    flags,
                    rfc8221_status(a)
                ));
            }
        }
        o
    }

    /// Adds an algorithm (`ipsecalgs -a`). An entry with the same number or a shared name in
    /// the protocol is an error unless `force`, which replaces it.
    pub fn add_alg(&mut self, entry: AlgEntry, force: bool) -> Result<(), String> {
        if self.proto(entry.proto).is_none() {
            return Err(format!("protocol {} is not defined", entry.proto));
        }
        let clash = |a: &AlgEntry| {
            a.proto == entry.proto
                && (a.number == entry.number || entry.names.iter().any(|n| a.has_name(n)))
        };
        if let Some(old) = self.algs.iter().find(|a| clash(a)) {
            if !force {
                return Err(format!(
                    "algorithm {} ({}) of protocol {} already exists: use -f to replace it",
                    old.number,
                    old.names.join(","),
                    entry.proto
                ));
            }
        }
        match self.algs.iter().position(clash) {
            Some(i) => {
                self.algs.retain(|a| !clash(a));
                let i = i.min(self.algs.len());
                self.algs.insert(i, entry);
            }
            None => self.algs.push(entry),
        }
        Ok(())
    }

    /// Adds a protocol (`ipsecalgs -P N -p NAME`); an existing one with that number or name
    /// is an error unless `force` (its algorithms stay with the number).
    pub fn add_proto(
        &mut self,
        number: u32,
        name: &str,
        exec: ExecMode,
        force: bool,
    ) -> Result<(), String> {
        let clash = |p: &ProtoEntry| p.number == number || p.name == name;
        if self.protos.iter().any(clash) && !force {
            return Err(format!(
                "protocol {number} \"{name}\" already exists (by number or name): use -f to replace it"
            ));
        }
        let entry = ProtoEntry {
            number,
            name: name.into(),
            exec,
            line: 0,
        };
        match self.protos.iter().position(clash) {
            Some(i) => {
                self.protos.retain(|p| !clash(p));
                self.protos.insert(i.min(self.protos.len()), entry);
            }
            None => self.protos.push(entry),
        }
        Ok(())
    }

    /// Removes an algorithm of `proto` by number or by one of its names (`ipsecalgs -r`).
    pub fn remove_alg(
        &mut self,
        proto: u32,
        number: Option<u8>,
        name: Option<&str>,
    ) -> Result<(), String> {
        let before = self.algs.len();
        self.algs.retain(|a| {
            !(a.proto == proto && (number == Some(a.number) || name.is_some_and(|n| a.has_name(n))))
        });
        if self.algs.len() == before {
            return Err(match (number, name) {
                (Some(n), _) => format!("no algorithm number {n} in protocol {proto}"),
                (None, Some(n)) => format!("no algorithm named \"{n}\" in protocol {proto}"),
                (None, None) => "name the algorithm with -n or -N".into(),
            });
        }
        Ok(())
    }

    /// Removes a protocol and its algorithms (`ipsecalgs -R`).
    pub fn remove_proto(&mut self, number: u32) -> Result<(), String> {
        if self.proto(number).is_none() {
            return Err(format!("protocol {number} is not defined"));
        }
        self.protos.retain(|p| p.number != number);
        self.algs.retain(|a| a.proto != number);
        Ok(())
    }

    /// Sets a protocol's execution mode (`ipsecalgs -e`).
    pub fn set_exec(&mut self, number: u32, exec: ExecMode) -> Result<(), String> {
        let p = self
            .protos
            .iter_mut()
            .find(|p| p.number == number)
            .ok_or_else(|| format!("protocol {number} is not defined"))?;
        p.exec = exec;
        Ok(())
    }

    /// What ipsecd does on a sync: checks every entry against ipsec-crypto and returns the
    /// algorithms and key sizes to allow. The first entry that cannot be implemented is the
    /// error, at its line in `file`.
    pub fn validate(&self, file: &str) -> Result<AlgFilter, AlgsError> {
        let at = |line: usize, message: String| AlgsError {
            file: file.into(),
            line,
            column: 1,
            message,
        };
        for p in &self.protos {
            if p.number != PROTO_AH && p.number != PROTO_ESP {
                return Err(at(
                    p.line,
                    format!(
                        "PROTO|{}|{}: ipsecd implements only protocols 2 (AH) and 3 (ESP)",
                        p.number, p.name
                    ),
                ));
            }
        }
        let mut filter = AlgFilter::default();
        for a in &self.algs {
            let here = |m: String| at(a.line, format!("{}: {m}", a.file_line()));
            if self.proto(a.proto).is_none() {
                return Err(here(format!("protocol {} is not defined", a.proto)));
            }
            if a.number == 0 {
                if a.mech != "-" || a.keys.sizes() != [0] {
                    return Err(here(
                        "algorithm 0 is the \"none/any\" placeholder: mechanism - and key size 0"
                            .into(),
                    ));
                }
                continue;
            }
            let want = Want::of(a.proto, a.number).ok_or_else(|| {
                let kind = if a.proto == PROTO_AH {
                    "authentication"
                } else {
                    "encryption"
                };
                here(format!(
                    "no {kind} algorithm number {} is implemented",
                    a.number
                ))
            })?;
            want.check(a).map_err(here)?;
            let map = if a.proto == PROTO_AH {
                &mut filter.auth
            } else {
                &mut filter.encr
            };
            map.insert(a.number, a.keys.sizes());
        }
        Ok(filter)
    }
}

/// What ipsec-crypto implements under an algorithm number.
struct Want {
    mech: &'static str,
    key_bits: KeyBits,
    block: u16,
    params: [usize; 3],
    flags: u32,
}

impl Want {
    /// What ipsec-crypto implements under `number` of protocol `proto` (2 or 3).
    fn of(proto: u32, number: u8) -> Option<Self> {
        if proto == PROTO_AH {
            auth_table()
                .iter()
                .find(|r| r.pfkey == number)
                .map(|r| Want {
                    mech: auth_mech(r),
                    key_bits: r.key_bits,
                    block: u16::try_from(r.icv_bytes).unwrap_or(0),
                    params: [r.iv_bytes, r.icv_bytes, r.salt_bytes],
                    flags: auth_flags(r).unwrap_or(FLAG_VALID),
                })
        } else {
            encr_table()
                .iter()
                .find(|r| r.pfkey == number)
                .map(|r| Want {
                    mech: encr_mech(r),
                    key_bits: r.key_bits,
                    block: encr_block(r),
                    params: [r.iv_bytes, r.icv_bytes, r.salt_bytes],
                    flags: encr_flags(r),
                })
        }
    }

    fn check(&self, a: &AlgEntry) -> Result<(), String> {
        if a.mech != self.mech {
            return Err(format!(
                "mechanism {} is not what ipsecd implements under number {} (expected {})",
                a.mech, a.number, self.mech
            ));
        }
        if let Some(k) = a
            .keys
            .sizes()
            .into_iter()
            .find(|k| !self.key_bits.accepts(usize::from(*k)))
        {
            return Err(format!(
                "key size {k} is not supported (supported: {})",
                KeySizes::from_bits(self.key_bits).file_form()
            ));
        }
        if let Some(b) = a.blocks.iter().find(|b| **b != self.block) {
            return Err(format!(
                "block/MAC size {b} is not supported (expected {})",
                self.block
            ));
        }
        let names = ["IV", "ICV", "salt"];
        for ((got, want), what) in a.params.iter().zip(self.params).zip(names) {
            if usize::from(*got) != want {
                return Err(format!(
                    "{what} length {got} is not supported (expected {want})"
                ));
            }
        }
        if a.params.len() > 3 {
            return Err("at most three parameters (IV, ICV, salt lengths)".into());
        }
        if let Some(f) = a.flags {
            if f & !FLAG_VALID != self.flags & !FLAG_VALID {
                return Err(format!(
                    "flags {f} do not describe the mechanism (expected {})",
                    self.flags
                ));
            }
        }
        Ok(())
    }
}

fn rfc8221_status(a: &AlgEntry) -> String {
    let mech_matches = |m: &str| m == a.mech;
    if a.proto == PROTO_AH {
        match auth_table()
            .iter()
            .find(|r| r.pfkey == a.number && mech_matches(auth_mech(r)))
        {
            Some(r) if a.number == 0 => format!("ESP {}", rfc8221_name(r.status_esp)),
            Some(r) => format!(
                "ESP {}, AH {}",
                rfc8221_name(r.status_esp),
                rfc8221_name(r.status_ah)
            ),
            None => "not implemented by ipsecd".into(),
        }
    } else if a.number == 0 {
        "-".into()
    } else {
        encr_table()
            .iter()
            .find(|r| r.pfkey == a.number && mech_matches(encr_mech(r)))
            .map_or_else(
                || "not implemented by ipsecd".into(),
                |r| rfc8221_name(r.status).to_string(),
            )
    }
}

/// A field of a line and its 1-based column.
struct Field<'a> {
    text: &'a str,
    col: usize,
}

/// Parses the file text. `file` names the file in errors. Blank lines and `#` comments are
/// skipped. Duplicate protocol numbers or names, duplicate algorithm numbers or names within
/// a protocol, and algorithms of undefined protocols are errors.
pub fn parse(text: &str, file: &str) -> Result<Table, AlgsError> {
    let mut t = Table::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let lead = raw.len() - trimmed.len();
        let trimmed = trimmed.trim_end();
        let mut fields = Vec::new();
        let mut col = lead + 1;
        for f in trimmed.split('|') {
            fields.push(Field { text: f, col });
            col += f.len() + 1;
        }
        let err = |column: usize, message: String| AlgsError {
            file: file.into(),
            line,
            column,
            message,
        };
        match fields.first().map(|f| f.text) {
            Some("PROTO") => {
                if !(3..=4).contains(&fields.len()) {
                    return Err(err(
                        lead + 1,
                        format!("PROTO needs 3 or 4 |-separated fields (PROTO|number|name[|exec-mode]), found {}", fields.len()),
                    ));
                }
                let number =
                    num::<u32>(&fields[1], "a protocol number").map_err(|(c, m)| err(c, m))?;
                let name = &fields[2];
                if name.text.is_empty() || name.text.contains([',', ' ']) {
                    return Err(err(
                        name.col,
                        format!("expected a protocol name, found {:?}", name.text),
                    ));
                }
                let exec = match fields.get(3) {
                    None => ExecMode::Sync,
                    Some(f) => ExecMode::parse(f.text).ok_or_else(|| {
                        err(
                            f.col,
                            format!("expected exec-mode sync or async, found {:?}", f.text),
                        )
                    })?,
                };
                if t.protos
                    .iter()
                    .any(|p| p.number == number || p.name == name.text)
                {
                    return Err(err(
                        fields[1].col,
                        format!("protocol {number} \"{}\" is defined twice", name.text),
                    ));
                }
                t.protos.push(ProtoEntry {
                    number,
                    name: name.text.into(),
                    exec,
                    line,
                });
            }
            Some("ALG") => {
                let a = parse_alg(&fields, line).map_err(|(c, m)| err(c, m))?;
                if t.proto(a.proto).is_none() {
                    return Err(err(
                        fields[1].col,
                        format!(
                            "protocol {} is not defined by an earlier PROTO line",
                            a.proto
                        ),
                    ));
                }
                if let Some(old) = t.algs.iter().find(|o| {
                    o.proto == a.proto
                        && (o.number == a.number || a.names.iter().any(|n| o.has_name(n)))
                }) {
                    return Err(err(
                        fields[2].col,
                        format!(
                            "algorithm {} ({}) clashes with line {} (same number or name)",
                            a.number,
                            a.names.join(","),
                            old.line
                        ),
                    ));
                }
                t.algs.push(a);
            }
            Some(other) => {
                return Err(err(
                    lead + 1,
                    format!("expected PROTO or ALG, found {other:?}"),
                ));
            }
            None => {}
        }
    }
    Ok(t)
}

type FieldError = (usize, String);

fn num<T: std::str::FromStr>(f: &Field<'_>, what: &str) -> Result<T, FieldError> {
    number_at(f.text, f.col, what)
}

fn number_at<T: std::str::FromStr>(text: &str, col: usize, what: &str) -> Result<T, FieldError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err((col, format!("expected {what}, found {text:?}")));
    }
    text.parse()
        .map_err(|_| (col, format!("{what} {text} is out of range")))
}

/// A comma-separated list of numbers starting at column `col`.
fn num_list(text: &str, col: usize, what: &str) -> Result<Vec<u16>, FieldError> {
    let mut out = Vec::new();
    let mut c = col;
    for part in text.split(',') {
        out.push(number_at(part, c, what)?);
        c += part.len() + 1;
    }
    Ok(out)
}

fn parse_alg(fields: &[Field<'_>], line: usize) -> Result<AlgEntry, FieldError> {
    if !(7..=9).contains(&fields.len()) {
        return Err((
            fields[0].col,
            format!(
                "ALG needs 7 to 9 |-separated fields (ALG|proto|number|names|mechanism|keys|blocks[|params[|flags]]), found {}",
                fields.len()
            ),
        ));
    }
    let proto = num::<u32>(&fields[1], "a protocol number")?;
    let number = num::<u8>(&fields[2], "an algorithm number (0-255)")?;
    let names: Vec<String> = fields[3].text.split(',').map(str::to_string).collect();
    if names
        .iter()
        .any(|n| n.is_empty() || n.contains(char::is_whitespace))
    {
        return Err((
            fields[3].col,
            format!(
                "expected comma-separated algorithm names, found {:?}",
                fields[3].text
            ),
        ));
    }
    let mech = fields[4].text;
    if mech.is_empty() || mech.contains(char::is_whitespace) {
        return Err((
            fields[4].col,
            format!("expected a mechanism name or -, found {mech:?}"),
        ));
    }
    let keys = parse_keys(fields[5].text, fields[5].col)?;
    let blocks = num_list(fields[6].text, fields[6].col, "a block or MAC size")?;
    let params = match fields.get(7) {
        Some(f) if !f.text.is_empty() => num_list(f.text, f.col, "a parameter length")?,
        _ => Vec::new(),
    };
    let flags = match fields.get(8) {
        None => None,
        Some(f) => Some(parse_flags(f.text).ok_or_else(|| {
            (
                f.col,
                format!(
                    "expected flags (a number, 0x..., or names like COMBINED,GCM), found {:?}",
                    f.text
                ),
            )
        })?),
    };
    Ok(AlgEntry {
        proto,
        number,
        names,
        mech: mech.into(),
        keys,
        blocks,
        params,
        flags,
        line,
    })
}

/// Parses `ALG_FLAG_*` bits: decimal, `0x` hexadecimal, or comma-separated names (`VALID`,
/// `COUNTER`, `COMBINED`, `CCM`, `GCM`, `GMAC`).
pub fn parse_flags(s: &str) -> Option<u32> {
    if let Some(h) = s.strip_prefix("0x") {
        return u32::from_str_radix(h, 16).ok();
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    s.split(',').try_fold(0, |acc, n| {
        FLAG_NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(n))
            .map(|(_, b)| acc | b)
    })
}

/// Parses a key-size field: `{default/}{k1,k2,...}` or `{default/}min-max,inc`.
pub fn parse_keys(text: &str, col: usize) -> Result<KeySizes, FieldError> {
    let (default, rest, rcol) = match text.split_once('/') {
        Some((d, r)) => (
            Some(number_at::<u16>(d, col, "a default key size")?),
            r,
            col + d.len() + 1,
        ),
        None => (None, text, col),
    };
    if let Some((min, tail)) = rest.split_once('-') {
        let (max, inc) = tail.split_once(',').ok_or((
            rcol,
            format!("a key-size range needs an increment (min-max,inc), found {rest:?}"),
        ))?;
        let min: u16 = number_at(min, rcol, "a minimum key size")?;
        let mcol = rcol + rest.len() - tail.len();
        let max: u16 = number_at(max, mcol, "a maximum key size")?;
        let icol = mcol + tail.len() - inc.len();
        let inc: u16 = number_at(inc, icol, "a key-size increment")?;
        if min >= max {
            return Err((
                rcol,
                format!("key-size range {min}-{max}: the minimum must be below the maximum"),
            ));
        }
        if inc == 0 || (max - min) % inc != 0 {
            return Err((
                icol,
                format!("increment {inc} does not divide the range {min}-{max}"),
            ));
        }
        let default = default.unwrap_or(min);
        if default < min || default > max || (default - min) % inc != 0 {
            return Err((
                col,
                format!("default key size {default} is not in {min}-{max} by {inc}"),
            ));
        }
        return Ok(KeySizes::Range {
            min,
            max,
            inc,
            default,
        });
    }
    let mut list = num_list(rest, rcol, "a key size")?;
    if let Some(d) = default {
        let i = list
            .iter()
            .position(|k| *k == d)
            .ok_or((col, format!("default key size {d} is not one of {rest}")))?;
        list.swap(0, i);
    }
    Ok(KeySizes::List(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_round_trips_and_validates() {
        let b = Table::builtin();
        let text = b.to_file_text();
        let mut back = parse(&text, "t").unwrap();
        for a in &mut back.algs {
            a.line = 0;
        }
        for p in &mut back.protos {
            p.line = 0;
        }
        assert_eq!(back, b);
        let f = back.validate("t").unwrap();
        assert_eq!(f.encr.get(&12), Some(&vec![128, 192, 256]));
        assert_eq!(f.auth.get(&5), Some(&vec![256]));
        assert!(text.contains("ALG|3|12|aes-cbc,aes|CKM_AES_CBC|128/128-256,64|16\n"));
        assert!(text.contains(
            "ALG|3|20|aes-gcm,aes-gcm16,aes-gcm-16|CKM_AES_GCM|128/128-256,64|16|8,16,4|23\n"
        ));
        assert!(text.contains("ALG|2|9|aes-gmac128,aes-gmac-128|CKM_AES_GMAC|128|16|8,16,4|39\n"));
    }

    #[test]
    fn the_solaris_11_file_is_accepted() {
        let s11 = "PROTO|2|PROTO_IPSEC_AH|sync\nPROTO|3|PROTO_IPSEC_ESP|sync\n\
            ALG|2|0|none,any|-|0|0\n\
            ALG|2|3|hmac-sha1,sha,sha1,sha-1,hmac-sha,hmac-sha-1|CKM_SHA_1_HMAC_GENERAL|160|12\n\
            ALG|2|10|aes-gmac192,aes-gmac-192|CKM_AES_GMAC|192|16|8,16,4|39\n\
            ALG|3|0|any|-|0|0\nALG|3|7|blowfish-cbc,blowfish|CKM_BLOWFISH_CBC|128|8\n\
            ALG|3|14|aes-ccm8|CKM_AES_CCM|128/128-256,64|16|8,8,3|15\n\
            ALG|3|21|aes-none-gmac|CKM_AES_GMAC|128/128-256,64|16|8,16,4|39\n";
        let t = parse(s11, "s11").unwrap();
        let f = t.validate("s11").unwrap();
        assert_eq!(f.encr.get(&7), Some(&vec![128]));
        assert!(!f.encr.contains_key(&12));
    }

    #[test]
    fn parse_errors_name_line_and_column() {
        let e = parse(
            "PROTO|3|ESP|sync\nALG|3|12|aes|CKM_AES_CBC|128/128-256,x|16\n",
            "f",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (2, 38), "{e}");
        assert!(
            e.to_string()
                .starts_with("f:2:38: expected a key-size increment"),
            "{e}"
        );
        let e = parse("PROTO|3|ESP|fast\n", "f").unwrap_err();
        assert_eq!((e.line, e.column), (1, 13));
        let e = parse("\n  BOGUS|1\n", "f").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
        let e = parse("ALG|3|12|aes|CKM_AES_CBC|128|16\n", "f").unwrap_err();
        assert!(e.message.contains("not defined"), "{e}");
        let e = parse("PROTO|3|ESP\nALG|3|300|x|CKM_AES_CBC|128|16\n", "f").unwrap_err();
        assert_eq!((e.line, e.column), (2, 7));
        let e = parse(
            "PROTO|3|ESP\nALG|3|12|aes|CKM_AES_CBC|128|16\nALG|3|13|aes|CKM_AES_CTR|128|16\n",
            "f",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn unimplementable_entries_are_refused_at_their_line() {
        let cases = [
            (
                "PROTO|3|ESP\n\nALG|3|12|aes|CKM_AES_CBC|128/128-512,64|16\n",
                3,
                "key size 320 is not supported",
            ),
            (
                "PROTO|3|ESP\nALG|3|99|rot13|CKM_ROT13|128|16\n",
                2,
                "no encryption algorithm number 99",
            ),
            (
                "PROTO|3|ESP\nALG|3|12|aes|CKM_DES_CBC|128|16\n",
                2,
                "mechanism CKM_DES_CBC",
            ),
            (
                "PROTO|3|ESP\nALG|3|20|aes-gcm|CKM_AES_GCM|128|16|8,12,4|23\n",
                2,
                "ICV length 12",
            ),
            (
                "PROTO|2|AH\nALG|2|5|sha256|CKM_SHA256_HMAC_GENERAL|256|12\n",
                2,
                "MAC size 12",
            ),
            ("PROTO|50|NEWPROTO|async\n", 1, "only protocols 2"),
        ];
        for (text, line, want) in cases {
            let e = parse(text, "f").unwrap().validate("f").unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.message.contains(want), "{e}");
        }
    }

    #[test]
    fn edits() {
        let mut t = Table::builtin();
        let n = t.algs.len();
        t.remove_alg(PROTO_ESP, None, Some("aes")).unwrap();
        assert_eq!(t.algs.len(), n - 1);
        assert!(t.remove_alg(PROTO_ESP, Some(12), None).is_err());
        let e = AlgEntry {
            proto: PROTO_ESP,
            number: 12,
            names: vec!["aes-cbc".into()],
            mech: "CKM_AES_CBC".into(),
            keys: parse_keys("256,128", 1).unwrap(),
            blocks: vec![16],
            params: vec![],
            flags: None,
            line: 0,
        };
        t.add_alg(e.clone(), false).unwrap();
        assert!(t.add_alg(e.clone(), false).is_err());
        t.add_alg(e, true).unwrap();
        assert_eq!(t.algs.len(), n);
        assert_eq!(
            t.validate("x").unwrap().encr.get(&12),
            Some(&vec![256, 128])
        );
        t.set_exec(PROTO_ESP, ExecMode::Async).unwrap();
        assert!(t.add_proto(3, "X", ExecMode::Sync, false).is_err());
        t.remove_proto(PROTO_AH).unwrap();
        assert!(t.algs.iter().all(|a| a.proto == PROTO_ESP));
    }

    #[test]
    fn key_fields() {
        assert_eq!(
            parse_keys("128/32-448,8", 1).unwrap(),
            KeySizes::Range {
                min: 32,
                max: 448,
                inc: 8,
                default: 128
            }
        );
        assert_eq!(
            parse_keys("192/128,192,256", 1).unwrap(),
            KeySizes::List(vec![192, 128, 256])
        );
        assert!(parse_keys("128-256", 1).is_err());
        assert!(parse_keys("256-128,64", 1).is_err());
        assert!(parse_keys("100/128-256,64", 1).is_err());
        assert_eq!(parse_flags("COMBINED,GCM"), Some(FLAG_COMBINED | FLAG_GCM));
        assert_eq!(parse_flags("0x27"), Some(39));
    }
}
